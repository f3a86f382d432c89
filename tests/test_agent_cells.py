"""Agent x alias cells: records name their agent, trial keys hold it, reports never pool two agents."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.cli.verdict import decide
from pytest_agentbench.errors import UsageError
from pytest_agentbench.plugin.collection import Case
from pytest_agentbench.reports.cells_html import agent_matrix_section
from pytest_agentbench.reports.compare import aliases_in, compare
from pytest_agentbench.reports.estimates import estimate_aliases
from pytest_agentbench.reports.html import render_html
from pytest_agentbench.reports.summary import format_summary, summarize
from pytest_agentbench.reports.trajectory import trajectory_section
from pytest_agentbench.results.benchmark import benchmark_json
from pytest_agentbench.results.cells import (
    BUILTIN_AGENT,
    cell_columns,
    column_of,
    label_cells,
    record_agent,
    record_agent_version,
    resolve_cell,
    trial_key,
)
from pytest_agentbench.results.export import swebench_predictions
from pytest_agentbench.results.jsonl import RESULTS_FILE, completed_trials
from pytest_agentbench.results.junit import alias_rows
from pytest_agentbench.results.provenance import agentbench_version
from pytest_agentbench.results.record import RunRecord, record_to_dict
from pytest_agentbench.scale.merge import trial_key as merge_trial_key

from .test_results import make_record
from .test_summary import cells

MINI = "mini-swe-agent"


def run(alias: str, agent: str = BUILTIN_AGENT, *, passed: bool = True, repeat: int = 1, **kw: Any) -> RunRecord:
    record = make_record(alias, passed=passed, **kw)
    record.repeat = repeat
    if agent != BUILTIN_AGENT:
        record.agent_name, record.agent_version = agent, "2.4.6"
    return record


def two_by_two(repeats: int = 3) -> list[dict[str, Any]]:
    """builtin passes everything, mini-swe-agent nothing, on both aliases; mini uses 10x the tokens."""
    out = []
    for alias in ("local-coder", "gpt-baseline"):
        for r in range(1, repeats + 1):
            out.append(record_to_dict(run(alias, repeat=r)))
            out.append(record_to_dict(run(alias, MINI, passed=False, repeat=r, calls=[(4.0, None, 1000, 100)])))
    return out


def strip_agent(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as written before agents could be chosen: no ``agent`` key."""
    return [{k: v for k, v in r.items() if k != "agent"} for r in records]


# --------------------------------------------------------------------------- the record


def test_the_record_names_its_agent_in_json_versions_and_junit() -> None:
    builtin, mini = run("a"), run("a", MINI)
    d, m = record_to_dict(builtin), record_to_dict(mini)
    assert d["agent"] == {"name": "builtin", "version": agentbench_version()}
    assert d["versions"]["agent"]["name"] == "builtin" and d["versions"]["agent"]["version"] == agentbench_version()
    assert len(d["versions"]["agent"]["system_prompt_sha256"]) == 64  # the built-in loop's prompt
    assert m["agent"] == {"name": MINI, "version": "2.4.6"} == m["versions"]["agent"]  # no prompt hash: not ours
    props = dict(mini.properties())
    assert props["agentbench.agent"] == MINI and props["agentbench.agent_version"] == "2.4.6"
    assert dict(builtin.properties())["agentbench.agent"] == "builtin"


def test_old_records_without_an_agent_read_as_builtin() -> None:
    old = strip_agent([record_to_dict(run("a"))])[0]
    assert record_agent(old) == BUILTIN_AGENT and record_agent_version(old) is None
    assert trial_key(old) == ("bugfix-median", "a", "builtin", 1) == merge_trial_key(old)
    assert record_agent({"agent": MINI}) == MINI  # a plain string (as shard tests write it) reads too
    assert record_agent({"agent": {"name": ""}}) == BUILTIN_AGENT


