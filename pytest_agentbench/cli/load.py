"""``agentbench load``: request-rate load against one alias or URL, as ``vllm bench serve`` shapes it.

    agentbench load --models-file models.yaml --models local-coder \\
        --num-prompts 100 --request-rate 4 --input-len 256 --output-len 128 --ignore-eos
    agentbench load --base-url http://127.0.0.1:8000/v1 --model tiny --request-rate 1,2,4,inf --max-concurrency 8

A thin skin over :class:`pytest_agentbench.capacity.load.Load`: the flags, the prompts (random of
``--input-len`` tokens through the server's tokenizer, else a calibrated filler; or ``--dataset``),
the SLO (flags > the alias's ``slo:`` > ini ``agentbench_slo``), the endpoint (a ``serve:`` alias is
started, vLLM in dev mode so the prefix cache can be reset), ``load.json`` and ``load.html`` in
``--out`` and the table on stdout. Exit status: 0 done, 1 a check flagged under
``--strict-numbers``, 2 a usage error, 3 infrastructure (the server failed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_agentbench.errors import ConfigError, InfrastructureError, ModelCallError

if TYPE_CHECKING:  # kept out of the import: `agentbench --help` builds this parser
    from pytest_agentbench.capacity.load import LoadConfig
    from pytest_agentbench.capacity.prompts import PromptSet
    from pytest_agentbench.models.registry import ModelSpec

__all__ = ["add_parser", "add_target_arguments", "main", "parse_rates", "run_cli", "target_spec"]


def parse_rates(text: str) -> tuple[float, ...]:
    """``"1,2,4,inf"`` -> ``(1.0, 2.0, 4.0, inf)`` in the order given; each > 0."""
    rates = []
    for part in text.split(","):
        try:
            rate = float(part.strip())
        except ValueError:
            rate = math.nan
        if not rate > 0:
            raise argparse.ArgumentTypeError(
                f"--request-rate: expected requests per second > 0 or inf, separated by commas, such as 1,2,4,inf; "
                f"found {part.strip()!r}"
            )
        rates.append(rate)
    return tuple(rates)


def _whole(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"{flag}: expected a whole number >= 1, found {text!r}")
        return int(text)

    return parse


def _positive(flag: str, *, infinite: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not value > 0 or (math.isinf(value) and not infinite):
            raise argparse.ArgumentTypeError(f"{flag}: expected a number > 0, found {text!r}")
        return value

    return parse


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """``--models ALIAS`` (models.yaml) or ``--base-url URL --model NAME``: what the command sends to."""
    p.add_argument("--models-file", default="models.yaml", metavar="PATH")
    p.add_argument("--models", metavar="ALIAS", help="the alias to send to (its serve: is started if it has one)")
    p.add_argument("--base-url", metavar="URL", help="an existing OpenAI-compatible endpoint, instead of --models")
    p.add_argument("--model", metavar="NAME", help="with --base-url: the model name to send")
    p.add_argument("--api-key-env", metavar="VAR", help="with --base-url: the variable holding the API key")


def target_spec(args: argparse.Namespace, command: str) -> ModelSpec:
    """The alias from models.yaml, or a spec for ``--base-url``/``--model``; ConfigError naming the flag."""
    from pytest_agentbench.models.registry import ModelSpec, select_usable

    if bool(args.models) == bool(args.base_url):
        raise ConfigError(f"agentbench {command}: give either --models ALIAS or --base-url URL --model NAME")
    if args.models:
        aliases = [a.strip() for a in args.models.split(",") if a.strip()]
        if len(aliases) != 1:
            raise ConfigError(f"--models: agentbench {command} takes exactly one alias, found {args.models!r}")
        return select_usable(args.models_file, aliases)[0]
    if not args.model:
        raise ConfigError("--model: with --base-url, give the model name the server serves (see its /v1/models)")
    if not args.base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"--base-url: expected an http(s) URL such as http://127.0.0.1:8000/v1, found {args.base_url!r}"
        )
    spec = ModelSpec(
        alias="base-url",
        model=args.model,
        source=Path("--base-url"),
        base_url=args.base_url.rstrip("/"),
        api_key_env=args.api_key_env,
        temperature=None,
    )
    spec.check_usable()
    return spec


def _add_shape_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-prompts", type=_whole("--num-prompts"), default=100, metavar="N", help="requests per rate")
    p.add_argument(
        "--request-rate",
        type=parse_rates,
        default=(math.inf,),
        metavar="R[,R...]",
        help="requests per second, one run per rate (inf = all at once; default inf)",
    )
    p.add_argument(
        "--burstiness",
        type=_positive("--burstiness", infinite=True),
        default=1.0,
        metavar="B",
        help="gamma shape of the gaps between arrivals: 1 = Poisson (default), < 1 burstier, > 1 more regular",
    )
    p.add_argument(
        "--max-concurrency", type=_whole("--max-concurrency"), metavar="C", help="at most C requests in flight"
    )
    p.add_argument("--input-len", type=_whole("--input-len"), default=256, metavar="TOKENS", help="random prompts")
    p.add_argument(
        "--output-len", type=_whole("--output-len"), default=128, metavar="TOKENS", help="max_tokens per request"
    )
    p.add_argument("--dataset", metavar="JSONL", help="prompts from a file: a string or {prompt|messages, output_len}")
    p.add_argument("--ignore-eos", action="store_true", help="vLLM's ignore_eos: every answer is --output-len long")
    p.add_argument("--seed", type=int, default=0, help="seeds the prompts and the arrivals (default 0)")
    p.add_argument(
        "--request-timeout", type=_positive("--request-timeout"), default=600.0, metavar="S", help="per request"
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    from pytest_agentbench.cli.sweep import add_slo_arguments

    add_target_arguments(p)
    _add_shape_arguments(p)
    add_slo_arguments(p)
    add_server_arguments(p, "rate")
    p.add_argument("--no-warmup", action="store_true", help="skip the one short warm-up call")
    p.add_argument(
        "--client",
        choices=("auto", "asyncio", "threads"),
        default="auto",
        help="asyncio: one event loop reads every stream, as vllm bench (needs aiohttp: the [load] extra); "
        "threads: a thread per slot with the agent's own client; auto (default): asyncio where aiohttp is installed",
    )
    p.add_argument("--out", metavar="DIR", help="where load.json and load.html go (default .agentbench/loads/...)")


def add_server_arguments(p: argparse.ArgumentParser, unit: str) -> None:
    """--metrics-url, --sample-interval, --keep-prefix-cache, --strict-numbers (load and replay)."""
    p.add_argument("--metrics-url", metavar="URL", help="the server's /metrics if not at the endpoint's root")
    p.add_argument(
        "--sample-interval", type=_positive("--sample-interval"), default=0.5, metavar="S", help="/metrics sampling"
    )
    p.add_argument("--keep-prefix-cache", action="store_true", help=f"do not reset the prefix cache before each {unit}")
    p.add_argument(
        "--strict-numbers", action="store_true", help="exit 1 when a check flags a run (client vs server numbers)"
    )


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``agentbench load`` on an ``add_subparsers()`` object."""
    p = sub.add_parser(
        "load",
        help="request-rate load (Poisson/gamma arrivals, max concurrency, random or dataset prompts): "
        "throughput, TTFT/TPOT/ITL/E2E percentiles, goodput, tokens reconciled with /metrics",
    )
    add_arguments(p)
    p.set_defaults(func=run_cli)
    return p


