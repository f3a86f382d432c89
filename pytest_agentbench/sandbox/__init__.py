"""Sandboxes: where the agent's commands and the gates run.

base.py          the Sandbox protocol, ExecResult, SandboxInfo, path confinement
kinds.py         the sandbox kinds a user can ask for, and the isolation each gives
host.py          what the host-side sandboxes share: private temp folder, capture, kill, files, reaping
local.py         the local backend: every command in a bubblewrap sandbox
bwrap.py         local's bubblewrap command line, its limits, and whether it runs here
unsafe_local.py  the unsafe-local backend (a temp copy, own process group): explicit choice only
docker/          the Docker backend: engine, exec stream, shell scripts, DockerSandbox
image.py         the agentbench-base image, built without a registry and cached by recipe hash
agent_install.py what an external agent needs in its image (AgentInstall); docker/agent_image.py builds it:
                 agentbench-base + one external agent CLI (pip/npm from the host's registries), built offline
git.py           the workspace's git set-up, shared by every backend, and the host-made baseline
patch.py         the agent's patch (git diff against the packet as given), through any Sandbox
_patch_script.py the part of it that runs inside the sandbox
contract/        the sandbox contract as library code: any backend can prove itself against it
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_agentbench.errors import SandboxUnavailable

if TYPE_CHECKING:
    from pytest_agentbench.sandbox.agent_install import AgentInstall
    from pytest_agentbench.sandbox.base import Sandbox

# The backends load on first use: sandbox.kinds (imported by the plugin's options) must stay cheap.
_EXPORTS = {
    "DEFAULT_OUTPUT_CAP": "base",
    "ExecResult": "base",
    "Sandbox": "base",
    "SandboxInfo": "base",
    "confine": "base",
    "bwrap_status": "bwrap",
    "LocalSandbox": "local",
    "UnsafeLocalSandbox": "unsafe_local",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_OUTPUT_CAP",
    "ExecResult",
    "LocalSandbox",
    "Sandbox",
    "SandboxInfo",
    "UnsafeLocalSandbox",
    "bwrap_status",
    "confine",
    "docker_status",
    "make_sandbox",
    "resolve_kind",
]


def docker_status(docker_host: str | None = None) -> tuple[bool, str]:
    """(True, what answered) if the Docker engine (``docker_host``, else ``$DOCKER_HOST`` or the local socket)
    answers, else (False, why and how to start one)."""
    try:
        from pytest_agentbench.sandbox.docker import docker_available
    except ImportError as exc:
        return False, f"the Docker backend is not importable ({exc}); pip install 'pytest-agentbench[docker]'"
    return docker_available(docker_host)


_AUTO: dict[str | None, str] = {}  # docker host -> what auto resolved to, once per process


def resolve_kind(kind: str, docker_host: str | None = None) -> str:
    """The backend ``kind`` runs on (``auto`` resolved once per process and engine), or ``SandboxUnavailable``
    with the fix; ``docker_host`` is the engine the docker backend would use (``--docker-host``)."""
    if kind == "docker":
        ok, why = docker_status(docker_host)
        if not ok:
            raise SandboxUnavailable(f"--sandbox=docker: {why}")
    elif kind == "local":
        from pytest_agentbench.sandbox.bwrap import bwrap_status

        ok, why = bwrap_status()
        if not ok:
            raise SandboxUnavailable(f"--sandbox=local: {why}")
    elif kind == "auto":
        if docker_host not in _AUTO:
            _AUTO[docker_host] = _choose_auto(docker_host)
        return _AUTO[docker_host]
    elif kind != "unsafe-local":
        raise SandboxUnavailable(f"--sandbox={kind}: unknown kind; expected auto, docker, local or unsafe-local")
    return kind


def _choose_auto(docker_host: str | None) -> str:
    docker_ok, docker_why = docker_status(docker_host)
    if docker_ok:
        return "docker"
    from pytest_agentbench.sandbox.bwrap import bwrap_status

    local_ok, local_why = bwrap_status()
    if local_ok:
        return "local"
    raise SandboxUnavailable(f"--sandbox=auto: no sandbox can run here. docker: {docker_why}. local: {local_why}")


def make_sandbox(
    kind: str,
    workspace: Path,
    docker_host: str | None = None,
    *,
    install: AgentInstall | None = None,
    gateway_socket: str | Path | None = None,
) -> Sandbox:
    """A new sandbox of ``kind`` (auto | docker | local | unsafe-local) holding a copy of ``workspace``;
    ``docker_host``: the engine of the docker backend (``--docker-host``; None: ``$DOCKER_HOST`` or the local one).

    For an external agent: ``install`` is what its image needs (docker only: the image is built once and
    cached, ``sandbox.docker.agent_image``), ``gateway_socket`` the gateway's agent socket the sandbox mounts.
    """
    kind = resolve_kind(kind, docker_host) if kind == "auto" else kind
    socket = Path(gateway_socket) if gateway_socket is not None else None
    if install is not None and kind != "docker":
        raise SandboxUnavailable(
            f"--sandbox={kind}: agent {install.name!r} is installed into the docker sandbox's image; "
            "run it with --sandbox=docker (start an engine: scripts/docker-up)"
        )
    if kind == "docker":
        from pytest_agentbench.sandbox.docker import DockerSandbox

        return DockerSandbox(workspace, docker_host=docker_host, gateway_socket=socket, agent_install=install)
    if kind == "unsafe-local":
        from pytest_agentbench.sandbox.unsafe_local import UnsafeLocalSandbox

        return UnsafeLocalSandbox(workspace)
    if kind == "local":
        from pytest_agentbench.sandbox.local import LocalSandbox

        return LocalSandbox(workspace, gateway_socket=socket)
    raise SandboxUnavailable(f"--sandbox={kind}: unknown kind; expected auto, docker, local or unsafe-local")