def test_resume_keys_hold_the_agent_so_two_agents_on_one_alias_never_collide(tmp_path: Path) -> None:
    records = [record_to_dict(run("a")), record_to_dict(run("a", MINI, repeat=2))]
    old = strip_agent([record_to_dict(run("b"))])
    (tmp_path / RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records + old))
    done = completed_trials(tmp_path)
    assert done == {
        ("bugfix-median", "a", "builtin", 1),
        ("bugfix-median", "a", MINI, 2),
        ("bugfix-median", "b", "builtin", 1),
    }
    record = run("a")
    case = Case(record.packet, record.spec, 2, agent=MINI)
    assert case.trial in done and Case(record.packet, record.spec, 2).trial not in done  # builtin r2 never ran
    assert Case(record.packet, record.spec, 1).trial in done  # the default agent is the built-in one
    assert case.shard_item().key == case.trial  # --shard places the same trial --resume skips


# --------------------------------------------------------------------------- labels


def test_labels_are_the_alias_with_one_agent_and_agent_at_alias_with_several() -> None:
    builtin_only = [record_to_dict(run("a")), record_to_dict(run("b"))]
    assert [column_of(r) for r in label_cells(builtin_only)] == ["a", "b"]
    mixed = label_cells([record_to_dict(run("a")), record_to_dict(run("a", MINI))])
    assert [column_of(r) for r in mixed] == ["builtin @ a", "mini-swe-agent @ a"]
    assert label_cells(mixed) == mixed  # idempotent
    assert "cell" not in record_to_dict(run("a"))  # the label is never written to a record
    assert column_of(record_to_dict(run("a", MINI))) == "mini-swe-agent @ a"  # unlabelled: still its own cell
    assert cell_columns(mixed, ["z", "a"]) == ["z", "builtin @ a", "mini-swe-agent @ a"]


def test_a_bare_alias_means_its_one_cell_and_is_refused_when_it_has_several() -> None:
    columns = ["builtin @ a", "mini-swe-agent @ a", "mini-swe-agent @ b"]
    assert resolve_cell("b", columns) == "mini-swe-agent @ b"
    assert resolve_cell("builtin @ a", columns) == "builtin @ a"
    with pytest.raises(UsageError, match=r"alias 'a' ran under 2 agents: name one cell, e\.g\. 'builtin @ a'"):
        resolve_cell("a", columns)


# --------------------------------------------------------------------------- terminal summary


def test_summary_compares_agent_x_alias_cells_side_by_side() -> None:
    text = format_summary(two_by_two(), width=160)
    assert text.splitlines()[0] == "agentbench summary: 12 runs, 4 cells (2 agents x 2 aliases)"
    header = text.splitlines()[text.splitlines().index("") + 1]
    assert re.split(r"\s{2,}", header.strip())[1:] == [
        "builtin @ local-coder",
        "mini-swe-agent @ local-coder",
        "builtin @ gpt-baseline",
        "mini-swe-agent @ gpt-baseline",
    ]
    assert "agent 2.4.6" in text  # the external agent's version under its label
    # never pooled: builtin passes 3/3 and mini 0/3 on the same alias
    assert [c.split(" [")[0] for c in cells(text, "pass rate")] == ["100% (3/3)", "0% (0/3)"] * 2
    assert cells(text, "runs") == ["3"] * 4
    assert cells(text, "tokens/run in / out") == ["100 / 10", "1,000 / 100"] * 2
    assert cells(text, "latency p50 / p90 (run)")[0] != cells(text, "latency p50 / p90 (run)")[1]
    assert cells(text, "solved within budget") == ["100% (3/3)", "0% (0/3)"] * 2
    assert "Columns are agent x alias cells" in text


