"""The model registry: ``models.yaml`` maps stable aliases to backends.

A packet runs on any model by changing only the alias. Values may use
``${VAR}`` / ``${VAR:-default}``; an unset variable is an error only when its
alias is actually used (so one file can hold a commercial alias that a CI job
without the key never selects).

The file is parsed once, into types: an alias is a :class:`ModelSpec` whose
``serve:`` block is a :class:`ServeConfig`, whose ``cost:`` is the parsed price,
whose ``license:`` is a :class:`LicenseDeclaration` and whose ``retries:`` are
:class:`~pytest_agentbench.models.taxonomy.RetryPolicy` objects merged over the
defaults, so no consumer re-reads a raw mapping.

Loading errors name the file, the key and the fix, like the packet loader's
(the same strict YAML reader: UTF-8 with the line of a bad byte, no duplicate
keys - so no duplicate alias -, finite numbers, no NUL bytes), and never echo
a value that looks like a key: :func:`load_models` masks ``sk-...`` and long
random tokens in every message (``results.redact.mask_secrets``), in case a key was
typed where its variable's name belongs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import urlsplit

from pytest_agentbench._schema import (
    Where,
    check_keys,
    check_no_nul,
    get_bool,
    get_mapping,
    get_number,
    get_str,
    load_yaml_mapping,
    type_name,
)
from pytest_agentbench.errors import FAILURE_CLASSES, ConfigError, FailureClass, ModelsFileError
from pytest_agentbench.models.parsers import validate_parser_names as _validate_parsers
from pytest_agentbench.models.taxonomy import DEFAULT_RETRIES, NEVER_RETRIED, RetryPolicy
from pytest_agentbench.results.redact import mask_secrets

if TYPE_CHECKING:
    from pytest_agentbench.capacity.cost import CostSpec
    from pytest_agentbench.capacity.slo import Slo

Engine = Literal["vllm", "scripted"]
ENGINES: tuple[Engine, ...] = get_args(Engine)
_ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

_ALIAS_KEYS = {
    "model",
    "base_url",
    "api_key_env",
    "tool_parser",
    "reasoning_parser",
    "serve",
    "cost",
    "stream",
    "temperature",
    "max_tokens",
    "timeout_s",
    "retries",
    "system_role",
    "strict_tools",
    "extra_body",
    "description",
    "test_double",
    "tool_choice",
    "destream",
    "license",
    "slo",
}
_LICENSE_KEYS = ("id", "package", "url")
_LICENSE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
_SERVE_KEYS = {
    "engine",
    "script",
    "model_path",
    "devices",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "distributed_executor_backend",
    "ray_address",
    "args",
    "env",
    "startup_timeout_s",
    "python",
}
_RETRY_KEYS = ("attempts", "backoff_s", "max_backoff_s", "honour_retry_after")
#: Longest timeout accepted (a week): larger values overflow the OS's timers.
MAX_TIMEOUT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class ServeConfig:
    """An alias's ``serve:`` block: the server the plugin starts for it, validated at load."""

    engine: Engine = "vllm"
    script: str | None = None  # scripted: the replay script (absolute once loaded)
    model_path: str | None = None  # vllm: what it loads (absolute once loaded); None: the alias's model
    devices: str | int | None = None  # "0", "0,1" or "MIG-<uuid>"
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None  # stages over nodes (with the ray backend) or over devices
    distributed_executor_backend: str | None = None  # mp | uni | ray (ray: a server over a Ray cluster's nodes)
    ray_address: str | None = None  # the cluster vLLM joins (RAY_ADDRESS); None: the one on this machine
    args: Mapping[str, Any] = field(default_factory=dict)  # vLLM flags
    env: Mapping[str, Any] = field(default_factory=dict)
    startup_timeout_s: float | None = None
    python: str | None = None  # the interpreter that runs vLLM


