"""``agentbench export --format swebench [RESULTS ...] [-o preds.jsonl]``: run records for other tools.

RESULTS are results.jsonl files or the folders a pytest run wrote (default: the newest run under
``./.agentbench/runs``). The predictions go to ``-o`` (default: stdout); every run left out, and
every patch exported cut, is a warning on stderr naming the run and why. Exit status: 0 written,
2 a usage error (a path that holds no records, an unwritable ``-o``, no run with a patch): the
message names the file and the fix, never a traceback. The format itself is described in
:mod:`pytest_agentbench.results.export`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pytest_agentbench.errors import UsageError
from pytest_agentbench.results.export import (
    FORMATS,
    NAME_BY,
    load_sources,
    result_files,
    swebench_predictions,
    write_jsonl,
)
from pytest_agentbench.results.jsonl import RESULTS_FILE

__all__ = ["add_parser", "run"]

RUNS_DIR = Path(".agentbench") / "runs"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    x = sub.add_parser(
        "export",
        help="export run records for other tools (SWE-bench predictions)",
        description="Export run records for other tools. swebench: predictions JSONL with instance_id "
        "(the packet id, -r<repeat> where an alias has several trials of it), model_name_or_path and "
        "model_patch (the agent's patch).",
    )
    x.add_argument("results", nargs="*", metavar="RESULTS", help=f"{RESULTS_FILE} files or run folders")
    x.add_argument("--format", required=True, choices=FORMATS, help="the export format")
    x.add_argument("-o", "--output", default="-", metavar="PATH", help="where to write (default: stdout)")
    x.add_argument(
        "--model-name",
        default="alias",
        choices=NAME_BY,
        help="what model_name_or_path holds (default: alias)",
    )
    x.set_defaults(func=run)


def _newest_run() -> Path:
    runs = sorted((p for p in RUNS_DIR.glob("*") if (p / RESULTS_FILE).is_file()), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise UsageError(
            f"no RESULTS given and no run under {RUNS_DIR.resolve()}: give a {RESULTS_FILE} "
            "(pytest --agentbench-results DIR writes one)"
        )
    return runs[-1]


def run(args: argparse.Namespace) -> int:
    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    try:
        paths = [Path(p) for p in args.results] or [_newest_run()]
        sources = load_sources(result_files(paths), warn)
        rows = swebench_predictions(sources, name_by=args.model_name, warn=warn)
        if not rows:
            raise UsageError(
                f"{', '.join(str(p) for p, _ in sources)}: no run with a patch to export (see the warnings); "
                "runs recorded by this version of agentbench carry one"
            )
        if args.output == "-":
            sys.stdout.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        else:
            write_jsonl(rows, Path(args.output))
            print(f"written: {args.output} ({len(rows)} prediction(s))", file=sys.stderr)
    except UsageError as exc:
        print(f"agentbench export: {exc}", file=sys.stderr)
        return 2
    return 0
