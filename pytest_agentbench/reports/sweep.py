"""What people read of a capacity sweep: the terminal table and the self-contained HTML page.

:func:`format_table` prints one row per level (pass rate, client and server medians,
concurrency, KV use, SLO verdict, $/dev-month, reconciliation flags) and then the knee, costs,
checks and notes within ``TABLE_WIDTH`` columns; :func:`render_html` writes the same with the
SLO-vs-N line charts (inline SVG from ``reports/svg.py``; every piece of text escaped);
:func:`level_done_line` is the progress line after each level. The numbers come from
``capacity/levels.py``; column meanings are in ``docs/capacity.md``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_agentbench.reports.svg import e, line_chart

if TYPE_CHECKING:
    from pytest_agentbench.capacity.levels import LevelResult, SweepResult
    from pytest_agentbench.capacity.slo import Slo

__all__ = [
    "LEGEND",
    "TABLE_WIDTH",
    "format_table",
    "goodput_lines",
    "grid",
    "level_done_line",
    "render_html",
    "sweep_body",
]

TABLE_WIDTH = 100
LEGEND = (
    "pass = runs whose gates all held / runs; ttft = median time to first token (s); tps = median "
    "decode tok/s per stream; cli = client, srv = server /metrics histograms; infl = most model calls in "
    "flight / N; srv_run = most vllm:num_requests_running sampled; kv_max = most KV-cache use sampled; "
    "$/dev-mo = this alias, API/dev-mo = --compare-alias on the same tokens; checks = client vs server "
    "reconciliation"
)
_HEADER = (
    "N",
    "pass",
    "ttft_cli",
    "ttft_srv",
    "tps_cli",
    "tps_srv",
    "infl",
    "srv_run",
    "kv_max",
    "SLO",
    "$/dev-mo",
    "API/dev-mo",
    "checks",
)
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;"
    "margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
    "td:last-child,th:last-child{text-align:left}tr.ok td{background:#eef8ee}tr.bad td{background:#fbeaea}"
    "svg{margin:8px 16px 8px 0;border:1px solid #eee}"
)
_FOOTER = (
    "<p>Columns and rules: docs/capacity.md. TTFT/tok/s cli = client-side medians over every model call; "
    "srv = medians estimated from the server's histogram deltas; infl = most model calls in flight at once "
    "(client) / asked; srv = most requests running (sampled from /metrics).</p>"
)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def _slo_word(holds: bool | None) -> str:
    return "-" if holds is None else ("holds" if holds else "BREAKS")


def _usd(value: float | None) -> str:
    from pytest_agentbench.capacity.cost import format_usd

    return "-" if value is None else format_usd(value)


def _usd_short(value: float | None) -> str:
    """Whole dollars from $100 up: the table stays within 100 columns."""
    if value is None:
        return "-"
    return f"${value:,.0f}" if value >= 100 else _usd(value)


def level_done_line(level: LevelResult) -> str:
    """The progress line after a level: wall time, passes, TTFT, SLO verdict, prefix cache, flags."""
    ttft = level.client["ttft_p50_s"]
    return (
        f"level N={level.devs}: done in {level.wall_s:.1f} s, pass {level.passed}/{len(level.runs)}, "
        f"TTFT p50 {_fmt(ttft, 3)} s, SLO {_slo_word(level.slo_holds)}, "
        f"prefix cache {level.prefix_cache.split(':')[0]}"
        + (f", {len(level.mismatches)} mismatch(es)" if level.mismatches else "")
    )


# --------------------------------------------------------------------------- the terminal table


def _level_row(lv: LevelResult) -> list[str]:
    c, s = lv.client, lv.server or {}
    kv = s.get("kv_cache_usage_max")
    running = s.get("running_max")
    return [
        str(lv.devs),
        f"{lv.passed}/{len(lv.runs)}",
        _fmt(c["ttft_p50_s"]),
        _fmt(s.get("ttft_p50_s")),
        _fmt(c["decode_tok_s_p50"], 1),
        _fmt(s.get("decode_tok_s_p50"), 1),
        f"{c['concurrency_max']}/{lv.devs}",
        "-" if running is None else f"{running:g}",
        "-" if kv is None else f"{kv:.0%}",
        _slo_word(lv.slo_holds),
        _usd_short(lv.cost["usd_per_dev_month"]),
        _usd_short(lv.cost["compare_usd_per_dev_month"]),
        "ok" if not lv.mismatches else f"{len(lv.mismatches)} FLAG",
    ]


def _table_rows(result: SweepResult) -> tuple[list[str], list[list[str]]]:
    return list(_HEADER), [_level_row(lv) for lv in result.levels]


def grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The columns aligned: N left, the rest right, a dashed rule under the header."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = {0}

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return " ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in pairs)

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def goodput_lines(items: Sequence[tuple[str, Mapping[str, Any]]], slo: Slo, wrap: textwrap.TextWrapper) -> list[str]:
    """One wrapped line: per level or rate (*items*: label, stats with ``goodput``), good/completed and rate."""
    if not slo.goodput_defined:
        return wrap.wrap("goodput: no per-request SLO (--goodput ttft:MS tpot:MS, or slo: ttft_s/tpot_s/e2e_s)")
    parts = []
    for label, stats in items:
        g = stats.get("goodput") or {}
        rate = g.get("rate_per_s")
        parts.append(f"{label} {g.get('good', 0)}/{g.get('completed', 0)} ({'-' if rate is None else f'{rate:.2f}'}/s)")
    return wrap.wrap(f"goodput ({slo.describe_goodput()}): " + "; ".join(parts))


def _knee_lines(result: SweepResult, wrap: textwrap.TextWrapper) -> list[str]:
    knee, note = result.knee
    at = result.knee_level()
    if knee is None or at is None:
        return wrap.wrap(f"knee: none ({note})")
    own = at.cost["usd_per_dev_month"]
    cost = f"{_usd(own)}/dev-month" if own is not None else "cost unknown (no cost: for this alias)"
    if at.cost["compare_usd_per_dev_month"] is not None:
        cost += f" vs {result.compare_alias} {_usd(at.cost['compare_usd_per_dev_month'])}/dev-month"
    return wrap.wrap(f"knee: N={knee} ({note}); at the knee: {cost}")


def _harness_cpu_lines(result: SweepResult, wrap: textwrap.TextWrapper) -> list[str]:
    cpu = [
        lv.client["harness_cpu_per_call_ms_p50"]
        for lv in result.levels
        if lv.client["harness_cpu_per_call_ms_p50"] is not None
    ]
    tok = [
        lv.client["harness_cpu_per_output_token_ms"]
        for lv in result.levels
        if lv.client["harness_cpu_per_output_token_ms"] is not None
    ]
    if not cpu:
        return []
    return wrap.wrap(
        f"harness CPU per model call (p50 over levels): {min(cpu):.2f}-{max(cpu):.2f} ms"
        + (f"; per output token {min(tok):.3f}-{max(tok):.3f} ms" if tok else "")
    )


def _problem_lines(result: SweepResult, wrap: textwrap.TextWrapper) -> list[str]:
    """Flagged checks, the first errors of each level, the notes, and why the sweep stopped."""
    out = []
    for devs, check in result.mismatches:
        out += wrap.wrap(f"FLAG N={devs} {check.name}: {check.detail}")
    for lv in result.levels:
        for err in lv.errors[:3]:
            out += wrap.wrap(f"ERROR N={lv.devs}: {err}")
        if len(lv.errors) > 3:
            out.append(f"ERROR N={lv.devs}: ... {len(lv.errors) - 3} more (see the JSON)")
    for note_text in result.notes:
        out += wrap.wrap(f"note: {note_text}")
    if result.stopped:
        out += wrap.wrap(f"STOPPED: {result.stopped}")
    return out


def format_table(result: SweepResult, width: int = TABLE_WIDTH) -> str:
    """The terminal report: one row per level, then knee, costs, checks and notes (<= ``width`` columns)."""
    wrap = textwrap.TextWrapper(width=width, subsequent_indent="    ")
    out = wrap.wrap(
        f"agentbench sweep: alias {result.alias} (model {result.model})"
        + (" [TEST DOUBLE: not a model]" if result.test_double else "")
    )
    out += wrap.wrap(
        f"{len(result.packets)} packet(s) x {result.rounds} round(s) per developer, sandbox "
        f"{result.sandbox}; SLO: {result.slo.describe()} (client side)"
    )
    out += ["", *grid(*_table_rows(result))]
    out += wrap.wrap(LEGEND)
    out.append("")
    out += _knee_lines(result, wrap)
    if result.slo.goodput_defined:
        out += goodput_lines([(f"N={lv.devs}", lv.client) for lv in result.levels], result.slo, wrap)
    out += wrap.wrap(f"server metrics: {result.server_metrics}")
    prefix = sorted({lv.prefix_cache for lv in result.levels})
    out += wrap.wrap(f"prefix cache between levels: {'; '.join(prefix)}")
    out += _harness_cpu_lines(result, wrap)
    out += _problem_lines(result, wrap)
    return "\n".join(out)


# --------------------------------------------------------------------------- the HTML page


def _level_chart(
    result: SweepResult, title: str, key: str, slo: float | None, slo_label: str, knee_index: int | None, unit: str
) -> str:
    """One SLO-vs-N chart: the client's and the server's medians of *key* per level."""
    return line_chart(
        title,
        [str(lv.devs) for lv in result.levels],
        [
            ("client", [lv.client[key] for lv in result.levels], "#1f5fa8", "none"),
            ("server /metrics", [(lv.server or {}).get(key) for lv in result.levels], "#999", "5,3"),
        ],
        x_title="developers (N)",
        y_title=unit,
        threshold=slo,
        threshold_label=slo_label,
        mark_index=knee_index,
        mark_label="knee",
    )


#: The two SLO-vs-N charts: (title, key in the client and server stats, Slo field, its unit, y axis title).
_CHARTS = (
    ("median TTFT vs developers", "ttft_p50_s", "ttft_p50_s", "s", "seconds"),
    ("median decode tok/s per stream vs developers", "decode_tok_s_p50", "tps_p50", "tok/s", "tokens / s"),
)


def _charts(result: SweepResult, knee: int | None) -> str:
    knee_index = next((i for i, lv in enumerate(result.levels) if lv.devs == knee), None)
    charts = []
    for title, key, slo_field, slo_unit, y_title in _CHARTS:
        slo = getattr(result.slo, slo_field)
        slo_label = f"SLO {slo:g} {slo_unit}" if slo is not None else ""
        charts.append(_level_chart(result, title, key, slo, slo_label, knee_index, y_title))
    if result.slo.goodput_defined:
        charts.append(
            line_chart(
                "goodput vs developers (model calls meeting the per-request SLO)",
                [str(lv.devs) for lv in result.levels],
                [
                    (
                        "good calls / s",
                        [(lv.client.get("goodput") or {}).get("rate_per_s") for lv in result.levels],
                        "#2a7",
                        "none",
                    )
                ],
                x_title="developers (N)",
                y_title="calls / s",
                mark_index=knee_index,
                mark_label="knee",
            )
        )
    return "".join(charts)


def _good_cell(lv: LevelResult) -> str:
    g = lv.client.get("goodput") or {}
    if g.get("share") is None:
        return "-"
    return f"{g['share']:.0%} ({g['good']}/{g['completed']}, {g['rate_per_s'] or 0:.2f}/s)"


def _levels_table(result: SweepResult) -> str:
    header, rows = _table_rows(result)
    if result.slo.goodput_defined:  # the page has room for goodput beside the medians
        header = [*header[:10], "goodput", *header[10:]]
        rows = [[*r[:10], _good_cell(lv), *r[10:]] for r, lv in zip(rows, result.levels, strict=True)]
    table = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    for lv, row in zip(result.levels, rows, strict=True):
        cls = "" if lv.slo_holds is None else (' class="ok"' if lv.slo_holds else ' class="bad"')
        table.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    table.append("</table>")
    return "".join(table)


def _checks_table(result: SweepResult) -> str:
    checks = ["<table><tr><th>N</th><th>check</th><th>status</th><th>detail</th></tr>"]
    for lv in result.levels:
        for c in lv.checks:
            mark = ' class="bad"' if c.status == "mismatch" else ""
            checks.append(
                f"<tr{mark}><td>{lv.devs}</td><td>{e(c.name)}</td><td>{e(c.status)}</td><td>{e(c.detail)}</td></tr>"
            )
    checks.append("</table>")
    return "".join(checks)


def _facts(result: SweepResult, knee: int | None, note: str) -> list[str]:
    """The list at the top of the page: what was swept, how, and the knee."""
    facts = [
        f"alias <b>{e(result.alias)}</b> (model {e(result.model)})"
        + (" &mdash; <b>test double, not a model</b>" if result.test_double else ""),
        f"SLO: {e(result.slo.describe())} (judged on client-side medians)",
        f"knee: {e('N=' + str(knee) if knee is not None else 'none')} ({e(note)})",
        f"packets: {e(', '.join(result.packets))}; {result.rounds} round(s) per developer; sandbox {e(result.sandbox)}",
        f"server metrics: {e(result.server_metrics)}",
        "prefix cache between levels: " + e("; ".join(sorted({lv.prefix_cache for lv in result.levels}))),
        f"$/dev-month: GPU {result.gpu_hours_per_month:g} h/month shared by N; API at "
        f"{result.dev_hours_per_month:g} h/month per developer"
        + (f" ({e(result.compare_alias)})" if result.compare_alias else ""),
        f"started {e(result.started_at)}, finished {e(result.finished_at)}",
    ]
    return facts + [f"note: {e(n)}" for n in result.notes]


def sweep_body(result: SweepResult, heading: str = "h2") -> str:
    """The page's body below its title, a fragment (also a section of the run report): the facts,
    the SLO-vs-N plots (inline SVG), the levels table with goodput and the knee, checks and notes.
    *heading* is the tag of its sub-headings."""
    knee, note = result.knee
    facts = _facts(result, knee, note)
    return (
        "<ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>"
        f"<div>{_charts(result, knee)}</div><{heading}>Levels</{heading}>{_levels_table(result)}"
        f"<{heading}>Reconciliation</{heading}>{_checks_table(result)}" + _FOOTER
    )


def render_html(result: SweepResult, title: str | None = None) -> str:
    """A self-contained HTML page: the title and :func:`sweep_body`."""
    title = title or f"agentbench sweep: {result.alias}"
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{e(title)}</h1>{sweep_body(result)}</body></html>\n"
    )
