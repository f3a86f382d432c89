"""Call a function again until it succeeds or the policy gives up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from .policy import RetryPolicy

T = TypeVar("T")


class RetryError(Exception):
    """Every attempt failed; ``last`` is the last exception."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempt(s): {last!r}")
        self.attempts = attempts
        self.last = last


def retry_call(
    fn: Callable[..., T],
    *args: Any,
    policy: RetryPolicy | None = None,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    sleep: Callable[[float], object] = time.sleep,
    **kwargs: Any,
) -> T:
    """Call ``fn(*args, **kwargs)`` and return its result, retrying on failure.

    Any exception makes it wait (see ``RetryPolicy.delays``) and call again.
    When the last attempt fails too, raises ``RetryError``.
    """
    policy = policy or RetryPolicy()
    delays = policy.delays()
    attempts = 0
    while True:
        attempts += 1
        try:
            return fn(*args, **kwargs)
        except retry_on as exc:
            wait = next(delays, None)
            if wait is None:
                raise RetryError(attempts, exc) from exc
            sleep(wait)
