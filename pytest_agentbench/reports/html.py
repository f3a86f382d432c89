"""A single self-contained HTML report from run records. pytest-free, no third-party imports.

    write_html(load_records("results.jsonl"), "agentbench.html", "nightly")

Inline CSS and inline SVG (drawn with reports/svg.py), one inline script (the trajectory viewer of
reports/trajectory.py; the page reads without it): nothing fetched when the file is opened.
Sections: the isolation warnings (mixed levels, unsafe-local runs), the summary table (the same
rows as the terminal summary, isolation included), with more than one agent the agents x models
matrix (``reports/cells_html.py``; every per-alias figure is then per agent x alias cell,
``agent @ alias``: ``results.cells``), pass rate per alias, run-latency box + strip plot, tokens
and cost per run, outcome classes per alias, the paired comparison of each alias with the first
(``reports/compare_html.py``), and every run with its gates and (folded) transcript; then
provenance per alias (reports/provenance.py) and the trajectory viewer (packet x alias grid -> a
run's patch and turns); given ``capacity`` fragments (``reports/capacity_html.py``: saved sweeps,
loads, the ranking), a Capacity section before Runs. Runs whose endpoint
never answered (outcome ``infrastructure``) are in none of those: a note at the top and
a section of their own list them. Every piece of text from a record is HTML-escaped: a
transcript may contain ``<script>``. :func:`write_html` redacts secrets from the records
and the page (:mod:`pytest_agentbench.results.redact`; by default the environment's).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_agentbench.reports.cells_html import agent_matrix_section
from pytest_agentbench.reports.compare_html import paired_section
from pytest_agentbench.reports.estimates import PairEstimates, reported_ks
from pytest_agentbench.reports.isolation import isolation_warnings
from pytest_agentbench.reports.provenance import provenance_section
from pytest_agentbench.reports.summary import (
    NOT_STREAMED,
    AliasSummary,
    columns_text,
    format_seconds,
    is_infrastructure,
    summarize,
    summary_rows,
)
from pytest_agentbench.reports.svg import box_strip, e, hbar_chart, legend, stacked_chart, tick_seconds
from pytest_agentbench.reports.trajectory import TRAJECTORY_CSS, trajectory_section
from pytest_agentbench.results.cells import column_of, label_cells, record_repeat
from pytest_agentbench.results.redact import Redactor

__all__ = ["render_html", "write_html"]

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
CATEGORY_COLORS = {
    "passed": "#59a14f",
    "gates missed": "#e15759",
    "max_turns": "#edc948",
    "agent_timeout": "#f28e2b",
    "token_budget": "#e8b04a",
    "safety_timeout": "#d37295",
}
_OTHER_CATEGORY_COLORS = ("#b07aa1", "#9c755f", "#76b7b2", "#ff9da7", "#4e79a7", "#bab0ac")

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:#1d2430;margin:24px;
max-width:1180px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;
padding-bottom:4px}
.meta{color:#5a6578;margin:0 0 8px}.note{background:#fff8e1;border-left:4px solid #edc948;padding:6px 10px;
margin:8px 0}.note.warn{background:#fdecea;border-left-color:#c62828;font-weight:600}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #d8dde6;padding:3px 8px;vertical-align:top}
th{background:#f1f4f8;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.nw{white-space:nowrap}
tr.sub td:first-child{padding-left:22px;color:#5a6578}tr.sec td{background:#fafbfc;font-weight:600}
.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}
.gate{display:inline-block;border-radius:3px;padding:0 5px;margin:1px 2px;font-size:12px;color:#fff}
.gate.ok{background:#59a14f}.gate.ko{background:#e15759}.td{font-size:11px;color:#7a5c00;background:#fff3c4;
border-radius:3px;padding:0 4px}
details{margin:2px 0}summary{cursor:pointer;color:#2a5db0}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid #e1e4e8;padding:8px;
font:12px/1.4 "DejaVu Sans Mono",Menlo,Consolas,monospace;max-height:480px;overflow:auto}
svg{display:block;margin:6px 0}svg text{font:12px -apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
table.runs{width:100%}tr.det td{border-top:none;padding:0 8px 4px 22px;background:#fcfcfd}
tr.det details{display:inline-block;vertical-align:top;margin-right:18px}tr.det details[open]{display:block}
.flaky{font-size:11px;color:#7a5c00;background:#fff3c4;border-radius:3px;padding:0 4px}
table.packets td.num{text-align:left;white-space:nowrap}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:11px;height:11px;
margin-right:4px;vertical-align:-1px}
"""


