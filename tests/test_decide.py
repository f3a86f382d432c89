"""agentbench decide: the ordered rules over crafted records, the record's figures against the run summary,
bad input, and whole runs through the plugin (scripted aliases priced per token and per GPU-hour).

The crafted runs have round numbers (``run()``): a commercial run is 1,000 prompt + 200 completion tokens
at $3/M in and $15/M out = $0.006, five calls, so $0.0012 a call; a local run is 10 s of model calls on a
$2.40/h GPU serving 4 calls at once = $0.00167, five 2 s calls. One local server therefore breaks even at
2.40 / 0.0012 = 2,000 calls/h and serves 4 x 3600 / 2 = 7,200 calls/h.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.cli import main
from pytest_agentbench.decision import RULES, TeamInputs, collect, decide, read_sources, render_adr
from pytest_agentbench.decision.quality import unpaired_difference
from pytest_agentbench.errors import UsageError
from pytest_agentbench.reports.summary import format_summary, summarize
from pytest_agentbench.reports.texttable import NBSP
from pytest_agentbench.results.jsonl import load_records

from .test_compare import COIN_PASSES, RUN, coin_project

pytest_plugins = ["pytester"]

API = {"input_per_mtok": 3.0, "output_per_mtok": 15.0}
GPU = {"gpu_hourly_usd": 2.4, "concurrency": 4}


def run(alias: str, packet: str, repeat: int, passed: bool, kind: str = "commercial", **extra: Any) -> dict[str, Any]:
    """One run record as results.jsonl holds it (the fields the summary and the decision read)."""
    commercial = kind == "commercial"
    calls = [{"index": i, "wall_s": 0.4 if commercial else 2.0, "ttft_s": None} for i in range(5)]
    usd = (1000 * 3.0 + 200 * 15.0) / 1e6 if commercial else 2.4 * 10.0 / 3600 / 4
    out: dict[str, Any] = {
        "run_id": f"{alias}-{packet}-{repeat}",
        "timestamp": f"2026-01-01T00:00:{repeat % 60:02d}+00:00",
        "packet": {"id": packet, "kind": "bug-fix", "version": 1},
        "alias": alias,
        "model": f"model-{alias}",
        "test_double": False,
        "repeat": repeat,
        "outcome": "finished",
        "failure": None,
        "passed": passed,
        "gates": [],
        "model_calls": 5,
        "client": {
            "wall_s": 3.0 if commercial else 12.0,
            "model_wall_s": 2.0 if commercial else 10.0,
            "calls": calls,
            "tokens": {"prompt": 1000, "completion": 200, "cached": 0, "usage_reported": True},
        },
        "cost": {"usd": usd, "kind": "commercial" if commercial else "self-hosted", "spec": API if commercial else GPU},
        "versions": {"server": {"engine": "external" if commercial else "vllm"}},
    }
    out.update(extra)
    return out


def runs(api_rate: float, local_rate: float, repeats: int = 20, seed: int = 0, **kw: Any) -> list[dict[str, Any]]:
    """``api`` and ``local`` on two packets, ``repeats`` trials each, passing by seeded coins."""
    rng = random.Random(seed)
    out = []
    for packet in ("p1", "p2"):
        for r in range(1, repeats + 1):
            out.append(run("api", packet, r, rng.random() < api_rate, **kw))
            out.append(run("local", packet, r, rng.random() < local_rate, "self-hosted", **kw))
    return out


def write(tmp_path: Path, records: list[dict[str, Any]], name: str = "results.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def decision_of(tmp_path: Path, records: list[dict[str, Any]], sweeps=(), screens=(), **inputs: Any):
    sources = read_sources([write(tmp_path, records)], sweeps, screens)
    team = TeamInputs(**{"boundary": "moderate", **inputs})
    evidence = collect(sources, team)
    return decide(evidence, team), evidence


# --------------------------------------------------------------------------- the rules


def test_every_rule_writes_its_step_in_order() -> None:
    assert len(RULES) == 11 and RULES[0] == "roles" and RULES[-1] == "branch"


def test_tie_cost_decides_and_flips_with_the_volume_and_the_gpu_price(tmp_path: Path) -> None:
    records = runs(1.0, 1.0, repeats=5)
    low, _ = decision_of(tmp_path, records, calls_per_hour=1000)  # $1.20/h by API < $2.40/h GPU
    assert [s.rule for s in low.steps] == list(range(1, 12)) and [s.name for s in low.steps] == list(RULES)
    assert (low.branch, low.chosen.alias, low.status) == ("commercial API", "api", "provisional")  # unscreened
    assert low.costs.break_even_calls_per_hour == pytest.approx(2000.0)
    assert low.quality.method == "paired" and not low.quality.significant
    high, _ = decision_of(tmp_path, records, calls_per_hour=3000)  # $3.60/h by API > $2.40/h GPU
    assert (high.branch, high.chosen.alias) == ("local inference", "local")
    assert "one local server breaks even at 2,000 calls/h" in high.rationale
    cheap, _ = decision_of(tmp_path, records, calls_per_hour=1000, gpu_hourly_usd=0.6)  # break-even 500 calls/h
    assert cheap.branch == "local inference" and cheap.costs.break_even_calls_per_hour == pytest.approx(500.0)
    dear_api = [
        {**r, "cost": {**r["cost"], "usd": r["cost"]["usd"] * 4}} if r["alias"] == "api" else r for r in records
    ]
    pricier, _ = decision_of(tmp_path, dear_api, calls_per_hour=1000)  # the run's own prices flipped
    assert pricier.branch == "local inference" and pricier.costs.break_even_calls_per_hour == pytest.approx(500.0)


def test_the_data_boundary_flips_the_branch(tmp_path: Path) -> None:
    records = runs(1.0, 1.0, repeats=5)
    strict, _ = decision_of(tmp_path, records, boundary="strict", calls_per_hour=100)
    assert strict.branch == "local inference" and "api" in strict.excluded
    assert strict.excluded["api"].startswith("rule 2: a commercial model sends code out")
    assert next(o for o in strict.options if o.branch == "commercial API").admissible is False
    moderate, _ = decision_of(tmp_path, records, boundary="moderate", calls_per_hour=100)
    none, _ = decision_of(tmp_path, records, boundary="none", calls_per_hour=100)
    assert (moderate.branch, none.branch) == ("commercial API", "cloud agent")
    assert any("vendor's hosted agent" in c for c in none.consequences)


def test_significance_decides_quality_not_raw_rates(tmp_path: Path) -> None:
    better, _ = decision_of(tmp_path, runs(1.0, 0.3), calls_per_hour=1_000_000)  # cost alone would pick local
    assert better.quality.significant and better.quality.better == "api" and better.branch == "commercial API"
    assert "significantly more than" in better.rationale and "Cost did not decide" in better.rationale
    assert better.quality.p_value < 0.05 and better.quality.method == "paired"
    # 5/5 against 3/5 is a raw 40-point lead but no detectable difference: cost decides
    records = [run("api", "p", r, True) for r in range(1, 6)]
    records += [run("local", "p", r, r <= 3, "self-hosted") for r in range(1, 6)]
    tie, _ = decision_of(tmp_path, records, calls_per_hour=3000)
    assert not tie.quality.significant and tie.branch == "local inference"
    assert "no detectable difference" in tie.quality.text


def test_a_local_model_significantly_better_wins_at_any_volume(tmp_path: Path) -> None:
    d, _ = decision_of(tmp_path, runs(0.2, 1.0), calls_per_hour=1)
    assert d.quality.better == "local" and d.branch == "local inference"


def test_unpaired_runs_use_newcombes_interval_from_the_published_example() -> None:
    # Newcombe (1998), Table II, example (a): 56/70 - 48/80, method 10 (hybrid score): 0.0524 to 0.3339
    e = unpaired_difference(48, 80, 56, 70)
    assert (e.value, round(e.low, 4), round(e.high, 4)) == (pytest.approx(0.2), 0.0524, 0.3339)
    e = unpaired_difference(0, 10, 0, 10)  # example (h): 0/10 - 0/10: -0.2775 to 0.2775
    assert (round(e.low, 4), round(e.high, 4)) == (-0.2775, 0.2775)


def test_no_shared_trials_compares_unpaired(tmp_path: Path) -> None:
    records = [run("api", "p1", r, True) for r in range(1, 21)]
    records += [run("local", "p2", r, r <= 8, "self-hosted") for r in range(1, 21)]
    d, _ = decision_of(tmp_path, records, calls_per_hour=1_000_000)
    assert d.quality.method == "unpaired" and d.quality.p_value is None
    assert d.quality.significant and d.branch == "commercial API" and "unpaired" in d.quality.text


def test_strict_without_a_qualifying_local_candidate_is_blocked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [run("api", "p", r, True) for r in range(1, 4)]
    records += [run("local", "p", r, False, "self-hosted") for r in range(1, 4)]
    d, ev = decision_of(tmp_path, records, boundary="strict")
    assert d.status == "blocked" and d.branch is None and d.chosen is None
    assert d.excluded["local"].startswith("rule 4: solved none of its 3 run(s)")
    assert "strict data boundary admits only local inference" in d.rationale
    assert [s.outcome for s in d.steps[7:]] == ["not reached: no candidate left"] * 4
    assert render_adr(d, ev).startswith("# ADR: no branch can be taken (blocked)")
    capsys.readouterr()
    assert (
        main(["decide", str(write(tmp_path, records)), "--data-boundary", "strict", "-o", str(tmp_path / "d.md")]) == 1
    )
    assert capsys.readouterr().out.startswith("agentbench decide: blocked: No decision can be taken")
    assert (tmp_path / "d.md").read_text().startswith("# ADR: no branch can be taken (blocked)")


def test_missing_evidence_is_said_and_what_it_does_to_the_branch(tmp_path: Path) -> None:
    d, ev = decision_of(tmp_path, runs(1.0, 1.0, repeats=5))  # no volume, no sweep, no screening
    assert d.branch == "commercial API" and d.status == "provisional"
    assert any(o.startswith("cost not compared: ") and "volume is unknown" in o for o in d.open)
    assert "stands until it can" in d.rationale
    text = render_adr(d, ev)
    assert "local: no sweep: SLO capacity not measured" in text
    assert "not screened" in text and "Status: provisional - it rests on evidence that is missing" in text


def screen_doc(alias: str, fail: str | None = None) -> dict[str, Any]:
    rows = [
        {"criterion": c, "verdict": "fail" if c == fail else "pass", "finding": f"{c} finding"}
        for c in ("licence", "serving support", "tool format", "context policy", "failure behaviour")
    ]
    return {"criteria": [r["criterion"] for r in rows], "candidates": [{"alias": alias, "rows": rows}]}


def sweep_doc(alias: str, holds: dict[int, bool | None], calls: int = 360) -> dict[str, Any]:
    """A sweep whose every developer made ``calls`` calls in its level's hour; ``holds``: N -> SLO held."""
    from pytest_agentbench.capacity.slo import find_knee

    knee, note = find_knee(list(holds.items()))
    levels = [{"devs": n, "wall_s": 3600.0, "slo_holds": h, "client": {"calls": calls * n}} for n, h in holds.items()]
    given = any(h is not None for h in holds.values())
    slo = {"ttft_p50_s": 2.0 if given else None, "tps_p50": None, "describe": "TTFT p50 <= 2 s" if given else "none"}
    return {
        "schema": "agentbench-sweep/1",
        "alias": alias,
        "slo": slo,
        "knee": knee,
        "knee_note": note,
        "levels": levels,
    }


