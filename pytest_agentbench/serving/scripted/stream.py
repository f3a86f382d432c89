"""Sending one SSE stream of the scripted server, with the faults a script asks for.

:class:`StreamFaults` reads a response entry's ``stream_drop_after``, ``stream_stall_after`` /
``stream_stall_s`` and ``stream_keepalive*`` keys; :class:`EventWriter` sends a protocol's events
one by one and applies them, counting the events that carry the answer (chat's usage chunk and
``[DONE]`` are sent after, uncounted): after ``stream_drop_after`` of them the connection drops
(:class:`Dropped`), before event ``stream_stall_after`` it stalls, before event
``stream_keepalive_after`` it keeps the stream open with ``: ping`` comments or the protocol's
empty event, until ``stream_keepalive_for_s`` is over or the client leaves (:class:`Hangup`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

__all__ = ["Dropped", "EventWriter", "Hangup", "Keepalive", "StreamFaults"]


class Hangup(Exception):
    """The client closed the connection while the server was keeping the stream alive."""


class Dropped(Exception):
    """The script drops the connection here: no terminal event, the socket just closes."""


@dataclass(frozen=True)
class Keepalive:
    """A stream kept open without progress: SSE comments or empty events every ``every_s``."""

    kind: str
    every_s: float
    after: int
    for_s: float | None

    @classmethod
    def of(cls, step: Mapping[str, Any]) -> Keepalive | None:
        kind = step.get("stream_keepalive")
        if not kind:
            return None
        if kind not in ("comment", "empty_delta"):
            raise ValueError(f"stream_keepalive must be 'comment' or 'empty_delta', not {kind!r}")
        for_s = step.get("stream_keepalive_for_s")
        return cls(
            kind,
            float(step.get("stream_keepalive_every_s", 1.0)),
            int(step.get("stream_keepalive_after", 1)),
            None if for_s is None else float(for_s),
        )

    def send(self, out: BinaryIO, empty_event: Callable[[], bytes]) -> None:
        """Keep the stream alive until ``for_s`` is over; raise :class:`Hangup` when the client leaves."""
        end = None if self.for_s is None else time.monotonic() + self.for_s
        try:
            while end is None or time.monotonic() < end:
                out.write(b": ping\n\n" if self.kind == "comment" else empty_event())
                out.flush()
                time.sleep(self.every_s)
        except OSError as exc:
            raise Hangup from exc


@dataclass(frozen=True)
class StreamFaults:
    """What a response entry breaks in its stream (nothing, for a plan step)."""

    drop_after: int | None = None
    stall_after: int | None = None
    stall_s: float = 0.0
    keepalive: Keepalive | None = None

    @classmethod
    def of(cls, step: Mapping[str, Any]) -> StreamFaults:
        drop, stall = step.get("stream_drop_after"), step.get("stream_stall_after")
        return cls(
            None if drop is None else int(drop),
            None if stall is None else int(stall),
            float(step.get("stream_stall_s", 0)),
            Keepalive.of(step),
        )


class EventWriter:
    """Writes counted events to ``out`` under ``faults``; ``empty_event`` makes a keep-alive event."""

    def __init__(self, out: BinaryIO, faults: StreamFaults, empty_event: Callable[[], bytes]) -> None:
        self.out = out
        self.faults = faults
        self.empty_event = empty_event
        self.sent = 0

    def send(self, event: bytes, before: Callable[[], None] | None = None) -> None:
        """Send one counted event; ``before`` runs once the faults let it through, before it is written."""
        faults = self.faults
        if faults.drop_after is not None and self.sent >= faults.drop_after:
            raise Dropped
        if faults.stall_after is not None and self.sent == faults.stall_after:
            time.sleep(faults.stall_s)
        if faults.keepalive is not None and self.sent == faults.keepalive.after:
            faults.keepalive.send(self.out, self.empty_event)
        self.sent += 1
        if before is not None:
            before()
        self.out.write(event)
        self.out.flush()

    def tail(self, event: bytes, before: Callable[[], None] | None = None) -> None:
        """An event after the answer (chat's usage chunk, ``[DONE]``): never dropped or delayed."""
        if before is not None:
            before()
        self.out.write(event)
        self.out.flush()
