"""The screening as text: one table per candidate for the terminal, and the JSON document.

The terminal table has one line per criterion (verdict, finding, the disqualifier
when it fired) and the evidence under it; the JSON holds every row with its facts,
for the decision record and for scripts. pytest-free.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from pytest_agentbench.screening.rows import CRITERIA, Screen

__all__ = ["MARKS", "format_screen", "format_screens", "screens_json"]

MARKS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "unknown": "????", "n/a": "n/a "}
_WIDTH = 118


def _title(screen: Screen) -> str:
    kind = {"vllm": "vLLM server", "scripted": "scripted test double, not a model", "endpoint": "existing endpoint"}
    return f"screen {screen.alias} ({screen.model}; {kind.get(screen.kind, screen.kind)}; {screen.wall_s:.1f} s)"


def format_screen(screen: Screen, *, evidence: bool = True) -> str:
    title = _title(screen)
    lines = [title, "-" * len(title)]
    width = max(len(r.criterion) for r in screen.rows)
    for row in screen.rows:
        head = f"{MARKS[row.verdict]}  {row.criterion:<{width}}  "
        body = textwrap.wrap(row.finding, _WIDTH - len(head)) or [""]
        lines.append(head + body[0])
        lines += [" " * len(head) + more for more in body[1:]]
        if row.disqualified:
            lines.append(" " * len(head) + f"disqualifier: {row.disqualifier}")
        if evidence:
            for item in row.evidence:
                wrapped = textwrap.wrap(item, _WIDTH - len(head) - 4) or [""]
                lines.append(" " * len(head) + "  - " + wrapped[0])
                lines += [" " * (len(head) + 4) + more for more in wrapped[1:]]
    lines += [f"note: {n}" for n in screen.notes]
    if screen.disqualified:
        lines.append(f"DISQUALIFIED on {', '.join(screen.disqualifiers)}")
    elif screen.open_findings:
        lines.append(f"not disqualified; unknown (no evidence): {', '.join(screen.open_findings)}")
    else:
        lines.append("not disqualified")
    return "\n".join(lines)


def format_screens(screens: Sequence[Screen], *, evidence: bool = True) -> str:
    return "\n\n".join(format_screen(s, evidence=evidence) for s in screens)


def screens_json(screens: Sequence[Screen]) -> dict[str, Any]:
    return {
        "criteria": list(CRITERIA),
        "candidates": [s.to_json() for s in screens],
    }