def test_a_screening_disqualifier_leaves_the_candidate_out(tmp_path: Path) -> None:
    records = runs(1.0, 1.0, repeats=5)
    bad = tmp_path / "screen.json"
    bad.write_text(json.dumps(screen_doc("local", fail="tool format")))
    d, _ = decision_of(tmp_path, records, screens=[bad], calls_per_hour=3000)  # cost alone would pick local
    assert d.branch == "commercial API" and d.excluded["local"].startswith("rule 3: disqualified by its screening")
    assert "tool format: tool format finding" in d.excluded["local"]


def test_the_sweep_knee_counts_servers_and_a_broken_slo_leaves_local_out(tmp_path: Path) -> None:
    records = runs(1.0, 1.0, repeats=5)
    good = tmp_path / "sweep.json"
    good.write_text(json.dumps(sweep_doc("local", {1: True, 2: True, 4: False})))
    screens = tmp_path / "screen.json"
    screens.write_text(json.dumps({"candidates": screen_doc("local")["candidates"] + screen_doc("api")["candidates"]}))
    # 5 developers at the sweep's measured 360 calls/developer-hour = 1,800 calls/h; the knee N=2 -> 3 servers
    d, ev = decision_of(tmp_path, records, [good], [screens], developers=5)
    assert (
        d.costs.calls_per_hour == pytest.approx(1800.0)
        and "measured by the sweep of local at N=1" in d.costs.calls_from
    )
    assert d.costs.servers == 3 and "the SLO knee N=2" in d.costs.servers_from
    assert d.branch == "commercial API" and d.status == "accepted"  # $2.16/h by API < 3 x $2.40/h
    assert "| SLO knee, local | N=2 (TTFT p50 <= 2 s) |" in render_adr(d, ev)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(sweep_doc("local", {1: False, 2: False})))
    d, _ = decision_of(tmp_path, records, [broken], boundary="strict")
    assert d.status == "blocked" and d.excluded["local"].startswith("rule 5: its sweep breaks the SLO")
    d, _ = decision_of(tmp_path, records, [broken], developers=5, budget_usd_month=400)  # its rate still counts
    assert d.chosen.alias == "api" and d.costs.calls_per_hour == pytest.approx(1800.0)
    assert any(s.outcome == "api costs $380.16/month (176 h), within the $400.00/month budget" for s in d.steps)


