"""The regression gate: its syntax, its rule (not failing on noise, failing on a real drop), and the plugin
side (usage errors at start, the verdict after the run, the exit status, the xdist controller)."""

from __future__ import annotations

import random
import socket

import pytest

from pytest_agentbench.reports.gate import GateSpec, judge, parse_gate
from pytest_agentbench.reports.paired import pairs_needed

from .conftest import importorskip_extra
from .test_compare import COIN_PASSES, RUN, coin_project, coin_records, rec

pytest_plugins = ["pytester"]


# --------------------------------------------------------------------------- syntax


def test_syntax_defaults_and_settings() -> None:
    assert parse_gate("fp8 vs bf16") == GateSpec("fp8", "bf16", 0.0, 0.95, "fp8 vs bf16")
    gate = parse_gate("  fp8  VS bf16 max_drop=2.5 confidence=0.9 ")
    assert (gate.candidate, gate.baseline, gate.max_drop, gate.confidence) == ("fp8", "bf16", 2.5, 0.9)
    assert str(gate) == "fp8 VS bf16 max_drop=2.5 confidence=0.9"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fp8", "expected 'CANDIDATE vs BASELINE [max_drop=POINTS] [confidence=0.95]'"),
        ("fp8 against bf16", "expected 'CANDIDATE vs BASELINE"),
        ("fp8 vs fp8", "the candidate and the baseline are the same alias"),
        ("fp8 vs bf16 max_drop=5%", "max_drop is in percentage points of pass rate: write max_drop=5"),
        ("fp8 vs bf16 max_drop=five", "max_drop='five' is not a number"),
        ("fp8 vs bf16 max_drop=nan", "max_drop='nan' is not a number"),
        ("fp8 vs bf16 max_drop=-1", "max_drop must be percentage points in [0, 100)"),
        ("fp8 vs bf16 max_drop=1 max_drop=2", "max_drop given twice"),
        ("fp8 vs bf16 margin=5", "unknown setting 'margin=5'"),
        ("fp8 vs bf16 5", "unknown setting '5'"),
        ("fp8 vs bf16 confidence=95", "confidence must be between 0.5 and 1"),
    ],
)
def test_bad_syntax_names_the_gate_and_the_fix(text: str, message: str) -> None:
    from pytest_agentbench.errors import UsageError

    with pytest.raises(UsageError) as info:
        parse_gate(text)
    assert str(info.value).startswith(f"gate {text!r}: ") and message in str(info.value)


# --------------------------------------------------------------------------- the rule


def test_identical_coin_flip_aliases_pass_the_gate_in_95_percent_of_400_simulated_runs() -> None:
    gate = parse_gate("b vs a max_drop=5")
    verdicts = [judge(gate, coin_records(seed=s), resamples=20) for s in range(400)]  # 20 repeats x 2 packets
    passed = sum(not v.failed for v in verdicts)
    assert passed >= 380, f"the gate failed {400 - passed} of 400 runs of two identical aliases"
    strict = parse_gate("b vs a")  # max_drop=0: noise alone fails it in about 5 % of runs (+-2 % over 400)
    assert sum(not judge(strict, coin_records(seed=s), resamples=20).failed for s in range(400)) >= 370
    sample = next(v for v in verdicts if not v.failed)
    assert sample.message.startswith("agentbench gate 'b vs a max_drop=5': passed: no drop beyond 5 points detected")
    assert sample.too_small and "too small to detect such a drop: n = 40 pairs catch only drops of ~" in sample.message


def test_always_pass_baseline_against_a_coin_flip_candidate_fails_it() -> None:
    gate = parse_gate("b vs a max_drop=5")
    verdicts = [judge(gate, coin_records(seed=s, a=1.0, b=0.5), resamples=20) for s in range(100)]
    assert sum(v.failed for v in verdicts) >= 99
    failed = verdicts[0]
    assert failed.upper is not None and failed.upper < -0.05
    assert failed.message.startswith("agentbench gate 'b vs a max_drop=5': FAILED: b is below a by more than 5 points")
    assert "upper bound" in failed.message and "at 95 % one-sided; n = 40 pairs" in failed.message
    # the other way round there is no drop at all
    assert not judge(parse_gate("a vs b max_drop=5"), coin_records(seed=0, a=1.0, b=0.5), resamples=20).failed


