"""The ``local`` sandbox: a workspace copy on the host, every command in a bubblewrap sandbox.

What a command inside can see and do is in :mod:`pytest_agentbench.sandbox.bwrap`: only the
workspace, its home and /tmp are writable; the packet folder, its hidden files and the harness
are not there; no harness process in /proc, nothing survives the command; an emptied
environment; process and memory limits; no network (with a ``gateway_socket``, that socket's
folder is bound read-only at ``GATEWAY_DIR``: the gateway is the one way out). Where bubblewrap cannot run, the sandbox
cannot be made (:class:`~pytest_agentbench.errors.SandboxUnavailable`, naming the fix); the
process-group sandbox of old is ``unsafe-local``, chosen only by name.

File access (``read_file``/``write_file``) happens on the host, confined to the workspace
with symlinks resolved; files the harness writes (the agent's tool, hidden gate files) are
given to the sandbox's user.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import SandboxError, SandboxUnavailable
from pytest_agentbench.sandbox.base import DEFAULT_OUTPUT_CAP, GATEWAY_DIR, SandboxInfo
from pytest_agentbench.sandbox.bwrap import (
    argv_for,
    bwrap_binary,
    bwrap_status,
    give_to,
    give_tree,
    host_uid,
    parse_size,
    run_as,
    temp_base,
    write_etc,
)
from pytest_agentbench.sandbox.host import HostSandbox


class LocalSandbox(HostSandbox):
    """One run's workspace; each command in its own bubblewrap sandbox (see the module docstring)."""

    kind = "local"

    def __init__(
        self,
        workspace_src: Path | None = None,
        *,
        output_cap: int = DEFAULT_OUTPUT_CAP,
        memory: str | int = "2g",
        pids: int = 256,
        keep: bool = False,
        gateway_socket: Path | None = None,
    ) -> None:
        self.gateway_socket = Path(gateway_socket) if gateway_socket is not None else None
        if self.gateway_socket is not None and not self.gateway_socket.is_socket():
            raise SandboxError(f"--sandbox=local: gateway_socket {self.gateway_socket} is not a socket")
        #: the gateway's socket as commands inside see it (its folder bound read-only), else None
        self.gateway_socket_inside = f"{GATEWAY_DIR}/{self.gateway_socket.name}" if self.gateway_socket else None
        ok, why = bwrap_status()
        if not ok:
            raise SandboxUnavailable(f"--sandbox=local: {why}")
        self._bwrap = str(bwrap_binary())
        self._memory = parse_size(memory)
        self._pids = pids
        self._uid = host_uid()
        self.temp_base = temp_base(self._uid)
        super().__init__(workspace_src, output_cap=output_cap, keep=keep)

    def _prepare(self) -> None:
        for name in ("home", "tmp"):
            (self._tmp / name).mkdir()
        write_etc(self._tmp / "etc")
        give_tree(self._tmp, self._uid)
        limits = f"memory={self._memory >> 20}m per process, pids={self._pids}, network=none"
        details = {"root": str(self.root), "limits": limits}
        if self._uid is not None:
            details["host_uid"] = str(self._uid)
        if self.gateway_socket_inside:
            details["gateway"] = self.gateway_socket_inside
        self.info = SandboxInfo(kind=self.kind, isolation="bubblewrap", details=details)

    def _command(self, argv: Sequence[str], workdir: Path) -> tuple[list[str], dict[str, Any]]:
        full = argv_for(
            self._bwrap, self._tmp, workdir, argv, pids=self._pids, memory=self._memory, gateway=self.gateway_socket
        )
        return full, {"env": {}, **run_as(self._uid)}

    def _owned(self, path: Path) -> None:
        give_to(path, self._uid)

    def __enter__(self) -> LocalSandbox:
        return self
