"""Sandboxes: where the agent's commands and the gates run."""

from __future__ import annotations

from pathlib import Path

from pytest_agentbench.sandbox.base import DEFAULT_OUTPUT_CAP, ExecResult, Sandbox, SandboxInfo, confine
from pytest_agentbench.sandbox.local import LocalSandbox

__all__ = [
    "DEFAULT_OUTPUT_CAP",
    "ExecResult",
    "LocalSandbox",
    "Sandbox",
    "SandboxInfo",
    "confine",
    "docker_status",
    "make_sandbox",
]


def docker_status() -> tuple[bool, str]:
    """(True, "") if a Docker engine answers, else (False, why and how to start one)."""
    try:
        from pytest_agentbench.sandbox.docker import docker_available
    except ImportError as exc:
        return False, f"the Docker backend is not importable ({exc}); pip install 'pytest-agentbench[docker]'"
    return docker_available()


_AUTO: str | None = None


def make_sandbox(kind: str, workspace: Path) -> Sandbox:
    """A new sandbox of ``kind`` (auto | docker | local) holding a copy of ``workspace``."""
    global _AUTO
    if kind == "auto":
        if _AUTO is None:
            _AUTO = "docker" if docker_status()[0] else "local"
        kind = _AUTO
    if kind == "docker":
        from pytest_agentbench.sandbox.docker import DockerSandbox

        return DockerSandbox(workspace)
    return LocalSandbox(workspace)
