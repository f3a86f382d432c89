"""``agentbench sweep``: a capacity sweep of one alias, on the command line.

    agentbench sweep --models-file models.yaml --models local-coder --devs 1,2,4,8 \\
        --slo-ttft-p50 2 --slo-tps-p50 20 --compare-alias gpt-baseline --out sweep-out

A thin skin over :class:`pytest_agentbench.capacity.sweep.Sweep`: it owns the flags and their
parsing, loads the alias and the packets into a ``SweepConfig``, starts the alias's endpoint
(vLLM in dev mode, so the prefix cache can be reset between levels), writes ``sweep.json``,
``sweep.html`` and ``runs.jsonl`` and prints the table. Exit status: 0 done, 1 a check flagged
under ``--strict-numbers``, 2 a usage error, 3 infrastructure (the server failed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_agentbench.capacity.cost import HOURS_PER_MONTH_24X7, WORKING_HOURS_PER_MONTH
from pytest_agentbench.errors import ConfigError, InfrastructureError
from pytest_agentbench.sandbox.kinds import SANDBOX_KINDS
from pytest_agentbench.serving.vllm.admin import DEV_MODE_ENV

if TYPE_CHECKING:  # kept out of the import: `agentbench --help` builds this parser
    from pytest_agentbench.capacity.levels import SweepResult
    from pytest_agentbench.capacity.slo import Slo
    from pytest_agentbench.capacity.sweep import SweepConfig
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.packets.schema import Packet
    from pytest_agentbench.results.record import RunRecord

__all__ = [
    "add_arguments",
    "add_parser",
    "add_slo_arguments",
    "main",
    "measuring_spec",
    "parse_devs",
    "resolve_cli_slo",
    "run_cli",
]


def _positive(kind: type, flag: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: expected a number > 0, found {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{flag}: expected a number > 0, found {text!r}")
        return value

    return parse


def parse_devs(text: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> ``(1, 2, 4, 8)``; sorted, without repeats."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise argparse.ArgumentTypeError(
                f"--devs: expected developer counts >= 1 separated by commas, such "
                f"as 1,2,4,8; found {part!r} in {text!r}"
            )
        values.append(int(part))
    return tuple(sorted(set(values)))


def add_slo_arguments(p: argparse.ArgumentParser) -> None:
    """The SLO flags every capacity command takes (models.yaml ``slo:`` and ini ``agentbench_slo`` fill the rest)."""
    p.add_argument(
        "--slo-ttft-p50",
        type=_positive(float, "--slo-ttft-p50"),
        metavar="S",
        help="median time to first token must be <= S seconds",
    )
    p.add_argument(
        "--slo-tps-p50",
        type=_positive(float, "--slo-tps-p50"),
        metavar="TOK/S",
        help="median per-stream decode rate must be >= TOK/S",
    )
    p.add_argument(
        "--goodput",
        nargs="+",
        metavar="KEY:MS",
        help="per-request SLO for goodput, as vllm bench serve: ttft:MS tpot:MS e2el:MS (milliseconds)",
    )


def resolve_cli_slo(args: argparse.Namespace, spec: ModelSpec | None) -> tuple[Slo, tuple[str, ...]]:
    """The SLO to judge by: these flags, then the alias's ``slo:``, then the ini's ``agentbench_slo``."""
    from pytest_agentbench.capacity.slo import Slo, parse_goodput
    from pytest_agentbench.capacity.slo_sources import ini_slo, resolve_slo

    cli = Slo(args.slo_ttft_p50, args.slo_tps_p50)
    if args.goodput:
        cli = cli.over(parse_goodput(args.goodput))
    ini, ini_where = ini_slo()
    alias_slo = spec.slo if spec is not None else None
    return resolve_slo(cli, alias_slo, spec.where if spec is not None else "", ini, ini_where)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-file", default="models.yaml", metavar="PATH")
    p.add_argument("--models", required=True, metavar="ALIAS", help="the one alias to sweep")
    p.add_argument(
        "--devs",
        required=True,
        type=parse_devs,
        metavar="N,N,...",
        help="developer counts, one level each (e.g. 1,2,4,8)",
    )
    p.add_argument("--packets", action="append", metavar="DIR", help="packet folder(s) (default task_packets)")
    p.add_argument("--packet", action="append", metavar="ID", help="only these packet ids (repeatable)")
    p.add_argument("--sandbox", choices=SANDBOX_KINDS, default="auto")
    add_slo_arguments(p)
    p.add_argument(
        "--rounds",
        type=_positive(int, "--rounds"),
        default=1,
        metavar="K",
        help="passes over the packet set per developer per level (default 1)",
    )
    p.add_argument(
        "--agent-timeout",
        type=_positive(float, "--agent-timeout"),
        metavar="S",
        help="wall budget per run, overriding the packets' limits.timeout_s",
    )
    p.add_argument(
        "--compare-alias",
        metavar="ALIAS",
        help="a commercial alias whose prices turn this run's tokens into an API $/dev-month",
    )
    _add_cost_and_server_arguments(p)


def _add_cost_and_server_arguments(p: argparse.ArgumentParser) -> None:
    """The flags after ``--compare-alias``: month hours, the server's /metrics, outputs."""
    p.add_argument(
        "--gpu-hours-per-month",
        type=_positive(float, "--gpu-hours-per-month"),
        default=HOURS_PER_MONTH_24X7,
        metavar="H",
        help="hours the GPU is paid for (default 730 = 24x7)",
    )
    p.add_argument(
        "--dev-hours-per-month",
        type=_positive(float, "--dev-hours-per-month"),
        default=WORKING_HOURS_PER_MONTH,
        metavar="H",
        help="hours a developer keeps an agent busy (default 176 = 22 x 8 h)",
    )
    p.add_argument("--metrics-url", metavar="URL", help="the server's /metrics if not at the endpoint's root")
    p.add_argument(
        "--sample-interval",
        type=_positive(float, "--sample-interval"),
        default=0.5,
        metavar="S",
        help="seconds between /metrics samples during a level (running requests, KV use; default 0.5)",
    )
    p.add_argument(
        "--keep-prefix-cache",
        action="store_true",
        help="do not reset the prefix cache between levels (and do not set VLLM_SERVER_DEV_MODE)",
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the one short warm-up call before level 1")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where sweep.json, sweep.html and runs.jsonl go (default .agentbench/sweeps/ALIAS-TIMESTAMP)",
    )
    p.add_argument(
        "--strict-numbers",
        action="store_true",
        help="exit 1 when a reconciliation check flags a level (client vs server numbers)",
    )


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``agentbench sweep`` on an ``add_subparsers()`` object."""
    p = sub.add_parser(
        "sweep",
        help="run the packets with N = 1, 2, 4, ... concurrent developers against one "
        "alias: SLO, knee, $/dev-month, client vs server numbers",
    )
    add_arguments(p)
    p.set_defaults(func=run_cli)
    return p


def measuring_spec(spec: ModelSpec, keep_prefix_cache: bool) -> ModelSpec:
    """The alias as a capacity command starts it: vLLM in dev mode, so /reset_prefix_cache exists."""
    serve = spec.serve
    if serve is None or serve.engine != "vllm" or keep_prefix_cache:
        return spec
    env = dict(serve.env)
    env.setdefault(DEV_MODE_ENV, "1")
    return dataclasses.replace(spec, serve=dataclasses.replace(serve, env=env))


def _fail(message: str, code: int = 2) -> int:
    print(f"agentbench sweep: error: {message}", file=sys.stderr)
    return code


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the steps of run_cli


def _load_aliases(args: argparse.Namespace, alias: str) -> tuple[ModelSpec, ModelSpec | None]:
    """The alias to sweep and the ``--compare-alias`` (which must have a commercial price)."""
    from pytest_agentbench.capacity.cost import CommercialCost
    from pytest_agentbench.models.registry import load_models, select, select_usable

    spec = select_usable(args.models_file, [alias])[0]
    compare = None
    if args.compare_alias:  # only its price is used: it need not be usable
        compare = select(load_models(args.models_file), [args.compare_alias], args.models_file)[0]
        if not isinstance(compare.cost, CommercialCost):
            raise ConfigError(
                f"--compare-alias: {compare.where}.cost must be a commercial price such as "
                "{input_per_mtok: 3.0, output_per_mtok: 15.0}"
            )
    return spec, compare


def _load_packets(args: argparse.Namespace) -> list[Packet]:
    """The packets below ``--packets``, narrowed to ``--packet`` ids when given."""
    from pytest_agentbench.packets.schema import discover_packets

    packets = discover_packets(args.packets or ["task_packets"])
    if args.packet:
        known = {p.id for p in packets}
        unknown = [pid for pid in args.packet if pid not in known]
        if unknown:
            raise ConfigError(f"--packet: unknown packet id(s) {', '.join(unknown)}; found: {', '.join(sorted(known))}")
        packets = [p for p in packets if p.id in set(args.packet)]
    if not packets:
        raise ConfigError(f"--packets: no packet.yaml found below {', '.join(args.packets or ['task_packets'])}")
    return packets


def _sweep_config(args: argparse.Namespace, alias: str) -> SweepConfig:
    """Everything the flags say, checked: raises ConfigError with the flag to fix."""
    from pytest_agentbench.capacity.sweep import SweepConfig

    spec, compare = _load_aliases(args, alias)
    packets = _load_packets(args)
    slo, sources = resolve_cli_slo(args, spec)
    return SweepConfig(
        spec=spec,
        packets=tuple(packets),
        devs=args.devs,
        sandbox=args.sandbox,
        slo=slo,
        slo_sources=sources,
        rounds=args.rounds,
        agent_timeout=args.agent_timeout,
        compare=compare,
        gpu_hours_per_month=args.gpu_hours_per_month,
        dev_hours_per_month=args.dev_hours_per_month,
        metrics_url=args.metrics_url,
        reset_prefix_cache=not args.keep_prefix_cache,
        warmup=not args.no_warmup,
        sample_interval_s=args.sample_interval,
    )


def _run_sweep(config: SweepConfig, keep_prefix_cache: bool, out: Path) -> SweepResult:
    """Start the alias's endpoint and sweep it; every run goes to runs.jsonl as it finishes."""
    from pytest_agentbench.capacity.sweep import Sweep
    from pytest_agentbench.results.jsonl import JsonlWriter
    from pytest_agentbench.results.record import record_to_dict
    from pytest_agentbench.serving.endpoints import Endpoints

    spec = config.spec
    with Endpoints() as endpoints, JsonlWriter(out / "runs.jsonl") as writer:
        served = measuring_spec(spec, keep_prefix_cache)
        _progress(f"starting the endpoint for {spec.alias} ..." if spec.serve else f"endpoint: {spec.base_url}")
        url = endpoints.start([served])[spec.alias]
        write_lock = threading.Lock()

        def on_run(record: RunRecord, devs: int) -> None:
            data = record_to_dict(record, transcript_chars=4000)
            with write_lock:
                writer.write(data)

        sweep = Sweep(config, url, on_run=on_run, progress=_progress)
        result = sweep.run()
    return result


