"""The vocabulary the contract checks are written in: run a shell line, expect a raise, still usable, ...

Plain functions over a ``Sandbox`` that raise ``AssertionError`` (or return
what a check asserts on), shared by the command, file and hostile checks.
"""

from __future__ import annotations

import contextlib
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


def pid_gone(sb: Sandbox, pid: int) -> bool:
    """No such process, or a zombie (killed; whether its parent reaped it yet is not ours)."""
    alive = sh(sb, f's=$(cat /proc/{pid}/stat 2>/dev/null) || exit 1; case "$s" in *") Z "*) exit 1;; esac')
    return alive.exit_code != 0


def assert_head_and_tail(text: str, cap: int, first: str, last: str, total: int) -> None:
    """Over the cap, the first and last ``cap // 2`` characters are kept around a note of what went."""
    half = cap // 2
    dropped = total - 2 * half
    assert text.startswith(first) and text.endswith(last), text[:40] + "..." + text[-40:]
    assert text == text[:half] + f"\n[... {dropped} bytes of output dropped ...]\n" + text[-half:]
