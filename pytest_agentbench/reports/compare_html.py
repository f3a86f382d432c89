"""The HTML report's "Paired comparison" section (``reports.compare``, drawn with ``reports.svg``). pytest-free.

    parts += paired_section(records, aliases)      # [] when fewer than two aliases have judged runs

**Each alias against the reference** - the first alias of the run (the first of ``--models``) - not
every pair: a team reads a run as "the candidates against the model we use now"; k aliases give
k - 1 comparisons instead of k(k - 1)/2 (45 for ten aliases), and fewer tests mean fewer differences
"found" by chance. ``agentbench compare A B`` compares any other two.

Shown: an interval chart of the difference in pass rate (alias - reference, points) with its 95 %
interval, a table with the 2x2 counts, the exact McNemar p-value, the verdict and the paired-bootstrap
deltas, and per comparison (folded) the packets that flip and what the pairing left out. With more
than one agent in the records, what is compared is each agent x alias cell (``results.cells``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_agentbench.errors import UsageError
from pytest_agentbench.reports.compare import (
    Comparison,
    aliases_in,
    compare,
    delta_text,
    format_p,
    format_points,
    lost_text,
)
from pytest_agentbench.reports.summary import is_infrastructure
from pytest_agentbench.reports.svg import e, interval_chart
from pytest_agentbench.results.cells import column_of, label_cells

__all__ = ["paired_section"]

_COLORS = {True: "#c62828", False: "#4e79a7"}  # significant: red; not: blue


def _points(v: float) -> str:
    return f"{v:+.0f}" if v else "0"


def _chart(reference: str, results: Sequence[tuple[str, Comparison | str]]) -> str:
    rows = []
    for alias, cmp in results:
        name = f"{alias} - {reference}"
        if isinstance(cmp, str):
            rows.append((name, "#7a8699", None, None, None, cmp))
            continue
        d = cmp.difference
        assert d.value is not None and d.low is not None and d.high is not None
        text = f"{format_points(d.value)} [{format_points(d.low)}, {format_points(d.high)}]"
        rows.append((name, _COLORS[cmp.significant], d.value * 100, d.low * 100, d.high * 100, text))
    return interval_chart(rows, _points, "difference in pass rate (percentage points)", "paired differences")


def _table(results: Sequence[tuple[str, Comparison | str]]) -> str:
    head = (
        "<tr><th>alias</th><th>pairs</th><th>both</th><th>only reference</th><th>only alias</th><th>neither</th>"
        "<th>difference [95 %]</th><th>McNemar</th><th>verdict</th></tr>"
    )
    body = []
    for alias, cmp in results:
        if isinstance(cmp, str):
            body.append(f"<tr><td>{e(alias)}</td><td colspan=8>{e(cmp)}</td></tr>")
            continue
        k, d = cmp.counts, cmp.difference
        cells = [cmp.n, k.both, k.only_a, k.only_b, k.neither]
        body.append(
            f"<tr><td>{e(alias)}</td>"
            + "".join(f"<td class=num>{c}</td>" for c in cells)
            + f"<td class=num>{e(format_points(d.value))} [{e(format_points(d.low))}, {e(format_points(d.high))}]</td>"
            + f"<td class=num>{e(format_p(cmp.p_value))}</td>"
            + f'<td class="{"fail" if cmp.significant else ""}">{e(cmp.verdict)}</td></tr>'
        )
    return f"<table>{head}{''.join(body)}</table>"


def _details(alias: str, cmp: Comparison) -> str:
    deltas = "".join(f"<tr><td>{e(d.name)} ({e(d.statistic)})</td><td>{e(delta_text(d))}</td></tr>" for d in cmp.deltas)
    a, b = e(cmp.alias_a), e(cmp.alias_b)
    flips = "".join(
        f"<tr><td>{e(f.packet)}</td><td class=num>{f.pairs}</td><td class=num>{f.passed_a}</td>"
        f"<td class=num>{f.passed_b}</td><td class=num>{f.only_a}</td><td class=num>{f.only_b}</td></tr>"
        for f in cmp.packets
    )
    flipping = sum(1 for f in cmp.packets if f.flips)
    notes = "".join(f"<li>{e(line)}</li>" for line in [*lost_text(cmp.pairing), *cmp.warnings])
    return (
        f"<details><summary>{e(alias)}: deltas, packets that flip ({flipping} of {len(cmp.packets)})</summary>"
        f"<table><tr><th>per run (A = {a}, B = {b})</th><th>B - A, 95 % paired bootstrap</th></tr>{deltas}</table>"
        f"<table><tr><th>packet</th><th>pairs</th><th>{a} passed</th><th>{b} passed</th><th>only {a}</th>"
        f"<th>only {b}</th></tr>{flips}</table>" + (f"<ul>{notes}</ul>" if notes else "") + "</details>"
    )


def paired_section(records: Sequence[Mapping[str, Any]], aliases: Sequence[str] | None = None) -> list[str]:
    """The section's HTML parts: each alias against the first; ``[]`` with fewer than two judged aliases."""
    records = label_cells(records)  # with several agents, each agent x alias cell is one column (results.cells)
    judged = {column_of(r) for r in records if not is_infrastructure(r)}
    order = [a for a in [*(aliases or ()), *aliases_in(records)] if a in judged]
    order = list(dict.fromkeys(order))
    if len(order) < 2:
        return []
    reference = order[0]
    results: list[tuple[str, Comparison | str]] = []
    for alias in order[1:]:
        try:
            results.append((alias, compare(records, reference, alias)))
        except UsageError as exc:
            results.append((alias, f"not compared: {exc}"))
    details = [_details(alias, cmp) for alias, cmp in results if not isinstance(cmp, str)]
    return [
        "<h2>Paired comparison</h2>",
        f'<p class="meta">Each alias against <b>{e(reference)}</b> (the first alias: the reference) over the '
        "same (packet, repeat) trials. Only the pairs that disagree tell the aliases apart: the exact McNemar "
        "test asks whether they split evenly; the difference in pass rate (alias - reference) carries a 95 % "
        "Newcombe interval (red: significant at 0.05). Infrastructure runs and unpaired trials are left out "
        "(listed under each alias). Any other two: <code>agentbench compare A B results.jsonl</code>.</p>",
        _chart(reference, results),
        _table(results),
        *details,
    ]
