"""``agentbench merge-junit``: merge JUnit files (one per model or CI job) into a per-alias table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("merge-junit", help="merge JUnit XML files (one per model or CI job); per-alias table")
    m.add_argument("files", nargs="+")
    m.add_argument("-o", "--output", metavar="PATH", help="write the merged JUnit XML here")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.results.junit import format_alias_table, merge_junit

    missing = [p for p in args.files if not Path(p).is_file()]
    if missing:
        print(f"agentbench merge-junit: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = merge_junit(
        [Path(p) for p in args.files],
        Path(args.output) if args.output else None,
        on_problem=lambda msg: print(f"warning: {msg}", file=sys.stderr),
    )
    print(format_alias_table(rows))
    return 0