def test_a_drop_within_the_margin_passes_and_a_big_run_is_not_too_small() -> None:
    records = coin_records(seed=7, repeats=10, packets=50, a=0.5, b=0.5)  # 500 pairs
    verdict = judge(parse_gate("b vs a max_drop=10"), records, resamples=20)
    assert not verdict.failed and not verdict.too_small
    assert "n = 500 pairs catch a drop of ~" in verdict.message and "too small" not in verdict.message


def test_a_gate_can_compare_two_agents_on_one_alias() -> None:
    """``AGENT@ALIAS`` names a cell: switching the agent is gated like switching the model."""
    builtin = [dict(r, alias="m") for r in coin_records(seed=3, a=1.0, b=1.0) if r["alias"] == "a"]
    mini = [
        dict(r, alias="m", agent={"name": "mini-swe-agent", "version": "2.4.6"})
        for r in coin_records(seed=3, a=0.5, b=0.5)
        if r["alias"] == "a"
    ]
    verdict = judge(parse_gate("mini-swe-agent@m vs builtin@m max_drop=5"), builtin + mini, resamples=20)
    assert verdict.failed and "FAILED: mini-swe-agent@m is below builtin@m" in verdict.message
    assert not judge(parse_gate("builtin@m vs mini-swe-agent@m max_drop=5"), builtin + mini, resamples=20).failed


def test_the_docs_gate_table_is_not_optimistic() -> None:
    """At the tabled pairs for a drop 20 points beyond max_drop, the simulated gate catches it in >= 78 %."""
    n = pairs_needed(0.20, 0.5, alpha=0.10)
    assert n == 86  # the figure in docs/comparing.md
    rng = random.Random(11)
    gate = parse_gate("b vs a max_drop=5")
    caught = 0
    for _ in range(300):  # baseline 62.5 %, candidate 37.5 %: 25 points, 20 beyond the margin
        records = [rec("a", f"p{i}", 1, rng.random() < 0.625) for i in range(n)]
        records += [rec("b", f"p{i}", 1, rng.random() < 0.375) for i in range(n)]
        caught += judge(gate, records, resamples=5).failed
    assert caught >= 0.78 * 300, caught


def test_a_gate_that_cannot_be_checked_fails() -> None:
    records = [rec("a", "p", 1, True), rec("b", "q", 1, True)]
    verdict = judge(parse_gate("b vs a"), records)
    assert verdict.failed and "could not be checked" in verdict.message and "no paired" in verdict.message
    assert (
        "infrastructure"
        in judge(
            parse_gate("b vs a"), [rec("a", "p", 1, True), rec("b", "p", 1, False, outcome="infrastructure")]
        ).message
    )


# --------------------------------------------------------------------------- through the plugin


def test_the_gate_fails_the_session_for_the_coin_flip_candidate(pytester: pytest.Pytester) -> None:
    coin_project(pytester)
    result = pytester.runpytest("--models=a,coin", *RUN, "--agentbench-gate", "coin vs a max_drop=5")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=20 + COIN_PASSES, failed=20 - COIN_PASSES)
    result.stdout.fnmatch_lines(
        [
            "*= agentbench gate =*",
            "agentbench gate 'coin vs a max_drop=5': FAILED: coin is below a by more than 5 points (coin - a = "
            f"-{(20 - COIN_PASSES) * 5} points, upper bound -* at 95 % one-sided; n = 20 pairs, p = *)",
            "agentbench gate: 1 of 1 gate(s) failed: the session fails (exit status 1)",
        ]
    )


def test_a_failing_gate_fails_a_session_whose_tests_all_passed(pytester: pytest.Pytester) -> None:
    coin_project(pytester)
    # 'a2' never ran (not in the run's records): the gate cannot be checked, so it fails
    pytester.makeini("[pytest]\nagentbench_gate =\n    a vs a2\n")
    result = pytester.runpytest("--models=a,a2", *RUN[:-2], "-k", "tiny-a and not a2")
    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["agentbench gate 'a vs a2': FAILED: could not be checked: alias 'a2' has no runs*"])


