"""The context-policy row: the model's maximum vs the served ``max_model_len`` vs what the memory holds.

Three numbers, each from evidence: the model's maximum (``max_position_embeddings``
in its ``config.json``), the context the server serves (``max_model_len`` in
``/v1/models``) and the KV-cache budget: what vLLM itself logged at start-up (``KV
cache size: N tokens``), else the estimate of :mod:`pytest_agentbench.capacity.sizing`
(``agentbench size``) on the alias's devices: on CPU the ``VLLM_CPU_KVCACHE_SPACE``
the harness gives vLLM, on GPUs the ``--gpu`` named. The long-prompt probe shows
whether a prompt near the served context is really taken.

The disqualifier: the context the team needs (``--context-need``, by default the
served one) is more than the server serves or the memory holds ("1M context"
without the memory for it), or a prompt within the served context is refused.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_agentbench.capacity.gpus import GIB, precision_bytes
from pytest_agentbench.capacity.sizing import ModelArchitecture, size_model
from pytest_agentbench.errors import ConfigError
from pytest_agentbench.models.probe import ProbeResult
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.screening.folder import ModelFolder
from pytest_agentbench.screening.rows import Row
from pytest_agentbench.serving.vllm.command import CPU_ENV_DEFAULTS
from pytest_agentbench.serving.vllm.rules import parse_devices

__all__ = ["Budget", "context_row", "estimate_budget", "logged_budget"]

DISQUALIFIER = (
    "the context needed is more than the server serves or the memory holds, or a prompt within the served "
    "context is refused"
)
_LOGGED = re.compile(r"(?P<pool>[A-Z][A-Za-z + ]*?) KV cache size: (?P<tokens>[\d,]+) tokens")
_DTYPE_PRECISION = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


@dataclass(frozen=True)
class Budget:
    """KV-cache tokens the memory holds (all sequences together), and how that was learnt."""

    tokens: int | None
    source: str
    measured: bool  # vLLM's own figure (else an estimate)
    model_max_fits: bool | None = None  # one sequence at the model's maximum fits (estimates on GPU)


def logged_budget(log_path: Path | str | None) -> Budget | None:
    """The KV-cache size vLLM logged at start-up (``CPU KV cache size: 4,194,304 tokens, ...``)."""
    if log_path is None:
        return None
    try:
        text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = _LOGGED.search(text)
    if match is None:
        return None
    line = text[match.start() : text.find("\n", match.start())].strip()
    return Budget(int(match.group("tokens").replace(",", "")), f"vLLM log {log_path}: {line}", True)


def _architecture(folder: ModelFolder) -> tuple[ModelArchitecture, str]:
    params = folder.parameters()
    if params is None or folder.config is None:
        raise ConfigError(f"{folder.path}: no config.json figures to size the model from")
    arch = ModelArchitecture.from_hf_config(folder.config, total_params=params.count, name=folder.path.name)
    count = f"{params.count / 1e9:.3g}B" if params.count >= 1e9 else f"{params.count / 1e6:.3g}M"
    return arch, f"{count} parameters ({params.source})"


def _precisions(spec: ModelSpec, folder: ModelFolder) -> tuple[str, str]:
    """(weights, KV cache) precision as served: the config's quantization or dtype; kv_cache_dtype if set."""
    config = folder.config or {}
    quant = config.get("quantization_config") if isinstance(config.get("quantization_config"), dict) else {}
    method = str(quant.get("quant_method", "")).lower()
    weights = {"fp8": "fp8", "mxfp4": "mxfp4", "awq": "int4", "gptq": "int4"}.get(method)
    dtype = _DTYPE_PRECISION.get(str(config.get("torch_dtype") or config.get("dtype") or ""), "bf16")
    kv = str((spec.serve.args if spec.serve else {}).get("kv_cache_dtype") or "auto").lower()
    return weights or dtype, ("fp8" if kv.startswith("fp8") else dtype)


def estimate_budget(spec: ModelSpec, folder: ModelFolder, gpu: str | None, need: int | None) -> Budget:
    """The KV budget by the sizing model: CPU KV space on CPU; ``gpu`` x the alias's devices on GPUs."""
    try:
        arch, params = _architecture(folder)
        weights, kv = _precisions(spec, folder)
    except ConfigError as exc:
        return Budget(None, f"cannot size: {exc}", False)
    serve = spec.serve
    devices = parse_devices(None if serve is None or serve.devices is None else str(serve.devices))
    per_token = arch.kv_values_per_token() * precision_bytes(kv)
    if devices is None:
        env = dict(serve.env) if serve else {}
        space = float(
            env.get("VLLM_CPU_KVCACHE_SPACE")
            or os.environ.get("VLLM_CPU_KVCACHE_SPACE")
            or CPU_ENV_DEFAULTS["VLLM_CPU_KVCACHE_SPACE"]
        )
        tokens = math.floor(space * GIB / per_token)
        source = (
            f"estimate: VLLM_CPU_KVCACHE_SPACE {space:g} GiB / {per_token:,.0f} B of KV per token "
            f"({arch.describe()}, {kv}; {params})"
        )
        return Budget(tokens, source, False, folder.max_context is None or folder.max_context <= tokens)
    if gpu is None:
        return Budget(None, f"not sized: {len(devices)} GPU(s); name them with --gpu (e.g. --gpu H200)", False)
    return _gpu_budget(spec, folder, arch, (weights, kv), gpu, len(devices), need, params)


