"""The rules a vLLM launch must obey, checked when a spec is built and again when it is rendered.

This module owns how ``devices`` is read (``None``/``"cpu"`` for the CPU build, GPU
indices, ``GPU-<uuid>``, one ``MIG-<uuid>`` slice), how the tensor-parallel size
follows from the devices and the pipeline-parallel size (and why MIG refuses tensor
parallelism), what a multi-node server on Ray needs (:func:`check_distributed`: the
GPUs come from the cluster, so no ``devices``; TP stays inside a node), that automatic
tool choice needs a tool-call parser, and how free-form ``extra_args`` become
``--kebab-case`` flags without touching the flags the harness sets itself. The
functions take plain values, so both the spec (:mod:`.spec`) and the command
(:mod:`.command`) use them without depending on each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pytest_agentbench.errors import ConfigError

__all__ = [
    "EXECUTOR_BACKENDS",
    "check_distributed",
    "check_tool_flags",
    "parse_devices",
    "render_extra_args",
    "tensor_parallel_size",
]

#: vLLM's --distributed-executor-backend values we start: one node (mp) or a Ray cluster (ray).
EXECUTOR_BACKENDS = ("mp", "uni", "ray")  # uni: the model runs inside the engine process (one device)

# Flags the harness renders itself: extra_args may not set them.
_OWNED_FLAGS: Mapping[str, str] = MappingProxyType(
    {
        "host": "the harness always binds 127.0.0.1",
        "port": "set ServeSpec.port (or leave it None for a free port)",
        "model": "set ServeSpec.model",
        "served_model_name": "set ServeSpec.served_model_name",
        "tensor_parallel_size": "set ServeSpec.tensor_parallel_size",
        "pipeline_parallel_size": "set serve.pipeline_parallel_size (ServeSpec.pipeline_parallel_size)",
        "distributed_executor_backend": "set serve.distributed_executor_backend (ServeSpec's field of that name)",
        "max_model_len": "set ServeSpec.max_model_len",
        "gpu_memory_utilization": "set ServeSpec.gpu_memory_utilization",
        "tool_call_parser": "set ServeSpec.tool_call_parser",
        "enable_auto_tool_choice": "set ServeSpec.enable_auto_tool_choice",
        "reasoning_parser": "set ServeSpec.reasoning_parser",
    }
)


def parse_devices(devices: str | None) -> list[str] | None:
    """``None``/``""``/``"cpu"`` -> None (CPU); else the list of device ids."""
    if devices is None:
        return None
    text = str(devices).strip()
    if text == "" or text.lower() == "cpu":
        return None
    items = [d.strip() for d in text.split(",")]
    if any(not d for d in items):
        raise ConfigError(f"serve.devices={devices!r}: empty entry; write e.g. '0', '0,1,2,3' or 'MIG-<uuid>'")
    for d in items:
        if not (d.isdigit() or d.startswith(("MIG-", "GPU-"))):
            raise ConfigError(
                f"serve.devices={devices!r}: {d!r} is not a GPU index, 'GPU-<uuid>' or 'MIG-<uuid>'; "
                "leave devices unset for CPU"
            )
    if len(set(items)) != len(items):
        raise ConfigError(f"serve.devices={devices!r} lists a device twice")
    return items


def tensor_parallel_size(
    tp: int | None,
    devices: list[str] | None,
    *,
    setting: str | None,
    pipeline_parallel_size: int | None = None,
) -> int | None:
    """The tensor-parallel size to render for ``devices`` (parsed from ``setting``); None: leave it to vLLM.

    On one node the listed devices are all the server gets: TP x PP must use every one of them.
    """
    if tp is not None and tp < 1:
        raise ConfigError(f"serve.tensor_parallel_size={tp}: must be >= 1")
    pp = 1 if pipeline_parallel_size is None else pipeline_parallel_size
    if pp < 1:
        raise ConfigError(f"serve.pipeline_parallel_size={pp}: must be >= 1")
    if devices is None:
        return tp  # CPU, or GPUs the Ray cluster places: rendered only when asked for
    if any(d.startswith("MIG-") for d in devices):
        if pp > 1:
            raise ConfigError(f"serve: pipeline_parallel_size={pp} on a MIG slice: one server gets one slice")
        return _mig_tensor_parallel_size(tp, devices, setting)
    if tp is None:
        if len(devices) % pp:
            raise ConfigError(
                f"serve: {len(devices)} devices ({setting!r}) do not split into pipeline_parallel_size={pp}"
            )
        return len(devices) // pp
    if tp * pp != len(devices):
        raise ConfigError(
            f"serve: tensor_parallel_size={tp} x pipeline_parallel_size={pp} uses {tp * pp} GPUs but "
            f"devices={setting!r} lists {len(devices)}; list exactly that many devices or leave "
            "tensor_parallel_size unset (it defaults to the device count)"
        )
    return tp


def check_distributed(backend: str | None, ray_address: str | None, devices: str | None) -> None:
    """The executor backend is ``mp``, ``uni`` or ``ray``; a Ray address needs the ray backend; with it the cluster
    places the GPUs (``ray start --num-gpus`` on each node), so ``devices`` - one node's - is refused."""
    if backend is not None and backend not in EXECUTOR_BACKENDS:
        raise ConfigError(
            f"serve.distributed_executor_backend={backend!r}: expected one of {', '.join(EXECUTOR_BACKENDS)} "
            "(uni: one process, no worker of its own; ray: tensor x pipeline parallel over the nodes of a Ray cluster)"
        )
    if ray_address is not None and backend != "ray":
        raise ConfigError(
            f"serve.ray_address={ray_address!r} needs distributed_executor_backend: ray (vLLM joins the cluster "
            "only with that backend)"
        )
    if backend == "ray" and parse_devices(devices) is not None:
        raise ConfigError(
            f"serve.devices={devices!r} with distributed_executor_backend: ray: the Ray cluster assigns the GPUs on "
            "every node (ray start --num-gpus=N), so devices, which names one machine's, is not used; remove it and "
            "set tensor_parallel_size (GPUs per node) x pipeline_parallel_size (nodes)"
        )


