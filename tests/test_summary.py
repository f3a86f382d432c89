"""The side-by-side terminal summary of aliases."""

from __future__ import annotations

import re

import pytest

from pytest_agentbench.reports.stats import percentile
from pytest_agentbench.reports.summary import format_summary, run_category, summarize
from pytest_agentbench.results.record import record_to_dict

from .test_results import COMMERCIAL, SELF_HOSTED, as_dicts, make_record, worked_example_records


def cells(text: str, label: str) -> list[str]:
    """The cells of the row starting with ``label`` (split on runs of 2+ spaces)."""
    line = next(line for line in text.splitlines() if line.startswith(label))
    return re.split(r"\s{2,}", line[len(label) :].strip())


def test_percentile_is_linear_interpolation_between_closest_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 1, 3, 2], 90) == pytest.approx(3.7)  # rank 0.9 x 3 = 2.7 -> 3 + 0.7 x (4 - 3)
    assert percentile([5.0], 90) == 5.0
    assert percentile([1, 2, 3], 0) == 1 and percentile([1, 2, 3], 100) == 3
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 150)


def test_real_runs_side_by_side() -> None:
    text = format_summary(as_dicts())
    assert all(len(line) <= 100 for line in text.splitlines()), text
    head = text.splitlines()
    assert head[0] == "agentbench summary: 2 runs, 2 aliases"
    assert "scripted-good" in text and "scripted-noop" in text
    assert text.count("(test double)") >= 2 and "not a model" in text
    assert cells(text, "pass rate") == ["100% (1/1) [21, 100]", "0% (0/1) [0, 79]"]  # Wilson, n = 1
    assert cells(text, "  bugfix-median") == ["2/2", "1/2"]  # gates passed / run, per packet
    assert cells(text, "failure classes") == ["none", "none"]
    assert cells(text, "  finished") == ["1", "1"]
    ttft = cells(text, "TTFT p50")
    assert ttft[0].endswith(("ms", "s")) and ttft[1] == "n/a (not streamed)"  # good is streamed, noop is not
    assert all(c != "n/a" for c in cells(text, "tok/s p50 (client)"))
    assert "linear interpolation" in text and "client-side" in text
    # good is priced per token, noop per GPU hour: break-even rows appear in noop's column
    assert cells(text, "$/run")[0].startswith("$") and cells(text, "$/run")[1].startswith("$")
    assert cells(text, "break-even calls/h")[0] == "(reference)"
    assert cells(text, "break-even calls/h")[1].endswith("/h")


def test_worked_example_cost_and_break_even() -> None:
    text = format_summary(worked_example_records())
    assert cells(text, "$/run") == ["$0.018", "$0.00375"]
    assert cells(text, "$ per 1,000 runs") == ["$18.00", "$3.75"]
    # $4.5/h / $0.018 per call = 250 calls/h; capacity 4 x 3600 / 12 s = 1,200 calls/h
    assert cells(text, "break-even calls/h") == ["(reference)", "250/h"]
    assert cells(text, "break-even runs/h") == ["(reference)", "250/h"]
    assert cells(text, "GPU capacity calls/h") == ["-", "1,200/h"]
    assert cells(text, "tokens/run in / out") == ["3,000 / 600", "3,000 / 600"]
    assert cells(text, "model-call latency p50") == ["2.00 s", "12.0 s"]
    assert cells(text, "TTFT p50") == ["400 ms", "900 ms"]
    assert cells(text, "tok/s p50 (client)") == ["300.0", "50.0"]  # 600 / 2 s, 600 / 12 s
    assert "Break-even against gpt-baseline" in text and "(test double)" not in text


def test_latency_percentiles_over_runs() -> None:
    records = [record_to_dict(make_record("a", wall_s=w)) for w in (1.0, 2.0, 3.0, 4.0, 10.0)]
    # p50 = 3.0; p90 = rank 3.6 -> 4 + 0.6 x (10 - 4) = 7.6
    assert cells(format_summary(records), "latency p50 / p90 (run)") == ["3.00 s / 7.60 s"]


def test_unknown_cost_is_never_zero_and_partial_cost_says_so() -> None:
    records = [
        record_to_dict(make_record("nocost")),
        record_to_dict(make_record("api", cost=COMMERCIAL)),
        record_to_dict(make_record("api", cost=COMMERCIAL, usage_reported=False)),
    ]
    text = format_summary(records)
    assert cells(text, "$/run") == ["unknown", "$0.00045 (over 1 of 2 runs)"]  # 100 x 3/1e6 + 10 x 15/1e6
    assert cells(text, "$ per solved run") == ["unknown", "$0.00045 (over 1 of 2 runs)"]
    assert "$0 " not in text and not text.rstrip().endswith("$0")
    assert "break-even" not in text  # only one kind of price present


