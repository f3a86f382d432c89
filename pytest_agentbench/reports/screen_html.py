"""The screening as HTML: a section (one table per candidate) and a page around it. pytest-free.

:func:`screen_section` is the piece a report embeds (it is not hooked into the run
report yet: a run record does not carry its screening); :func:`render_screen_page`
wraps it in the report's own CSS for ``agentbench screen --html``. Every piece of
text is escaped: a finding may quote what a server answered.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_agentbench.reports.html import CSS
from pytest_agentbench.reports.svg import e
from pytest_agentbench.screening.rows import Row, Screen
from pytest_agentbench.screening.table import MARKS

__all__ = ["render_screen_page", "screen_section"]

_CLASS = {"pass": "pass", "fail": "fail", "warn": "warnv", "unknown": "unk", "n/a": "na"}
_EXTRA_CSS = ".warnv{color:#b26a00;font-weight:600}.unk{color:#5a6578;font-weight:600}.na{color:#7a8699}"


def _row(row: Row) -> str:
    evidence = "".join(f"<li>{e(item)}</li>" for item in row.evidence)
    rule = f'<div class="fail">disqualifier: {e(row.disqualifier)}</div>' if row.disqualified else ""
    folded = f"<details><summary>evidence ({len(row.evidence)})</summary><ul>{evidence}</ul></details>"
    return (
        f'<tr><td class="nw">{e(row.criterion)}</td><td class="nw {_CLASS[row.verdict]}">{e(MARKS[row.verdict])}</td>'
        f"<td>{e(row.finding)}{rule}{folded if row.evidence else ''}</td></tr>"
    )


def _candidate(screen: Screen) -> str:
    kind = {"vllm": "vLLM server", "scripted": "scripted test double, not a model", "endpoint": "existing endpoint"}
    verdict = (
        f'<span class="fail">disqualified on {e(", ".join(screen.disqualifiers))}</span>'
        if screen.disqualified
        else "not disqualified" + (f"; unknown: {e(', '.join(screen.open_findings))}" if screen.open_findings else "")
    )
    notes = "".join(f'<p class="meta">{e(n)}</p>' for n in screen.notes)
    return (
        f"<h3>{e(screen.alias)} <small>({e(screen.model)}; {e(kind.get(screen.kind, screen.kind))})</small></h3>"
        f'<p class="meta">{verdict}; screened in {screen.wall_s:.1f} s.</p>'
        "<table><tr><th>criterion</th><th>verdict</th><th>finding and evidence</th></tr>"
        + "".join(_row(r) for r in screen.rows)
        + f"</table>{notes}"
    )


def screen_section(screens: Sequence[Screen]) -> str:
    """``<section>`` with the screening of each candidate, rows in the course's order."""
    if not screens:
        return "<section><h2>Screening</h2><p>No candidates screened.</p></section>"
    intro = (
        '<p class="meta">Licence, serving support, tool format, context policy, failure behaviour: each row '
        "filled from evidence; unknown is a finding, not a pass.</p>"
    )
    return "<section><h2>Screening</h2>" + intro + "".join(_candidate(s) for s in screens) + "</section>"


def render_screen_page(screens: Sequence[Screen], title: str = "agentbench screen") -> str:
    """A self-contained page (inline CSS, no scripts) holding :func:`screen_section`."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{CSS}{_EXTRA_CSS}</style></head><body><h1>{e(title)}</h1>{screen_section(screens)}</body></html>"
    )
