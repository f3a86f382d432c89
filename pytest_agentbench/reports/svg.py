"""Inline SVG for the self-contained HTML pages: the one chart toolkit both pages draw with.

This module owns escaping (:func:`e`, through which every piece of text reaches a page), axis
ticks, the ``<svg>`` wrapper and the charts themselves: horizontal bar charts with interval
whiskers (:func:`whisker`), stacked bar charts, a box + strip plot and a legend (one row per alias:
``reports/html.py``), an interval chart of signed differences around a zero line (one row per paired
comparison: ``reports/compare_html.py``), and a line chart with a dashed threshold line and one marked
point (one point per sweep level: ``reports/sweep.py``). Pure string building from the standard library:
no JavaScript, nothing fetched when a page is opened.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.reports.stats import percentile

__all__ = [
    "box_strip",
    "e",
    "hbar_chart",
    "interval_chart",
    "legend",
    "line_chart",
    "nice_ticks",
    "stacked_chart",
    "svg",
    "tick_seconds",
    "whisker",
]

_LABEL_W = 190  # px reserved left of every row chart for the row labels (alias names)
_LABEL_CHARS = 28  # what fits in _LABEL_W at 12 px
_CHART_W = 720
_RIGHT_W = 190  # px right of the plot area for value labels
_WHISKER = "#1d2430"
_ROW_H = 28


def e(value: Any) -> str:
    """HTML-escape anything (quotes included): safe in text, attributes and inline SVG."""
    return html.escape("" if value is None else str(value), quote=True)


# --------------------------------------------------------------------------- ticks, frame, axes


def nice_ticks(hi: float, count: int = 5) -> list[float]:
    """Ticks from 0 in steps of 1, 2, 2.5 or 5 x a power of ten, up to at least *hi*."""
    if hi <= 0 or not math.isfinite(hi):
        return [0.0, 1.0]
    raw = hi / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks = [0.0]
    while ticks[-1] < hi - 1e-12:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def tick_seconds(t: float) -> str:
    """A tick label for seconds: ``0``, ``250 ms``, ``2 s``."""
    return "0" if t == 0 else f"{t:g} s" if t >= 1 else f"{t * 1000:g} ms"


def svg(width: int, height: int, body: list[str], label: str) -> str:
    """The ``<svg>`` element around *body*, labelled for screen readers."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(label)}">' + "".join(body) + "</svg>"
    )


def _x_axis(ticks: Sequence[float], scale: Any, top: int, bottom: int, fmt: Any, unit: str = "") -> list[str]:
    out = []
    for t in ticks:
        x = scale(t)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#e6e9ef"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{e(fmt(t))}</text>')
    if unit:
        out.append(
            f'<text x="{_LABEL_W + _CHART_W / 2:.0f}" y="{bottom + 31}" text-anchor="middle" '
            f'fill="#5a6578">{e(unit)}</text>'
        )
    return out


def _row_label(full: str, y: float) -> str:
    """A row's label left of a chart, shortened to fit (the full text is the tooltip)."""
    shown = full if len(full) <= _LABEL_CHARS else full[: _LABEL_CHARS - 3] + "..."
    return f'<text x="{_LABEL_W - 8}" y="{y:.1f}" text-anchor="end"><title>{e(full)}</title>{e(shown)}</text>'


def _scale(hi: float) -> Any:
    top = nice_ticks(hi)[-1] or 1.0
    return lambda v: _LABEL_W + (v / top) * _CHART_W


# --------------------------------------------------------------------------- row charts


def whisker(x_low: float, x_high: float | None, mid: float, tip: str, half: float = 6.0) -> str:
    """An interval as a horizontal line from ``x_low`` to ``x_high`` with end caps, its bounds as the tooltip
    (``<g class="ci">``). ``x_high`` None: no upper bound, the line runs to the plot's edge without a cap."""
    right = _LABEL_W + _CHART_W if x_high is None else x_high
    parts = [
        f'<g class="ci" data-low="{x_low:.1f}" data-high="{right:.1f}"><title>{e(tip)}</title>',
        f'<line x1="{x_low:.1f}" y1="{mid:.1f}" x2="{right:.1f}" y2="{mid:.1f}" stroke="{_WHISKER}" stroke-width="2"/>',
        f'<line x1="{x_low:.1f}" y1="{mid - half:.1f}" x2="{x_low:.1f}" y2="{mid + half:.1f}" '
        f'stroke="{_WHISKER}" stroke-width="2"/>',
    ]
    if x_high is not None:
        parts.append(
            f'<line x1="{x_high:.1f}" y1="{mid - half:.1f}" x2="{x_high:.1f}" y2="{mid + half:.1f}" '
            f'stroke="{_WHISKER}" stroke-width="2"/>'
        )
    return "".join(parts) + "</g>"