def test_with_only_the_builtin_agent_the_summary_reads_exactly_as_before() -> None:
    records = [r for r in two_by_two() if r["agent"]["name"] == BUILTIN_AGENT]
    text = format_summary(records)
    assert text == format_summary(strip_agent(records))  # records from before agents: the same page
    assert text.splitlines()[0] == "agentbench summary: 6 runs, 2 aliases"
    assert " @ " not in text and "agent x alias" not in text and "agent 0." not in text
    assert [s.alias for s in summarize(records, ["gpt-baseline", "local-coder"])] == ["gpt-baseline", "local-coder"]


def test_listed_aliases_order_the_cells() -> None:
    summaries = summarize(two_by_two(1), ["gpt-baseline", "unrun", "local-coder"])
    assert [s.alias for s in summaries] == [
        "builtin @ gpt-baseline",
        "mini-swe-agent @ gpt-baseline",
        "unrun",
        "builtin @ local-coder",
        "mini-swe-agent @ local-coder",
    ]
    assert summaries[2].runs == 0 and summaries[1].agent == MINI and summaries[1].model_alias == "gpt-baseline"


# --------------------------------------------------------------------------- estimates, HTML, trajectories


def test_estimates_are_per_cell_and_their_property_names_say_agent_at_alias() -> None:
    est = {e.alias: e for e in estimate_aliases(two_by_two())}
    assert est["builtin @ local-coder"].passes == 3 and est["mini-swe-agent @ local-coder"].passes == 0
    names = [name for name, _ in est["mini-swe-agent @ local-coder"].properties()]
    assert "agentbench.mini-swe-agent@local-coder.runs" in names and all(" " not in n for n in names)
    only = [r for r in two_by_two() if r["agent"]["name"] == BUILTIN_AGENT]
    assert [e.alias for e in estimate_aliases(only)] == ["local-coder", "gpt-baseline"]


def test_html_has_the_agent_x_model_matrix_and_labels_every_column() -> None:
    records = two_by_two() + [record_to_dict(run("solo", MINI))]  # solo ran under mini only
    page = render_html(records)
    matrix = page[page.index('<h2 id="agents">') : page.index("<h2>Pass rate</h2>")]
    assert "<th>agent \\ alias</th><th>local-coder" in matrix and "<th>solo" in matrix
    rows = re.findall(r"<tr><td class=nw><b>([^<]+)</b>(.*?)</tr>", matrix)
    assert [name for name, _ in rows] == ["builtin", MINI]
    builtin_row, mini_row = (re.findall(r'<td class="num">(.*?)</td>', row) for _, row in rows)
    assert builtin_row[0].startswith("<b>100%</b> (3/3) [") and mini_row[0].startswith("<b>0%</b> (0/3) [")
    assert "tokens 110 [110, 110]" in builtin_row[0] and "tokens 1,100 [1,100, 1,100]" in mini_row[0]
    assert "wall " in mini_row[0] and builtin_row[2] == "not run"  # builtin never ran on solo
    assert "<small>2.4.6</small>" in matrix  # the agent's version
    assert "<th>mini-swe-agent @ local-coder" in page  # summary table, per-packet table ...
    assert "13 run(s), 5 cells (2 agents x 3 aliases)" in page
    assert page.count('data-col="mini-swe-agent @ local-coder"') >= 3  # the trajectory grid's cells
    assert "Each alias against <b>builtin @ local-coder</b>" in page  # paired comparison over cells


def test_html_without_other_agents_has_no_matrix_and_the_same_page() -> None:
    records = [r for r in two_by_two() if r["agent"]["name"] == BUILTIN_AGENT]
    page = render_html(records)
    assert 'id="agents"' not in page and " @ " not in page and "2 alias(es)" in page
    strip = re.compile(r"Generated [^.]*\.|run-[0-9a-f]{12}|[0-9a-f]{12}")  # time and ids differ per call
    assert strip.sub("", page) == strip.sub("", render_html(strip_agent(records)))
    assert agent_matrix_section(summarize(records)) == []