@dataclass(frozen=True)
class LicenseDeclaration:
    """An alias's ``license:``: the licence as the file states it, or the package whose metadata holds it.

    ``license: apache-2.0`` or ``{id: gemma, url: ...}`` *declares* a licence (the
    screening says it was declared, not found); ``{package: NAME}`` names the
    installed distribution that carries the weights, whose metadata the screening reads.
    """

    id: str | None = None
    package: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One alias, resolved from ``models.yaml``."""

    alias: str
    model: str
    source: Path  # the models.yaml it came from
    base_url: str | None = None
    api_key_env: str | None = None
    tool_parser: str = "openai"
    reasoning_parser: str | None = None
    serve: ServeConfig | None = None
    cost: CostSpec | None = None  # None: no cost: mapping (cost unknown, not $0)
    cost_raw: dict[str, Any] = field(default_factory=dict)  # the cost: mapping as written, kept in records
    stream: bool = False
    destream: bool = False  # the gateway asks without streaming and re-emits the answer as SSE (serving.gateway)
    temperature: float | None = 0.0  # None: send none (some commercial models accept only their default)
    max_tokens: int | None = None
    timeout_s: float = 300.0
    retries: Mapping[FailureClass, RetryPolicy] = field(default_factory=lambda: dict(DEFAULT_RETRIES))
    system_role: str = "system"  # system | user (fold the system prompt into the first user turn)
    strict_tools: bool = False
    tool_choice: str | None = None  # auto | required | none; None: the server's default
    extra_body: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    test_double: bool = False  # a scripted replay server, not a model: reports say so
    unresolved: tuple[str, ...] = ()  # ${VAR}s that were unset when the file was read
    license: LicenseDeclaration | None = None  # None: not stated in models.yaml (the screening looks elsewhere)
    slo: Slo | None = None  # slo: the service level capacity commands judge this alias by (capacity.slo)

    @property
    def where(self) -> str:
        return f"{self.source}: models.{self.alias}"

    def check_usable(self) -> None:
        """Raise if this alias cannot be used as configured (unset variables, no endpoint, no key)."""
        if self.unresolved:
            raise ModelsFileError(
                f"{self.where}: environment variable(s) {', '.join(self.unresolved)} are not set; "
                f"export them or choose another alias"
            )
        if self.base_url is None and self.serve is None:
            raise ModelsFileError(
                f"{self.where}: needs 'base_url' (an existing endpoint) or 'serve' (a server the plugin starts)"
            )
        if self.api_key_env and not os.environ.get(self.api_key_env):
            raise ModelsFileError(
                f"{self.where}: api_key_env names {self.api_key_env!r}, which is not set "
                f"in the environment; export {self.api_key_env}=... or choose another alias"
            )

    def for_repeat(self, repeat: int) -> ModelSpec:
        """This alias for trial ``repeat`` (1-based) of ``--repeats``: a ``seed`` in ``extra_body`` becomes
        ``seed + repeat - 1``, so the trials are independent draws and each stays reproducible (the record's
        ``sampling.seed`` is the one sent). Without a seed, or for the first trial, the spec itself."""
        seed = self.extra_body.get("seed")
        if repeat <= 1 or not isinstance(seed, int) or isinstance(seed, bool):
            return self
        return dataclasses.replace(self, extra_body={**self.extra_body, "seed": seed + repeat - 1})

    def api_key(self) -> str:
        """The secret, read from the environment at call time; never stored on the spec."""
        if self.api_key_env:
            return os.environ.get(self.api_key_env, "")
        return "agentbench-no-key"


def _expand(value: Any, missing: set[str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ and os.environ[name] != "":
                return os.environ[name]
            if default is not None:
                return default
            missing.add(name)
            return m.group(0)

        return _VAR_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, missing) for v in value]
    return value


def validate_parser_names(tool_parser: str | None, reasoning: str | None, where: str) -> None:
    try:
        _validate_parsers(tool_parser, reasoning, where)
    except ConfigError as exc:
        raise ModelsFileError(str(exc)) from None


def parse_retries(raw: Mapping[Any, Any], where: str) -> dict[FailureClass, RetryPolicy]:
    """An alias's ``retries:`` over the defaults; bad keys name the file and the fix.

    *where* locates the mapping in messages, e.g. ``"models.yaml: models.local-coder.retries"``.
    """
    policies = dict(DEFAULT_RETRIES)
    for cls, value in raw.items():
        if cls not in FAILURE_CLASSES:
            raise ModelsFileError(
                f"{where}: unknown failure class {cls!r}; expected one of {', '.join(FAILURE_CLASSES)}"
            )
        policies[cls] = _retry_policy(value, policies[cls], f"{where}.{cls}")
        if cls in NEVER_RETRIED and policies[cls].attempts:
            raise ModelsFileError(f"{where}.{cls}: {cls} is never retried (a refused key stays refused); remove it")
    return policies


def _retry_policy(value: Any, default: RetryPolicy, where: str) -> RetryPolicy:
    """One class's policy: a number of attempts, or a mapping of RetryPolicy fields over ``default``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"attempts": value}
    if not isinstance(value, dict):
        raise ModelsFileError(f"{where}: expected a number of attempts or a mapping with {', '.join(_RETRY_KEYS)}")
    unknown = set(value) - set(_RETRY_KEYS)
    if unknown:
        raise ModelsFileError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(_RETRY_KEYS)}"
        )
    for key in ("attempts", "backoff_s", "max_backoff_s"):
        number = value.get(key)
        if key in value and (isinstance(number, bool) or not isinstance(number, (int, float))):
            raise ModelsFileError(f"{where}.{key}: expected a number, found {type_name(number)} ({number!r})")
        if key in value and not math.isfinite(number):
            raise ModelsFileError(f"{where}.{key}: expected a finite number, found {number!r}")
    if "attempts" in value and not isinstance(value["attempts"], int):
        raise ModelsFileError(f"{where}.attempts: expected a whole number of attempts, found {value['attempts']!r}")
    try:
        policy = RetryPolicy(**{**default.__dict__, **value})
    except TypeError as exc:
        raise ModelsFileError(f"{where}: {exc}") from None
    if policy.attempts < 0 or policy.backoff_s < 0:
        raise ModelsFileError(f"{where}: attempts and backoff_s must be >= 0")
    return policy