def hbar_chart(
    rows: Sequence[tuple[str, str, float | None, str]],
    hi: float,
    fmt: Any,
    unit: str,
    label: str,
    *,
    intervals: Sequence[tuple[float, float, str] | None] | None = None,
) -> str:
    """One horizontal bar per (row label, color, value, text); ``None`` draws no bar and the text ("unknown").

    ``intervals``: per row (low, high, tooltip) or None; drawn as a :func:`whisker` over the bar, an
    infinite high running to the edge. The scale reaches the highest finite bound.
    """
    finite = [b for ci in intervals or () if ci is not None for b in ci[:2] if math.isfinite(b)]
    hi = max([hi, *finite])
    height = 16 + len(rows) * _ROW_H + 40
    scale = _scale(hi)
    body = _x_axis(nice_ticks(hi), scale, 8, 8 + len(rows) * _ROW_H, fmt, unit)
    for i, (name, color, value, text) in enumerate(rows):
        y = 8 + i * _ROW_H
        body.append(_row_label(name, y + 18))
        if value is not None:
            w = max(0.0, scale(value) - _LABEL_W)
            body.append(f'<rect x="{_LABEL_W}" y="{y + 5}" width="{w:.1f}" height="{_ROW_H - 10}" fill="{color}"/>')
            end = _LABEL_W + w
            ci = intervals[i] if intervals else None
            if ci is not None:
                high = scale(ci[1]) if math.isfinite(ci[1]) else None
                body.append(whisker(scale(ci[0]), high, y + _ROW_H / 2, ci[2]))
                end = max(end, _LABEL_W + _CHART_W if high is None else high)
            body.append(f'<text x="{end + 6:.1f}" y="{y + 18}">{e(text)}</text>')
        else:
            body.append(f'<text x="{_LABEL_W + 6}" y="{y + 18}" fill="#7a8699">{e(text)}</text>')
    return svg(_LABEL_W + _CHART_W + _RIGHT_W, height, body, label)


def stacked_chart(
    rows: Sequence[tuple[str, list[tuple[str, float]]]],
    colors: Mapping[str, str],
    fmt: Any,
    unit: str,
    label: str,
    hi: float | None = None,
) -> str:
    """Stacked horizontal bars: one bar per row label, one segment per (category, value)."""
    top_value = hi if hi is not None else max((sum(v for _, v in segs) for _, segs in rows), default=0.0)
    scale = _scale(top_value)
    height = 16 + len(rows) * _ROW_H + 40
    body = _x_axis(nice_ticks(top_value), scale, 8, 8 + len(rows) * _ROW_H, fmt, unit)
    for i, (name, segs) in enumerate(rows):
        y = 8 + i * _ROW_H
        body.append(_row_label(name, y + 18))
        x = float(_LABEL_W)
        for cat, value in segs:
            w = scale(value) - _LABEL_W
            if w <= 0:
                continue
            body.append(
                f'<rect x="{x:.1f}" y="{y + 5}" width="{w:.1f}" height="{_ROW_H - 10}" '
                f'fill="{colors[cat]}"><title>{e(cat)}: {e(fmt(value))}</title></rect>'
            )
            if w > 28:
                body.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 18}" text-anchor="middle" fill="#fff">{e(fmt(value))}</text>'
                )
            x += w
    return svg(_LABEL_W + _CHART_W + _RIGHT_W, height, body, label)


def box_strip(
    groups: Sequence[tuple[str, str, Sequence[float]]],
    *,
    value_fmt: Callable[[float], str],
    tick_fmt: Callable[[float], str],
    unit: str,
    label: str,
) -> str:
    """Per (row label, color, values): a box (q1..q3, median line, whiskers min..max) and every value as a dot."""
    hi = max((max(v) for _, _, v in groups if v), default=1.0)
    scale = _scale(hi)
    row_h = 40
    height = 16 + len(groups) * row_h + 40
    body = _x_axis(nice_ticks(hi), scale, 8, 8 + len(groups) * row_h, tick_fmt, unit)
    for i, (name, color, values) in enumerate(groups):
        mid = 8 + i * row_h + row_h / 2
        body.append(_row_label(name, mid + 4))
        if not values:
            body.append(f'<text x="{_LABEL_W + 6}" y="{mid + 4}" fill="#7a8699">no runs</text>')
            continue
        body += _box(values, scale, mid, color, value_fmt)
    return svg(_LABEL_W + _CHART_W + _RIGHT_W, height, body, label)


