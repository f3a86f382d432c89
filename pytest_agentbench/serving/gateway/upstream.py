"""An alias's endpoint as the gateway reaches it: the route, the real key, one HTTP client, the failure class.

A :class:`Route` is what the gateway knows of one alias: the upstream ``base_url`` (the server
the session started, or the alias's own), the model name it sends, the variable holding the key
(read at call time, host side: the agent never gets it), the tool parser and ``destream`` flag,
the per-call ``timeout_s``, and the protocols the endpoint is known to serve
(:func:`served_protocols`: a vLLM server we start serves all three; the scripted test double
only chat; an endpoint given by ``base_url`` is not known, so a call is forwarded and a 404/405
is explained).

:class:`Upstream` holds the gateway's one HTTP client (httpx - the one the ``openai`` SDK ships;
no proxy from the environment; a pool per endpoint). :meth:`Upstream.exchange` is one upstream
request, ended by its deadline whatever the server sends (the built-in adapter's watchdog,
:mod:`pytest_agentbench.models.deadline`, cuts the socket of a stream kept alive by pings or a
trickled body); every transport or HTTP failure leaves as a
:class:`~pytest_agentbench.errors.ModelCallError` classed by
:func:`pytest_agentbench.models.taxonomy.classify_exception`, the one place foreign errors get a
failure class. :class:`ClientGone` marks the *agent* hanging up, which is not the server's failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pytest_agentbench.errors import ModelCallError
from pytest_agentbench.models.deadline import CallGuard, attach_response
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.models.taxonomy import classify_exception
from pytest_agentbench.serving.gateway.protocols import PROTOCOLS, Protocol

__all__ = ["ClientGone", "Route", "Upstream", "httpx_module", "route_for", "served_protocols"]

PLACEHOLDER_KEY = "agentbench-no-key"
_CONNECT_TIMEOUT_S = 10.0
_ANTHROPIC_VERSION = "2023-06-01"
_FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta")


def httpx_module() -> ModuleType:
    """httpx as the installed ``openai`` SDK uses it (some builds ship it renamed ``httpx2``)."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - depends on the openai build
        import httpx2 as httpx  # type: ignore[no-redef]
    return httpx


class ClientGone(Exception):
    """The agent closed its connection while the gateway was answering."""


def served_protocols(spec: ModelSpec) -> frozenset[Protocol] | None:
    """The protocols the alias's endpoint is known to serve; None: not known (forward and see)."""
    if spec.serve is not None and spec.serve.engine == "vllm":
        return frozenset(PROTOCOLS)  # vLLM >= 0.32 serves chat, responses and Anthropic messages
    if spec.serve is not None and spec.serve.engine == "scripted":
        return frozenset({"chat"})  # the scripted test double speaks chat completions only
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


def _status_failure(response: Any, body: bytes) -> ModelCallError:
    """An upstream error answer, classed as the adapter would class it."""
    import openai

    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    text = body[:2000].decode("utf-8", "replace")
    kind = openai.RateLimitError if response.status_code == 429 else openai.APIStatusError
    return classify_exception(kind(f"Error code: {response.status_code} - {text}", response=response, body=parsed))


def _transport_failure(exc: BaseException, url: str) -> ModelCallError:
    import openai

    httpx = httpx_module()
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        request = httpx.Request("POST", url)
    if isinstance(exc, httpx.TimeoutException):
        wrapped: Exception = openai.APITimeoutError(request=request)
    else:
        wrapped = openai.APIConnectionError(request=request)
        wrapped.__cause__ = exc
    return classify_exception(wrapped)


class _Guarded:
    """An upstream response whose body ends in the deadline's error when the deadline cut it (a cut
    socket can read as a clean end of a body that has no length)."""

    def __init__(self, response: Any, guard: CallGuard, cut: ModelCallError) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self._response, self._guard, self._cut = response, guard, cut

    def iter_bytes(self) -> Iterator[bytes]:
        yield from self._response.iter_bytes()
        if self._guard.fired:
            raise self._cut

    @property
    def response(self) -> Any:
        """The httpx response itself (for the failure taxonomy)."""
        return self._response


class Upstream:
    """The gateway's HTTP client for every alias; a context manager that closes it."""

    def __init__(self, *, max_connections: int = 256) -> None:
        httpx = httpx_module()
        self._httpx = httpx
        self._client = httpx.Client(
            trust_env=False,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=64),
            event_hooks={"response": [attach_response]},
        )

    def headers(self, route: Route, protocol: Protocol, client: Mapping[str, str], stream: bool) -> dict[str, str]:
        """What goes upstream: the real key (both header styles for Anthropic), a few protocol headers."""
        key = route.api_key()
        out = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "accept-encoding": "identity",
            "authorization": f"Bearer {key}",
            "user-agent": "agentbench-gateway",
        }
        for name in _FORWARDED_HEADERS:
            if client.get(name):
                out[name] = client[name]
        if protocol == "messages":
            out["x-api-key"] = key
            out.setdefault("anthropic-version", _ANTHROPIC_VERSION)
        return out

    @contextlib.contextmanager
    def exchange(
        self, route: Route, path: str, body: bytes, headers: Mapping[str, str], deadline: float
    ) -> Iterator[Any]:
        """One POST to ``route.base_url + path``, its response streamed; ended by ``deadline`` (monotonic).

        Inside the block, read the response; a failure of the upstream (there or while sending)
        leaves as ModelCallError, a :class:`ClientGone` as itself.
        """
        httpx = self._httpx
        url = route.base_url + path
        budget = deadline - time.monotonic()
        guard = CallGuard(deadline)
        timeout = httpx.Timeout(max(0.1, budget), connect=min(_CONNECT_TIMEOUT_S, max(0.1, budget)))
        cut = ModelCallError(
            "timeout",
            f"no complete answer from {url} within {max(0.0, budget):.1f} s ({route.where}.timeout_s or the "
            "run's time left): the server kept the connection open without finishing (cut at the deadline)",
        )
        try:
            with guard:
                request = self._client.build_request("POST", url, content=body, headers=dict(headers), timeout=timeout)
                response = self._client.send(request, stream=True)
                try:
                    yield _Guarded(response, guard, cut)
                finally:
                    response.close()
        except (ClientGone, ModelCallError):
            raise
        except (httpx.HTTPError, OSError, ValueError) as exc:
            if guard.fired:
                raise cut from exc
            raise _transport_failure(exc, url) from exc

    def status_failure(self, response: _Guarded, body: bytes) -> ModelCallError:
        """An upstream error answer (``response`` as :meth:`exchange` gives it) as a classed failure."""
        return _status_failure(response.response, body)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
