"""``agentbench check-packets``: prove each packet meaningful (see packets/selfcheck.py for the rules)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from pytest_agentbench.cli.validate import add_prompt_cap_argument, prompt_cap
from pytest_agentbench.packets.schema import find_packet_files
from pytest_agentbench.packets.selfcheck import check_paths, format_table
from pytest_agentbench.sandbox.kinds import SANDBOX_KINDS


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser(
        "check-packets", help="prove each packet meaningful: gates fail untouched, pass with the reference"
    )
    add_arguments(c)
    c.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folders",
        nargs="*",
        metavar="DIR",
        default=["task_packets"],
        help="packet folders, or folders of packets (default: task_packets)",
    )
    parser.add_argument(
        "--sandbox",
        choices=SANDBOX_KINDS,
        default="auto",
        help="where the gates run: docker, local (bubblewrap), unsafe-local (no isolation) "
        "(default: auto = docker if an engine answers, else local)",
    )
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="check N packets at once")
    parser.add_argument("-q", "--quiet", action="store_true", help="leave out the output tails of failed runs")
    add_prompt_cap_argument(parser)


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.errors import SandboxUnavailable
    from pytest_agentbench.sandbox import make_sandbox, resolve_kind

    folders = [Path(f) for f in args.folders]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:  # reported, and the other folders are still checked
        print(f"check-packets: no such folder: {', '.join(missing)}", file=sys.stderr)
    empty = [str(f) for f in folders if f.is_dir() and not find_packet_files([f])]
    if empty:
        print(f"check-packets: no packet.yaml below {', '.join(empty)}", file=sys.stderr)
    present = [f for f in folders if f.is_dir() and str(f) not in empty]
    if not present:
        return 2
    try:
        kind = resolve_kind(args.sandbox)
    except SandboxUnavailable as exc:
        print(f"check-packets: {exc}", file=sys.stderr)
        return 2
    checks = check_paths(present, partial(make_sandbox, kind), jobs=args.jobs, prompt_warn_bytes=prompt_cap(args))
    print(format_table(checks, details=not args.quiet))
    if missing or empty:
        return 2
    return 0 if all(c.valid for c in checks) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``agentbench check-packets [DIR...]``: 0 if every packet is valid, 1 if one is not, 2 if a folder does not
    exist or holds no packet (the other folders are still checked)."""
    parser = argparse.ArgumentParser(
        prog="agentbench check-packets",
        description="Self-check task packets: gates must fail before the reference change (guards pass) and "
        "all pass after it.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
