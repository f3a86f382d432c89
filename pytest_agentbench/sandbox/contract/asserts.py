"""The vocabulary the contract checks are written in: run a shell line, expect a raise, still usable, ...

Plain functions over a ``Sandbox`` that raise ``AssertionError`` (or return
what a check asserts on), shared by the command, file and hostile checks.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from pytest_agentbench.errors import SandboxError
from pytest_agentbench.sandbox.base import ExecResult, Sandbox


@contextlib.contextmanager
def raises(kind: type[BaseException]) -> Iterator[None]:
    """The block must raise ``kind`` (other exceptions go through)."""
    try:
        yield
    except kind:
        return
    raise AssertionError(f"DID NOT RAISE {kind}")


def assert_refused(sb: Sandbox, path: str) -> None:
    """Both reading ``path`` and writing it are refused with a ``SandboxError``."""
    with raises(SandboxError):
        sb.read_file(path)
    with raises(SandboxError):
        sb.write_file(path, "x")


def sh(sb: Sandbox, script: str, timeout: float = 30) -> ExecResult:
    return sb.exec(["sh", "-c", script], timeout)


def assert_usable(sb: Sandbox) -> None:
    """The session goes on: the sandbox still runs commands and files."""
    r = sb.exec(["echo", "still here"], 30)
    assert (r.exit_code, r.stdout) == (0, "still here\n"), r
    sb.write_file("after.txt", "ok")
    assert sb.read_file("after.txt") == b"ok"


#: A loop for a command to leave behind: one line appended to ``beats`` every 0.2 s, stopping by
#: itself after ~10 s (so a backend that lets it live does not keep it forever).
BEATING = "for i in $(seq 50); do echo b >> beats; sleep 0.2; done"


def assert_stopped_beating(sb: Sandbox, wait_s: float = 1.0) -> None:
    """The ``beats`` file a :data:`BEATING` loop appends to no longer grows: the loop is gone.

    Watched from the host through ``read_file``, not by pid: a backend may give every command
    its own PID namespace, where a pid from one command means nothing in the next.
    """
    before = sb.read_file("beats")
    assert before, "the loop never ran"
    time.sleep(wait_s)
    assert sb.read_file("beats") == before, "a process the command started still runs after it ended"


def assert_head_and_tail(text: str, cap: int, first: str, last: str, total: int) -> None:
    """Over the cap, the first and last ``cap // 2`` characters are kept around a note of what went."""
    half = cap // 2
    dropped = total - 2 * half
    assert text.startswith(first) and text.endswith(last), text[:40] + "..." + text[-40:]
    assert text == text[:half] + f"\n[... {dropped} bytes of output dropped ...]\n" + text[-half:]
