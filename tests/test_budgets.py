"""Budgets that measure capability, not decode speed: token budgets, --budget=tokens, the safety net.

Over real HTTP against the scripted server (a test double) with known usage per call, through the
loop, the runner and the plugin (pytester).
"""

from __future__ import annotations

import json
import re
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.config import DEFAULT_MAX_TOTAL_TOKENS, AgentConfig, budget_config
from pytest_agentbench.agents.loop import run_agent
from pytest_agentbench.errors import PacketError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.packets.schema import load_packet
from pytest_agentbench.reports.budget import budget_rows, solved_within_budget, tokens_to_solve, within_budget
from pytest_agentbench.reports.summary import format_summary, run_category
from pytest_agentbench.results.record import record_to_dict
from pytest_agentbench.runner import run_packet
from pytest_agentbench.sandbox import LocalSandbox
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX

pytest_plugins = ["pytester"]

SLACK_S = 0.75  # past a deadline: the watchdog's wake-up, the SDK unwinding, a loaded 2-core machine


def step(prompt: int = 400, completion: int = 100, **kw: Any) -> dict[str, Any]:
    """One scripted turn that calls list_files and reports the given usage."""
    return {
        "tool_calls": [{"name": "list_files", "arguments": {}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
        **kw,
    }


def spec(**kw: Any) -> ModelSpec:
    return ModelSpec(alias="t", model="scripted", source=Path("models.yaml"), **kw)


def run(responses: list[dict[str, Any]], config: AgentConfig, **spec_kw: Any):
    with ScriptedServer({"conversations": [{"responses": responses}]}) as server, LocalSandbox(BUGFIX / "repo") as box:
        adapter = ModelAdapter(spec(**spec_kw), base_url=server.base_url, sleep=lambda s: None)
        try:
            result = run_agent("do the task", box, adapter, config)
        finally:
            adapter.close()
        return result, server.requests


def max_tokens_sent(requests: list[dict[str, Any]]) -> list[int | None]:
    return [r.get("max_tokens") for r in requests]


# --------------------------------------------------------------------------- the token budget in the loop


def test_token_budget_ends_the_run_at_the_call_that_spends_it() -> None:
    # 500 tokens a call against 1,200: calls 1 and 2 leave 200, call 3 spends it (its prompt goes over)
    result, requests = run([step()] * 6, AgentConfig(max_total_tokens=1200))
    assert result.outcome == "token_budget" and len(result.turns) == 3 and len(requests) == 3
    assert "token budget of 1,200 used up: 1,500 tokens" in result.error
    b = result.budget
    assert (b.ended_by, b.tokens_used, b.over_by, b.enforced) == ("tokens", 1500, 300, True)
    # each call's max_tokens is the per-call cap clamped to what is left: no completion can go over
    assert max_tokens_sent(requests) == [1200, 700, 200]
    assert b.over_by <= 400  # bounded by the prompt of the last call


def test_an_exactly_spent_budget_makes_no_further_call() -> None:
    # exactly spent after call 2 (2 x 500 = 1,000): no third call, no max_tokens=0 ever sent
    result, requests = run([step()] * 4, AgentConfig(max_total_tokens=1000, max_output_tokens=300))
    assert result.outcome == "token_budget" and len(requests) == 2
    assert max_tokens_sent(requests) == [300, 300]
    assert (result.budget.tokens_used, result.budget.over_by) == (1000, 0)


def test_the_alias_cap_still_applies_under_the_clamp() -> None:
    _, requests = run(
        [step()] * 2 + [{"tool_calls": [{"name": "finish", "arguments": {"summary": "x"}}]}],
        AgentConfig(max_total_tokens=100_000),
        max_tokens=256,
    )
    assert max_tokens_sent(requests) == [256, 256, 256]


def test_a_run_that_finishes_within_its_budget_ended_by_nothing() -> None:
    finish = {"tool_calls": [{"name": "finish", "arguments": {"summary": "ok"}}], "usage": {"prompt_tokens": 50}}
    result, _ = run([step(), finish], AgentConfig(max_total_tokens=10_000))
    assert result.outcome == "finished"
    b = result.budget
    assert b.ended_by is None and b.over_by == 0 and b.enforced
    assert b.tokens_used == 500 + 50 + result.turns[1].usage.completion_tokens


def test_wall_mode_without_token_budget_is_todays_behaviour() -> None:
    result, requests = run([step()] * 5, AgentConfig(max_turns=2))
    assert result.outcome == "max_turns" and max_tokens_sent(requests) == [4096, 4096]
    b = result.budget
    assert b.to_dict() | {"tokens_used": 0} == {
        "mode": "wall",
        "max_turns": 2,
        "max_total_tokens": None,
        "max_total_tokens_from": None,
        "timeout_s": 600.0,
        "safety_timeout_s": None,
        "ended_by": "turns",
        "tokens_used": 0,
        "over_by": None,
        "enforced": True,
        "note": "",
    }
    assert b.tokens_used == 1000 and b.enforced


# --------------------------------------------------------------------------- tokens mode: the wall clock is a net


def test_tokens_mode_on_a_slow_server_ends_on_turns_and_tokens_not_the_wall_clock() -> None:
    slow = [step(delay_s=0.4)] * 4  # every call takes 0.4 s; the packet allows 0.25 s of wall clock
    wall, _ = run(slow, AgentConfig(timeout_s=0.25, max_turns=2))
    assert wall.outcome == "agent_timeout" and wall.budget.ended_by == "wall"  # today: the slow server decides

    limits = dict(timeout_s=0.25, max_output_tokens=4096)
    on_turns, _ = run(slow, budget_config("tokens", max_turns=2, max_total_tokens=None, **limits))
    assert on_turns.outcome == "max_turns" and on_turns.budget.ended_by == "turns", on_turns.error
    assert on_turns.wall_s > 0.8  # past the packet's 0.25 s: the wall clock did not end it
    assert on_turns.budget.safety_timeout_s == 2.5 and on_turns.budget.max_total_tokens == DEFAULT_MAX_TOTAL_TOKENS

    on_tokens, _ = run(slow, budget_config("tokens", max_turns=10, max_total_tokens=900, **limits))
    assert on_tokens.outcome == "token_budget" and on_tokens.budget.ended_by == "tokens"
    assert len(on_tokens.turns) == 2 and on_tokens.wall_s > 0.8


def test_the_safety_net_fires_as_safety_timeout_not_agent_timeout() -> None:
    config = budget_config(
        "tokens", max_turns=5, timeout_s=0.2, max_output_tokens=4096, max_total_tokens=None, safety_factor=3
    )
    assert config.wall_limit_s == pytest.approx(0.6)
    start = time.monotonic()
    result, _ = run([step(delay_s=5)], config)
    assert time.monotonic() - start < 0.6 + SLACK_S + 1
    assert result.outcome == "safety_timeout", result.error
    assert "wall-clock safety net of 0.6 s reached (budget mode tokens: timeout_s 0.2 s x" in result.error
    assert result.budget.ended_by == "safety_timeout" and result.budget.safety_timeout_s == pytest.approx(0.6)
    assert result.failures_by_class() == {"timeout": 1}
    assert result.wall_s <= 0.6 + SLACK_S
    assert run_category({"outcome": "safety_timeout", "passed": False}) == "safety_timeout"


# --------------------------------------------------------------------------- a server without usage


def test_a_server_without_usage_cannot_enforce_the_budget_and_says_so() -> None:
    result, requests = run([step(no_usage=True)] * 3, AgentConfig(max_total_tokens=1000, max_turns=3))
    assert result.outcome == "max_turns"  # the turns still bind
    b = result.budget
    assert b.enforced is False and b.tokens_used is None and b.over_by is None and b.ended_by == "turns"
    assert "call 0 reported no usage" in b.note and "could not be enforced" in b.note
    assert max_tokens_sent(requests) == [1000, 4096, 4096]  # once unknown, what is left is unknown: no clamp
    assert "budget: call 0 reported no usage" in result.transcript()


def test_a_server_without_usage_and_no_token_budget_is_enforced_but_unknown() -> None:
    result, _ = run([step(no_usage=True)] * 2, AgentConfig(max_turns=2))
    assert result.budget.enforced and result.budget.tokens_used is None
    assert "could not be enforced" not in result.budget.note


def test_a_server_that_ignores_the_clamp_is_measured_not_assumed() -> None:
    # asked for at most 1,200 tokens, the hostile server says it sent 2,000: over by what it reported
    result, requests = run([step(400, 2000)] * 3, AgentConfig(max_total_tokens=1200))
    assert max_tokens_sent(requests) == [1200] and result.outcome == "token_budget"
    assert (result.budget.tokens_used, result.budget.over_by) == (2400, 1200)


def test_impossible_usage_makes_the_budget_unenforced_not_refunded() -> None:
    # a negative count would hand tokens back and let the run go on past its budget
    result, requests = run([step(), step(-10_000, 5)] + [step()] * 3, AgentConfig(max_total_tokens=1200, max_turns=4))
    assert result.outcome == "max_turns" and max_tokens_sent(requests) == [1200, 700, 4096, 4096]
    b = result.budget
    assert b.enforced is False and b.tokens_used is None
    assert "call 1 reported impossible usage (-10000 prompt, 5 completion tokens)" in b.note


# --------------------------------------------------------------------------- the record


def _record(budget: str = "tokens", tokens: int | None = None, responses: list[dict[str, Any]] | None = None):
    packet = load_packet(BUGFIX)
    script = {"conversations": [{"responses": responses or [step()] * 40}]}
    with ScriptedServer(script) as server:
        adapter = ModelAdapter(spec(), base_url=server.base_url)
        try:
            return run_packet(
                packet, spec(), adapter, lambda p: LocalSandbox(p.workspace), budget=budget, max_total_tokens=tokens
            )
        finally:
            adapter.close()


def test_the_record_says_which_budget_ended_the_run() -> None:
    record = _record("tokens", tokens=1200)
    data = record_to_dict(record, transcript=False)
    assert data["outcome"] == "token_budget"
    assert data["budget"] == {
        "mode": "tokens",
        "max_turns": 20,
        "max_total_tokens": 1200,
        "max_total_tokens_from": "option",
        "timeout_s": 300.0,
        "safety_timeout_s": 3000.0,
        "ended_by": "tokens",
        "tokens_used": 1500,
        "over_by": 300,
        "enforced": True,
        "note": "",
    }
    props = dict(record.properties())
    assert props["agentbench.ended_by"] == "tokens" and props["agentbench.total_tokens"] == 1500
    assert props["agentbench.budget"] == "tokens" and props["agentbench.budget_enforced"] is True


def test_tokens_mode_without_a_packet_budget_takes_the_documented_default() -> None:
    record = _record("tokens", responses=[step()] * 2)  # then plain text: stopped
    data = record_to_dict(record, transcript=False)["budget"]
    assert data["max_total_tokens"] == DEFAULT_MAX_TOTAL_TOKENS and data["max_total_tokens_from"] == "default"
    assert data["ended_by"] is None and data["over_by"] == 0


def test_budget_config_option_beats_packet_beats_default() -> None:
    base = dict(max_turns=3, timeout_s=10.0, max_output_tokens=100)
    assert budget_config("wall", **base, max_total_tokens=None).max_total_tokens is None
    got = budget_config("wall", **base, max_total_tokens=5000)
    assert (got.max_total_tokens, got.max_total_tokens_from, got.wall_limit_s) == (5000, "packet", 10.0)
    got = budget_config("tokens", **base, max_total_tokens=5000, tokens_override=7000, safety_factor=4)
    assert (got.max_total_tokens, got.max_total_tokens_from, got.wall_limit_s) == (7000, "option", 40.0)
    with pytest.raises(ValueError, match="budget must be one of wall, tokens"):
        budget_config("speed", **base, max_total_tokens=None)  # type: ignore[arg-type]
    for factor in (0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="safety_factor must be a finite number >= 1"):
            budget_config("tokens", **base, max_total_tokens=None, safety_factor=factor)


# --------------------------------------------------------------------------- packet limits


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"lots"', "limits.max_total_tokens: expected an integer, found a string ('lots')"),
        ("150000.5", "limits.max_total_tokens: expected an integer, found a number (150000.5)"),
        ("true", "limits.max_total_tokens: expected an integer, found a boolean"),
        ("200", "limits.max_total_tokens: expected an integer >= 1000, found 200"),
        (".inf", "limits.max_total_tokens: expected an integer, found a number (inf)"),
    ],
)
def test_bad_max_total_tokens_in_a_packet_names_file_and_key(tmp_path: Path, value: str, message: str) -> None:
    packet = tmp_path / "p"
    shutil.copytree(BUGFIX, packet)
    yaml = packet / "packet.yaml"
    text = yaml.read_text()
    assert "limits: {max_turns: 20," in text
    yaml.write_text(text.replace("limits: {max_turns: 20,", f"limits: {{max_total_tokens: {value}, max_turns: 20,"))
    with pytest.raises(PacketError) as info:
        load_packet(packet)
    assert str(info.value).startswith(f"{yaml}: ")
    assert message in str(info.value), str(info.value)