def _load_serve(raw: dict[str, Any], where: Where, base: Path) -> ServeConfig:
    check_keys(raw, where, required=set(), optional=_SERVE_KEYS)
    engine = get_str(raw, "engine", where, "vllm")
    if engine not in ENGINES:
        raise (where / "engine").fail(f"expected one of {', '.join(ENGINES)}, found {engine!r}")
    script = raw.get("script")
    if engine == "scripted":
        script = get_str(raw, "script", where, required=True) or ""
        path = (base / script).resolve()
        if not path.exists():
            raise (where / "script").fail(f"script {script!r} not found (looked for {path})")
        script = str(path)
    args, env = get_mapping(raw, "args", where), get_mapping(raw, "env", where)
    get_number(raw, "startup_timeout_s", where, None, minimum=1, maximum=MAX_TIMEOUT_S)
    get_number(raw, "tensor_parallel_size", where, None, integer=True, minimum=1)
    get_number(raw, "pipeline_parallel_size", where, None, integer=True, minimum=1)
    distributed = _load_distributed(raw, where)
    if raw.get("devices") is not None and not isinstance(raw["devices"], (str, int)):
        raise (where / "devices").fail(
            f'expected a string like "0", "0,1" or "MIG-<uuid>", found {type_name(raw["devices"])}'
        )
    if isinstance(raw.get("devices"), str):
        check_no_nul(raw["devices"], where / "devices")
    model_path = get_str(raw, "model_path", where, None)
    if model_path is not None and not model_path.startswith("/"):
        model_path = str((base / model_path).resolve())
    return ServeConfig(
        engine=engine,
        script=script,
        model_path=model_path,
        devices=raw.get("devices"),
        tensor_parallel_size=raw.get("tensor_parallel_size"),
        pipeline_parallel_size=raw.get("pipeline_parallel_size"),
        **distributed,
        args=args,
        env=env,
        startup_timeout_s=raw.get("startup_timeout_s"),
        python=get_str(raw, "python", where, None),
    )


