"""The ``agentbench`` command: checks and tools that need no pytest run.

agentbench validate [--models-file models.yaml] [--packets task_packets]
agentbench check-packets [DIR ...] [--sandbox auto|docker|local]
agentbench report results.jsonl [--html report.html]
agentbench merge-junit a.xml b.xml [-o merged.xml]
agentbench probe ALIAS [--models-file models.yaml] [--context TOKENS]
agentbench sweep --models ALIAS --devs 1,2,4,8 [--slo-ttft-p50 S] [--slo-tps-p50 TOK/S] [--out DIR]
agentbench size --params 8e9 --layers 32 --heads 32 --kv-heads 8 --head-dim 128 --context 32768 --gpu H100-80GB
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_agentbench.errors import ConfigError


def _validate(args: argparse.Namespace) -> int:
    from pytest_agentbench.models.registry import load_models
    from pytest_agentbench.packets.schema import discover_packets

    problems = 0
    models_file = Path(args.models_file)
    if models_file.exists() or args.models_file != "models.yaml":
        try:
            specs = load_models(models_file)
            print(f"ok   {models_file}: {len(specs)} alias(es): {', '.join(specs)}")
            for spec in specs.values():
                if spec.unresolved:
                    print(f"note {spec.where}: needs {', '.join(spec.unresolved)} set to be used")
        except ConfigError as exc:
            print(f"FAIL {exc}")
            problems += 1
    for folder in args.packets or ["task_packets"]:
        try:
            packets = discover_packets([folder])
            for p in packets:
                print(f"ok   {p.file}: {p.id} ({p.kind}, {len(p.gates)} gate(s))")
            if not packets:
                print(f"FAIL {folder}: no packet.yaml found")
                problems += 1
        except ConfigError as exc:
            print(f"FAIL {exc}")
            problems += 1
    return 1 if problems else 0


def _probe(args: argparse.Namespace) -> int:
    from pytest_agentbench.models.probe import format_probe, run_probe
    from pytest_agentbench.models.registry import select_usable
    from pytest_agentbench.serving.endpoints import Endpoints

    try:
        spec = select_usable(args.models_file, [args.alias])[0]
    except ConfigError as exc:
        print(f"agentbench probe: {exc}", file=sys.stderr)
        return 2
    with Endpoints() as endpoints:
        url = endpoints.start([spec])[spec.alias]
        results = run_probe(spec, url, context_tokens=args.context)
    print(format_probe(spec, results))
    return 0 if all(r.passed for r in results) else 1


def _report(args: argparse.Namespace) -> int:
    from pytest_agentbench.reports.html import write_html
    from pytest_agentbench.reports.summary import format_summary
    from pytest_agentbench.results.store import load_records

    path = Path(args.results)
    if path.is_dir():
        path = path / "results.jsonl"
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
    return 0


def _merge_junit(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentbench", description="pytest-agentbench tools")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check models.yaml and task packets strictly, without running anything")
    v.add_argument("--models-file", default="models.yaml")
    v.add_argument("--packets", action="append", metavar="DIR")
    v.set_defaults(func=_validate)
    from pytest_agentbench.packets import selfcheck

    c = sub.add_parser(
        "check-packets", help="prove each packet meaningful: gates fail untouched, pass with the reference"
    )
    selfcheck.add_arguments(c)
    c.set_defaults(func=selfcheck.run)
    r = sub.add_parser("report", help="print the comparison summary of a results.jsonl, optionally as HTML")
    r.add_argument("results", help="a results.jsonl or the folder that holds it")
    r.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report")
    r.add_argument("--title", default="agentbench report")
    r.set_defaults(func=_report)
    m = sub.add_parser("merge-junit", help="merge JUnit XML files (one per model or CI job); per-alias table")
    m.add_argument("files", nargs="+")
    m.add_argument("-o", "--output", metavar="PATH", help="write the merged JUnit XML here")
    m.set_defaults(func=_merge_junit)
    p = sub.add_parser("probe", help="send a fixed battery to one alias and say whether the agent can use it")
    p.add_argument("alias")
    p.add_argument("--models-file", default="models.yaml")
    p.add_argument(
        "--context",
        type=int,
        default=4096,
        metavar="TOKENS",
        help="the alias's context length, for the long-prompt check (default 4096)",
    )
    p.set_defaults(func=_probe)
    from pytest_agentbench.capacity import sweep
    from pytest_agentbench.cli import size as sizing_cli

    sweep.add_parser(sub)
    sizing_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
