"""The docker sandbox itself: :class:`DockerSandbox`, one container per run.

This module owns the container's life and the ``Sandbox`` protocol on top of
it: creating the container (no network, memory/CPU/pids limits, no
capabilities, uid 1000, an init process, ``sleep infinity``) with the labels
that let a later process reap it, copying the workspace in as a tar owned by
the agent and making it a git repo, running each command as ``timeout -k
KILL_AFTER_S T sh -c WRAPPER argv...`` with a host-side deadline of
``T + KILL_AFTER_S + WATCHDOG_GRACE_S`` after which the container is killed
and restarted (files kept), killing every process a command left (``setsid``
ones included) when it ends, reading and writing files through the container's
shell, and removing the container on close, on an exception in the
constructor, or when the sandbox is collected unclosed. With a ``gateway_socket``, that socket's
folder is mounted read-only at ``GATEWAY_DIR``: the one way out of a container without network
(``serving.gateway.forwarder`` serves it on the container's loopback).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tarfile
import tempfile
import time
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pytest_agentbench.errors import PathRefused, SandboxError
from pytest_agentbench.sandbox.agent_install import AgentInstall
from pytest_agentbench.sandbox.base import DEFAULT_OUTPUT_CAP, GATEWAY_DIR, ExecResult, SandboxInfo, confine
from pytest_agentbench.sandbox.docker.agent_image import ensure_agent_image
from pytest_agentbench.sandbox.docker.engine import (
    LABEL_HOST,
    LABEL_PID,
    LABEL_RUN,
    connect,
    engine_host,
    reap_once,
    release,
    sdk_errors,
)
from pytest_agentbench.sandbox.docker.shell import (
    FIND_KEEPER,
    READ,
    WRAPPER,
    WRITE,
    head_and_tail,
    int_or_none,
    raise_wrapper_error,
    split_trailer,
)
from pytest_agentbench.sandbox.docker.stream import Raw, collect, exit_code, start_exec
from pytest_agentbench.sandbox.git import AGENT_IDENTITY, INIT_SCRIPT, SETUP_IDENTITY
from pytest_agentbench.sandbox.image import ensure_base_image

WORKSPACE = "/workspace"
AGENT_UID = 1000
KILL_AFTER_S = 2  # timeout's -k: SIGKILL this long after SIGTERM
WATCHDOG_GRACE_S = 5  # host deadline = T + KILL_AFTER_S + this
FILE_OP_TIMEOUT_S = 120.0
_ENV = {
    "HOME": "/home/agent",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "PYTHONDONTWRITEBYTECODE": "1",
    **AGENT_IDENTITY,
}


# -- the sandbox -------------------------------------------------------------
def _workspace_tar(src: Path, out: IO[bytes]) -> None:
    """Write ``src`` as a tar of ``.`` with every entry owned by the agent (uid/gid 1000)."""

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = AGENT_UID
        info.uname = info.gname = "agent"
        return info

    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(str(src), arcname=".", filter=owned)


class DockerSandbox:
    """One container per run: see the module docstring for what it contains."""

    def __init__(
        self,
        workspace_src: Path | None = None,
        *,
        memory: str = "2g",
        cpus: float = 1.0,
        pids: int = 256,
        output_cap: int = DEFAULT_OUTPUT_CAP,
        image: str | None = None,
        client: Any = None,
        run_id: str | None = None,
        docker_host: str | None = None,
        gateway_socket: Path | None = None,
        agent_install: AgentInstall | None = None,
    ) -> None:
        self.output_cap = output_cap
        self.gateway_socket = Path(gateway_socket) if gateway_socket is not None else None
        #: the gateway's socket as commands inside see it (its folder mounted read-only), else None
        self.gateway_socket_inside = f"{GATEWAY_DIR}/{self.gateway_socket.name}" if self.gateway_socket else None
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._tag = f"agentbench-{uuid.uuid4().hex}"  # marks the wrapper's own stderr line
        self._closed = False
        self._owns_client = client is None
        self._client = client if client is not None else connect(docker_host)
        self._container: Any = None
        self._keeper = ""
        self._finalizer: weakref.finalize | None = None
        try:
            reap_once(self._client)
            if image is None and agent_install is not None:
                image = ensure_agent_image(self._client, agent_install, engine_host(docker_host))
            self.image = image or ensure_base_image(self._client, engine_host(docker_host))
            self._create(memory, cpus, pids)
            if workspace_src is not None:
                self._copy_in(Path(workspace_src))
            with sdk_errors("starting the container"):
                self._container.start()
            self._find_keeper()
            self._init_git()
        except BaseException:
            self.close()
            raise
        limits = f"memory={memory} cpus={cpus:g} pids={pids} network=none"
        details = {
            "image": self.image,
            "image_id": str((self._container.attrs or {}).get("Image", "")),
            "limits": limits,
            "container": self.container_id[:12],
            "engine": engine_host(docker_host) or "the local socket",
        }
        if self.gateway_socket_inside:
            details["gateway"] = self.gateway_socket_inside
        self.info = SandboxInfo(kind="docker", isolation="container", details=details)

    @property
    def container_id(self) -> str:
        return str(self._container.id) if self._container is not None else ""

    def _create(self, memory: str, cpus: float, pids: int) -> None:
        labels = {LABEL_RUN: self.run_id, LABEL_PID: str(os.getpid()), LABEL_HOST: socket.gethostname()}
        with sdk_errors(f"creating a container from {self.image}"):
            self._container = self._client.containers.create(
                self.image,
                command=["sleep", "infinity"],
                user=f"{AGENT_UID}:{AGENT_UID}",
                working_dir=WORKSPACE,
                environment=_ENV,
                network_mode="none",
                mem_limit=memory,
                memswap_limit=memory,
                nano_cpus=int(cpus * 1e9),
                pids_limit=pids,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                init=True,
                labels=labels,
                hostname="sandbox",
                volumes=self._gateway_volume(),
            )
        self._finalizer = weakref.finalize(self, release, self._client, self._container.id, self._owns_client)

    def _gateway_volume(self) -> dict[str, dict[str, str]] | None:
        """The gateway socket's folder, read-only: the container's one way out (it keeps network=none)."""
        if self.gateway_socket is None:
            return None
        if not self.gateway_socket.is_socket():
            raise SandboxError(f"docker sandbox: gateway_socket {self.gateway_socket} is not a socket")
        return {str(self.gateway_socket.parent): {"bind": GATEWAY_DIR, "mode": "ro"}}

    def _copy_in(self, src: Path) -> None:
        if not src.is_dir():
            raise SandboxError(f"workspace source {src} is not a directory")
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as buf:
            _workspace_tar(src, buf)  # type: ignore[arg-type]
            buf.seek(0)
            with sdk_errors(f"copying {src} into the container"):
                ok = self._container.put_archive(WORKSPACE, buf.read())
        if not ok:
            raise SandboxError(f"docker refused to copy {src} into the container")

    def _find_keeper(self) -> None:
        """The pid of the container's ``sleep infinity``: the one process a command's sweep must spare."""
        raw = self._run(["sh", "-c", FIND_KEEPER], WORKSPACE, None, FILE_OP_TIMEOUT_S, None)
        pids = raw.stdout.decode().split()
        if raw.code != 0 or len(pids) != 1:
            raise SandboxError(f"docker sandbox: cannot find the container's keeper process (found {pids or 'none'})")
        self._keeper = pids[0]

    def _init_git(self) -> None:
        raw = self._run(["sh", "-c", INIT_SCRIPT], WORKSPACE, None, FILE_OP_TIMEOUT_S, None, env=SETUP_IDENTITY)
        if raw.code != 0:
            err = raw.stderr.decode(errors="replace").strip()
            raise SandboxError(
                f"could not make the workspace a git repo in the container: {err} (is git in the image?)"
            )

    # -- commands ---------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("the docker sandbox is closed")

    def _run(
        self,
        cmd: list[str],
        workdir: str,
        stdin: bytes | None,
        budget_s: float,
        cap: int | None,
        *,
        env: dict[str, str] | None = None,
    ) -> Raw:
        """One exec; stdout/stderr capped at ``cap``; ``overran`` if the stream outlived ``budget_s``."""
        api = self._client.api
        deadline = time.monotonic() + budget_s
        user = f"{AGENT_UID}:{AGENT_UID}"
        exec_id, response, sock = start_exec(
            api, self._container.id, cmd, stdin=stdin, user=user, workdir=workdir, environment=env
        )
        demux, finished = collect(response, sock, stdin, cap, deadline)
        out, err = bytes(demux.kept[1]), bytes(demux.kept[2])
        if not finished:
            self._recover()
            return Raw(124, out, err, demux.truncated, overran=True)
        return Raw(exit_code(api, exec_id), out, err, demux.truncated)

    def _recover(self) -> None:
        """A command overran the host deadline: kill the container and start it again (files kept)."""
        with sdk_errors("restarting the container after a command overran its timeout"):
            self._container.kill()
            self._container.start()
        self._find_keeper()

    def exec(self, argv: Sequence[str], timeout: float, *, cwd: str = ".", stdin: str | None = None) -> ExecResult:
        self._check_open()
        if not argv:
            raise SandboxError("exec needs a command: argv is empty")
        if timeout <= 0:
            raise SandboxError(f"exec timeout must be positive, got {timeout}")
        half = max(1, self.output_cap // 2)
        wrapped = ["timeout", "-k", str(KILL_AFTER_S), f"{timeout:.3f}", "sh", "-c", WRAPPER, "sh"]
        wrapped += [self._tag, f"{WORKSPACE}/{confine(cwd)}", str(half), self._keeper, *argv]
        backstop = 2 * half + 1 + 4096  # the wrapper sends at most 2 * half + 1 (+ the trailer)
        start = time.monotonic()
        data = stdin.encode() if stdin is not None else None
        raw = self._run(wrapped, WORKSPACE, data, timeout + KILL_AFTER_S + WATCHDOG_GRACE_S, backstop)
        duration = time.monotonic() - start
        err, trailer = split_trailer(raw.stderr, self._tag.encode())
        raise_wrapper_error(trailer.get("error"), cwd)
        out, cut_out = head_and_tail(raw.stdout, half, int_or_none(trailer.get("out")))
        err, cut_err = head_and_tail(err, half, int_or_none(trailer.get("err")))
        timed_out = raw.overran or (raw.code in (124, 137) and duration >= timeout)
        stderr = err.decode(errors="replace")
        if raw.overran:
            stderr += "\n[sandbox: the command outlived its timeout; the container was restarted]\n"
        return ExecResult(
            exit_code=124 if timed_out else raw.code,
            stdout=out.decode(errors="replace"),
            stderr=stderr,
            duration_s=duration,
            timed_out=timed_out,
            truncated=cut_out or cut_err or raw.truncated,
        )

    # -- files ------------------------------------------------------------
    def _file_op(self, script: str, path: str, data: bytes | None) -> bytes:
        target = f"{WORKSPACE}/{confine(path)}"
        raw = self._run(["sh", "-c", script, "sh", target], WORKSPACE, data, FILE_OP_TIMEOUT_S, None)
        if raw.overran:
            raise SandboxError(f"docker sandbox: file operation on {path!r} took over {FILE_OP_TIMEOUT_S:g}s")
        if raw.code == 0:
            return raw.stdout
        if raw.code == 2:
            raise FileNotFoundError(errno.ENOENT, "no such file in the workspace", path)
        if raw.code == 3:
            raise PathRefused(f"path {path!r} resolves outside the workspace (through a symlink)")
        if raw.code == 4:
            raise PathRefused(f"{path!r} is a directory")
        err = raw.stderr.decode(errors="replace").strip()
        raise SandboxError(f"docker sandbox: could not access {path!r}: {err or f'exit {raw.code}'}")

    def write_file(self, path: str, content: str | bytes) -> None:
        self._check_open()
        data = content.encode() if isinstance(content, str) else bytes(content)
        self._file_op(WRITE, path, data)

    def read_file(self, path: str) -> bytes:
        self._check_open()
        return self._file_op(READ, path, None)

    # -- lifecycle --------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()  # removes the container (force) and closes our client, once
        elif self._owns_client:
            with contextlib.suppress(Exception):
                self._client.close()

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
