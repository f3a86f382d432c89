"""``agentbench report``: the comparison summary with its estimates (and HTML report, estimates JSON) of a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("report", help="print the comparison summary of a results.jsonl, optionally as HTML")
    r.add_argument("results", help="a results.jsonl or the folder that holds it")
    r.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report")
    r.add_argument("--json", metavar="PATH", help="also write the estimates (intervals, pass@k, $ per solved run)")
    r.add_argument("--title", default="agentbench report")
    r.set_defaults(func=run)


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
    records = load_records(path, on_problem=lambda msg: print(f"warning: {msg}", file=sys.stderr))
    print(format_summary(records))
    if args.html:
        print(f"written: {write_html(records, Path(args.html), args.title)}")
    if args.json:
        print(f"written: {write_estimates(estimate_aliases(records), Path(args.json), records)}")
    return 0
