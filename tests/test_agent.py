"""The agent loop over real HTTP against the scripted server (a test double)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.loop import run_agent
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.sandbox import LocalSandbox
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX


def spec(**kw: Any) -> ModelSpec:
    return ModelSpec(alias="t", model="scripted", source=Path("models.yaml"), **kw)


def run(responses: list[dict[str, Any]], config: AgentConfig | None = None, **spec_kw: Any):
    with ScriptedServer({"conversations": [{"responses": responses}]}) as server, LocalSandbox(BUGFIX / "repo") as box:
        adapter = ModelAdapter(spec(**spec_kw), base_url=server.base_url, sleep=lambda s: None)
        result = run_agent("do the task", box, adapter, config or AgentConfig())
        adapter.close()
        return result, server.requests


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def outcomes(result) -> list[tuple[str, bool, str]]:
    return [(o.call.name, o.ok, o.result) for t in result.turns for o in t.tool_calls]


def test_finish_ends_the_run_with_summary_and_usage() -> None:
    result, requests = run([call("read_file", path="stats/core.py"), call("finish", summary="done")])
    assert result.outcome == "finished" and result.summary == "done"
    assert "def median" in outcomes(result)[0][2]
    assert result.usage.prompt_tokens > 0 and result.usage.reported
    # the second request carries the tool result back to the model
    assert requests[1]["messages"][-1]["role"] == "tool"


def test_unknown_tool_and_bad_arguments_go_back_to_the_model() -> None:
    result, requests = run(
        [
            call("delete_everything"),
            {"tool_calls": [{"name": "read_file", "arguments": "{not json"}]},
            call("read_file", file="x"),
            call("edit", path="stats/core.py", old="no such text", new="x"),
            call("finish", summary="ok"),
        ]
    )
    got = outcomes(result)
    assert [ok for _, ok, _ in got] == [False, False, False, True]
    assert "unknown tool 'delete_everything'; available tools: read_file" in got[0][2]
    assert "missing argument(s) path; unknown argument(s) file" in got[1][2]
    assert "`old` was not found" in got[2][2]
    assert result.outcome == "finished"
    assert requests[1]["messages"][-1]["content"].startswith("error: unknown tool")
    # unparseable arguments are recorded and told to the model, which gets another turn
    assert result.invalid_tool_calls == 1 and "[invalid tool call]" in result.transcript()
    assert "could not be parsed" in requests[2]["messages"][-1]["content"]


def test_paths_outside_the_workspace_are_refused() -> None:
    result, _ = run(
        [
            call("read_file", path="../../etc/passwd"),
            call("read_file", path="/etc/passwd"),
            call("write_file", path="../escape.txt", content="x"),
            call("finish", summary=""),
        ]
    )
    got = outcomes(result)
    assert [ok for _, ok, _ in got[:3]] == [False, False, False]
    assert "leaves the workspace" in got[0][2] and "is absolute" in got[1][2]
    assert "root:" not in got[0][2] + got[1][2]


def test_sleep_1000_times_out_within_the_limit() -> None:
    start = time.monotonic()
    result, _ = run(
        [call("run", command="sleep 1000", timeout_s=2), call("finish", summary="")], AgentConfig(command_timeout_s=2)
    )
    assert time.monotonic() - start < 20
    name, ok, text = outcomes(result)[0]
    assert ok and text.startswith("exit code: 124 (timed out after 2 s)")


def test_tool_output_is_clipped_head_and_tail() -> None:
    result, _ = run(
        [call("run", command="seq 1 100000"), call("finish", summary="")], AgentConfig(tool_output_chars=2000)
    )
    text = outcomes(result)[0][2]
    assert len(text) < 2100 and "characters cut" in text and text.rstrip().endswith("100000")


def test_max_turns() -> None:
    result, _ = run([call("list_files")] * 5, AgentConfig(max_turns=3))
    assert result.outcome == "max_turns" and len(result.turns) == 3


def test_reply_without_tool_calls_stops() -> None:
    result, _ = run([{"content": "I think it is fine."}])
    assert result.outcome == "stopped" and result.summary == "I think it is fine."


def test_wall_budget() -> None:
    result, _ = run([{"delay_s": 1.5, **call("list_files")}, call("list_files")], AgentConfig(timeout_s=1))
    assert result.outcome in ("agent_timeout",)


@pytest.mark.parametrize(
    ("step", "failure", "first_call_outcome"),
    [
        ({"status": 500, "error": "boom"}, "server_error", "infrastructure"),
        ({"status": 429, "error": "slow down", "headers": {"Retry-After": "1"}}, "rate_limited", "infrastructure"),
        (
            {"status": 400, "error": "This model's maximum context length is 4096 tokens"},
            "context_overflow",
            "model_error",
        ),
        ({"content": "", "finish_reason": "content_filter"}, "refusal", "model_error"),
    ],
)
def test_model_failures_are_classified(step: dict[str, Any], failure: str, first_call_outcome: str) -> None:
    """Issue 15 changed this: a first call that gets no answer of the model is ``infrastructure``, not
    ``model_error``; a context overflow or a refusal is the model's own answer. After one answer, every
    failure is ``model_error``."""
    result, _ = run([step])
    assert (result.outcome, result.failure, result.answered) == (first_call_outcome, failure, False)
    result, _ = run([call("list_files"), step])
    assert (result.outcome, result.failure, result.answered) == ("model_error", failure, True)


def test_connection_error() -> None:
    with LocalSandbox(BUGFIX / "repo") as box:
        adapter = ModelAdapter(spec(), base_url="http://127.0.0.1:9/v1", sleep=lambda s: None)
        result = run_agent("x", box, adapter, AgentConfig())
    assert (result.outcome, result.failure, result.counted) == ("infrastructure", "connection_error", False)
    assert "outcome: infrastructure (connection_error)" in result.transcript()


def test_system_prompt_folded_for_templates_without_system_role() -> None:
    _, requests = run([call("finish", summary="")], system_role="user")
    roles = [m["role"] for m in requests[0]["messages"]]
    assert roles == ["user"] and "careful software engineer" in requests[0]["messages"][0]["content"]


def test_transcript_records_every_turn() -> None:
    result, _ = run([call("list_files"), call("finish", summary="bye")])
    text = result.transcript()
    assert "turn 0" in text and "[tool list_files]" in text and "[tool finish]" in text


def test_run_token_totals_equal_the_sum_of_server_usage() -> None:
    usages = [
        {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 64}},
        {"prompt_tokens": 180, "completion_tokens": 11},
        {"prompt_tokens": 250, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 128}},
    ]
    steps = [
        {**call("list_files"), "usage": usages[0]},
        {**call("read_file", path="README.md"), "usage": usages[1]},
        {**call("finish", summary="x"), "usage": usages[2]},
    ]
    result, _ = run(steps)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.cached_tokens) == (530, 23, 192)


def test_failure_counts_by_class_on_the_run() -> None:
    steps = [
        {"attempts": [{"status": 503}, {"status": 429}, call("list_files")]},
        {"tool_calls": [{"name": "read_file", "arguments": "{oops"}]},
        {"status": 400, "error": "prompt is too long for the context window"},
    ]
    result, _ = run(steps)
    assert result.outcome == "model_error" and result.failure == "context_overflow"
    assert result.failures_by_class() == {
        "server_error": 1,
        "rate_limited": 1,
        "invalid_tool_call": 1,
        "context_overflow": 1,
    }
