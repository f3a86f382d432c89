"""The ``local`` sandbox: a temporary copy of the workspace on the host.

Weaker isolation than Docker, and the report says so: each command runs in
its own process group (killed whole on timeout), with a scrubbed environment,
output capped, and - where the kernel lets us - no network (``unshare -n``).
File paths are confined to the workspace, symlinks included.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pytest_agentbench.errors import PathRefused, SandboxError
from pytest_agentbench.sandbox.base import DEFAULT_OUTPUT_CAP, ExecResult, SandboxInfo, confine
from pytest_agentbench.sandbox.git import AGENT_IDENTITY, init_git_repo

_PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_UNSHARE_OK: bool | None = None


def _network_isolation_available() -> bool:
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


def _drain(stream: IO[bytes], cap: int, sink: list[bytes], flags: list[bool]) -> None:
    """Read ``stream`` to EOF keeping its first and last ``cap // 2`` bytes (the end of a
    command's output - a test summary, an error - matters most); the middle is dropped."""
    half = max(1, cap // 2)
    head = bytearray()
    tail = bytearray()
    dropped = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        room = half - len(head)
        if room > 0:
            head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            tail += chunk
            if len(tail) > half:
                dropped += len(tail) - half
                del tail[: len(tail) - half]
    stream.close()
    if dropped:
        flags.append(True)
        sink.append(bytes(head) + f"\n[... {dropped} bytes of output dropped ...]\n".encode() + bytes(tail))
    else:
        sink.append(bytes(head + tail))


class _Capture:
    """A command's stdout and stderr, each drained by a thread and kept within ``cap``."""

    def __init__(self, proc: subprocess.Popen[bytes], cap: int) -> None:
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._cut: list[bool] = []
        self._readers = [
            threading.Thread(target=_drain, args=(s, cap, sink, self._cut), daemon=True)
            for s, sink in ((proc.stdout, self._out), (proc.stderr, self._err))
        ]
        for t in self._readers:
            t.start()

    def join(self) -> None:
        for t in self._readers:
            t.join(timeout=5)

    @property
    def stdout(self) -> str:
        return b"".join(self._out).decode(errors="replace")

    @property
    def stderr(self) -> str:
        return b"".join(self._err).decode(errors="replace")

    @property
    def truncated(self) -> bool:
        return bool(self._cut)


def _feed_stdin(proc: subprocess.Popen[bytes], stdin: str | None) -> None:
    """Write ``stdin`` to the command and close it; a command that stopped reading is not our failure."""
    if stdin is not None and proc.stdin is not None:
        try:
            proc.stdin.write(stdin.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass


class LocalSandbox:
    """A workspace copy in a temp dir; commands in their own process group."""

    def __init__(
        self,
        workspace_src: Path | None = None,
        *,
        output_cap: int = DEFAULT_OUTPUT_CAP,
        isolate_network: bool = True,
        keep: bool = False,
    ) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="agentbench-"))
        self.root = self._tmp / "workspace"
        self.output_cap = output_cap
        self._keep = keep
        self._closed = False
        try:
            if workspace_src is not None:
                shutil.copytree(workspace_src, self.root, symlinks=True)
            else:
                self.root.mkdir()
            init_git_repo(self.root)
        except Exception:
            self.close()
            raise
        self._netns = isolate_network and _network_isolation_available()
        isolation = "process-group+netns" if self._netns else "process-group"
        self.info = SandboxInfo(kind="local", isolation=isolation, details={"root": str(self.root)})
        self._home = self._tmp / "home"
        self._home.mkdir()

    # -- commands ---------------------------------------------------------
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

    def exec(self, argv: Sequence[str], timeout: float, *, cwd: str = ".", stdin: str | None = None) -> ExecResult:
        if self._closed:
            raise SandboxError("the local sandbox is closed")
        if not argv:
            raise SandboxError("exec needs a command: argv is empty")
        workdir = self._resolve(cwd)
        if not workdir.is_dir():
            raise PathRefused(f"folder {cwd!r} does not exist in the workspace")
        start = time.monotonic()
        try:
            proc = self._spawn(argv, workdir, with_stdin=stdin is not None)
        except FileNotFoundError:
            return ExecResult(127, "", f"{argv[0]}: command not found\n", time.monotonic() - start)
        except OSError as exc:
            raise SandboxError(f"could not start {argv[0]!r} in the local sandbox: {exc}") from exc
        capture = _Capture(proc, self.output_cap)
        _feed_stdin(proc, stdin)
        timed_out = self._wait(proc, timeout)
        capture.join()
        code = 124 if timed_out else proc.returncode
        if code is not None and code < 0:
            code = 128 - code  # killed by a signal: shell convention
        return ExecResult(
            exit_code=code,
            stdout=capture.stdout,
            stderr=capture.stderr,
            duration_s=time.monotonic() - start,
            timed_out=timed_out,
            truncated=capture.truncated,
        )

    def _spawn(self, argv: Sequence[str], workdir: Path, *, with_stdin: bool) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session (its own process group), in the network namespace if any."""
        full = (["unshare", "-n", "--"] if self._netns else []) + list(argv)
        return subprocess.Popen(
            full,
            cwd=workdir,
            env=self._env(),
            start_new_session=True,
            stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def _wait(self, proc: subprocess.Popen[bytes], timeout: float) -> bool:
        """Wait for the command, then kill its whole group; True if it ran past ``timeout``."""
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        except BaseException:  # Ctrl-C / SIGTERM while waiting: the command must not outlive us
            self._kill_group(proc.pid)
            raise
        # Kill the whole group either way: a background child must not outlive the command.
        self._kill_group(proc.pid)
        if timed_out:
            proc.wait()
        return timed_out

    @staticmethod
    def _kill_group(pgid: int) -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # -- files ------------------------------------------------------------
    def _resolve(self, path: str) -> Path:
        rel = confine(path)
        target = (self.root / rel).resolve()
        root = self.root.resolve()
        if target != root and root not in target.parents:
            raise PathRefused(f"path {path!r} resolves outside the workspace (through a symlink)")
        return target

    def write_file(self, path: str, content: str | bytes) -> None:
        target = self._resolve(path)
        if target.is_dir():
            raise PathRefused(f"cannot write {path!r}: it is a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)

    def read_file(self, path: str) -> bytes:
        target = self._resolve(path)
        if target.is_dir():
            raise PathRefused(f"cannot read {path!r}: it is a directory")
        return target.read_bytes()  # FileNotFoundError propagates, as the protocol says

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._keep:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
