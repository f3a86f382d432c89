"""``agentbench size``: GPU memory sizing from a model's architecture, on the command line.

    agentbench size --params 8e9 --layers 32 --heads 32 --kv-heads 8 --head-dim 128 \\
        --context 32768 --concurrency 8 --gpu H100-80GB
    agentbench size --hf-config path/to/config.json --params 16B --active-params 2.4B --gpu H200
    agentbench size ... --gpu "MIG 3g.40gb"          # one MIG slice: TP 1 only
    agentbench size ... --gpu H100-80GB --nodes 4      # TP x PP layouts over up to 4 nodes of 8 GPUs

A thin skin over :func:`pytest_agentbench.capacity.sizing.size_model`; it prints
:func:`~pytest_agentbench.capacity.sizing.format_sizing` (or ``--json``). Exit status:
0 = fits (or no GPU given), 1 = does not fit, 2 = a usage error, whose message
names the flag to fix (e.g. ``--tp 2`` on a MIG slice: tensor parallel across
MIG slices is refused). The model and its assumptions: docs/cost-and-sizing.md.
With ``--nodes N`` it also proposes tensor x pipeline parallel layouts over up to N
nodes of ``--gpus-per-node`` GPUs, TP inside a node (:mod:`pytest_agentbench.capacity.layouts`;
docs/ray.md), and the exit status says whether one of them fits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.capacity.gpus import GPU_PRESETS
from pytest_agentbench.capacity.layouts import DEFAULT_GPUS_PER_NODE, LayoutPlan, format_layouts, plan_layouts
from pytest_agentbench.capacity.sizing import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_OVERHEAD_FRACTION,
    ModelArchitecture,
    SizingResult,
    format_sizing,
    size_model,
)
from pytest_agentbench.errors import ConfigError, UsageError
from pytest_agentbench.results.jsonsafe import json_safe

__all__ = ["add_arguments", "add_parser", "main", "parse_count", "run_cli"]

#: sizing's field names -> the flag that sets them, for error messages.
FLAGS: Mapping[str, str] = {
    "total_params": "--params",
    "active_params": "--active-params",
    "num_layers": "--layers",
    "num_attention_heads": "--heads",
    "num_kv_heads": "--kv-heads",
    "head_dim": "--head-dim",
    "mla_latent_dim": "--mla-latent",
    "mla_rope_dim": "--mla-rope",
    "attention": "--kv-heads/--head-dim or --mla-latent/--mla-rope",
    "context_length": "--context",
    "concurrency": "--concurrency",
    "weights_precision": "--precision",
    "kv_cache_precision": "--kv-precision",
    "overhead_fraction": "--overhead",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "gpu.memory_gib": "--gpu",
    "gpu": "--gpu",
    "tensor_parallel": "--tp",
    "config.json": "--hf-config",
    "max_nodes": "--nodes",
    "gpus_per_node": "--gpus-per-node",
}

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)
# config.json keys -> the flag that supplies them when the file lacks them
_CONFIG_FLAGS = {
    "num_hidden_layers": "--layers",
    "num_attention_heads": "--heads",
    "hidden_size": "--head-dim",
    "qk_rope_head_dim": "--mla-rope",
}
# config.json "torch_dtype" values -> precision names sizing knows
_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


def parse_count(text: str) -> float:
    """A parameter count: ``8e9``, ``8030000000``, ``8B``, ``8.03b``, ``671B``, ``560M``."""
    match = _COUNT.match(text.replace("_", "").replace(",", ""))
    if not match:
        raise argparse.ArgumentTypeError(f"expected a parameter count such as 8e9, 8B or 560M, found {text!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2).lower()]


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.15, found {text!r}") from None


def _precision(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    arch = p.add_argument_group("model (or --hf-config; flags given override the file)")
    arch.add_argument("--hf-config", metavar="PATH", help="a local Hugging Face config.json (or its folder)")
    arch.add_argument("--params", type=parse_count, metavar="N", help="total parameters, e.g. 8e9 or 8B")
    arch.add_argument("--active-params", type=parse_count, metavar="N", help="parameters used per token (MoE)")
    arch.add_argument("--layers", type=int, metavar="N", help="transformer layers (num_hidden_layers)")
    arch.add_argument("--heads", type=int, metavar="N", help="attention heads (num_attention_heads)")
    arch.add_argument("--kv-heads", type=int, metavar="N", help="KV heads (num_key_value_heads; = --heads for MHA)")
    arch.add_argument("--head-dim", type=int, metavar="N", help="dimension per head")
    arch.add_argument("--mla-latent", type=int, metavar="N", help="MLA KV latent (kv_lora_rank), instead of KV heads")
    arch.add_argument("--mla-rope", type=int, metavar="N", help="MLA rope dimension (qk_rope_head_dim)")
    arch.add_argument("--name", help="a label for the model in the output")
    serve = p.add_argument_group("serving")
    serve.add_argument(
        "--precision",
        type=_precision,
        metavar="P",
        help="weights: bf16, fp8, int4, mxfp4, ... or bytes per parameter (default: the config's "
        "torch_dtype, else bf16)",
    )
    serve.add_argument(
        "--kv-precision", type=_precision, metavar="P", default="bf16", help="KV cache: bf16 (default), fp8, ..."
    )
    serve.add_argument("--context", type=int, metavar="TOKENS", help="tokens per sequence (max_model_len); required")
    serve.add_argument("--concurrency", type=int, default=1, metavar="N", help="sequences held at once (default 1)")
    serve.add_argument(
        "--overhead",
        type=_fraction,
        default=DEFAULT_OVERHEAD_FRACTION,
        metavar="F",
        help=f"activations/runtime as a fraction of weights + KV (default {DEFAULT_OVERHEAD_FRACTION})",
    )
    gpu = p.add_argument_group("GPU")
    gpu.add_argument(
        "--gpu",
        metavar="NAME",
        help=f"{', '.join(GPU_PRESETS)}, or a MIG slice such as 'MIG 3g.40gb'; without it only the memory is estimated",
    )
    gpu.add_argument("--tp", type=int, metavar="N", help="check only this tensor-parallel degree (1, 2, 4, 8)")
    gpu.add_argument(
        "--gpu-memory-utilization",
        type=_fraction,
        default=DEFAULT_GPU_MEMORY_UTILIZATION,
        metavar="F",
        help=f"vLLM's share of GPU memory (default {DEFAULT_GPU_MEMORY_UTILIZATION})",
    )
    nodes = p.add_argument_group("across nodes (tensor parallel inside a node x pipeline parallel across nodes)")
    nodes.add_argument(
        "--nodes", type=int, metavar="N", help="propose TP x PP layouts over up to N nodes (needs --gpu)"
    )
    nodes.add_argument(
        "--gpus-per-node",
        type=int,
        default=DEFAULT_GPUS_PER_NODE,
        metavar="N",
        help=f"GPUs in each node (default {DEFAULT_GPUS_PER_NODE})",
    )
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``agentbench size`` on an ``add_subparsers()`` object."""
    p = sub.add_parser(
        "size",
        help="GPU memory for a model at a context and concurrency; which TP layout fits",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_arguments(p)
    p.set_defaults(func=run_cli)
    return p


def _read_config(path_text: str) -> dict[str, Any]:
    path = Path(path_text)
    if path.is_dir():
        path = path / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--hf-config: {path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"--hf-config: cannot read {path} as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--hf-config: {path} must hold a JSON object")
    # Multimodal configs keep the language model's figures under text_config.
    if "num_hidden_layers" not in data and isinstance(data.get("text_config"), dict):
        data = {**data["text_config"], "_name_or_path": data.get("_name_or_path") or data.get("model_type")}
    return data


def _flagged(exc: ConfigError) -> UsageError:
    """Rewrite sizing's ``field: message`` as ``--flag: message`` (a UsageError already names its flag)."""
    if isinstance(exc, UsageError):
        return exc
    text = str(exc)
    head, sep, rest = text.partition(": ")
    if sep and head in FLAGS:
        return UsageError(f"{FLAGS[head]}: {rest}")
    return UsageError(text)


def build_architecture(args: argparse.Namespace) -> ModelArchitecture:
    """A ModelArchitecture from the flags, over a config.json when given (flags win)."""
    if args.params is None:
        raise UsageError(
            "--params: required, the model's total parameter count (e.g. 8e9 or 8B; config.json does "
            "not hold it: take it from the model card)"
        )
    gqa = {"num_kv_heads": args.kv_heads, "head_dim": args.head_dim}
    mla = {"mla_latent_dim": args.mla_latent, "mla_rope_dim": args.mla_rope}
    try:
        if args.hf_config:
            config = _read_config(args.hf_config)
            overrides = {
                "num_hidden_layers": args.layers,
                "num_attention_heads": args.heads,
                "num_key_value_heads": args.kv_heads,
                "head_dim": args.head_dim,
                "kv_lora_rank": args.mla_latent,
                "qk_rope_head_dim": args.mla_rope,
            }
            config = {**config, **{k: v for k, v in overrides.items() if v is not None}}
            if any(v is not None for v in gqa.values()) and all(v is None for v in mla.values()):
                config.pop("kv_lora_rank", None)  # GQA flags over an MLA config: the flags win
            try:
                return ModelArchitecture.from_hf_config(
                    config, total_params=args.params, active_params=args.active_params, name=args.name
                )
            except ConfigError as exc:
                missing = re.match(r"config\.json: missing '(\w+)'", str(exc))
                if missing:
                    key = missing.group(1)
                    flag = _CONFIG_FLAGS.get(key, "the matching flag")
                    raise UsageError(f"--hf-config: {args.hf_config} has no {key!r}; give {flag}") from None
                raise
        missing_flags = [flag for flag, value in (("--layers", args.layers), ("--heads", args.heads)) if value is None]
        if missing_flags:
            raise UsageError(f"{missing_flags[0]}: required (or give --hf-config config.json)")
        return ModelArchitecture(
            total_params=args.params,
            num_layers=args.layers,
            num_attention_heads=args.heads,
            **{k: v for k, v in {**gqa, **mla}.items() if v is not None},
            active_params=args.active_params,
            name=args.name or "model",
        )
    except ConfigError as exc:
        raise _flagged(exc) from None


def _default_precision(args: argparse.Namespace) -> str | float:
    if args.precision is not None:
        return args.precision
    if args.hf_config:
        config = _read_config(args.hf_config)
        dtype = str(config.get("torch_dtype") or config.get("dtype") or "")
        if dtype in _DTYPES:
            return _DTYPES[dtype]
    return "bf16"


def size_from_args(args: argparse.Namespace) -> SizingResult:
    arch = build_architecture(args)
    if args.context is None:
        raise UsageError("--context: required, tokens per sequence (vLLM's max_model_len), e.g. 32768")
    if args.tp is not None and args.gpu is None:
        raise UsageError("--tp: needs --gpu to check the layout against")
    try:
        return size_model(
            arch,
            context_length=args.context,
            concurrency=args.concurrency,
            weights_precision=_default_precision(args),
            kv_cache_precision=args.kv_precision,
            overhead_fraction=args.overhead,
            gpu=args.gpu,
            gpu_memory_utilization=args.gpu_memory_utilization,
            tensor_parallel=args.tp,
        )
    except ConfigError as exc:
        raise _flagged(exc) from None


def _to_json(result: SizingResult, plan: LayoutPlan | None = None) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["fits"] = result.fits
    data["arch"]["attention"] = result.arch.attention
    if plan is not None:
        data["layouts"] = dataclasses.asdict(plan) | {"fits": plan.chosen is not None}
    return json_safe(data)


def plan_from_args(args: argparse.Namespace, result: SizingResult) -> LayoutPlan | None:
    """The layouts across nodes when ``--nodes`` asks for them (it needs ``--gpu``)."""
    if args.nodes is None:
        return None
    if args.gpu is None:
        raise UsageError("--nodes: needs --gpu, the GPU each node holds")
    try:
        return plan_layouts(result, gpus_per_node=args.gpus_per_node, max_nodes=args.nodes)
    except ConfigError as exc:
        raise _flagged(exc) from None


def run_cli(args: argparse.Namespace) -> int:
    """Print the estimate; 0 fits (or no GPU given), 1 does not fit, 2 usage error. With --nodes, "fits" means
    some layout over the nodes fits."""
    try:
        result = size_from_args(args)
        plan = plan_from_args(args, result)
    except UsageError as exc:
        print(f"agentbench size: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(_to_json(result, plan), indent=2))
    else:
        print(format_sizing(result) + (f"\n{format_layouts(plan)}" if plan is not None else ""))
    fits = result.fits if plan is None else plan.chosen is not None
    return 1 if fits is False else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_agentbench.cli.size ...`` (the same as ``agentbench size ...``)."""
    parser = argparse.ArgumentParser(prog="agentbench size", description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))
