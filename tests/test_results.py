"""Per-run records, the durable JSONL log, the xdist merge and pytest-benchmark JSON.

Real records come from running the scripted server (a test double, not a
model) on bugfix-median with the ``good`` and ``noop`` trajectories; records
with exact numbers (the course's worked cost example) are built directly.
The helpers here are shared by test_summary.py and test_report.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.transcript import AgentResult, Turn
from pytest_agentbench.capacity.cost import parse_cost_spec
from pytest_agentbench.errors import ModelsFileError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.calls import Usage
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.packets.gates import GateResult
from pytest_agentbench.packets.schema import Packet, load_packet
from pytest_agentbench.reports.html import write_html
from pytest_agentbench.results.benchmark import benchmark_json, write_benchmark_json
from pytest_agentbench.results.jsonl import (
    RESULTS_FILE,
    JsonlWriter,
    ResultsWarning,
    completed_trials,
    load_records,
    merge_jsonl,
    worker_files,
    worker_results_path,
)
from pytest_agentbench.results.record import SCHEMA_VERSION, RunRecord, new_run_id, record_to_dict
from pytest_agentbench.results.redact import Redactor, worth_redacting
from pytest_agentbench.runner import run_packet
from pytest_agentbench.sandbox import LocalSandbox, SandboxInfo
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX, REPO, SCRIPTS, importorskip_extra

COMMERCIAL = {"input_per_mtok": 3.0, "output_per_mtok": 15.0}
SELF_HOSTED = {"gpu_hourly_usd": 4.5, "concurrency": 4}


# --------------------------------------------------------------------------- shared helpers


def make_spec(alias: str, *, cost: dict[str, Any] | None = None, test_double: bool = False, **kw: Any) -> ModelSpec:
    return ModelSpec(
        alias=alias,
        model=f"model-{alias}",
        source=Path("models.yaml"),
        cost=parse_cost_spec(cost, f"models.yaml: models.{alias}.cost", error=ModelsFileError),  # as the loader does
        cost_raw=dict(cost or {}),
        test_double=test_double,
        **kw,
    )


@cache
def packet() -> Packet:
    return load_packet(BUGFIX)


def _real_run(script: str, spec: ModelSpec) -> RunRecord:
    with ScriptedServer(SCRIPTS / script) as server:
        adapter = ModelAdapter(spec, base_url=server.base_url)
        try:
            return run_packet(packet(), spec, adapter, lambda p: LocalSandbox(p.workspace))
        finally:
            adapter.close()


@cache
def real_records() -> tuple[RunRecord, RunRecord]:
    """(good, noop) on bugfix-median over real HTTP: good is streamed and priced per token,
    noop is not streamed and priced per GPU hour. Cached: each test module reuses the two runs."""
    good = _real_run("good", make_spec("scripted-good", cost=COMMERCIAL, test_double=True, stream=True))
    noop = _real_run("noop", make_spec("scripted-noop", cost=SELF_HOSTED, test_double=True))
    return good, noop


def make_record(
    alias: str = "a",
    *,
    calls: list[tuple[float, float | None, int, int]] = ((1.0, None, 100, 10),),
    passed: bool = True,
    outcome: str = "finished",
    failure: str | None = None,
    cost: dict[str, Any] | None = None,
    test_double: bool = False,
    wall_s: float | None = None,
    usage_reported: bool = True,
    content: str = "",
    error: str = "",
    api_key_env: str | None = None,
    extra: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> RunRecord:
    """A RunRecord with exact numbers: one Turn per (wall_s, ttft_s, prompt_tokens, completion_tokens)."""
    turns = [
        Turn(
            i,
            w,
            content=content if i == 0 else "",
            ttft_s=t,
            usage=Usage(p, c, 0, usage_reported),
            error=failure if (failure and i == len(calls) - 1) else None,
        )
        for i, (w, t, p, c) in enumerate(calls)
    ]
    agent_wall = sum(w for w, *_ in calls) + 0.5
    gates = [
        GateResult(
            "regression",
            "python -m pytest -q tests/test_median_hidden.py",
            0,
            0 if passed else 1,
            passed,
            0.8,
            "" if passed else "E   assert 3 == 2.5\n1 failed",
        ),
        GateResult("existing-tests", "python -m pytest -q tests", 0, 0, True, 0.7, "", guard=True),
    ]
    spec = make_spec(alias, cost=cost, test_double=test_double, api_key_env=api_key_env)
    return RunRecord(
        run_id=run_id or new_run_id(),
        packet=packet(),
        spec=spec,
        agent=AgentResult(outcome, turns, agent_wall, failure=failure, error=error),
        gates=gates,
        sandbox=SandboxInfo("local", "process-group"),
        wall_s=wall_s if wall_s is not None else agent_wall + 1.5,
        extra=dict(extra or {}),
    )


def worked_example_records() -> list[dict[str, Any]]:
    """The course's worked example as two runs of one call each.

    commercial: 3,000 in + 600 out at $3/M in, $15/M out -> 0.009 + 0.009 = $0.018
    self-hosted: 12 s on a $4.5/h GPU shared by 4 calls -> 4.5 x 12 / 3600 / 4 = $0.00375
    """
    api = make_record("gpt-baseline", calls=[(2.0, 0.4, 3000, 600)], cost=COMMERCIAL)
    local = make_record("local-coder", calls=[(12.0, 0.9, 3000, 600)], cost=SELF_HOSTED)
    return [record_to_dict(api), record_to_dict(local)]


def as_dicts() -> list[dict[str, Any]]:
    return [record_to_dict(r) for r in real_records()]


# --------------------------------------------------------------------------- record_to_dict


def test_real_good_run_record_is_json_with_every_field() -> None:
    good, _ = real_records()
    d = record_to_dict(good)
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["schema_version"] == SCHEMA_VERSION and d["run_id"] == good.run_id
    assert d["packet"] == {"id": "bugfix-median", "kind": "bug-fix", "version": 1}
    assert (d["alias"], d["model"], d["test_double"]) == ("scripted-good", "model-scripted-good", True)
    assert d["outcome"] == "finished" and d["failure"] is None and d["passed"] is True
    assert [(g["id"], g["guard"], g["passed"], g["exit"], g["expected"], g["timed_out"]) for g in d["gates"]] == [
        ("regression", False, True, 0, 0, False),
        ("existing-tests", True, True, 0, 0, False),
    ]
    assert all(g["duration_s"] > 0 for g in d["gates"])
    assert d["turns"] == d["model_calls"] == 5 and d["invalid_tool_calls"] == 0
    client = d["client"]
    assert client["wall_s"] >= client["agent_wall_s"] >= client["model_wall_s"] > 0
    assert len(client["calls"]) == 5
    # streamed: time to first token was measured on every call, and it is within the call's wall time
    assert all(c["ttft_s"] is not None and 0 <= c["ttft_s"] <= c["wall_s"] for c in client["calls"])
    tokens = client["tokens"]
    assert tokens["prompt"] == sum(c["prompt_tokens"] for c in client["calls"]) > 0
    assert tokens["completion"] == sum(c["completion_tokens"] for c in client["calls"]) > 0
    assert tokens["usage_reported"] is True
    assert d["server"] is None  # no /metrics scrape for a scripted server
    # commercial price: tokens x $/M
    expected = (tokens["prompt"] * 3.0 + tokens["completion"] * 15.0) / 1e6
    assert d["cost"]["kind"] == "commercial" and d["cost"]["usd"] == pytest.approx(expected)
    assert d["sandbox"]["kind"] == "local" and d["sandbox"]["isolation"]
    assert d["versions"]["agentbench"] and d["versions"]["python"].startswith("3.")
    assert d["timestamp"] > d["started_at"] and d["timestamp"].endswith("+00:00")
    assert "[tool finish]" in d["transcript"]


def test_real_noop_run_ttft_not_measured_is_none_and_gpu_cost_from_call_time() -> None:
    _, noop = real_records()
    d = record_to_dict(noop)
    assert d["passed"] is False and d["outcome"] == "finished"
    assert all(c["ttft_s"] is None for c in d["client"]["calls"])  # not streamed: unknown, never 0
    regression = d["gates"][0]
    assert regression["passed"] is False and regression["exit"] == 1 and "assert" in regression["output_tail"]
    model_s = sum(t.wall_s for t in noop.agent.turns)
    assert d["cost"]["kind"] == "self-hosted"
    assert d["cost"]["usd"] == pytest.approx(4.5 * model_s / 3600 / 4, rel=1e-6)


def test_worked_example_flows_through_record_to_dict() -> None:
    api, local = worked_example_records()
    assert api["cost"]["usd"] == pytest.approx(0.018)  # 3,000 x 3/1e6 + 600 x 15/1e6
    assert local["cost"]["usd"] == pytest.approx(0.00375)  # 4.5 x 12 / 3600 / 4
    assert api["cost"]["describe"] == "$3/M in, $15/M out"
    assert local["cost"]["spec"] == SELF_HOSTED


def test_cost_unknown_is_none_never_zero() -> None:
    d = record_to_dict(make_record("free?", cost=None))
    assert d["cost"]["usd"] is None and d["cost"]["kind"] is None and "unknown" in d["cost"]["basis"]
    # a commercial server that reported no usage: the zero token counts are unknowns
    d = record_to_dict(make_record("api", cost=COMMERCIAL, usage_reported=False))
    assert d["cost"]["usd"] is None and d["client"]["tokens"]["usage_reported"] is False


def test_bad_cost_mapping_is_refused_with_the_reason() -> None:
    # parsed once, when the alias is loaded: a bad cost: mapping never reaches a record
    with pytest.raises(ModelsFileError, match=r"models\.x\.cost: missing 'concurrency'"):
        make_record("x", cost={"gpu_hourly_usd": 4.5})  # concurrency missing


def test_model_error_is_recorded_with_its_class() -> None:
    d = record_to_dict(
        make_record("a", passed=False, outcome="model_error", failure="rate_limited", error="429 after 3 retries")
    )
    assert (d["outcome"], d["failure"], d["error"]) == ("model_error", "rate_limited", "429 after 3 retries")
    assert d["failures_by_class"] == {"rate_limited": 1}
    assert d["client"]["calls"][-1]["error"] == "rate_limited"


def test_server_metrics_go_to_the_server_side_dict() -> None:
    d = record_to_dict(
        make_record(
            extra={
                "server_metrics": {"ttft_p50": 0.02, "prompt_tokens": 19, "histogram": object()},
                "worker": "gw3",
                "nodeid": "p/packet.yaml::test_packet[p-a]",
            }
        )
    )
    assert d["server"] == {"ttft_p50": 0.02, "prompt_tokens": 19}  # non-JSON values dropped
    assert (d["worker"], d["nodeid"]) == ("gw3", "p/packet.yaml::test_packet[p-a]")


def test_transcript_is_capped_and_optional() -> None:
    long = "x" * 50_000
    d = record_to_dict(make_record(content=long))
    assert len(d["transcript"]) < 20_200 and "characters cut" in d["transcript"]
    assert "transcript" not in record_to_dict(make_record(), transcript=False)


def test_api_key_value_never_reaches_the_jsonl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-agentbench-SECRET-9731"
    monkeypatch.setenv("AB_RESULTS_KEY", secret)
    # the model echoed the key (e.g. after `env` in the sandbox) and it landed in the error text too
    rec = make_record(
        "api",
        api_key_env="AB_RESULTS_KEY",
        content=f"I found OPENAI_API_KEY={secret}",
        error=f"server said: bad key {secret}",
        extra={"note": secret},
    )
    d = record_to_dict(rec)
    writer = JsonlWriter(tmp_path / "r.jsonl")
    writer.write(d)
    data = (tmp_path / "r.jsonl").read_bytes()
    assert secret.encode() not in data
    assert "OPENAI_API_KEY=***" in d["transcript"]


def test_api_key_not_in_jsonl_for_a_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-agentbench-REAL-5150"
    monkeypatch.setenv("AB_RESULTS_KEY", secret)
    script = {
        "conversations": [
            {
                "responses": [
                    {
                        "content": f"my key is {secret}",
                        "tool_calls": [{"name": "finish", "arguments": {"summary": secret}}],
                    }
                ]
            }
        ]
    }
    spec = make_spec("k", api_key_env="AB_RESULTS_KEY", cost=COMMERCIAL)
    with ScriptedServer(script) as server:
        adapter = ModelAdapter(spec, base_url=server.base_url)
        try:
            rec = run_packet(packet(), spec, adapter, lambda p: LocalSandbox(p.workspace))
        finally:
            adapter.close()
    assert secret in rec.agent.transcript()  # the raw record has it ...
    JsonlWriter(tmp_path / "r.jsonl").write(record_to_dict(rec))
    assert secret.encode() not in (tmp_path / "r.jsonl").read_bytes()  # ... the log does not


# --------------------------------------------------------------------------- the session's redactor


def test_redactor_covers_every_alias_key_and_secret_looking_names() -> None:
    environ = {
        "COURSE_CRED_A": "alias-a-value-7781",  # api_key_env of the selected alias: a name that looks harmless
        "COURSE_CRED_B": "alias-b-value-1250",  # ... of an alias not selected in this run
        "ANTHROPIC_API_KEY": "sk-ant-other-9921",  # another provider's key: found by its name alone
        "GH_token": "ghp_lowercase_name_31",  # names match in any case
        "DB_PASSWORD": "correct horse battery",
        "HOME": "/root/not-a-secret-home",  # not a secret name: kept
    }
    specs = [make_spec("a", api_key_env="COURSE_CRED_A"), make_spec("b", api_key_env="COURSE_CRED_B"), make_spec("c")]
    redactor = Redactor.from_environment(specs, environ)
    text = " | ".join(environ.values())
    assert redactor.text(text) == "*** | *** | *** | *** | *** | /root/not-a-secret-home"
    assert len(redactor) == 5 and "HOME" not in redactor.names
    assert "sk-ant" not in repr(redactor)  # names only, never values


@pytest.mark.parametrize(
    "value",
    ["false", "1", "4096", "us", "EMPTY", "dummy", "xxxxxxxx", "00000000", "abcabcabc", "  short  "],
)
def test_noise_rule_short_or_uniform_values_are_not_secrets(value: str) -> None:
    environ = {"TOKENIZERS_PARALLELISM": value, "KEYBOARD": value, "MY_API_KEY": value}
    redactor = Redactor.from_environment([make_spec("a", api_key_env="MY_API_KEY")], environ)
    assert not redactor and len(redactor) == 0
    assert redactor.text(f"value={value}") == f"value={value}"
    assert not worth_redacting(value)


def test_noise_rule_keeps_values_of_useful_length() -> None:
    for value in ("sk-12345", "abcd1234", "hunter2!", "p4ss w0rd"):
        assert worth_redacting(value)
        assert Redactor([value]).text(f"<{value}>") == "<***>"


def test_escaped_forms_and_nested_secrets_are_replaced_whole() -> None:
    quoted = 'pa"ss\\word<&>-1'
    redactor = Redactor([quoted, "sk-inner-4242", "prefix-sk-inner-4242-suffix"])
    as_json = json.dumps({"cmd": f"echo {quoted}"})
    assert quoted not in json.loads(redactor.text(as_json))["cmd"]  # JSON-escaped form
    assert redactor.text("a pa&quot;ss\\word&lt;&amp;&gt;-1 b") == "a *** b"  # HTML-escaped form
    assert redactor.text("?key=pa%22ss%5Cword%3C%26%3E-1") == "?key=***"  # URL-quoted form
    assert redactor.text("x prefix-sk-inner-4242-suffix y sk-inner-4242") == "x *** y ***"  # longest first


def test_redactor_walks_json_like_data_keys_included() -> None:
    redactor = Redactor(["sk-data-5150"])
    data = {"sk-data-5150": ["sk-data-5150!", ("k", "sk-data-5150")], "n": 3, "ok": True, "none": None}
    assert redactor(data) == {"***": ["***!", ("k", "***")], "n": 3, "ok": True, "none": None}
    assert Redactor()(data) is data  # nothing to hide: the same object back


def test_redactor_rewrites_a_file_in_place(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("start --api-key sk-log-77889\nready\n")
    assert Redactor(["sk-log-77889"]).file(log)
    assert log.read_text() == "start --api-key ***\nready\n"
    assert not Redactor(["sk-log-77889"]).file(log)  # clean already: not rewritten
    assert not Redactor(["sk-log-77889"]).file(tmp_path / "missing.log")


def test_session_redactor_hides_another_providers_key_in_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-record-6060")
    rec = make_record("a", content="env: ANTHROPIC_API_KEY=sk-ant-record-6060", error="sk-ant-record-6060")
    for d in (record_to_dict(rec), record_to_dict(rec, redactor=Redactor.from_environment([rec.spec]))):
        assert "sk-ant-record-6060" not in json.dumps(d)
        assert "ANTHROPIC_API_KEY=***" in d["transcript"] and d["error"] == "***"


def test_html_report_is_redacted_including_escaped_forms(tmp_path: Path) -> None:
    secret = "sk-<html>&-3141"
    rec = record_to_dict(make_record("a", passed=False, content=f"I print {secret}"), redactor=Redactor())
    assert secret in rec["transcript"]  # an older record written without a redactor
    page = write_html([rec], tmp_path / "r.html", redactor=Redactor([secret])).read_text()
    assert secret not in page and "sk-&lt;html&gt;&amp;-3141" not in page and "I print ***" in page


# --------------------------------------------------------------------------- JSONL


def _rec(run_id: str, ts: str, packet_id: str = "p", alias: str = "a", **kw: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "timestamp": ts,
        "packet": {"id": packet_id},
        "alias": alias,
        "client": {"wall_s": 1.0},
        **kw,
    }


def test_writer_appends_one_fsynced_line_per_record(tmp_path: Path) -> None:
    path = worker_results_path(tmp_path / "results", "gw0")
    assert path == tmp_path / "results" / "results-gw0.jsonl"
    assert worker_results_path(tmp_path, None).name == "results-main.jsonl"
    writer = JsonlWriter(path)
    for i in range(3):
        writer.write(_rec(f"r{i}", f"2026-01-01T00:00:0{i}+00:00"))
    data = path.read_text()
    assert data.count("\n") == 3 and data.endswith("\n")
    assert [r["run_id"] for r in load_records(path)] == ["r0", "r1", "r2"]
    # a second writer (a resumed worker) appends
    JsonlWriter(path).write(_rec("r3", "2026-01-01T00:00:03+00:00"))
    assert len(load_records(path)) == 4


def test_writer_seals_a_partial_line_left_by_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "results-gw1.jsonl"
    path.write_text(json.dumps(_rec("r0", "2026-01-01T00:00:00+00:00")) + "\n" + '{"run_id": "cut", "time')
    JsonlWriter(path).write(_rec("r1", "2026-01-01T00:00:01+00:00"))
    problems: list[str] = []
    records = load_records(path, on_problem=problems.append)
    assert [r["run_id"] for r in records] == ["r0", "r1"]
    assert len(problems) == 1 and ":2: skipped" in problems[0] and "not valid JSON" in problems[0]


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "results-gw0.jsonl"
    path.write_text(json.dumps(_rec("r0", "2026-01-01T00:00:00+00:00")) + "\n" + '{"run_id": "r1", "alia')
    with pytest.warns(ResultsWarning, match="truncated last line"):
        records = load_records(path)
    assert [r["run_id"] for r in records] == ["r0"]


def test_merge_sorts_by_time_dedups_by_run_id_and_survives_garbage(tmp_path: Path) -> None:
    d = tmp_path / "results"
    w0, w1 = JsonlWriter(worker_results_path(d, "gw0")), JsonlWriter(worker_results_path(d, "gw1"))
    w0.write(_rec("b", "2026-01-01T00:00:02+00:00"))
    w1.write(_rec("a", "2026-01-01T00:00:01+00:00"))
    w1.write(_rec("c", "2026-01-01T00:00:03+00:00", alias="z"))
    w0.write(_rec("a", "2026-01-01T00:00:01+00:00"))  # the same run seen twice
    with worker_results_path(d, "gw1").open("a") as f:
        f.write("[1, 2]\nnot json\n")
    problems: list[str] = []
    out = d / RESULTS_FILE
    merged = merge_jsonl([*worker_files(d), d / "results-gw9.jsonl"], out, on_problem=problems.append)
    assert [r["run_id"] for r in merged] == ["a", "b", "c"]
    assert [r["run_id"] for r in load_records(out)] == ["a", "b", "c"]
    assert len(problems) == 2 and any("expected a JSON object" in p for p in problems)
    # merging again, with the merged file among the parts, gives the same file
    merge_jsonl([out, *worker_files(d)], out, on_problem=problems.append)
    assert [r["run_id"] for r in load_records(out)] == ["a", "b", "c"]
    assert not list(d.glob(".*.tmp"))


def test_completed_trials_for_resume(tmp_path: Path) -> None:
    assert completed_trials(tmp_path / "nothing-yet") == set()
    d = tmp_path / "results"
    JsonlWriter(worker_results_path(d, "gw0")).write(_rec("1", "2026-01-01T00:00:00+00:00", "p1", "a"))
    JsonlWriter(worker_results_path(d, "gw1")).write(_rec("2", "2026-01-01T00:00:01+00:00", "p2", "b"))
    # no repeat: trial 1; no agent: the built-in one
    assert completed_trials(d) == {("p1", "a", "builtin", 1), ("p2", "b", "builtin", 1)}
    merge_jsonl(worker_files(d), d / RESULTS_FILE)
    assert completed_trials(d / RESULTS_FILE) == {("p1", "a", "builtin", 1), ("p2", "b", "builtin", 1)}


WRITER = textwrap.dedent("""
    import sys, itertools
    from pytest_agentbench.results.jsonl import JsonlWriter
    writer = JsonlWriter(sys.argv[1])
    for i in itertools.count():
        writer.write({"run_id": f"r{i}", "timestamp": f"2026-01-01T00:00:00.{i:06d}+00:00",
                      "packet": {"id": "p"}, "alias": "a", "pad": "x" * 400_000})
        if i == 2:
            print("ready", flush=True)
