"""The one small HTTP helper for servers on this machine (health, /metrics, admin endpoints).

A proxy from the environment must never see 127.0.0.1 traffic, so every request goes
through an opener without proxies. Model calls do not use this: they go through the
adapter's client.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

__all__ = ["HttpAnswer", "request"]

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class HttpAnswer:
    """A status and body; an HTTP error status is an answer, not an exception."""

    status: int
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    json_body: Any = None,
    timeout: float = 10.0,
    max_bytes: int | None = None,
) -> HttpAnswer:
    """One request without proxies; ``json_body`` is sent as JSON (vLLM's /tokenize wants the content type);
    at most ``max_bytes`` of the body are read (None: all of it).

    Raises ``OSError`` (``URLError`` included) when nothing answers.
    """
    headers = {"Accept": "application/json"}
    if json_body is not None:
        data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(req, timeout=timeout) as response:
            return HttpAnswer(int(response.status), response.read(max_bytes) if max_bytes else response.read())
    except urllib.error.HTTPError as exc:
        return HttpAnswer(int(exc.code), (exc.read(max_bytes) if max_bytes else exc.read()) if exc.fp else b"")
