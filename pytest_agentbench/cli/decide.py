"""``agentbench decide``: the decision record (ADR) of a finished run (``pytest_agentbench.decision``).

    agentbench decide res/ --data-boundary moderate --calls-per-hour 400 --gpu-hourly-usd 2.5
    agentbench decide res/ --sweep sweep-out/sweep.json --screen screen.json --data-boundary strict \\
        --developers 12 --budget 4000 -o decision.md

Results: results.jsonl files or the run folders holding them (several are merged); without any, the
newest run under ``./.agentbench/runs/``. Writes ``decision.md`` (``-o``; ``-o -`` prints it) and says
the branch on stdout. Exit status: 0 a branch is taken (accepted or provisional), 1 blocked (no
candidate qualifies), 2 a usage error - an unreadable or wrong file, a bad option - whose message
names the file or option and the fix, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import ConfigError, UsageError

__all__ = ["add_parser", "run"]

_RUNS = Path(".agentbench") / "runs"


def _number(flag: str, kind: type = float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{flag}: expected {what}, got {text!r}") from None

    return parse


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "decide",
        help="write the decision record (ADR) of a run: commercial API, cloud agent or local inference",
    )
    p.add_argument("results", nargs="*", help=f"results.jsonl files or run folders (default: the newest {_RUNS}/*)")
    p.add_argument("--sweep", action="append", default=[], metavar="FILE", help="a sweep.json of a local alias")
    p.add_argument("--screen", action="append", default=[], metavar="FILE", help="agentbench screen --json output")
    p.add_argument("--data-boundary", required=True, choices=("strict", "moderate", "none"), dest="boundary")
    volume = p.add_mutually_exclusive_group()
    volume.add_argument("--calls-per-hour", type=_number("--calls-per-hour"), metavar="N", help="model calls/h")
    volume.add_argument("--developers", type=_number("--developers", int), metavar="N", help="developers served")
    p.add_argument(
        "--calls-per-developer-hour",
        type=_number("--calls-per-developer-hour"),
        metavar="R",
        help="with --developers: calls per developer-hour (default: measured by the local alias's sweep)",
    )
    p.add_argument("--budget", type=_number("--budget"), metavar="USD_PER_MONTH", help="monthly budget")
    p.add_argument(
        "--gpu-hourly-usd",
        type=_number("--gpu-hourly-usd"),
        metavar="X",
        help="assumed US$ per GPU-hour of the local aliases (default: their cost: mapping)",
    )
    p.add_argument("--hours-per-month", type=_number("--hours-per-month"), default=176.0, metavar="H")
    p.add_argument("--local", action="append", default=[], metavar="ALIAS", help="treat ALIAS as self-hosted")
    p.add_argument("--commercial", action="append", default=[], metavar="ALIAS", help="treat ALIAS as an API")
    p.add_argument("--confidence", type=_number("--confidence"), default=0.95, metavar="C")
    p.add_argument("--agent", metavar="NAME", help="the agent whose runs to decide on, where the results hold several")
    p.add_argument("-o", "--output", default="decision.md", metavar="FILE", help="where to write (- for stdout)")
    p.set_defaults(func=run)
    return p


def _results(given: list[str]) -> list[str]:
    if given:
        return given
    runs = sorted(_RUNS.glob("*/results.jsonl"), key=lambda p: p.stat().st_mtime) if _RUNS.is_dir() else []
    if not runs:
        raise UsageError(
            f"no results given and none found under ./{_RUNS}: pass a results.jsonl or its folder "
            "(pytest --agentbench-results DIR writes DIR/results.jsonl)"
        )
    return [str(runs[-1])]


def _inputs(args: argparse.Namespace) -> Any:
    from pytest_agentbench.decision import TeamInputs

    return TeamInputs(
        boundary=args.boundary,
        calls_per_hour=args.calls_per_hour,
        developers=args.developers,
        calls_per_developer_hour=args.calls_per_developer_hour,
        budget_usd_month=args.budget,
        gpu_hourly_usd=args.gpu_hourly_usd,
        hours_per_month=args.hours_per_month,
        confidence=args.confidence,
        local=tuple(args.local),
        commercial=tuple(args.commercial),
    )


def _write(text: str, output: str) -> None:
    if output == "-":
        sys.stdout.write(text)
        return
    path = Path(output)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"-o {output}: cannot be written ({exc.strerror or exc}); give a writable path or -")


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.decision import collect, decide, read_sources, render_adr

    def warn(message: str) -> None:
        print(f"agentbench decide: warning: {message}", file=sys.stderr)

    try:
        inputs = _inputs(args)
        sources = read_sources(_results(args.results), args.sweep, args.screen, warn=warn, agent=args.agent)
        evidence = collect(sources, inputs)
        decision = decide(evidence, inputs)
        _write(render_adr(decision, evidence), args.output)
    except (UsageError, ConfigError) as exc:
        print(f"agentbench decide: {exc}", file=sys.stderr)
        return 2
    if args.output != "-":
        if decision.chosen is None:
            print(f"agentbench decide: blocked: {decision.rationale}")
        else:
            said = f"{decision.branch} ({decision.chosen.alias}), {decision.status}"
            print(f"agentbench decide: {said}: {decision.rationale}")
        print(f"written: {args.output}")
    return 1 if decision.status == "blocked" else 0