def test_a_packet_budget_loads_and_unknown_limit_keys_still_fail(tmp_path: Path) -> None:
    packet = tmp_path / "p"
    shutil.copytree(BUGFIX, packet)
    yaml = packet / "packet.yaml"
    yaml.write_text(yaml.read_text().replace("limits: {", "limits: {max_total_tokens: 150000, "))
    assert load_packet(packet).limits.max_total_tokens == 150000
    yaml.write_text(yaml.read_text().replace("max_total_tokens: 150000", "max_tokens_total: 150000"))
    with pytest.raises(PacketError, match=r"limits: unknown key\(s\) 'max_tokens_total'.*max_total_tokens"):
        load_packet(packet)


# --------------------------------------------------------------------------- the reports


def _rec(alias: str, outcome: str, passed: bool, tokens: int | None, **budget: Any) -> dict[str, Any]:
    b = {"mode": "tokens", "ended_by": None, "tokens_used": tokens, "over_by": 0, "enforced": True, **budget}
    return {"alias": alias, "outcome": outcome, "passed": passed, "budget": b}


def test_solved_within_budget_and_tokens_to_solve() -> None:
    records = [
        _rec("a", "finished", True, 100),
        _rec("a", "finished", True, 200),
        _rec("a", "max_turns", True, 300, ended_by="turns"),  # passed, but a budget ended it
        _rec("a", "finished", True, 400, over_by=50),  # passed, but its last prompt went over
        _rec("a", "finished", True, None, enforced=False, over_by=None),  # unknown
        _rec("a", "finished", False, 5000),
        {"alias": "a", "outcome": "infrastructure", "passed": False},  # not counted
        {"alias": "b", "outcome": "agent_timeout", "passed": False},  # a record from before budgets
        {"alias": "b", "outcome": "finished", "passed": True, "client": {"tokens": {"prompt": 90, "completion": 10}}},
    ]
    s = solved_within_budget(records, "a")
    assert (s.solved, s.runs, s.unknown) == (2, 6, 1)
    d = tokens_to_solve(records, "a")
    assert (d.n, d.median, d.min, d.max, d.unknown) == (4, 250.0, 100, 400, 1)
    assert d.p90 == pytest.approx(370.0)  # linear interpolation: 300 + 0.7 x 100
    assert [within_budget(r) for r in records[7:]] == [False, True]
    assert (tokens_to_solve(records, "b").n, tokens_to_solve(records, "b").median) == (1, 100.0)
    rows = dict(budget_rows(records, ["a", "b", "c"]))
    assert rows["budget mode"] == ["tokens", "wall", "n/a"]
    assert rows["solved within budget"] == ["33% (2/6), 1 unenforced", "50% (1/2)", "n/a"]
    assert rows["tokens to solve p50 / p90"] == ["250 / 370", "100 / 100", "n/a"]
    assert rows["tokens to solve min / max"] == ["100 / 400 (n=4), 1 unknown", "100 / 100 (n=1)", "n/a"]
    assert rows["over the token budget"] == ["1 (max +50)", "-", "-"]


