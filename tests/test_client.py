"""The lean HTTP/SSE client (serving/http.py) against broken and hostile servers on 127.0.0.1.

Each server here is a raw TCP socket scripted per connection, so it can do what no well-behaved
HTTP server would: trickle its headers, send junk SSE, announce or stream huge bodies, answer with
the wrong content type, reset the connection, close a kept-alive connection while it is idle.
Through the adapter, each fault must come out as its failure class, within the call's deadline
and the client's limits; the timings must follow vllm bench's definitions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import ModelCallError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.registry import ModelSpec, parse_retries
from pytest_agentbench.serving import http

MESSAGES = [{"role": "user", "content": "hello"}]
SLACK_S = 0.75  # past a deadline: the watchdog's wake-up on a loaded 2-core machine


def spec(**kw: Any) -> ModelSpec:
    kw["retries"] = parse_retries(kw.get("retries", {}), "models.yaml: models.t.retries")
    return ModelSpec(alias="t", model="m", source=Path("models.yaml"), **kw)


# -- a scripted raw server ---------------------------------------------------------------------------------


def read_request(conn: socket.socket) -> bytes | None:
    """One request (head and Content-Length body) from ``conn``; ``None`` when the client closed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return None
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    length = lengths[0] if lengths else 0
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


class Raw:
    """Runs ``serve(conn, index)`` on each accepted connection (index: 0, 1, ...); counts connections and requests."""

    def __init__(self, serve: Callable[[socket.socket, int], None]):
        self.serve = serve
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = 0
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def read(self, conn: socket.socket) -> bytes | None:
        request = read_request(conn)
        if request is not None:
            self.requests.append(request)
        return request

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            index, self.connections = self.connections, self.connections + 1
            threading.Thread(target=self._run, args=(conn, index), daemon=True).start()

    def _run(self, conn: socket.socket, index: int) -> None:
        try:
            self.serve(conn, index)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[Callable[[Callable[[socket.socket, int], None]], Raw]]:
    made: list[Raw] = []

    def make(serve: Callable[[socket.socket, int], None]) -> Raw:
        made.append(Raw(serve))
        return made[-1]

    yield make
    for server in made:
        server.close()


def completion(content: str = "ok", **usage: int) -> bytes:
    body = {
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, **usage},
    }
    return json.dumps(body).encode()


