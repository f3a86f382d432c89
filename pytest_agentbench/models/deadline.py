"""The deadline of one model call: it ends by then, whatever the server sends.

An HTTP client's timeout bounds each *read*, so a server that keeps a stream
alive (SSE ``: ping`` comments, empty deltas) or trickles its body a byte at a
time holds a call for ever. Here one daemon thread per process (the
:class:`Watchdog`) keeps the deadlines of the calls in flight; when one passes,
it shuts the call's socket down, so the blocked read returns at once and the
call fails. The adapter then sees :attr:`CallGuard.fired` and classes the
failure as ``timeout``.

The HTTP client (:class:`pytest_agentbench.serving.http.Client`) hands the guard
the call's socket as soon as it is connected (or taken from the pool), before the
request is sent, so a server that trickles its status line or headers is cut too;
it disarms the guard before a connection goes back to its pool. Each read is also
bounded by the time left. Cheap on the hot path: arming is a heap push, and a call
that ends first only flags its guard.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time

__all__ = ["CallGuard", "Watchdog", "WATCHDOG"]


class CallGuard:
    """One attempt's deadline (``time.monotonic`` seconds) and, once known, its socket."""

    __slots__ = ("deadline", "fired", "_done", "_lock", "_sock")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def attach(self, sock: socket.socket) -> None:
        """The call's connection; cut at once if the deadline has already passed."""
        with self._lock:
            if self._done:
                return
            self._sock = sock
            if self.fired:
                _cut(sock)

    def fire(self) -> None:
        """The deadline passed: cut the connection of a call still in flight."""
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self._sock is not None:
                _cut(self._sock)

    @property
    def done(self) -> bool:
        return self._done

    def disarm(self) -> None:
        """The call is over (either way): the watchdog must leave its connection alone."""
        with self._lock:
            self._done = True
            self._sock = None

    def __enter__(self) -> CallGuard:
        WATCHDOG.arm(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.disarm()


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread (close() would not)
    except OSError:
        pass  # already closed: the call is over


class Watchdog:
    """One daemon thread that fires each armed guard at its deadline (guards that are done are skipped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, CallGuard]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._compact_at = 1024

    def arm(self, guard: CallGuard) -> None:
        with self._cond:
            if len(self._heap) >= self._compact_at:  # most calls end long before their deadline: drop them
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._compact_at = max(1024, 2 * len(self._heap))
            earliest = not self._heap or guard.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (guard.deadline, next(self._order), guard))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="agentbench-call-deadlines", daemon=True)
                self._thread.start()
            elif earliest:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, guard = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            guard.fire()


WATCHDOG = Watchdog()
