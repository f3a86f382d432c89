"""The one HTTP client of the package: pooled keep-alive HTTP/1.1, server-sent events, hard limits.

Model calls (the adapter: agent turns, probes, sweeps and load) go through a :class:`Client`: one
per alias and thread of callers, keeping its connections alive between calls. One-shot requests
to the servers on this machine (health, ``/metrics``, admin endpoints) go through :func:`request`.
The measuring gateway forwards agents' calls through a :class:`Client` per upstream (streams
``raw``: each event as sent) and reaches its admin Unix socket with one (``unix_socket=PATH``).
Built on the standard library's ``http.client``: measured against ``httpx`` and ``aiohttp`` on
an instant server (``benchmarks/bench_harness.py``), it costs the least CPU per call and per
streamed event, needs no event loop in the agent's threads and adds no dependency.

The server is assumed broken or hostile. Every answer is held to limits: a status line or header
line of at most 64 KiB and at most 100 headers (``http.client``'s), a body of at most
:data:`MAX_BODY_BYTES` (an error body: :data:`MAX_ERROR_BYTES`), an SSE event of at most
:data:`MAX_EVENT_BYTES` and a stream of at most :data:`MAX_STREAM_BYTES`. Each read waits at most
the call's timeout; a :class:`~pytest_agentbench.models.deadline.CallGuard` passed in gets the
socket *before* the request is sent, so trickled headers or a stream kept alive by pings end at
the guard's deadline too. Bodies are never decompressed (``Accept-Encoding: identity``).

Proxies: a model endpoint off this machine is reached through the environment's proxy
(``https_proxy``/``http_proxy``, ``no_proxy`` honoured), as the ``openai`` SDK did; loopback
traffic and :func:`request` never use one.

Errors, mapped from the standard library's in one place (:func:`_mapped`)::

    HttpError(OSError)       anything this client raises (an OSError, as urllib's errors were)
    ├── ConnectError         nothing was reached: refused, no such host, TLS handshake, proxy
    ├── ConnectionLost       the connection broke mid-exchange: reset, closed early, truncated body
    ├── ReadTimeout          one read waited longer than the timeout
    ├── ProtocolError        the answer is not HTTP/1.1 as specified (status line, headers, chunks)
    │   ├── TooLarge         a body, an event or a stream over its limit
    │   └── NotAStream       a streamed request answered without ``text/event-stream``
    └── StatusError          an HTTP status >= 400 where a success was needed (status, message,
                             Retry-After, the body as read); :func:`request` returns statuses
                             as answers instead

``models/taxonomy.py`` maps these to failure classes.
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_agentbench.serving.sse import SseSplitter

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ERROR_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_STREAM_BYTES",
    "Client",
    "ConnectError",
    "ConnectionLost",
    "EventStream",
    "HttpAnswer",
    "HttpError",
    "ProtocolError",
    "ReadTimeout",
    "StatusError",
    "NotAStream",
    "TooLarge",
    "UnixHTTPConnection",
    "check_event_stream",
    "request",
    "retry_after",
    "status_message",
]

MAX_BODY_BYTES = 32 * 1024 * 1024  # a whole answer; a chat completion is KiBs
MAX_ERROR_BYTES = 64 * 1024  # the body of an error status: only its message is kept
MAX_EVENT_BYTES = 4 * 1024 * 1024  # one SSE event (a token chunk is ~200 bytes; a tool call in one chunk more)
MAX_STREAM_BYTES = 256 * 1024 * 1024  # a whole stream (~300 bytes a token: 800k+ tokens)
_READ = 65536
_DRAIN_S = 1.0  # after [DONE]: how long the end of the body may take before the connection is dropped
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_Conn, _Response = http.client.HTTPConnection, http.client.HTTPResponse
_Extra = Mapping[str, str] | None  # a request's own headers, on top of the client's
_Caps = tuple[int, int]  # an SSE event's and a whole stream's limits, in bytes


class HttpError(OSError):
    """Anything this client raises; ``url`` is the request's (without credentials)."""

    def __init__(self, message: str, url: str = ""):
        super().__init__(message)
        self.url = url

    def __str__(self) -> str:
        return str(self.args[0])


class ConnectError(HttpError):
    """Nothing was reached: refused, no such host, TLS handshake, proxy tunnel."""


class ConnectionLost(HttpError):
    """The connection broke mid-exchange: reset, closed before the answer was complete."""


class ReadTimeout(HttpError):
    """One read waited longer than the call's timeout."""


class ProtocolError(HttpError):
    """The answer is not HTTP/1.1 as specified, or is over a header limit."""


class TooLarge(ProtocolError):
    """A body, an SSE event or a stream over its limit."""


class NotAStream(ProtocolError):
    """A streamed request answered with another content type than ``text/event-stream``."""


