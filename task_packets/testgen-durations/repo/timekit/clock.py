"""A stopwatch with an injectable clock, so tests need not sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


class Stopwatch:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started: float | None = None
        self._elapsed = 0.0
        self.laps: list[float] = []

    @property
    def running(self) -> bool:
        return self._started is not None

    def start(self) -> None:
        if self._started is not None:
            raise RuntimeError("stopwatch already running")
        self._started = self._clock()

    def stop(self) -> float:
        if self._started is None:
            raise RuntimeError("stopwatch is not running")
        self._elapsed += self._clock() - self._started
        self._started = None
        return self._elapsed

    def lap(self) -> float:
        """Record and return the time since the previous lap (or the start)."""
        if self._started is None:
            raise RuntimeError("stopwatch is not running")
        total = self.elapsed
        lap = total - sum(self.laps)
        self.laps.append(lap)
        return lap

    @property
    def elapsed(self) -> float:
        if self._started is None:
            return self._elapsed
        return self._elapsed + self._clock() - self._started
