"""The ``Sandbox`` protocol every backend implements.

A command's non-zero exit (or its timeout) is an :class:`ExecResult`, not an
error; only an infrastructure failure raises :class:`SandboxError`.
Paths given to ``read_file``/``write_file`` are relative to the workspace root;
anything that resolves outside it is refused with ``PathRefused`` (a
``SandboxError``), which the agent's file tools turn into a message for the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol, runtime_checkable

from pytest_agentbench.errors import PathRefused, SandboxError  # noqa: F401 (re-exported)

#: Bytes of stdout (and separately stderr) kept per command; the rest is drained.
DEFAULT_OUTPUT_CAP = 256 * 1024
#: Where a sandbox given a ``gateway_socket`` mounts that socket's folder, read-only (serving.gateway).
GATEWAY_DIR = "/run/agentbench-gateway"


@dataclass(frozen=True)
class ExecResult:
    """What one command did. ``exit_code`` is 124 on timeout (as coreutils' timeout)."""

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    truncated: bool = False  # output went over the cap and was cut

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def output(self) -> str:
        """stdout and stderr together, stderr last (what a terminal user would read)."""
        if self.stdout and self.stderr:
            sep = "" if self.stdout.endswith("\n") else "\n"
            return self.stdout + sep + self.stderr
        return self.stdout or self.stderr


@dataclass(frozen=True)
class SandboxInfo:
    """What ran the commands, for reports and JUnit properties."""

    kind: str  # "docker" | "local" | "unsafe-local" (or a third party's)
    isolation: str  # "container" | "bubblewrap" | "unsafe-local": what every report names
    details: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Sandbox(Protocol):
    """One isolated workspace for one run; every backend implements this."""

    info: SandboxInfo

    def exec(self, argv: Sequence[str], timeout: float, *, cwd: str = ".", stdin: str | None = None) -> ExecResult:
        """Run ``argv`` with the workspace (or ``cwd`` below it) as working directory."""
        ...

    def write_file(self, path: str, content: str | bytes) -> None:
        """Create or replace a file (and its parent folders) below the workspace."""
        ...

    def read_file(self, path: str) -> bytes:
        """Read a file below the workspace; ``FileNotFoundError`` if it is missing."""
        ...

    def close(self) -> None:
        """Release everything the sandbox holds; safe to call twice."""
        ...


def confine(path: str) -> PurePosixPath:
    """Normalise a workspace-relative path, or raise ``SandboxError`` if it escapes.

    Absolute paths, ``..`` that climbs above the root and empty paths are refused.
    Symlinks are the backend's business (it must resolve them on its side).
    """
    if not isinstance(path, str) or not path.strip():
        raise PathRefused("path is empty: give a path relative to the workspace, e.g. 'src/app.py'")
    p = PurePosixPath(path.strip())
    if p.is_absolute():
        raise PathRefused(f"path {path!r} is absolute: only paths inside the workspace are allowed")
    parts: list[str] = []
    for part in p.parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathRefused(f"path {path!r} leaves the workspace: '..' is not allowed above its root")
            parts.pop()
        else:
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")
