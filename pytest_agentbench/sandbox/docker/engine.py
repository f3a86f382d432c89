"""The Docker engine as the docker backend sees it: the SDK, the connection, and stale containers.

This module owns importing the ``docker`` SDK lazily (a missing SDK is a
``SandboxError`` naming ``pip install 'pytest-agentbench[docker]'``),
which engine a sandbox talks to (:func:`engine_host`: ``--docker-host`` >
``$DOCKER_HOST`` > the local socket; ``unix://``, ``tcp://`` or ``ssh://``,
checked by :func:`check_docker_host`), connecting to it (:func:`connect`;
TLS from ``$DOCKER_TLS_VERIFY`` / ``$DOCKER_CERT_PATH`` as the docker CLI
reads them; ``ssh://`` through the ``ssh`` binary, so no paramiko), telling
whether one answers (:func:`docker_available`) and starting one with
``scripts/docker-up`` (:func:`start_engine`), turning the SDK's exceptions into
``SandboxError`` (:func:`sdk_errors`), and the labels every sandbox container
carries (run id, owning pid, host), with which :func:`reap_stale_containers`
removes the containers whose owner died; each process reaps once, before its
first sandbox (:func:`reap_once`).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

from pytest_agentbench.errors import ConfigError, SandboxError
from pytest_agentbench.sandbox.host import pid_alive
from pytest_agentbench.sandbox.image import script_path

LABEL_RUN = "agentbench.run"
LABEL_PID = "agentbench.pid"
LABEL_HOST = "agentbench.host"
PIP_FIX = "pip install 'pytest-agentbench[docker]'"
ENGINE_FIX = "run scripts/docker-up (it installs and starts dockerd)"


# -- the SDK, lazily -------------------------------------------------------
def _import_docker() -> Any:
    try:
        import docker
    except ImportError:
        raise SandboxError(f"the docker sandbox needs the docker SDK: {PIP_FIX}")
    return docker


#: The engine URL schemes a sandbox can talk to (the docker CLI's DOCKER_HOST forms, less Windows pipes).
HOST_SCHEMES = ("unix", "tcp", "ssh")
_HOST_RE = re.compile(r"^(unix://(/[^\s]*)|tcp://[^\s/]+(:\d+)?/?|ssh://[^\s/]+(:\d+)?/?)$")


def check_docker_host(url: str, where: str = "--docker-host") -> str:
    """``url`` if it is an engine address the SDK can reach (``unix:///path``, ``tcp://HOST:PORT``,
    ``ssh://[USER@]HOST[:PORT]``), else ConfigError naming ``where`` and the forms."""
    text = url.strip()
    if not _HOST_RE.match(text):
        raise ConfigError(
            f"{where}: {url!r} is not a Docker engine address; expected unix:///var/run/docker.sock, "
            "tcp://HOST:PORT (TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) or ssh://USER@HOST"
        )
    return text


def engine_host(docker_host: str | None = None) -> str | None:
    """The engine a sandbox talks to: ``docker_host`` (``--docker-host``) > ``$DOCKER_HOST`` > None (the
    local socket, the SDK's default)."""
    return docker_host or os.environ.get("DOCKER_HOST") or None


def connect(docker_host: str | None = None) -> Any:
    """A ``docker.DockerClient`` for ``docker_host`` (else the environment's engine), or SandboxError naming the fix."""
    docker = _import_docker()
    host = engine_host(docker_host)
    environment = dict(os.environ)
    if host:
        environment["DOCKER_HOST"] = host
    try:
        return docker.from_env(
            timeout=60, environment=environment, use_ssh_client=bool(host and host.startswith("ssh://"))
        )
    except docker.errors.DockerException as exc:
        where = f" at {host}" if host else ""
        raise SandboxError(f"no Docker engine answers{where} ({exc}): {_engine_fix(host)}")


def _engine_fix(host: str | None) -> str:
    if host:
        return (
            "start an engine listening there (dockerd -H URL), point --docker-host / DOCKER_HOST at one that runs, "
            f"or unset them and {ENGINE_FIX}"
        )
    return ENGINE_FIX


def docker_available(docker_host: str | None = None) -> tuple[bool, str]:
    """``(True, what answered)`` if the engine answers, else ``(False, why and the fix)``."""
    try:
        client = connect(docker_host)
    except SandboxError as exc:
        return False, str(exc)
    try:
        version = client.version().get("Version", "?")
        return True, f"Docker engine {version} at {client.api.base_url}"
    except Exception as exc:  # any failure to answer is "not available", with the reason
        return False, f"the Docker engine does not answer ({exc}): {_engine_fix(engine_host(docker_host))}"
    finally:
        client.close()


def start_engine(timeout_s: float = 300) -> tuple[bool, str]:
    """If no engine answers, run ``scripts/docker-up`` (installs and starts dockerd); then as docker_available."""
    ok, why = docker_available()
    if ok:
        return ok, why
    try:
        done = subprocess.run([str(script_path("docker-up"))], capture_output=True, text=True, timeout=timeout_s)
    except (SandboxError, OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{why}; starting one failed: {exc}"
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        return False, f"{why}; scripts/docker-up failed:\n{tail}"
    return docker_available()


@contextlib.contextmanager
def sdk_errors(what: str) -> Iterator[None]:
    """Turn the SDK's (and requests') exceptions into SandboxError naming ``what`` failed."""
    docker = _import_docker()
    import requests

    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"docker sandbox: {what} failed: {exc} (is the engine up? {ENGINE_FIX})")


# -- stale containers --------------------------------------------------------
def reap_stale_containers(client: Any) -> list[str]:
    """Remove sandbox containers of this host whose owning process is dead; return their ids."""
    host = socket.gethostname()
    removed: list[str] = []
    with sdk_errors("listing sandbox containers"):
        containers = client.containers.list(all=True, filters={"label": LABEL_PID})
    for container in containers:
        labels = container.labels or {}
        if labels.get(LABEL_HOST) != host:
            continue
        try:
            pid = int(labels[LABEL_PID])
        except (KeyError, ValueError):
            continue
        if not pid_alive(pid):
            remove_container(client, container.id)
            removed.append(container.id)
    return removed


_reaped = False
_reap_lock = threading.Lock()


def reap_once(client: Any) -> None:
    """:func:`reap_stale_containers`, the first time this process calls it."""
    global _reaped
    with _reap_lock:
        if not _reaped:
            reap_stale_containers(client)
            _reaped = True


def release(client: Any, container_id: str, close_client: bool) -> None:
    """Remove the container, then close the client if the sandbox made it (finalizer: never raises)."""
    remove_container(client, container_id)
    if close_client:
        with contextlib.suppress(Exception):
            client.close()


def remove_container(client: Any, container_id: str) -> None:
    """Force-remove; a container already gone is fine. Never raises (runs from finalizers)."""
    try:
        client.api.remove_container(container_id, force=True)
    except Exception:
        pass
