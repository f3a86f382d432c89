"""``agentbench probe ALIAS``: a fixed battery that says whether an agent can use the alias."""

from __future__ import annotations

import argparse
import sys

from pytest_agentbench.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("probe", help="send a fixed battery to one alias and say whether the agent can use it")
    p.add_argument("alias")
    p.add_argument("--models-file", default="models.yaml")
    p.add_argument(
        "--context",
        type=int,
        default=None,
        metavar="TOKENS",
        help="the alias's context length, for the long-prompt check (default: the max_model_len the server "
        "reports in /v1/models, else 4096)",
    )
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="rounds of each check (default 1)")
    p.add_argument(
        "--concurrency", type=int, default=1, metavar="C", help="copies of each check sent at once (default 1)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.models.probe import format_probe, run_probe
    from pytest_agentbench.models.registry import select_usable
    from pytest_agentbench.serving.endpoints import Endpoints

    try:
        spec = select_usable(args.models_file, [args.alias])[0]
        for flag, value in (
            ("--repeat", args.repeat),
            ("--concurrency", args.concurrency),
            ("--context", args.context),
        ):
            if value is not None and value < 1:
                raise ConfigError(f"{flag}: must be >= 1, got {value}")
    except ConfigError as exc:
        print(f"agentbench probe: {exc}", file=sys.stderr)
        return 2
    with Endpoints() as endpoints:
        url = endpoints.start([spec])[spec.alias]
        results = run_probe(spec, url, context_tokens=args.context, repeat=args.repeat, concurrency=args.concurrency)
    print(format_probe(spec, results))
    return 0 if all(r.passed for r in results) else 1