def _load_distributed(raw: dict[str, Any], where: Where) -> dict[str, Any]:
    """``distributed_executor_backend`` (mp | uni | ray) and ``ray_address`` (the ray backend's cluster)."""
    backend = get_str(raw, "distributed_executor_backend", where, None)
    if backend is not None and backend not in ("mp", "uni", "ray"):
        raise (where / "distributed_executor_backend").fail(
            "expected mp (one node, a worker process per device), uni (one device, the model in the engine's own "
            f"process) or ray (tensor x pipeline parallel over a Ray cluster's nodes), found {backend!r}"
        )
    address = get_str(raw, "ray_address", where, None)
    if address is not None and backend != "ray":
        raise (where / "ray_address").fail(
            "needs distributed_executor_backend: ray (vLLM joins a Ray cluster only with that backend)"
        )
    if backend == "ray" and raw.get("devices") is not None:
        raise (where / "devices").fail(
            "not used with distributed_executor_backend: ray: the Ray cluster assigns every node's GPUs (ray start "
            "--num-gpus=N); remove devices and set tensor_parallel_size (GPUs per node) x pipeline_parallel_size"
        )
    return {"distributed_executor_backend": backend, "ray_address": address}


def _check_alias(alias: str, raw: Any, where: Where) -> None:
    if not _ALIAS_RE.match(alias):
        raise where.fail(
            f"alias {alias!r} is not valid: use letters, digits, '.', '_', '-' (it becomes part of test ids)"
        )
    if not isinstance(raw, dict):
        raise where.fail(f"expected a mapping with at least 'model', found {type_name(raw)}")
    check_keys(raw, where, required={"model"}, optional=_ALIAS_KEYS - {"model"})


def _load_endpoint(data: dict[str, Any], raw: dict[str, Any], where: Where) -> dict[str, Any]:
    """``serve``, ``base_url`` and ``api_key_env``: where the alias is reached, and with which key."""
    serve_raw = data.get("serve")
    serve = None
    if serve_raw is not None:
        if not isinstance(serve_raw, dict):
            raise (where / "serve").fail(f"expected a mapping, found {type_name(serve_raw)}")
        serve = _load_serve(serve_raw, where / "serve", Path(where.file).parent)
    base_url = get_str(data, "base_url", where, None)
    if base_url is not None and not _VAR_RE.search(base_url):
        _check_url(base_url, raw.get("base_url"), where / "base_url")
    if base_url is None and serve is None:
        raise where.fail(
            "needs 'base_url' (an existing OpenAI-compatible endpoint) or 'serve' (a server the plugin starts)"
        )
    api_key_env = get_str(raw, "api_key_env", where, None)  # the *name*, never expanded
    if api_key_env is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", api_key_env):
        raise (where / "api_key_env").fail(
            f"expected the NAME of an environment variable (e.g. OPENAI_API_KEY),"
            f" found {api_key_env!r} - never put the key itself in models.yaml"
        )
    return {"serve": serve, "base_url": base_url.rstrip("/") if base_url else None, "api_key_env": api_key_env}


