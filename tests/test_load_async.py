"""The event-loop load client (serving/aio.py, capacity/load_async.py) against broken and hostile servers.

The raw scripted servers of ``test_client.py`` (a TCP socket per connection, doing what no
well-behaved HTTP server would), driven through ``Load`` with ``client="asyncio"``: every fault
must come out as the failure class the blocking client gives it, within the request's timeout
and the client's limits, and never as a crash of the load; a clean stream keeps its connection.
"""

from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.capacity.load import Load, LoadConfig, RateRun
from pytest_agentbench.capacity.prompts import Prompt, PromptSet
from pytest_agentbench.errors import ConfigError
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.serving import aio, http

from .test_client import (
    JUNK_EVENTS,
    SLACK_S,
    STREAM_HEAD,
    chunk,
    delta,
    good_stream,
    raw,
    reset_midway,
    response,
    serve_stream,
    sse,
    trickle_headers,
)

__all__ = ["raw"]  # the fixture, imported for the tests here

pytest.importorskip("aiohttp")


def load(url: str, n: int = 1, *, timeout: float = 10.0, concurrency: int | None = None, **kw: Any) -> RateRun:
    spec = ModelSpec(alias="t", model="m", source=Path("models.yaml"), base_url=url, test_double=True)
    prompts = PromptSet(tuple(Prompt(({"role": "user", "content": f"hi {i}"},)) for i in range(n)), "test")
    config = LoadConfig(
        spec=spec,
        prompts=prompts,
        rates=(math.inf,),
        max_concurrency=concurrency,
        warmup=False,
        reset_prefix_cache=False,
        request_timeout_s=timeout,
        client="asyncio",
        **kw,
    )
    return Load(config, url).run_rate(math.inf)


def failure(run: RateRun) -> tuple[str, str]:
    """The one request's failure class and message."""
    assert run.stats["failed"] == 1 and run.stats["completed"] == 0, run.stats
    (cls,) = run.stats["failures_by_class"]
    return cls, run.stats["failure_examples"][0]


def test_streams_keep_their_connection_and_time_like_vllm_bench(raw: Any) -> None:
    def serve(conn: socket.socket, index: int) -> None:
        while server.read(conn) is not None:
            conn.sendall(STREAM_HEAD)
            for event in good_stream("a", "b", "c"):
                conn.sendall(chunk(event))
                time.sleep(0.05)
            conn.sendall(b"0\r\n\r\n")

    server = raw(serve)
    run = load(server.base_url, 3, concurrency=1)
    s = run.stats
    assert s["completed"] == 3 and server.connections == 1  # one slot, one kept-alive connection
    assert s["completion_tokens"] == 3 * 4 and s["prompt_tokens"] == 3 * 9  # the usage chunk, as sent
    assert s["itl_s"]["n"] == 3 * 3  # b, c and the finish chunk after the first content chunk
    assert 0.04 <= s["itl_s"]["p50"] <= 0.05 + SLACK_S
    assert s["tpot_s"]["p50"] == pytest.approx(s["itl_s"]["mean"], rel=0.3)  # 4 tokens: 3 gaps over 3
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    sent = json.loads(body)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert b"accept-encoding: identity" in head.lower() and b"authorization: bearer" in head.lower()


def test_junk_after_done_drops_the_connection_and_the_next_request_opens_one(raw: Any) -> None:
    def serve(conn: socket.socket, index: int) -> None:
        while server.read(conn) is not None:
            conn.sendall(STREAM_HEAD + b"".join(chunk(e) for e in good_stream("x")) + chunk(b"garbage"))

    server = raw(serve)
    run = load(server.base_url, 2, concurrency=1)
    assert run.stats["completed"] == 2 and server.connections == 2


@pytest.mark.parametrize(("event", "expected"), JUNK_EVENTS)
def test_junk_sse_is_a_server_error(raw: Any, event: bytes, expected: str) -> None:
    server = raw(serve_stream([sse(delta("", role="assistant")), event, *good_stream("x")]))
    cls, message = failure(load(server.base_url))
    assert cls == "server_error" and expected in message, message


def test_a_stream_reset_midway_is_a_connection_error(raw: Any) -> None:
    server = raw(lambda conn, i: (server.read(conn), reset_midway(conn)) and None)
    assert failure(load(server.base_url))[0] == "connection_error"


def test_a_stream_cut_before_its_finish_is_a_connection_error(raw: Any) -> None:
    def serve(conn: socket.socket, index: int) -> None:
        server.read(conn)
        conn.sendall(STREAM_HEAD + chunk(sse(delta("a"))) + b"0\r\n\r\n")

    server = raw(serve)
    cls, message = failure(load(server.base_url))
    assert cls == "connection_error" and "without a finish_reason" in message, message


