"""The decision record as Markdown: an ADR with context, options, decision and consequences.

``render_adr(decision, evidence)`` writes, in order: the title (branch and candidate), the status
(accepted / provisional, with what it rests on / blocked), the decision with its one-to-two-sentence
rationale, the context (the team's inputs and what the run measured, per candidate), the three
options, every rule of the tree as it was applied, the consequences, and a table that says of each
figure whether it was measured by the run, derived from measured figures, given with the run
(the ``cost:`` prices recorded with each run) or assumed (a team input). pytest-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from pytest_agentbench.capacity.cost import break_even_calls_per_hour, format_usd
from pytest_agentbench.decision.evidence import Candidate, Evidence
from pytest_agentbench.decision.outcome import Decision
from pytest_agentbench.reports.summary import format_seconds

__all__ = ["render_adr"]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _rate(x: float | None) -> str:
    if x is None:
        return "unknown"
    return "never" if math.isinf(x) else f"{x:,.0f} calls/h"


def _title(d: Decision) -> str:
    if d.chosen is None or d.branch is None:
        return "# ADR: no branch can be taken (blocked)"
    return f"# ADR: {d.branch} - {d.chosen.alias}"


def _status(d: Decision) -> str:
    if d.status == "provisional":
        return "provisional - it rests on evidence that is missing: " + "; ".join(d.open)
    return d.status


def _evidence_line(ev: Evidence) -> str:
    src = ev.sources
    runs = len(src.records)
    aliases = ", ".join(c.alias for c in ev.candidates) or "none"
    parts = [f"{', '.join(str(p) for p in src.results)} ({runs} run records; aliases {aliases})"]
    parts += [f"sweep {p}" for p, _ in src.sweeps] or ["no sweep"]
    parts += sorted({f"screening {p}" for p, _ in src.screens}) or ["no screening"]
    return "; ".join(parts)


def _head(d: Decision, ev: Evidence, when: datetime) -> list[str]:
    lines = [
        _title(d),
        "",
        f"- Status: {_status(d)}",
        f"- Date: {when.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "- Decided by: `agentbench decide`, applying the ordered rules of docs/decision.md",
        f"- Evidence: {_evidence_line(ev)}",
        "",
        "## Decision",
        "",
    ]
    if d.chosen is not None and d.branch is not None:
        double = "; a scripted test double, not a model" if d.chosen.test_double else ""
        lines.append(f"**{d.branch}**, with `{d.chosen.alias}` ({d.chosen.model}{double}).")
    else:
        lines.append("**Blocked**: no candidate qualifies, so no branch is taken.")
    return [*lines, "", d.rationale, ""]


def _inputs(d: Decision) -> list[list[object]]:
    i, costs = d.inputs, d.costs
    volume = "not given"
    if costs is not None and costs.calls_per_hour is not None:
        volume = f"{costs.calls_per_hour:,.0f} calls/h"
    elif costs is not None:
        volume = f"unknown: {costs.calls_from}"
    budget = "not given" if i.budget_usd_month is None else f"{format_usd(i.budget_usd_month)}/month"
    kind = costs.calls_from if costs is not None and costs.calls_per_hour is not None else "team input"
    return [
        ["data boundary", i.boundary, "team input (--data-boundary); admits " + ", ".join(i.admissible)],
        ["volume", volume, kind],
        ["budget", budget, "team input (--budget)"],
        ["hours per month", f"{i.hours_per_month:g}", "assumed (--hours-per-month): both bills run these hours"],
        ["confidence", f"{i.confidence:g}", "of every interval and test (--confidence)"],
    ]


def _screen_cell(c: Candidate) -> str:
    if c.screen is None:
        return "not screened"
    if c.screen.disqualifiers:
        return "disqualified: " + "; ".join(f"{crit}: {finding}" for crit, finding in c.screen.disqualifiers)
    warn = f" (warn: {', '.join(crit for crit, _ in c.screen.warnings)})" if c.screen.warnings else ""
    unknown = f" (unknown: {', '.join(c.screen.unknown)})" if c.screen.unknown else ""
    return "not disqualified" + warn + unknown


def _knee_cell(c: Candidate) -> str:
    if c.role != "local":
        return "-"
    if c.sweep is None:
        return "not measured (no sweep)"
    if not c.sweep.slo_given:
        return "not measured (the sweep gave no SLO)"
    return f"N={c.sweep.knee} ({c.sweep.slo})" if c.sweep.knee else f"breaks at N={c.sweep.smallest}"


def _usd_cells(c: Candidate) -> list[str]:
    """$/run, $ per solved run and $/call; marked where they rest on the assumed GPU price."""
    per_call = format_usd(c.cost_per_call) if c.cost_per_call is not None else "unknown"
    cells = [c.spend.per_run_text(), c.spend.per_solved_text(), per_call]
    return [f"{x} (assumed GPU $/h)" if c.gpu_assumed and x[0] == "$" else x for x in cells]


def _measured_rows(ev: Evidence) -> list[list[object]]:
    rows: list[list[object]] = []
    for c in ev.candidates:
        latency = format_seconds(c.call_latency_s) if c.call_latency_s is not None else "n/a"
        rows.append(
            [c.label(), f"{c.role}: {c.role_from}", c.runs, c.pass_text(), *_usd_cells(c), latency]
            + [_screen_cell(c), _knee_cell(c)]
        )
    return rows


def _break_even_rows(ev: Evidence) -> list[list[object]]:
    """Each local candidate with a GPU price against each commercial one with a $ per call."""
    rows: list[list[object]] = []
    for loc in (c for c in ev.candidates if c.role == "local" and c.gpu is not None):
        for com in (c for c in ev.candidates if c.role == "commercial" and c.cost_per_call is not None):
            assert loc.gpu is not None and com.cost_per_call is not None
            gpu = "assumed" if loc.gpu_assumed else "given"
            rows.append(
                [
                    f"break-even, one {loc.alias} server against {com.alias}",
                    _rate(break_even_calls_per_hour(com.cost_per_call, loc.gpu)),
                    f"derived: {loc.alias}'s GPU $/h ({gpu}) / {com.alias}'s $ per call (measured tokens x its price)",
                ]
            )
    return rows


def _context(d: Decision, ev: Evidence) -> list[str]:
    lines = ["## Context", "", "The team's inputs:", ""]
    lines += _table(["input", "value", "kind"], _inputs(d))
    lines += ["", "What the run measured, per candidate (the run summary's figures, from the same records):", ""]
    head = ["candidate", "role", "runs", "pass rate [95% CI]", "$/run", "$ per solved run", "$/call"]
    head += ["model-call latency (mean)", "screening", "SLO knee"]
    lines += _table(head, _measured_rows(ev))
    if d.quality is not None:
        how = "paired by (packet, repeat)" if d.quality.method == "paired" else "unpaired"
        lines += ["", f"Quality ({how}): {d.quality.text}."]
    for alias, why in ev.unroled.items():
        lines += ["", f"Left out of the candidates: {alias}: {why}."]
    lines += [f"Note: {note}." for note in ev.notes]
    return [*lines, ""]


def _options(d: Decision) -> list[str]:
    rows = [[o.branch, "yes" if o.admissible else "no", o.candidate or "-", o.note] for o in d.options]
    return ["## Options", "", *_table(["branch", "admitted", "candidate", "standing"], rows), ""]


def _rules(d: Decision) -> list[str]:
    lines = ["## The rules as applied (docs/decision.md)", ""]
    lines += [f"{st.rule}. **{st.name}**: {st.outcome}" for st in d.steps]
    if d.excluded:
        lines += ["", "Left out:", ""]
        lines += [f"- `{alias}`: {why}" for alias, why in d.excluded.items()]
    return [*lines, ""]


def _provenance(d: Decision, ev: Evidence) -> list[list[object]]:
    rows: list[list[object]] = []
    runs = ", ".join(str(p) for p in ev.sources.results)
    for c in ev.candidates:
        if c.gpu_assumed:
            priced = "measured model-call time x the assumed GPU $/h (--gpu-hourly-usd)"
        elif c.role == "local":
            priced = "measured model-call time x the run's GPU $/h (cost: recorded with each run)"
        else:
            priced = "measured tokens x the run's prices (cost: recorded with each run)"
        rows.append([f"pass rate, {c.alias}", c.pass_text(), f"measured: {c.runs} runs in {runs}"])
        rows.append([f"$ per solved run, {c.alias}", c.spend.per_solved_text(), priced])
        if c.role == "local":
            gpu = f"{format_usd(c.gpu.hourly_usd)}/h" if c.gpu is not None else "none"
            rows.append([f"GPU $/h, {c.alias}", gpu, c.gpu_from])
            capacity = "derived: concurrency x 3600 / measured mean model-call latency (not SLO-checked)"
            rows.append([f"GPU capacity, {c.alias}", _rate(c.capacity_calls_per_hour), capacity])
            knee = f"sweep {c.sweep.source}" if c.sweep is not None else "not measured: no sweep"
            rows.append([f"SLO knee, {c.alias}", _knee_cell(c), knee])
        screened = f"screening {c.screen.source}" if c.screen is not None else "not screened"
        rows.append([f"screening, {c.alias}", _screen_cell(c), screened])
    rows += _break_even_rows(ev)
    costs = d.costs
    if costs is not None and costs.local:
        rows.append([f"servers, {costs.local}", costs.servers, costs.servers_from])
    return rows


def _consequences(d: Decision, ev: Evidence) -> list[str]:
    lines = ["## Consequences", ""]
    lines += [f"- {text}" for text in d.consequences] or ["- none recorded"]
    lines += ["", "## Measured here and assumed", ""]
    lines += _table(["figure", "value", "source"], _provenance(d, ev) + _inputs(d)[:4])
    return [*lines, ""]


def render_adr(decision: Decision, evidence: Evidence, *, when: datetime | None = None) -> str:
    """The whole record as Markdown."""
    when = when or datetime.now(UTC)
    parts = (
        _head(decision, evidence, when),
        _context(decision, evidence),
        _options(decision),
        _rules(decision),
        _consequences(decision, evidence),
    )
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"