def _gpu_budget(
    spec: ModelSpec,
    folder: ModelFolder,
    arch: ModelArchitecture,
    precisions: tuple[str, str],
    gpu: str,
    count: int,
    need: int | None,
    params: str,
) -> Budget:
    args = spec.serve.args if spec.serve else {}
    pp = int(args.get("pipeline_parallel_size", 1) or 1)
    utilization = float(args.get("gpu_memory_utilization", 0.9) or 0.9)
    context = need or folder.max_context or 4096
    try:
        sized = size_model(
            arch,
            context_length=context,
            weights_precision=precisions[0],
            kv_cache_precision=precisions[1],
            gpu=gpu,
            gpu_memory_utilization=utilization,
            tensor_parallel=count // pp,
        )
        at_max = None
        if folder.max_context:
            at_max = size_model(
                arch,
                context_length=folder.max_context,
                weights_precision=precisions[0],
                kv_cache_precision=precisions[1],
                gpu=gpu,
                gpu_memory_utilization=utilization,
                tensor_parallel=count // pp,
            )
    except ConfigError as exc:
        return Budget(None, f"cannot size on {gpu}: {exc}", False)
    tokens = (sized.max_concurrency or 0) * context if sized.fits else 0
    source = (
        f"estimate (agentbench size): TP {count // pp} x {gpu}, {precisions[0]} weights, {precisions[1]} KV, "
        f"{params}: room for {sized.max_concurrency or 0} sequences of {context:,} tokens"
    )
    return Budget(tokens, source, False, None if at_max is None else bool(at_max.fits and at_max.max_concurrency))


def _long_prompt(results: list[ProbeResult]) -> tuple[bool | None, str]:
    check = next((r for r in results if r.check.startswith("long prompt")), None)
    if check is None or not check.observations:
        return None, "the long-prompt probe did not run"
    observation = check.observations[0]
    return (
        observation.passed,
        f"long-prompt probe: {'taken' if observation.passed else 'refused'}: {observation.detail}",
    )


def context_row(
    spec: ModelSpec,
    *,
    model_max: int | None,
    served: int | None,
    budget: Budget | None,
    results: list[ProbeResult],
    need: int | None = None,
) -> Row:
    """The context row from the three numbers and the long-prompt probe."""
    taken, probe = _long_prompt(results)
    need = need or served
    evidence = [
        f"model maximum: {model_max:,} (config.json max_position_embeddings)"
        if model_max
        else "model maximum: unknown",
        f"served: {served:,} (max_model_len in /v1/models)" if served else "served: not reported by /v1/models",
        f"memory: {budget.tokens:,} KV tokens ({budget.source})"
        if budget and budget.tokens is not None
        else f"memory: {budget.source if budget else 'not applicable (the provider serves it)'}",
        probe,
    ]
    facts: dict[str, Any] = {
        "model_max": model_max,
        "served": served,
        "need": need,
        "budget_tokens": budget.tokens if budget else None,
        "budget_measured": budget.measured if budget else None,
        "long_prompt_taken": taken,
    }
    fails = _failures(need, served, budget, taken)
    if fails:
        return Row("context policy", "fail", "; ".join(fails), DISQUALIFIER, tuple(evidence), facts)
    if missing := _missing(served, budget, taken):
        return Row("context policy", "unknown", missing, DISQUALIFIER, tuple(evidence), facts)
    assert served is not None  # _missing says so otherwise
    summary = f"serves {served:,} of the model's {model_max:,} tokens" if model_max else f"serves {served:,} tokens"
    if budget is not None and budget.tokens is not None:
        summary += f"; the memory holds {budget.tokens:,} KV tokens ({budget.tokens // served} full-length sequences)"
    warns = []
    if budget is not None and budget.model_max_fits is False and model_max:
        warns.append(f"the model's {model_max:,}-token maximum would not fit this memory")
    return Row(
        "context policy",
        "warn" if warns else "pass",
        "; ".join([summary, *warns]),
        DISQUALIFIER,
        tuple(evidence),
        facts,
    )


def _missing(served: int | None, budget: Budget | None, taken: bool | None) -> str | None:
    if served is None:
        return "the served context is unknown: /v1/models reports no max_model_len (unknown is a finding)"
    if budget is not None and budget.tokens is None:
        return f"the memory budget is unknown: {budget.source}"
    if taken is None:
        return "the long-prompt probe did not run"
    return None


def _failures(need: int | None, served: int | None, budget: Budget | None, taken: bool | None) -> list[str]:
    fails = []
    if need and served and need > served:
        fails.append(f"needs {need:,} tokens but the server serves {served:,}")
    if need and budget is not None and budget.tokens is not None and need > budget.tokens:
        fails.append(f"needs {need:,} tokens but the memory holds {budget.tokens:,} (the context without the memory)")
    if taken is False:
        fails.append("a prompt within the served context was refused")
    return fails
