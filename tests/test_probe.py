"""agentbench probe against the scripted server (a test double): the table says what works and how."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.cli import main
from pytest_agentbench.models.probe import run_probe, served_max_model_len, shape_counts
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import REPO

READ_README = "Use the read_file tool to read the file README.md."
READ_TWO = "call read_file twice in one reply"
NATIVE_ONE = {"tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}]}
NATIVE_TWO = {"tool_calls": [{"name": "read_file", "arguments": {"path": p}} for p in ("a.py", "b.py")]}


def spec(**kw: Any) -> ModelSpec:
    kw.setdefault("model", "scripted")
    return ModelSpec(alias="t", source=Path("models.yaml"), **kw)


def write_alias(tmp_path: Path, script: dict[str, Any], **alias: Any) -> Path:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(script))
    body = {"model": "m", "serve": {"engine": "scripted", "script": "s.yaml"}, **alias}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": {"x": body}}))
    return tmp_path / "models.yaml"


def test_probe_all_pass_and_says_which_call_the_parser_recovered(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["probe", "scripted-probe", "--models-file", str(REPO / "models.yaml")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "7/7 checks passed" in out
    assert "PASS  one tool call " in out and "recovered from text by the parser" in out
    assert "PASS  parallel tool calls, streamed" in out and "native tool_calls: 2 call(s), TTFT" in out
    assert "scripted test double, not a model" in out
    assert "of a 8192-token context (max_model_len from /v1/models)" in out


def test_probe_failures_name_the_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = write_alias(
        tmp_path, {"conversations": [{"responses": [{"status": 500, "error": "broken"}]}]}, retries={"server_error": 0}
    )
    rc = main(["probe", "x", "--models-file", str(models)])
    out = capsys.readouterr().out
    assert rc == 1 and "0/7 checks passed" in out and "FAIL  plain answer" in out and "server_error" in out


def test_probe_unknown_alias(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "nope", "--models-file", str(REPO / "models.yaml")]) == 2
    assert "unknown alias(es) 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--repeat", "--concurrency", "--context"])
def test_probe_counts_must_be_positive(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "scripted-probe", "--models-file", str(REPO / "models.yaml"), flag, "0"]) == 2
    assert f"{flag}: must be >= 1, got 0" in capsys.readouterr().err


def test_long_prompt_is_sized_from_the_served_context_not_past_it(tmp_path: Path) -> None:
    """The regression: a fixed 4096-token guess overflowed a 2048-token server (tiny-cpu) and failed."""
    script = {
        "max_model_len": 2048,
        "conversations": [{"match": "How many functions", "responses": [{"content": "9"}]}],
    }
    with ScriptedServer(script, model_names=["scripted"]) as server:
        assert served_max_model_len(spec(), server.base_url) == 2048
        sized = {r.check: r for r in run_probe(spec(), server.base_url)}["long prompt (near the context)"]
        guessed = {r.check: r for r in run_probe(spec(), server.base_url, context_tokens=4096)}
    assert sized.passed, sized.detail
    assert "of a 2048-token context (max_model_len from /v1/models)" in sized.detail
    used = int(sized.detail.split()[0])
    assert 1200 < used <= 2048 - 32  # near the context, and inside it: measured by the server's own count
    overflowed = guessed["long prompt (near the context)"]
    assert not overflowed.passed and overflowed.observations[0].failure == "context_overflow"


def test_a_server_that_reports_no_context_falls_back_and_says_so(tmp_path: Path) -> None:
    with ScriptedServer({"conversations": []}, model_names=["scripted"]) as server:
        results = run_probe(spec(), server.base_url)
    long_prompt = results[-1]
    assert "assumed: the server reports no max_model_len (give --context)" in long_prompt.detail


def test_concurrency_and_repeats_catch_a_call_dropped_under_load() -> None:
    """Alone it works; one of the simultaneous copies loses its arguments (a parser dropping tags)."""
    broken = {"tool_calls": [{"name": "read_file", "arguments": '{"path": "READ'}]}
    script = {
        "conversations": [
            {
                "match": READ_README,
                "responses": [{"attempts": [NATIVE_ONE, NATIVE_ONE, NATIVE_ONE, broken, NATIVE_ONE]}],
            },
            {"match": READ_TWO, "responses": [NATIVE_TWO]},
        ]
    }
    with ScriptedServer(script, model_names=["scripted"]) as server:
        alone = run_probe(spec(), server.base_url, tool_checks_only=True)
        loaded = run_probe(spec(), server.base_url, repeat=2, concurrency=3, tool_checks_only=True)
    assert [r.check for r in alone] == [
        "one tool call",
        "one tool call, streamed",
        "parallel tool calls",
        "parallel tool calls, streamed",
    ]
    assert all(r.passed for r in alone)
    one = {r.check: r for r in loaded}["one tool call"]
    assert len(one.observations) == 6 and not one.passed
    assert one.detail.startswith("5/6 runs passed (invalid 1, native 5)")
    assert shape_counts(loaded, stream=False) == {"native": 11, "invalid": 1}


def test_a_call_that_leaks_only_when_streamed_shows_in_the_shapes() -> None:
    leaked = {"content": '<tool_call>\n{"name": "read_file", "arguments": {"path": "README.md"}}\n</tool_call>'}
    script = {"conversations": [{"match": READ_README, "responses": [{**NATIVE_ONE, "streamed": leaked}]}]}
    with ScriptedServer(script, model_names=["scripted"]) as server:
        results = {r.check: r for r in run_probe(spec(), server.base_url, tool_checks_only=True)}
    assert results["one tool call"].observations[0].shape == "native"
    assert results["one tool call, streamed"].observations[0].shape == "leaked"
    assert results["one tool call, streamed"].passed  # recovered by the openai parser: passes, but is not native


def test_think_leaks_are_seen() -> None:
    leaked = {"content": "<think>which file?</think>", **NATIVE_ONE}
    script = {"conversations": [{"match": READ_README, "responses": [leaked]}]}
    with ScriptedServer(script, model_names=["scripted"]) as server:
        results = {r.check: r for r in run_probe(spec(), server.base_url, tool_checks_only=True)}
    assert results["one tool call"].observations[0].think_leak
    parsed = {r.check: r for r in run_probe(spec(reasoning_parser="qwen3"), server.base_url, tool_checks_only=True)}
    assert not parsed["one tool call"].observations[0].think_leak


def test_the_served_context_is_the_aliass_models() -> None:
    with ScriptedServer({"max_model_len": 1024, "conversations": []}, model_names=["scripted"]) as server:
        assert served_max_model_len(spec(), server.base_url) == 1024
        assert served_max_model_len(spec(model="other"), server.base_url) is None
    assert served_max_model_len(spec(), "http://127.0.0.1:9/v1") is None  # nothing listens: unknown, not an error
