"""Estimates per alias and per (packet, alias): checked against direct computation and scipy.stats."""

from __future__ import annotations

import json
import math
import random
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.transcript import AgentResult, Turn
from pytest_agentbench.cli import main as cli_main
from pytest_agentbench.models.calls import Usage
from pytest_agentbench.reports.estimates import (
    ESTIMATES_FILE,
    estimate_aliases,
    estimates_document,
    resamples_for,
    write_estimates,
)
from pytest_agentbench.results.jsonl import RESULTS_FILE, completed_trials, load_records
from pytest_agentbench.results.record import RunRecord, new_run_id, record_to_dict
from pytest_agentbench.sandbox import SandboxInfo

from .conftest import importorskip_extra
from .test_results import make_spec, packet

stats = pytest.importorskip("scipy.stats", reason="scipy is the reference implementation: pip install scipy")

pytest_plugins = ["pytester"]


def rec(
    alias: str,
    packet_id: str,
    repeat: int,
    passed: bool,
    *,
    wall: float = 1.0,
    tokens: tuple[int, int] = (100, 10),
    usd: float | None = 0.01,
    outcome: str = "finished",
    usage_reported: bool = True,
) -> dict[str, Any]:
    """A run record as ``record_to_dict`` writes it, with only the fields the estimates read."""
    return {
        "alias": alias,
        "packet": {"id": packet_id},
        "repeat": repeat,
        "passed": passed,
        "outcome": outcome,
        "counted": outcome != "infrastructure",
        "client": {
            "wall_s": wall,
            "tokens": {"prompt": tokens[0], "completion": tokens[1], "usage_reported": usage_reported},
        },
        "cost": {"usd": usd},
    }


def trials(alias: str, packet_id: str, outcomes: str, **kw: Any) -> list[dict[str, Any]]:
    """One record per character of ``outcomes``: ``P`` passed, ``F`` failed."""
    return [rec(alias, packet_id, i + 1, ch == "P", **kw) for i, ch in enumerate(outcomes)]


def c(n: int, k: int) -> int:
    return math.comb(n, k)


# --------------------------------------------------------------------------- pass rates


def test_pass_at_1_is_wilson_over_runs_per_alias_and_per_pair_as_scipy() -> None:
    records = trials("a", "p1", "PPFPF") + trials("a", "p2", "FFFFF") + trials("a", "p3", "PPPPP")
    (a,) = estimate_aliases(records)
    assert (a.runs, a.passes, a.trials) == (15, 8, 5)
    ref = stats.binomtest(8, 15).proportion_ci(confidence_level=0.95, method="wilson")
    assert a.pass_at_1.value == pytest.approx(8 / 15)
    assert (a.pass_at_1.low, a.pass_at_1.high) == pytest.approx((ref.low, ref.high), abs=1e-9)
    for pair, (n, k) in zip(a.packets, [(5, 3), (5, 0), (5, 5)], strict=True):
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert (pair.trials, pair.passes) == (n, k)
        assert (pair.pass_at_1.low, pair.pass_at_1.high) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert a.flaky == ("p1",)


def test_pass_at_k_and_pass_hat_k_are_the_unbiased_estimators_averaged_over_packets() -> None:
    # p4 has 2 trials only (a resumed run lost some): pass@3.. are over 3 of 4 packets
    records = trials("a", "p1", "PPFPF") + trials("a", "p2", "FFFFF") + trials("a", "p3", "PPPPP")
    records += trials("a", "p4", "PF")
    (a,) = estimate_aliases(records)
    counts = {"p1": (5, 3), "p2": (5, 0), "p3": (5, 5), "p4": (2, 1)}
    for pair in a.packets:
        n, k_pass = counts[pair.packet]
        for k in range(1, n + 1):
            assert pair.pass_at_k[k] == pytest.approx(1 - c(n - k_pass, k) / c(n, k))
            assert pair.pass_hat_k[k] == pytest.approx(c(k_pass, k) / c(n, k))
    for k in range(1, 6):
        having = [counts[p] for p in sorted(counts) if counts[p][0] >= k]
        at, hat = a.at(k), a.at(k, hat=True)
        assert at is not None and hat is not None
        assert (at.packets, at.of_packets) == (len(having), 4)
        assert at.value == pytest.approx(statistics.fmean(1 - c(n - m, k) / c(n, k) for n, m in having))
        assert hat.value == pytest.approx(statistics.fmean(c(m, k) / c(n, k) for n, m in having))
    assert a.at(3).text().endswith("(3 of 4 packets)") and a.at(6) is None
    assert a.flaky == ("p1", "p4")


