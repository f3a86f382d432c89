"""What the team brings to a decision: its data boundary, its volume, its budget and its assumed prices.

None of these is measured by a run: they are the team's inputs, and the decision record lists each
one as an assumption beside the figures the run measured. :class:`TeamInputs` validates them once,
when built (a :class:`~pytest_agentbench.errors.UsageError` naming the option and the fix).

The data boundary (``--data-boundary``) decides which branches may be taken at all
(:data:`ADMISSIBLE`, rule 2 of ``docs/decision.md``):

* ``strict`` - no code leaves the team's machines: only local inference;
* ``moderate`` - code may go to a provider's API call by call (under its data terms), but the
  repository is not handed to a third party's hosted environment: local inference or a commercial
  API, not a cloud agent;
* ``none`` - nothing keeps the code in: any branch, a cloud agent included. pytest-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from pytest_agentbench.capacity.cost import WORKING_HOURS_PER_MONTH
from pytest_agentbench.errors import UsageError

__all__ = [
    "ADMISSIBLE",
    "BOUNDARIES",
    "BRANCHES",
    "Boundary",
    "Branch",
    "Role",
    "TeamInputs",
    "branch_of",
]

Boundary = Literal["strict", "moderate", "none"]
BOUNDARIES: tuple[Boundary, ...] = get_args(Boundary)
Branch = Literal["commercial API", "cloud agent", "local inference"]
BRANCHES: tuple[Branch, ...] = get_args(Branch)
#: What a candidate is, judged from its records: a metered API or a model the team serves itself.
Role = Literal["commercial", "local"]

#: The branches each data boundary admits (rule 2).
ADMISSIBLE: dict[Boundary, tuple[Branch, ...]] = {
    "strict": ("local inference",),
    "moderate": ("commercial API", "local inference"),
    "none": BRANCHES,
}


def branch_of(role: Role, boundary: Boundary) -> Branch:
    """The branch a chosen candidate takes (rule 11): local -> local inference; commercial -> a cloud agent
    where the boundary admits one (``none``), else the commercial API."""
    if role == "local":
        return "local inference"
    return "cloud agent" if "cloud agent" in ADMISSIBLE[boundary] else "commercial API"


def _positive(flag: str, value: float | None, what: str, *, whole: bool = False, zero: bool = False) -> None:
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if zero else value > 0) and (not whole or float(value).is_integer())
    if not ok:
        bound = ">= 0" if zero else "> 0"
        kind = "a whole number" if whole else "a number"
        raise UsageError(f"{flag}: expected {what}, {kind} {bound}, got {value!r}")


@dataclass(frozen=True)
class TeamInputs:
    """The team's side of the decision (each an assumption, none measured by the run)."""

    boundary: Boundary
    calls_per_hour: float | None = None  # model calls the team sends per working hour
    developers: int | None = None  # or: developers, each at calls_per_developer_hour
    calls_per_developer_hour: float | None = None  # None: from a sweep of the local candidate, if any
    budget_usd_month: float | None = None
    gpu_hourly_usd: float | None = None  # None: the local alias's own cost: mapping
    hours_per_month: float = WORKING_HOURS_PER_MONTH  # hours both bills run (the break-even's assumption)
    confidence: float = 0.95
    local: tuple[str, ...] = ()  # aliases declared local (--local), whatever their records say
    commercial: tuple[str, ...] = ()  # aliases declared commercial (--commercial)

    def __post_init__(self) -> None:
        if self.boundary not in BOUNDARIES:
            raise UsageError(f"--data-boundary: expected one of {', '.join(BOUNDARIES)}, got {self.boundary!r}")
        if self.calls_per_hour is not None and self.developers is not None:
            raise UsageError(
                "--calls-per-hour and --developers: give one of them (the volume in model calls per hour, or the "
                "developers whose calls make it)"
            )
        _positive("--calls-per-hour", self.calls_per_hour, "model calls per working hour")
        _positive("--developers", self.developers, "the developers sharing the choice", whole=True)
        _positive("--calls-per-developer-hour", self.calls_per_developer_hour, "model calls per developer-hour")
        _positive("--budget", self.budget_usd_month, "US$ per month", zero=True)
        _positive("--gpu-hourly-usd", self.gpu_hourly_usd, "US$ per GPU-hour", zero=True)
        _positive("--hours-per-month", self.hours_per_month, "working hours in a month")
        if self.hours_per_month > 744:
            raise UsageError(
                f"--hours-per-month: a month has at most 744 hours, got {self.hours_per_month!r}; use 176 for "
                "working hours (22 days x 8 h) or 730 for 24x7"
            )
        if not 0 < self.confidence < 1:
            raise UsageError(f"--confidence: expected a level between 0 and 1 such as 0.95, got {self.confidence!r}")
        both = sorted(set(self.local) & set(self.commercial))
        if both:
            raise UsageError(f"--local and --commercial both name {', '.join(both)}: an alias has one role")

    @property
    def admissible(self) -> tuple[Branch, ...]:
        return ADMISSIBLE[self.boundary]