def _row_name(s: AliasSummary) -> str:
    """The alias as a chart row calls it."""
    return s.alias + (" (test double)" if s.test_double else "")


def _box_strip(summaries: Sequence[AliasSummary], colors: Mapping[str, str]) -> str:
    """Per alias: a box (q1..q3, median line, whiskers min..max) and every run as a dot."""
    return box_strip(
        [(_row_name(s), colors[s.alias], s.run_wall_s) for s in summaries],
        value_fmt=format_seconds,
        tick_fmt=tick_seconds,
        unit="run wall time (client)",
        label="run latency per alias",
    )


# --------------------------------------------------------------------------- sections


def _summary_table(summaries: Sequence[AliasSummary], records: Sequence[Mapping[str, Any]] = ()) -> str:
    head = "".join(
        f"<th>{e(s.alias)}"
        + ("<br><span class=td>test double</span>" if s.test_double else "")
        + (f"<br><small>{e(s.model)}</small>" if s.model and s.model != s.alias else "")
        + "</th>"
        for s in summaries
    )
    body = []
    for label, cells in summary_rows(summaries, records):
        sub = label.startswith("  ")
        section = not sub and all(c == "" for c in cells)
        cls = ' class="sub"' if sub else (' class="sec"' if section else "")
        body.append(
            f"<tr{cls}><td>{e(label.strip())}</td>" + "".join(f'<td class="num">{e(c)}</td>' for c in cells) + "</tr>"
        )
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _pass_rate_chart(summaries: Sequence[AliasSummary], colors: Mapping[str, str]) -> str:
    """Bars of the pass rate, whiskers of its 95 % Wilson interval."""
    rows, intervals = [], []
    for s in summaries:
        est = s.estimate.pass_at_1 if s.estimate else None
        known = est is not None and est.low is not None and est.high is not None
        ci = f" [{est.low * 100:.0f}, {est.high * 100:.0f}]" if known else ""
        text = (
            f"{s.pass_rate:.0%} ({s.passed}/{s.runs}){ci}"
            if s.runs
            else f"no answer: {sum(s.infrastructure.values())} infrastructure error(s)"
            if s.infrastructure
            else "no runs"
        )
        rows.append((_row_name(s), colors[s.alias], (s.pass_rate or 0.0) * 100 if s.runs else None, text))
        intervals.append(
            (est.low * 100, est.high * 100, f"95% interval (Wilson): {est.low:.0%} - {est.high:.0%}")
            if known and est is not None and est.low is not None and est.high is not None
            else None
        )
    return hbar_chart(
        rows,
        100.0,
        lambda v: f"{v:.0f}%",
        "pass rate (whiskers: 95% interval)",
        "pass rate per alias",
        intervals=intervals,
    )


def _tokens_chart(summaries: Sequence[AliasSummary]) -> str:
    colors = {"prompt": "#4e79a7", "completion": "#f28e2b"}
    rows = [
        (
            _row_name(s),
            [
                ("prompt", statistics.mean(s.prompt_tokens) if s.prompt_tokens else 0.0),
                ("completion", statistics.mean(s.completion_tokens) if s.completion_tokens else 0.0),
            ],
        )
        for s in summaries
    ]
    return legend(colors, ["prompt", "completion"]) + stacked_chart(
        rows, colors, lambda v: f"{v:,.0f}", "mean tokens per run (as reported by the server)", "tokens per run"
    )