def test_over_budget_gives_way_to_the_option_that_fits(tmp_path: Path) -> None:
    records = runs(0.2, 1.0)  # local is significantly better ...
    d, _ = decision_of(tmp_path, records, calls_per_hour=100, budget_usd_month=500)  # local: 2.4 x 176 = $422
    assert d.chosen.alias == "local" and any(s.outcome.endswith("within the $500.00/month budget") for s in d.steps)
    d, _ = decision_of(tmp_path, records, calls_per_hour=100, budget_usd_month=100)  # ... but over this budget
    assert d.chosen.alias == "api" and d.branch == "commercial API" and "gives way to api on the budget" in d.rationale
    assert d.costs.monthly("local") == pytest.approx(2.4 * 176) and d.costs.monthly("commercial") < 100
    assert any(c.startswith("Taken for the budget: local was the first choice") for c in d.consequences)
    d, _ = decision_of(tmp_path, records, calls_per_hour=100, budget_usd_month=10)  # nothing fits: said
    assert d.chosen.alias == "local" and any(
        c.startswith("Over budget: local costs $422.40/month") for c in d.consequences
    )


def test_figures_match_the_run_summary_of_the_same_records(tmp_path: Path) -> None:
    records = runs(0.9, 0.6, repeats=10, seed=4)
    d, ev = decision_of(tmp_path, records, calls_per_hour=500)
    text = render_adr(d, ev)
    summary = format_summary(records, width=1000).replace(NBSP, " ")  # wide: no cell wraps
    for s in summarize(records):
        c = ev.candidate(s.alias)
        assert c.pass_rate == s.estimate.pass_at_1 and c.spend == s.estimate.spend
        assert c.cost_per_call == s.cost_per_call
        assert c.pass_text() in summary and c.pass_text() in text
        assert c.spend.per_solved_text() in summary and c.spend.per_solved_text() in text
    summary_break_even = re.search(r"break-even calls/h\s+\(reference\)\s+(\S+)/h", summary).group(1)
    assert f"| {summary_break_even} calls/h |" in text


