"""Plain-text tables that fit a width without cutting a word: labels left, one column per alias. pytest-free.

    lines = render_blocks(headers, rows, width=100)

Every cell, label and header line is *wrapped*, never cut: at spaces first, else after a ``-``,
``/`` or ``_`` inside a name, or after a ``.`` or ``:`` before a letter (``deepseek-ai/`` +
``DeepSeek-Coder-V2``).
A non-breaking space (U+00A0) glues words that belong together (``67% (2/3)``, an interval's two
bounds) and prints as a space: the group breaks there only when it is wider than its column.
Columns are as wide as their longest unbreakable piece, so a name is split only where it has a
separator; a single piece wider than the whole table is the one thing ever broken (mid-word, as a
last resort). Up to :data:`FIT_COLUMNS` columns share the width next to the labels; more wrap into
several blocks of the same rows, each with its own header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["FIT_COLUMNS", "GAP", "NBSP", "Row", "blocks", "column_widths", "longest_piece", "render_blocks", "wrap"]

Row = tuple[str, list[str]]
NBSP = "\u00a0"
GAP = 2
#: Columns that share one block's width before the widths stop shrinking and blocks wrap instead.
FIT_COLUMNS = 4
_MIN_COL = 8
# after - / _ ; after . or : only before a letter, so a number (2.5, 1:30) stays whole
_BREAK_AFTER = re.compile(r"(?<=[-/_])(?=[^-/_.:])|(?<=[.:])(?=[^-/_.:\d])")


def _pieces(word: str) -> list[str]:
    """A word split after its separators: ``deepseek-ai/DeepSeek`` -> ``deepseek-``, ``ai/``, ``DeepSeek``."""
    return [p for p in _BREAK_AFTER.split(word) if p]


def longest_piece(text: str) -> int:
    """The widest part of ``text`` that :func:`wrap` never breaks (a glued group may break at its glue)."""
    return max((len(p) for word in re.split(f"[ {NBSP}]", text) for p in _pieces(word)), default=0)


def _fill(parts: Sequence[str], width: int, joiner: str, lines: list[str], line: str) -> str:
    """Pack ``parts`` greedily into ``lines`` (``joiner`` between two on one line); returns the open line."""
    for part in parts:
        if not part:
            continue
        candidate = f"{line}{joiner}{part}" if line else part
        if len(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
            line = ""
        if len(part) <= width:
            line = part
        elif joiner == " ":  # a glued group too wide: break it at its glue, then inside names
            line = _fill(part.split(NBSP), width, NBSP, lines, line)
        elif joiner == NBSP:
            line = _fill(_pieces(part), width, "", lines, line)
        else:
            while len(part) > width:  # a piece wider than the table: the last resort
                lines.append(part[:width])
                part = part[width:]
            line = part
    return line


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width``: breaks at spaces, then at non-breaking spaces, then after
    separators inside a name."""
    lines: list[str] = []
    line = _fill(text.split(" "), max(1, width), " ", lines, "")
    if line or not lines:
        lines.append(line)
    return [x.replace(NBSP, " ") for x in lines]


def _wrap_label(label: str, width: int) -> list[str]:
    """A row label, its leading indent kept on every line (and two more on continuation lines)."""
    indent = len(label) - len(label.lstrip(" "))
    body = wrap(label.strip(" "), max(4, width - indent - 2))
    first = wrap(label.strip(" "), max(4, width - indent))
    if len(first) == 1:
        return [" " * indent + first[0]]
    return [" " * indent + body[0]] + [" " * (indent + 2) + x for x in body[1:]]


def _natural(texts: Sequence[str]) -> int:
    return max((len(t.replace(NBSP, " ")) for t in texts), default=0)


def column_widths(headers: Sequence[Sequence[str]], rows: Sequence[Row], label_w: int, width: int) -> list[int]:
    """One width per column: its widest text, shrunk so :data:`FIT_COLUMNS` columns fit beside the labels,
    but never below its longest unbreakable piece (nor wider than the space beside the labels)."""
    room = max(_MIN_COL, width - label_w - GAP)
    share = max(_MIN_COL, (width - label_w) // max(1, min(FIT_COLUMNS, len(headers))) - GAP)
    out = []
    for i, header in enumerate(headers):
        texts = [*header, *(cells[i] for _, cells in rows)]
        floor = max((longest_piece(t) for t in texts), default=0)
        out.append(min(room, max(min(share, _natural(texts)), floor, 1)))
    return out


def blocks(col_w: Sequence[int], label_w: int, width: int) -> list[list[int]]:
    """The column indexes of each block: as many columns as fit in ``width`` next to the labels."""
    chunks: list[list[int]] = [[]]
    used = label_w
    for i, w in enumerate(col_w):
        if chunks[-1] and used + GAP + w > width:
            chunks.append([])
            used = label_w
        chunks[-1].append(i)
        used += GAP + w
    return chunks


def _render_line(label: str, cells: Sequence[str], label_w: int, widths: Sequence[int]) -> str:
    return (label.ljust(label_w) + "".join(" " * GAP + c.rjust(w) for c, w in zip(cells, widths, strict=True))).rstrip()


def _render_block(
    corner: str, headers: Sequence[Sequence[str]], rows: Sequence[Row], label_w: int, widths: Sequence[int]
) -> list[str]:
    head_cells = [[line for part in h if part for line in wrap(part, w)] for h, w in zip(headers, widths, strict=True)]
    height = max((len(c) for c in head_cells), default=1)
    lines = []
    for i in range(height):
        cells = [c[i] if i < len(c) else "" for c in head_cells]
        lines.append(_render_line(corner if i == 0 else "", cells, label_w, widths))
    lines.append("-" * (label_w + sum(w + GAP for w in widths)))
    for label, row in rows:
        label_lines = _wrap_label(label, label_w)
        cell_lines = [wrap(c, w) for c, w in zip(row, widths, strict=True)]
        for i in range(max(len(label_lines), *(len(c) for c in cell_lines)) if cell_lines else len(label_lines)):
            cells = [c[i] if i < len(c) else "" for c in cell_lines]
            lines.append(_render_line(label_lines[i] if i < len(label_lines) else "", cells, label_w, widths))
    return lines


def render_blocks(
    headers: Sequence[Sequence[str]],
    rows: Sequence[Row],
    width: int,
    *,
    corner: str = "alias",
    label_max: int = 34,
) -> list[str]:
    """The table in blocks at most ``width`` wide (a blank line before each); ``headers[i]`` are the
    header lines of column ``i`` (empty ones dropped); a label starting with spaces keeps its indent."""
    natural_label = max(len(corner), *(len(label) for label, _ in rows)) if rows else len(corner)
    label_w = min(label_max, natural_label, max(12, width // 4))
    col_w = column_widths(headers, rows, label_w, width)
    out: list[str] = []
    for chunk in blocks(col_w, label_w, width):
        out.append("")
        out.extend(
            _render_block(
                corner,
                [headers[i] for i in chunk],
                [(label, [cells[i] for i in chunk]) for label, cells in rows],
                label_w,
                [col_w[i] for i in chunk],
            )
        )
    return out