def _spend_chart(summaries: Sequence[AliasSummary], colors: Mapping[str, str], *, solved: bool) -> str:
    """Mean $ per run (``solved``: $ per solved run) with its bootstrap interval as whiskers."""
    from pytest_agentbench.capacity.cost import format_usd

    rows, intervals = [], []
    for s in summaries:
        spend = s.estimate.spend if s.estimate else None
        est = None if spend is None else spend.per_solved if solved else spend.per_run
        text = "unknown" if spend is None else spend.per_solved_text() if solved else spend.per_run_text()
        if est is None or est.value is None:
            text = text if text != "unknown" else "unknown (no cost: mapping or no usage)"
            rows.append((_row_name(s), colors[s.alias], None, text))
            intervals.append(None)
            continue
        rows.append((_row_name(s), colors[s.alias], est.value, text))
        if est.n >= 2 and est.low is not None and est.high is not None:
            high = "unbounded" if math.isinf(est.high) else format_usd(est.high)
            intervals.append((est.low, est.high, f"95% interval: {format_usd(est.low)} - {high}"))
        else:
            intervals.append(None)
    if all(v is None for _, _, v, _ in rows):
        if solved and any(s.estimate and s.estimate.spend.known for s in summaries):
            return '<p class="meta">No solved run for any alias whose cost is known: no $ per solved run.</p>'
        return (
            '<p class="meta">Cost unknown for every alias: no <code>cost:</code> mapping in models.yaml, or '
            "no usage reported (never shown as $0).</p>"
        )
    hi = max((v for _, _, v, _ in rows if v is not None), default=0.0)
    unit = "$ per solved run (spend / passed runs)" if solved else "mean $ per run"
    return hbar_chart(rows, hi, format_usd, unit + " (whiskers: 95% interval)", unit, intervals=intervals)


def _pair_cell(pair: PairEstimates | None, gates: Sequence[int] | None) -> str:
    """One (packet, alias) of the per-packet table: passes, pass@1 [interval], pass^N, gates, median wall time."""
    if pair is None or not pair.trials:
        return '<td class="num">-</td>'
    est = pair.pass_at_1
    lines = [f"<b>{pair.passes}/{pair.trials}</b> passed"]
    if est.low is not None and est.high is not None:
        lines[0] += f" &middot; {est.value or 0:.0%} [{est.low:.0%}, {est.high:.0%}]"
    if pair.trials > 1:
        lines.append(f"pass^{pair.trials} {pair.pass_hat_k[pair.trials]:.0%}")
    if gates:
        lines.append(f"gates {gates[0]}/{gates[1]}")
    if pair.latency_s.value is not None:
        wall = format_seconds(pair.latency_s.value)
        if pair.latency_s.n >= 2 and pair.latency_s.low is not None and pair.latency_s.high is not None:
            wall += f" [{format_seconds(pair.latency_s.low)}, {format_seconds(pair.latency_s.high)}]"
        lines.append(f"p50 {e(wall)}")
    flaky = ' <span class="flaky">flaky</span>' if pair.flaky else ""
    return f'<td class="num">{"<br>".join(lines)}{flaky}</td>'