def test_the_summary_shows_the_budget_rows_and_the_new_outcomes() -> None:
    records = [_rec("a", "token_budget", False, 1500, ended_by="tokens", over_by=300), _rec("a", "finished", True, 900)]
    for r in records:
        r.update(packet={"id": "p"}, client={"tokens": {}, "calls": []}, gates=[])
    text = format_summary(records)
    assert "solved within budget" in text and "50% (1/2)" in text
    assert re.search(r"^  token_budget\s+1$", text, re.M), text
    assert run_category(records[0]) == "token_budget"
    from pytest_agentbench.reports.html import render_html

    assert "token_budget" in render_html(records)


# --------------------------------------------------------------------------- through the plugin


@pytest.fixture
def folder(pytester: pytest.Pytester, user_folder: Path) -> Path:
    """The user folder (a = good, b = noop) plus t: 64,000 tokens a call, for a token budget to end."""
    for entry in user_folder.iterdir():
        shutil.move(str(entry), pytester.path / entry.name)
    heavy = [step(60_000, 4_000)] * 10
    (pytester.path / "heavy.yaml").write_text(json.dumps({"conversations": [{"responses": heavy}]}))
    models = pytester.path / "models.yaml"
    models.write_text(
        models.read_text() + "  t:\n    model: scripted-heavy\n    serve: {engine: scripted, script: heavy.yaml}\n"
    )
    return pytester.path