def response(body: bytes, status: str = "200 OK", ctype: str = "application/json", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def delta(content: str | None = None, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    d = dict(fields)
    if content is not None:
        d["content"] = content
    return {"model": "m", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


USAGE = {"model": "m", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}
STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def good_stream(*contents: str) -> list[bytes]:
    """A vLLM-like stream: the role chunk, one chunk per content, the finish, usage, [DONE]."""
    events = [sse(delta("", role="assistant"))] + [sse(delta(c)) for c in contents]
    return events + [sse(delta(finish="stop")), sse(USAGE), b"data: [DONE]\n\n"]


def serve_stream(events: list[bytes], gap_s: float = 0.0) -> Callable[[socket.socket, int], None]:
    """Answer every request on a connection with ``events``, chunked, one chunk per event (kept alive)."""

    def serve(conn: socket.socket, index: int) -> None:
        while read_request(conn) is not None:
            conn.sendall(STREAM_HEAD)
            for event in events:
                conn.sendall(chunk(event))
                time.sleep(gap_s)
            conn.sendall(b"0\r\n\r\n")

    return serve


def failure_of(adapter: ModelAdapter, timeout: float | None = 10) -> ModelCallError:
    with pytest.raises(ModelCallError) as exc:
        adapter.complete(MESSAGES, timeout=timeout)
    return exc.value


# -- keep-alive ----------------------------------------------------------------------------------------


def test_plain_calls_share_one_kept_alive_connection(raw: Any) -> None:
    def serve(conn: socket.socket, index: int) -> None:
        while server.read(conn) is not None:
            conn.sendall(response(completion()))

    server = raw(serve)
    with ModelAdapter(spec(), server.base_url) as adapter:
        for _ in range(3):
            assert adapter.complete(MESSAGES).text == "ok"
    assert server.connections == 1 and len(server.requests) == 3


def test_streams_that_end_cleanly_go_back_to_the_pool(raw: Any) -> None:
    server = raw(serve_stream(good_stream("a", "b")))
    with ModelAdapter(spec(stream=True), server.base_url) as adapter:
        texts = [adapter.complete(MESSAGES).text for _ in range(3)]
    assert texts == ["ab"] * 3 and server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_failure(raw: Any) -> None:
    def serve(conn: socket.socket, index: int) -> None:  # answers one request per connection, keeps it "alive"
        if server.read(conn) is not None:
            conn.sendall(response(completion(f"conn {index}")))

    server = raw(serve)
    with ModelAdapter(spec(retries={"connection_error": 0}), server.base_url) as adapter:
        first = adapter.complete(MESSAGES)
        time.sleep(0.1)  # the server has closed it by now
        second = adapter.complete(MESSAGES)
    assert (first.text, second.text) == ("conn 0", "conn 1") and second.extra["retries"] == []


def test_a_request_the_reused_connection_lost_unanswered_is_sent_once_more(raw: Any) -> None:
    def serve(conn: socket.socket, index: int) -> None:
        if server.read(conn) is None:
            return
        conn.sendall(response(completion("first")))
        if index == 0:  # the next request on this connection is read, then dropped unanswered
            server.read(conn)
            return
        while server.read(conn) is not None:
            conn.sendall(response(completion("again")))

    server = raw(serve)
    with ModelAdapter(spec(retries={"connection_error": 0}), server.base_url) as adapter:
        assert adapter.complete(MESSAGES).text == "first"
        assert adapter.complete(MESSAGES).text == "first"  # connection 1's first answer
    assert server.connections == 2 and len(server.requests) == 3


def test_a_fresh_connection_that_drops_unanswered_is_a_connection_error(raw: Any) -> None:
    server = raw(lambda conn, i: server.read(conn) and None)
    with ModelAdapter(spec(retries={"connection_error": 0}), server.base_url) as adapter:
        failure = failure_of(adapter)
    assert failure.failure == "connection_error" and len(server.requests) == 1


# -- SSE parsing and timings ---------------------------------------------------------------------------


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_sse_line_ends_comments_fields_and_split_reads(raw: Any, newline: bytes) -> None:
    events = [
        b": ping\n\n",
        b"event: message\nid: 1\nretry: 10\n" + sse(delta("", role="assistant")),
        b'data: {"model": "m", "choices": [{"index": 0,\ndata:  "delta": {"content": "he"}}]}\n\n',  # two data lines
        sse(delta("llo")),
        b"event: keepalive\n\n",
        sse(delta(finish="stop")),
        sse(USAGE),
        b"data: [DONE]\n\n",
    ]
    body = b"".join(events).replace(b"\n", newline)

    def serve(conn: socket.socket, index: int) -> None:
        server.read(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nConnection: close\r\n\r\n")
        for i in range(0, len(body), 7):  # reads that cut lines, CRLFs and events anywhere
            conn.sendall(body[i : i + 7])
            time.sleep(0.001)

    server = raw(serve)
    with ModelAdapter(spec(stream=True), server.base_url) as adapter:
        done = adapter.complete(MESSAGES)
    assert done.text == "hello" and done.finish_reason == "stop"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (9, 4)


def test_ttft_itl_and_tpot_follow_vllm_bench(raw: Any) -> None:
    """TTFT to the first chunk with content (not the earlier role chunk); one ITL per later chunk; TPOT over n-1."""
    role, later = [sse(delta("", role="assistant"))], [sse(delta(c)) for c in ("a", "b", "c")]

    def serve(conn: socket.socket, index: int) -> None:
        server.read(conn)
        conn.sendall(STREAM_HEAD + chunk(role[0]))
        time.sleep(0.3)  # the role chunk came at once; the first token 0.3 s later
        for event in later + [sse(delta(finish="stop"))]:
            conn.sendall(chunk(event))
            time.sleep(0.1)
        conn.sendall(chunk(sse(USAGE)) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

    server = raw(serve)
    with ModelAdapter(spec(stream=True), server.base_url) as adapter:
        done = adapter.complete(MESSAGES)
    assert done.ttft_s is not None and done.ttft_s >= 0.3
    assert len(done.itl_s) == 3 and all(gap >= 0.09 for gap in done.itl_s)  # b, c, the finish chunk
    decode = done.extra["decode_s"]
    assert decode == pytest.approx(sum(done.itl_s)) and decode >= 0.27
    assert done.extra["tpot_s"] == pytest.approx(decode / (4 - 1))  # usage says 4 output tokens
    assert done.extra["chunks"] == 6 and done.wall_s > done.ttft_s + decode


#: SSE events no model server should send, and what the failure then says (shared with test_load_async.py).
JUNK_EVENTS = [
    pytest.param(b"data: {not json\n\n", "unreadable response", id="not-json"),
    pytest.param(b"data: [1, 2]\n\n", "not a JSON object", id="not-an-object"),
    pytest.param(b'data: {"error": {"message": "engine died"}}\n\n', "error mid-stream", id="error-event"),
]


@pytest.mark.parametrize(("event", "expected"), JUNK_EVENTS)
def test_junk_sse_is_a_server_error(raw: Any, event: bytes, expected: str) -> None:
    server = raw(serve_stream([sse(delta("", role="assistant")), event, *good_stream("x")]))
    with ModelAdapter(spec(stream=True, retries={"server_error": 0}), server.base_url) as adapter:
        failure = failure_of(adapter)
    assert failure.failure == "server_error" and expected in str(failure), failure


def reset_midway(conn: socket.socket) -> None:
    """Two chunks of a stream, then a reset (RST on close: SO_LINGER 0) instead of the rest."""
    conn.sendall(STREAM_HEAD + chunk(sse(delta("", role="assistant"))) + chunk(sse(delta("a"))))
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def test_a_stream_reset_midway_is_a_connection_error(raw: Any) -> None:
    server = raw(lambda conn, i: (server.read(conn), reset_midway(conn)) and None)
    with ModelAdapter(spec(stream=True, retries={"connection_error": 0}), server.base_url) as adapter:
        assert failure_of(adapter).failure == "connection_error"


def test_a_stream_answered_with_json_says_to_turn_streaming_off(raw: Any) -> None:
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(completion())))
    with ModelAdapter(spec(stream=True, retries={"server_error": 0}), server.base_url) as adapter:
        failure = failure_of(adapter)
    assert failure.failure == "server_error" and "Content-Type application/json" in str(failure)
    assert "stream: false" in str(failure)


def test_html_where_json_was_expected_is_unreadable(raw: Any) -> None:
    page = b"<html><body>502 Bad Gateway</body></html>"
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(page, ctype="text/html")))
    with ModelAdapter(spec(retries={"server_error": 0}), server.base_url) as adapter:
        failure = failure_of(adapter)
    assert failure.failure == "server_error" and "Content-Type text/html" in str(failure) and "502" in str(failure)


@pytest.mark.parametrize(
    "body",
    [b'{"choices": "nope"}', b'{"choices": [{"message": 5}]}', b'{"choices": [{"message": {"content": 5}}]}', b"[]"],
    ids=["choices-not-a-list", "message-not-an-object", "content-not-a-string", "not-an-object"],
)
def test_wrongly_shaped_answers_never_crash(raw: Any, body: bytes) -> None:
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(body)))
    with ModelAdapter(spec(retries={"server_error": 0}), server.base_url) as adapter:
        try:
            done = adapter.complete(MESSAGES)
        except ModelCallError as exc:
            assert exc.failure == "server_error"
        else:
            assert done.text == "" and not done.usage.reported


