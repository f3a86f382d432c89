"""``agentbench screen ALIAS...``: the course's screening table per candidate, filled from evidence.

    agentbench screen local-cpu tiny-cpu --models models.yaml
    agentbench screen qwen3-coder --models examples/models.yaml --gpu H200 --json
    agentbench screen scripted-probe --repeat 2 --concurrency 4 --html screen.html

Rows, in the course's order: licence, serving support, tool format, context policy,
failure behaviour (:mod:`pytest_agentbench.screening`). Servers are started one at a
time. Exit status: 0 no candidate disqualified, 1 one or more disqualified, 2 a usage
or configuration error (the message names the option, alias or file to fix).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import ConfigError, UsageError

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("screen", help="screen candidate aliases: licence, serving, tool format, context, failures")
    p.add_argument("aliases", nargs="+", metavar="ALIAS")
    p.add_argument(
        "--models",
        "--models-file",
        dest="models_file",
        default="models.yaml",
        metavar="FILE",
        help="the models.yaml that defines the aliases (default: models.yaml)",
    )
    p.add_argument("--repeat", type=int, default=3, metavar="N", help="rounds of the tool checks (default 3)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=4,
        metavar="C",
        help="calls at once in the loaded rounds; 1: none (default 4)",
    )
    p.add_argument("--gpu", metavar="NAME", help="size a GPU alias's memory on this GPU (as agentbench size names it)")
    p.add_argument(
        "--context-need",
        type=int,
        metavar="TOKENS",
        help="the context the team needs (default: what the server serves)",
    )
    p.add_argument(
        "--context",
        type=int,
        metavar="TOKENS",
        help="the context of an endpoint that reports no max_model_len in /v1/models",
    )
    p.add_argument("--json", action="store_true", help="print the screening as JSON")
    p.add_argument("--html", metavar="FILE", help="also write the screening as an HTML page")
    p.add_argument("--brief", action="store_true", help="leave the evidence out of the terminal table")
    p.set_defaults(func=run)
    return p


def _options(args: argparse.Namespace) -> Any:
    from pytest_agentbench.capacity.gpus import parse_gpu
    from pytest_agentbench.screening import ScreenOptions

    for flag, value in (
        ("--repeat", args.repeat),
        ("--concurrency", args.concurrency),
        ("--context-need", args.context_need),
        ("--context", args.context),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{flag}: must be >= 1, got {value}")
    if args.gpu is not None:
        try:
            parse_gpu(args.gpu)
        except ConfigError as exc:
            raise UsageError(f"--gpu: {exc}") from None
    return ScreenOptions(
        repeat=args.repeat,
        concurrency=args.concurrency,
        gpu=args.gpu,
        context_need=args.context_need,
        context=args.context,
    )


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.models.registry import select_usable
    from pytest_agentbench.screening import format_screens, screen_candidates, screens_json

    try:
        options = _options(args)
        specs = select_usable(args.models_file, list(dict.fromkeys(args.aliases)))
    except ConfigError as exc:
        print(f"agentbench screen: {exc}", file=sys.stderr)
        return 2
    progress = None if args.json else (lambda line: print(f"agentbench screen: {line}", file=sys.stderr, flush=True))
    screens = screen_candidates(specs, options, progress=progress)
    if args.json:
        print(json.dumps(screens_json(screens), indent=2, default=str))
    else:
        print(format_screens(screens, evidence=not args.brief))
    if args.html:
        from pytest_agentbench.reports.screen_html import render_screen_page

        Path(args.html).write_text(render_screen_page(screens), encoding="utf-8")
        if not args.json:
            print(f"agentbench screen: wrote {args.html}", file=sys.stderr)
    return 1 if any(s.disqualified for s in screens) else 0
