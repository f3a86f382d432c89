"""GPU memory sizing from a model's architecture: a first-order estimate.

What it answers: how much memory a model needs to be served at a context
length and a concurrency, how many GPUs of a given size that takes, and which
tensor-parallel (TP) degree vLLM could use. What it does not: throughput,
latency or SLOs (measure those with a sweep).

The model, in bytes (all assumptions are listed in ``docs/cost-and-sizing.md``):

* weights = total params x bytes/param (every MoE expert is resident, so
  *total*, not active, params; quantization scales are ignored);
* KV cache per token = 2 x layers x kv_heads x head_dim x kv bytes (MHA/GQA),
  or (latent + rope) x layers x kv bytes (DeepSeek-style MLA);
* KV cache = per token x context length x concurrency (every sequence at
  full context: the worst case vLLM must be able to hold);
* overhead = fraction x (weights + KV cache) for activations, CUDA graphs and
  the runtime (default 15%; 15-20% is typical);
* a GPU offers memory x ``gpu_memory_utilization`` (vLLM's default 0.9).

Per GPU at TP degree ``t``: ``(1 + overhead) x (weights / t + KV / s)``
where ``s`` is how many ways the KV cache is split: ``min(t, kv_heads)`` for
MHA/GQA (vLLM replicates KV heads when ``t > kv_heads``) and 1 for MLA (the
latent is shared by all heads, so every rank holds all of it).

GPUs, MIG slices and precisions (bytes per value) are in ``capacity/gpus.py``.
Pure and cheap to import: no I/O, no pytest, no third-party imports. Bad
inputs raise :class:`~pytest_agentbench.errors.ConfigError` naming the field
and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pytest_agentbench.capacity.gpus import GIB, GpuSpec, parse_gpu, precision_bytes, precision_label
from pytest_agentbench.errors import ConfigError

__all__ = [
    "DEFAULT_GPU_MEMORY_UTILIZATION",
    "DEFAULT_OVERHEAD_FRACTION",
    "TP_DEGREES",
    "ModelArchitecture",
    "SizingResult",
    "TpOption",
    "format_sizing",
    "kv_shards",
    "size_model",
    "tp_problem",
]

DEFAULT_OVERHEAD_FRACTION = 0.15
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
#: Tensor-parallel degrees considered: powers of two within one 8-GPU node.
TP_DEGREES = (1, 2, 4, 8)


@dataclass(frozen=True)
class ModelArchitecture:
    """The architecture figures that decide memory.

    Give either MHA/GQA (``num_kv_heads`` + ``head_dim``) or MLA
    (``mla_latent_dim`` + ``mla_rope_dim``, DeepSeek's ``kv_lora_rank`` and
    ``qk_rope_head_dim``), not both. Parameter counts are plain counts
    (8.03e9), not billions.
    """

    total_params: float
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    mla_latent_dim: int | None = None
    mla_rope_dim: int | None = None
    #: Parameters used per token (MoE); ``None`` for a dense model.
    active_params: float | None = None
    name: str = "model"

    def __post_init__(self) -> None:
        _check_params("total_params", self.total_params)
        if self.active_params is not None:
            _check_params("active_params", self.active_params)
            if self.active_params > self.total_params:
                raise ConfigError(
                    f"active_params ({self.active_params:g}) cannot exceed total_params "
                    f"({self.total_params:g}); for a dense model leave it out"
                )
        _check_int("num_layers", self.num_layers)
        _check_int("num_attention_heads", self.num_attention_heads)
        gqa = (self.num_kv_heads, self.head_dim)
        mla = (self.mla_latent_dim, self.mla_rope_dim)
        has_gqa = any(v is not None for v in gqa)
        has_mla = any(v is not None for v in mla)
        if has_gqa and has_mla:
            raise ConfigError(
                "attention: give either num_kv_heads + head_dim (MHA/GQA) or mla_latent_dim + "
                "mla_rope_dim (MLA), not both"
            )
        if has_mla:
            _check_int("mla_latent_dim", self.mla_latent_dim)
            _check_int("mla_rope_dim", self.mla_rope_dim, minimum=0)
        elif has_gqa:
            _check_int("num_kv_heads", self.num_kv_heads)
            _check_int("head_dim", self.head_dim)
            assert self.num_kv_heads is not None
            if self.num_attention_heads % self.num_kv_heads:
                raise ConfigError(
                    f"num_kv_heads: {self.num_kv_heads} must divide num_attention_heads "
                    f"({self.num_attention_heads}); check the model's config.json "
                    f"(num_key_value_heads)"
                )
        else:
            raise ConfigError(
                "attention: missing; give num_kv_heads + head_dim (MHA/GQA; num_kv_heads = "
                "num_attention_heads for plain MHA) or mla_latent_dim + mla_rope_dim (MLA)"
            )

    @classmethod
    def from_hf_config(
        cls,
        config: Mapping[str, Any],
        *,
        total_params: float,
        active_params: float | None = None,
        name: str | None = None,
    ) -> ModelArchitecture:
        """Read the figures from a Hugging Face ``config.json`` mapping (the caller reads the file).

        ``total_params`` is not in ``config.json`` and must be given (the model
        card states it, or sum the tensor sizes in the safetensors index).
        """

        def need(key: str) -> Any:
            if key not in config:
                raise ConfigError(f"config.json: missing {key!r}; pass ModelArchitecture(...) directly")
            return config[key]

        layers = need("num_hidden_layers")
        heads = need("num_attention_heads")
        label = name or str(config.get("_name_or_path") or config.get("model_type") or "model")
        if config.get("kv_lora_rank"):
            return cls(
                total_params=total_params,
                num_layers=layers,
                num_attention_heads=heads,
                mla_latent_dim=config["kv_lora_rank"],
                mla_rope_dim=need("qk_rope_head_dim"),
                active_params=active_params,
                name=label,
            )
        head_dim = config.get("head_dim") or need("hidden_size") // heads
        return cls(
            total_params=total_params,
            num_layers=layers,
            num_attention_heads=heads,
            num_kv_heads=config.get("num_key_value_heads") or heads,
            head_dim=head_dim,
            active_params=active_params,
            name=label,
        )

    @property
    def is_mla(self) -> bool:
        return self.mla_latent_dim is not None

    @property
    def attention(self) -> str:
        """``"MLA"``, ``"MHA"``, ``"MQA"`` or ``"GQA"``."""
        if self.is_mla:
            return "MLA"
        if self.num_kv_heads == self.num_attention_heads:
            return "MHA"
        return "MQA" if self.num_kv_heads == 1 else "GQA"

    def kv_values_per_token(self) -> int:
        """KV-cache values stored per token over all layers (multiply by bytes per value)."""
        if self.is_mla:
            assert self.mla_latent_dim is not None and self.mla_rope_dim is not None
            return (self.mla_latent_dim + self.mla_rope_dim) * self.num_layers
        assert self.num_kv_heads is not None and self.head_dim is not None
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim

    def describe(self) -> str:
        if self.is_mla:
            shape = f"MLA: {self.num_layers} layers x (latent {self.mla_latent_dim} + rope {self.mla_rope_dim})"
        else:
            shape = (
                f"{self.attention}: {self.num_layers} layers x {self.num_kv_heads} KV heads x {self.head_dim} head dim"
            )
        return f"{self.name} ({shape}, {self.num_attention_heads} attention heads)"


def _check_params(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{field}: expected a parameter count > 0 (e.g. 8.03e9), found {value!r}")
    if value < 1000:
        raise ConfigError(
            f"{field}: {value!r} parameters is not a model; counts are plain numbers, "
            f"not billions: did you mean {value:g}e9?"
        )


def _check_int(field: str, value: object, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field}: expected a whole number >= {minimum}, found {value!r}")


@dataclass(frozen=True)
class TpOption:
    """One tensor-parallel degree considered for a GPU."""

    tensor_parallel: int
    #: Memory each GPU needs at this degree.
    bytes_per_gpu: float
    #: Why vLLM cannot use this degree for this model (heads), or ``None``.
    problem: str | None
    fits: bool


@dataclass(frozen=True)
class SizingResult:
    """A memory estimate and, when a GPU was given, a layout on it. Sizes in bytes."""

    arch: ModelArchitecture
    weights_precision: str
    weights_bytes_per_param: float
    kv_cache_precision: str
    kv_bytes_per_value: float
    context_length: int
    concurrency: int
    overhead_fraction: float
    weights_bytes: float
    #: Weight bytes read per token (MoE active params), ``None`` for dense models.
    active_weights_bytes: float | None
    kv_bytes_per_token: float
    kv_cache_bytes: float
    overhead_bytes: float
    total_bytes: float
    gpu: GpuSpec | None = None
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    usable_bytes_per_gpu: float | None = None
    #: GPUs needed if memory could be pooled: ``ceil(total / usable)``; a lower bound.
    min_gpus: int | None = None
    #: The smallest TP degree that vLLM accepts and that fits; ``None`` if none does.
    tensor_parallel: int | None = None
    bytes_per_gpu: float | None = None
    #: Full-context sequences that fit at the chosen TP degree.
    max_concurrency: int | None = None
    options: tuple[TpOption, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def fits(self) -> bool | None:
        """Whether some layout fits; ``None`` when no GPU was given."""
        return None if self.gpu is None else self.tensor_parallel is not None


def size_model(
    arch: ModelArchitecture,
    *,
    context_length: int,
    concurrency: int = 1,
    weights_precision: str | float = "bf16",
    kv_cache_precision: str | float = "bf16",
    overhead_fraction: float = DEFAULT_OVERHEAD_FRACTION,
    gpu: GpuSpec | str | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    tensor_parallel: int | None = None,
) -> SizingResult:
    """Estimate memory for serving *arch*, and lay it out on *gpu* if given.

    *context_length* is tokens per sequence (prompt + output, vLLM's
    ``max_model_len``); *concurrency* is sequences held at once. With *gpu*,
    every degree in ``TP_DEGREES`` is checked (heads and memory) and the
    smallest that works is chosen; with *tensor_parallel*, only that degree.
    A MIG slice allows only TP 1: a layout that needs more raises
    ``ConfigError``.
    """
    _check_int("context_length", context_length)
    _check_int("concurrency", concurrency)
    _check_fractions(overhead_fraction, gpu_memory_utilization)
    base = _estimate(
        arch,
        context_length=context_length,
        concurrency=concurrency,
        weights_precision=weights_precision,
        kv_cache_precision=kv_cache_precision,
        overhead_fraction=overhead_fraction,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    if gpu is None:
        if tensor_parallel is not None:
            raise ConfigError("tensor_parallel: needs a gpu to check the layout against; pass gpu=...")
        return base
    spec = parse_gpu(gpu) if isinstance(gpu, str) else gpu
    return _lay_out(base, spec, tensor_parallel)


def _check_fractions(overhead_fraction: float, gpu_memory_utilization: float) -> None:
    if (
        isinstance(overhead_fraction, bool)
        or not isinstance(overhead_fraction, (int, float))
        or not 0 <= overhead_fraction < 1
    ):
        raise ConfigError(
            f"overhead_fraction: expected a fraction 0 <= f < 1 (0.15-0.2 is typical), found {overhead_fraction!r}"
        )
    if (
        isinstance(gpu_memory_utilization, bool)
        or not isinstance(gpu_memory_utilization, (int, float))
        or not 0 < gpu_memory_utilization <= 1
    ):
        raise ConfigError(
            f"gpu_memory_utilization: expected a fraction 0 < u <= 1 (vLLM's default is 0.9), "
            f"found {gpu_memory_utilization!r}"
        )


def _estimate(
    arch: ModelArchitecture,
    *,
    context_length: int,
    concurrency: int,
    weights_precision: str | float,
    kv_cache_precision: str | float,
    overhead_fraction: float,
    gpu_memory_utilization: float,
) -> SizingResult:
    """The memory estimate alone: weights, KV cache, overhead and their total (no GPU yet)."""
    w_bytes = precision_bytes(weights_precision, "weights_precision")
    kv_bytes = precision_bytes(kv_cache_precision, "kv_cache_precision")

    weights = arch.total_params * w_bytes
    active = arch.active_params * w_bytes if arch.active_params is not None else None
    kv_per_token = arch.kv_values_per_token() * kv_bytes
    kv_total = kv_per_token * context_length * concurrency
    overhead = overhead_fraction * (weights + kv_total)
    total = weights + kv_total + overhead
    return SizingResult(
        arch=arch,
        weights_precision=precision_label(weights_precision),
        weights_bytes_per_param=w_bytes,
        kv_cache_precision=precision_label(kv_cache_precision),
        kv_bytes_per_value=kv_bytes,
        context_length=context_length,
        concurrency=concurrency,
        overhead_fraction=float(overhead_fraction),
        weights_bytes=weights,
        active_weights_bytes=active,
        kv_bytes_per_token=kv_per_token,
        kv_cache_bytes=kv_total,
        overhead_bytes=overhead,
        total_bytes=total,
        gpu_memory_utilization=float(gpu_memory_utilization),
    )


def kv_shards(arch: ModelArchitecture, tp: int) -> int:
    if arch.is_mla:
        return 1  # the latent is shared by every head: each TP rank keeps all of it
    assert arch.num_kv_heads is not None
    return min(tp, arch.num_kv_heads)  # tp > kv_heads: vLLM replicates KV heads


def tp_problem(arch: ModelArchitecture, tp: int) -> str | None:
    heads = arch.num_attention_heads
    if heads % tp:
        return f"{tp} does not divide the {heads} attention heads"
    if not arch.is_mla:
        kv = arch.num_kv_heads
        assert kv is not None
        if kv >= tp and kv % tp:
            return f"{tp} does not divide the {kv} KV heads"
        if kv < tp and tp % kv:
            return f"the {kv} KV heads cannot be replicated evenly over {tp} GPUs"
    return None


def _degrees(arch: ModelArchitecture, gpu: GpuSpec, requested: int | None) -> tuple[int, ...]:
    """The TP degrees to consider: the one requested (checked: vLLM must accept it), else all."""
    if requested is None:
        return (1,) if gpu.mig else TP_DEGREES
    if isinstance(requested, bool) or not isinstance(requested, int) or requested not in TP_DEGREES:
        raise ConfigError(
            f"tensor_parallel: expected one of {', '.join(map(str, TP_DEGREES))} (a power "
            f"of two within one node), found {requested!r}"
        )
    if gpu.mig and requested > 1:
        raise ConfigError(
            f"tensor_parallel: {requested} on {gpu.name} is refused: tensor parallel "
            f"across MIG slices is not supported (slices have no peer-to-peer path; one "
            f"server gets one slice); use tensor_parallel 1, a larger slice or whole GPUs"
        )
    problem = tp_problem(arch, requested)
    if problem:
        raise ConfigError(
            f"tensor_parallel: vLLM cannot shard {arch.name} {requested} ways: {problem}; "
            f"choose a degree that divides the heads"
        )
    return (requested,)


def _lay_out(base: SizingResult, gpu: GpuSpec, requested: int | None) -> SizingResult:
    """*base* on *gpu*: every TP degree considered, the smallest that fits chosen, and notes."""
    arch = base.arch
    usable = gpu.memory_bytes * base.gpu_memory_utilization
    scale = 1 + base.overhead_fraction
    options = []
    for tp in _degrees(arch, gpu, requested):
        per_gpu = scale * (base.weights_bytes / tp + base.kv_cache_bytes / kv_shards(arch, tp))
        problem = tp_problem(arch, tp)
        options.append(TpOption(tp, per_gpu, problem, problem is None and per_gpu <= usable))
    chosen = next((o for o in options if o.fits), None)
    min_gpus = max(1, math.ceil(base.total_bytes / usable - 1e-9))

    if chosen is None and gpu.mig:
        raise ConfigError(
            f"gpu: {arch.name} needs {_gb(options[0].bytes_per_gpu)} but one {gpu.name} offers "
            f"{_gb(usable)} at gpu_memory_utilization {base.gpu_memory_utilization:g}, and tensor parallel "
            f"across MIG slices is refused (slices have no peer-to-peer path; one server gets one slice). "
            f"Fix: a larger slice, whole GPUs, a smaller precision, or less context x concurrency"
        )

    max_conc = None
    if chosen is not None:
        tp = chosen.tensor_parallel
        free = usable - scale * base.weights_bytes / tp
        per_seq = scale * base.kv_bytes_per_token * base.context_length / kv_shards(arch, tp)
        max_conc = math.floor(free / per_seq + 1e-9)
    return replace(
        base,
        gpu=gpu,
        usable_bytes_per_gpu=usable,
        min_gpus=min_gpus,
        tensor_parallel=chosen.tensor_parallel if chosen else None,
        bytes_per_gpu=chosen.bytes_per_gpu if chosen else None,
        max_concurrency=max_conc,
        options=tuple(options),
        notes=tuple(_layout_notes(base, gpu, requested, options, chosen, min_gpus, usable)),
    )


def _layout_notes(
    base: SizingResult,
    gpu: GpuSpec,
    requested: int | None,
    options: list[TpOption],
    chosen: TpOption | None,
    min_gpus: int,
    usable: float,
) -> list[str]:
    """Why the layout is what it is: a degree above what memory needs, no fit, KV not split."""
    arch = base.arch
    notes: list[str] = []
    if chosen is not None:
        tp = chosen.tensor_parallel
        if requested is None and tp > min_gpus:
            skipped = [o for o in options if o.tensor_parallel < tp and o.tensor_parallel >= min_gpus]
            why = "; ".join(f"TP {o.tensor_parallel}: " + (o.problem or "does not fit per GPU") for o in skipped)
            notes.append(
                f"memory alone needs {min_gpus} GPU(s), but TP must be a power of two that vLLM "
                f"accepts, so TP {tp}" + (f" ({why})" if why else "")
            )
    elif requested is not None:
        notes.append(
            f"TP {requested} does not fit: {_gb(options[0].bytes_per_gpu)} per GPU, "
            f"{_gb(usable)} usable; try a larger degree, a smaller precision, or less context x "
            f"concurrency"
        )
    else:
        notes.append(_no_fit_note(gpu, options, usable))
    if arch.is_mla and chosen is not None and chosen.tensor_parallel > 1:
        notes.append("MLA: the KV latent is not split by TP; every GPU holds the whole KV cache")
    if (
        not arch.is_mla
        and chosen is not None
        and arch.num_kv_heads is not None
        and chosen.tensor_parallel > arch.num_kv_heads
    ):
        notes.append(
            f"TP {chosen.tensor_parallel} > {arch.num_kv_heads} KV heads: vLLM replicates KV heads, "
            f"so the KV cache is split only {arch.num_kv_heads} ways"
        )
    return notes


def _no_fit_note(gpu: GpuSpec, options: list[TpOption], usable: float) -> str:
    """No degree fits: the heads block the ones memory allows, or memory blocks them all."""
    blocked = [o for o in options if o.problem and o.bytes_per_gpu <= usable]
    if blocked:
        return "no TP degree works: " + "; ".join(f"TP {o.tensor_parallel} would fit but {o.problem}" for o in blocked)
    return (
        f"does not fit on up to {TP_DEGREES[-1]} x {gpu.name} with tensor parallel alone "
        f"(TP {TP_DEGREES[-1]} needs {_gb(options[-1].bytes_per_gpu)} per GPU, "
        f"{_gb(usable)} usable): use bigger GPUs, pipeline parallel across nodes (--nodes N), "
        f"a smaller precision, or less context x concurrency"
    )


# --------------------------------------------------------------------------- formatting


def _gb(n: float) -> str:
    return f"{n / 1e9:,.2f} GB"


def _gib(n: float) -> str:
    return f"{n / GIB:,.2f} GiB"


def _count(n: float) -> str:
    if n >= 1e9:
        return f"{n / 1e9:,.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:,.1f}M"
    return f"{n:,.0f}"


def _memory_rows(r: SizingResult) -> list[tuple[str, str, str, str]]:
    """(label, GB, GiB, detail) for weights, active weights, KV cache, overhead and total."""
    a = r.arch
    params = f"{_count(a.total_params)} params"
    if a.active_params is not None:
        params += f" ({_count(a.active_params)} active)"
    rows: list[tuple[str, str, str, str]] = [
        (
            "weights",
            _gb(r.weights_bytes),
            _gib(r.weights_bytes),
            f"{params} x {r.weights_bytes_per_param:g} B ({r.weights_precision})",
        ),
    ]
    if r.active_weights_bytes is not None:
        rows.append(
            (
                "active weights",
                _gb(r.active_weights_bytes),
                _gib(r.active_weights_bytes),
                "read per token (MoE); included in weights, not extra",
            )
        )
    rows += [
        (
            "KV cache / token",
            f"{r.kv_bytes_per_token:,.0f} B",
            f"{r.kv_bytes_per_token / 1024:,.1f} KiB",
            f"{a.kv_values_per_token():,} values x {r.kv_bytes_per_value:g} B ({r.kv_cache_precision})",
        ),
        (
            "KV cache",
            _gb(r.kv_cache_bytes),
            _gib(r.kv_cache_bytes),
            f"{r.context_length:,} tokens x {r.concurrency} sequences",
        ),
        ("overhead", _gb(r.overhead_bytes), _gib(r.overhead_bytes), f"{r.overhead_fraction:.0%} of weights + KV cache"),
        ("total", _gb(r.total_bytes), _gib(r.total_bytes), ""),
    ]
    return rows


def _gpu_lines(r: SizingResult) -> list[str]:
    """The GPU, one line per TP degree considered, and the layout chosen (none without a GPU)."""
    if r.gpu is None or r.usable_bytes_per_gpu is None:
        return []
    kind = " (MIG slice)" if r.gpu.mig else ""
    lines = [
        f"GPU: {r.gpu.name}{kind}, {r.gpu.memory_gib:,.2f} GiB, "
        f"{r.gpu_memory_utilization:.0%} usable = {_gb(r.usable_bytes_per_gpu)} "
        f"({_gib(r.usable_bytes_per_gpu)})",
        f"  {'GPUs if pooled':<16}  {r.min_gpus:>12}  {'':>12}  lower bound: total / usable",
    ]
    for o in r.options:
        state = o.problem or ("fits" if o.fits else "does not fit")
        mark = "  <- chosen" if o.tensor_parallel == r.tensor_parallel else ""
        lines.append(
            f"  {f'TP {o.tensor_parallel}':<16}  {_gb(o.bytes_per_gpu):>12}  "
            f"{_gib(o.bytes_per_gpu):>12}  per GPU: {state}{mark}"
        )
    if r.tensor_parallel is not None:
        lines.append(
            f"Layout: tensor parallel {r.tensor_parallel} on {r.tensor_parallel} x {r.gpu.name}; "
            f"room for {r.max_concurrency} concurrent {r.context_length:,}-token sequences"
        )
    else:
        lines.append("Layout: none fits")
    return lines


def format_sizing(result: SizingResult) -> str:
    """A human-readable table of a :class:`SizingResult` (GB = 1e9 bytes, GiB = 2**30)."""
    lines = [f"Memory sizing: {result.arch.describe()}"]
    lines += [
        f"  {label:<16}  {value:>12}  {binary:>12}  {detail}".rstrip()
        for label, value, binary, detail in _memory_rows(result)
    ]
    lines += _gpu_lines(result)
    lines += [f"Note: {note}" for note in result.notes]
    return "\n".join(lines)
