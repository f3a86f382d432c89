"""``agentbench rank``: several sweeps compared, per team size N, cheapest that holds the SLO first.

    agentbench rank sweeps/coder-h100/sweep.json sweeps/coder-l40s/ sweeps/coder-awq-l4/ --html rank.html

A thin skin over :func:`pytest_agentbench.capacity.ranking.rank_sweeps` (the rule) and
``reports/ranking.py`` (the table and page). Exit status: 0 done, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import ConfigError

__all__ = ["add_parser", "main", "run_cli"]


def _points(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"--pass-tolerance: expected percentage points from 0 to 100, found {text!r}")
    return value / 100


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweeps", nargs="+", metavar="SWEEP", help="sweep.json files (or the folders holding them)")
    p.add_argument(
        "--pass-tolerance",
        type=_points,
        default=0.05,
        metavar="POINTS",
        help="a configuration may pass this many percentage points below the best that holds the SLO and "
        "still win (default 5)",
    )
    p.add_argument("--html", metavar="PATH", help="also write the ranking as a self-contained page")
    p.add_argument("--json", action="store_true", help="print the tables as JSON instead")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``agentbench rank`` on an ``add_subparsers()`` object."""
    p = sub.add_parser("rank", help="compare sweeps per team size N: the cheapest that holds the SLO wins")
    add_arguments(p)
    p.set_defaults(func=run_cli)
    return p


def run_cli(args: argparse.Namespace) -> int:
    from pytest_agentbench.capacity.ranking import load_sweep, rank_sweeps
    from pytest_agentbench.reports.ranking import format_ranking, render_ranking_html

    try:
        sweeps = [load_sweep(path) for path in args.sweeps]
        tables = rank_sweeps(sweeps, pass_tolerance=args.pass_tolerance)
    except ConfigError as exc:
        print(f"agentbench rank: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({str(n): [r.to_dict() for r in rows] for n, rows in tables.items()}, indent=2))
    else:
        print(format_ranking(tables, args.pass_tolerance))
    if args.html:
        sources = [s["_source"] for s in sweeps]
        Path(args.html).write_text(render_ranking_html(tables, args.pass_tolerance, sources), encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_agentbench.cli.rank ...`` (the same as ``agentbench rank ...``)."""
    parser = argparse.ArgumentParser(prog="agentbench rank", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))
