"""An alias's endpoint as the gateway reaches it: the route, the real key, the HTTP client, the failure class.

A :class:`Route` is what the gateway knows of one alias: the upstream ``base_url`` (the server
the session started, or the alias's own), the model name it sends, the variable holding the key
(read at call time, host side: the agent never gets it), the tool parser and ``destream`` flag,
the per-call ``timeout_s``, and the protocols the endpoint is known to serve
(:func:`served_protocols`: a vLLM server we start serves all three, and so does the scripted test
double; an endpoint given by ``base_url`` is not known, so a call is forwarded and a 404/405
is explained).

:class:`Upstream` holds the gateway's clients, one :class:`pytest_agentbench.serving.http.Client`
(the package's one HTTP client: keep-alive pool, limits, incremental SSE) per upstream base URL,
as the built-in adapter holds one per alias; the environment's proxy is honoured for an endpoint
off this machine, as the adapter does. :meth:`Upstream.whole` is one upstream request answered
whole (any status an answer), :meth:`Upstream.stream` one answered as SSE events, passed on as
sent. Both end by their deadline whatever the server sends (the adapter's watchdog,
:mod:`pytest_agentbench.models.deadline`, cuts the socket of a stream kept alive by pings or a
trickled body); every transport failure leaves as a
:class:`~pytest_agentbench.errors.ModelCallError` classed by
:func:`pytest_agentbench.models.taxonomy.classify_exception`, the one place the client's errors
get a failure class (:meth:`Upstream.status_failure` classes an error answer the same way).
:class:`ClientGone` marks the *agent* hanging up, which is not the server's failure.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pytest_agentbench.errors import ModelCallError
from pytest_agentbench.models.deadline import CallGuard
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.models.taxonomy import classify_exception
from pytest_agentbench.serving.gateway.protocols import PROTOCOLS, Protocol
from pytest_agentbench.serving.http import Client, HttpAnswer, HttpError, NotAStream, ReadTimeout, StatusError

__all__ = ["ClientGone", "Route", "Upstream", "UpstreamStream", "route_for", "served_protocols"]

PLACEHOLDER_KEY = "agentbench-no-key"
_ANTHROPIC_VERSION = "2023-06-01"
_FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta")


class ClientGone(Exception):
    """The agent closed its connection while the gateway was answering."""


def served_protocols(spec: ModelSpec) -> frozenset[Protocol] | None:
    """The protocols the alias's endpoint is known to serve; None: not known (forward and see)."""
    if spec.serve is not None and spec.serve.engine in ("vllm", "scripted"):
        # vLLM >= 0.32 serves chat, responses and Anthropic messages; so does the scripted test double
        return frozenset(PROTOCOLS)
    return None


@dataclass(frozen=True)
class Route:
    """One alias as the gateway forwards to it."""

    alias: str
    where: str  # "models.yaml: models.<alias>", for messages
    base_url: str
    model: str
    api_key_env: str | None = None
    tool_parser: str = "openai"
    destream: bool = False
    timeout_s: float = 300.0
    max_tokens: int | None = None  # the alias's own per-call cap
    protocols: frozenset[Protocol] | None = None

    def api_key(self) -> str:
        """The real key, read from the environment at call time (never stored, never sent to the agent)."""
        return (os.environ.get(self.api_key_env) if self.api_key_env else None) or PLACEHOLDER_KEY


def route_for(spec: ModelSpec, base_url: str) -> Route:
    return Route(
        alias=spec.alias,
        where=spec.where,
        base_url=base_url.rstrip("/"),
        model=spec.model,
        api_key_env=spec.api_key_env,
        tool_parser=spec.tool_parser,
        destream=spec.destream,
        timeout_s=spec.timeout_s,
        max_tokens=spec.max_tokens,
        protocols=served_protocols(spec),
    )


class UpstreamStream:
    """An upstream's SSE answer: ``status`` and each event as sent (``for event in stream``); the
    iteration ends in the deadline's error when the deadline cut it (a cut socket can read as the
    clean end of a body)."""

    def __init__(self, status: int, events: Iterator[bytes], guard: CallGuard, cut: ModelCallError) -> None:
        self.status = status
        self._events, self._guard, self._cut = events, guard, cut

    def __iter__(self) -> Iterator[bytes]:
        yield from self._events
        if self._guard.fired:
            raise self._cut


