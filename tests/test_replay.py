"""Agent-trace replay: what a run records (``--agentbench-keep-requests``), reading it back, and
``agentbench replay`` at N = 1, 2, 4 reproducing the recorded prompt token totals exactly.

The recorded run is a real pytest session with the plugin (a subprocess, once per module) over the
five built-in packets against the scripted server (a test double over real HTTP on 127.0.0.1); the
replays go to a fresh scripted server with the same script. One test (marked vllm + slow) replays a
recorded session against vLLM on CPU with the tiny random-weight model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.capacity.replay import Replay, ReplayConfig
from pytest_agentbench.capacity.trace import RequestRecorder, load_sessions
from pytest_agentbench.cli import replay as replay_cli
from pytest_agentbench.errors import ConfigError, ModelCallError
from pytest_agentbench.models.calls import Completion, ParsedMessage, Usage
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.serving.scripted import ScriptedServer

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "examples" / "scripted" / "good"
PACKETS = ("bugfix-median", "cli-todo-search", "docs-retry-options", "refactor-pricing", "testgen-durations")


def scripted_tokens(messages: list[dict[str, Any]]) -> int:
    """The scripted double's prompt count: len(JSON of the messages) / 4, at least 1."""
    return max(1, (len(json.dumps(messages)) + 3) // 4)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results.jsonl of a pytest run over the five built-in packets with --agentbench-keep-requests."""
    root = tmp_path_factory.mktemp("recorded")
    shutil.copytree(REPO / "task_packets", root / "packets")
    shutil.copytree(SCRIPT, root / "script")
    (root / "models.yaml").write_text(
        "models:\n  good:\n    model: scripted-good\n    serve: {engine: scripted, script: script}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--models", "good", "--packets", "packets"]
        + ["--sandbox", "local", "--agentbench-keep-requests", "--agentbench-results", "out"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return root / "out" / "results.jsonl"


def models_file(tmp_path: Path, **alias: Any) -> Path:
    shutil.copytree(SCRIPT, tmp_path / "script", dirs_exist_ok=True)
    path = tmp_path / "models.yaml"
    body = {"model": "scripted-good", "serve": {"engine": "scripted", "script": "script"}, **alias}
    path.write_text(yaml.safe_dump({"models": {"good": body}}))
    return path


# --------------------------------------------------------------------------- what a run records


@pytest.mark.slow  # the recorded run: a pytest session over five packets (~25 s here)
def test_the_record_keeps_every_call_as_sent(recorded: Path) -> None:
    records = [json.loads(line) for line in recorded.read_text().splitlines()]
    assert sorted(r["packet"]["id"] for r in records) == list(PACKETS)
    for record in records:
        replay = record["replay"]
        assert replay["format"] == "agentbench-replay/1" and replay["truncated"] is None
        assert len(replay["calls"]) == record["model_calls"] and len(replay["tool_sets"]) == 1
        messages: list[dict[str, Any]] = []
        for i, call in enumerate(replay["calls"]):
            assert call["keep"] == len(messages)  # an agent's conversation only grows: nothing stored twice
            messages = messages[: call["keep"]] + call["new"]
            # the rebuilt messages are the ones the server counted: exactly its prompt tokens
            assert scripted_tokens(messages) == call["prompt_tokens"] == record["client"]["calls"][i]["prompt_tokens"]
            assert call["end_s"] >= call["start_s"] >= (replay["calls"][i - 1]["end_s"] if i else 0.0)
        assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
        assert sum(len(json.dumps(c["new"])) for c in replay["calls"]) == replay["messages_chars"]


@pytest.mark.slow  # the recorded run: a pytest session over five packets (~25 s here)
def test_sessions_rebuild_the_calls_in_order(recorded: Path) -> None:
    sessions = load_sessions(recorded)
    assert [s.packet for s in sessions] == [json.loads(x)["packet"]["id"] for x in recorded.read_text().splitlines()]
    for s in sessions:
        assert s.skipped == 0 and s.calls[0].think_s == 0.0
        assert all(c.think_s >= 0 for c in s.calls) and any(c.think_s > 0 for c in s.calls[1:])  # tool commands ran
        lengths = [len(c.messages) for c in s.calls]
        assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths)  # each call resends the last + more
        assert all(c.tools and c.tools[0]["type"] == "function" for c in s.calls)
    assert load_sessions(recorded, packets=["bugfix-median"])[0].packet == "bugfix-median"
    with pytest.raises(ConfigError, match="--packet: no recorded run of nope"):
        load_sessions(recorded, packets=["nope"])
    with pytest.raises(ConfigError, match="none of its 0 run"):
        load_sessions(recorded, alias="other")


# --------------------------------------------------------------------------- the acceptance: N = 1, 2, 4


@pytest.mark.slow  # the recorded run: a pytest session over five packets (~25 s here)
def test_replay_at_1_2_4_developers_reproduces_the_prompt_token_totals(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    records = [json.loads(line) for line in recorded.read_text().splitlines()]
    prompt = sum(r["client"]["tokens"]["prompt"] for r in records)
    completion = sum(r["client"]["tokens"]["completion"] for r in records)
    out = tmp_path / "out"
    argv = [str(recorded), "--models-file", str(models_file(tmp_path)), "--models", "good", "--developers", "1,2,4"]
    code = replay_cli.main([*argv, "--think-scale", "0.2", "--goodput", "ttft:5000", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads((out / "replay.json").read_text())
    assert data["settings"]["recorded_prompt_tokens"] == prompt
    assert [lv["devs"] for lv in data["levels"]] == [1, 2, 4]
    for lv in data["levels"]:
        n = lv["devs"]
        assert lv["completed"] == lv["requests"] == n * sum(r["model_calls"] for r in records)
        assert lv["prompt_tokens"] == n * prompt  # exactly: the recorded prompts, N times
        assert lv["completion_tokens"] == n * completion  # the same script answers the same calls alike
        assert lv["checks"][0]["name"] == "trace" and lv["checks"][0]["status"] == "ok"
        assert lv["cached_tokens"] == 0  # the scripted double has no prefix cache: reported, not hidden
        assert lv["goodput"]["completed"] == lv["completed"]
    table = [line for line in stdout.splitlines() if not line.startswith("written:")]
    assert all(len(line) <= 100 for line in table), max(table, key=len)
    assert f"prompt tokens {4 * prompt:,} vs recorded {prompt:,} x 4" in stdout
    assert (out / "replay.html").read_text().count("<svg") == 2


@pytest.mark.slow  # the recorded run: a pytest session over five packets (~25 s here)
def test_a_replay_sends_exactly_the_recorded_calls_in_order(recorded: Path) -> None:
    sessions = load_sessions(recorded)
    with ScriptedServer(SCRIPT, model_names=["scripted-good"]) as srv:
        spec = ModelSpec(alias="good", model="scripted-good", source=Path("t"), base_url=srv.base_url)
        config = ReplayConfig(spec=spec, sessions=tuple(sessions), devs=(1,), think_scale=0.0)
        Replay(config, srv.base_url).run()
        sent = [r["messages"] for r in srv.requests]
    assert sent == [list(c.messages) for s in sessions for c in s.calls]
    for body, call in zip(srv.requests, [c for s in sessions for c in s.calls], strict=True):
        assert body["max_tokens"] == call.completion_tokens and body["tools"] == list(call.tools)


@pytest.mark.slow  # the recorded run: a pytest session over five packets (~25 s here)
def test_think_times_are_replayed_scaled(recorded: Path) -> None:
    sessions = load_sessions(recorded, packets=["bugfix-median"])
    slept: list[float] = []
    with ScriptedServer(SCRIPT, model_names=["scripted-good"]) as srv:
        spec = ModelSpec(alias="good", model="scripted-good", source=Path("t"), base_url=srv.base_url)
        config = ReplayConfig(spec=spec, sessions=tuple(sessions), devs=(2,), think_scale=0.5, rounds=2)
        Replay(config, srv.base_url, sleep=slept.append).run()
    want = [c.think_s * 0.5 for c in sessions[0].calls if c.think_s]
    assert sorted(slept) == sorted(want * 2 * 2)  # two developers x two rounds


# --------------------------------------------------------------------------- the recorder


class _Echo:
    """A model that answers with fixed usage, or fails on the turn it is told to."""

    def __init__(self, fail_at: int | None = None):
        self.calls = 0
        self.fail_at = fail_at

    def complete(self, messages: Any, tools: Any = (), *, max_tokens: Any = None, timeout: Any = None) -> Completion:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ModelCallError("timeout", "too slow")
        return Completion(ParsedMessage("ok"), Usage(len(messages), 2), wall_s=0.01, finish_reason="stop")

    def close(self) -> None:
        pass


def test_the_recorder_stores_conversations_compactly_and_rebuilds_any_edit(tmp_path: Path) -> None:
    clock = iter([0.0, 1.0, 3.0, 3.5, 10.0, 10.5, 20.0, 20.5]).__next__
    rec = RequestRecorder(_Echo(fail_at=4), clock=clock)
    tools = [{"type": "function", "function": {"name": "t", "parameters": {}}}]
    history = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    rec.complete(history, tools, max_tokens=50)
    history.append({"role": "assistant", "content": "a"})
    rec.complete(history, tools, max_tokens=40)
    compacted = [history[0], {"role": "user", "content": "summary"}]  # an agent that compacts its context
    rec.complete(compacted, tools, max_tokens=30)
    with pytest.raises(ModelCallError):
        rec.complete([*compacted, {"role": "user", "content": "more"}], tools)
    data = rec.replay()
    assert [(c["keep"], len(c["new"])) for c in data["calls"]] == [(0, 2), (2, 1), (1, 1), (2, 1)]
    assert len(data["tool_sets"]) == 1 and data["calls"][3]["error"] == "timeout"
    record = {"run_id": "r", "packet": {"id": "p"}, "alias": "a", "model": "m", "replay": data}
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(record) + "\n")
    (session,) = load_sessions(path)
    assert [list(c.messages) for c in session.calls] == [history[:2], history, compacted]
    assert [c.think_s for c in session.calls] == [0.0, 2.0, 6.5]  # starts 0, 3, 10 after ends 1, 3.5
    assert [c.max_tokens for c in session.calls] == [50, 40, 30] and session.skipped == 1  # the failed call


def test_the_recorder_caps_what_it_keeps(tmp_path: Path) -> None:
    rec = RequestRecorder(_Echo(), max_chars=200)
    history = [{"role": "user", "content": "x" * 50}]
    for _ in range(5):
        rec.complete(history, ())
        history = [*history, {"role": "assistant", "content": "y" * 60}]
    data = rec.replay()
    assert data["truncated"].startswith("call 2: over 200 characters")
    assert data["messages_chars"] <= 200 and all(c["new"] is None for c in data["calls"][2:])
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"run_id": "r", "packet": {"id": "p"}, "replay": data}) + "\n")
    (session,) = load_sessions(tmp_path)
    assert len(session.calls) == 2 and session.skipped == 3 and session.truncated