def _packets_section(summaries: Sequence[AliasSummary]) -> list[str]:
    """Per packet x alias: the estimates of each pair; with repeats, pass@k and pass^k for every k."""
    pairs = {(p.packet, s.alias): p for s in summaries if s.estimate for p in s.estimate.packets}
    packets = sorted({packet for packet, _ in pairs})
    if not packets:
        return []
    head = "".join(f"<th>{e(s.alias)}</th>" for s in summaries)
    body = "".join(
        f"<tr><td class=nw>{e(packet)}</td>"
        + "".join(_pair_cell(pairs.get((packet, s.alias)), s.gates_by_packet.get(packet)) for s in summaries)
        + "</tr>"
        for packet in packets
    )
    out = [
        "<h2>Per packet</h2>",
        '<p class="meta">Per packet and alias: passed trials, pass@1 with its 95% Wilson interval, pass^N (all N '
        "trials pass), gates passed / run over its trials, the median run wall time with its bootstrap interval; "
        "<i>flaky</i>: both passed and failed.</p>",
        f'<table class="packets"><tr><th>packet</th>{head}</tr>{body}</table>',
    ]
    trials = max((s.estimate.trials for s in summaries if s.estimate), default=0)
    if trials > 1:
        rows = []
        for hat in (False, True):
            for k in reported_ks(trials):
                cells = []
                for s in summaries:
                    at = s.estimate.at(k, hat=hat) if s.estimate else None
                    cells.append(f'<td class="num">{e(at.text() if at else "n/a")}</td>')
                rows.append(f"<tr><td>pass{'^' if hat else '@'}{k}</td>{''.join(cells)}</tr>")
        out += [
            '<p class="meta">pass@k: the chance that at least one of k trials passes; pass^k: that all k do '
            "(unbiased estimators from the N trials run, averaged over the packets with at least k trials).</p>",
            f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>",
        ]
    return out


def _category_chart(summaries: Sequence[AliasSummary]) -> str:
    cats = sorted({c for s in summaries for c in s.categories}, key=lambda c: (c != "passed", c != "gates missed", c))
    colors = dict(CATEGORY_COLORS)
    extra = iter(_OTHER_CATEGORY_COLORS * 4)
    for c in cats:
        colors.setdefault(c, next(extra))
    rows = [(_row_name(s), [(c, float(s.categories[c])) for c in cats]) for s in summaries]
    hi = max((s.runs for s in summaries), default=1)
    return legend(colors, cats) + stacked_chart(
        rows, colors, lambda v: f"{v:.0f}", "runs", "outcome classes", hi=float(hi)
    )


def _gate_badges(rec: Mapping[str, Any]) -> str:
    out = []
    for g in rec.get("gates") or []:
        ok = bool(g.get("passed"))
        tip = (
            f"{g.get('command', '')} -> exit {g.get('exit')} (expected {g.get('expected')})"
            + (" timed out" if g.get("timed_out") else "")
            + (" [guard]" if g.get("guard") else "")
        )
        out.append(
            f'<span class="gate {"ok" if ok else "ko"}" title="{e(tip)}">'
            f"{'&#10003;' if ok else '&#10007;'} {e(g.get('id'))}</span>"
        )
    return "".join(out)


def _run_details(rec: Mapping[str, Any]) -> str:
    parts = []
    failed = [g for g in rec.get("gates") or [] if not g.get("passed") and g.get("output_tail")]
    for g in failed:
        parts.append(
            f"<details><summary>gate {e(g.get('id'))} output (tail)</summary>"
            f"<pre>{e(g.get('output_tail'))}</pre></details>"
        )
    if rec.get("server"):
        parts.append(
            "<details><summary>server-side metrics</summary>"
            f"<pre>{e(json.dumps(rec['server'], indent=1, sort_keys=True))}</pre></details>"
        )
    if rec.get("transcript"):
        parts.append(f"<details><summary>transcript</summary><pre>{e(rec['transcript'])}</pre></details>")
    if rec.get("error"):
        parts.append(f"<div><small>{e(rec['error'])}</small></div>")
    return "".join(parts)


