"""The HTML report's "Agents x models" matrix: one row per agent, one column per alias. pytest-free.

    parts += agent_matrix_section(summarize(records))   # [] unless the records hold more than one agent

Where a run compared agents (``--agent A,B``), the unit of comparison is the cell agent x alias
(``results.cells``); this matrix lays the cells out side by side so one model's column compares the
agents on it and one agent's row compares the models under it. Each cell: the pass rate with its
counts and 95 % Wilson interval, the median tokens per run (prompt + completion as the server
reported them) and the median run wall time, each with its bootstrap interval (``reports.estimates``);
runs whose endpoint never answered are counted apart, as everywhere. A combination that did not run
reads "not run". Every text is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pytest_agentbench.reports.intervals import Estimate
from pytest_agentbench.reports.summary import CELLS_NOTE, AliasSummary, format_seconds
from pytest_agentbench.reports.svg import e

__all__ = ["agent_matrix_section", "matrix_cell"]


def _with_interval(est: Estimate | None, fmt: Callable[[float], str]) -> str:
    """``3,600 [3,100, 4,200]``; the value alone with fewer than two runs; ``n/a`` when unknown."""
    if est is None or est.value is None:
        return "n/a"
    text = fmt(est.value)
    if est.n >= 2 and est.low is not None and est.high is not None:
        text += f" [{fmt(est.low)}, {fmt(est.high)}]"
    return text


def matrix_cell(s: AliasSummary | None) -> str:
    """One ``<td>`` of the matrix: pass rate [interval], tokens and wall time per run (medians [interval])."""
    if s is None:
        return '<td class="num">not run</td>'
    infra = sum(s.infrastructure.values())
    apart = f"<br><small>{infra} infrastructure error(s), not counted</small>" if infra else ""
    if not s.runs:
        return f'<td class="num">no judged run{apart}</td>'
    est = s.estimate
    rate = f"<b>{s.passed / s.runs:.0%}</b> ({s.passed}/{s.runs})"
    p1 = est.pass_at_1 if est else None
    if p1 is not None and p1.low is not None and p1.high is not None:
        rate += f" [{p1.low * 100:.0f}, {p1.high * 100:.0f}]"
    tokens = _with_interval(est.tokens if est else None, lambda v: f"{v:,.0f}")
    wall = _with_interval(est.latency_s if est else None, format_seconds)
    return f'<td class="num">{rate}<br>tokens {e(tokens)}<br>wall {e(wall)}{apart}</td>'


def agent_matrix_section(summaries: Sequence[AliasSummary]) -> list[str]:
    """The section's HTML parts; ``[]`` when the summaries hold fewer than two agents."""
    agents = list(dict.fromkeys(s.agent for s in summaries))
    if len(agents) < 2:
        return []
    aliases = list(dict.fromkeys(s.model_alias for s in summaries))
    cells = {(s.agent, s.model_alias): s for s in summaries}
    models = {s.model_alias: s.model for s in summaries if s.model}
    versions = {s.agent: s.agent_version for s in summaries if s.agent_version}
    head = "".join(
        f"<th>{e(a)}"
        + (f"<br><small>{e(models[a])}</small>" if models.get(a) and models[a] != a else "")
        + ("<br><span class=td>test double</span>" if any(cells[k].test_double for k in cells if k[1] == a) else "")
        + "</th>"
        for a in aliases
    )
    rows = "".join(
        f"<tr><td class=nw><b>{e(agent)}</b>"
        + (f"<br><small>{e(versions[agent])}</small>" if versions.get(agent) else "")
        + "</td>"
        + "".join(matrix_cell(cells.get((agent, alias))) for alias in aliases)
        + "</tr>"
        for agent in agents
    )
    return [
        '<h2 id="agents">Agents x models</h2>',
        f'<p class="meta">{e(CELLS_NOTE)} Each cell: pass rate (passed/runs) with its 95% Wilson interval; '
        "median tokens per run (prompt + completion, as the server reported them) and median run wall time "
        "(client), each with its 95% bootstrap interval.</p>",
        f'<table class="packets"><tr><th>agent \\ alias</th>{head}</tr>{rows}</table>',
    ]
