"""An agent's install as part of a sandbox image (placeholder: the builder lands with the agent images).

:class:`AgentInstall` says what an external agent needs in the image: pip requirement specifiers
(installed into its own venv, never on the gates' Python path), npm package specs, and the
executables it provides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_agentbench.errors import SandboxError

__all__ = ["AgentInstall", "ensure_agent_image"]


@dataclass(frozen=True)
class AgentInstall:
    """What one agent needs in the sandbox image."""

    name: str  # folder /opt/agentbench/agents/<name> in the image
    pip: tuple[str, ...] = ()  # pinned requirement specifiers: ("mini-swe-agent==2.4.6",)
    npm: tuple[str, ...] = ()  # pinned npm specs: ("@openai/codex@0.63.0",)
    bins: tuple[str, ...] = ()  # executables the agent provides, linked into /usr/local/bin


def ensure_agent_image(client: Any, install: AgentInstall, docker_host: str | None = None) -> str:
    """The image of agentbench-base with ``install`` in it (the builder lands with the agent images)."""
    raise SandboxError(f"agent {install.name!r}: agent images cannot be built by this version yet")
