"""The screening table's vocabulary: one :class:`Row` per criterion, one :class:`Screen` per candidate.

The course screens candidates in a fixed order (:data:`CRITERIA`): licence, serving
support, tool format, context policy, failure behaviour. Each row states its
verdict, a one-line finding, the disqualifier (the rule that would rule the
candidate out) and the evidence each fact came from. ``unknown`` is a finding, not a
pass: the evidence was not there. ``n/a`` says why the criterion does not apply (a
hosted API has no weights to license-check against vLLM). pytest-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = ["CRITERIA", "VERDICTS", "Row", "Screen", "Verdict"]

Verdict = Literal["pass", "warn", "fail", "unknown", "n/a"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
CRITERIA = ("licence", "serving support", "tool format", "context policy", "failure behaviour")


@dataclass(frozen=True)
class Row:
    """One criterion for one candidate, filled from evidence."""

    criterion: str
    verdict: Verdict
    finding: str
    disqualifier: str  # the rule: what rules a candidate out on this criterion
    evidence: tuple[str, ...] = ()  # where each fact came from (a file, an endpoint, a probe)
    facts: Mapping[str, Any] = field(default_factory=dict)  # the figures, for JSON and the decision record

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {self.criterion!r}; expected one of {', '.join(CRITERIA)}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}; expected one of {', '.join(VERDICTS)}")

    @property
    def disqualified(self) -> bool:
        return self.verdict == "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "verdict": self.verdict,
            "disqualified": self.disqualified,
            "finding": self.finding,
            "disqualifier": self.disqualifier,
            "evidence": list(self.evidence),
            "facts": dict(self.facts),
        }


@dataclass(frozen=True)
class Screen:
    """One candidate's screening: the five rows in course order."""

    alias: str
    model: str
    kind: str  # "vllm" (a server we start), "scripted" (a test double) or "endpoint" (an existing base_url)
    rows: tuple[Row, ...]
    wall_s: float
    test_double: bool = False
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if tuple(r.criterion for r in self.rows) != CRITERIA:
            raise ValueError(f"a screen has one row per criterion, in order: {', '.join(CRITERIA)}")

    @property
    def disqualified(self) -> bool:
        return any(r.disqualified for r in self.rows)

    @property
    def disqualifiers(self) -> tuple[str, ...]:
        """The criteria that ruled the candidate out."""
        return tuple(r.criterion for r in self.rows if r.disqualified)

    @property
    def open_findings(self) -> tuple[str, ...]:
        """The criteria whose evidence was missing (``unknown``)."""
        return tuple(r.criterion for r in self.rows if r.verdict == "unknown")

    def row(self, criterion: str) -> Row:
        return next(r for r in self.rows if r.criterion == criterion)

    def to_json(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "model": self.model,
            "kind": self.kind,
            "test_double": self.test_double,
            "disqualified": self.disqualified,
            "disqualifiers": list(self.disqualifiers),
            "open_findings": list(self.open_findings),
            "wall_s": round(self.wall_s, 3),
            "notes": list(self.notes),
            "rows": [r.to_json() for r in self.rows],
        }
