"""The measuring gateway's HTTP server: its listeners, the limits it holds clients to, and the admin API.

    with Gateway({"local-coder": route_for(spec, base_url)}) as gateway:
        ticket = gateway.open_run("local-coder", max_total_tokens=200_000)
        # the agent calls gateway.base_url (host) or, in a sandbox, the agent socket, with ticket.token
        calls = gateway.close_run(ticket.run_id).calls     # CallRecords (workers: GatewayClient)

Three listeners, one handler, one thread per connection:

* ``http://127.0.0.1:PORT`` (TCP): the model routes (``POST /v1/chat/completions``,
  ``/v1/responses``, ``/v1/messages``, ``/v1/messages/count_tokens``; ``GET /v1/models``
  answers the run's alias; ``GET /health``), for agents on the host;
* the *agent socket* (``<dir>/agent/gateway.sock``, mode 0666 in its own folder): the same model
  routes, for sandboxes - only this folder is mounted into them (``sandbox.*`` ``gateway_socket``);
* the *admin socket* (``<dir>/admin.sock``, mode 0600, never mounted): the harness's API - ``POST
  /agentbench/runs`` opens a run and returns its token, ``GET|DELETE /agentbench/runs/ID`` reads or
  closes it (with its calls), ``GET /agentbench/totals`` the per-alias totals. Nothing but the
  harness's own user can connect to it; the model routes never serve it.

Every model call needs a run token (:mod:`.runs`); a missing, unknown or expired one is a 401 in
the protocol's error shape. Hostile clients are held to :class:`~.proxy.Limits`: a request
body over ``max_request_bytes`` is a 413 (unread), a chunked request a 411; the request line,
headers and body must arrive within ``request_read_s`` (a slowloris is cut by the call-deadline
watchdog, :mod:`pytest_agentbench.models.deadline`), every read or write within ``io_timeout_s``;
at most ``max_connections`` connections are open at once (more get a 503 and are closed).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_agentbench.models.deadline import WATCHDOG, CallGuard
from pytest_agentbench.serving.gateway.client import GatewayHandle, RunCalls, RunTicket
from pytest_agentbench.serving.gateway.protocols import COUNT_TOKENS_PATH, ROUTES, Protocol, error_body
from pytest_agentbench.serving.gateway.proxy import Limits, Proxy
from pytest_agentbench.serving.gateway.runs import RunRegistry, TokenRefused
from pytest_agentbench.serving.gateway.upstream import ClientGone, Route, Upstream

__all__ = ["AGENT_SOCKET", "Gateway"]

AGENT_SOCKET = "gateway.sock"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b'Content-Length: 88\r\n\r\n{"error": {"message": "agentbench gateway: too many open connections", "type": "busy"}}'
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any  # a listener with .gateway and .admin

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the records are the log
        pass

    def setup(self) -> None:
        self.gateway: Gateway = self.server.gateway
        self.timeout = self.gateway.limits.io_timeout_s
        self.disable_nagle_algorithm = self.server.address_family == socket.AF_INET
        super().setup()

    def handle_one_request(self) -> None:
        self.started = False
        self._guard = CallGuard(time.monotonic() + self.gateway.limits.request_read_s)
        WATCHDOG.arm(self._guard)
        self._guard.attach(self.connection)
        try:
            super().handle_one_request()
        except (ClientGone, OSError):  # the client went away (a reset, a cut at the read deadline)
            self.close_connection = True
        finally:
            self._guard.disarm()

    # -- replies (the proxy's Reply) ---------------------------------------
    def raw(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:
            raise ClientGone from exc

    def json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self.raw(status, json.dumps(obj).encode(), "application/json", headers)

    def start_stream(self, status: int) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
        except OSError as exc:
            raise ClientGone from exc
        self.started = True

    def chunk(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except OSError as exc:
            raise ClientGone from exc

    def end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError as exc:
            raise ClientGone from exc

    def abort(self) -> None:
        """Drop the connection mid-answer (no final chunk): the agent sees a broken stream."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- requests --------------------------------------------------------------
    def _fail(self, protocol: Protocol | None, status: int, kind: str, message: str, close: bool = False) -> None:
        if close:
            self.close_connection = True
        self.json(status, error_body(protocol, kind, message), {"Connection": "close"} if close else None)

    def _body(self, protocol: Protocol | None) -> bytes | None:
        """The request body within the limits, or None (the error is sent)."""
        limits = self.gateway.limits
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._fail(protocol, 411, "invalid_request_error", "agentbench gateway: send a Content-Length", True)
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._fail(protocol, 400, "invalid_request_error", "agentbench gateway: bad Content-Length", True)
            return None
        if length > limits.max_request_bytes:
            message = f"agentbench gateway: the request has {length:,} bytes; at most {limits.max_request_bytes:,}"
            self._fail(protocol, 413, "request_too_large", message, True)
            return None
        data = self.rfile.read(length)
        if len(data) != length:  # the client went away, or was cut at the read deadline
            self.close_connection = True
            return None
        self._guard.disarm()  # the request is in: from here on the upstream's deadline rules
        return data

    def _json_body(self, protocol: Protocol | None) -> dict[str, Any] | None:
        data = self._body(protocol)
        if data is None:
            return None
        try:
            body = json.loads(data or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            message = "agentbench gateway: the request body is not a JSON object"
            self._fail(protocol, 400, "invalid_request_error", message)
            return None
        return body

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return self.headers.get("x-api-key") or None

    def _run(self, protocol: Protocol | None) -> Any:
        try:
            return self.gateway.runs.authenticate(self._token())
        except TokenRefused as exc:
            self._fail(protocol, 401, "authentication_error", str(exc))
            return None

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path.startswith("/agentbench/"):
            self._admin("POST", path)
            return
        protocol = ROUTES.get(path)
        if protocol is None and path != COUNT_TOKENS_PATH:
            routes = ", ".join([*ROUTES, COUNT_TOKENS_PATH])
            message = f"agentbench gateway: no route POST {path}; it serves {routes}"
            self._fail(None, 404, "not_found_error", message, True)
            return
        shape: Protocol = protocol or "messages"
        run = self._run(shape)
        body = self._json_body(shape) if run is not None else None
        if run is None or body is None:
            self.close_connection = self.close_connection or run is None
            return
        if protocol is None:
            self.gateway.proxy.count_tokens(self, run, body, self._headers())
        else:
            self.gateway.proxy.call(self, run, protocol, body, self._headers())

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/health":
            self.json(200, {"status": "ok"})
        elif path.startswith("/agentbench/"):
            self._admin("GET", path)
        elif path == "/v1/models":
            run = self._run(None)
            if run is not None:
                model = self.gateway.proxy.routes[run.alias].model
                self.json(200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": run.alias}]})
        else:
            self._fail(None, 404, "not_found_error", f"agentbench gateway: no route GET {path}")

    def do_DELETE(self) -> None:
        self._admin("DELETE", urlsplit(self.path).path.rstrip("/"))

    # -- the admin API (admin socket only) ---------------------------------------
    def _admin(self, method: str, path: str) -> None:
        if not self.server.admin:
            self._fail(None, 404, "not_found_error", f"agentbench gateway: no route {method} {path}", True)
            return
        registry = self.gateway.runs
        parts = path.split("/")[2:]  # ["runs", ID] | ["totals"]
        try:
            if method == "POST" and parts == ["runs"]:
                self._open_run()
            elif method == "GET" and parts == ["totals"]:
                self.json(200, registry.totals())
            elif len(parts) == 2 and parts[0] == "runs" and method in ("GET", "DELETE"):
                run = registry.close(parts[1]) if method == "DELETE" else registry.get(parts[1])
                self.json(200, run.summary())
            else:
                self._fail(None, 404, "not_found_error", f"agentbench gateway: no admin route {method} {path}")
        except KeyError as exc:
            self._fail(None, 404, "not_found_error", f"agentbench gateway: {exc.args[0] if exc.args else exc}")

    def _open_run(self) -> None:
        body = self._json_body(None)
        if body is None:
            return
        try:
            run, token = self.gateway.runs.open(
                str(body.get("alias")),
                run_id=body.get("run_id"),
                max_total_tokens=body.get("max_total_tokens"),
                ttl_s=body.get("ttl_s"),
                max_calls=body.get("max_calls"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            self._fail(None, 400, "invalid_request_error", f"agentbench gateway: {exc.args[0] if exc.args else exc}")
            return
        self.json(200, {"run_id": run.run_id, "alias": run.alias, "token": token})


class _Capped:
    """Shared by the listeners: at most ``limit`` connections at once; the rest get a 503 and are closed."""

    gateway: Gateway
    admin = False

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.gateway.slots.acquire(blocking=False):
            try:
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        super().process_request(request, client_address)  # type: ignore[misc]

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self.gateway.slots.release()


class _TcpListener(_Capped, ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:  # no reverse DNS lookup of 127.0.0.1 (HTTPServer's getfqdn)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class _UnixListener(_Capped, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[Any, Any]:
        request, _ = super().get_request()
        return request, ("unix", 0)


def _socket_parent(parent: Path | str | None) -> str:
    """Where the socket folder goes: short (a socket path has at most 107 bytes) and reachable by the
    sandbox's user (the local sandbox runs as another uid when the harness is root)."""
    if parent is not None:
        return str(parent)
    return "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK | os.X_OK) else tempfile.gettempdir()


class Gateway:
    """The measuring gateway for some aliases' routes; ``start()`` / ``stop()`` or a context manager."""

    def __init__(
        self, routes: Mapping[str, Route], *, limits: Limits | None = None, socket_dir: Path | str | None = None
    ) -> None:
        self.limits = limits or Limits()
        self.runs = RunRegistry(routes)
        self.upstream = Upstream(max_idle=min(64, self.limits.max_connections))  # open ones: at most one a client
        self.proxy = Proxy(routes, self.runs, self.upstream, self.limits)
        self.slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._parent = socket_dir
        self._dir: Path | None = None
        self._listeners: list[Any] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> Gateway:
        """Bind the TCP port and both sockets and serve them; on any failure stop and re-raise."""
        try:
            self._dir = Path(tempfile.mkdtemp(prefix="agentbench-gw-", dir=_socket_parent(self._parent)))
            os.chmod(self._dir, 0o711)
            for name, mode in (("agent", 0o755), ("admin", 0o700)):
                (self._dir / name).mkdir(mode=mode)
                os.chmod(self._dir / name, mode)
            if len(str(self.admin_socket).encode()) > 100:
                raise OSError(f"the gateway's socket path {self.admin_socket} is too long for a Unix socket")
            self._serve(_TcpListener(("127.0.0.1", 0), _Handler))
            self._serve(_UnixListener(str(self.agent_socket), _Handler))
            os.chmod(self.agent_socket, 0o666)  # the sandbox's user connects: the run token is the guard
            self._serve(_UnixListener(str(self.admin_socket), _Handler), admin=True)
            os.chmod(self.admin_socket, 0o600)  # in a 0700 folder already: the harness's user only
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, listener: Any, *, admin: bool = False) -> None:
        listener.gateway, listener.admin = self, admin
        self._listeners.append(listener)
        thread = threading.Thread(
            target=listener.serve_forever, kwargs={"poll_interval": 0.2}, name="agentbench-gateway", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` on the host (for agents that run there)."""
        return f"http://127.0.0.1:{self._listeners[0].server_address[1]}/v1"

    @property
    def agent_socket(self) -> Path:
        """The socket sandboxes get (its folder is what they mount)."""
        assert self._dir is not None, "the gateway is not started"
        return self._dir / "agent" / AGENT_SOCKET

    @property
    def admin_socket(self) -> Path:
        assert self._dir is not None, "the gateway is not started"
        return self._dir / "admin" / "admin.sock"

    def handle(self) -> GatewayHandle:
        """The running gateway as plain data, for processes that did not start it (xdist workers)."""
        return GatewayHandle(self.base_url, str(self.agent_socket), str(self.admin_socket))

    def open_run(
        self,
        alias: str,
        *,
        run_id: str | None = None,
        max_total_tokens: int | None = None,
        ttl_s: float | None = None,
        max_calls: int | None = None,
    ) -> RunTicket:
        """A run of ``alias`` and its token, in this process (workers use :class:`GatewayClient`)."""
        run, token = self.runs.open(
            alias, run_id=run_id, max_total_tokens=max_total_tokens, ttl_s=ttl_s, max_calls=max_calls
        )
        return RunTicket(run.run_id, alias, token, self.base_url, str(self.agent_socket))

    def run_calls(self, run_id: str) -> RunCalls:
        """A run's calls so far."""
        return RunCalls.from_summary(self.runs.get(run_id).summary())

    def close_run(self, run_id: str) -> RunCalls:
        """End a run (its token stops working at once) and return its calls."""
        return RunCalls.from_summary(self.runs.close(run_id).summary())

    def totals(self) -> dict[str, dict[str, Any]]:
        return self.runs.totals()

    def stop(self) -> None:
        """Stop serving, close the upstream client, remove the sockets; idempotent."""
        stopping = [threading.Thread(target=listener.shutdown, daemon=True) for listener in self._listeners]
        for thread in stopping:  # at once: each waits up to its poll interval
            thread.start()
        for thread in [*stopping, *self._threads]:
            thread.join(timeout=5)
        for listener in self._listeners:
            listener.server_close()
        self._listeners, self._threads = [], []
        self.upstream.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
