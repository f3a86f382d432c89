"""The ``unsafe-local`` sandbox: a plain temp copy of the workspace, by explicit choice only.

It contains nothing an agent means to do: commands run as the harness's own user, see the
whole file system (the packet's hidden gate files included), the harness's processes in
/proc, and may leave a ``setsid`` process running into gate time. What it does: each command
in its own process group (killed whole when it ends or times out), a scrubbed environment
(PATH, LANG, LC_ALL, TZ, HOME and the git identity), capped output, and no network where
``unshare -n`` is allowed. Every report names it ``unsafe-local``: its results prove only that
the pipeline runs, never that an agent solved a packet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.sandbox.base import DEFAULT_OUTPUT_CAP, SandboxInfo
from pytest_agentbench.sandbox.git import AGENT_IDENTITY
from pytest_agentbench.sandbox.host import HostSandbox

_PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_UNSHARE_OK: bool | None = None


def network_isolation_available() -> bool:
    """True if ``unshare -n`` works here (root, or user namespaces allowed). Cached."""
    global _UNSHARE_OK
    if _UNSHARE_OK is None:
        exe = shutil.which("unshare")
        if exe is None:
            _UNSHARE_OK = False
        else:
            try:
                probe = subprocess.run([exe, "-n", "true"], capture_output=True, timeout=5)
                _UNSHARE_OK = probe.returncode == 0
            except (OSError, subprocess.SubprocessError):
                _UNSHARE_OK = False
    return _UNSHARE_OK


class UnsafeLocalSandbox(HostSandbox):
    """A workspace copy in a temp dir; commands in their own process group. Isolates nothing."""

    kind = "unsafe-local"

    def __init__(
        self,
        workspace_src: Path | None = None,
        *,
        output_cap: int = DEFAULT_OUTPUT_CAP,
        isolate_network: bool = True,
        keep: bool = False,
    ) -> None:
        self._want_netns = isolate_network
        super().__init__(workspace_src, output_cap=output_cap, keep=keep)

    def _prepare(self) -> None:
        self._netns = self._want_netns and network_isolation_available()
        self._home = self._tmp / "home"
        self._home.mkdir()
        details = {"root": str(self.root), "network": "none (unshare -n)" if self._netns else "the host's"}
        self.info = SandboxInfo(kind=self.kind, isolation="unsafe-local", details=details)

    def _env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASSTHROUGH_ENV if k in os.environ}
        env.update(
            HOME=str(self._home),
            PYTHONDONTWRITEBYTECODE="1",
            GIT_PAGER="cat",
            PAGER="cat",
            **AGENT_IDENTITY,
        )
        return env

    def _command(self, argv: Sequence[str], workdir: Path) -> tuple[list[str], dict[str, Any]]:
        full = (["unshare", "-n", "--"] if self._netns else []) + list(argv)
        return full, {"cwd": workdir, "env": self._env()}