""")


def test_killed_writer_loses_at_most_the_line_it_was_writing(tmp_path: Path) -> None:
    path = tmp_path / "results-gw0.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    data = path.read_bytes()
    complete = data.count(b"\n")
    assert complete >= 3
    problems: list[str] = []
    merged = merge_jsonl([path], tmp_path / RESULTS_FILE, on_problem=problems.append)
    assert [r["run_id"] for r in merged] == [f"r{i}" for i in range(complete)]  # every complete line kept
    assert len(problems) == (0 if data.endswith(b"\n") else 1)
    # a truncated tail, as a kill mid-write leaves it, is skipped with a warning and never crashes
    with path.open("ab") as f:
        f.write(b'{"run_id": "half", "pad": "xxxx')
    problems.clear()
    merged = merge_jsonl([path], tmp_path / RESULTS_FILE, on_problem=problems.append)
    assert len(merged) == complete and problems and "truncated last line" in problems[-1]


# --------------------------------------------------------------------------- pytest-benchmark JSON


def _same(ours: Any, theirs: Any) -> bool:
    return ours == pytest.approx(theirs) if isinstance(theirs, float) else ours == theirs


def test_benchmark_stats_match_pytest_benchmark() -> None:
    Stats = importorskip_extra("pytest_benchmark.stats", "benchmark").Stats

    walls = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0]
    records = [record_to_dict(make_record("a", wall_s=w)) for w in walls]
    out = benchmark_json(records, {"node": "test"}, commit_info={"id": "abc"})
    (bench,) = out["benchmarks"]
    reference = Stats()
    for w in walls:
        reference.update(w)
    for key, value in reference.as_dict().items():
        assert _same(bench["stats"][key], value), key
    assert bench["stats"]["rounds"] == 7 and bench["stats"]["data"] == pytest.approx(walls)
    assert bench["group"] == "bugfix-median" and bench["name"] == "test_packet[bugfix-median-a]"
    assert bench["params"] == {"packet": "bugfix-median", "alias": "a"}
    info = bench["extra_info"]
    assert info["agentbench.runs"] == 7 and info["agentbench.pass_rate"] == 1.0
    assert info["agentbench.ttft_p50_s"] is None  # not streamed: not measured
    assert out["machine_info"] == {"node": "test"} and out["commit_info"] == {"id": "abc"}
    for n in (1, 2, 4, 5, 6):  # quartile methods for every n mod 4, and the single-round case
        ref = Stats()
        for w in walls[:n]:
            ref.update(w)
        (b,) = benchmark_json([record_to_dict(make_record(wall_s=w)) for w in walls[:n]], {}, commit_info={})[
            "benchmarks"
        ]
        for key, value in ref.as_dict().items():
            assert _same(b["stats"][key], value), (n, key)


def test_pytest_benchmark_compare_reads_our_file(tmp_path: Path) -> None:
    importorskip_extra("pytest_benchmark", "benchmark")
    records = as_dicts() + worked_example_records() + [record_to_dict(make_record("gpt-baseline", wall_s=3.0))]
    path = write_benchmark_json(records, tmp_path / "0001_agentbench.json")
    data = json.loads(path.read_text())
    assert {b["param"] for b in data["benchmarks"]} == {
        "bugfix-median-scripted-good",
        "bugfix-median-scripted-noop",
        "bugfix-median-gpt-baseline",
        "bugfix-median-local-coder",
    }
    cli = Path(sys.executable).with_name("pytest-benchmark")
    result = subprocess.run(
        [str(cli), "compare", str(path), "--columns=min,max,mean,median,rounds"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "Failed to load" not in out
    for name in ("scripted-good", "scripted-noop", "gpt-baseline", "local-coder"):
        assert f"test_packet[bugfix-median-{name}]" in out, out
    assert "bugfix-median" in out  # the group header
