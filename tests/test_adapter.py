"""The adapter over real HTTP: retries per failure class, streaming timings, usage accounting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.tools import TOOLS
from pytest_agentbench.errors import ModelCallError, ModelsFileError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.registry import ModelSpec, parse_retries
from pytest_agentbench.serving.scripted import ScriptedServer

MESSAGES = [{"role": "user", "content": "hello"}]


def spec(**kw: Any) -> ModelSpec:
    if "retries" in kw:  # as models.yaml would write it
        kw["retries"] = parse_retries(kw["retries"], "models.yaml: models.t.retries")
    return ModelSpec(alias="t", model="scripted", source=Path("models.yaml"), **kw)


class Adapter:
    def __init__(self, responses: list[dict[str, Any]], **kw: Any):
        self.server = ScriptedServer({"conversations": [{"responses": responses}]}).start()
        self.sleeps: list[float] = []
        self.adapter = ModelAdapter(spec(**kw), base_url=self.server.base_url, sleep=self.sleeps.append)

    def __enter__(self) -> Adapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.adapter.close()
        self.server.stop()


def test_rate_limited_then_ok_honours_retry_after() -> None:
    step = {"attempts": [{"status": 429, "error": "slow down", "headers": {"Retry-After": "3"}}, {"content": "ok"}]}
    with Adapter([step]) as a:
        done = a.adapter.complete(MESSAGES)
    assert done.text == "ok" and done.extra["retries"] == ["rate_limited"]
    assert a.sleeps == [3.0]
    assert len(a.server.requests) == 2


def test_server_error_gives_up_after_its_attempts_and_records_them() -> None:
    with Adapter([{"status": 500, "error": "boom"}]) as a, pytest.raises(ModelCallError) as exc:
        a.adapter.complete(MESSAGES)
    assert exc.value.failure == "server_error"
    assert exc.value.retries == ("server_error", "server_error")
    assert len(a.sleeps) == 2 and len(a.server.requests) == 3
    assert a.sleeps[1] > a.sleeps[0]  # exponential backoff


def test_context_overflow_is_not_retried() -> None:
    with (
        Adapter([{"status": 400, "error": "maximum context length is 32768 tokens"}]) as a,
        pytest.raises(ModelCallError) as exc,
    ):
        a.adapter.complete(MESSAGES)
    assert exc.value.failure == "context_overflow" and a.sleeps == [] and len(a.server.requests) == 1


def test_per_alias_policy_overrides_defaults() -> None:
    with Adapter([{"status": 500}], retries={"server_error": 0}) as a, pytest.raises(ModelCallError):
        a.adapter.complete(MESSAGES)
    assert len(a.server.requests) == 1


@pytest.mark.parametrize(
    ("retries", "expected"),
    [
        ({"overload": 3}, "unknown failure class 'overload'"),
        ({"timeout": {"tries": 3}}, "unknown key(s) tries"),
        ({"timeout": "often"}, "expected a number of attempts or a mapping"),
        ({"timeout": {"attempts": -1}}, "must be >= 0"),
    ],
)
def test_bad_retry_config_names_the_key(retries: dict[str, Any], expected: str) -> None:
    with pytest.raises(ModelsFileError) as exc:
        spec(retries=retries)
    assert "models.yaml: models.t.retries" in str(exc.value) and expected in str(exc.value)


def test_unreadable_body_is_a_server_error() -> None:
    with Adapter([{"raw": "this is not json"}], retries={"server_error": 0}) as a, pytest.raises(ModelCallError) as exc:
        a.adapter.complete(MESSAGES)
    assert exc.value.failure == "server_error"


def test_streaming_measures_ttft_and_assembles_tool_calls() -> None:
    step = {
        "content": "Reading the file now.",
        "tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}, {"name": "list_files", "arguments": {}}],
    }
    with Adapter([step], stream=True) as a:
        done = a.adapter.complete(MESSAGES, TOOLS)
    assert a.server.requests[0]["stream"] is True
    assert a.server.requests[0]["stream_options"] == {"include_usage": True}
    assert done.ttft_s is not None and 0 < done.ttft_s <= done.wall_s
    assert done.text == "Reading the file now."
    assert [(c.name, c.parsed_arguments()) for c in done.tool_calls] == [
        ("read_file", {"path": "a.py"}),
        ("list_files", {}),
    ]
    assert done.usage.reported and done.usage.completion_tokens > 1
    assert done.extra["tpot_s"] > 0 and done.extra["decode_tok_s"] > 0


def test_non_streaming_says_ttft_is_unavailable() -> None:
    with Adapter([{"content": "hi"}]) as a:
        done = a.adapter.complete(MESSAGES)
    assert done.ttft_s is None and "tpot_s" not in done.extra


@pytest.mark.parametrize("stream", [False, True])
def test_missing_usage_is_flagged_not_zeroed_silently(stream: bool) -> None:
    with Adapter([{"content": "hi", "no_usage": True}], stream=stream) as a:
        done = a.adapter.complete(MESSAGES)
    assert done.usage.reported is False


def test_usage_is_the_servers_including_cached_tokens() -> None:
    usage = {"prompt_tokens": 1234, "completion_tokens": 56, "prompt_tokens_details": {"cached_tokens": 1000}}
    with Adapter([{"content": "hi", "usage": usage}]) as a:
        done = a.adapter.complete(MESSAGES)
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.cached_tokens) == (1234, 56, 1000)


def test_hermes_parser_recovers_calls_from_content() -> None:
    text = 'Let me look.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "x.py"}}\n</tool_call>'
    with Adapter([{"content": text}], tool_parser="hermes") as a:
        done = a.adapter.complete(MESSAGES, TOOLS)
    assert [c.name for c in done.tool_calls] == ["read_file"] and done.text == "Let me look."


def test_think_tags_are_reasoning_not_answer() -> None:
    with Adapter([{"content": "<think>the bug is in mid</think>Fixed."}], reasoning_parser="think_tags") as a:
        done = a.adapter.complete(MESSAGES)
    assert done.text == "Fixed." and done.message.reasoning == "the bug is in mid"


def test_timeout_class() -> None:
    with (
        Adapter([{"delay_s": 2, "content": "late"}], timeout_s=0.5, retries={"timeout": 0}) as a,
        pytest.raises(ModelCallError) as exc,
    ):
        a.adapter.complete(MESSAGES)
    assert exc.value.failure == "timeout"


def test_connection_dropped_mid_stream_is_a_connection_error() -> None:
    with (
        Adapter(
            [{"content": "a long answer " * 5, "stream_drop_after": 2}], stream=True, retries={"connection_error": 0}
        ) as a,
        pytest.raises(ModelCallError) as exc,
    ):
        a.adapter.complete(MESSAGES)
    assert exc.value.failure == "connection_error"


def test_stalled_stream_is_a_timeout() -> None:
    with (
        Adapter(
            [{"content": "a long answer", "stream_stall_after": 1, "stream_stall_s": 3}],
            stream=True,
            timeout_s=1,
            retries={"timeout": 0},
        ) as a,
        pytest.raises(ModelCallError) as exc,
    ):
        a.adapter.complete(MESSAGES)
    assert exc.value.failure == "timeout"


def test_tool_choice_is_sent_only_with_tools() -> None:
    with Adapter([{"content": "a"}, {"content": "b"}], tool_choice="required") as a:
        a.adapter.complete(MESSAGES, TOOLS)
        a.adapter.complete(MESSAGES)
    assert a.server.requests[0]["tool_choice"] == "required" and "tool_choice" not in a.server.requests[1]