def _runs_table(records: Sequence[Mapping[str, Any]]) -> str:
    from pytest_agentbench.capacity.cost import format_usd

    rows = []
    for rec in sorted(
        records,
        key=lambda r: (
            (r.get("packet") or {}).get("id", ""),
            column_of(r),
            record_repeat(r),
            str(r.get("timestamp")),
        ),
    ):
        client = rec.get("client") or {}
        tokens = client.get("tokens") or {}
        passed = bool(rec.get("passed"))
        outcome = str(rec.get("outcome")) + (f" ({rec['failure']})" if rec.get("failure") else "")
        td = ' <span class="td">test double</span>' if rec.get("test_double") else ""
        rows.append(
            f"<tr><td class=nw>{e((rec.get('packet') or {}).get('id'))}</td><td>{e(column_of(rec))}{td}</td>"
            f"<td class=num>{record_repeat(rec)}</td>"
            f'<td class="{"pass" if passed else "fail"}">{"pass" if passed else "fail"}</td>'
            f"<td>{e(outcome)}</td><td>{_gate_badges(rec)}</td><td class=num>{e(rec.get('turns'))}</td>"
            f"<td class=num>{e(format_seconds(client.get('wall_s')))}</td>"
            f"<td class=num>{int(tokens.get('prompt', 0)):,} / {int(tokens.get('completion', 0)):,}</td>"
            f"<td class=num>{e(format_usd((rec.get('cost') or {}).get('usd')))}</td></tr>"
        )
        details = _run_details(rec)
        if details:  # full width under its run, so an opened transcript is readable
            rows.append(f'<tr class="det"><td colspan="10">{details}</td></tr>')
    head = (
        "<tr><th>packet</th><th>alias</th><th>repeat</th><th>result</th><th>outcome</th><th>gates</th><th>turns</th>"
        "<th>wall</th><th>tokens in / out</th><th>cost</th></tr>"
    )
    return f'<table class="runs">{head}{"".join(rows)}</table>'


def _infrastructure_section(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The runs whose endpoint never answered, apart from the graded ones (nothing when there are none)."""
    infra = [r for r in records if is_infrastructure(r)]
    if not infra:
        return []
    rows = "".join(
        f"<tr><td class=nw>{e((r.get('packet') or {}).get('id'))}</td><td>{e(column_of(r))}</td>"
        f"<td>{e((r.get('extra') or {}).get('endpoint', ''))}</td><td>{e(r.get('failure'))}</td>"
        f"<td><small>{e(r.get('error'))}</small></td></tr>"
        for r in sorted(infra, key=lambda r: (column_of(r), str(r.get("timestamp"))))
    )
    return [
        "<h2>Infrastructure errors</h2>",
        '<p class="meta">The endpoint never answered these runs (unreachable, auth refused, rate limited or a '
        "server error on every attempt of the first call): pytest errors, no gates run, left out of the pass "
        "rates and every figure above; <code>--resume</code> runs them again.</p>",
        f"<table><tr><th>packet</th><th>alias</th><th>endpoint</th><th>failure</th><th>error</th></tr>{rows}</table>",
    ]


def _head(
    records: Sequence[Mapping[str, Any]], summaries: Sequence[AliasSummary], title: str, extra_css: str = ""
) -> list[str]:
    """The page's head, title line and the notes that apply to the whole run (test doubles, isolation)."""
    packets = sorted({str((r.get("packet") or {}).get("id")) for r in records})
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{CSS}{TRAJECTORY_CSS}{extra_css}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">{len(records)} run(s), {e(_columns(summaries))}, {len(packets)} packet(s): '
        f"{e(', '.join(packets))}. Generated {e(generated)}.</p>",
    ]
    if any(s.test_double for s in summaries):
        doubles = ", ".join(s.alias for s in summaries if s.test_double)
        parts.append(
            f'<p class="note">Test double(s): {e(doubles)} replay fixed responses from a scripted server; '
            "they are not models, and their numbers measure the harness only.</p>"
        )
    parts += [f'<p class="note warn">{e(w)}</p>' for w in isolation_warnings(records)]
    return parts


def _columns(summaries: Sequence[AliasSummary]) -> str:
    """``2 alias(es)``; with several agents ``4 cells (2 agents x 2 aliases)`` (``reports.summary.columns_text``)."""
    return columns_text(summaries) if len({s.agent for s in summaries}) > 1 else f"{len(summaries)} alias(es)"


def _capacity_css() -> str:
    from pytest_agentbench.reports.capacity_html import CAPACITY_CSS  # the capacity modules only when asked

    return CAPACITY_CSS


