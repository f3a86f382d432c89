"""Doubles and helpers for the gateway's tests (tests/test_gateway*.py).

:class:`Wire` is a raw HTTP upstream for what the scripted server does not speak or break: the
responses and Anthropic messages protocols, resets, junk SSE, bodies past a cap.

Agents are plain ``http.client`` requests (:func:`post`, :func:`get`) where any client would do,
and the ``openai`` SDK (:func:`oai`, the dev extra; skipped without it) where an SDK is the agent
under test: how it reads the gateway's streams, repaired answers and errors.
"""

import contextlib
import http.client
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.serving.gateway import (
    Gateway,
    Limits,
    Route,
)

KEY_A = "sk-gwtest-alpha-0123456789abcdef"
KEY_B = "sk-gwtest-bravo-fedcba9876543210"
QWEN_CALL = "<tool_call>\n<function=run>\n<parameter=command>\nls -la\n</parameter>\n</function>\n</tool_call>"


class Wire:
    """A raw upstream: each request gets the next behaviour (a function of the handler); all are recorded."""

    def __init__(self, *behaviours: Callable[[Any], None]) -> None:
        self.behaviours = list(behaviours)
        self.requests: list[dict[str, Any]] = []
        wire = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                wire.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": json.loads(body),
                    }
                )
                (wire.behaviours.pop(0) if len(wire.behaviours) > 1 else wire.behaviours[0])(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Callable[[Any], None]:
    def send(h: Any) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    return send


def sse(*events: bytes | dict[str, Any], named: bool = False) -> Callable[[Any], None]:
    def send(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        for e in events:
            if isinstance(e, dict):
                e = (f"event: {e['type']}\n" if named else "").encode() + f"data: {json.dumps(e)}\n\n".encode()
            h.wfile.write(e)
            h.wfile.flush()
        h.close_connection = True

    return send


def reset(h: Any) -> None:
    """Close with an RST (SO_LINGER 0), before any byte of an answer."""
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True


def route(alias: str, base_url: str, **kw: Any) -> Route:
    return Route(alias=alias, where=f"models.yaml: models.{alias}", base_url=base_url, model=f"{alias}-model", **kw)


@contextlib.contextmanager
def running(*routes: Route, limits: Limits | None = None) -> Iterator[Gateway]:
    with Gateway({r.alias: r for r in routes}, limits=limits) as gateway:
        yield gateway


def sdk() -> ModuleType:
    """The ``openai`` SDK, where it is the agent under test (the dev extra); the test is skipped without it."""
    return pytest.importorskip("openai")


def oai(gateway: Gateway, token: str) -> Any:
    """An OpenAI-SDK agent of the run whose token this is."""
    return sdk().OpenAI(base_url=gateway.base_url, api_key=token, max_retries=0, timeout=30)


def post(gateway: Gateway, path: str, body: Any, token: str | None = None, **headers: str) -> tuple[int, Any, bytes]:
    return _request(gateway, "POST", path, json.dumps(body).encode(), token, headers)


def get(gateway: Gateway, path: str, token: str | None = None) -> tuple[int, Any, bytes]:
    return _request(gateway, "GET", path, None, token, {})


def _request(
    gateway: Gateway, method: str, path: str, data: bytes | None, token: str | None, headers: dict[str, str]
) -> tuple[int, Any, bytes]:
    port = int(gateway.base_url.split(":")[2].split("/")[0])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdrs = {"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=data, headers=hdrs)
    response = conn.getresponse()
    answer = response.read()
    conn.close()
    return response.status, response.headers, answer


def events_of(raw: bytes) -> list[dict[str, Any]]:
    """The data objects of an SSE body (``[DONE]`` left out)."""
    out = []
    for block in raw.decode().split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        if data and data[0] != "[DONE]":
            out.append(json.loads("\n".join(data)))
    return out


def chat(content: str = "hi") -> dict[str, Any]:
    return {"model": "anything", "messages": [{"role": "user", "content": content}]}


def spec_for(alias: str, **kw: Any) -> ModelSpec:
    return ModelSpec(alias=alias, model=f"{alias}-model", source=Path("models.yaml"), **kw)