# -- limits and deadlines ------------------------------------------------------------------------------


def trickle_headers(conn: socket.socket) -> None:
    """A status line, then a header a byte every 50 ms (a server that never finishes its head)."""
    for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 10_000:
        conn.sendall(bytes([byte]))
        time.sleep(0.05)


def test_trickled_headers_end_at_the_deadline(raw: Any) -> None:
    server = raw(lambda conn, i: (server.read(conn), trickle_headers(conn)) and None)
    with ModelAdapter(spec(), server.base_url) as adapter:
        t0 = time.monotonic()
        failure = failure_of(adapter, timeout=1.0)
        took = time.monotonic() - t0
    assert failure.failure == "timeout" and took <= 1.0 + SLACK_S, took


def test_a_server_that_never_answers_ends_at_the_deadline(raw: Any) -> None:
    server = raw(lambda conn, i: (server.read(conn), time.sleep(5)) and None)
    with ModelAdapter(spec(), server.base_url) as adapter:
        t0 = time.monotonic()
        failure = failure_of(adapter, timeout=0.8)
    assert failure.failure == "timeout" and time.monotonic() - t0 <= 0.8 + SLACK_S


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", "longer than 64 KiB"),
        (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", "100 headers"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not HTTP/1.1"),
    ],
    ids=["long-header", "too-many-headers", "not-http"],
)
def test_header_limits_hold(raw: Any, head: bytes, expected: str) -> None:
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(head))
    with ModelAdapter(spec(retries={"server_error": 0}), server.base_url) as adapter:
        failure = failure_of(adapter)
    assert failure.failure == "server_error" and expected in str(failure), failure