class StatusError(HttpError):
    """An HTTP status >= 400; ``message`` is the server's own (from its JSON error body, if any);
    ``body`` and ``headers`` are the answer as read (its first :data:`MAX_ERROR_BYTES`), when known."""

    body: bytes = b""
    headers: Mapping[str, str] | None = None

    def __init__(self, status: int, message: str, retry_after: float | None, url: str = ""):
        super().__init__(message, url)
        self.status = status
        self.retry_after = retry_after

    @classmethod
    def of(cls, answer: HttpAnswer, url: str = "") -> StatusError:
        """The error an answer with a status >= 400 stands for (its message from the body)."""
        error = cls(answer.status, status_message(answer.status, answer.body), retry_after(answer.headers or {}), url)
        error.body, error.headers = answer.body, answer.headers
        return error


class Guard(Protocol):
    """What a call's deadline guard offers (``models.deadline.CallGuard``)."""

    def attach(self, sock: socket.socket) -> None: ...

    def disarm(self) -> None: ...

    @property
    def fired(self) -> bool: ...


@dataclass(frozen=True)
class HttpAnswer:
    """A status, the headers and the body; an HTTP error status is an answer, not an exception."""

    status: int
    body: bytes
    headers: Mapping[str, str] | None = None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _as_http_error(exc: BaseException, url: str) -> HttpError:
    """The one place the standard library's exceptions become :class:`HttpError` kinds."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, TimeoutError):  # socket.timeout
        return ReadTimeout(f"no answer within the timeout from {url}", url)
    if isinstance(exc, http.client.RemoteDisconnected):
        return ConnectionLost(f"{url} closed the connection without answering", url)
    if isinstance(exc, http.client.IncompleteRead):
        return ConnectionLost(f"{url} closed the connection before the answer was complete", url)
    if isinstance(exc, ConnectionError | ssl.SSLError):
        return ConnectionLost(f"the connection to {url} broke: {exc}", url)
    if isinstance(exc, http.client.LineTooLong):
        return ProtocolError(f"{url} sent a line longer than 64 KiB ({exc})", url)
    if isinstance(exc, http.client.HTTPException | ValueError):  # BadStatusLine, > 100 headers, a bad chunk
        return ProtocolError(f"{url} answered something that is not HTTP/1.1 ({type(exc).__name__}: {exc})", url)
    return ConnectionLost(f"the connection to {url} failed: {type(exc).__name__}: {exc}", url)


@contextmanager
def _mapped(url: str) -> Iterator[None]:
    """Inside the block, the standard library's I/O and HTTP errors leave as :class:`HttpError`."""
    try:
        yield
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _as_http_error(exc, url) from exc


def _env_proxy(scheme: str, host: str) -> tuple[str, int, dict[str, str]] | None:
    """The environment's proxy for ``host`` (never for loopback): host, port and its auth header."""
    if host in _LOOPBACK or urllib.request.proxy_bypass(host):
        return None
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy:
        return None
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    headers = {}
    if parts.username:
        creds = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
    return parts.hostname or "", parts.port or 8080, headers


def _dropped(sock: socket.socket | None) -> bool:
    """An idle keep-alive connection the server closed (readable while idle: EOF or junk)."""
    if sock is None:
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def status_message(status: int, body: bytes) -> str:
    """The server's message from an error body: OpenAI's ``{"error": {"message", "code"}}`` and kin."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500] or http.client.responses.get(status, "error")
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("code")
        return error["message"] + (f" ({code})" if isinstance(code, str) and code not in error["message"] else "")
    for value in (error, *(data.get(k) for k in ("message", "detail") if isinstance(data, dict))):
        if isinstance(value, str):
            return value
    return text[:500]


def check_event_stream(content_type: str | None, url: str) -> None:
    """Raise :class:`NotAStream` unless a streamed request's answer is ``text/event-stream`` (or says nothing)."""
    ctype = (content_type or "text/event-stream").split(";")[0].strip().lower()
    if ctype != "text/event-stream":
        raise NotAStream(
            f"{url} answered a streamed request with Content-Type {ctype}, not text/event-stream: "
            "the server does not stream; set `stream: false` for this alias",
            url,
        )


def retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _read_capped(response: http.client.HTTPResponse, cap: int, url: str) -> bytes:
    """The whole body, refused past ``cap`` bytes (announced or read)."""
    if response.status >= 400:  # an error body: its start is enough (the connection is dropped if more follows)
        return response.read(MAX_ERROR_BYTES)
    if response.length is not None and response.length > cap:
        raise TooLarge(f"{url} announced a body of {response.length} bytes, over the {cap >> 10} KiB limit", url)
    body = response.read(cap + 1)
    if len(body) > cap:
        raise TooLarge(f"{url} sent a body over the {cap >> 10} KiB limit", url)
    return body


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a Unix-domain socket at ``path`` (the URL's host only names the ``Host``)."""

    def __init__(self, path: str, host: str = "localhost", timeout: float | None = None):
        super().__init__(host, timeout=timeout)
        self.path = path

    def connect(self) -> None:  # a failure leaves the socket to close(), as HTTPConnection's does
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Client:
    """Keep-alive connections to one base URL (``http`` or ``https``), shared by threads.

    ``headers`` go with every request (e.g. ``Authorization``), a request's own on top of them.
    ``unix_socket``: connect to that socket path instead of the URL's host (never through a proxy).
    A connection is reused while the server keeps it open; one the server closed while idle is
    noticed before reuse, and a request that fails on a reused connection before any answer
    arrived is sent once more on a new one.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        use_env_proxy: bool = True,
        max_idle: int = 16,
        unix_socket: str | None = None,
    ):
        parts = urllib.parse.urlsplit(base_url)
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.url = f"{self.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path.rstrip('/')}"
        self._prefix = parts.path.rstrip("/")
        self._query = f"?{parts.query}" if parts.query else ""
        self._headers = {"Accept": "application/json", "User-Agent": "pytest-agentbench", **(headers or {})}
        self._unix = unix_socket
        self._proxy = _env_proxy(self.scheme, self.host) if use_env_proxy and unix_socket is None else None
        if self._proxy is not None and self.scheme == "http":  # absolute URLs to the proxy, with its credentials
            self._headers.update(self._proxy[2])
        self._tls = ssl.create_default_context() if self.scheme == "https" else None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle
        self._closed = False

    # -- connections ---------------------------------------------------------
    def _new(self) -> http.client.HTTPConnection:
        if self.scheme not in ("http", "https") or not self.host:
            raise ConnectError(f"cannot reach {self.url}: only http:// and https:// URLs with a host are supported")
        if self._unix is not None:
            return UnixHTTPConnection(self._unix, self.host)
        if self._proxy is None:
            if self._tls is not None:
                return http.client.HTTPSConnection(self.host, self.port, context=self._tls)
            return http.client.HTTPConnection(self.host, self.port)
        host, port, auth = self._proxy
        if self._tls is None:  # plain HTTP through a proxy: absolute URLs to the proxy itself
            conn = http.client.HTTPConnection(host, port)
        else:
            conn = http.client.HTTPSConnection(host, port, context=self._tls)
            conn.set_tunnel(self.host, self.port, headers=auth)
        return conn

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection and whether it was reused (idle ones the server closed are dropped)."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._new(), False
            if not _dropped(conn.sock):
                return conn, True
            conn.close()

    def _give(self, conn: http.client.HTTPConnection, guard: Guard | None) -> None:
        """Back to the pool after a complete answer; closed if the guard fired meanwhile or the pool is full."""
        if guard is not None:
            guard.disarm()  # from here on the watchdog leaves the socket alone ...
            if guard.fired:  # ... unless it already cut it
                conn.close()
                return
        with self._lock:
            if not self._closed and conn.sock is not None and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def _open(self, conn: http.client.HTTPConnection, timeout: float, guard: Guard | None) -> None:
        if conn.sock is None:
            conn.timeout = timeout
            try:
                conn.connect()
            except TimeoutError as exc:
                raise ConnectError(f"cannot reach {self.url}: no connection within {timeout:.1f} s", self.url) from exc
            except (OSError, http.client.HTTPException) as exc:  # refused, DNS, TLS, proxy tunnel
                where = f"{self.url} (socket {self._unix})" if self._unix else self.url
                raise ConnectError(f"cannot reach {where}: {exc}", self.url) from exc
        assert conn.sock is not None
        conn.sock.settimeout(timeout)
        if guard is not None:
            guard.attach(conn.sock)

    def _target(self, path: str) -> str:
        target = f"{self._prefix}{path}{self._query}"
        if self._proxy is not None and self._tls is None:
            return f"http://{self.host}:{self.port}{target}"
        return target

    def _send(
        self, method: str, path: str, body: bytes | None, timeout: float, guard: Guard | None, extra: _Extra = None
    ) -> tuple[_Conn, _Response]:
        """Send and read the status and headers; a reused connection that was dropped is replaced once."""
        headers = self._headers if body is None else {**self._headers, "Content-Type": "application/json"}
        if extra:
            headers = {**headers, **extra}
        target = self._target(path)
        for _ in range(2):
            conn, reused = self._take()
            try:
                self._open(conn, timeout, guard)
                with _mapped(self.url):
                    conn.request(method, target, body, headers)
                    return conn, conn.getresponse()
            except ConnectionLost:
                conn.close()
                if not reused or (guard is not None and guard.fired):
                    raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- requests ------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        timeout: float,
        guard: Guard | None = None,
        cap: int = MAX_BODY_BYTES,
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        """One request; any status comes back as an answer (a body over ``cap`` bytes is refused)."""
        conn, response = self._send(method, path, body, timeout, guard, headers)
        try:
            with _mapped(self.url):
                data = _read_capped(response, cap, self.url)
        except BaseException:
            conn.close()
            raise
        if response.isclosed():
            self._give(conn, guard)
        else:
            conn.close()
        return HttpAnswer(response.status, data, response.headers)

    def post_json(self, path: str, body: bytes, *, timeout: float, guard: Guard | None = None) -> Any:
        """POST a JSON body and decode the JSON answer; a status >= 400 raises :class:`StatusError`."""
        answer = self.call("POST", path, body, timeout=timeout, guard=guard)
        if answer.status >= 400:
            raise StatusError.of(answer, self.url)
        try:
            return json.loads(answer.body)
        except ValueError:
            ctype = (answer.headers or {}).get("content-type") or "none"
            raise ValueError(f"not JSON (Content-Type {ctype}): {answer.text()[:200]!r}") from None

    def stream(
        self,
        path: str,
        body: bytes,
        *,
        timeout: float,
        guard: Guard | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
        caps: _Caps | None = None,
    ) -> EventStream:
        """POST a JSON body and read the answer as server-sent events (use as a context manager);
        ``raw``, ``caps`` (None: the module's limits, read at the call): see :class:`EventStream`."""
        conn, response = self._send("POST", path, body, timeout, guard, headers)
        try:
            if response.status >= 400:
                with _mapped(self.url):
                    data = _read_capped(response, MAX_ERROR_BYTES, self.url)
                raise StatusError.of(HttpAnswer(response.status, data, response.headers), self.url)
            check_event_stream(response.headers.get("content-type"), self.url)
        except BaseException:
            conn.close()
            raise
        return EventStream(self, conn, response, guard, raw, caps or (MAX_EVENT_BYTES, MAX_STREAM_BYTES))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventStream:
    """The ``data`` of each server-sent event as bytes, until ``[DONE]`` or the end of the body.

    Comments (``: ping``) and events without data are skipped; lines may end in LF, CRLF or CR.
    ``raw``: each event as sent instead (``event:``/``id:`` lines, comments and ``[DONE]`` too, line
    ends as LF, its blank line kept). ``caps``: the largest event and the largest stream, in bytes.
    Closing it returns a cleanly finished connection to the pool and drops any other.
    """

    def __init__(self, client: Client, conn: _Conn, response: _Response, guard: Guard | None, raw: bool, caps: _Caps):
        self._client, self._conn, self._response, self._guard = client, conn, response, guard
        self.status = response.status
        self.done = False  # [DONE] was seen
        self._raw, self._caps = raw, caps

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._events()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _as_http_error(exc, self._client.url) from exc

    def _events(self) -> Iterator[bytes]:
        read, (max_event, max_stream) = self._response.read1, self._caps
        splitter = SseSplitter(self._client.url, max_event, max_stream, raw=self._raw)
        feed = splitter.feed
        while data := read(_READ):  # until the body ends (an event cut off there is dropped, as SSE says)
            yield from feed(data)
            if splitter.done:
                self.done = True
                return

    def close(self) -> None:
        """Pool the connection if the body ended cleanly (after [DONE], within a short drain); else drop it."""
        conn, response = self._conn, self._response
        clean = response.isclosed()
        if self.done and not clean and not response.will_close:
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(_DRAIN_S)
                with _mapped(self._client.url):
                    rest = response.read(_READ)
                clean = response.isclosed() and not rest.strip()
            except HttpError:
                clean = False
        if clean and not response.will_close:
            self._client._give(conn, self._guard)
        else:
            response.close()
            conn.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    json_body: Any = None,
    timeout: float = 10.0,
    max_bytes: int | None = None,
) -> HttpAnswer:
    """One request on a fresh connection, never through a proxy (health, /metrics, admin endpoints, /version);
    a body over ``max_bytes`` (default :data:`MAX_BODY_BYTES`) is refused with :class:`TooLarge`.

    ``json_body`` is sent as JSON (vLLM's /tokenize wants the content type). An HTTP error status
    is an answer; raises :class:`HttpError` (an ``OSError``) when nothing usable answers.
    """
    if json_body is not None:
        data = json.dumps(json_body).encode()
    parts = urllib.parse.urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = data if data is not None or method == "GET" else b""
    with Client(base, {"Connection": "close"}, use_env_proxy=False, max_idle=0) as client:
        return client.call(method, path, body, timeout=timeout, cap=max_bytes or MAX_BODY_BYTES)
