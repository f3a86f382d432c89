"""What to serve with vLLM and how: :class:`ServeSpec`, and the spec built from a models.yaml alias.

A spec is frozen all the way down (its mappings are read-only but still pickle and
copy), round-trips through plain data (:meth:`ServeSpec.from_dict` /
:meth:`ServeSpec.to_dict`), and is checked against the launch rules of
:mod:`.rules` when it is built, so a bad ``serve:`` block fails at configuration
time rather than when the server starts. :func:`spec_from_alias` maps an alias'
``serve:`` block (``model_path``, ``args``, ``devices``, ``env``, ...) onto it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.serving.vllm.rules import (
    check_distributed,
    check_tool_flags,
    parse_devices,
    render_extra_args,
    tensor_parallel_size,
)

__all__ = ["ServeSpec", "spec_from_alias"]


class _FrozenDict(dict):  # type: ignore[type-arg]
    """A read-only dict that still pickles and copies (MappingProxyType does neither)."""

    def _readonly(self, *args: object, **kwargs: object) -> None:
        raise TypeError("ServeSpec mappings are read-only; build a new spec with dataclasses.replace()")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenDict, (dict(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> _FrozenDict:
        return self


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return _FrozenDict(value or {})


@dataclass(frozen=True)
class ServeSpec:
    """What to serve and how. Build it directly or with :meth:`from_dict`.

    ``extra_args`` become ``--kebab-case`` flags: ``True`` -> bare flag,
    ``False``/``None`` -> omitted, a list -> the flag followed by each item,
    a dict -> a JSON string, anything else -> ``str(value)``.
    """

    model: str
    served_model_name: str | None = None
    devices: str | None = None
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    distributed_executor_backend: str | None = None  # mp | uni (the model in the engine process) | ray (a cluster)
    ray_address: str | None = None  # the cluster vLLM joins (RAY_ADDRESS); None: the one on this machine
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    tool_call_parser: str | None = None
    enable_auto_tool_choice: bool = False
    reasoning_parser: str | None = None
    extra_args: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    python: str | None = None
    port: int | None = None
    startup_timeout_s: float = 600.0
    stop_timeout_s: float = 20.0
    log_dir: str | None = None

    def __post_init__(self) -> None:
        # Frozen all the way down, so a spec can be shared and hashed-by-id safely.
        object.__setattr__(self, "extra_args", _frozen_mapping(self.extra_args))
        object.__setattr__(self, "env", _frozen_mapping({k: str(v) for k, v in dict(self.env).items()}))
        if not self.model:
            raise ConfigError("serve: 'model' is required (a local model folder or a cached model name)")
        if self.startup_timeout_s <= 0:
            raise ConfigError(f"serve: startup_timeout_s must be > 0, got {self.startup_timeout_s}")
        # Fail at configuration time, not when the server starts.
        check_distributed(self.distributed_executor_backend, self.ray_address, self.devices)
        self.layout()
        render_extra_args(self.extra_args)
        check_tool_flags(self.enable_auto_tool_choice, self.tool_call_parser)

    @property
    def name(self) -> str:
        """The name clients send as ``model`` (served_model_name, else model)."""
        return self.served_model_name or self.model

    @property
    def on_ray(self) -> bool:
        """Served over the nodes of a Ray cluster (``distributed_executor_backend: ray``): Ray places the GPUs."""
        return self.distributed_executor_backend == "ray"

    @property
    def on_cpu(self) -> bool:
        return parse_devices(self.devices) is None and not self.on_ray

    def layout(self) -> tuple[list[str] | None, int | None]:
        """``(devices, tensor_parallel_size)`` as rendered: devices None on CPU or on Ray, tp None when left to vLLM."""
        devices = parse_devices(self.devices)
        tp = tensor_parallel_size(
            self.tensor_parallel_size, devices, setting=self.devices, pipeline_parallel_size=self.pipeline_parallel_size
        )
        return devices, tp

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServeSpec:
        """Build from a plain mapping (e.g. a ``serve:`` block); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"serve: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))} "
                "(vLLM flags go under 'extra_args')"
            )
        values = dict(data)
        if values.get("devices") is not None:
            values["devices"] = str(values["devices"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data; ``ServeSpec.from_dict(spec.to_dict()) == spec``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return out | {"extra_args": dict(self.extra_args), "env": dict(self.env)}


# ``serve.args`` keys that are ServeSpec fields rather than free-form flags.
_LIFTED_ARGS = (
    "max_model_len",
    "gpu_memory_utilization",
    "tool_call_parser",
    "enable_auto_tool_choice",
    "reasoning_parser",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "distributed_executor_backend",
)


def spec_from_alias(alias: Any) -> ServeSpec:
    """A :class:`ServeSpec` from a models.yaml alias (``ModelSpec`` with a ``serve:`` block).

    The alias' ``model`` is the served name; ``serve.model_path`` (default: the
    model name) is what vLLM loads. ``serve.args`` are vLLM flags; the ones that
    are ServeSpec fields (``max_model_len``, ``tool_call_parser``, ...) are lifted
    into them, so they are validated the same way.
    """
    from pytest_agentbench.models.registry import ServeConfig

    serve: ServeConfig = alias.serve or ServeConfig()
    where = getattr(alias, "where", f"models.{getattr(alias, 'alias', '?')}")
    args = {str(k).replace("-", "_"): v for k, v in dict(serve.args).items()}
    lifted = {key: args.pop(key) for key in _LIFTED_ARGS if key in args}
    for key in ("tensor_parallel_size", "pipeline_parallel_size", "distributed_executor_backend", "ray_address"):
        if getattr(serve, key) is not None:
            lifted[key] = getattr(serve, key)
    devices = serve.devices
    try:
        return ServeSpec(
            model=str(serve.model_path or alias.model),
            served_model_name=str(alias.model),
            devices=None if devices is None else str(devices),
            extra_args=args,
            env={str(k): str(v) for k, v in dict(serve.env).items()},
            python=serve.python,
            startup_timeout_s=float(serve.startup_timeout_s or 600.0),
            **lifted,
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
