"""Sandboxes: where the agent's commands and the gates run.

base.py       the Sandbox protocol, ExecResult, SandboxInfo, path confinement
local.py      the local backend (a temp copy, own process group, no network where allowed)
docker/       the Docker backend: engine, exec stream, shell scripts, DockerSandbox
image.py      the agentbench-base image, built without a registry and cached by recipe hash
git.py        the workspace's git set-up, shared by both backends
contract/     the sandbox contract as library code: any backend can prove itself against it
kinds.py      the sandbox kinds a user can ask for
"""

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