def test_an_announced_huge_body_is_refused_unread(raw: Any) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999999999999\r\n\r\n{"
    server = raw(lambda conn, i: (server.read(conn), conn.sendall(head), time.sleep(3)) and None)
    with ModelAdapter(spec(retries={"server_error": 0}), server.base_url) as adapter:
        t0 = time.monotonic()
        failure = failure_of(adapter)
    assert failure.failure == "server_error" and "over the" in str(failure) and time.monotonic() - t0 < 2


@pytest.mark.parametrize("stream", [False, True], ids=["body", "sse-event"])
def test_an_endless_body_or_event_stops_at_its_limit(raw: Any, monkeypatch: pytest.MonkeyPatch, stream: bool) -> None:
    monkeypatch.setattr(http, "MAX_BODY_BYTES", 256 * 1024)
    monkeypatch.setattr(http, "MAX_EVENT_BYTES", 256 * 1024)
    ctype = b"text/event-stream" if stream else b"application/json"

    def serve(conn: socket.socket, index: int) -> None:
        server.read(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.sendall(chunk(b'data: {"x": "' if stream else b'{"x": "'))
        while True:  # for ever, until the client hangs up
            conn.sendall(chunk(b"a" * 65536))

    server = raw(serve)
    with ModelAdapter(spec(stream=stream, retries={"server_error": 0}), server.base_url) as adapter:
        failure = failure_of(adapter)
    assert failure.failure == "server_error" and "over" in str(failure), failure


def test_a_huge_error_body_keeps_only_its_start(raw: Any) -> None:
    body = b'{"error": {"message": "boom' + b"!" * (1 << 20) + b'"}}'
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(body, "500 Internal Server Error")))
    with ModelAdapter(spec(retries={"server_error": 0}), server.base_url) as adapter:
        failure = failure_of(adapter)
    assert failure.failure == "server_error" and failure.status == 500 and len(str(failure)) < 1000


@pytest.mark.parametrize(("status", "failure"), [("429 Slow Down", "rate_limited"), ("503 Busy", "server_error")])
def test_retry_after_is_honoured(raw: Any, status: str, failure: str) -> None:
    answers = [response(b'{"error": {"message": "later"}}', status, extra="Retry-After: 2\r\n"), response(completion())]

    def serve(conn: socket.socket, index: int) -> None:
        while server.read(conn) is not None:
            conn.sendall(answers.pop(0))

    server = raw(serve)
    sleeps: list[float] = []
    with ModelAdapter(spec(), server.base_url, sleep=sleeps.append) as adapter:
        done = adapter.complete(MESSAGES)
    assert done.text == "ok" and done.extra["retries"] == [failure] and sleeps == [2.0]


def test_context_overflow_is_read_from_the_error_body(raw: Any) -> None:
    error = {"message": "This model's maximum context length is 8192 tokens", "code": "context_length_exceeded"}
    body = json.dumps({"error": error}).encode()
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(body, "400 Bad Request")))
    with ModelAdapter(spec(), server.base_url) as adapter:
        failure = failure_of(adapter)
    assert failure.failure == "context_overflow" and failure.status == 400 and "8192 tokens" in str(failure)


# -- secrets and proxies -------------------------------------------------------------------------------


def test_the_key_goes_in_the_header_and_never_into_an_error(raw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTBENCH_TEST_KEY", "sk-test-client-0123456789")
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(b"oops", "500 Internal Server Error")))
    with ModelAdapter(spec(api_key_env="AGENTBENCH_TEST_KEY", retries={"server_error": 0}), server.base_url) as a:
        failure = failure_of(a)
    assert b"Authorization: Bearer sk-test-client-0123456789" in server.requests[0]
    assert "sk-test" not in str(failure) and "oops" in str(failure)
    refused = ModelAdapter(spec(retries={"connection_error": 0}), "http://user:sk-in-url@127.0.0.1:9/v1")
    failure = failure_of(refused)
    assert failure.failure == "connection_error" and "sk-in-url" not in str(failure)


def test_loopback_never_goes_through_the_environment_proxy(raw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(completion())))
    with ModelAdapter(spec(), server.base_url) as adapter:
        assert adapter.complete(MESSAGES).text == "ok"


def test_a_remote_endpoint_goes_through_the_environment_proxy(raw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy is ours on 127.0.0.1; the endpoint's name is never resolved (the proxy would)."""
    proxy = raw(lambda conn, i: proxy.read(conn) and conn.sendall(response(completion("via proxy"))))
    monkeypatch.setenv("http_proxy", f"http://u:p@127.0.0.1:{proxy.sock.getsockname()[1]}")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.sock.getsockname()[1]}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with ModelAdapter(spec(), "http://api.example.invalid/v1") as adapter:
        assert adapter.complete(MESSAGES).text == "via proxy"
    assert proxy.requests[0].startswith(b"POST http://api.example.invalid:80/v1/chat/completions HTTP/1.1")
    assert b"Proxy-Authorization: Basic dTpw" in proxy.requests[0]
    with ModelAdapter(spec(retries={"connection_error": 0}), "https://api.example.invalid/v1") as adapter:
        failure = failure_of(adapter)  # CONNECT is tried; no TLS server answers in that "tunnel"
    assert failure.failure == "connection_error" and proxy.requests[-1].startswith(b"CONNECT api.example.invalid:443")


