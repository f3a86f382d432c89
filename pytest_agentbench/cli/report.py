"""``agentbench report``: the comparison summary with its estimates (and HTML report, estimates JSON) of a run.

    agentbench report results.jsonl --html report.html --sweep sweep-h100/ --sweep sweep-l4/ --load load/

``--sweep`` / ``--load`` add the saved capacity results to the HTML report (``reports/capacity_html.py``):
per sweep its SLO-vs-N charts and levels with the knee, per load its percentiles and goodput, and with
two or more sweeps the ranking per team size N. Exit status: 0 done, 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_agentbench.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("report", help="print the comparison summary of a results.jsonl, optionally as HTML")
    r.add_argument("results", help="a results.jsonl or the folder that holds it")
    r.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report")
    r.add_argument("--json", metavar="PATH", help="also write the estimates (intervals, pass@k, $ per solved run)")
    r.add_argument("--title", default="agentbench report")
    r.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="SWEEP",
        help="a sweep.json (or its folder) to add to the HTML report's Capacity section; repeat for several "
        "(two or more are also ranked per team size N)",
    )
    r.add_argument(
        "--load", action="append", default=[], metavar="LOAD", help="a load.json (or its folder) to add; repeatable"
    )
    r.add_argument(
        "--pass-tolerance",
        type=float,
        default=5.0,
        metavar="POINTS",
        help="for the ranking: a configuration may pass this many percentage points below the best that holds "
        "the SLO and still win (default 5)",
    )
    r.set_defaults(func=run)


def _capacity(args: argparse.Namespace) -> list[str] | None:
    """The Capacity fragments of --sweep / --load (``ConfigError`` names a bad file), None when none given."""
    if not (args.sweep or args.load):
        return None
    if not args.html:
        raise ConfigError("--sweep / --load: they go into the HTML report; add --html PATH")
    from pytest_agentbench.reports.capacity_html import capacity_fragments

    return capacity_fragments(args.sweep, args.load, pass_tolerance=args.pass_tolerance / 100)


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.reports.estimates import ESTIMATES_FILE, estimate_aliases, write_estimates
    from pytest_agentbench.reports.html import write_html
    from pytest_agentbench.reports.summary import format_summary
    from pytest_agentbench.results.jsonl import load_records

    path = Path(args.results)
    if path.is_dir():
        path = path / "results.jsonl"
    if path.name == ESTIMATES_FILE:
        print(
            f"agentbench report: {path} holds estimates derived from a run, not run records: give the "
            "results.jsonl beside it (or the folder)",
            file=sys.stderr,
        )
        return 2
    if not path.is_file():
        print(
            f"agentbench report: {path} not found: give a results.jsonl or the folder holding it "
            "(pytest --agentbench-results DIR writes one)",
            file=sys.stderr,
        )
        return 2
    try:
        capacity = _capacity(args)
    except ConfigError as exc:
        print(f"agentbench report: error: {exc}", file=sys.stderr)
        return 2
    records = load_records(path, on_problem=lambda msg: print(f"warning: {msg}", file=sys.stderr))
    print(format_summary(records))
    if args.html:
        print(f"written: {write_html(records, Path(args.html), args.title, capacity=capacity)}")
    if args.json:
        print(f"written: {write_estimates(estimate_aliases(records), Path(args.json), records)}")
    return 0
