"""What people read of a request-rate load or a trace replay: the terminal table and the HTML page.

:func:`format_load` / :func:`format_replay` print one row per request rate / per developer count
(requests done, request and output-token throughput, TTFT/TPOT/ITL/E2E medians and p99 in
milliseconds, goodput, the SLO verdict, reconciliation flags) and then the notes, within
``TABLE_WIDTH`` columns; :func:`render_load_html` / :func:`render_replay_html` write the same as a
self-contained page with the charts drawn by ``reports/svg.py`` (goodput and TTFT percentiles vs
rate; SLO medians vs N). The numbers come from ``capacity/latency.py`` (their definitions) via
``capacity/load.py`` and ``capacity/replay.py``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_agentbench.reports.svg import e, line_chart
from pytest_agentbench.reports.sweep import TABLE_WIDTH, goodput_lines, grid

if TYPE_CHECKING:
    from pytest_agentbench.capacity.load import LoadResult
    from pytest_agentbench.capacity.replay import ReplayResult

__all__ = ["LOAD_LEGEND", "format_load", "format_replay", "load_body", "render_load_html", "render_replay_html"]

LOAD_LEGEND = (
    "done = completed / sent; req/s and out tok/s over the run's wall time; ttft, tpot, itl, e2e = "
    "client-side medians and p99 in ms (definitions as vllm bench serve's); good = share of completed "
    "requests meeting the goodput SLO; checks = client vs server reconciliation"
)
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;"
    "margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
    "td:last-child,th:last-child{text-align:left}tr.ok td{background:#eef8ee}tr.bad td{background:#fbeaea}"
    "svg{margin:8px 16px 8px 0;border:1px solid #eee}"
)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    ms = value * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.2f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _good(stats: Mapping[str, Any]) -> str:
    g = stats.get("goodput")
    if not g or g.get("share") is None:
        return "-"
    return f"{g['share']:.0%}"


def _slo_word(holds: bool | None) -> str:
    return "-" if holds is None else ("holds" if holds else "BREAKS")


def _checks_word(mismatches: int) -> str:
    return "ok" if not mismatches else f"{mismatches} FLAG"


def _rate(rate: float) -> str:
    return "inf" if math.isinf(rate) else f"{rate:g}"


_LOAD_HEADER = ("rate", "done", "req/s", "out tok/s", "ttft", "p99", "tpot", "p99", "itl", "p99", "e2e", "good")


def _latency_cells(s: Mapping[str, Any]) -> list[str]:
    return [
        _ms(s["ttft_s"]["p50"]),
        _ms(s["ttft_s"]["p99"]),
        _ms(s["tpot_s"]["p50"]),
        _ms(s["tpot_s"]["p99"]),
        _ms(s["itl_s"]["p50"]),
        _ms(s["itl_s"]["p99"]),
        _ms(s["e2e_s"]["p50"]),
        _good(s),
    ]


def _load_rows(result: LoadResult) -> tuple[list[str], list[list[str]]]:
    header = [*_LOAD_HEADER, "SLO", "checks"]
    rows = []
    for run in result.runs:
        s = run.stats
        rows.append(
            [
                _rate(run.rate),
                f"{s['completed']}/{s['requests']}",
                _num(s["request_throughput"], 2),
                _num(s["output_tok_s"]),
                *_latency_cells(s),
                _slo_word(run.slo_holds),
                _checks_word(len(run.mismatches)),
            ]
        )
    return header, rows


def _problem_lines(
    mismatches: Sequence[tuple[str, Any]], notes: Sequence[str], wrap: textwrap.TextWrapper
) -> list[str]:
    out = []
    for label, check in mismatches:
        out += wrap.wrap(f"FLAG {label} {check.name}: {check.detail}")
    for note in notes:
        out += wrap.wrap(f"note: {note}")
    return out


def _cpu_line(clients: Sequence[Mapping[str, Any]], wrap: textwrap.TextWrapper) -> list[str]:
    per_token = [c["harness_cpu_per_output_token_ms"] for c in clients if c.get("harness_cpu_per_output_token_ms")]
    if not per_token:
        return []
    return wrap.wrap(
        f"client CPU per output token: {min(per_token):.3f}-{max(per_token):.3f} ms (whole process, all threads)"
    )


def format_load(result: LoadResult, width: int = TABLE_WIDTH) -> str:
    """The terminal report of a load: one row per request rate, then goodput, notes and flags."""
    wrap = textwrap.TextWrapper(width=width, subsequent_indent="    ")
    cfg = result.config
    out = wrap.wrap(
        f"agentbench load: alias {result.alias} (model {result.model})"
        + (" [TEST DOUBLE: not a model]" if result.test_double else "")
    )
    out += wrap.wrap(
        f"{cfg['num_prompts']} prompt(s) ({result.prompts}); max_tokens {cfg['output_len']}"
        f"{' with ignore_eos' if cfg['ignore_eos'] else ''}; burstiness {cfg['burstiness']:g}; max concurrency "
        f"{cfg['max_concurrency'] or 'none'}; seed {cfg['seed']}; SLO: {result.slo.describe()}"
    )
    out += ["", *grid(*_load_rows(result))]
    out += wrap.wrap(LOAD_LEGEND)
    out.append("")
    out += goodput_lines([(f"rate {_rate(r.rate)}", r.stats) for r in result.runs], result.slo, wrap)
    for run in result.runs:
        srv = run.server or {}
        tokens = next((c for c in run.checks if c.name == "tokens"), None)
        line = f"rate {_rate(run.rate)}: tokens {tokens.detail if tokens else '-'}"
        if srv.get("prefix_cache_hit_rate") is not None:
            line += f"; server prefix-cache hit rate {srv['prefix_cache_hit_rate']:.0%}"
        out += wrap.wrap(line)
    out += wrap.wrap(f"server metrics: {result.server_metrics}")
    out += wrap.wrap("prefix cache before each rate: " + "; ".join(sorted({r.prefix_cache for r in result.runs})))
    out += _cpu_line([r.client for r in result.runs], wrap)
    for run in result.runs:
        out += [
            line for ex in run.stats["failure_examples"] for line in wrap.wrap(f"FAILED rate {_rate(run.rate)}: {ex}")
        ]
    out += _problem_lines([(f"rate {_rate(r)}", c) for r, c in result.mismatches], result.notes, wrap)
    return "\n".join(out)


_REPLAY_HEADER = ("N", "calls", "req/s", "out tok/s", "ttft", "p99", "tpot", "p99", "itl", "p99", "e2e", "good")


def _replay_rows(result: ReplayResult) -> tuple[list[str], list[list[str]]]:
    header = [*_REPLAY_HEADER, "SLO", "trace", "checks"]
    rows = []
    for lv in result.levels:
        s = lv.stats
        trace = lv.checks[0].status if lv.checks else "-"
        rows.append(
            [
                str(lv.devs),
                f"{s['completed']}/{s['requests']}",
                _num(s["request_throughput"], 2),
                _num(s["output_tok_s"]),
                *_latency_cells(s),
                _slo_word(lv.slo_holds),
                trace,
                _checks_word(len([c for c in lv.mismatches if c.name != "trace"])),
            ]
        )
    return header, rows


def format_replay(result: ReplayResult, width: int = TABLE_WIDTH) -> str:
    """The terminal report of a replay: one row per developer count, then the knee, goodput, tokens, notes."""
    wrap = textwrap.TextWrapper(width=width, subsequent_indent="    ")
    st = result.settings
    calls = sum(s["calls"] for s in result.sessions)
    out = wrap.wrap(
        f"agentbench replay: {len(result.sessions)} session(s), {calls} call(s) from {result.source} against alias "
        f"{result.alias} (model {result.model})" + (" [TEST DOUBLE: not a model]" if result.test_double else "")
    )
    out += wrap.wrap(
        f"recorded: {st['recorded_prompt_tokens']:,} prompt / {st['recorded_completion_tokens']:,} completion "
        f"tokens; think time x {st['think_scale']:g}; {st['rounds']} round(s); ignore_eos {st['ignore_eos']}; "
        f"SLO: {result.slo.describe()}"
    )
    out += ["", *grid(*_replay_rows(result))]
    out += wrap.wrap(
        LOAD_LEGEND.replace("done =", "calls =")
        + "; trace = prompt tokens equal N x recorded (x the first level's on another model)"
    )
    out.append("")
    knee, note = result.knee
    out += wrap.wrap(f"knee: {'N=' + str(knee) if knee is not None else 'none'} ({note})")
    out += goodput_lines([(f"N={lv.devs}", lv.stats) for lv in result.levels], result.slo, wrap)
    for lv in result.levels:
        srv = lv.server or {}
        line = f"N={lv.devs}: {lv.checks[0].detail}"
        if srv.get("prefix_cache_hit_rate") is not None:
            line += f"; server prefix-cache hit rate {srv['prefix_cache_hit_rate']:.0%}"
        out += wrap.wrap(line)
        out += [f"ERROR N={lv.devs}: {err}" for err in lv.errors[:3]]
        out += [line for ex in lv.stats["failure_examples"] for line in wrap.wrap(f"FAILED N={lv.devs}: {ex}")]
    out += wrap.wrap(f"server metrics: {result.server_metrics}")
    out += _cpu_line([lv.client for lv in result.levels], wrap)
    out += _problem_lines([(f"N={n}", c) for n, c in result.mismatches], result.notes, wrap)
    return "\n".join(out)


# --------------------------------------------------------------------------- HTML


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], verdicts: Sequence[bool | None]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    for row, holds in zip(rows, verdicts, strict=True):
        cls = "" if holds is None else (' class="ok"' if holds else ' class="bad"')
        out.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    return "".join(out) + "</table>"


def _checks_table(items: Sequence[tuple[str, Sequence[Any]]]) -> str:
    out = ["<table><tr><th>at</th><th>check</th><th>status</th><th>detail</th></tr>"]
    for label, checks in items:
        for c in checks:
            mark = ' class="bad"' if c.status == "mismatch" else ""
            out.append(
                f"<tr{mark}><td>{e(label)}</td><td>{e(c.name)}</td><td>{e(c.status)}</td><td>{e(c.detail)}</td></tr>"
            )
    return "".join(out) + "</table>"


def _percentile_chart(title: str, labels: Sequence[str], stats: Sequence[Mapping[str, Any]], key: str, x: str) -> str:
    """TTFT (or another latency) p50/p90/p99 per x label, in seconds."""
    colors = {"p50": "#1f5fa8", "p90": "#e08a1e", "p99": "#c33"}
    return line_chart(
        title,
        labels,
        [(q, [s[key][q] for s in stats], color, "none") for q, color in colors.items()],
        x_title=x,
        y_title="seconds",
    )


def _goodput_chart(title: str, labels: Sequence[str], stats: Sequence[Mapping[str, Any]], x: str) -> str:
    return line_chart(
        title,
        labels,
        [
            ("goodput req/s", [(s.get("goodput") or {}).get("rate_per_s") for s in stats], "#2a7", "none"),
            ("request throughput req/s", [s["request_throughput"] for s in stats], "#999", "5,3"),
        ],
        x_title=x,
        y_title="requests / s",
    )


def _page(title: str, facts: Sequence[str], body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{e(title)}</h1>"
        + ("<ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>" if facts else "")
        + body
        + "</body></html>\n"
    )


def load_body(result: LoadResult, heading: str = "h2") -> str:
    """The page's body below its title, a fragment (also a section of the run report): the facts, goodput
    and TTFT/ITL percentiles vs rate (inline SVG), the table, the checks. *heading*: the sub-headings' tag."""
    labels = [_rate(r.rate) for r in result.runs]
    stats = [r.stats for r in result.runs]
    facts = [
        f"alias <b>{e(result.alias)}</b> (model {e(result.model)})"
        + (" &mdash; <b>test double, not a model</b>" if result.test_double else ""),
        f"prompts: {e(result.prompts)}; settings: {e(result.config)}",
        f"SLO: {e(result.slo.describe())}" + (f" ({e('; '.join(result.slo_sources))})" if result.slo_sources else ""),
        f"server metrics: {e(result.server_metrics)}",
        f"started {e(result.started_at)}, finished {e(result.finished_at)}",
        *(f"note: {e(n)}" for n in result.notes),
    ]
    header, rows = _load_rows(result)
    charts = (
        _goodput_chart("goodput vs request rate", labels, stats, "request rate (req/s)")
        + _percentile_chart("TTFT percentiles vs request rate", labels, stats, "ttft_s", "request rate (req/s)")
        + _percentile_chart("ITL percentiles vs request rate", labels, stats, "itl_s", "request rate (req/s)")
    )
    return (
        "<ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>"
        f"<div>{charts}</div><{heading}>Runs</{heading}>{_table(header, rows, [r.slo_holds for r in result.runs])}"
        f"<p>{e(LOAD_LEGEND)}</p><{heading}>Reconciliation</{heading}>"
        + _checks_table([(f"rate {lb}", r.checks) for lb, r in zip(labels, result.runs, strict=True)])
    )