def test_nothing_listening_is_a_connection_error() -> None:
    cls, message = failure(load("http://127.0.0.1:9/v1"))  # the discard port: refused
    assert cls == "connection_error" and "cannot reach" in message, message


def test_a_stream_answered_with_json_says_to_turn_streaming_off(raw: Any) -> None:
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(b"{}")))
    cls, message = failure(load(server.base_url))
    assert cls == "server_error" and "Content-Type application/json" in message and "stream: false" in message


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        ("429 Slow Down", b'{"error": {"message": "later"}}', "rate_limited"),
        ("400 Bad Request", b'{"error": {"message": "maximum context length is 8192 tokens"}}', "context_overflow"),
        ("401 Unauthorized", b'{"error": {"message": "bad key"}}', "auth_error"),
        ("500 Internal Server Error", b'{"error": {"message": "boom' + b"!" * (1 << 20) + b'"}}', "server_error"),
    ],
    ids=["429", "context", "401", "huge-500"],
)
def test_error_statuses_are_their_class_never_retried_and_kept_short(
    raw: Any, status: str, body: bytes, expected: str
) -> None:
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(body, status, extra="Retry-After: 1\r\n")))
    cls, message = failure(load(server.base_url))
    assert cls == expected and len(message) < 1000, message
    assert len(server.requests) == 1  # a load never retries


def test_trickled_headers_end_at_the_timeout(raw: Any) -> None:
    server = raw(lambda conn, i: (server.read(conn), trickle_headers(conn)) and None)
    t0 = time.monotonic()
    cls, _ = failure(load(server.base_url, timeout=1.0))
    assert cls == "timeout" and time.monotonic() - t0 <= 1.0 + SLACK_S


def test_a_stream_kept_alive_by_pings_ends_at_the_timeout(raw: Any) -> None:
    def serve(conn: socket.socket, index: int) -> None:
        server.read(conn)
        conn.sendall(STREAM_HEAD + chunk(sse(delta("a"))))
        for _ in range(100):
            conn.sendall(chunk(b": ping\n\n"))
            time.sleep(0.05)

    server = raw(serve)
    t0 = time.monotonic()
    cls, _ = failure(load(server.base_url, timeout=1.0))
    assert cls == "timeout" and time.monotonic() - t0 <= 1.0 + SLACK_S


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        STREAM_HEAD + b"zz-not-hex\r\n",
    ],
    ids=["long-header", "too-many-headers", "not-http", "bad-chunk"],
)
def test_what_is_not_http_is_a_server_error(raw: Any, head: bytes) -> None:
    server = raw(lambda conn, i: (server.read(conn), conn.sendall(head), time.sleep(0.5)) and None)
    cls, message = failure(load(server.base_url, timeout=5.0))
    assert cls == "server_error" and "not HTTP/1.1" in message, message


def test_an_endless_event_stops_at_its_limit(raw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "MAX_EVENT_BYTES", 256 * 1024)

    def serve(conn: socket.socket, index: int) -> None:
        server.read(conn)
        conn.sendall(STREAM_HEAD + chunk(b'data: {"x": "'))
        while True:  # for ever, until the client hangs up
            conn.sendall(chunk(b"a" * 65536))

    server = raw(serve)
    cls, message = failure(load(server.base_url))
    assert cls == "server_error" and "SSE event over 262,144 bytes" in message, message


def test_an_endless_stream_of_small_events_stops_at_the_stream_limit(raw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "MAX_STREAM_BYTES", 512 * 1024)

    def serve(conn: socket.socket, index: int) -> None:
        server.read(conn)
        conn.sendall(STREAM_HEAD)
        while True:
            conn.sendall(chunk(b": ping\n\n" * 4096))

    server = raw(serve)
    cls, message = failure(load(server.base_url))
    assert cls == "server_error" and "streamed more than 524,288 bytes" in message, message


def test_asyncio_without_aiohttp_is_a_clear_error_and_auto_falls_back_to_threads(
    raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = raw(serve_stream(good_stream("x")))
    monkeypatch.setattr(aio, "available", lambda: False)
    with pytest.raises(ConfigError, match=r"--client asyncio: aiohttp is not installed: pip install"):
        load(server.base_url)
    spec = ModelSpec(alias="t", model="m", source=Path("models.yaml"), base_url=server.base_url, test_double=True)
    prompts = PromptSet((Prompt(({"role": "user", "content": "hi"},)),), "test")
    engine = Load(LoadConfig(spec=spec, prompts=prompts, rates=(math.inf,), warmup=False), server.base_url)
    assert engine.client == "threads" and any("[load]" in note for note in engine.notes)
    assert engine.run_rate(math.inf).stats["completed"] == 1
    with pytest.raises(ConfigError, match="--client: expected one of auto, asyncio, threads"):
        LoadConfig(spec=spec, prompts=prompts, rates=(1.0,), client="gevent")