def test_failure_classes_and_outcomes_are_counted() -> None:
    records = [
        record_to_dict(make_record("m", passed=False, outcome="model_error", failure="rate_limited")),
        record_to_dict(make_record("m", passed=False, outcome="model_error", failure="timeout")),
        record_to_dict(make_record("m", passed=False, outcome="model_error", failure="timeout")),
        record_to_dict(make_record("m", passed=False, outcome="max_turns")),
        record_to_dict(make_record("m")),
    ]
    text = format_summary(records)
    assert cells(text, "  timeout") == ["2"] and cells(text, "  rate_limited") == ["1"]
    assert cells(text, "  model_error") == ["3"] and cells(text, "  max_turns") == ["1"]
    assert cells(text, "pass rate") == ["20% (1/5) [4, 62]"]
    assert [run_category(r) for r in records] == ["rate_limited", "timeout", "timeout", "max_turns", "passed"]
    assert cells(text, "invalid tool calls") == ["0"] and cells(text, "retried model calls") == ["0"]
    records[-1]["invalid_tool_calls"] = 2
    records[-1]["client"]["calls"][0]["retries"] = ["rate_limited", "server_error"]
    text = format_summary(records)
    assert cells(text, "invalid tool calls") == ["2"] and cells(text, "retried model calls") == ["2"]


def test_many_aliases_wrap_into_tables_within_the_width() -> None:
    aliases = [f"alias-number-{i}" for i in range(7)]
    records = [
        record_to_dict(make_record(a, cost=SELF_HOSTED if i % 2 else COMMERCIAL, test_double=i == 3))
        for i, a in enumerate(aliases)
    ]
    for width in (100, 72):
        text = format_summary(records, width=width)
        assert all(len(line) <= width for line in text.splitlines()), text
        assert all(a in text for a in aliases)
        assert text.count("pass rate") >= 2  # several tables
    text = format_summary(records, width=100)
    assert text.count("\nruns ") == 2  # 7 aliases: 4 per 100-column block, then 3
    heads = [line for line in text.splitlines() if line.startswith("alias ")]
    assert [len(re.findall(r"alias-number-\d", h)) for h in heads] == [4, 3]


def test_alias_order_can_be_given_and_unused_aliases_show_empty() -> None:
    records = [record_to_dict(make_record("b")), record_to_dict(make_record("a"))]
    assert [s.alias for s in summarize(records)] == ["b", "a"]
    assert [s.alias for s in summarize(records, ["a", "b", "c"])] == ["a", "b", "c"]
    text = format_summary(records, aliases=["a", "b", "c"])
    assert cells(text, "runs") == ["1", "1", "0"]


def test_no_records() -> None:
    assert format_summary([]) == "agentbench summary: no runs recorded"


def test_infrastructure_runs_are_left_out_of_every_row_and_counted_apart() -> None:
    """Issue 15: a run whose endpoint never answered does not lower the alias's pass rate."""
    from .test_infrastructure import infra_record

    records = [
        record_to_dict(make_record("good")),
        infra_record("good", failure="server_error"),
        infra_record("dead"),
        infra_record("dead"),
    ]
    text = format_summary(records, aliases=["good", "dead"])
    assert text.splitlines()[0] == "agentbench summary: 4 runs (3 infrastructure errors, not counted), 2 aliases"
    assert cells(text, "runs") == ["1", "0"]
    assert cells(text, "pass rate") == ["100% (1/1) [21, 100]", "n/a (no answer)"]
    assert cells(text, "infrastructure errors") == ["1 (server_error)", "2 (connection_error)"]
    assert cells(text, "failure classes") == ["none", "none"]  # not model failures
    assert cells(text, "latency p50 / p90 (run)")[1] == "n/a" and cells(text, "tokens/run in / out")[1] == "n/a"
    assert "infrastructure errors: runs whose endpoint never answered" in text
    assert [run_category(r) for r in records[1:]] == ["infrastructure"] * 3
    good, dead = summarize(records)
    assert (good.runs, good.pass_rate, dict(dead.infrastructure)) == (1, 1.0, {"connection_error": 2})
    assert "infrastructure" not in format_summary(records[:1])  # no row, no note without such runs
