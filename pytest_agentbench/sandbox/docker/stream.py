"""One exec in a container at the socket: attach, stdin, demultiplexing, the output cap, the exit code.

docker's exec API sends stdout and stderr down one stream in frames with an
8-byte header. This module owns the plumbing under one command: creating the
exec and attaching to its stream (:func:`start_exec`, :func:`attach`), feeding
it stdin from a thread, reading it to EOF or to a host-side deadline
(:func:`read_stream`), splitting the frames into stdout and stderr each kept up
to a cap (:class:`Demux`), and reading the exit code once the stream closed
(:func:`exit_code`). What the exec produced, undecoded, is a :class:`Raw`.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.errors import SandboxError
from pytest_agentbench.sandbox.docker.engine import ENGINE_FIX, sdk_errors


@dataclass
class Raw:
    """What one exec produced, before decoding."""

    code: int
    stdout: bytes
    stderr: bytes
    truncated: bool = False
    overran: bool = False


class Demux:
    """Split docker's multiplexed stream (8-byte frame headers) into capped stdout/stderr."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.kept: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.truncated = False
        self._header = bytearray()
        self._stream = 0
        self._left = 0

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if self._left == 0:
                need = 8 - len(self._header)
                self._header += view[:need]
                view = view[need:]
                if len(self._header) == 8:
                    self._stream, self._left = struct.unpack(">BxxxL", self._header)
                    self._header.clear()
                continue
            take = view[: self._left]
            view = view[len(take) :]
            self._left -= len(take)
            self._keep(self._stream, take)

    def _keep(self, stream: int, data: memoryview) -> None:
        sink = self.kept.get(stream)
        if sink is None:
            return
        if self.cap is None:
            sink += data
            return
        room = self.cap - len(sink)
        if room < len(data):
            self.truncated = True
        if room > 0:
            sink += data[:room]


def attach(api: Any, exec_id: str) -> tuple[Any, socket.socket]:
    """Start an exec attached; return the HTTP response (to close at the end) and its raw socket.

    ``exec_start(socket=True)`` does the same but drops the response for unix
    sockets, which then fails when collected; so its three steps are done here.
    """
    try:
        response = api._post_json(
            api._url("/exec/{0}/start", exec_id),
            headers={"Connection": "Upgrade", "Upgrade": "tcp"},
            data={"Tty": False, "Detach": False},
            stream=True,
        )
        raw = api._get_raw_response_socket(response)
    except AttributeError as exc:
        raise SandboxError(f"this docker SDK is not supported ({exc}): pip install 'docker>=7.1,<8'")
    return response, getattr(raw, "_sock", raw)


def _feed_stdin(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # the command exited or closed stdin early: not our failure
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def read_stream(sock: socket.socket, demux: Demux, deadline: float) -> bool:
    """Read to EOF; False if ``deadline`` (monotonic) passed first."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EINTR, errno.EAGAIN):
                continue
            raise
        if not chunk:
            return True
        demux.feed(chunk)


def start_exec(
    api: Any, container_id: str, cmd: list[str], *, stdin: bytes | None, **options: Any
) -> tuple[str, Any, socket.socket]:
    """Create and start an exec of ``cmd`` (stdin open if given); its id, HTTP response and raw socket.

    ``options`` go to ``exec_create`` (``user``, ``workdir``, ``environment``).
    """
    with sdk_errors(f"running {cmd[0]!r} in the container"):
        exec_id = api.exec_create(
            container_id, cmd, stdin=stdin is not None, stdout=True, stderr=True, tty=False, **options
        )["Id"]
        response, sock = attach(api, exec_id)
    return exec_id, response, sock


def collect(
    response: Any, sock: socket.socket, stdin: bytes | None, cap: int | None, deadline: float
) -> tuple[Demux, bool]:
    """Feed ``stdin`` (from a thread) and read the stream; the output and whether it ended before ``deadline``."""
    demux = Demux(cap)
    try:
        if stdin is not None:
            threading.Thread(target=_feed_stdin, args=(sock, stdin), daemon=True).start()
        finished = read_stream(sock, demux, deadline)
    except OSError as exc:
        raise SandboxError(f"docker sandbox: the exec stream broke: {exc} ({ENGINE_FIX})")
    finally:
        with contextlib.suppress(Exception):
            response.close()
    return demux, finished


def exit_code(api: Any, exec_id: str) -> int:
    """The exit code of a finished exec (the stream can close a moment before the exec is marked done)."""
    for _ in range(400):
        with sdk_errors("reading an exit code"):
            state = api.exec_inspect(exec_id)
        if not state.get("Running") and state.get("ExitCode") is not None:
            return int(state["ExitCode"])
        time.sleep(0.005)
    raise SandboxError("docker sandbox: the command's stream closed but it never exited")
