"""What the two host-side sandboxes (``local`` on bubblewrap, ``unsafe-local``) share.

A private temp folder per sandbox (``agentbench-sbx-<pid>-*``: the workspace copy, and for
bubblewrap its home, /tmp and /etc files), commands started in their own session and killed
whole when they end or time out, each stream drained by a thread and kept within the output
cap (first and last ``cap // 2`` bytes), and file access confined to the workspace with
symlinks resolved on the host. Nothing of a command runs between two commands in ``local``
(its PID namespace dies with it), so resolving a path on the host cannot race the agent.

A session killed with SIGKILL cannot remove its folders; the first sandbox a later process
makes removes every ``agentbench-sbx-<pid>-*`` folder whose process is gone
(:func:`reap_dead_sessions`), as the docker backend reaps containers.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pytest_agentbench.errors import PathRefused, SandboxError
from pytest_agentbench.sandbox.base import DEFAULT_OUTPUT_CAP, ExecResult, SandboxInfo, confine
from pytest_agentbench.sandbox.git import init_git_repo

TEMP_PREFIX = "agentbench-sbx-"
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-")
_REAPED: set[Path] = set()


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_sessions(tmp: Path | None = None) -> list[Path]:
    """Remove the sandbox folders whose owning process is gone (a SIGKILLed session); returns them."""
    base = Path(tmp or tempfile.gettempdir())
    gone = []
    for folder in base.glob(TEMP_PREFIX + "*"):
        match = _TEMP_NAME.match(folder.name)
        if match and folder.is_dir() and not pid_alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


def private_dir(base: Path | None = None) -> Path:
    """A new ``agentbench-sbx-<our pid>-*`` folder (mode 0700) in ``base`` (default: the temp folder);
    the first call in a folder reaps the dead sessions' ones there."""
    where = Path(base or tempfile.gettempdir())
    if where not in _REAPED:
        _REAPED.add(where)
        reap_dead_sessions(where)
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=where))


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


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class HostSandbox:
    """A workspace copy in a private temp folder; subclasses say how a command is started."""

    kind = "?"
    temp_base: Path | None = None  # where the private folder goes (None: the temp folder)

    def __init__(self, workspace_src: Path | None = None, *, output_cap: int = DEFAULT_OUTPUT_CAP, keep: bool = False):
        self._tmp = private_dir(self.temp_base)
        self.root = self._tmp / "workspace"
        self.output_cap = output_cap
        self._keep = keep
        self._closed = False
        self.info = SandboxInfo(kind=self.kind, isolation="?")
        try:
            if workspace_src is not None:
                shutil.copytree(workspace_src, self.root, symlinks=True)
            else:
                self.root.mkdir()
            init_git_repo(self.root)
            self._prepare()
        except BaseException:
            self.close()
            raise

    # -- what a subclass provides ------------------------------------------
    def _prepare(self) -> None:
        """Called once the workspace is a git repo: set up the rest, set ``self.info``."""

    def _command(self, argv: Sequence[str], workdir: Path) -> tuple[list[str], dict[str, Any]]:
        """The host command line running ``argv`` in ``workdir``, and extra ``Popen`` arguments."""
        raise NotImplementedError

    def _owned(self, path: Path) -> None:
        """A file the harness just wrote below the workspace: give it to the sandbox's user."""

    # -- commands ---------------------------------------------------------
    def exec(self, argv: Sequence[str], timeout: float, *, cwd: str = ".", stdin: str | None = None) -> ExecResult:
        if self._closed:
            raise SandboxError(f"the {self.kind} sandbox is closed")
        if not argv:
            raise SandboxError("exec needs a command: argv is empty")
        workdir = self._resolve(cwd)
        if not workdir.is_dir():
            raise PathRefused(f"folder {cwd!r} does not exist in the workspace")
        start = time.monotonic()
        full, extra = self._command(argv, workdir)
        try:
            proc = subprocess.Popen(
                full,
                start_new_session=True,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                **extra,
            )
        except FileNotFoundError:
            return ExecResult(127, "", f"{argv[0]}: command not found\n", time.monotonic() - start)
        except OSError as exc:
            raise SandboxError(f"could not start {argv[0]!r} in the {self.kind} sandbox: {exc}") from exc
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

    @staticmethod
    def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
        """Wait for the command, then kill its whole group; True if it ran past ``timeout``."""
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        except BaseException:  # Ctrl-C / SIGTERM while waiting: the command must not outlive us
            _kill_group(proc.pid)
            raise
        # Kill the whole group either way: a background child must not outlive the command.
        _kill_group(proc.pid)
        if timed_out:
            proc.wait()
        return timed_out

    # -- files ------------------------------------------------------------
    def _resolve(self, path: str) -> Path:
        rel = confine(path)
        target = (self.root / rel).resolve()
        root = self.root.resolve()
        if target != root and root not in target.parents:
            raise PathRefused(f"path {path!r} resolves outside the workspace (through a symlink)")
        return target

    def write_file(self, path: str, content: str | bytes) -> None:
        if self._closed:
            raise SandboxError(f"the {self.kind} sandbox is closed")
        target = self._resolve(path)
        if target.is_dir():
            raise PathRefused(f"cannot write {path!r}: it is a directory")
        missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
        for made in (target, *missing):
            self._owned(made)

    def read_file(self, path: str) -> bytes:
        if self._closed:
            raise SandboxError(f"the {self.kind} sandbox is closed")
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

    def __enter__(self) -> HostSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
