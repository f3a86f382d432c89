"""The ``agentbench`` command: checks and tools that need no pytest run; one module per subcommand.

agentbench validate [DIR ...] [--models-file models.yaml] [--packets DIR] [--prompt-warn-kb KB]
agentbench check-packets [DIR ...] [--sandbox auto|docker|local|unsafe-local]
agentbench report results.jsonl [--html report.html]
agentbench compare A B [results.jsonl ...] [--confidence 0.95] [--json]
agentbench export --format swebench [results.jsonl ...] [-o preds.jsonl] [--model-name alias|model|alias/model]
agentbench merge-junit a.xml b.xml [-o merged.xml]
agentbench merge res/shard1of3 res/shard2of3 res/shard3of3 --out merged [--allow-missing]
agentbench k8s-job --shards 8 --image IMG [--models ALIAS,...] [--models-file models.yaml] [-o job.yaml]
agentbench probe ALIAS [--models-file models.yaml] [--context TOKENS] [--repeat N] [--concurrency C]
agentbench sweep --models ALIAS --devs 1,2,4,8 [--slo-ttft-p50 S] [--slo-tps-p50 TOK/S] [--out DIR]
agentbench load --models ALIAS --num-prompts 100 --request-rate 4 [--max-concurrency C] [--goodput ttft:MS tpot:MS]
agentbench replay results.jsonl --models ALIAS --developers 1,2,4 [--think-scale X] [--ignore-eos]
agentbench rank sweep-a/sweep.json sweep-b/ ... [--pass-tolerance POINTS] [--html rank.html]
agentbench size --params 8e9 --layers 32 --heads 32 --kv-heads 8 --head-dim 128 --context 32768 --gpu H100-80GB
agentbench verdict SESSION_JSON --pytest-exit N [--setup-s S]     (scripts/main-job ends with it)
agentbench screen ALIAS... [--models models.yaml] [--json] [--repeat N] [--concurrency C] [--gpu NAME]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentbench", description="pytest-agentbench tools")
    sub = parser.add_subparsers(dest="command", required=True)
    from pytest_agentbench.cli import (
        check_packets,
        compare,
        export,
        k8s_job,
        merge,
        merge_junit,
        probe,
        report,
        screen,
        validate,
        verdict,
    )

    for command in (
        validate,
        check_packets,
        report,
        compare,
        export,
        merge_junit,
        merge,
        k8s_job,
        probe,
        screen,
        verdict,
    ):
        command.add_parser(sub)
    from pytest_agentbench.cli import load, rank, replay, sweep
    from pytest_agentbench.cli import size as sizing_cli

    sweep.add_parser(sub)
    load.add_parser(sub)
    replay.add_parser(sub)
    rank.add_parser(sub)
    sizing_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