def _box(values: Sequence[float], scale: Any, mid: float, color: str, fmt: Callable[[float], str]) -> list[str]:
    """One row of :func:`box_strip`: whiskers, box, median, the dots and the median's label."""
    q1, med, q3 = (percentile(values, q) or 0.0 for q in (25, 50, 75))
    lo, top = min(values), max(values)
    body = [f'<line x1="{scale(lo):.1f}" y1="{mid}" x2="{scale(top):.1f}" y2="{mid}" stroke="#7a8699"/>']
    for end in (lo, top):
        body.append(
            f'<line x1="{scale(end):.1f}" y1="{mid - 6}" x2="{scale(end):.1f}" y2="{mid + 6}" stroke="#7a8699"/>'
        )
    body.append(
        f'<rect x="{scale(q1):.1f}" y="{mid - 11}" width="{max(1.0, scale(q3) - scale(q1)):.1f}" '
        f'height="22" fill="{color}" fill-opacity="0.25" stroke="{color}"/>'
    )
    body.append(
        f'<line x1="{scale(med):.1f}" y1="{mid - 11}" x2="{scale(med):.1f}" y2="{mid + 11}" '
        f'stroke="{color}" stroke-width="3"/>'
    )
    for j, v in enumerate(values):
        jitter = ((j * 7919) % 13 - 6) * 1.2  # deterministic spread, so the file is reproducible
        body.append(
            f'<circle cx="{scale(v):.1f}" cy="{mid + jitter:.1f}" r="3" fill="{color}" '
            f'fill-opacity="0.8"><title>{e(fmt(v))}</title></circle>'
        )
    body.append(f'<text x="{_LABEL_W + _CHART_W + 8}" y="{mid + 4}">p50 {e(fmt(med))}</text>')
    return body


def legend(colors: Mapping[str, str], keys: Sequence[str]) -> str:
    """An HTML legend: a colored square and the key, for each of *keys*."""
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{colors[k]}"></i>{e(k)}</span>' for k in keys)
        + "</div>"
    )


# --------------------------------------------------------------------------- line chart


@dataclass(frozen=True)
class _Frame:
    """A line chart's geometry: ``n`` evenly spaced points, values from 0 up to ``top_value``."""

    n: int
    top_value: float
    w: int = 520
    h: int = 260
    left: int = 56
    right: int = 16
    top: int = 30
    bottom: int = 40

    def x(self, i: int) -> float:
        return self.left + (self.w - self.left - self.right) * (0.5 if self.n == 1 else i / (self.n - 1))

    def y(self, v: float) -> float:
        return self.top + (self.h - self.top - self.bottom) * (1 - v / self.top_value)


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str, str]],
    *,
    x_title: str,
    y_title: str,
    threshold: float | None = None,
    threshold_label: str = "",
    mark_index: int | None = None,
    mark_label: str = "",
) -> str:
    """A line chart: one point per x label (evenly spaced), a dashed threshold line, one x marked.

    *series* are (name, values, color, dash); a ``None`` value draws no point.
    """
    values = [v for _, vs, _, _ in series for v in vs if v is not None]
    top_value = max(values + ([threshold] if threshold is not None else []) + [0.0]) or 1.0
    f = _Frame(len(x_labels), top_value * 1.15)
    body = _line_axes(f, title, x_labels, x_title, y_title)
    if mark_index is not None:
        x = f.x(mark_index)
        body.append(
            f'<line x1="{x:.1f}" y1="{f.top}" x2="{x:.1f}" y2="{f.h - f.bottom}" stroke="#2a7" stroke-dasharray="2,3"/>'
        )
        body.append(f'<text x="{x + 3:.1f}" y="{f.top + 10}" font-size="10" fill="#2a7">{e(mark_label)}</text>')
    if threshold is not None:
        y = f.y(threshold)
        body.append(
            f'<line x1="{f.left}" y1="{y:.1f}" x2="{f.w - f.right}" y2="{y:.1f}" stroke="#c33" stroke-dasharray="6,4"/>'
        )
        body.append(
            f'<text x="{f.w - f.right - 2}" y="{y - 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="#c33">{e(threshold_label)}</text>'
        )
    for k, (name, vs, color, dash) in enumerate(series):
        body += _line_series(f, k, name, vs, color, dash)
    return svg(f.w, f.h, body, title)