def render_load_html(result: LoadResult) -> str:
    """A self-contained page: the title and :func:`load_body`."""
    return _page(f"agentbench load: {result.alias}", [], load_body(result))


def render_replay_html(result: ReplayResult) -> str:
    """A self-contained page: the SLO medians and goodput vs N (inline SVG), the table, the checks."""
    labels = [str(lv.devs) for lv in result.levels]
    stats = [lv.stats for lv in result.levels]
    knee, note = result.knee
    facts = [
        f"alias <b>{e(result.alias)}</b> (model {e(result.model)})"
        + (" &mdash; <b>test double, not a model</b>" if result.test_double else ""),
        f"trace: {e(result.source)}; {len(result.sessions)} session(s); settings: {e(result.settings)}",
        f"SLO: {e(result.slo.describe())}; knee: {e('N=' + str(knee) if knee is not None else 'none')} ({e(note)})",
        f"server metrics: {e(result.server_metrics)}",
        *(f"note: {e(n)}" for n in result.notes),
    ]
    header, rows = _replay_rows(result)
    knee_index = next((i for i, lv in enumerate(result.levels) if lv.devs == knee), None)
    slo = result.slo.ttft_p50_s
    ttft = line_chart(
        "median TTFT vs developers (replayed agent traffic)",
        labels,
        [("client p50", [s["ttft_s"]["p50"] for s in stats], "#1f5fa8", "none")],
        x_title="developers (N)",
        y_title="seconds",
        threshold=slo,
        threshold_label=f"SLO {slo:g} s" if slo is not None else "",
        mark_index=knee_index,
        mark_label="knee",
    )
    charts = ttft + _goodput_chart("goodput vs developers", labels, stats, "developers (N)")
    body = (
        f"<div>{charts}</div><h2>Levels</h2>{_table(header, rows, [lv.slo_holds for lv in result.levels])}"
        "<h2>Checks</h2>" + _checks_table([(f"N={lv.devs}", lv.checks) for lv in result.levels])
    )
    return _page(f"agentbench replay: {result.alias}", facts, body)
