"""serving/sse.py: events cut out of a byte stream the same way whatever the reads' boundaries are."""

from __future__ import annotations

import pytest

from pytest_agentbench.serving import http
from pytest_agentbench.serving.sse import SseSplitter, event_data

STREAM = (
    b": ping\n\n"
    b'event: message\nid: 7\ndata: {"a": 1}\n\n'
    b"data: first line\ndata: second line\n\n"
    b"data:no-space\n\n"
    b"id: 8\n\n"  # no data: skipped
    b"data: [DONE]\n\n"
    b"data: after the end\n\n"
)
DATA = [b'{"a": 1}', b"first line\nsecond line", b"no-space"]


def split(stream: bytes, cut: list[int], **kw: object) -> tuple[list[bytes], bool]:
    splitter = SseSplitter("http://x", 1 << 20, 1 << 20, **kw)  # type: ignore[arg-type]
    out: list[bytes] = []
    for a, b in zip([0, *cut], [*cut, len(stream)], strict=True):
        out += splitter.feed(stream[a:b])
    return out, splitter.done


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_every_cut_of_the_stream_gives_the_same_events(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    for i in range(len(stream) + 1):
        assert split(stream, [i]) == (DATA, True), i
    assert split(stream, list(range(1, len(stream)))) == (DATA, True)  # a byte a read


def test_raw_keeps_every_event_as_sent_and_done_ends_it() -> None:
    events, done = split(STREAM.replace(b"\n", b"\r\n"), [5, 40], raw=True)
    assert done and events[0] == b": ping\n\n" and events[-1] == b"data: [DONE]\n\n"
    assert events[1] == b'event: message\nid: 7\ndata: {"a": 1}\n\n' and len(events) == 6


def test_an_event_cut_off_by_the_end_of_the_body_is_dropped() -> None:
    assert split(b"data: 1\n\ndata: 2\n", []) == ([b"1"], False)


def test_the_caps_hold() -> None:
    with pytest.raises(http.TooLarge, match="an SSE event over 16 bytes"):
        SseSplitter("http://x", 16, 1 << 20).feed(b"data: " + b"a" * 20)
    splitter = SseSplitter("http://x", 1 << 20, 64)
    with pytest.raises(http.TooLarge, match="streamed more than 64 bytes"):
        for _ in range(10):
            splitter.feed(b": ping\n\n")


def test_event_data_joins_data_lines_and_skips_the_rest() -> None:
    assert event_data(b"data: a\n: comment\ndata:b\nretry: 5") == b"a\nb"
    assert event_data(b"event: x\nid: 1") is None
