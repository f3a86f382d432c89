"""Which agents a run can use, by name: the built-in loop, the built-in adapters, ``agents.yaml``. pytest-free.

``--agent NAME[,NAME]`` (ini ``agentbench_agents``; default ``builtin``) picks from:

* ``builtin``: the package's own loop (``agents.loop``), no gateway needed;
* the adapters this package ships (:data:`BUILTIN_ADAPTERS`): ``mini-swe-agent``, ``aider``,
  ``codex``, ``claude-code`` - each pins its agent's version and installs it into the docker
  sandbox's image;
* ``command``: the template in ``--agent-command`` / ini ``agentbench_agent_command``
  (:mod:`.command`);
* every agent named in ``agents.yaml`` (``--agents-file``, ini ``agentbench_agents_file``;
  default ``agents.yaml`` in the rootdir when there is one)::

      agents:
        my-agent:
          command: "my-agent --task-file {prompt_file} --api-base {base_url} --model {model}"
          protocol: chat            # chat | responses | messages (default chat)
          version: "1.4.2"          # recorded with every run (default "unversioned")
          env: {MY_AGENT_QUIET: "1"}
          install: {pip: ["my-agent==1.4.2"], npm: [], bins: [my-agent]}   # optional: built into the image
        mini-pinned:                # a built-in adapter at another version
          adapter: mini-swe-agent
          version: "2.4.5"

Every mistake is a ConfigError naming the file and key (or the option) and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import Any

import yaml

from pytest_agentbench.agents.external.adapter import AgentAdapter, AgentInstall
from pytest_agentbench.agents.external.command import CommandAdapter, check_template
from pytest_agentbench.errors import ConfigError, UsageError
from pytest_agentbench.results.cells import BUILTIN_AGENT

__all__ = ["AGENTS_FILE", "BUILTIN", "BUILTIN_ADAPTERS", "AgentRegistry", "load_agents_file"]

BUILTIN = BUILTIN_AGENT
AGENTS_FILE = "agents.yaml"
#: name -> "module:factory" of the adapters this package ships (loaded on first use).
BUILTIN_ADAPTERS: dict[str, str] = {
    "mini-swe-agent": "pytest_agentbench.agents.external.mini_swe_agent:MiniSweAgent",
    "aider": "pytest_agentbench.agents.external.aider:Aider",
    "codex": "pytest_agentbench.agents.external.codex:CodexAgent",
    "claude-code": "pytest_agentbench.agents.external.claude_code:ClaudeCode",
}
_PROTOCOLS = ("chat", "responses", "messages")
_ENTRY_KEYS = {"command", "protocol", "version", "env", "install", "adapter"}


def _builtin(name: str, version: str | None = None) -> AgentAdapter:
    module, _, factory = BUILTIN_ADAPTERS[name].partition(":")
    try:
        cls: Callable[..., AgentAdapter] = getattr(import_module(module), factory)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--agent={name}: its adapter is not in this build of pytest-agentbench ({exc})") from None
    return cls(version=version) if version else cls()


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings, found {value!r}")
    return tuple(value)


def _install(value: Any, name: str, where: str) -> AgentInstall | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not set(value) <= {"pip", "npm", "bins"}:
        raise ConfigError(f"{where}: expected a mapping with pip, npm and bins lists, found {value!r}")
    pip, npm = _strings(value.get("pip"), f"{where}.pip"), _strings(value.get("npm"), f"{where}.npm")
    if not (pip or npm):
        raise ConfigError(f"{where}: gives no pip or npm package to install; remove it or list the packages")
    try:
        return AgentInstall(name=name, pip=pip, npm=npm, bins=_strings(value.get("bins"), f"{where}.bins"))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _entry(name: str, data: Any, where: str) -> AgentAdapter:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping (command, protocol, version, env, install), found {data!r}")
    unknown = sorted(set(data) - _ENTRY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_ENTRY_KEYS))}")
    version = data.get("version")
    if version is not None and (not isinstance(version, str | int | float) or not str(version).strip()):
        raise ConfigError(f"{where}.version: expected a version string, found {version!r}")
    if "adapter" in data:
        base = data["adapter"]
        if base not in BUILTIN_ADAPTERS or "command" in data:
            raise ConfigError(
                f"{where}.adapter: expected one of {', '.join(BUILTIN_ADAPTERS)} (and no command), found {base!r}"
            )
        return replace(_builtin(base, str(version) if version else None), name=name)  # type: ignore[type-var]
    if "command" not in data:
        raise ConfigError(f'{where}: gives no command; add command: "my-agent {{prompt_file}}" (or adapter: NAME)')
    protocol = data.get("protocol", "chat")
    if protocol not in _PROTOCOLS:
        raise ConfigError(f"{where}.protocol: expected one of {', '.join(_PROTOCOLS)}, found {protocol!r}")
    env = data.get("env") or {}
    if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str | int) for k, v in env.items()):
        raise ConfigError(f"{where}.env: expected a mapping of names to strings, found {env!r}")
    return CommandAdapter(
        template=check_template(data["command"], f"{where}.command"),
        name=name,
        version=str(version) if version is not None else "unversioned",
        protocol=protocol,
        install=_install(data.get("install"), name, f"{where}.install"),
        extra_env=tuple((k, str(v)) for k, v in env.items()),
    )


def load_agents_file(path: Path) -> dict[str, AgentAdapter]:
    """The named agents of an ``agents.yaml`` (see the module docstring)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the agents file ({exc.strerror}); check --agents-file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}); fix the file") from None
    agents = data.get("agents") if isinstance(data, Mapping) else None
    if not isinstance(agents, Mapping) or not agents:
        raise ConfigError(f"{path}: expected a top-level 'agents:' mapping of names to agents")
    out: dict[str, AgentAdapter] = {}
    for name, entry in agents.items():
        where = f"{path}: agents.{name}"
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{where}: an agent name is letters, digits, '-' and '_' only")
        if name in (BUILTIN, "command"):
            raise ConfigError(f"{where}: {name!r} is reserved; choose another name")
        out[name] = _entry(name, entry, where)
    return out


class AgentRegistry:
    """The agents one session can name (built-in adapters, ``command``, an agents file)."""

    def __init__(self, agents_file: Path | None = None, command: str | None = None) -> None:
        self.agents_file = agents_file
        self.command = check_template(command, "--agent-command / ini agentbench_agent_command") if command else None
        self._named = load_agents_file(agents_file) if agents_file is not None else {}

    def names(self) -> list[str]:
        return [BUILTIN, *BUILTIN_ADAPTERS, "command", *self._named]

    def resolve(self, name: str) -> AgentAdapter | None:
        """The adapter of ``name`` (None: the built-in loop), or UsageError naming --agent and the choices."""
        if name == BUILTIN:
            return None
        if name in self._named:
            return self._named[name]
        if name == "command":
            if self.command is None:
                raise UsageError(
                    "--agent=command: no command given; pass --agent-command='my-agent {prompt_file}' "
                    "(ini agentbench_agent_command), or name the agent in agents.yaml"
                )
            return CommandAdapter(template=self.command)
        if name in BUILTIN_ADAPTERS:
            return _builtin(name)
        where = f" (agents file: {self.agents_file})" if self.agents_file else ""
        raise UsageError(f"--agent={name}: unknown agent{where}; known: {', '.join(self.names())}")