def _line_axes(f: _Frame, title: str, x_labels: Sequence[str], x_title: str, y_title: str) -> list[str]:
    """Title, both axes, the y gridlines in quarters and the axis labels."""
    w, h, left, right, top, bottom = f.w, f.h, f.left, f.right, f.top, f.bottom
    parts = [
        f'<text x="{w / 2:.0f}" y="18" text-anchor="middle" font-size="13" font-weight="bold">{e(title)}</text>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#444"/>',
    ]
    for k in range(5):
        v = f.top_value * k / 4
        parts.append(
            f'<text x="{left - 4}" y="{f.y(v) + 4:.1f}" text-anchor="end" font-size="10">{e(f"{v:.3g}")}</text>'
        )
        parts.append(f'<line x1="{left}" y1="{f.y(v):.1f}" x2="{w - right}" y2="{f.y(v):.1f}" stroke="#eee"/>')
    for i, label in enumerate(x_labels):
        parts.append(
            f'<text x="{f.x(i):.1f}" y="{h - bottom + 14}" text-anchor="middle" font-size="11">{e(label)}</text>'
        )
    parts.append(
        f'<text x="{(left + w - right) / 2:.0f}" y="{h - 6}" text-anchor="middle" font-size="11">{e(x_title)}</text>'
    )
    mid = (top + h - bottom) / 2
    parts.append(
        f'<text x="12" y="{mid:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {mid:.0f})">{e(y_title)}</text>'
    )
    return parts


def _line_series(f: _Frame, k: int, name: str, values: Sequence[float | None], color: str, dash: str) -> list[str]:
    """Series number *k*: its polyline, its points and its legend entry (top left, side by side)."""
    pts = [(f.x(i), f.y(v)) for i, v in enumerate(values) if v is not None]
    parts = []
    if len(pts) > 1:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{e(color)}" stroke-width="2" stroke-dasharray="{e(dash)}"/>'
        )
    for px, py in pts:
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{e(color)}"/>')
    lx = f.left + 8 + 130 * k
    parts.append(
        f'<line x1="{lx}" y1="{f.top + 8}" x2="{lx + 18}" y2="{f.top + 8}" stroke="{e(color)}" '
        f'stroke-width="2" stroke-dasharray="{e(dash)}"/>'
    )
    parts.append(f'<text x="{lx + 22}" y="{f.top + 12}" font-size="10" fill="{e(color)}">{e(name)}</text>')
    return parts


# --------------------------------------------------------------------------- interval chart


def interval_chart(
    rows: Sequence[tuple[str, str, float | None, float | None, float | None, str]],
    fmt: Callable[[float], str],
    unit: str,
    label: str,
) -> str:
    """Signed differences with their intervals around a zero line, one row per (label, color, value, low, high,
    text): a whisker from low to high and a dot at the value; ``None`` draws only the text. The axis is
    symmetric, at least -10..10."""
    ends = [abs(v) for _, _, *vals, _ in rows for v in vals if v is not None]
    ticks = nice_ticks(max([10.0, *ends]), count=4)
    top = ticks[-1]

    def scale(v: float) -> float:
        return _LABEL_W + (v + top) / (2 * top) * _CHART_W

    height = 16 + len(rows) * _ROW_H + 40
    bottom = 8 + len(rows) * _ROW_H
    body = _x_axis([-t for t in reversed(ticks[1:])] + ticks, scale, 8, bottom, fmt, unit)
    body.append(f'<line x1="{scale(0):.1f}" y1="4" x2="{scale(0):.1f}" y2="{bottom}" stroke="#1d2430"/>')
    for i, (name, color, value, low, high, text) in enumerate(rows):
        mid = 8 + i * _ROW_H + _ROW_H / 2
        body.append(_row_label(name, mid + 4))
        if value is None or low is None or high is None:
            body.append(f'<text x="{_LABEL_W + 6}" y="{mid + 4}" fill="#7a8699">{e(text)}</text>')
            continue
        x0, x1 = scale(low), scale(high)
        body.append(f'<line x1="{x0:.1f}" y1="{mid}" x2="{x1:.1f}" y2="{mid}" stroke="{color}" stroke-width="3"/>')
        for x in (x0, x1):
            body.append(f'<line x1="{x:.1f}" y1="{mid - 6}" x2="{x:.1f}" y2="{mid + 6}" stroke="{color}"/>')
        body.append(
            f'<circle cx="{scale(value):.1f}" cy="{mid}" r="5" fill="{color}"><title>{e(text)}</title></circle>'
        )
        body.append(f'<text x="{_LABEL_W + _CHART_W + 8}" y="{mid + 4}">{e(text)}</text>')
    return svg(_LABEL_W + _CHART_W + _RIGHT_W, height, body, label)