# --------------------------------------------------------------------------- bad input


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    assert main(["decide", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(n in err for n in needles), err
    return err


def test_bad_files_name_the_file_and_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = str(write(tmp_path, runs(1.0, 1.0, repeats=2)))
    base = ["--data-boundary", "moderate", "-o", str(tmp_path / "d.md")]
    _fails(capsys, [str(tmp_path / "nope.jsonl"), *base], "nope.jsonl not found", "--agentbench-results")
    (tmp_path / "empty.jsonl").write_text("")
    _fails(capsys, [str(tmp_path / "empty.jsonl"), *base], "empty.jsonl: no run records (it is empty)")
    (tmp_path / "junk.jsonl").write_text('{"a": 1}\n')
    _fails(capsys, [str(tmp_path / "junk.jsonl"), *base], "none of its 1 line(s) is a run record")
    (tmp_path / "s.json").write_text(json.dumps(sweep_doc("local", {1: True})))
    (tmp_path / "c.json").write_text(json.dumps(screen_doc("local")))
    (tmp_path / "x.json").write_text("{not json")
    _fails(capsys, [good, *base, "--screen", str(tmp_path / "s.json")], "s.json: this is a sweep", "--sweep")
    _fails(capsys, [good, *base, "--sweep", str(tmp_path / "c.json")], "c.json: this is a screening", "--screen")
    _fails(capsys, [good, *base, "--sweep", str(tmp_path / "x.json")], "x.json: not JSON", "agentbench sweep --out")
    _fails(capsys, [good, *base, "--screen", str(tmp_path / "x.json")], "x.json: not JSON", "agentbench screen")
    (tmp_path / "old.json").write_text(json.dumps({"schema": "agentbench-sweep/0"}))
    _fails(capsys, [good, *base, "--sweep", str(tmp_path / "old.json")], "not an agentbench sweep (schema")
    _fails(capsys, [good, *base[:2], "-o", str(tmp_path / "no" / "d.md")], "-o ", "cannot be written")
    assert not (tmp_path / "d.md").exists()


def test_bad_options_name_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = str(write(tmp_path, runs(1.0, 1.0, repeats=2)))
    base = [good, "--data-boundary", "moderate", "-o", "-"]
    _fails(capsys, [*base, "--budget", "-5"], "--budget: expected US$ per month")
    _fails(capsys, [*base, "--calls-per-hour", "0"], "--calls-per-hour: expected model calls per working hour")
    _fails(capsys, [*base, "--hours-per-month", "800"], "--hours-per-month: a month has at most 744 hours")
    _fails(capsys, [*base, "--local", "ghost"], "--local ghost: no runs of it in the results", "api, local")
    _fails(capsys, [*base, "--local", "api", "--commercial", "api"], "--local and --commercial both name api")
    for argv in (
        [good, "--data-boundary", "loose"],
        [good, "--data-boundary", "none", "--calls-per-hour", "5", "--developers", "2"],
        [good, "--data-boundary", "none", "--developers", "two"],
        [good],
    ):
        with pytest.raises(SystemExit) as info:
            main(["decide", *argv])
        assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'loose'" in err and "not allowed with argument" in err and "expected a whole number" in err
    with pytest.raises(UsageError, match="--data-boundary: expected one of strict, moderate, none"):
        TeamInputs(boundary="open")  # type: ignore[arg-type]


def test_a_decision_is_for_one_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    builtin = runs(1.0, 0.0, repeats=5)
    mini = [
        dict(r, agent={"name": "mini-swe-agent", "version": "2.4.6"}, run_id=r["run_id"] + "-mini")
        for r in runs(0.0, 1.0, repeats=5)
    ]
    path = str(write(tmp_path, builtin + mini))
    base = [path, "--data-boundary", "moderate", "-o", "-"]
    _fails(capsys, base, "runs of 2 agents (builtin, mini-swe-agent)", "pass --agent NAME")
    _fails(capsys, [*base, "--agent", "aider"], "--agent aider: no run of that agent", "builtin, mini-swe-agent")
    assert main(["decide", *base, "--agent", "builtin"]) == 0
    said_builtin = capsys.readouterr().out
    assert main(["decide", *base, "--agent", "mini-swe-agent"]) == 0
    said_mini = capsys.readouterr().out
    assert said_builtin != said_mini  # api solves all under builtin, local all under mini-swe-agent


def test_an_alias_without_a_role_is_left_out_with_the_fix(tmp_path: Path) -> None:
    records = runs(1.0, 1.0, repeats=2) + [
        {**run("mystery", "p1", 1, True), "cost": {"usd": None, "kind": None}, "versions": {}}
    ]
    d, ev = decision_of(tmp_path, records, calls_per_hour=10)
    assert "mystery" in ev.unroled and d.excluded["mystery"].startswith("rule 1: no cost: mapping and not served")
    assert "--commercial / --local" in d.excluded["mystery"]
    down = {"outcome": "infrastructure", "failure": "connection_error", "passed": False}
    d, _ = decision_of(tmp_path, records + [{**run("gone", "p1", 1, False, "self-hosted"), **down}])
    assert d.excluded["gone"] == "rule 4: no counted run: its endpoint never answered (1 infrastructure run(s))"
    d, ev = decision_of(tmp_path, records, calls_per_hour=10, commercial=("mystery",))
    assert ev.candidate("mystery").role == "commercial" and ev.candidate("mystery").cost_per_call is None


# --------------------------------------------------------------------------- through the plugin


PRICED = """\
  api:
    model: scripted-good
    serve: {{engine: scripted, script: scripts/good}}
    cost: {{input_per_mtok: 3.0, output_per_mtok: 15.0}}
  gpu:
    model: scripted-good
    serve: {{engine: scripted, script: scripts/good}}
    cost: {{gpu_hourly_usd: {gpu}, concurrency: 4}}
"""


def _decide(capsys: pytest.CaptureFixture[str], res: Path, *argv: str) -> str:
    out = res.parent / "decision.md"
    capsys.readouterr()
    assert main(["decide", str(res), "-o", str(out), *argv]) == 0, capsys.readouterr().err
    return out.read_text()


def _break_even(res: Path) -> float:
    summary = format_summary(load_records(res / "results.jsonl"), width=1000).replace(NBSP, " ")
    return float(re.search(r"break-even calls/h\s+\(reference\)\s+([\d,]+)/h", summary).group(1).replace(",", ""))


def test_plugin_run_priced_aliases_branch_flips_with_prices_and_boundary(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    root = coin_project(pytester, PRICED.format(gpu=2.0))
    args = ["--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider", "-p", "no:benchmark", "--repeats", "3"]
    pytester.runpytest("--models=api,gpu", *args, "--agentbench-results", "cheap").assert_outcomes(passed=6)
    be = _break_even(root / "cheap")
    busy, quiet = f"{be * 2:.0f}", f"{be / 2:.0f}"
    text = _decide(capsys, root / "cheap", "--data-boundary", "moderate", "--calls-per-hour", busy)
    assert text.startswith("# ADR: local inference - gpu") and f"breaks even at {be:,.0f} calls/h" in text
    summary = format_summary(load_records(root / "cheap" / "results.jsonl"), width=1000).replace(NBSP, " ")
    for c in collect(read_sources([root / "cheap"]), TeamInputs("moderate")).candidates:
        assert c.pass_text() == "100% (3/3) [44, 100]" and c.pass_text() in text
        assert c.spend.per_solved_text() in summary and f"| {c.spend.per_solved_text()} |" in text
    assert _decide(capsys, root / "cheap", "--data-boundary", "moderate", "--calls-per-hour", quiet).startswith(
        "# ADR: commercial API - api"
    )
    assert _decide(capsys, root / "cheap", "--data-boundary", "strict", "--calls-per-hour", quiet).startswith(
        "# ADR: local inference - gpu"
    )
    assert _decide(capsys, root / "cheap", "--data-boundary", "none", "--calls-per-hour", quiet).startswith(
        "# ADR: cloud agent - api"
    )
    # the same run with a GPU 8x dearer in models.yaml: at the same volume the commercial API wins
    (root / "models.yaml").write_text(
        (root / "models.yaml").read_text().replace("gpu_hourly_usd: 2.0", "gpu_hourly_usd: 16.0")
    )
    pytester.runpytest("--models=api,gpu", *args, "--agentbench-results", "dear").assert_outcomes(passed=6)
    assert _break_even(root / "dear") == pytest.approx(be * 8, rel=0.01)
    text = _decide(capsys, root / "dear", "--data-boundary", "moderate", "--calls-per-hour", busy)
    assert text.startswith("# ADR: commercial API - api") and "(test double)" in text


@pytest.mark.slow  # 40 runs
def test_plugin_run_a_coin_flip_local_alias_loses_on_quality_unless_the_boundary_is_strict(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    root = coin_project(pytester)
    pytester.runpytest("--models=a,coin", *RUN, "--agentbench-results", "res").assert_outcomes(
        passed=20 + COIN_PASSES, failed=20 - COIN_PASSES
    )
    roles = ["--commercial", "a", "--local", "coin", "--calls-per-hour", "1000000", "--gpu-hourly-usd", "0.01"]
    text = _decide(capsys, root / "res", "--data-boundary", "moderate", *roles)
    assert text.startswith("# ADR: commercial API - a")
    assert f"coin solves fewer than a: -{(20 - COIN_PASSES) * 5} points" in text and "paired (exact McNemar)" in text
    assert f"{COIN_PASSES / 20:.0%} ({COIN_PASSES}/20)" in text
    strict = _decide(capsys, root / "res", "--data-boundary", "strict", *roles)
    assert strict.startswith("# ADR: local inference - coin") and "| GPU $/h, coin | $0.01/h | assumed" in strict