def test_pass_at_2_text_rounds_the_mean() -> None:
    (a,) = estimate_aliases(trials("a", "p1", "PF") + trials("a", "p2", "PP"))
    # p1: 1 - C(1,2)/C(2,2) = 1; p2: 1 -> 100%; pass^2: 0 and 1 -> 50%
    assert a.at(2).text() == "100%" and a.at(2, hat=True).text() == "50%"


def test_infrastructure_runs_are_left_out_and_listed_aliases_without_runs_are_unknown() -> None:
    records = trials("a", "p1", "PF") + [rec("a", "p1", 3, False, outcome="infrastructure", usd=None)]
    records += [rec("dead", "p1", 1, False, outcome="infrastructure", usd=None)]
    a, dead, unused = estimate_aliases(records, ["a", "dead", "unused"])
    assert (a.runs, a.passes, a.trials) == (2, 1, 2)
    assert a.spend.known == 2 and a.spend.runs == 2
    for empty in (dead, unused):
        assert empty.runs == 0 and empty.pass_at_1.value is None and empty.packets == ()
        assert empty.spend.per_run_text() == "unknown" and empty.spend.per_solved_text() == "unknown"
        assert empty.latency_s.value is None


# --------------------------------------------------------------------------- medians


def test_medians_and_their_bootstrap_agree_with_scipy() -> None:
    rng = random.Random(5)
    walls = [rng.lognormvariate(1, 0.5) for _ in range(30)]
    records = [rec("a", f"p{i % 3}", i // 3 + 1, i % 2 == 0, wall=w) for i, w in enumerate(walls)]
    records[0]["client"]["tokens"]["usage_reported"] = False  # unknown tokens: left out of the tokens median
    (a,) = estimate_aliases(records)
    assert a.latency_s.value == pytest.approx(statistics.median(walls)) and a.latency_s.n == 30
    ref = stats.bootstrap(
        (walls,), statistics.median, n_resamples=20_000, method="percentile", random_state=1, vectorized=False
    ).confidence_interval
    spread = max(walls) - min(walls)
    assert a.latency_s.low == pytest.approx(ref.low, abs=0.04 * spread)
    assert a.latency_s.high == pytest.approx(ref.high, abs=0.04 * spread)
    assert a.tokens.n == 29 and a.tokens.value == 110
    assert estimate_aliases(records) == estimate_aliases(records)  # seeded: the same records, the same figures


def test_resamples_shrink_for_large_samples_only() -> None:
    assert resamples_for(1) == resamples_for(50) == 2000
    assert resamples_for(500) == 200 and resamples_for(100_000) == 200
    assert 200 < resamples_for(100) < 2000 and resamples_for(10, budget=20_000) == 2000


# --------------------------------------------------------------------------- spend


def test_dollars_per_run_and_per_solved_run_over_the_known_costs() -> None:
    records = [
        rec("a", "p", 1, True, usd=0.01),
        rec("a", "p", 2, False, usd=0.02),
        rec("a", "p", 3, True, usd=None),  # unknown: out of both figures, and said
        rec("a", "p", 4, True, usd=0.03),
    ]
    (a,) = estimate_aliases(records)
    s = a.spend
    assert (s.known, s.runs, s.solved) == (3, 4, 2) and s.total_usd == pytest.approx(0.06)
    assert s.per_run.value == pytest.approx(0.02) and s.per_solved.value == pytest.approx(0.03)
    assert s.per_run_text().startswith("$0.02 [") and s.per_run_text().endswith("(over 3 of 4 runs)")
    assert s.per_solved_text().endswith("(over 3 of 4 runs)")
    assert s.per_run.low <= s.per_run.value <= s.per_run.high


def test_per_solved_run_bootstrap_of_the_ratio_agrees_with_scipy_paired() -> None:
    rng = random.Random(8)
    runs = [(rng.uniform(0.01, 0.05), rng.random() < 0.7) for _ in range(40)]
    records = [rec("a", "p", i + 1, ok, usd=usd) for i, (usd, ok) in enumerate(runs)]
    (a,) = estimate_aliases(records)
    costs, wins = [u for u, _ in runs], [float(ok) for _, ok in runs]
    assert a.spend.per_solved.value == pytest.approx(sum(costs) / sum(wins))
    ref = stats.bootstrap(
        (costs, wins),
        lambda x, y: sum(x) / sum(y),
        paired=True,
        vectorized=False,
        n_resamples=10_000,
        method="percentile",
        random_state=3,
    ).confidence_interval
    width = ref.high - ref.low
    assert a.spend.per_solved.low == pytest.approx(ref.low, abs=0.1 * width)
    assert a.spend.per_solved.high == pytest.approx(ref.high, abs=0.1 * width)
    ref_mean = stats.bootstrap(
        (costs,), statistics.fmean, n_resamples=10_000, method="percentile", random_state=3, vectorized=False
    ).confidence_interval
    assert a.spend.per_run.low == pytest.approx(ref_mean.low, abs=0.1 * (ref_mean.high - ref_mean.low))
    assert a.spend.per_run.high == pytest.approx(ref_mean.high, abs=0.1 * (ref_mean.high - ref_mean.low))


def test_above_500_runs_the_large_sample_intervals_agree_with_scipys_bootstrap() -> None:
    """No resampling above 500 runs: order statistics (median), normal (mean), delta method (ratio)."""
    np = pytest.importorskip("numpy")
    rng = random.Random(21)
    runs = [(rng.lognormvariate(0, 0.5), rng.uniform(0.01, 0.05), rng.random() < 0.4) for _ in range(800)]
    records = [rec("a", "p", i + 1, ok, wall=w, usd=u) for i, (w, u, ok) in enumerate(runs)]
    (a,) = estimate_aliases(records)
    walls, costs, wins = (np.array([r[i] for r in runs], dtype=float) for i in range(3))
    checks = [
        (a.latency_s, "order-statistics", (walls,), lambda x, axis: np.median(x, axis=axis), False),
        (a.spend.per_run, "normal", (costs,), lambda x, axis: np.mean(x, axis=axis), False),
        (a.spend.per_solved, "delta", (costs, wins), lambda x, y, axis: x.sum(axis) / y.sum(axis), True),
    ]
    for est, method, data, statistic, paired in checks:
        ref = stats.bootstrap(
            data, statistic, paired=paired, n_resamples=5000, method="percentile", random_state=4
        ).confidence_interval
        width = ref.high - ref.low
        assert est.method == method and est.n == 800
        assert est.low == pytest.approx(ref.low, abs=0.12 * width) and est.high == pytest.approx(
            ref.high, abs=0.12 * width
        )
    (rare,) = estimate_aliases([rec("r", "p", i + 1, i == 0, usd=0.01) for i in range(600)])
    assert rare.spend.per_solved.method == "delta" and math.isinf(rare.spend.per_solved.high)  # 1 pass in 600


def test_no_solved_run_is_said_never_infinity_nor_zero() -> None:
    (a,) = estimate_aliases(trials("a", "p", "FFF", usd=0.02))
    assert a.spend.per_solved.value is None and a.spend.per_solved_text() == "no solved run"
    assert a.spend.per_run_text().startswith("$0.02")
    (b,) = estimate_aliases([rec("b", "p", 1, False, usd=0.02), rec("b", "p", 2, True, usd=None)])
    assert b.spend.per_solved_text() == "no solved run (over 1 of 2 runs)"  # the pass had no known cost
    (unknown,) = estimate_aliases(trials("u", "p", "PP", usd=None))
    assert unknown.spend.per_run_text() == "unknown" and unknown.spend.per_solved_text() == "unknown"
    for text in (a.spend.per_solved_text(), b.spend.per_run_text(), unknown.spend.per_run_text()):
        assert "$0 " not in text and "inf" not in text


def test_rare_passes_leave_the_per_solved_interval_without_an_upper_bound() -> None:
    # 1 pass in 10: a resample has no pass with probability 0.9^10 = 35 % > 2.5 %
    (a,) = estimate_aliases(trials("a", "p", "PFFFFFFFFF", usd=0.01))
    est = a.spend.per_solved
    assert est.value == pytest.approx(0.1) and est.low is not None and est.low <= 0.1 and math.isinf(est.high)
    assert a.spend.per_solved_text().startswith("$0.1 [$0.0") and a.spend.per_solved_text().endswith(" unbounded]")
    doc = estimates_document([a])["aliases"][0]["spend"]["usd_per_solved_run"]
    assert doc["high"] is None and doc["high_unbounded"] is True
    names = dict(a.properties())
    assert "agentbench.a.usd_per_solved_run" in names and "agentbench.a.usd_per_solved_run_ci_high" not in names


def test_cached_input_is_priced_at_the_cached_rate_in_the_spend() -> None:
    """capacity.cost prices cached prompt tokens at cached_input_per_mtok; the record and the spend carry it."""
    price = {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cached_input_per_mtok": 0.3}
    turns = [Turn(0, 1.0, usage=Usage(3000, 600, 2000)), Turn(1, 1.0, usage=Usage(1000, 0, 1000))]
    run = RunRecord(
        new_run_id(),
        packet(),
        make_spec("api", cost=price),
        AgentResult("finished", turns, 2.5),
        [],
        SandboxInfo("local", "bubblewrap"),
        3.0,
    )
    d = record_to_dict(run)
    # (4000 - 3000) x 3 + 3000 x 0.3 + 600 x 15 per million
    expected = (1000 * 3.0 + 3000 * 0.3 + 600 * 15.0) / 1e6
    assert d["cost"]["usd"] == pytest.approx(expected) and d["client"]["tokens"]["cached"] == 3000
    (a,) = estimate_aliases([d])
    assert a.spend.per_run.value == pytest.approx(expected) and a.spend.per_solved.value == pytest.approx(expected)


# --------------------------------------------------------------------------- outputs


def test_junit_properties_are_numeric_and_leave_unknowns_out() -> None:
    records = trials("m", "p1", "PPF", usd=None) + trials("m", "p2", "PFF", usd=None)
    (m,) = estimate_aliases(records)
    props = dict(m.properties())
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in props.values())
    assert props["agentbench.m.pass_at_1"] == pytest.approx(0.5) and props["agentbench.m.runs"] == 6
    assert props["agentbench.m.pass_at_1_ci_low"] < 0.5 < props["agentbench.m.pass_at_1_ci_high"]
    assert props["agentbench.m.pass_at_3"] == 1.0 and props["agentbench.m.pass_hat_3"] == 0.0
    assert props["agentbench.m.pass_at_3_packets"] == 2 and props["agentbench.m.flaky_packets"] == 2
    assert props["agentbench.m.latency_p50_s"] == 1.0 and props["agentbench.m.cost_known_runs"] == 0
    assert not any("usd_per" in k or "cost_p50" in k for k in props)  # cost unknown: no figure, never 0


def test_estimates_json_is_never_read_as_a_run_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = trials("a", "p", "PF") + trials("b", "p", "PP")
    (tmp_path / RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    path = write_estimates(estimate_aliases(records), tmp_path / ESTIMATES_FILE, records)
    doc = json.loads(path.read_text())
    assert doc["kind"] == "agentbench-estimates" and [a["alias"] for a in doc["aliases"]] == ["a", "b"]
    assert doc["aliases"][0]["flaky_packets"] == ["p"] and doc["aliases"][1]["pass_at_1"]["value"] == 1.0
    problems: list[str] = []
    assert load_records(path, on_problem=problems.append) == []  # indented: no line is a JSON object
    assert completed_trials(tmp_path) == {(p, a, "builtin", r) for p in "p" for a in "ab" for r in (1, 2)}
    assert cli_main(["report", str(path)]) == 2
    assert "holds estimates derived from a run, not run records" in capsys.readouterr().err
    out = tmp_path / "again.json"
    assert cli_main(["report", str(tmp_path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "50% (1/2) [9, 91]" in printed and f"written: {out}" in printed
    assert json.loads(out.read_text())["aliases"] == doc["aliases"]


# --------------------------------------------------------------------------- a real session


@pytest.fixture
def folder(pytester: pytest.Pytester, user_folder: Path) -> Path:
    """The user folder (aliases a = good, b = noop) inside the pytester folder."""
    import shutil

    for entry in user_folder.iterdir():
        shutil.move(str(entry), pytester.path / entry.name)
    return pytester.path


@pytest.mark.slow
def test_repeats_session_shows_intervals_and_writes_junit_suite_properties(
    pytester: pytest.Pytester, folder: Path
) -> None:
    """--repeats 3 under xdist: the controller writes the summary, estimates.json and the suite properties."""
    importorskip_extra("xdist", "xdist")
    args = ["--models=a,b", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider", "--repeats", "3"]
    result = pytester.runpytest_subprocess(*args, "-n", "2", "--agentbench-results", "res", "--junitxml=out.xml")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*pass rate*100% (3/3) [[]44, 100]*0% (0/3) [[]0, 56]*",
            "*pass@3*100%*0%*",
            "*pass^3*100%*0%*",
            "*flaky packets*none of 1*none of 1*",
            "*gates passed / run*",
            "*bugfix-median*6/6*3/6*",
            "*$ per solved run*unknown*unknown*",  # no cost: mapping in this models.yaml
            "written: *estimates.json",
        ],
        consecutive=False,
    )
    suite = ET.parse(folder / "out.xml").getroot().find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    for alias, value, low, high in (("a", 1.0, 0.438, 1.0), ("b", 0.0, 0.0, 0.562)):
        assert float(props[f"agentbench.{alias}.pass_at_1"]) == value
        assert float(props[f"agentbench.{alias}.pass_at_1_ci_low"]) == pytest.approx(low, abs=1e-3)
        assert float(props[f"agentbench.{alias}.pass_at_1_ci_high"]) == pytest.approx(high, abs=1e-3)
        assert float(props[f"agentbench.{alias}.runs"]) == 3 and float(props[f"agentbench.{alias}.pass_at_3"]) == value
    assert all(math.isfinite(float(v)) for k, v in props.items() if k.startswith("agentbench."))
    assert len(list(suite.iter("testcase"))) == 6
    doc = json.loads((folder / "res" / ESTIMATES_FILE).read_text())
    assert [(a["alias"], a["runs"], a["passes"]) for a in doc["aliases"]] == [("a", 3, 3), ("b", 3, 0)]


@pytest.mark.slow
def test_suite_properties_without_xdist(pytester: pytest.Pytester, folder: Path) -> None:
    result = pytester.runpytest(
        "--models=a", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider", "-p", "no:xdist",
        "--repeats", "2", "--agentbench-results", "res", "--junitxml=out.xml",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    suite = ET.parse(folder / "out.xml").getroot().find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props["agentbench.a.pass_at_1"] == "1.0" and props["agentbench.a.pass_hat_2"] == "1.0"
    assert float(props["agentbench.a.latency_p50_s"]) > 0