# -- the one-shot helper -------------------------------------------------------------------------------


def test_request_returns_error_statuses_and_raises_oserror_when_nothing_answers(raw: Any) -> None:
    server = raw(lambda conn, i: server.read(conn) and conn.sendall(response(b"gone", "404 Not Found", "text/plain")))
    answer = http.request(server.base_url.removesuffix("/v1") + "/metrics", timeout=5)
    assert (answer.status, answer.text()) == (404, "gone")
    assert b"GET /metrics HTTP/1.1" in server.requests[0] and b"Connection: close" in server.requests[0]
    with pytest.raises(OSError):
        http.request("http://127.0.0.1:9/health", timeout=2)


# -- what the measuring gateway uses: raw events, a call's own caps and headers, error bodies, a Unix socket --


def test_raw_events_come_as_sent_and_the_connection_is_pooled(raw: Any) -> None:
    named = b'event: message_start\r\ndata: {"type": "message_start"}\r\n\r\n'
    server = raw(serve_stream([named, b": ping\n\n", sse(delta("hi")), b"data: [DONE]\n\n"]))
    with http.Client(server.base_url) as client:
        for _ in range(2):
            with client.stream("/chat/completions", b"{}", timeout=5, raw=True) as events:
                got = list(events)
            assert events.done and events.status == 200
    assert got == [named.replace(b"\r\n", b"\n"), b": ping\n\n", sse(delta("hi")), b"data: [DONE]\n\n"]
    assert server.connections == 1


def test_a_calls_own_headers_and_caps(raw: Any) -> None:
    def serve(conn: socket.socket, index: int) -> None:
        while server.read(conn) is not None:
            conn.sendall(STREAM_HEAD + chunk(b"data: " + b"x" * 5000) + b"0\r\n\r\n")  # an event that never ends

    server = raw(serve)
    with http.Client(server.base_url, {"Authorization": "Bearer client"}) as client:
        with pytest.raises(http.TooLarge, match="SSE event over 1,000 bytes"):
            own = {"Authorization": "Bearer call", "x-api-key": "k"}
            with client.stream("/chat/completions", b"{}", timeout=5, headers=own, raw=True, caps=(1000, 10**6)) as s:
                list(s)
        with pytest.raises(http.TooLarge, match="streamed more than 3,000 bytes"):
            with client.stream("/chat/completions", b"{}", timeout=5, caps=(10**6, 3000)) as s:
                list(s)
    first, second = server.requests
    assert b"Authorization: Bearer call\r\n" in first and b"x-api-key: k\r\n" in first and b"client" not in first
    assert b"Authorization: Bearer client\r\n" in second


def test_a_status_error_keeps_the_answer_as_read(raw: Any) -> None:
    body = json.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}).encode()
    server = raw(
        lambda conn, i: server.read(conn) and conn.sendall(response(body, "429 Too Many", extra="Retry-After: 3\r\n"))
    )
    with http.Client(server.base_url) as client, pytest.raises(http.StatusError) as refused:
        client.stream("/messages", b"{}", timeout=5)
    error = refused.value
    assert (error.status, error.retry_after, error.body, str(error)) == (429, 3.0, body, "slow down")
    assert error.headers is not None and error.headers["retry-after"] == "3"
    assert http.StatusError.of(http.HttpAnswer(500, b"oops"), "u").body == b"oops"


def test_a_client_over_a_unix_socket_keeps_its_connection(tmp_path: Path) -> None:
    path = str(tmp_path / "admin.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while (request := read_request(conn)) is not None:
                seen.append(request)
                conn.sendall(response(b'{"ok": true}'))

    threading.Thread(target=serve, daemon=True).start()
    with http.Client("http://gateway", unix_socket=path) as client:
        answers = [client.call("GET", "/agentbench/totals", timeout=5) for _ in range(3)]
    listener.close()
    assert [(a.status, a.body) for a in answers] == [(200, b'{"ok": true}')] * 3 and len(seen) == 3
    assert seen[0].startswith(b"GET /agentbench/totals HTTP/1.1\r\nHost: gateway\r\n")  # one connection, kept alive
    with pytest.raises(http.ConnectError, match=f"socket {tmp_path / 'missing.sock'}"):
        http.Client("http://gateway", unix_socket=str(tmp_path / "missing.sock")).call("GET", "/", timeout=2)
