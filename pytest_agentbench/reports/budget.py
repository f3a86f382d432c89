"""Budget figures per alias from run records (``results.record_to_dict``): what was solved within budget,
and how many tokens solving took. Pure functions over record dicts, pytest-free. An "alias" here is a
column of the summary: with more than one agent, an agent x alias cell (``results.cells``).

* **Solved within budget**: passed runs that ended without hitting any budget (``budget.ended_by`` is
  ``null``) and did not go over the token budget (``over_by`` 0 or none), over the counted runs
  (``infrastructure`` runs are left out, as everywhere). A run whose token budget could not be
  enforced (``enforced: false``: the server reported no usage) is neither: it is counted as unknown
  and the cell says so.
* **Tokens to solve**: prompt + completion tokens over each passed run (``budget.tokens_used``), as
  the median, 90th percentile (``reports.stats``: linear interpolation), min, max and n; passed runs
  with unknown usage are left out and counted.

Records written before budgets existed have no ``budget``: their ``ended_by`` comes from the
outcome (``max_turns`` -> turns, ``agent_timeout`` -> wall) and their tokens from ``client.tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.agents.transcript import ENDED_BY, INFRASTRUCTURE
from pytest_agentbench.reports.stats import percentile
from pytest_agentbench.results.cells import column_of, label_cells

__all__ = [
    "SolvedWithin",
    "TokensToSolve",
    "budget_rows",
    "ended_by",
    "solved_within_budget",
    "tokens_to_solve",
    "tokens_used",
    "within_budget",
]

Row = tuple[str, list[str]]  # as reports.summary.Row: (label, one cell per alias)


def _budget(record: Mapping[str, Any]) -> Mapping[str, Any]:
    budget = record.get("budget")
    return budget if isinstance(budget, Mapping) else {}


def ended_by(record: Mapping[str, Any]) -> str | None:
    """Which budget ended the run: turns, tokens, wall, safety_timeout; None: the agent ended it (or a call failed)."""
    budget = _budget(record)
    if "ended_by" in budget:
        return budget["ended_by"] or None
    return ENDED_BY.get(str(record.get("outcome")))


def tokens_used(record: Mapping[str, Any]) -> int | None:
    """Prompt + completion tokens over the run as the server reported them; None when unknown."""
    budget = _budget(record)
    if "tokens_used" in budget:
        used = budget["tokens_used"]
        return int(used) if isinstance(used, int) and not isinstance(used, bool) else None
    tokens = (record.get("client") or {}).get("tokens") or {}
    if not tokens or not tokens.get("usage_reported", True):
        return None
    return int(tokens.get("prompt", 0)) + int(tokens.get("completion", 0))


def within_budget(record: Mapping[str, Any]) -> bool | None:
    """The run ended without hitting a budget and stayed within its token budget; None: cannot be known."""
    budget = _budget(record)
    if ended_by(record) is not None:
        return False
    if budget.get("enforced") is False:
        return None
    return not (budget.get("over_by") or 0) > 0


def _counted(records: Sequence[Mapping[str, Any]], alias: str) -> list[Mapping[str, Any]]:
    return [r for r in label_cells(records) if column_of(r) == alias and r.get("outcome") != INFRASTRUCTURE]


@dataclass(frozen=True)
class SolvedWithin:
    """``solved`` passed runs within budget out of ``runs`` counted runs; ``unknown`` passed runs unenforced."""

    solved: int
    runs: int
    unknown: int = 0

    @property
    def rate(self) -> float | None:
        return self.solved / self.runs if self.runs else None


@dataclass(frozen=True)
class TokensToSolve:
    """The distribution of tokens over passed runs (``n`` known; ``unknown``: passed, usage not reported)."""

    n: int
    median: float | None
    p90: float | None
    min: int | None
    max: int | None
    unknown: int = 0


def solved_within_budget(records: Sequence[Mapping[str, Any]], alias: str) -> SolvedWithin:
    runs = _counted(records, alias)
    passed = [within_budget(r) for r in runs if r.get("passed")]
    return SolvedWithin(sum(1 for w in passed if w), len(runs), sum(1 for w in passed if w is None))


def tokens_to_solve(records: Sequence[Mapping[str, Any]], alias: str) -> TokensToSolve:
    used = [tokens_used(r) for r in _counted(records, alias) if r.get("passed")]
    known = [u for u in used if u is not None]
    return TokensToSolve(
        n=len(known),
        median=percentile(known, 50),
        p90=percentile(known, 90),
        min=min(known) if known else None,
        max=max(known) if known else None,
        unknown=len(used) - len(known),
    )


def _modes_cell(records: Sequence[Mapping[str, Any]], alias: str) -> str:
    """The budget modes of the alias's runs (records from before budgets were all ``wall``)."""
    modes = sorted({str(_budget(r).get("mode") or "wall") for r in _counted(records, alias)})
    return ", ".join(modes) if modes else "n/a"


def _solved_cell(s: SolvedWithin) -> str:
    if not s.runs:
        return "n/a"
    text = f"{s.rate:.0%} ({s.solved}/{s.runs})"
    return text + (f", {s.unknown} unenforced" if s.unknown else "")


def _tokens(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _over_cell(records: Sequence[Mapping[str, Any]], alias: str) -> str:
    over = [int(_budget(r).get("over_by") or 0) for r in _counted(records, alias)]
    over = [o for o in over if o > 0]
    return f"{len(over)} (max +{max(over):,})" if over else "-"


def budget_rows(records: Sequence[Mapping[str, Any]], aliases: Sequence[str]) -> list[Row]:
    """(label, one cell per alias) rows: the budget mode, solved within budget, tokens to solve."""
    records = label_cells(records)
    solved = [solved_within_budget(records, a) for a in aliases]
    dists = [tokens_to_solve(records, a) for a in aliases]
    rows: list[Row] = [
        ("budget mode", [_modes_cell(records, a) for a in aliases]),
        ("solved within budget", [_solved_cell(s) for s in solved]),
        ("tokens to solve p50 / p90", [f"{_tokens(d.median)} / {_tokens(d.p90)}" if d.n else "n/a" for d in dists]),
        (
            "tokens to solve min / max",
            [
                (f"{_tokens(d.min)} / {_tokens(d.max)} (n={d.n})" if d.n else "n/a")
                + (f", {d.unknown} unknown" if d.unknown else "")
                for d in dists
            ],
        ),
    ]
    if any(int(_budget(r).get("over_by") or 0) > 0 for r in records):
        rows.append(("over the token budget", [_over_cell(records, a) for a in aliases]))
    return rows
