"""``agentbench validate``: read models.yaml and the packets strictly, run nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_agentbench.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    v = sub.add_parser("validate", help="check models.yaml and task packets strictly, without running anything")
    v.add_argument("--models-file", default="models.yaml")
    v.add_argument("--packets", action="append", metavar="DIR")
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