def test_two_always_pass_aliases_pass_and_the_gates_decide_the_exit_under_xdist(pytester: pytest.Pytester) -> None:
    importorskip_extra("xdist", "xdist")
    coin_project(pytester)
    pytester.makeini("[pytest]\nagentbench_gate =\n    coin vs a max_drop=5\n")  # the CLI's gates replace these
    gate = ["--agentbench-gate", "a2 vs a max_drop=5"]
    result = pytester.runpytest("--models=a,a2,coin", *RUN, "-n", "2", *gate, "--agentbench-results", "res")
    result.assert_outcomes(passed=40 + COIN_PASSES, failed=20 - COIN_PASSES)  # coin's misses are data here
    assert result.ret == pytest.ExitCode.OK
    out = result.stdout.str()
    assert out.count("agentbench gate 'a2 vs a max_drop=5': passed: no drop beyond 5 points detected") == 1
    assert "coin vs a" not in out  # only the controller decides, once; the ini gate was replaced
    result.stdout.fnmatch_lines(
        [
            "*a2 - a = 0 points, upper bound +* at 95 % one-sided; n = 20 pairs, p = 1); but the run was too small to "
            "detect such a drop: n = 20 pairs catch only drops of ~* points or more with 80 % power*",
            f"agentbench gate: every gate passed; the {20 - COIN_PASSES} failed trial(s) are results the gates "
            "weighed, so the exit status is 0",
        ]
    )
    # --resume over the finished run: nothing left to run, the gates judge the records in the folder
    again = pytester.runpytest("--models=a,a2,coin", *RUN, "--resume", "res", "--agentbench-gate", "coin vs a")
    again.assert_outcomes(deselected=60)
    assert again.ret == pytest.ExitCode.TESTS_FAILED  # not 5 (no tests ran): the gate failed
    again.stdout.fnmatch_lines(
        ["agentbench gate 'coin vs a': FAILED: coin is below a by more than 0 points (*n = 20 pairs*"]
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_infrastructure_error_keeps_the_session_red_when_the_gates_pass(pytester: pytest.Pytester) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    dead = f"  dead:\n    model: m\n    base_url: {url}\n    retries: {{connection_error: 0}}\n"
    coin_project(pytester, extra_models=dead)
    result = pytester.runpytest("--models=a,a2,dead", *RUN[:-2], "--agentbench-gate", "a2 vs a")
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "agentbench gate 'a2 vs a': passed: *",
            "agentbench gate: every gate passed, but 1 error(s) or failure(s) are not judged trials*stays 1",
        ]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--agentbench-gate", "coin vs a max_drop=5%"],
            "--agentbench-gate: gate 'coin vs a max_drop=5%': max_drop is in",
        ),
        (
            ["--agentbench-gate", "a vs zz"],
            "--agentbench-gate 'a vs zz': alias 'zz' is not selected for this run (--mod",
        ),
        (["--agentbench-gate", "a"], "--agentbench-gate: gate 'a': expected 'CANDIDATE vs BASELINE"),
        (
            ["--agentbench-gate", "codex@a vs a"],
            "--agentbench-gate 'codex@a vs a': agent 'codex' is not selected for this run (--agent=builtin)",
        ),
    ],
)
def test_bad_gates_are_usage_errors_at_start(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    coin_project(pytester)
    result = pytester.runpytest("--models=a,coin", "--packets", "packets", "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str() and "Traceback" not in result.stderr.str()


def test_a_bad_ini_gate_names_the_ini_key(pytester: pytest.Pytester) -> None:
    coin_project(pytester)
    pytester.makeini("[pytest]\nagentbench_gate =\n    a vs coin\n    coin versus a\n")
    result = pytester.runpytest("--models=a,coin", "--packets", "packets", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini agentbench_gate: gate 'coin versus a': expected*"])


def test_without_gates_nothing_changes(pytester: pytest.Pytester) -> None:
    coin_project(pytester)
    misses = sum(random.Random(f"tiny-r{r}").random() >= 0.5 for r in range(1, 6))  # the coin's tails in 5
    assert misses > 0
    result = pytester.runpytest("--models=a,coin", *RUN[:-1], "5")
    result.assert_outcomes(passed=10 - misses, failed=misses)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "agentbench gate:" not in result.stdout.str() and "= agentbench gate =" not in result.stdout.str()