def _check_url(url: str, written: Any, where: Where) -> None:
    """An http(s) URL with a host and a usable port, checked here and not when the first call fails."""
    origin = f" (from {written!r})" if written != url else ""
    example = "expected an http(s) URL such as http://127.0.0.1:8000/v1"
    if not re.match(r"^https?://", url):
        raise where.fail(f"{example}, found {url!r}{origin}")
    if re.search(r"\s", url):
        raise where.fail(f"{url!r}{origin} contains white space: {example}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # e.g. "Port out of range 0-65535"
        raise where.fail(f"{url!r}{origin} is not a usable URL ({exc}): give a port from 1 to 65535") from None
    if not parts.hostname:
        raise where.fail(f"{url!r}{origin} names no host: {example}")
    if port == 0:
        raise where.fail(f"{url!r}{origin}: port 0 cannot be connected to: give a port from 1 to 65535")


def _load_chat_options(data: dict[str, Any], where: Where) -> dict[str, Any]:
    """``tool_choice`` and ``system_role``: how requests are shaped for the alias's template."""
    tool_choice = get_str(data, "tool_choice", where, None)
    if tool_choice not in (None, "auto", "required", "none"):
        raise (where / "tool_choice").fail(f"expected auto, required or none, found {tool_choice!r}")
    system_role = get_str(data, "system_role", where, "system")
    if system_role not in ("system", "user"):
        raise (where / "system_role").fail(f"expected 'system' or 'user', found {system_role!r}")
    return {"tool_choice": tool_choice, "system_role": system_role or "system"}


def _load_cost(data: dict[str, Any], where: Where) -> dict[str, Any]:
    """``cost``: the parsed price (validated here, once) and the mapping as written."""
    from pytest_agentbench.capacity.cost import parse_cost_spec

    cost = get_mapping(data, "cost", where)
    return {"cost": parse_cost_spec(cost, str(where / "cost"), error=ModelsFileError), "cost_raw": dict(cost)}


def _load_license(data: dict[str, Any], where: Where) -> LicenseDeclaration | None:
    """``license: ID`` or ``license: {id: ID, url: URL}`` or ``license: {package: DIST}``."""
    raw = data.get("license")
    if raw is None:
        return None
    at = where / "license"
    if isinstance(raw, str):
        raw = {"id": raw}
    if not isinstance(raw, dict):
        raise at.fail(
            f"expected a licence id (e.g. apache-2.0) or a mapping with id, package or url, found {type_name(raw)}"
        )
    check_keys(raw, at, required=set(), optional=set(_LICENSE_KEYS))
    declared = LicenseDeclaration(**{key: get_str(raw, key, at, None) for key in _LICENSE_KEYS})
    if (declared.id is None) == (declared.package is None):
        raise at.fail(
            "give exactly one of id (the licence, e.g. apache-2.0) or package (the installed distribution "
            "whose metadata states it)"
        )
    if declared.id is not None and not _LICENSE_ID_RE.match(declared.id):
        raise (at / "id").fail(
            f"{declared.id!r} is not a licence id: use the model card's id (apache-2.0, mit, gemma, "
            "llama3.1, other, proprietary, ...), without spaces"
        )
    if declared.url is not None and not re.match(r"^https?://\S+$", declared.url):
        raise (at / "url").fail(f"expected an http(s) URL of the licence text, found {declared.url!r}")
    return declared


def _load_slo(data: dict[str, Any], where: Where) -> Slo | None:
    """``slo``: parsed here, once, with strict keys (``capacity.slo.SLO_KEYS``)."""
    from pytest_agentbench.capacity.slo import slo_from_mapping

    if data.get("slo") is None:
        return None
    return slo_from_mapping(get_mapping(data, "slo", where), str(where / "slo"), error=ModelsFileError)


def _load_alias(alias: str, raw: Any, where: Where) -> ModelSpec:
    _check_alias(alias, raw, where)
    missing: set[str] = set()
    data = _expand(raw, missing)
    tool_parser = get_str(data, "tool_parser", where, "openai")
    reasoning = get_str(data, "reasoning_parser", where, None)
    validate_parser_names(tool_parser, reasoning, str(where))
    endpoint = _load_endpoint(data, raw, where)
    chat = _load_chat_options(data, where)
    cost = _load_cost(data, where)
    retries = get_mapping(data, "retries", where)
    serve = endpoint["serve"]
    return ModelSpec(
        alias=alias,
        model=get_str(data, "model", where, required=True) or "",
        source=Path(where.file),
        tool_parser=tool_parser or "openai",
        reasoning_parser=reasoning,
        **endpoint,
        **cost,
        stream=get_bool(data, "stream", where, False),
        destream=get_bool(data, "destream", where, False),
        temperature=None
        if "temperature" in data and data["temperature"] is None
        else get_number(data, "temperature", where, 0.0, minimum=0),
        max_tokens=get_number(data, "max_tokens", where, None, integer=True, minimum=1),
        timeout_s=float(get_number(data, "timeout_s", where, 300.0, minimum=0.1, maximum=MAX_TIMEOUT_S)),
        **chat,
        strict_tools=get_bool(data, "strict_tools", where, False),
        extra_body=get_mapping(data, "extra_body", where),
        description=get_str(data, "description", where, "") or "",
        test_double=get_bool(data, "test_double", where, False) or bool(serve and serve.engine == "scripted"),
        unresolved=tuple(sorted(missing)),
        license=_load_license(data, where),
        slo=_load_slo(data, where),
        retries=parse_retries(retries, str(where / "retries")),  # last: today's order of messages
    )


def load_models(path: Path | str) -> dict[str, ModelSpec]:
    """Read and validate a ``models.yaml``; returns aliases in file order.

    Raises :class:`ModelsFileError` naming the file, the key and the fix, with key-looking values masked.
    """
    path = Path(path)
    try:
        return _load_models(path)
    except ModelsFileError as exc:
        raise ModelsFileError(mask_secrets(str(exc), keep=[str(path)])) from None


def _load_models(path: Path) -> dict[str, ModelSpec]:
    where = Where(path, error=ModelsFileError)
    data = load_yaml_mapping(path, where)
    check_keys(data, where, required={"models"}, optional={"defaults"})
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise (where / "models").fail(f"expected a non-empty mapping of alias -> settings, found {type_name(models)}")
    defaults = get_mapping(data, "defaults", where)
    specs: dict[str, ModelSpec] = {}
    for alias, raw in models.items():
        if not isinstance(alias, str):
            raise (where / "models").fail(
                f"alias {alias!r} is {type_name(alias)}: an alias is a name such as local-coder"
            )
        merged = {**defaults, **raw} if isinstance(raw, dict) else raw
        specs[str(alias)] = _load_alias(str(alias), merged, where / "models" / str(alias))
    return specs


def select(specs: dict[str, ModelSpec], aliases: list[str], source: Path | str) -> list[ModelSpec]:
    """The specs for ``aliases``, in the order given; an unknown alias lists the known ones."""
    unknown = [a for a in aliases if a not in specs]
    if unknown:
        raise ModelsFileError(
            f"--models: unknown alias(es) {', '.join(map(repr, unknown))} - {source} defines: {', '.join(specs)}"
        )
    return [specs[a] for a in aliases]


def select_usable(
    models_file: Path | str, aliases: Sequence[str], *, known: dict[str, ModelSpec] | None = None
) -> list[ModelSpec]:
    """The run's models: ``aliases`` from ``models_file``, each usable, servers on disjoint devices.

    ``known``: the file's aliases when the caller has loaded it already (it is parsed once).
    Raises ``ModelsFileError`` / ``ConfigError`` with the message to show the user.
    """
    specs = select(load_models(models_file) if known is None else known, list(aliases), models_file)
    for spec in specs:
        spec.check_usable()
    check_disjoint_devices(specs)
    return specs


def check_disjoint_devices(specs: list[ModelSpec]) -> None:
    """Never two servers on one GPU by accident: servers started in one run need disjoint devices."""
    owner: dict[str, str] = {}
    for spec in specs:
        devices = spec.serve.devices if spec.serve else None
        if spec.serve is None or spec.serve.engine != "vllm" or devices is None:
            continue
        for device in str(devices).replace(" ", "").split(","):
            if device in owner:
                raise ConfigError(
                    f"--models: aliases {owner[device]!r} and {spec.alias!r} would both start a "
                    f"server on device {device!r}; give them disjoint serve.devices (or MIG "
                    "slices), or run them in separate pytest runs"
                )
            owner[device] = spec.alias
