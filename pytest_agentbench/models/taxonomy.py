"""The failure taxonomy of a model call: what can go wrong, and how often each kind is retried.

The vocabulary lives with the error tree in ``errors.py``: ``FailureClass`` (the
eight classes a failed call falls into, ``FAILURE_CLASSES`` derived from it) and
``ModelCallError`` (a failure that is a *result* the agent records, not a crash).
This module owns how each class is retried (:class:`RetryPolicy`,
:data:`DEFAULT_RETRIES`) and :func:`classify_exception`, the one place
that maps foreign exceptions (the HTTP client's, ``serving.http``, and decoding
errors) to a failure class. Free of any client library at import time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType

from pytest_agentbench.errors import FailureClass, ModelCallError

_CONTEXT_HINTS = (
    "context length",
    "context_length",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "max_model_len",
    "context window",
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often one failure class is retried: ``attempts`` extra tries, exponential backoff."""

    attempts: int = 0
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    honour_retry_after: bool = True

    def delay(self, retry: int, retry_after: float | None) -> float:
        if self.honour_retry_after and retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        base = self.backoff_s * (2**retry)
        return min(self.max_backoff_s, base * (0.75 + random.random() / 2))  # +-25 % jitter


#: Defaults: transient classes are retried; a context overflow, a refusal or an invalid
#: tool call would only fail the same way again (the agent tells the model instead), and a
#: refused key (``auth_error``) is never retried, whatever ``retries:`` says.
DEFAULT_RETRIES: Mapping[FailureClass, RetryPolicy] = MappingProxyType(
    {
        "rate_limited": RetryPolicy(attempts=4, backoff_s=1.0),
        "server_error": RetryPolicy(attempts=2, backoff_s=0.5),
        "connection_error": RetryPolicy(attempts=2, backoff_s=0.5),
        "timeout": RetryPolicy(attempts=1, backoff_s=0.0),
        "context_overflow": RetryPolicy(),
        "refusal": RetryPolicy(),
        "invalid_tool_call": RetryPolicy(),
        "auth_error": RetryPolicy(),
    }
)

#: Classes no ``retries:`` entry may make retried: the same request can only fail the same way.
NEVER_RETRIED: frozenset[FailureClass] = frozenset({"auth_error"})


def classify_exception(exc: BaseException) -> ModelCallError:
    """Map a foreign exception to the failure taxonomy.

    The HTTP client's errors (:mod:`pytest_agentbench.serving.http`) by kind and HTTP status:
    nothing reached or the connection broken is ``connection_error``, a read that waited past
    the timeout ``timeout``, 429 ``rate_limited``, 401/403 ``auth_error``, a 400/413/422 that
    names the context length ``context_overflow``, any other status, an answer that is not
    HTTP or over a size limit, an undecodable body (``ValueError``) and anything else
    ``server_error``.
    """
    from pytest_agentbench.serving import http

    text = str(exc)
    if isinstance(exc, http.StatusError):
        status = exc.status
        if status == 429:
            return ModelCallError("rate_limited", text, status=status, retry_after=exc.retry_after)
        if status in (401, 403):
            return ModelCallError("auth_error", text, status=status)
        lowered = text.lower()
        if status in (400, 413, 422) and any(h in lowered for h in _CONTEXT_HINTS):
            return ModelCallError("context_overflow", f"HTTP {status}: {text}", status=status)
        if status >= 500:
            retry_after = exc.retry_after if status == 503 else None
            return ModelCallError("server_error", f"HTTP {status}: {text}", status=status, retry_after=retry_after)
        return ModelCallError("server_error", f"the server refused the request: HTTP {status}: {text}", status=status)
    if isinstance(exc, http.ReadTimeout):
        return ModelCallError("timeout", f"the request timed out ({text})")
    if isinstance(exc, http.ConnectError):
        cause = exc.__cause__
        return ModelCallError("connection_error", f"cannot reach the server: {cause or text}")
    if isinstance(exc, http.ConnectionLost):
        return ModelCallError("connection_error", text)
    if isinstance(exc, http.ProtocolError):  # TooLarge included
        return ModelCallError("server_error", f"unusable answer: {text}")
    if isinstance(exc, (json.JSONDecodeError, ValueError)):
        return ModelCallError("server_error", f"unreadable response: {text}")
    return ModelCallError("server_error", f"{type(exc).__name__}: {text}")


@contextmanager
def classified_errors() -> Iterator[None]:
    """Inside the block, any exception but :class:`ModelCallError` leaves as one (like httpx's map_exceptions)."""
    try:
        yield
    except ModelCallError:
        raise
    except Exception as exc:  # every SDK / transport error becomes a classified result
        raise classify_exception(exc) from exc
