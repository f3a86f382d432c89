"""``agentbench merge DIR... --out DIR``: shard results folders -> one results folder and one HTML report.

The rules (duplicates, missing shards, what is written): :mod:`pytest_agentbench.scale.merge`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser(
        "merge",
        help="merge the results folders of --shard runs into one folder (JSONL, benchmark JSON, JUnit) and one report",
    )
    m.add_argument(
        "folders", nargs="+", metavar="DIR", help="results folders, one per shard (retried shards may repeat)"
    )
    m.add_argument("--out", required=True, metavar="DIR", help="the merged folder (created; not one of the inputs)")
    m.add_argument("--title", default="agentbench report", help="title of the HTML report")
    m.add_argument(
        "--allow-missing", action="store_true", help="merge even when a shard K/N has no folder (named as a warning)"
    )
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.errors import UsageError
    from pytest_agentbench.reports.summary import format_summary
    from pytest_agentbench.scale.merge import merge_folders

    try:
        report = merge_folders(
            [Path(p) for p in args.folders], Path(args.out), title=args.title, allow_missing=args.allow_missing
        )
    except UsageError as exc:
        print(f"agentbench merge: error: {exc}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}")
    print(format_summary(report.records, aliases=report.aliases))
    print(f"merged {len(report.records)} records from {len(args.folders)} folders")
    for path in report.outputs:
        print(f"written: {path}")
    return 0