class Upstream:
    """The gateway's HTTP clients, one per upstream base URL; a context manager that closes them."""

    def __init__(self, *, max_idle: int = 64) -> None:
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()
        self._max_idle = max_idle
        self._closed = False

    def _client(self, route: Route) -> Client:
        with self._lock:
            if self._closed:
                raise ModelCallError("connection_error", "the agentbench gateway is stopping")
            client = self._clients.get(route.base_url)
            if client is None:
                client = Client(route.base_url, {"User-Agent": "agentbench-gateway"}, max_idle=self._max_idle)
                self._clients[route.base_url] = client
            return client

    def headers(self, route: Route, protocol: Protocol, client: Mapping[str, str], stream: bool) -> dict[str, str]:
        """What goes upstream: the real key (both header styles for Anthropic), a few protocol headers."""
        key = route.api_key()
        out = {"Accept": "text/event-stream" if stream else "application/json", "Authorization": f"Bearer {key}"}
        for name in _FORWARDED_HEADERS:
            if client.get(name):
                out[name] = client[name]
        if protocol == "messages":
            out["x-api-key"] = key
            out.setdefault("anthropic-version", _ANTHROPIC_VERSION)
        return out

    @contextlib.contextmanager
    def _guarded(self, route: Route, path: str, deadline: float) -> Iterator[tuple[CallGuard, float, ModelCallError]]:
        """The call's guard, read timeout and cut error; inside, the client's errors leave classed."""
        budget = deadline - time.monotonic()
        cut = ModelCallError(
            "timeout",
            f"no complete answer from {route.base_url}{path} within {max(0.0, budget):.1f} s ({route.where}"
            ".timeout_s or the run's time left): the server kept the connection open without finishing "
            "(cut at the deadline)",
        )
        guard = CallGuard(deadline)
        try:
            with guard:
                yield guard, max(0.1, budget), cut
        except HttpError as exc:
            if guard.fired or isinstance(exc, ReadTimeout):  # a read may wait at most until the deadline
                raise cut from exc
            raise classify_exception(exc) from exc

    def whole(
        self, route: Route, path: str, body: bytes, headers: Mapping[str, str], deadline: float, cap: int
    ) -> HttpAnswer:
        """One POST to ``route.base_url + path`` answered whole (any status is an answer; a body over
        ``cap`` bytes is a ``server_error``), ended by ``deadline`` (``time.monotonic``)."""
        client = self._client(route)
        with self._guarded(route, path, deadline) as (guard, timeout, cut):
            answer = client.call("POST", path, body, timeout=timeout, guard=guard, cap=cap, headers=headers)
            if guard.fired:
                raise cut
            return answer

    @contextlib.contextmanager
    def stream(
        self,
        route: Route,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        deadline: float,
        caps: tuple[int, int],
    ) -> Iterator[UpstreamStream | HttpAnswer]:
        """One POST answered as SSE: inside the block, an :class:`UpstreamStream` to read (``caps``: the
        largest event and stream), or the :class:`HttpAnswer` of an error status. A failure of the
        upstream (there or while reading) leaves as ModelCallError, a :class:`ClientGone` as itself."""
        client = self._client(route)
        with self._guarded(route, path, deadline) as (guard, timeout, cut):
            try:
                events = client.stream(path, body, timeout=timeout, guard=guard, headers=headers, raw=True, caps=caps)
            except StatusError as exc:
                yield HttpAnswer(exc.status, exc.body, exc.headers)
                return
            except NotAStream as exc:
                raise ModelCallError(
                    "server_error",
                    f"{route.base_url}{path} answered a streamed request without an event stream: it does not "
                    f"stream; give alias {route.alias!r} ({route.where}) `destream: true` so the gateway asks it "
                    "without one and streams the answer itself",
                ) from exc
            with events:
                yield UpstreamStream(events.status, iter(events), guard, cut)

    @staticmethod
    def status_failure(route: Route, answer: HttpAnswer) -> ModelCallError:
        """An upstream error answer as a classed failure (as the adapter classes it)."""
        return classify_exception(StatusError.of(answer, route.base_url))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
