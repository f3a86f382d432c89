"""The ``agentbench`` command: checks and tools that need no pytest run; one module per subcommand.

agentbench validate [DIR ...] [--models-file models.yaml] [--packets DIR] [--prompt-warn-kb KB]
agentbench check-packets [DIR ...] [--sandbox auto|docker|local|unsafe-local]
agentbench report results.jsonl [--html report.html]
agentbench merge-junit a.xml b.xml [-o merged.xml]
agentbench probe ALIAS [--models-file models.yaml] [--context TOKENS] [--repeat N] [--concurrency C]
agentbench sweep --models ALIAS --devs 1,2,4,8 [--slo-ttft-p50 S] [--slo-tps-p50 TOK/S] [--out DIR]
agentbench size --params 8e9 --layers 32 --heads 32 --kv-heads 8 --head-dim 128 --context 32768 --gpu H100-80GB
agentbench screen ALIAS... [--models models.yaml] [--json] [--repeat N] [--concurrency C] [--gpu NAME]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentbench", description="pytest-agentbench tools")
    sub = parser.add_subparsers(dest="command", required=True)
    from pytest_agentbench.cli import check_packets, merge_junit, probe, report, screen, validate

    for command in (validate, check_packets, report, merge_junit, probe, screen):
        command.add_parser(sub)
    from pytest_agentbench.cli import size as sizing_cli
    from pytest_agentbench.cli import sweep

    sweep.add_parser(sub)
    sizing_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