def test_the_replay_field_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_agentbench.agents.transcript import AgentResult
    from pytest_agentbench.packets.schema import discover_packets
    from pytest_agentbench.results.record import RunRecord, record_to_dict
    from pytest_agentbench.sandbox.base import SandboxInfo

    secret = "sk-test-" + "q7Zr" * 8
    monkeypatch.setenv("SOME_API_KEY", secret)
    rec = RequestRecorder(_Echo())
    rec.complete([{"role": "tool", "content": f"env: SOME_API_KEY={secret}"}], ())
    packet = discover_packets([REPO / "task_packets" / "bugfix-median"])[0]
    spec = ModelSpec(alias="a", model="m", source=Path("t"), base_url="http://127.0.0.1:1/v1")
    record = RunRecord("r", packet, spec, AgentResult("stopped", [], 0.1), [], SandboxInfo("local", "x"), 0.1)
    record.extra["replay"] = rec.replay()
    text = json.dumps(record_to_dict(record))
    assert secret not in text and "***" in json.dumps(record_to_dict(record)["replay"])


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rec = RequestRecorder(_Echo())
    rec.complete([{"role": "user", "content": "hi"}], ())
    recorded = tmp_path / "results.jsonl"
    line = {"run_id": "r", "alias": "good", "model": "scripted-good", "packet": {"id": "p"}, "replay": rec.replay()}
    recorded.write_text(json.dumps(line) + "\n")
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"run_id": "r", "alias": "good", "packet": {"id": "p"}}) + "\n")
    models = str(models_file(tmp_path))
    for argv, message in (
        ([str(plain), "--models", "good"], "--agentbench-keep-requests"),
        ([str(tmp_path / "none.jsonl"), "--models", "good"], "no such results file"),
        ([str(recorded), "--models", "good", "--packet", "x"], "--packet: no recorded run of x"),
        ([str(recorded)], "give either --models ALIAS or --base-url"),
    ):
        code = replay_cli.main([*argv, "--models-file", models, "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, err
    with pytest.raises(SystemExit):
        replay_cli.main([str(recorded), "--models", "good", "--developers", "0"])
    assert "--developers" in capsys.readouterr().err


# --------------------------------------------------------------------------- real vLLM on CPU


@pytest.mark.vllm
@pytest.mark.slow
def test_real_vllm_replay_reconciles_and_scales(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    recorded: Path,
    tiny_model: Path,
) -> None:
    """The recorded bugfix-median agent session (5 growing calls) against vLLM at N = 1, 2."""
    monkeypatch.chdir(tmp_path)  # the server log goes to ./.agentbench/logs
    serve = {
        "engine": "vllm",
        "model_path": str(tiny_model),
        "startup_timeout_s": 600,
        "args": {
            "load_format": "dummy",
            "max_model_len": 4096,
            "max_num_seqs": 8,
            "enable_auto_tool_choice": True,  # the trace sends tools: vLLM refuses them without a parser
            "tool_call_parser": "hermes",
        },
    }
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": {"tiny": {"model": "tiny", "serve": serve}}}))
    out = tmp_path / "out"
    code = replay_cli.main(
        [str(recorded), "--models", "tiny", "--packet", "bugfix-median", "--developers", "1,2", "--ignore-eos"]
        + ["--think-scale", "0", "--out", str(out)]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    print(stdout)
    data = json.loads((out / "replay.json").read_text())
    recorded_out = data["settings"]["recorded_completion_tokens"]
    one, two = data["levels"]
    assert two["prompt_tokens"] == 2 * one["prompt_tokens"] > 0  # the same calls, counted alike, twice
    for lv in data["levels"]:
        checks = {c["name"]: c for c in lv["checks"]}
        assert checks["tokens"]["status"] == "ok", checks["tokens"]["detail"]  # client usage = server counters
        assert checks["trace"]["status"] == "ok" and "the first level's" in checks["trace"]["detail"]
        assert lv["completion_tokens"] == lv["devs"] * recorded_out  # ignore_eos: as long as recorded
        assert lv["prefix_cache"] == "reset" and lv["server"]["prefix_cache_hit_rate"] is not None
    # each call resends the last one's prefix: the server's prefix cache serves part of every later call
    assert one["server"]["prefix_cache_hit_rate"] > 0.3