def _capacity_section(capacity: Sequence[str] | None) -> list[str]:
    """The saved sweeps and loads (body fragments of ``reports/capacity_html.py``), under one heading."""
    if not capacity:
        return []
    return [
        '<section class="capacity"><h2 id="capacity">Capacity</h2><p class="meta">Serving capacity measured by '
        "<code>agentbench sweep</code> / <code>agentbench load</code>, read from their saved JSON; columns and rules: "
        "docs/capacity.md.</p>",
        *capacity,
        "</section>",
    ]


def render_html(
    records: Sequence[Mapping[str, Any]],
    title: str = "agentbench report",
    *,
    aliases: Sequence[str] | None = None,
    capacity: Sequence[str] | None = None,
) -> str:
    """The whole report as one HTML string (see :func:`write_html`); *capacity*: the body fragments of
    ``reports/capacity_html.capacity_fragments`` (sweeps, loads, ranking), a section of their own."""
    records = label_cells(records)  # several agents: every column is an agent x alias cell (results.cells)
    summaries = summarize(records, aliases)
    colors = {s.alias: PALETTE[i % len(PALETTE)] for i, s in enumerate(summaries)}
    parts = _head(records, summaries, title, _capacity_css() if capacity else "")
    if not records:
        parts += ["<p>No runs recorded.</p>", *_capacity_section(capacity), "</body></html>"]
        return "".join(parts)
    infra = sum(1 for r in records if is_infrastructure(r))
    if infra:
        parts.append(
            f'<p class="note">{infra} run(s) never got an answer from their endpoint: infrastructure errors, '
            "not counted for or against any model (see Infrastructure errors below).</p>"
        )
    graded = [r for r in records if not is_infrastructure(r)]
    ttft_note = "" if any(s.ttft_s for s in summaries) else f" TTFT: {NOT_STREAMED}."
    parts += [
        "<h2>Summary</h2>",
        _summary_table(summaries, records),
        '<p class="meta">Percentiles by linear interpolation between closest ranks. Latency, TTFT and tok/s are '
        "measured on the client (wall clock around the run and each HTTP call); tok/s = completion tokens / call "
        f"wall time. Cost: unknown is never shown as $0.{e(ttft_note)}</p>",
        *agent_matrix_section(summaries),
        "<h2>Pass rate</h2>",
        _pass_rate_chart(summaries, colors),
        *_packets_section(summaries),
        "<h2>Run latency</h2>",
        '<p class="meta">Box: 25th-75th percentile, thick line: median, whiskers: min-max; one dot per run.</p>',
        _box_strip(summaries, colors),
        "<h2>Tokens per run</h2>",
        _tokens_chart(summaries),
        "<h2>Cost per run</h2>",
        _spend_chart(summaries, colors, solved=False),
        "<h3>$ per solved run</h3>",
        _spend_chart(summaries, colors, solved=True),
        "<h2>Outcome classes</h2>",
        '<p class="meta">passed; gates missed (the agent finished, a gate did not hold); a budget (max_turns, '
        "agent_timeout, token_budget, safety_timeout); or the failure class of the model call that ended the run.</p>",
        _category_chart(summaries),
        *paired_section(records, [s.alias for s in summaries]),
        *_capacity_section(capacity),
        "<h2>Runs</h2>",
        _runs_table(graded),
        *_infrastructure_section(records),
        provenance_section(records, aliases),
        trajectory_section(records),
        "</body></html>",
    ]
    return "".join(parts)


def write_html(
    records: Sequence[Mapping[str, Any]],
    path: Path | str,
    title: str = "agentbench report",
    *,
    aliases: Sequence[str] | None = None,
    redactor: Redactor | None = None,
    capacity: Sequence[str] | None = None,
) -> Path:
    """Write the self-contained report to ``path`` (folders created); returns the path.

    ``redactor``: the session's secrets; without one, the environment's secret-looking variables.
    Applied to the records and again to the page, escaped forms included.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    redactor = Redactor.from_environment() if redactor is None else redactor
    page = render_html(redactor(list(records)), redactor.text(title), aliases=aliases, capacity=capacity)
    path.write_text(redactor.text(page), encoding="utf-8")
    return path
