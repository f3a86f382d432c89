"""The event-loop client for load: many streamed requests in flight on one thread, over ``aiohttp``.

``agentbench load`` sends up to hundreds of concurrent streams. Here one event loop reads every
socket as it becomes readable, on one thread, as ``vllm bench serve`` does (it is aiohttp too),
instead of a thread per stream each waiting for its turn at the GIL. Optional:
``pip install 'pytest-agentbench[load]'``; without it the load runs on threads and says so.

:class:`AsyncStreamClient` POSTs a streamed chat completion and hands each SSE event's ``data``
(cut by :class:`~pytest_agentbench.serving.sse.SseSplitter`, the blocking client's splitter)
with the time its read arrived to a callback: no async generator and no JSON here. The
server is assumed hostile, with the blocking client's limits: header lines of at most 64 KiB
and at most 100 headers (aiohttp's parser enforces them), an error body read to at most
:data:`~pytest_agentbench.serving.http.MAX_ERROR_BYTES`, an event of at most
:data:`~pytest_agentbench.serving.http.MAX_EVENT_BYTES`, a stream of at most
:data:`~pytest_agentbench.serving.http.MAX_STREAM_BYTES`, the whole exchange within its
timeout; bodies are never decompressed. Its errors are the blocking client's
(:class:`~pytest_agentbench.serving.http.HttpError` kinds, mapped from aiohttp's in one place,
:func:`_as_http_error`), so ``models/taxonomy.py`` classifies both the same. A loopback
endpoint never goes through the environment's proxy; any other one does, as ``serving/http.py``.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.serving import http
from pytest_agentbench.serving.sse import SseSplitter

__all__ = ["AsyncStreamClient", "available", "install_hint"]

_DRAIN_S = 1.0  # after [DONE]: how long the end of the body may take before the connection is dropped
_LINE = 65536  # the longest status or header line (http.client's limit)
_HEADERS = 100  # the most headers (http.client's limit)


class _Taken(Exception):
    """What the ``take`` callback raised, carried past the mapping of the connection's errors."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def install_hint() -> str:
    return "pip install 'pytest-agentbench[load]' (aiohttp, the event-loop client)"


def available() -> bool:
    """Whether aiohttp can be imported (the event-loop client's one dependency)."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def _as_http_error(exc: BaseException, url: str) -> http.HttpError:
    """The one place aiohttp's and asyncio's exceptions become :class:`~pytest_agentbench.serving.http.HttpError`
    kinds (the same kinds, and so the same failure classes, as the blocking client's)."""
    import aiohttp

    if isinstance(exc, http.HttpError):
        return exc
    if isinstance(exc, TimeoutError):  # asyncio's, and aiohttp's ServerTimeoutError
        return http.ReadTimeout(f"no complete answer within the timeout from {url}", url)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, no such host, proxy, TLS handshake
        return http.ConnectError(f"cannot connect to {url}: {exc}", url)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return http.ConnectionLost(f"{url} closed the connection without answering", url)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return http.ConnectionLost(f"{url} closed the connection before the answer was complete ({exc})", url)
    if isinstance(exc, aiohttp.ClientResponseError | ValueError):  # a bad status line, header or chunk
        text = getattr(exc, "message", "") or str(exc)
        return http.ProtocolError(f"{url} answered something that is not HTTP/1.1 ({type(exc).__name__}: {text})", url)
    return http.ConnectionLost(f"the connection to {url} failed: {type(exc).__name__}: {exc}", url)


class AsyncStreamClient:
    """Streams chat completions from one endpoint, up to ``connections`` at a time on kept-alive connections.

    Build it, use it and :meth:`close` it inside one running event loop.
    """

    def __init__(self, base_url: str, headers: Mapping[str, str], *, connections: int):
        try:
            import aiohttp
        except ImportError:
            raise ConfigError(f"the event-loop load client needs aiohttp: {install_hint()}") from None
        self.url = base_url.rstrip("/")
        host = urllib.parse.urlsplit(self.url).hostname or ""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
            headers={"Accept-Encoding": "identity", "Content-Type": "application/json", **headers},
            auto_decompress=False,
            trust_env=host not in ("127.0.0.1", "localhost", "::1"),
            max_line_size=_LINE,
            max_field_size=_LINE,
            max_headers=_HEADERS,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self._errors = (OSError, ValueError, TimeoutError, aiohttp.ClientError)

    async def stream(self, path: str, body: bytes, *, timeout: float, take: Callable[[bytes, float], Any]) -> bool:
        """POST ``body`` to ``path``; ``take(data, arrived)`` for each event, ``arrived`` the ``perf_counter`` at
        which its read returned. Returns whether ``[DONE]`` ended the stream; raises an ``HttpError``."""
        url = self.url + path
        try:
            async with asyncio.timeout(timeout):
                return await self._exchange(url, body, take)
        except _Taken as taken:  # the callback's own error (an unreadable event): not the connection's
            raise taken.error from taken.error.__cause__
        except http.HttpError:
            raise
        except self._errors as exc:
            raise _as_http_error(exc, url) from exc

    async def _exchange(self, url: str, body: bytes, take: Callable[[bytes, float], Any]) -> bool:
        async with self._session.post(url, data=body, headers={"Accept": "text/event-stream"}) as response:
            if response.status >= 400:
                data = await response.content.read(http.MAX_ERROR_BYTES)
                response.close()  # the rest of an error body is not read: the connection goes
                raise http.StatusError(
                    response.status, http.status_message(response.status, data), http.retry_after(response.headers), url
                )
            http.check_event_stream(response.headers.get("Content-Type"), url)
            splitter = SseSplitter(url, http.MAX_EVENT_BYTES, http.MAX_STREAM_BYTES)
            feed, clock, read = splitter.feed, time.perf_counter, response.content.readany
            while data := await read():  # until the body ends (an event cut off there is dropped, as SSE says)
                arrived = clock()
                for payload in feed(data):
                    try:
                        take(payload, arrived)
                    except Exception as exc:
                        raise _Taken(exc) from exc
                if splitter.done:
                    await self._drain(response)
                    return True
            return False

    @staticmethod
    async def _drain(response: Any) -> None:
        """After ``[DONE]``: read the end of the body briefly, so the connection is kept; else drop it."""
        try:
            async with asyncio.timeout(_DRAIN_S):
                rest = await response.content.read(65536)
            if rest.strip() or not response.content.at_eof():
                response.close()
        except (OSError, ValueError, TimeoutError):
            response.close()

    async def close(self) -> None:
        await self._session.close()