def _write_outputs(result: SweepResult, out: Path) -> None:
    """sweep.json and sweep.html in *out*, and the table on stdout."""
    from pytest_agentbench.reports.sweep import format_table, render_html

    (out / "sweep.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / "sweep.html").write_text(render_html(result), encoding="utf-8")
    print(format_table(result))
    print(f"written: sweep.json, sweep.html, runs.jsonl in {out}")


def run_cli(args: argparse.Namespace) -> int:
    """``agentbench sweep``: 0 done, 1 a check flagged under --strict-numbers, 2 usage, 3 infrastructure."""
    aliases = [a.strip() for a in args.models.split(",") if a.strip()]
    if len(aliases) != 1:
        return _fail(f"--models: a sweep takes exactly one alias, found {args.models!r}; run one sweep per alias")
    try:
        config = _sweep_config(args, aliases[0])
    except ConfigError as exc:
        return _fail(str(exc))

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path(".agentbench") / "sweeps" / f"{config.spec.alias}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = _run_sweep(config, args.keep_prefix_cache, out)
    except ConfigError as exc:
        return _fail(str(exc))
    except InfrastructureError as exc:
        return _fail(str(exc), 3)

    _write_outputs(result, out)
    if result.stopped:
        print(f"agentbench sweep: {result.stopped}", file=sys.stderr)
        return 3
    if result.mismatches and args.strict_numbers:
        print(
            f"agentbench sweep: {len(result.mismatches)} reconciliation check(s) flagged (--strict-numbers)",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_agentbench.cli.sweep ...`` (the same as ``agentbench sweep ...``)."""
    parser = argparse.ArgumentParser(prog="agentbench sweep", description=add_parser.__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(args)
