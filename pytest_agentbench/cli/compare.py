"""``agentbench compare A B [results ...]``: the paired comparison of two aliases (``reports.compare``).

Results: results.jsonl files or the run folders that hold them; several are merged (one record per
``run_id``). Without any, the newest run the plugin wrote under ``./.agentbench/runs/`` (its default
``--agentbench-results``). Exit 0 with the comparison; 2 for an unreadable file, an alias without
runs there (the message lists the aliases there are) or no paired trials - never a traceback.

Where the results hold more than one agent, A and B are agent x alias cells, named as the reports
name them (``"mini-swe-agent @ local-coder"``; a bare alias is its one cell, and is refused, with
the cells listed, where it ran under several agents): agents are compared, never pooled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import UsageError

_RUNS = Path(".agentbench") / "runs"


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a level between 0 and 1 such as 0.95, got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser(
        "compare",
        help="paired comparison of two aliases over the same (packet, repeat) trials: McNemar, intervals, deltas",
    )
    c.add_argument(
        "alias_a",
        metavar="A",
        help="the first alias, or cell 'AGENT @ ALIAS' where several agents ran (differences are B - A)",
    )
    c.add_argument("alias_b", metavar="B", help="the second alias (or cell)")
    c.add_argument(
        "results",
        nargs="*",
        help=f"results.jsonl files or run folders (default: the newest {_RUNS}/*/results.jsonl here)",
    )
    c.add_argument("--confidence", type=_confidence, default=0.95, help="interval level (default 0.95)")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON instead of text")
    c.set_defaults(func=run)


def _default_results() -> Path | None:
    runs = sorted(_RUNS.glob("*/results.jsonl"), key=lambda p: p.stat().st_mtime) if _RUNS.is_dir() else []
    return runs[-1] if runs else None


def _sources(given: list[str]) -> list[Path]:
    """The results files to read; a :class:`UsageError` naming the path and the fix."""
    if not given:
        found = _default_results()
        if found is None:
            raise UsageError(
                f"no results given and none found under ./{_RUNS}: pass a results.jsonl or its folder, e.g. "
                "agentbench compare A B .agentbench/runs/<run>/results.jsonl (pytest --agentbench-results DIR "
                "writes DIR/results.jsonl)"
            )
        return [found]
    paths = []
    for text in given:
        path = Path(text)
        if path.is_dir():
            path = path / "results.jsonl"
        if not path.is_file():
            raise UsageError(
                f"{path} not found: give a results.jsonl or the folder holding it "
                "(pytest --agentbench-results DIR writes one)"
            )
        paths.append(path)
    return paths


def _load(paths: list[Path]) -> list[dict[str, Any]]:
    from pytest_agentbench.results.jsonl import load_records, merge_records

    groups = []
    for path in paths:
        try:
            groups.append(load_records(path, on_problem=lambda msg: print(f"warning: {msg}", file=sys.stderr)))
        except OSError as exc:
            raise UsageError(f"{path}: cannot be read ({exc.strerror or exc}); check the path and its permissions")
    return merge_records(groups)


def _fail(message: str) -> int:
    print(f"agentbench compare: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.reports.compare import compare, comparison_to_dict, format_comparison

    try:
        paths = _sources(args.results)
    except UsageError as exc:
        return _fail(str(exc))
    where = ", ".join(str(p) for p in paths)
    try:
        records = _load(paths)
        if not records:
            raise UsageError("no run records in it; run pytest --models=A,B with --agentbench-results first")
        result = compare(records, args.alias_a, args.alias_b, confidence=args.confidence)
    except UsageError as exc:
        return _fail(f"{where}: {exc}")
    print(json.dumps(comparison_to_dict(result), indent=2) if args.json else format_comparison(result))
    return 0