def _records(root: Path) -> dict[str, dict[str, Any]]:
    lines = next((root / ".agentbench" / "runs").glob("*/results.jsonl")).read_text().splitlines()
    return {r["alias"]: r for r in map(json.loads, lines)}


def test_budget_tokens_through_the_plugin(
    pytester: pytest.Pytester, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    xml = pytester.path / "out.xml"
    result = pytester.runpytest(
        "--models=a,b,t",
        "--packets",
        "packets",
        "--sandbox=local",
        "-p",
        "no:cacheprovider",
        "--budget=tokens",
        "--max-total-tokens",
        "100000",
        "--safety-timeout-factor",
        "4",
        f"--junitxml={xml}",
    )
    result.assert_outcomes(passed=1, failed=2)
    recs = _records(pytester.path)
    # t: 64,000 tokens a call, 100,000 allowed: ended by the budget after its second call, 28,000 over
    t = recs["t"]["budget"]
    assert recs["t"]["outcome"] == "token_budget"
    assert (t["mode"], t["ended_by"], t["tokens_used"], t["over_by"]) == ("tokens", "tokens", 128_000, 28_000)
    assert (t["max_total_tokens"], t["max_total_tokens_from"], t["safety_timeout_s"]) == (100_000, "option", 1200.0)
    assert [c["prompt_tokens"] + c["completion_tokens"] for c in recs["t"]["client"]["calls"]] == [64_000, 64_000]
    # a: the good trajectory, ~1,000 tokens: solved within budget
    a = recs["a"]["budget"]
    assert recs["a"]["outcome"] == "finished" and (a["ended_by"], a["over_by"], a["enforced"]) == (None, 0, True)
    assert a["tokens_used"] == recs["a"]["client"]["tokens"]["prompt"] + recs["a"]["client"]["tokens"]["completion"]
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(xml).getroot().iter("testcase")
    }
    tprops = props["test_packet[bugfix-median-t]"]
    assert tprops["agentbench.ended_by"] == "tokens" and tprops["agentbench.total_tokens"] == "128000"
    assert props["test_packet[bugfix-median-b]"]["agentbench.ended_by"] == ""
    out = result.stdout.str()
    summary = out[out.index("agentbench summary:") :]
    assert re.search(r"^budget mode\s+tokens\s+tokens\s+tokens$", summary, re.M), summary
    line = next(x for x in summary.splitlines() if x.startswith("solved within budget"))
    cells = re.split(r"\s{2,}", line.removeprefix("solved within budget").strip())
    assert cells == ["100% (1/1)", "0% (0/1)", "0% (0/1)"]
    assert re.search(r"^  token_budget\s+-\s+-\s+1$", summary, re.M), summary
    assert re.search(r"^over the token budget\s+-\s+-\s+1 \(max \+28,000\)$", summary, re.M), summary


