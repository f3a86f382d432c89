"""Metering during a sweep level: what the client has in flight and what the server's gauges say.

:class:`InFlight` counts model calls in flight (the maximum and the time-weighted mean),
:class:`MeteredModel` wraps one developer's model client to feed it and to time the harness CPU
each call costs, and :class:`MetricsSampler` scrapes ``/metrics`` in the background for the
instantaneous gauges (requests running and waiting, KV-cache use). Thread-safe; no I/O at import.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_agentbench.agents.loop import Model

__all__ = ["InFlight", "MeteredModel", "MetricsSampler"]


class InFlight:
    """Model calls in flight right now: the maximum and the time-weighted mean."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.max = 0
        self._area = 0.0
        self._t0 = self._t = time.perf_counter()

    def _advance(self, now: float) -> None:
        self._area += self.current * (now - self._t)
        self._t = now

    def enter(self) -> None:
        with self._lock:
            self._advance(time.perf_counter())
            self.current += 1
            self.max = max(self.max, self.current)

    def leave(self) -> None:
        with self._lock:
            self._advance(time.perf_counter())
            self.current -= 1

    def restart(self) -> None:
        with self._lock:
            self._t0 = self._t = time.perf_counter()
            self._area = 0.0
            self.max = self.current

    def mean(self) -> float:
        with self._lock:
            self._advance(time.perf_counter())
            span = self._t - self._t0
            return self._area / span if span > 0 else 0.0


class MeteredModel:
    """One developer's model client, counted: calls in flight and the harness CPU each call costs.

    ``time.thread_time`` around ``complete`` is the CPU this thread spent on the call
    (request building, HTTP through ``serving.http``'s keep-alive client, SSE parsing,
    tool-call parsing); waiting is not CPU.
    """

    def __init__(self, inner: Model, in_flight: InFlight, cpu: list[float]):
        self.inner = inner
        self.in_flight = in_flight
        self.cpu = cpu

    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] = (),
        *,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        self.in_flight.enter()
        start = time.thread_time()
        try:
            return self.inner.complete(messages, tools, max_tokens=max_tokens, timeout=timeout)
        finally:
            self.cpu.append(time.thread_time() - start)  # list.append is atomic under the GIL
            self.in_flight.leave()

    def close(self) -> None:
        self.inner.close()


class MetricsSampler(threading.Thread):
    """Scrapes ``/metrics`` every ``interval_s`` during a level: gauges are instantaneous."""

    def __init__(self, url: str, model_name: str | None, interval_s: float):
        super().__init__(name="agentbench-sweep-sampler", daemon=True)
        self.url, self.model_name, self.interval_s = url, model_name, interval_s
        self.stop_event = threading.Event()
        self.values: dict[str, Any] = {"samples": 0, "failures": 0}

    def run(self) -> None:
        from pytest_agentbench.serving.vllm.metrics import scrape

        while True:  # the first sample at once: short levels get one too
            try:
                snap = scrape(self.url, model_name=self.model_name, timeout_s=2.0)
            except Exception:  # a missed sample is not worth failing a level for
                self.values["failures"] += 1
                snap = None
            if snap is not None:
                self._take(snap)
            if self.stop_event.wait(self.interval_s):
                return

    def _take(self, snap: Any) -> None:
        self.values["samples"] += 1
        for key, gauge in (
            ("running_max", "requests_running"),
            ("waiting_max", "requests_waiting"),
            ("kv_cache_usage_max", "kv_cache_usage"),
        ):
            value = snap.gauges.get(gauge)
            if value is not None:
                self.values[key] = max(value, self.values.get(key, value))

    def finish(self) -> dict[str, Any]:
        self.stop_event.set()
        self.join(timeout=10)
        return dict(self.values)
