"""``--agent``: which agents every packet runs with, and the external agent of one trial.

    pytest --models=local-coder --agent=builtin,mini-swe-agent     # ini: agentbench_agents

Each selected agent parametrizes like an alias: ``test_packet[bugfix-median-local-coder-mini-swe-agent]``
(with only the built-in agent the ids are as they always were). A name is resolved once, at configure
(``agents.external.registry``: built-in adapters, ``command`` from ``--agent-command``, the agents of
``--agents-file``); a wrong one is a usage error naming the option and the choices. Any external agent
turns the measuring gateway on (it is the only way such an agent reaches its alias).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.plugin.settings import split_list

__all__ = ["AGENT_INIS", "AGENT_OPTIONS", "agent_settings", "external_agent", "resolve_agents"]

AGENT_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "--agent",
        dict(
            action="append",
            dest="agentbench_agents",
            metavar="NAME[,NAME]",
            help="agents to run every packet with: builtin, mini-swe-agent, aider, codex, claude-code, command, or "
            "a name from agents.yaml (ini: agentbench_agents; default: builtin)",
        ),
    ),
    (
        "--agent-command",
        dict(
            dest="agentbench_agent_command",
            metavar="TEMPLATE",
            help="the shell command of --agent=command, with {prompt_file} {base_url} {model} {max_turns} ... "
            "(ini: agentbench_agent_command)",
        ),
    ),
    (
        "--agents-file",
        dict(
            dest="agentbench_agents_file",
            metavar="PATH",
            help="the agents.yaml naming agent commands (ini: agentbench_agents_file; default: agents.yaml in the "
            "rootdir when there is one)",
        ),
    ),
)
AGENT_INIS: tuple[tuple[str, str, str | None, Any], ...] = (
    ("agentbench_agents", "agents to run every packet with (default builtin)", None, ""),
    ("agentbench_agent_command", "the shell command template of --agent=command", None, ""),
    ("agentbench_agents_file", "path of agents.yaml, relative to the ini file", None, ""),
)


def agent_settings(config: pytest.Config, ini_base: Path) -> dict[str, Any]:
    """Settings fields of the agent options (CLI > ini > default), not yet resolved to adapters."""
    from pytest_agentbench.agents.external.registry import AGENTS_FILE, BUILTIN

    opt = config.option
    agents = split_list(opt.agentbench_agents) or split_list(config.getini("agentbench_agents")) or (BUILTIN,)
    if opt.agentbench_agents_file:
        agents_file: Path | None = (config.invocation_params.dir / opt.agentbench_agents_file).resolve()
    elif config.getini("agentbench_agents_file"):
        agents_file = (ini_base / config.getini("agentbench_agents_file")).resolve()
    else:
        default = config.rootpath / AGENTS_FILE
        agents_file = default.resolve() if default.is_file() else None
    command = opt.agentbench_agent_command or config.getini("agentbench_agent_command") or None
    return {"agents": agents, "agents_file": agents_file, "agent_command": command}


def resolve_agents(settings: Any) -> dict[str, Any]:
    """name -> adapter (None for the built-in loop) of every selected agent; a usage error for a bad one."""
    from pytest_agentbench.agents.external.registry import AgentRegistry

    try:
        registry = AgentRegistry(settings.agents_file, settings.agent_command)
        agents = {name: registry.resolve(name) for name in settings.agents}
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    external = [name for name, adapter in agents.items() if adapter is not None]
    if external:
        _check_reach(settings, external)
        _check_sandbox(settings, {name: agents[name] for name in external})
    return agents


def _check_sandbox(settings: Any, external: dict[str, Any]) -> None:
    """An installed agent needs the docker sandbox (its image); any external agent a sandbox that mounts the
    gateway's socket (not unsafe-local). Said once, at start, not once per trial."""
    if settings.sandbox == "unsafe-local":
        raise pytest.UsageError(
            f"--agent={','.join(external)} with --sandbox=unsafe-local: an external agent reaches its model only "
            "through the gateway's socket, which unsafe-local does not mount; use --sandbox=docker (or local)"
        )
    installed = [name for name, adapter in external.items() if getattr(adapter, "install", None) is not None]
    if installed and settings.sandbox == "local":
        raise pytest.UsageError(
            f"--agent={','.join(installed)} with --sandbox=local: these agents are installed into the docker "
            "sandbox's image; use --sandbox=docker (start an engine: scripts/docker-up)"
        )


def _check_reach(settings: Any, external: list[str]) -> None:
    """External agents reach the gateway through its Unix socket, mounted into the sandbox: the sandbox must
    run on this machine. Refuse what cannot work rather than let every run fail."""
    import os
    from urllib.parse import urlparse

    names = ",".join(external)
    if settings.ray is not None:
        raise pytest.UsageError(
            f"--agent={names} with --ray: an external agent reaches its model through the gateway's Unix socket on "
            "this machine, which a Ray node cannot mount; run external agents without --ray (xdist: -n N)"
        )
    host = settings.docker_host or os.environ.get("DOCKER_HOST") or ""
    parsed = urlparse(host)
    if settings.sandbox in ("docker", "auto") and parsed.scheme in ("ssh", "tcp"):
        if parsed.scheme == "ssh" or parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise pytest.UsageError(
                f"--agent={names} with the Docker engine at {host}: the gateway's socket is on this machine and a "
                "remote engine cannot bind-mount it; use a local engine for external agents"
            )


def external_agent(state: Any, name: str, spec: Any) -> Any:
    """The ExternalAgent of one trial of ``spec`` with agent ``name`` (None: the built-in loop)."""
    adapter = state.agents.get(name)
    if adapter is None:
        return None
    from pytest_agentbench.agents.external.trial import ExternalAgent

    return ExternalAgent(adapter, state.gateway_client(), spec.alias, spec.model)