def test_safety_timeout_through_the_plugin(pytester: pytest.Pytester, folder: Path) -> None:
    (pytester.path / "slow.yaml").write_text(json.dumps({"conversations": [{"responses": [step(delay_s=20)]}]}))
    models = pytester.path / "models.yaml"
    models.write_text(
        models.read_text() + "  s:\n    model: scripted-slow\n    serve: {engine: scripted, script: slow.yaml}\n"
    )
    pytester.makeini("[pytest]\nagentbench_budget = tokens\nagentbench_safety_timeout_factor = 1.5\n")
    start = time.monotonic()
    result = pytester.runpytest(
        "--models=s", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider", "--agent-timeout", "1"
    )
    assert time.monotonic() - start < 15
    result.assert_outcomes(failed=1)
    rec = _records(pytester.path)["s"]
    assert rec["outcome"] == "safety_timeout" and rec["budget"]["ended_by"] == "safety_timeout", rec["error"]
    assert rec["budget"]["safety_timeout_s"] == 1.5 and rec["client"]["agent_wall_s"] <= 1.5 + SLACK_S


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--max-total-tokens", "lots"], "", "--max-total-tokens: expected a whole number of tokens >= 1,000*'lots'"),
        (["--max-total-tokens=200"], "", "--max-total-tokens: expected a whole number of tokens >= 1,000*'200'"),
        ([], "agentbench_max_total_tokens = -5", "ini agentbench_max_total_tokens: expected a whole number*'-5'"),
        (["--safety-timeout-factor", "0.5"], "", "--safety-timeout-factor: expected a finite number >= 1*'0.5'"),
        (["--safety-timeout-factor=nan"], "", "--safety-timeout-factor: expected a finite number >= 1*'nan'"),
        ([], "agentbench_safety_timeout_factor = ten", "ini agentbench_safety_timeout_factor: expected*'ten'"),
        ([], "agentbench_budget = speed", "ini agentbench_budget: expected one of wall, tokens, found 'speed'"),
        (["--budget=speed"], "", "*--budget: invalid choice: 'speed'*"),
    ],
)
def test_bad_budget_options_are_usage_errors(
    pytester: pytest.Pytester, folder: Path, args: list[str], ini: str, message: str
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("--collect-only", "--models=a", "--packets", "packets", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "Traceback" not in result.stderr.str()
