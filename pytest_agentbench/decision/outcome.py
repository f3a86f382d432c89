"""What the decision tree returns: the branch, the path of rules that led to it, and what it rests on.

:class:`Decision` is what ``adr.py`` renders: its status (*accepted*; *provisional* when a figure a
taken rule needed was missing; *blocked* when no candidate is left), the branch and the chosen
candidate, the one-to-two-sentence rationale, one :class:`Step` per rule, the three :class:`Option`
s, what was left out and why, the open findings, the quality comparison and the :class:`Costs` at
the team's volume. Plain data, pytest-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pytest_agentbench.decision.evidence import Candidate
from pytest_agentbench.decision.inputs import Branch, Role, TeamInputs
from pytest_agentbench.decision.quality import Quality

__all__ = ["Costs", "Decision", "Option", "Status", "Step"]

Status = Literal["accepted", "provisional", "blocked"]


@dataclass(frozen=True)
class Step:
    """One rule as it was applied: its number, its name and what it did."""

    rule: int
    name: str
    outcome: str


@dataclass(frozen=True)
class Option:
    """One of the three branches: whether the boundary admits it, who would stand for it, and why not."""

    branch: Branch
    admissible: bool
    candidate: str | None
    note: str


@dataclass(frozen=True)
class Costs:
    """The commercial and the local representative priced at the team's volume (rules 9 and 10)."""

    commercial: str | None
    local: str | None
    commercial_call_usd: float | None  # mean $ per model call, from the run's prices and tokens
    server_hourly_usd: float | None  # one local server: GPU $/h x GPUs
    break_even_calls_per_hour: float | None  # one server against the commercial per-call price
    calls_per_hour: float | None
    calls_from: str
    servers: int
    servers_from: str
    hours_per_month: float

    def hourly(self, role: Role) -> float | None:
        """What the role's option costs per working hour at the team's volume; None: unknown."""
        if role == "commercial":
            if self.calls_per_hour is None or self.commercial_call_usd is None:
                return None
            return self.calls_per_hour * self.commercial_call_usd
        return None if self.server_hourly_usd is None else self.server_hourly_usd * self.servers

    def monthly(self, role: Role) -> float | None:
        hourly = self.hourly(role)
        return None if hourly is None else hourly * self.hours_per_month

    def missing(self, roles: tuple[Role, ...] = ("commercial", "local")) -> list[str]:
        """What pricing ``roles``' options at the team's volume lacks (empty: it can be done)."""
        out = []
        if "commercial" in roles and self.commercial_call_usd is None:
            out.append(f"{self.commercial}'s $ per call is unknown (no per-token cost: or no usage reported)")
        if "local" in roles and self.server_hourly_usd is None:
            out.append(f"{self.local} has no GPU price (give --gpu-hourly-usd)")
        if "commercial" in roles and self.calls_per_hour is None:
            out.append(self.calls_from)
        return out

    @property
    def cheaper(self) -> Role | None:
        c, loc = self.hourly("commercial"), self.hourly("local")
        if c is None or loc is None:
            return None
        return "local" if loc < c else "commercial"


@dataclass(frozen=True)
class Decision:
    """The tree's answer and everything the record says about it."""

    inputs: TeamInputs
    status: Status
    branch: Branch | None  # None: blocked
    chosen: Candidate | None
    rationale: str
    steps: tuple[Step, ...]
    options: tuple[Option, ...]
    excluded: Mapping[str, str]  # alias -> the rule that left it out, and why
    open: tuple[str, ...]  # missing evidence, and what it did to the branch
    quality: Quality | None = None
    costs: Costs | None = None
    consequences: tuple[str, ...] = ()