def _fail(message: str, code: int = 2) -> int:
    print(f"agentbench load: error: {message}", file=sys.stderr)
    return code


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _prompts(args: argparse.Namespace, spec: ModelSpec, base_url: str) -> PromptSet:
    """``--dataset``, else random prompts of ``--input-len`` tokens (the server's tokenizer, else a filler)."""
    from pytest_agentbench.capacity.load import load_spec
    from pytest_agentbench.capacity.prompts import random_prompts, read_dataset
    from pytest_agentbench.models.adapter import ModelAdapter

    if args.dataset:
        return read_dataset(args.dataset, args.num_prompts)
    with ModelAdapter(load_spec(spec, ignore_eos=False), base_url) as adapter:

        def count(text: str) -> int:
            completion = adapter.complete([{"role": "user", "content": text}], (), max_tokens=1, timeout=120)
            if not completion.usage.reported:
                raise ConfigError(
                    f"{base_url} has no /tokenize and reports no usage, so prompts of --input-len tokens "
                    "cannot be sized: give --dataset FILE"
                )
            return completion.usage.prompt_tokens

        _progress(f"making {args.num_prompts} random prompt(s) of {args.input_len} tokens ...")
        return random_prompts(
            args.num_prompts,
            args.input_len,
            seed=args.seed,
            root_url=base_url.removesuffix("/v1"),
            model=spec.model,
            count_tokens=count,
        )


def _config(args: argparse.Namespace, spec: ModelSpec, prompts: PromptSet) -> LoadConfig:
    from pytest_agentbench.capacity.load import LoadConfig
    from pytest_agentbench.cli.sweep import resolve_cli_slo

    slo, sources = resolve_cli_slo(args, spec if args.models else None)
    return LoadConfig(
        spec=spec,
        prompts=prompts,
        rates=args.request_rate,
        burstiness=args.burstiness,
        max_concurrency=args.max_concurrency,
        output_len=args.output_len,
        ignore_eos=args.ignore_eos,
        seed=args.seed,
        slo=slo,
        slo_sources=sources,
        metrics_url=args.metrics_url,
        reset_prefix_cache=not args.keep_prefix_cache,
        warmup=not args.no_warmup,
        sample_interval_s=args.sample_interval,
        request_timeout_s=args.request_timeout,
        client=args.client,
    )


def _run(args: argparse.Namespace, spec: ModelSpec, out: Path) -> Any:
    """Start the endpoint, make the prompts, run every rate; write load.json and load.html."""
    from pytest_agentbench.capacity.load import Load
    from pytest_agentbench.cli.sweep import measuring_spec
    from pytest_agentbench.reports.load import format_load, render_load_html
    from pytest_agentbench.serving.endpoints import Endpoints

    with Endpoints() as endpoints:
        if spec.serve:
            _progress(f"starting the endpoint for {spec.alias} ...")
        url = endpoints.start([measuring_spec(spec, args.keep_prefix_cache)])[spec.alias]
        config = _config(args, spec, _prompts(args, spec, url))
        result = Load(config, url, progress=_progress).run()
    (out / "load.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / "load.html").write_text(render_load_html(result), encoding="utf-8")
    print(format_load(result))
    print(f"written: load.json, load.html in {out}")
    return result


def run_cli(args: argparse.Namespace) -> int:
    """``agentbench load``: 0 done, 1 a check flagged under --strict-numbers, 2 usage, 3 infrastructure."""
    try:
        spec = target_spec(args, "load")
    except ConfigError as exc:
        return _fail(str(exc))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path(".agentbench") / "loads" / f"{spec.alias}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = _run(args, spec, out)
    except ConfigError as exc:
        return _fail(str(exc))
    except (InfrastructureError, ModelCallError) as exc:
        return _fail(str(exc), 3)
    if result.mismatches and args.strict_numbers:
        print(f"agentbench load: {len(result.mismatches)} check(s) flagged (--strict-numbers)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_agentbench.cli.load ...`` (the same as ``agentbench load ...``)."""
    parser = argparse.ArgumentParser(prog="agentbench load", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))
