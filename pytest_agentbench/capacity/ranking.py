"""Several sweeps compared: per team size N, the cheapest configuration that holds the SLO wins.

Each sweep (``sweep.json``, schema ``agentbench-sweep/1``) is one configuration: an alias, i.e. a
model x quantisation x GPU. For every N that any sweep measured, :func:`rank_sweeps` lists one row
per sweep with a level at that N and ranks them: a row is **eligible** when its level holds the
SLO *and* its pass rate is within ``pass_tolerance`` of the best pass rate among the rows that hold
it (so a cheap configuration that fails the packets does not win on price); eligible rows are
ranked by $/dev-month, cheapest first (an unknown cost ranks after every known one); the others
follow, unranked, each saying why. Pure: the numbers come from the sweeps' JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import ConfigError

__all__ = ["DEFAULT_PASS_TOLERANCE", "RankRow", "load_sweep", "rank_sweeps"]

#: How far (as a share of runs) below the best SLO-holding pass rate a configuration may be and still win.
DEFAULT_PASS_TOLERANCE = 0.05


@dataclass(frozen=True)
class RankRow:
    """One configuration at one team size."""

    alias: str
    model: str
    source: str
    devs: int
    slo_holds: bool | None
    pass_rate: float | None
    runs: int
    usd_per_dev_month: float | None
    goodput_share: float | None
    ttft_p50_s: float | None
    test_double: bool
    eligible: bool = False
    rank: int | None = None
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_sweep(path: Path | str) -> dict[str, Any]:
    """A ``sweep.json`` (or the folder holding it), checked to be one."""
    path = Path(path)
    if path.is_dir():
        path = path / "sweep.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable sweep.json ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != "agentbench-sweep/1":
        raise ConfigError(f"{path}: not an agentbench sweep result (schema agentbench-sweep/1); give a sweep.json")
    data["_source"] = str(path)
    return data


def _row(sweep: Mapping[str, Any], level: Mapping[str, Any]) -> RankRow:
    client = level.get("client") or {}
    good = client.get("goodput") or {}
    return RankRow(
        alias=str(sweep.get("alias")),
        model=str(sweep.get("model")),
        source=str(sweep.get("_source", "")),
        devs=int(level["devs"]),
        slo_holds=level.get("slo_holds"),
        pass_rate=level.get("pass_rate"),
        runs=int(level.get("runs_total") or 0),
        usd_per_dev_month=(level.get("cost") or {}).get("usd_per_dev_month"),
        goodput_share=good.get("share"),
        ttft_p50_s=client.get("ttft_p50_s"),
        test_double=bool(sweep.get("test_double")),
    )


def _judge(rows: list[RankRow], tolerance: float) -> list[RankRow]:
    """Eligibility, the reason where not, and the ranks by $/dev-month."""
    holding = [r for r in rows if r.slo_holds]
    best = max((r.pass_rate for r in holding if r.pass_rate is not None), default=None)
    judged = []
    for r in rows:
        if r.slo_holds is None:
            why = "no SLO given for this sweep"
        elif not r.slo_holds:
            why = "breaks the SLO"
        elif r.pass_rate is None or best is None:
            why = "no runs finished"
        elif r.pass_rate < best - tolerance - 1e-12:
            why = f"pass rate {r.pass_rate:.0%} is more than {tolerance * 100:g} points below the best ({best:.0%})"
        else:
            why = ""
        judged.append(RankRow(**{**r.__dict__, "eligible": not why, "why": why}))
    eligible = sorted(
        (r for r in judged if r.eligible),
        key=lambda r: (r.usd_per_dev_month is None, r.usd_per_dev_month or 0.0, -(r.pass_rate or 0.0), r.alias),
    )
    ranked = [RankRow(**{**r.__dict__, "rank": i + 1}) for i, r in enumerate(eligible)]
    rest = sorted((r for r in judged if not r.eligible), key=lambda r: (r.slo_holds is not True, r.alias))
    return ranked + rest


def rank_sweeps(
    sweeps: Sequence[Mapping[str, Any]], *, pass_tolerance: float = DEFAULT_PASS_TOLERANCE
) -> dict[int, list[RankRow]]:
    """One ranked table per N (ascending): eligible rows by $/dev-month, then the rest with their reason."""
    if not 0 <= pass_tolerance <= 1:
        raise ConfigError(f"--pass-tolerance: expected percentage points from 0 to 100, found {pass_tolerance * 100:g}")
    by_n: dict[int, list[RankRow]] = {}
    for sweep in sweeps:
        for level in sweep.get("levels") or []:
            row = _row(sweep, level)
            by_n.setdefault(row.devs, []).append(row)
    return {n: _judge(rows, pass_tolerance) for n, rows in sorted(by_n.items())}