def _mig_tensor_parallel_size(tp: int | None, devices: list[str], setting: str | None) -> int:
    """A MIG slice serves alone and without tensor parallelism: always 1."""
    if len(devices) > 1:
        raise ConfigError(
            f"serve.devices={setting!r}: a server gets one MIG slice (CUDA exposes one MIG device "
            "per process); use one 'MIG-<uuid>' per server, or whole GPUs for tensor parallelism"
        )
    if tp is not None and tp > 1:
        raise ConfigError(
            f"serve: tensor_parallel_size={tp} on MIG slice {devices[0]!r} is not possible: MIG slices "
            "cannot do tensor parallelism (no NCCL peer access); set tensor_parallel_size=1 or use "
            "whole GPUs, e.g. devices='0,1'"
        )
    return 1


def check_tool_flags(enable_auto_tool_choice: bool, tool_call_parser: str | None) -> None:
    """Automatic tool choice is refused without a tool-call parser."""
    if enable_auto_tool_choice and not tool_call_parser:
        raise ConfigError(
            "serve: enable_auto_tool_choice needs tool_call_parser (e.g. 'hermes' for Qwen/ChatML models)"
        )


def _flag(key: str) -> str:
    return "--" + key.strip().lstrip("-").replace("_", "-")


def render_extra_args(extra: Mapping[str, Any]) -> list[str]:
    """``{"load_format": "dummy", "enforce_eager": True}`` -> ``["--load-format", "dummy", "--enforce-eager"]``."""
    argv: list[str] = []
    for key, value in extra.items():
        norm = key.strip().lstrip("-").replace("-", "_")
        if norm in _OWNED_FLAGS:
            raise ConfigError(f"serve.extra_args: {key!r} is set by the harness; {_OWNED_FLAGS[norm]}")
        flag = _flag(key)
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, Mapping):
            argv += [flag, json.dumps(dict(value), separators=(",", ":"))]
        elif isinstance(value, (list, tuple)):
            argv += [flag, *(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv
