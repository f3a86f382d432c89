"""What people read of several sweeps compared: one table per team size N, cheapest that holds the SLO first.

:func:`format_ranking` prints, for each N, one row per configuration (rank, alias, SLO verdict, pass
rate, $/dev-month, goodput, median TTFT, and why a row cannot win) within ``TABLE_WIDTH`` columns;
:func:`render_ranking_html` writes the same as a self-contained page with one $/dev-month bar chart
per N (``reports/svg.py``). The ranking rule is ``capacity/ranking.py``'s.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

from pytest_agentbench.capacity.ranking import RankRow
from pytest_agentbench.reports.svg import e, hbar_chart
from pytest_agentbench.reports.sweep import TABLE_WIDTH, grid

__all__ = ["format_ranking", "ranking_body", "render_ranking_html"]

_HEADER = ("rank", "alias", "SLO", "pass", "$/dev-mo", "good", "ttft", "why not")
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;"
    "margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
    "td:nth-child(2),th:nth-child(2),td:last-child,th:last-child{text-align:left}"
    "tr.win td{background:#eef8ee}tr.out td{color:#777}svg{margin:8px 16px 8px 0;border:1px solid #eee}"
)


def _usd(value: float | None) -> str:
    from pytest_agentbench.capacity.cost import format_usd

    return "-" if value is None else format_usd(value)


def _cells(r: RankRow) -> list[str]:
    return [
        "-" if r.rank is None else str(r.rank),
        r.alias + (" (double)" if r.test_double else ""),
        "-" if r.slo_holds is None else ("holds" if r.slo_holds else "BREAKS"),
        "-" if r.pass_rate is None else f"{r.pass_rate:.0%} of {r.runs}",
        _usd(r.usd_per_dev_month),
        "-" if r.goodput_share is None else f"{r.goodput_share:.0%}",
        "-" if r.ttft_p50_s is None else f"{r.ttft_p50_s:.3f}",
        r.why or ("cheapest that holds the SLO" if r.rank == 1 else ""),
    ]


def format_ranking(tables: Mapping[int, Sequence[RankRow]], tolerance: float, width: int = TABLE_WIDTH) -> str:
    """One table per N; the last column wraps onto its own line when the row would be wider than *width*."""
    wrap = textwrap.TextWrapper(width=width, subsequent_indent="    ")
    out = wrap.wrap(
        "agentbench rank: per team size N, eligible = holds the SLO and passes within "
        f"{tolerance * 100:g} points of the best pass rate that holds it; ranked by $/dev-month"
    )
    for n, rows in tables.items():
        out += ["", f"N = {n}"]
        lines = grid(_HEADER[:-1], [_cells(r)[:-1] for r in rows])
        out += lines[:2]
        for line, r in zip(lines[2:], rows, strict=True):
            why = _cells(r)[-1]
            joined = f"{line}  {why}" if why else line
            out += [joined] if len(joined) <= width else [line, *wrap.wrap(f"    {why}")]
        winner = next((r for r in rows if r.rank == 1), None)
        out += wrap.wrap(
            f"N = {n}: {winner.alias} at {_usd(winner.usd_per_dev_month)}/dev-month"
            if winner
            else f"N = {n}: no configuration holds the SLO with a competitive pass rate"
        )
    return "\n".join(out)


def ranking_body(
    tables: Mapping[int, Sequence[RankRow]], tolerance: float, sources: Sequence[str], heading: str = "h2"
) -> str:
    """The page's body below its title, a fragment (also a section of the run report): the rule, the
    sources, and per N a $/dev-month chart of the eligible rows and the whole table."""
    parts = []
    for n, rows in tables.items():
        eligible = [r for r in rows if r.rank is not None and r.usd_per_dev_month is not None]
        if eligible:
            top = max(r.usd_per_dev_month or 0.0 for r in eligible)
            bars = [
                (r.alias, "#2a7" if r.rank == 1 else "#1f5fa8", r.usd_per_dev_month, _usd(r.usd_per_dev_month))
                for r in eligible
            ]
            parts.append(hbar_chart(bars, top, lambda v: f"${v:,.0f}", "", f"$/dev-month at N = {n}"))
        table = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in _HEADER) + "</tr>"]
        for r in rows:
            cls = ' class="win"' if r.rank == 1 else (' class="out"' if r.rank is None else "")
            table.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in _cells(r)) + "</tr>")
        parts.append(f"<{heading}>N = {n}</{heading}>" + "".join(table) + "</table>")
    rule = (
        f"eligible = holds the SLO and passes within {tolerance * 100:g} points of the best pass rate that holds it; "
        "ranked by $/dev-month (cheapest first)"
    )
    return f"<p>{e(rule)}</p><ul>" + "".join(f"<li>{e(s)}</li>" for s in sources) + "</ul>" + "".join(parts)


def render_ranking_html(tables: Mapping[int, Sequence[RankRow]], tolerance: float, sources: Sequence[str]) -> str:
    """A self-contained page: the title and :func:`ranking_body`."""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>agentbench rank</title>'
        f"<style>{_STYLE}</style></head><body><h1>agentbench rank</h1>"
        + ranking_body(tables, tolerance, sources)
        + "</body></html>\n"
    )
