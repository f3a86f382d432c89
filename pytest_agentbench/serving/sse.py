"""Server-sent events cut out of a byte stream as it arrives: sans-I/O, shared by both clients.

:class:`SseSplitter` is fed the body's bytes read by read (``serving/http.py``'s blocking
:class:`~pytest_agentbench.serving.http.EventStream` and ``serving/aio.py``'s event-loop client)
and hands back each event's ``data``, until ``[DONE]``. Lines may end in LF, CRLF or CR (a CRLF
split across two reads included); comments (``: ping``) and events without data are skipped;
an event cut off by the end of the body is dropped, as the SSE specification says. The caps
hold against a hostile server: an event of more than ``max_event`` bytes or a stream of more
than ``max_stream`` raises :class:`~pytest_agentbench.serving.http.TooLarge`.
"""

from __future__ import annotations

__all__ = ["SseSplitter", "event_data"]


class SseSplitter:
    """Cuts events out of the bytes fed to it. ``raw``: each event as sent instead of its data (``event:``/
    ``id:`` lines, comments and ``[DONE]`` too, line ends as LF, its blank line kept). ``done``: ``[DONE]`` seen.
    """

    __slots__ = ("_buf", "_cr", "_total", "done", "max_event", "max_stream", "raw", "url")

    def __init__(self, url: str, max_event: int, max_stream: int, *, raw: bool = False):
        self.url, self.max_event, self.max_stream, self.raw = url, max_event, max_stream, raw
        self.done = False
        self._buf = b""
        self._cr = False  # the last read ended in CR: its LF may start the next one
        self._total = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The events completed by ``data`` (none after ``[DONE]``, which ends the stream)."""
        if self.done:
            return []
        self._total += len(data)
        if self._total > self.max_stream:
            from pytest_agentbench.serving.http import TooLarge

            raise TooLarge(f"{self.url} streamed more than {self.max_stream:,} bytes", self.url)
        if self._cr or b"\r" in data:
            data = self._lf(data)
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        start, raw = 0, self.raw
        while (end := buf.find(b"\n\n", start)) >= 0:
            event, start = buf[start:end], end + 2
            if event.startswith(b"data: ") and b"\n" not in event:  # the common case: one data line
                payload: bytes | None = event[6:]
            else:
                payload = event_data(event)
            if raw and event:
                out.append(event + b"\n\n")
            if payload is None:
                continue
            if payload == b"[DONE]":
                self.done = True
                self._buf = b""
                return out
            if not raw:
                out.append(payload)
        self._buf = buf[start:]
        if len(self._buf) > self.max_event:
            from pytest_agentbench.serving.http import TooLarge

            raise TooLarge(f"{self.url} sent an SSE event over {self.max_event:,} bytes", self.url)
        return out

    def _lf(self, data: bytes) -> bytes:
        """CRLF and CR line ends as LF (a CRLF split across two reads included)."""
        if self._cr:
            data = b"\r" + data
        self._cr = data.endswith(b"\r")
        if self._cr:
            data = data[:-1]
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def event_data(event: bytes) -> bytes | None:
    """The joined ``data`` lines of one event, ``None`` when it has none (comments, ``event:``, ``id:``)."""
    lines = []
    for line in event.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if field == b"data":
            lines.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(lines) if lines else None