def test_trajectory_viewer_keeps_two_agents_on_one_alias_apart() -> None:
    records = [record_to_dict(run("a")), record_to_dict(run("a", MINI))]
    html = trajectory_section(records)
    assert '<th data-col="builtin @ a">' in html and '<th data-col="mini-swe-agent @ a">' in html
    assert html.count("compare with:") == 2  # each run links to the other agent's run of the trial


# --------------------------------------------------------------------------- compare, verdict, other outputs


def test_compare_pairs_two_agents_on_one_alias_and_refuses_a_bare_ambiguous_alias() -> None:
    records = two_by_two(10)
    assert aliases_in(records)[:2] == ["builtin @ local-coder", "mini-swe-agent @ local-coder"]
    c = compare(records, "builtin @ local-coder", "mini-swe-agent @ local-coder")
    assert c.n == 10 and c.counts.only_a == 10 and c.counts.only_b == 0 and c.significant
    with pytest.raises(UsageError, match="ran under 2 agents"):
        compare(records, "local-coder", "mini-swe-agent @ gpt-baseline")
    with pytest.raises(UsageError, match=r"the cells \(agent @ alias\) there are: builtin @ local-coder"):
        compare(records, "nope", "builtin @ local-coder")
    solo = [r for r in records if r["agent"]["name"] == MINI or r["alias"] == "gpt-baseline"]
    assert compare(solo, "local-coder", "builtin @ gpt-baseline").alias_a == "mini-swe-agent @ local-coder"


def test_compare_of_builtin_only_records_is_by_alias_as_before() -> None:
    records = strip_agent([r for r in two_by_two(5) if r["agent"]["name"] == BUILTIN_AGENT])
    c = compare(records, "local-coder", "gpt-baseline")
    assert (c.alias_a, c.alias_b, c.n) == ("local-coder", "gpt-baseline", 5)


def test_verdict_gives_each_cell_its_own_pass_rate() -> None:
    session = {
        "counts": {"passed": 3, "failed": 3},
        "runs": [
            {"packet": "p", "alias": "a", "agent": agent, "outcome": "finished", "passed": agent == "builtin"}
            for agent in ("builtin", MINI)
            for _ in range(3)
        ],
    }
    line = decide(1, session).lines[1]
    assert line == (
        "The evaluation ran to the end: 6 run(s) on builtin @ a, mini-swe-agent @ a, 3 passed all their gates "
        "(50 %); per cell: builtin @ a 3/3, mini-swe-agent @ a 0/3."
    )
    for r in session["runs"]:
        del r["agent"]  # a session file from before agents: as it read then
    assert (
        decide(1, session).lines[1] == "The evaluation ran to the end: 6 run(s) on a, 3 passed all their gates (50 %)."
    )


def test_benchmark_json_junit_rows_and_exports_keep_agents_apart(tmp_path: Path) -> None:
    records = [record_to_dict(run("a")), record_to_dict(run("a", MINI))]
    bench = benchmark_json(records, machine_info={})["benchmarks"]
    assert [b["param"] for b in bench] == ["bugfix-median-a", "bugfix-median-a-mini-swe-agent"]
    assert bench[0]["params"] == {"packet": "bugfix-median", "alias": "a"}
    assert bench[1]["params"]["agent"] == MINI and bench[1]["extra_info"]["agentbench.agent_version"] == "2.4.6"
    cases = [
        ("t", {k.removeprefix("agentbench."): str(v) for k, v in run("a", agent).properties()}, "passed")
        for agent in ("builtin", MINI)
    ]
    assert [row["alias"] for row in alias_rows(cases)] == ["builtin @ a", "mini-swe-agent @ a"]
    assert [row["alias"] for row in alias_rows(cases[:1])] == ["a"]
    for r in records:
        r["patch"] = {"diff": "diff --git a/x b/x\n"}
    names = [p["model_name_or_path"] for p in swebench_predictions([(tmp_path, records)], warn=print)]
    assert names == ["a", "a-mini-swe-agent"]
