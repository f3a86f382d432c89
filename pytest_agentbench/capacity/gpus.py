"""The hardware side of sizing: GPUs as memory budgets and the number formats they hold.

:class:`GpuSpec` is one GPU or one MIG slice by its memory; :data:`GPU_PRESETS` are whole
GPUs by the ``memory.total`` that ``nvidia-smi`` reports; :func:`mig_slice` and
:func:`parse_gpu` turn the names people type (a preset, ``"MIG 3g.40gb"``, ``nvidia-smi``'s
own name) into a ``GpuSpec``; :data:`PRECISION_BYTES` and :func:`precision_bytes` give the
bytes per parameter or KV element of a precision. The model-architecture arithmetic is
``capacity/sizing.py``. Pure and cheap to import; bad inputs raise
:class:`~pytest_agentbench.errors.ConfigError` naming the field and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pytest_agentbench.errors import ConfigError

__all__ = [
    "GIB",
    "GPU_PRESETS",
    "PRECISION_BYTES",
    "GpuSpec",
    "mig_slice",
    "parse_gpu",
    "precision_bytes",
    "precision_label",
]

#: Bytes in one GiB (GPU memory is counted in binary units).
GIB = 1024**3
_MIB = 1024**2

#: Bytes per parameter (or per KV element) for named precisions. Block-scaled
#: 4-bit formats count their shared scales (MXFP4: 4 bits + an 8-bit scale per
#: 32 values; NVFP4: 4 bits + an 8-bit scale per 16); int4/AWQ/GPTQ ignore
#: their (small) group scales, as a first-order figure does.
PRECISION_BYTES: Mapping[str, float] = MappingProxyType(
    {
        "fp32": 4.0,
        "float32": 4.0,
        "bf16": 2.0,
        "bfloat16": 2.0,
        "fp16": 2.0,
        "float16": 2.0,
        "half": 2.0,
        "fp8": 1.0,
        "fp8_e4m3": 1.0,
        "fp8_e5m2": 1.0,
        "int8": 1.0,
        "w8a8": 1.0,
        "int4": 0.5,
        "awq": 0.5,
        "gptq": 0.5,
        "nf4": 0.5,
        "mxfp4": 4.25 / 8,
        "nvfp4": 4.5 / 8,
    }
)


@dataclass(frozen=True)
class GpuSpec:
    """One GPU, or one MIG slice of a GPU, as a memory budget."""

    name: str
    #: Total memory as ``nvidia-smi`` reports it (``memory.total``), in GiB.
    memory_gib: float
    #: A MIG slice: tensor parallel across slices is refused.
    mig: bool = False

    def __post_init__(self) -> None:
        if (
            isinstance(self.memory_gib, bool)
            or not isinstance(self.memory_gib, (int, float))
            or not math.isfinite(self.memory_gib)
            or self.memory_gib <= 0
        ):
            raise ConfigError(
                f"gpu.memory_gib: expected the GPU's memory in GiB (> 0), e.g. 80, found {self.memory_gib!r}"
            )

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GIB


def _preset(name: str, mib: int) -> GpuSpec:
    return GpuSpec(name, mib * _MIB / GIB)


#: Whole GPUs by the ``memory.total`` that ``nvidia-smi`` reports for them.
GPU_PRESETS: Mapping[str, GpuSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            _preset("H100-80GB", 81559),
            _preset("H200", 143771),
            _preset("A100-80GB", 81920),
            _preset("A100-40GB", 40960),
            _preset("L40S", 46068),
            _preset("L4", 23034),
        )
    }
)

#: Short names people type for a preset (only where the size is unambiguous).
_GPU_ALIASES = MappingProxyType(
    {"h100": "H100-80GB", "h100-80": "H100-80GB", "a100-80": "A100-80GB", "a100-40": "A100-40GB"}
)

_MIG_PROFILE = re.compile(r"^(?:\d+c\.)?(\d+)g\.(\d+)gb$")


def mig_slice(profile: str, memory_gib: float | None = None) -> GpuSpec:
    """A MIG slice by its profile name, e.g. ``"3g.40gb"``.

    Without *memory_gib* the size is the profile's nominal GB read as decimal
    gigabytes (``3g.40gb`` -> 40e9 bytes = 37.25 GiB), a little under what
    ``nvidia-smi`` shows (39.5 GiB on an H100), so the estimate errs on the
    safe side; pass *memory_gib* for the exact figure.
    """
    text = profile.strip().lower()
    match = _MIG_PROFILE.match(text)
    if not match:
        raise ConfigError(
            f"gpu: {profile!r} is not a MIG profile; expected a name such as '1g.10gb', "
            f"'3g.40gb' or '7g.80gb' (nvidia-smi -L lists them)"
        )
    if memory_gib is None:
        memory_gib = int(match.group(2)) * 1e9 / GIB
    return GpuSpec(f"MIG {text}", memory_gib, mig=True)


def parse_gpu(text: str) -> GpuSpec:
    """A GPU from a name: a preset (``"H100-80GB"``, ``"h200"``) or a MIG slice
    (``"MIG 3g.40gb"``, ``"H100-80GB MIG 1g.10gb"``, ``"3g.40gb"``)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            f"gpu: expected a GPU name such as {', '.join(GPU_PRESETS)} or a MIG profile "
            f"such as 'MIG 3g.40gb', found {text!r}"
        )
    raw = text.strip()
    if raw.upper().startswith("MIG-") and not _MIG_PROFILE.match(raw[4:].lower()):
        raise ConfigError(
            f"gpu: {raw!r} is a MIG device UUID, which does not say how big the slice is; "
            f"name its profile instead (e.g. 'MIG 3g.40gb', from nvidia-smi -L)"
        )
    lowered = raw.lower()
    words = re.split(r"[\s:/]+", lowered[:4].replace("mig-", "mig ") + lowered[4:])
    profiles = [w for w in words if _MIG_PROFILE.match(w)]
    if profiles:
        return mig_slice(profiles[-1])
    # "NVIDIA H100 80GB HBM3" (nvidia-smi's name) -> "h100-80gb"
    key = re.sub(r"[\s_]+", "-", lowered.removeprefix("nvidia").strip())
    key = re.sub(r"-(sxm\d?|pcie|hbm\d?e?)\b", "", key)
    if key in _GPU_ALIASES:
        return GPU_PRESETS[_GPU_ALIASES[key]]
    for name, spec in GPU_PRESETS.items():
        if key in (name.lower(), name.lower().replace("-", "")):
            return spec
    raise ConfigError(
        f"gpu: unknown GPU {raw!r}; known: {', '.join(GPU_PRESETS)}, or a MIG profile such "
        f"as 'MIG 3g.40gb'; for another GPU build GpuSpec(name, memory_gib)"
    )


def precision_bytes(value: str | float, field: str = "precision") -> float:
    """Bytes per parameter (or KV element) for a precision name or a number.

    ``"bf16"`` -> 2, ``"fp8"`` -> 1, ``"int4"`` -> 0.5, ... (see
    ``PRECISION_BYTES``); a positive number is taken as bytes directly.
    """
    if isinstance(value, str):
        key = value.strip().lower()
        if key in PRECISION_BYTES:
            return PRECISION_BYTES[key]
        raise ConfigError(
            f"{field}: unknown precision {value!r}; use one of "
            f"{', '.join(PRECISION_BYTES)} or a number of bytes (e.g. 0.5)"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"{field}: expected a precision name (bf16, fp8, int4, ...) or bytes per value > 0, found {value!r}"
        )
    return float(value)


def precision_label(value: str | float) -> str:
    """A precision as the sizing output names it: ``"bf16"``, or ``"0.5 B"`` for a number."""
    return value.strip().lower() if isinstance(value, str) else f"{value:g} B"
