"""The side-by-side terminal summary of aliases."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pytest_agentbench.reports.stats import percentile
from pytest_agentbench.reports.summary import format_summary, run_category, summarize
from pytest_agentbench.reports.texttable import longest_piece, wrap
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


# --------------------------------------------------------------------------- issue 12: readable summaries

SNAPSHOT = Path(__file__).parent / "data" / "summary_5x4.txt"
PACKETS = ["bugfix-median", "cli-todo-search", "docs-retry-options", "refactor-pricing", "testgen-durations"]
ALIASES = [
    ("gpt-baseline", "gpt-5-mini", COMMERCIAL),
    ("local-coder", "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", SELF_HOSTED),
    ("qwen-coder-fp8", "Qwen/Qwen2.5-Coder-32B-Instruct-FP8-dynamic", SELF_HOSTED),
    ("qwen-coder-bf16", "Qwen/Qwen2.5-Coder-32B-Instruct", SELF_HOSTED),
]


def five_by_four() -> list[dict]:
    """5 packets x 4 aliases x 2 repeats with exact, varied numbers (some flaky packets, one alias never solves)."""
    records = []
    for p, packet_id in enumerate(PACKETS):
        for a, (alias, model, cost) in enumerate(ALIASES):
            for r in (1, 2):
                passed = a != 3 and (p + a + r) % 3 != 0
                calls = [(1.0 + 0.5 * p + a + 0.25 * r, 0.2 + 0.1 * a, 2000 + 100 * p, 300 + 50 * a)] * (1 + a)
                rec = record_to_dict(make_record(alias, calls=calls, passed=passed, cost=cost))
                rec.update(model=model, repeat=r, packet={"id": packet_id, "kind": "bug-fix", "version": 1})
                rec["sandbox"]["isolation"] = "bubblewrap"
                records.append(rec)
    return records


def header_names(block: list[str]) -> list[str]:
    """Each column's header lines joined: the alias and model names as the reader puts them back together."""
    runs = next(line for line in block if line.startswith("runs "))
    ends = [m.end() for m in re.finditer(r"\S+", runs)][1:]
    head = block[: block.index(next(line for line in block if line.startswith("---")))]
    names = []
    for i, end in enumerate(ends):
        start = ends[i - 1] if i else 0
        parts = [line[start:end].strip() for line in head]
        if i == 0:
            parts[0] = parts[0].removeprefix("alias").strip()
        names.append("".join(parts))
    return names


def test_summary_for_5_packets_x_4_aliases_fits_100_columns_with_no_cut_name() -> None:
    """Issue 12 acceptance: a snapshot (AGENTBENCH_UPDATE_SNAPSHOTS=1 rewrites tests/data/summary_5x4.txt)."""
    text = format_summary(five_by_four(), width=100)
    if os.environ.get("AGENTBENCH_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text + "\n", encoding="utf-8")
    assert all(len(line) <= 100 for line in text.splitlines()), text
    assert "..." not in text and "\u00a0" not in text
    lines = text.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("alias ")]
    assert len(heads) == 1  # one block: 4 aliases fit 100 columns
    block = lines[heads[0] : lines.index("", heads[0])]
    assert header_names(block) == [alias + model for alias, model, _ in ALIASES]
    for packet_id in PACKETS:  # the gates matrix: one row per packet, its name whole
        assert len(cells(text, f"  {packet_id}")) == 4
    assert cells(text, "  bugfix-median") == ["4/4", "3/4", "3/4", "2/4"]  # gates passed / run over 2 trials
    assert cells(text, "pass rate")[0] == "70% (7/10)" and cells(text, "  pass@2")[3] == "0%"
    assert cells(text, "$ per solved run")[3] == "no solved run"
    assert text == SNAPSHOT.read_text(encoding="utf-8").rstrip("\n")


def test_more_aliases_wrap_into_blocks_and_every_name_stays_whole() -> None:
    records = five_by_four()
    extra = [dict(r, alias=f"{r['alias']}-copy") for r in records if r["alias"].startswith("qwen")]
    text = format_summary(records + extra, width=100)
    assert all(len(line) <= 100 for line in text.splitlines()), text
    lines = text.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("alias ")]
    assert len(heads) == 2
    names = [n for i in heads for n in header_names(lines[i : lines.index("", i)])]
    models = {alias: model for alias, model, _ in ALIASES}
    expected = [a + m for a, m, _ in ALIASES] + [f"{a}-copy{models[a]}" for a in ("qwen-coder-fp8", "qwen-coder-bf16")]
    assert names == expected


@pytest.mark.parametrize("width", [6, 9, 12, 16, 25])
def test_wrap_breaks_only_at_spaces_and_after_separators(width: int) -> None:
    for name in [m for _, m, _ in ALIASES] + PACKETS + ["a b c", "qwen2.5-coder:7b", "x" * 30]:
        lines = wrap(name, width)
        assert all(len(line) <= width for line in lines)
        assert "".join(lines) == name.replace(" ", "") or " ".join(lines) == name
        for line, nxt in zip(lines, lines[1:], strict=False):
            longest = max(len(p) for p in re.split(r"(?<=[-/_.:])", name))
            assert line[-1] in "-/_.:" or f"{line} {nxt}" in name or longest > width, (name, lines)
    assert wrap("67%\u00a0(2/3) [21,\u00a094]", 12) == ["67% (2/3)", "[21, 94]"]  # glued parts kept whole
    assert wrap("[$0.000586,\u00a0$0.00303]", 12) == ["[$0.000586,", "$0.00303]"]  # glue breaks only if needed
    assert wrap("gpt-4o-2024", 5) == ["gpt-", "4o-", "2024"]
    assert wrap("run.v2:final", 6) == ["run.", "v2:", "final"] and longest_piece("2.5:30 a") == 6  # numbers whole
