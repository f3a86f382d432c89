"""How many times to try, and how long to wait in between."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often to retry and how long to wait between attempts.

    attempts: calls in total, the first one included (default 3).
    delay: seconds to wait before the first retry (default 0.5).
    backoff: each wait is this many times the previous one (default 2.0).
    """

    attempts: int = 3
    base_delay: float = 0.5
    backoff: float = 2.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0:
            raise ValueError(f"base_delay must not be negative, got {self.base_delay}")
        if self.backoff < 1:
            raise ValueError(f"backoff must be at least 1, got {self.backoff}")
        if self.max_delay < self.base_delay:
            raise ValueError(f"max_delay ({self.max_delay}) must not be less than base_delay ({self.base_delay})")

    def delays(self) -> Iterator[float]:
        """The waits between attempts, in seconds: ``attempts - 1`` of them."""
        delay = self.base_delay
        for _ in range(self.attempts - 1):
            yield min(delay, self.max_delay)
            delay *= self.backoff
