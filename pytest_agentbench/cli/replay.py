"""``agentbench replay``: a finished quality run's model calls, sent again by N concurrent developers.

    pytest --models local-coder --agentbench-keep-requests --agentbench-results run1   # record
    agentbench replay run1/results.jsonl --models local-coder --developers 1,2,4,8 \\
        --slo-ttft-p50 2 --goodput ttft:4000 tpot:100 --ignore-eos

A thin skin over :class:`pytest_agentbench.capacity.replay.Replay`: the trace (``--alias`` picks the
recorded runs of one alias), the target (``--models`` or ``--base-url/--model``; a ``serve:`` alias is
started, vLLM in dev mode), the SLO (flags > the alias's ``slo:`` > ini), ``replay.json`` and
``replay.html`` in ``--out`` and the table on stdout. Exit status: 0 done, 1 a check flagged under
``--strict-numbers`` (the trace check included), 2 a usage error, 3 infrastructure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_agentbench.errors import ConfigError, InfrastructureError, ModelCallError

if TYPE_CHECKING:
    from pytest_agentbench.capacity.replay import ReplayConfig
    from pytest_agentbench.models.registry import ModelSpec

__all__ = ["add_parser", "main", "parse_developers", "parse_rounds", "run_cli"]


def parse_developers(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> ``(1, 2, 4)``; sorted, without repeats."""
    from pytest_agentbench.cli.sweep import parse_devs

    try:
        return parse_devs(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--devs", "--developers")) from None


def parse_rounds(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--rounds: expected a whole number >= 1, found {text!r}")
    return int(text)


def _think_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"--think-scale: expected a factor >= 0 (1 = as recorded), found {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    from pytest_agentbench.cli.load import add_server_arguments, add_target_arguments
    from pytest_agentbench.cli.sweep import add_slo_arguments

    p.add_argument("results", metavar="RESULTS", help="a results.jsonl (or its folder) recorded with keep-requests")
    add_target_arguments(p)
    p.add_argument("--alias", metavar="ALIAS", help="replay only the recorded runs of this alias")
    p.add_argument("--packet", action="append", default=[], metavar="ID", help="only these packets' runs (repeatable)")
    p.add_argument("--developers", type=parse_developers, default=(1,), metavar="N,N,...", help="levels (default 1)")
    p.add_argument("--rounds", type=parse_rounds, default=1, metavar="K", help="passes over the trace per developer")
    p.add_argument("--think-scale", type=_think_scale, default=1.0, metavar="X", help="x recorded think time (0: none)")
    p.add_argument("--ignore-eos", action="store_true", help="vLLM's ignore_eos: answers as long as recorded")
    p.add_argument(
        "--salt-per-developer",
        action="store_true",
        help="vLLM's cache_salt per developer: developers share no prefix cache (same tokens)",
    )
    p.add_argument("--request-timeout", type=float, default=600.0, metavar="S", help="per call")
    add_slo_arguments(p)
    add_server_arguments(p, "level")
    p.add_argument("--out", metavar="DIR", help="where replay.json and replay.html go")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``agentbench replay`` on an ``add_subparsers()`` object."""
    p = sub.add_parser(
        "replay",
        help="replay a recorded run's model calls (turn order, prefixes, think times) at N concurrent "
        "developers: capacity under agent traffic",
    )
    add_arguments(p)
    p.set_defaults(func=run_cli)
    return p


def _fail(message: str, code: int = 2) -> int:
    print(f"agentbench replay: error: {message}", file=sys.stderr)
    return code


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _config(args: argparse.Namespace, spec: ModelSpec) -> ReplayConfig:
    from pytest_agentbench.capacity.replay import ReplayConfig
    from pytest_agentbench.capacity.trace import load_sessions
    from pytest_agentbench.cli.sweep import resolve_cli_slo

    sessions = load_sessions(args.results, alias=args.alias, packets=args.packet)
    slo, sources = resolve_cli_slo(args, spec if args.models else None)
    return ReplayConfig(
        spec=spec,
        sessions=tuple(sessions),
        devs=args.developers,
        source=str(args.results),
        rounds=args.rounds,
        think_scale=args.think_scale,
        ignore_eos=args.ignore_eos,
        salt_per_developer=args.salt_per_developer,
        slo=slo,
        slo_sources=sources,
        metrics_url=args.metrics_url,
        reset_prefix_cache=not args.keep_prefix_cache,
        sample_interval_s=args.sample_interval,
        request_timeout_s=args.request_timeout,
    )


def _run(config: ReplayConfig, keep_prefix_cache: bool, out: Path) -> Any:
    from pytest_agentbench.capacity.replay import Replay
    from pytest_agentbench.cli.sweep import measuring_spec
    from pytest_agentbench.reports.load import format_replay, render_replay_html
    from pytest_agentbench.serving.endpoints import Endpoints

    spec = config.spec
    with Endpoints() as endpoints:
        if spec.serve:
            _progress(f"starting the endpoint for {spec.alias} ...")
        url = endpoints.start([measuring_spec(spec, keep_prefix_cache)])[spec.alias]
        result = Replay(config, url, progress=_progress).run()
    (out / "replay.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / "replay.html").write_text(render_replay_html(result), encoding="utf-8")
    print(format_replay(result))
    print(f"written: replay.json, replay.html in {out}")
    return result


def run_cli(args: argparse.Namespace) -> int:
    """``agentbench replay``: 0 done, 1 a check flagged under --strict-numbers, 2 usage, 3 infrastructure."""
    from pytest_agentbench.cli.load import target_spec

    try:
        spec = target_spec(args, "replay")
        config = _config(args, spec)
    except ConfigError as exc:
        return _fail(str(exc))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path(".agentbench") / "replays" / f"{spec.alias}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = _run(config, args.keep_prefix_cache, out)
    except ConfigError as exc:
        return _fail(str(exc))
    except (InfrastructureError, ModelCallError) as exc:
        return _fail(str(exc), 3)
    if result.mismatches and args.strict_numbers:
        print(f"agentbench replay: {len(result.mismatches)} check(s) flagged (--strict-numbers)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_agentbench.cli.replay ...`` (the same as ``agentbench replay ...``)."""
    parser = argparse.ArgumentParser(prog="agentbench replay", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))
