"""Capacity sweeps: N concurrent developers against one endpoint, level by level. pytest-free.

    agentbench sweep --models-file models.yaml --models local-coder --devs 1,2,4,8 \\
        --slo-ttft-p50 2 --slo-tps-p50 20 --compare-alias gpt-baseline --out sweep-out

A *developer* is one agent loop that works through the packet set (``--rounds``
times) in its own thread, with its own HTTP client and a fresh sandbox per run.
A *level* runs N developers at once: they are released together by a barrier
right before their first model call. The alias's endpoint is started once and
kept up across levels; before each level the prefix cache is reset where the
server allows it (vLLM: ``POST /reset_prefix_cache``, which 0.32 exposes only
with ``VLLM_SERVER_DEV_MODE=1``; the sweep sets that for vLLM servers it
starts). Streaming is forced on, so every call measures its TTFT.

Per level: client-side medians (TTFT, per-stream decode tok/s), the same from
the server's ``/metrics`` histogram deltas, whether the SLO holds, the pass
rate, the concurrency reached (client in-flight maximum; the server's
``num_requests_running`` as sampled), KV-cache use, $/dev-month, and
reconciliation checks between client and server numbers. The knee is the
largest N, counting up from the smallest level, at which the SLO still holds.
Column meanings, the rules and measured figures: ``docs/capacity.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import math
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_agentbench.capacity.cost import HOURS_PER_MONTH_24X7, WORKING_HOURS_PER_MONTH
from pytest_agentbench.errors import ConfigError, InfrastructureError, ServerError
from pytest_agentbench.reports.stats import percentile
from pytest_agentbench.results.jsonsafe import json_safe
from pytest_agentbench.serving.vllm.admin import DEV_MODE_ENV

if TYPE_CHECKING:  # kept out of the import: `agentbench --help` builds this parser
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.packets.schema import Packet
    from pytest_agentbench.runner import RunRecord

__all__ = [
    "Check",
    "LevelResult",
    "Slo",
    "Sweep",
    "SweepConfig",
    "SweepResult",
    "add_arguments",
    "add_parser",
    "find_knee",
    "format_table",
    "main",
    "reconcile",
    "render_html",
    "run_cli",
]

#: Client and server TTFT medians may differ by this fraction of the server's median ...
TTFT_REL_TOLERANCE = 0.10
#: ... or by this many seconds, whichever is larger, before the level is flagged.
TTFT_ABS_TOLERANCE_S = 0.020
#: Model-call client CPU above this share of one core flags the level: the developer threads share
#: one GIL, so past it the harness, not the server, may be what limits the load.
CLIENT_CPU_SHARE_LIMIT = 0.5
TABLE_WIDTH = 100
LEGEND = (
    "pass = runs whose gates all held / runs; ttft = median time to first token (s); tps = median "
    "decode tok/s per stream; cli = client, srv = server /metrics histograms; infl = most model calls in "
    "flight / N; srv_run = most vllm:num_requests_running sampled; kv_max = most KV-cache use sampled; "
    "$/dev-mo = this alias, API/dev-mo = --compare-alias on the same tokens; checks = client vs server "
    "reconciliation"
)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Slo:
    """The service level a developer needs: median TTFT at most, median decode rate at least."""

    ttft_p50_s: float | None = None
    tps_p50: float | None = None

    @property
    def defined(self) -> bool:
        return self.ttft_p50_s is not None or self.tps_p50 is not None

    def describe(self) -> str:
        parts = []
        if self.ttft_p50_s is not None:
            parts.append(f"TTFT p50 <= {self.ttft_p50_s:g} s")
        if self.tps_p50 is not None:
            parts.append(f"decode p50 >= {self.tps_p50:g} tok/s per stream")
        return " and ".join(parts) if parts else "none given"

    def judge(self, ttft_p50_s: float | None, tps_p50: float | None) -> tuple[bool | None, list[str]]:
        """(holds, reasons it does not); ``None`` when no SLO was given. Unmeasured never holds."""
        if not self.defined:
            return None, []
        reasons = []
        if self.ttft_p50_s is not None:
            if ttft_p50_s is None:
                reasons.append("TTFT not measured")
            elif ttft_p50_s > self.ttft_p50_s:
                reasons.append(f"TTFT p50 {ttft_p50_s:.3f} s > {self.ttft_p50_s:g} s")
        if self.tps_p50 is not None:
            if tps_p50 is None:
                reasons.append("decode rate not measured (calls of <= 1 output token?)")
            elif tps_p50 < self.tps_p50:
                reasons.append(f"decode p50 {tps_p50:.1f} tok/s < {self.tps_p50:g} tok/s")
        return not reasons, reasons


@dataclass(frozen=True)
class SweepConfig:
    """What to sweep. ``spec`` is the alias under test (streaming is forced on)."""

    spec: ModelSpec
    packets: tuple[Packet, ...]
    devs: tuple[int, ...]
    sandbox: str = "local"
    slo: Slo = field(default_factory=Slo)
    rounds: int = 1
    agent_timeout: float | None = None
    #: A commercial alias whose prices turn the same run's tokens into an API bill.
    compare: ModelSpec | None = None
    #: Hours the GPU is paid for per month (730 = 24x7).
    gpu_hours_per_month: float = HOURS_PER_MONTH_24X7
    #: Hours a developer keeps an agent busy per month (176 = 22 days x 8 h).
    dev_hours_per_month: float = WORKING_HOURS_PER_MONTH
    #: ``None``: the endpoint's own ``/metrics`` (probed; absent is fine).
    metrics_url: str | None = None
    reset_prefix_cache: bool = True
    warmup: bool = True
    sample_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.devs or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.devs):
            raise ConfigError(f"--devs: expected developer counts >= 1 such as 1,2,4,8, found {self.devs!r}")
        if not self.packets:
            raise ConfigError("--packets: no packets to run")
        if self.rounds < 1:
            raise ConfigError(f"--rounds: expected a whole number >= 1, found {self.rounds!r}")
        for flag, hours in (
            ("--gpu-hours-per-month", self.gpu_hours_per_month),
            ("--dev-hours-per-month", self.dev_hours_per_month),
        ):
            if not 0 < hours <= 744:
                raise ConfigError(
                    f"{flag}: expected hours in one month, 0 < H <= 744 (730 = 24x7, 176 = 22 "
                    f"working days x 8 h), found {hours!r}"
                )


# --------------------------------------------------------------------------- pure parts


@dataclass(frozen=True)
class Check:
    """One reconciliation rule applied to one level."""

    name: str  # tokens | ttft | concurrency
    status: str  # ok | mismatch | skipped
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def reconcile(
    asked: int,
    client: Mapping[str, Any],
    server: Mapping[str, Any] | None,
    *,
    ttft_rel_tol: float = TTFT_REL_TOLERANCE,
    ttft_abs_tol_s: float = TTFT_ABS_TOLERANCE_S,
) -> list[Check]:
    """Compare what the client measured with what the server counted, for one level.

    * tokens: the client's prompt/completion totals (sums of ``usage``) must
      *equal* the server's ``prompt_tokens`` / ``generation_tokens`` counter deltas;
    * ttft: client median vs server histogram median, flagged when further apart
      than ``max(ttft_rel_tol x server, ttft_abs_tol_s)``;
    * concurrency: the client's in-flight maximum must reach the N asked for;
    * client-cpu: the CPU the developer threads spent inside model calls, as a share
      of one core, must stay under ``CLIENT_CPU_SHARE_LIMIT`` (they share one GIL).
    """
    checks = []
    reached = int(client.get("concurrency_max") or 0)
    srv_running = (server or {}).get("running_max")
    seen = f"; server saw up to {srv_running:g} running" if srv_running is not None else ""
    if reached >= asked:
        checks.append(Check("concurrency", "ok", f"{reached} of {asked} requests in flight at once{seen}"))
    else:
        checks.append(
            Check(
                "concurrency",
                "mismatch",
                f"only {reached} of {asked} requests were in flight at once{seen}: the developers "
                "never overlapped fully (runs ended or failed before their first call?)",
            )
        )

    if server is None:
        checks.append(Check("tokens", "skipped", "no server metrics"))
    elif server.get("prompt_tokens") is None or server.get("generation_tokens") is None:
        checks.append(Check("tokens", "skipped", "the server exports no token counters"))
    elif not client.get("usage_reported", True):
        checks.append(
            Check(
                "tokens",
                "mismatch",
                "some responses carried no usage, so the client totals are "
                "incomplete (streaming without include_usage?)",
            )
        )
    else:
        pairs = [
            ("prompt", client["prompt_tokens"], server["prompt_tokens"]),
            ("completion", client["completion_tokens"], server["generation_tokens"]),
        ]
        text = ", ".join(
            f"{name} client {c:,} vs server {s:,}" + (f" ({c - s:+,})" if c != s else "") for name, c, s in pairs
        )
        if all(c == s for _, c, s in pairs):
            checks.append(Check("tokens", "ok", text))
        else:
            hint = ""
            if client.get("failed_calls") or client.get("retried_attempts"):
                hint = (
                    f"; {client.get('failed_calls', 0)} failed call(s) and {client.get('retried_attempts', 0)} "
                    "retried attempt(s) may have used server tokens the client never saw"
                )
            checks.append(
                Check("tokens", "mismatch", text + hint + "; another client on this server also moves its counters")
            )

    c_ttft = client.get("ttft_p50_s")
    s_ttft = (server or {}).get("ttft_p50_s")
    if server is None or s_ttft is None:
        checks.append(Check("ttft", "skipped", "no server TTFT histogram"))
    elif c_ttft is None:
        checks.append(Check("ttft", "mismatch", "the client measured no TTFT (no streamed call finished)"))
    else:
        gap = abs(c_ttft - s_ttft)
        tol = max(ttft_rel_tol * s_ttft, ttft_abs_tol_s)
        mean = server.get("ttft_mean_s")
        text = (
            f"client p50 {c_ttft * 1000:.1f} ms vs server p50 {s_ttft * 1000:.1f} ms"
            + (f" (server mean {mean * 1000:.1f} ms)" if mean is not None else "")
            + f": {gap * 1000:.1f} ms apart (tolerance {tol * 1000:.1f} ms)"
        )
        checks.append(Check("ttft", "ok" if gap <= tol + 1e-9 else "mismatch", text))

    share = client.get("harness_cpu_share")
    if share is None:
        checks.append(Check("client-cpu", "skipped", "no model calls timed"))
    else:
        text = (
            f"the developer threads spent {share:.0%} of one core in model calls (limit {CLIENT_CPU_SHARE_LIMIT:.0%})"
        )
        if share <= CLIENT_CPU_SHARE_LIMIT:
            checks.append(Check("client-cpu", "ok", text))
        else:
            checks.append(
                Check(
                    "client-cpu",
                    "mismatch",
                    text + ": they share one GIL, so the client may be "
                    "limiting the load; treat this level's numbers "
                    "as a lower bound of the server's",
                )
            )
    return checks


def find_knee(levels: Sequence[tuple[int, bool | None]]) -> tuple[int | None, str]:
    """The largest N whose level, and every smaller level, holds the SLO; and a note.

    Counting up from the smallest level and stopping at the first break keeps a
    noisy pass above a break (N=4 breaks, N=8 holds) from being reported as
    capacity; the note says when that happened.
    """
    ordered = sorted(levels)
    if not ordered or all(h is None for _, h in ordered):
        return None, "no SLO given (--slo-ttft-p50 / --slo-tps-p50): no knee"
    knee = None
    broke_at = None
    for n, holds in ordered:
        if holds:
            if broke_at is None:
                knee = n
        elif broke_at is None:
            broke_at = n
    if knee is None:
        return None, f"the SLO breaks already at N={ordered[0][0]}"
    later = [n for n, h in ordered if h and broke_at is not None and n > broke_at]
    if broke_at is None:
        return knee, f"the SLO holds at every level up to N={knee}: the knee may be higher"
    note = f"the SLO holds up to N={knee} and breaks at N={broke_at}"
    if later:
        note += f" (it holds again at N={','.join(map(str, later))}: noise; repeat with --rounds or re-run)"
    return knee, note


def client_stats(
    records: Sequence[RunRecord],
    *,
    wall_s: float,
    cpu_per_call_s: Sequence[float],
    concurrency_max: int,
    concurrency_mean: float,
    process_cpu_s: float,
    sandbox_cpu_s: float,
) -> dict[str, Any]:
    """The level as the client saw it: every model call of every run."""
    turns = [t for r in records for t in r.agent.turns]
    ttfts = [t.ttft_s for t in turns if t.ttft_s is not None]
    rates = [float(t.extra["decode_tok_s"]) for t in turns if t.extra.get("decode_tok_s")]
    prompt = sum(t.usage.prompt_tokens for t in turns)
    completion = sum(t.usage.completion_tokens for t in turns)
    cached = sum(t.usage.cached_tokens for t in turns)
    cpu_total = sum(cpu_per_call_s)
    return {
        "calls": len(turns),
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p90_s": percentile(ttfts, 90),
        "decode_tok_s_p50": percentile(rates, 50),
        "decode_tok_s_p10": percentile(rates, 10),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cached_tokens": cached,
        "usage_reported": all(t.usage.reported for t in turns if not t.error),
        "output_tok_s": completion / wall_s if wall_s > 0 else None,
        "concurrency_max": concurrency_max,
        "concurrency_mean": concurrency_mean,
        "failed_calls": sum(1 for t in turns if t.error),
        "retried_attempts": sum(len(t.retries) for t in turns),
        "harness_cpu_per_call_ms_p50": None if not cpu_per_call_s else 1000 * statistics.median(cpu_per_call_s),
        "harness_cpu_per_call_ms_mean": None if not cpu_per_call_s else 1000 * cpu_total / len(cpu_per_call_s),
        "harness_cpu_per_output_token_ms": 1000 * cpu_total / completion if completion else None,
        "harness_cpu_share": cpu_total / wall_s if wall_s > 0 else None,
        "harness_cpu_s": process_cpu_s,
        "sandbox_cpu_s": sandbox_cpu_s,
    }


def server_stats(delta: Any, samples: Mapping[str, Any]) -> dict[str, Any]:
    """The level as the server counted it (``delta``: a metrics.MetricsDelta)."""
    ttft = delta.ttft.p50 if delta.ttft is not None and delta.ttft.count else None
    ttft_mean = delta.ttft.mean if delta.ttft is not None and delta.ttft.count else None
    tpot = delta.tpot.p50 if delta.tpot is not None and delta.tpot.count else None
    return {
        "ttft_p50_s": ttft,
        "ttft_mean_s": ttft_mean,
        "tpot_p50_s": tpot,
        "decode_tok_s_p50": 1.0 / tpot if tpot else None,
        "prompt_tokens": delta.prompt_tokens,
        "generation_tokens": delta.generation_tokens,
        "requests_finished": delta.requests_finished,
        "preemptions": delta.preemptions,
        "prefix_cache_hit_rate": delta.prefix_cache_hit_rate,
        "running_max": samples.get("running_max"),
        "waiting_max": samples.get("waiting_max"),
        "kv_cache_usage_max": samples.get("kv_cache_usage_max"),
        "samples": samples.get("samples", 0),
        "counter_reset": delta.counter_reset,
        "metrics": delta.to_dict(prefix=""),
    }


def level_costs(
    cost: Any,
    compare: Any,
    *,
    devs: int,
    client: Mapping[str, Any],
    wall_s: float,
    gpu_hours_per_month: float,
    dev_hours_per_month: float,
    cost_label: str = "",
    compare_label: str = "",
) -> dict[str, Any]:
    """$/dev-month for the alias (GPU bill shared by N, or its own token prices) and for the
    commercial alternative priced on the same run's tokens. ``None`` = unknown, never $0."""
    from pytest_agentbench.capacity.cost import (
        CommercialCost,
        SelfHostedCost,
        commercial_usd_per_dev_month,
        self_hosted_usd_per_dev_month,
    )

    hours = wall_s / 3600.0
    rates = None
    if hours > 0:
        per = devs * hours
        rates = {
            "prompt_tokens_per_hour": client["prompt_tokens"] / per,
            "completion_tokens_per_hour": client["completion_tokens"] / per,
            "cached_tokens_per_hour": client["cached_tokens"] / per,
        }

    def token_bill(spec: CommercialCost) -> float | None:
        return (
            None if rates is None else commercial_usd_per_dev_month(spec, hours_per_month=dev_hours_per_month, **rates)
        )

    out: dict[str, Any] = {
        "usd_per_dev_month": None,
        "basis": "no cost: mapping for this alias (unknown)",
        "compare_usd_per_dev_month": None,
        "compare_basis": None,
        "tokens_per_dev_hour": rates,
    }
    if isinstance(cost, SelfHostedCost):
        out["usd_per_dev_month"] = self_hosted_usd_per_dev_month(cost, devs, hours_per_month=gpu_hours_per_month)
        out["basis"] = (
            f"{cost_label}${cost.gpu_hourly_usd:g}/GPU-h x {cost.gpus} GPU(s) x {gpu_hours_per_month:g} "
            f"h/month / {devs} developer(s)"
        )
    elif isinstance(cost, CommercialCost):
        out["usd_per_dev_month"] = token_bill(cost)
        out["basis"] = (
            f"{cost_label}{cost.describe()} x this level's tokens per developer-hour x {dev_hours_per_month:g} h/month"
        )
    if isinstance(compare, CommercialCost):
        out["compare_usd_per_dev_month"] = token_bill(compare)
        out["compare_basis"] = (
            f"{compare_label}{compare.describe()} x this level's tokens per developer-hour x "
            f"{dev_hours_per_month:g} h/month (tokens counted by the alias's tokenizer)"
        )
    return out


# --------------------------------------------------------------------------- measuring


class _InFlight:
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


class _MeteredModel:
    """One developer's model client, counted: calls in flight and the harness CPU each call costs.

    ``time.thread_time`` around ``complete`` is the CPU this thread spent on the call
    (request building, HTTP, SSE parsing, tool-call parsing); waiting is not CPU.
    """

    def __init__(self, inner: Any, in_flight: _InFlight, cpu: list[float]):
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


class _Sampler(threading.Thread):
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


@dataclass
class LevelResult:
    """One level of the sweep: N developers at once."""

    devs: int
    wall_s: float
    runs: list[dict[str, Any]]
    client: dict[str, Any]
    server: dict[str, Any] | None
    slo_holds: bool | None
    slo_reasons: list[str]
    cost: dict[str, Any]
    checks: list[Check]
    prefix_cache: str
    errors: list[str] = field(default_factory=list)
    loadavg_before: tuple[float, float, float] | None = None
    loadavg_after: tuple[float, float, float] | None = None

    @property
    def passed(self) -> int:
        return sum(1 for r in self.runs if r["passed"])

    @property
    def pass_rate(self) -> float | None:
        return self.passed / len(self.runs) if self.runs else None

    @property
    def mismatches(self) -> list[Check]:
        return [c for c in self.checks if c.status == "mismatch"]

    def to_dict(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        failures: dict[str, int] = {}
        for r in self.runs:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
            for cls, n in r.get("failures", {}).items():
                failures[cls] = failures.get(cls, 0) + n
        return {
            "devs": self.devs,
            "wall_s": self.wall_s,
            "runs_total": len(self.runs),
            "passed": self.passed,
            "pass_rate": self.pass_rate,
            "outcomes": outcomes,
            "failures_by_class": failures,
            "slo_holds": self.slo_holds,
            "slo_reasons": self.slo_reasons,
            "client": self.client,
            "server": self.server,
            "cost": self.cost,
            "checks": [c.to_dict() for c in self.checks],
            "mismatches": len(self.mismatches),
            "prefix_cache": self.prefix_cache,
            "errors": self.errors,
            "loadavg_before": self.loadavg_before,
            "loadavg_after": self.loadavg_after,
            "runs": self.runs,
        }


@dataclass
class SweepResult:
    """Every level, the knee, and how the numbers were obtained."""

    alias: str
    model: str
    test_double: bool
    slo: Slo
    levels: list[LevelResult]
    packets: list[str]
    rounds: int
    sandbox: str
    base_url: str
    metrics_url: str | None
    server_metrics: str  # "available" or why not
    notes: list[str]
    started_at: str
    finished_at: str = ""
    compare_alias: str | None = None
    gpu_hours_per_month: float = HOURS_PER_MONTH_24X7
    dev_hours_per_month: float = WORKING_HOURS_PER_MONTH
    #: Why the sweep stopped before its last level (the server failed), else None.
    stopped: str | None = None

    @property
    def knee(self) -> tuple[int | None, str]:
        return find_knee([(lv.devs, lv.slo_holds) for lv in self.levels])

    @property
    def mismatches(self) -> list[tuple[int, Check]]:
        return [(lv.devs, c) for lv in self.levels for c in lv.mismatches]

    def knee_level(self) -> LevelResult | None:
        knee = self.knee[0]
        return next((lv for lv in self.levels if lv.devs == knee), None)

    def to_dict(self) -> dict[str, Any]:
        knee, note = self.knee
        at_knee = self.knee_level()
        return json_safe(
            {
                "schema": "agentbench-sweep/1",
                "alias": self.alias,
                "model": self.model,
                "test_double": self.test_double,
                "slo": {
                    "ttft_p50_s": self.slo.ttft_p50_s,
                    "tps_p50": self.slo.tps_p50,
                    "describe": self.slo.describe(),
                    "judged_on": "client-side medians",
                },
                "knee": knee,
                "knee_note": note,
                "knee_usd_per_dev_month": at_knee.cost["usd_per_dev_month"] if at_knee else None,
                "knee_compare_usd_per_dev_month": at_knee.cost["compare_usd_per_dev_month"] if at_knee else None,
                "mismatches": [{"devs": n, **c.to_dict()} for n, c in self.mismatches],
                "packets": self.packets,
                "rounds": self.rounds,
                "sandbox": self.sandbox,
                "base_url": self.base_url,
                "metrics_url": self.metrics_url,
                "server_metrics": self.server_metrics,
                "compare_alias": self.compare_alias,
                "gpu_hours_per_month": self.gpu_hours_per_month,
                "dev_hours_per_month": self.dev_hours_per_month,
                "tolerances": {"ttft_rel": TTFT_REL_TOLERANCE, "ttft_abs_s": TTFT_ABS_TOLERANCE_S},
                "notes": self.notes,
                "stopped": self.stopped,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                },
                "levels": [lv.to_dict() for lv in self.levels],
            }
        )


def _loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def _run_summary(record: RunRecord, developer: int, round_: int) -> dict[str, Any]:
    usage = record.agent.usage
    return {
        "packet": record.packet.id,
        "developer": developer,
        "round": round_,
        "run_id": record.run_id,
        "passed": record.passed,
        "outcome": record.agent.outcome,
        "failure": record.agent.failure,
        "failures": record.agent.failures_by_class(),
        "turns": len(record.agent.turns),
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "wall_s": record.wall_s,
    }


def _default_make_model(spec: ModelSpec, base_url: str) -> Any:
    from pytest_agentbench.models.adapter import ModelAdapter

    return ModelAdapter(spec, base_url)


class Sweep:
    """Runs the levels of a :class:`SweepConfig` against an endpoint that is already up.

    ``make_model(spec, base_url)`` and ``make_sandbox(packet)`` replace the
    defaults (``ModelAdapter``, ``sandbox.make_sandbox(config.sandbox, ...)``);
    ``on_run(record, devs)`` sees every finished run (e.g. to write JSONL).
    """

    def __init__(
        self,
        config: SweepConfig,
        base_url: str,
        *,
        make_model: Callable[[ModelSpec, str], Any] | None = None,
        make_sandbox: Callable[[Packet], Any] | None = None,
        on_run: Callable[[RunRecord, int], None] | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.config = config
        self.notes: list[str] = []
        if not config.spec.stream:
            self.notes.append(
                "streaming forced on for this sweep (models.yaml says stream: false) so that TTFT is measured"
            )
        self.spec = dataclasses.replace(config.spec, stream=True)
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self.make_model = make_model or _default_make_model
        if make_sandbox is None:
            from pytest_agentbench.sandbox import make_sandbox as _make

            def make_sandbox(packet: Packet) -> Any:
                return _make(config.sandbox, packet.workspace)

        self.make_sandbox = make_sandbox
        self.on_run = on_run
        self.progress = progress or (lambda _msg: None)
        self.metrics_url: str | None = None
        self.metrics_model: str | None = None
        self.server_metrics = "not probed"
        self.is_vllm = False

    # -- server side ---------------------------------------------------------
    def probe_server(self) -> None:
        """Decide whether server numbers exist: ``/metrics`` answers with vLLM families."""
        from pytest_agentbench.serving.vllm.metrics import fetch_metrics_text, metrics_url, parse_metrics

        url = metrics_url(self.config.metrics_url or self.base_url)
        try:
            text = fetch_metrics_text(url, timeout_s=5.0)
        except ServerError as exc:
            self.server_metrics = f"unavailable: no /metrics at {url} ({exc.__cause__ or exc})"
            return
        try:
            try:
                snap = parse_metrics(text, model_name=self.spec.model)
                self.metrics_model = self.spec.model
            except ServerError:  # the server names the model differently: take all of it
                snap = parse_metrics(text)
                self.notes.append(
                    f"/metrics has no series for model {self.spec.model!r}; server numbers "
                    f"cover every model it serves ({', '.join(snap.model_names)})"
                )
        except ImportError as exc:
            self.server_metrics = f"unavailable: {exc}"
            return
        except Exception as exc:  # not Prometheus text
            self.server_metrics = f"unavailable: {url} is not Prometheus text ({type(exc).__name__}: {exc})"
            return
        if not any(name.startswith("vllm:") for name in snap.families):
            self.server_metrics = f"unavailable: {url} exports no vllm:* metrics"
            return
        self.metrics_url = url
        self.is_vllm = True
        self.server_metrics = "available"

    def reset_prefix_cache(self) -> str:
        """POST /reset_prefix_cache; says what happened (the server may not expose it)."""
        if not self.is_vllm:
            return "n/a (not a vLLM server)"
        if not self.config.reset_prefix_cache:
            return "kept (--keep-prefix-cache)"
        from pytest_agentbench.serving.vllm.admin import reset_prefix_cache

        return reset_prefix_cache(self.root_url)

    def _scrape_settled(self) -> Any:
        from pytest_agentbench.serving.vllm.metrics import scrape_settled

        assert self.metrics_url is not None
        return scrape_settled(self.metrics_url, model_name=self.metrics_model, timeout_s=10.0)

    def warmup(self) -> None:
        """One short call so the first level does not pay for lazy server start-up."""
        model = self.make_model(self.spec, self.base_url)
        try:
            model.complete([{"role": "user", "content": "warm-up: reply with one word"}], (), max_tokens=8, timeout=120)
        except Exception as exc:  # a failing server shows in the levels; say it here too
            self.notes.append(f"warm-up call failed: {exc}")
        finally:
            close = getattr(model, "close", None)
            if close is not None:
                close()

    # -- one level -----------------------------------------------------------
    def run_level(self, devs: int) -> LevelResult:
        from pytest_agentbench.runner import run_packet

        cfg = self.config
        prefix = self.reset_prefix_cache()
        before = self._scrape_settled() if self.metrics_url else None
        in_flight = _InFlight()
        cpu: list[float] = []
        records: list[tuple[RunRecord, int, int]] = []
        errors: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(devs + 1)
        models = [_MeteredModel(self.make_model(self.spec, self.base_url), in_flight, cpu) for _ in range(devs)]

        def developer(index: int) -> None:
            order = [cfg.packets[(index + k) % len(cfg.packets)] for k in range(len(cfg.packets))]
            first: list[Any] = []
            try:  # the first sandbox is made before the barrier: the first calls really start together
                first.append(self.make_sandbox(order[0]))
            except Exception as exc:
                with lock:
                    errors.append(f"developer {index}: sandbox for {order[0].id}: {type(exc).__name__}: {exc}")
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                for box in first:
                    box.close()
                return
            for round_ in range(cfg.rounds):
                for packet in order:
                    if round_ == 0 and packet is order[0] and not first:
                        continue  # its sandbox failed above

                    def sandbox_for(p: Packet) -> Any:
                        return first.pop() if first else self.make_sandbox(p)

                    try:
                        record = run_packet(
                            packet, self.spec, models[index], sandbox_for, agent_timeout=cfg.agent_timeout
                        )
                    except Exception as exc:  # infrastructure: the level records it and goes on
                        with lock:
                            errors.append(
                                f"developer {index}, {packet.id}, round {round_}: {type(exc).__name__}: {exc}"
                            )
                        continue
                    record.extra.update({"sweep_devs": devs, "developer": index, "round": round_})
                    with lock:
                        records.append((record, index, round_))
                    if self.on_run is not None:
                        self.on_run(record, devs)

        sampler = _Sampler(self.metrics_url, self.metrics_model, cfg.sample_interval_s) if self.metrics_url else None
        threads = [
            threading.Thread(target=developer, args=(i,), name=f"agentbench-dev-{i}", daemon=True) for i in range(devs)
        ]
        load_before = _loadavg()
        for t in threads:
            t.start()
        try:
            barrier.wait(timeout=600)
        except threading.BrokenBarrierError:
            errors.append("the developers never all reached the start barrier (sandbox creation hung?)")
        in_flight.restart()
        cpu0 = time.process_time()
        child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        if sampler is not None:
            sampler.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        process_cpu = time.process_time() - cpu0
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples = sampler.finish() if sampler is not None else {}
        mean_in_flight = in_flight.mean()
        for m in models:
            close = getattr(m.inner, "close", None)
            if close is not None:
                close()
        server = None
        if before is not None:
            from pytest_agentbench.serving.vllm.metrics import diff

            server = server_stats(diff(before, self._scrape_settled()), samples)
        load_after = _loadavg()

        records.sort(key=lambda item: (item[1], item[2]))
        runs = [r for r, _, _ in records]
        client = client_stats(
            runs,
            wall_s=wall,
            cpu_per_call_s=cpu,
            concurrency_max=in_flight.max,
            concurrency_mean=mean_in_flight,
            process_cpu_s=process_cpu,
            sandbox_cpu_s=(child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime),
        )
        holds, reasons = cfg.slo.judge(client["ttft_p50_s"], client["decode_tok_s_p50"])
        cost = level_costs(
            self.spec.cost,
            cfg.compare.cost if cfg.compare else None,
            devs=devs,
            client=client,
            wall_s=wall,
            gpu_hours_per_month=cfg.gpu_hours_per_month,
            dev_hours_per_month=cfg.dev_hours_per_month,
            compare_label=f"{cfg.compare.alias}: " if cfg.compare else "",
        )
        summaries = [_run_summary(r, d, k) for r, d, k in records]
        summaries += [
            {
                "packet": None,
                "developer": None,
                "round": None,
                "passed": False,
                "outcome": "error",
                "error": e,
                "failures": {},
            }
            for e in errors
        ]
        return LevelResult(
            devs=devs,
            wall_s=wall,
            runs=summaries,
            client=client,
            server=server,
            slo_holds=holds,
            slo_reasons=reasons,
            cost=cost,
            checks=reconcile(devs, client, server),
            prefix_cache=prefix,
            errors=errors,
            loadavg_before=load_before,
            loadavg_after=load_after,
        )

    def run(self) -> SweepResult:
        cfg = self.config
        result = SweepResult(
            alias=self.spec.alias,
            model=self.spec.model,
            test_double=self.spec.test_double,
            slo=cfg.slo,
            levels=[],
            packets=[p.id for p in cfg.packets],
            rounds=cfg.rounds,
            sandbox=cfg.sandbox,
            base_url=self.base_url,
            metrics_url=None,
            server_metrics="",
            notes=self.notes,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            compare_alias=cfg.compare.alias if cfg.compare else None,
            gpu_hours_per_month=cfg.gpu_hours_per_month,
            dev_hours_per_month=cfg.dev_hours_per_month,
        )
        self.probe_server()
        result.metrics_url, result.server_metrics = self.metrics_url, self.server_metrics
        if cfg.warmup:
            self.warmup()
        for devs in sorted(set(cfg.devs)):
            runs = devs * len(cfg.packets) * cfg.rounds
            self.progress(
                f"level N={devs}: {devs} developer(s) x {len(cfg.packets)} packet(s) x {cfg.rounds} "
                f"round(s) = {runs} run(s) ..."
            )
            try:
                level = self.run_level(devs)
            except InfrastructureError as exc:  # the server died: keep what was measured
                result.stopped = f"stopped at N={devs}: {exc}"
                self.progress(f"level N={devs}: {result.stopped}")
                break
            result.levels.append(level)
            ttft = level.client["ttft_p50_s"]
            self.progress(
                f"level N={devs}: done in {level.wall_s:.1f} s, pass {level.passed}/{len(level.runs)}, "
                f"TTFT p50 {_fmt(ttft, 3)} s, SLO {_slo_word(level.slo_holds)}, "
                f"prefix cache {level.prefix_cache.split(':')[0]}"
                + (f", {len(level.mismatches)} mismatch(es)" if level.mismatches else "")
            )
        result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        return result


# --------------------------------------------------------------------------- output


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def _slo_word(holds: bool | None) -> str:
    return "-" if holds is None else ("holds" if holds else "BREAKS")


def _usd(value: float | None) -> str:
    from pytest_agentbench.capacity.cost import format_usd

    return "-" if value is None else format_usd(value)


def _usd_short(value: float | None) -> str:
    """Whole dollars from $100 up: the table stays within 100 columns."""
    if value is None:
        return "-"
    return f"${value:,.0f}" if value >= 100 else _usd(value)


def _table_rows(result: SweepResult) -> tuple[list[str], list[list[str]]]:
    header = [
        "N",
        "pass",
        "ttft_cli",
        "ttft_srv",
        "tps_cli",
        "tps_srv",
        "infl",
        "srv_run",
        "kv_max",
        "SLO",
        "$/dev-mo",
        "API/dev-mo",
        "checks",
    ]
    rows = []
    for lv in result.levels:
        c, s = lv.client, lv.server or {}
        kv = s.get("kv_cache_usage_max")
        running = s.get("running_max")
        rows.append(
            [
                str(lv.devs),
                f"{lv.passed}/{len(lv.runs)}",
                _fmt(c["ttft_p50_s"]),
                _fmt(s.get("ttft_p50_s")),
                _fmt(c["decode_tok_s_p50"], 1),
                _fmt(s.get("decode_tok_s_p50"), 1),
                f"{c['concurrency_max']}/{lv.devs}",
                "-" if running is None else f"{running:g}",
                "-" if kv is None else f"{kv:.0%}",
                _slo_word(lv.slo_holds),
                _usd_short(lv.cost["usd_per_dev_month"]),
                _usd_short(lv.cost["compare_usd_per_dev_month"]),
                "ok" if not lv.mismatches else f"{len(lv.mismatches)} FLAG",
            ]
        )
    return header, rows


def format_table(result: SweepResult, width: int = TABLE_WIDTH) -> str:
    """The terminal report: one row per level, then knee, costs, checks and notes (<= ``width`` columns)."""
    import textwrap

    header, rows = _table_rows(result)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = {0}

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return " ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in pairs)

    wrap = textwrap.TextWrapper(width=width, subsequent_indent="    ")
    out = wrap.wrap(
        f"agentbench sweep: alias {result.alias} (model {result.model})"
        + (" [TEST DOUBLE: not a model]" if result.test_double else "")
    )
    out += wrap.wrap(
        f"{len(result.packets)} packet(s) x {result.rounds} round(s) per developer, sandbox "
        f"{result.sandbox}; SLO: {result.slo.describe()} (client side)"
    )
    out += ["", line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    out += wrap.wrap(LEGEND)
    out.append("")
    knee, note = result.knee
    at = result.knee_level()
    if knee is not None and at is not None:
        own = at.cost["usd_per_dev_month"]
        cost = f"{_usd(own)}/dev-month" if own is not None else "cost unknown (no cost: for this alias)"
        if at.cost["compare_usd_per_dev_month"] is not None:
            cost += f" vs {result.compare_alias} {_usd(at.cost['compare_usd_per_dev_month'])}/dev-month"
        out += wrap.wrap(f"knee: N={knee} ({note}); at the knee: {cost}")
    else:
        out += wrap.wrap(f"knee: none ({note})")
    out += wrap.wrap(f"server metrics: {result.server_metrics}")
    prefix = sorted({lv.prefix_cache for lv in result.levels})
    out += wrap.wrap(f"prefix cache between levels: {'; '.join(prefix)}")
    cpu = [
        lv.client["harness_cpu_per_call_ms_p50"]
        for lv in result.levels
        if lv.client["harness_cpu_per_call_ms_p50"] is not None
    ]
    tok = [
        lv.client["harness_cpu_per_output_token_ms"]
        for lv in result.levels
        if lv.client["harness_cpu_per_output_token_ms"] is not None
    ]
    if cpu:
        out += wrap.wrap(
            f"harness CPU per model call (p50 over levels): {min(cpu):.2f}-{max(cpu):.2f} ms"
            + (f"; per output token {min(tok):.3f}-{max(tok):.3f} ms" if tok else "")
        )
    for devs, check in result.mismatches:
        out += wrap.wrap(f"FLAG N={devs} {check.name}: {check.detail}")
    for lv in result.levels:
        for err in lv.errors[:3]:
            out += wrap.wrap(f"ERROR N={lv.devs}: {err}")
        if len(lv.errors) > 3:
            out.append(f"ERROR N={lv.devs}: ... {len(lv.errors) - 3} more (see the JSON)")
    for note_text in result.notes:
        out += wrap.wrap(f"note: {note_text}")
    if result.stopped:
        out += wrap.wrap(f"STOPPED: {result.stopped}")
    return "\n".join(out)


# -- HTML with an inline SVG plot


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _svg_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str, str]],
    slo: float | None,
    slo_label: str,
    knee_index: int | None,
    y_unit: str,
) -> str:
    """A line chart: one point per level (evenly spaced), an SLO line, the knee marked."""
    w, h, left, right, top, bottom = 520, 260, 56, 16, 30, 40
    values = [v for _, vs, _, _ in series for v in vs if v is not None]
    top_value = max(values + ([slo] if slo is not None else []) + [0.0]) or 1.0
    top_value *= 1.15
    n = len(labels)

    def x(i: int) -> float:
        return left + (w - left - right) * (0.5 if n == 1 else i / (n - 1))

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - v / top_value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" aria-label="{_e(title)}">',
        f'<text x="{w / 2:.0f}" y="18" text-anchor="middle" font-size="13" font-weight="bold">{_e(title)}</text>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#444"/>',
    ]
    for k in range(5):
        v = top_value * k / 4
        parts.append(
            f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="10">{_e(f"{v:.3g}")}</text>'
        )
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{w - right}" y2="{y(v):.1f}" stroke="#eee"/>')
    for i, label in enumerate(labels):
        parts.append(
            f'<text x="{x(i):.1f}" y="{h - bottom + 14}" text-anchor="middle" font-size="11">{_e(label)}</text>'
        )
    parts.append(
        f'<text x="{(left + w - right) / 2:.0f}" y="{h - 6}" text-anchor="middle" font-size="11">developers (N)</text>'
    )
    parts.append(
        f'<text x="12" y="{(top + h - bottom) / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {(top + h - bottom) / 2:.0f})">{_e(y_unit)}</text>'
    )
    if knee_index is not None:
        parts.append(
            f'<line x1="{x(knee_index):.1f}" y1="{top}" x2="{x(knee_index):.1f}" y2="{h - bottom}" '
            f'stroke="#2a7" stroke-dasharray="2,3"/>'
        )
        parts.append(f'<text x="{x(knee_index) + 3:.1f}" y="{top + 10}" font-size="10" fill="#2a7">knee</text>')
    if slo is not None:
        parts.append(
            f'<line x1="{left}" y1="{y(slo):.1f}" x2="{w - right}" y2="{y(slo):.1f}" stroke="#c33" '
            f'stroke-dasharray="6,4"/>'
        )
        parts.append(
            f'<text x="{w - right - 2}" y="{y(slo) - 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="#c33">{_e(slo_label)}</text>'
        )
    for k, (name, vs, color, dash) in enumerate(series):
        pts = [(x(i), y(v)) for i, v in enumerate(vs) if v is not None]
        if len(pts) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{_e(color)}" stroke-width="2" '
                f'stroke-dasharray="{_e(dash)}"/>'
            )
        for px, py in pts:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{_e(color)}"/>')
        lx = left + 8 + 130 * k
        parts.append(
            f'<line x1="{lx}" y1="{top + 8}" x2="{lx + 18}" y2="{top + 8}" stroke="{_e(color)}" '
            f'stroke-width="2" stroke-dasharray="{_e(dash)}"/>'
        )
        parts.append(f'<text x="{lx + 22}" y="{top + 12}" font-size="10" fill="{_e(color)}">{_e(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: SweepResult, title: str | None = None) -> str:
    """A self-contained HTML page: the SLO-vs-N plots (inline SVG), the table, checks and notes."""
    title = title or f"agentbench sweep: {result.alias}"
    labels = [str(lv.devs) for lv in result.levels]
    knee, note = result.knee
    knee_index = next((i for i, lv in enumerate(result.levels) if lv.devs == knee), None)
    ttft = _svg_chart(
        "median TTFT vs developers",
        labels,
        [
            ("client", [lv.client["ttft_p50_s"] for lv in result.levels], "#1f5fa8", "none"),
            ("server /metrics", [(lv.server or {}).get("ttft_p50_s") for lv in result.levels], "#999", "5,3"),
        ],
        result.slo.ttft_p50_s,
        f"SLO {result.slo.ttft_p50_s:g} s" if result.slo.ttft_p50_s is not None else "",
        knee_index,
        "seconds",
    )
    tps = _svg_chart(
        "median decode tok/s per stream vs developers",
        labels,
        [
            ("client", [lv.client["decode_tok_s_p50"] for lv in result.levels], "#1f5fa8", "none"),
            ("server /metrics", [(lv.server or {}).get("decode_tok_s_p50") for lv in result.levels], "#999", "5,3"),
        ],
        result.slo.tps_p50,
        f"SLO {result.slo.tps_p50:g} tok/s" if result.slo.tps_p50 is not None else "",
        knee_index,
        "tokens / s",
    )
    header, rows = _table_rows(result)
    table = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for lv, row in zip(result.levels, rows, strict=True):
        cls = "" if lv.slo_holds is None else (' class="ok"' if lv.slo_holds else ' class="bad"')
        table.append(f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    table.append("</table>")
    checks = ["<table><tr><th>N</th><th>check</th><th>status</th><th>detail</th></tr>"]
    for lv in result.levels:
        for c in lv.checks:
            mark = ' class="bad"' if c.status == "mismatch" else ""
            checks.append(
                f"<tr{mark}><td>{lv.devs}</td><td>{_e(c.name)}</td><td>{_e(c.status)}</td><td>{_e(c.detail)}</td></tr>"
            )
    checks.append("</table>")
    facts = [
        f"alias <b>{_e(result.alias)}</b> (model {_e(result.model)})"
        + (" &mdash; <b>test double, not a model</b>" if result.test_double else ""),
        f"SLO: {_e(result.slo.describe())} (judged on client-side medians)",
        f"knee: {_e('N=' + str(knee) if knee is not None else 'none')} ({_e(note)})",
        f"packets: {_e(', '.join(result.packets))}; {result.rounds} round(s) per developer; "
        f"sandbox {_e(result.sandbox)}",
        f"server metrics: {_e(result.server_metrics)}",
        "prefix cache between levels: " + _e("; ".join(sorted({lv.prefix_cache for lv in result.levels}))),
        f"$/dev-month: GPU {result.gpu_hours_per_month:g} h/month shared by N; API at "
        f"{result.dev_hours_per_month:g} h/month per developer"
        + (f" ({_e(result.compare_alias)})" if result.compare_alias else ""),
        f"started {_e(result.started_at)}, finished {_e(result.finished_at)}",
    ]
    facts += [f"note: {_e(n)}" for n in result.notes]
    style = (
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;"
        "margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
        "td:last-child,th:last-child{text-align:left}tr.ok td{background:#eef8ee}tr.bad td{background:#fbeaea}"
        "svg{margin:8px 16px 8px 0;border:1px solid #eee}"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{style}</style></head><body>"
        f"<h1>{_e(title)}</h1><ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>"
        f"<div>{ttft}{tps}</div><h2>Levels</h2>{''.join(table)}"
        f"<h2>Reconciliation</h2>{''.join(checks)}"
        "<p>Columns and rules: docs/capacity.md. TTFT/tok/s cli = client-side medians over every model call; "
        "srv = medians estimated from the server's histogram deltas; infl = most model calls in flight at once "
        "(client) / asked; srv = most requests running (sampled from /metrics).</p>"
        "</body></html>\n"
    )


# --------------------------------------------------------------------------- CLI


def _positive(kind: type, flag: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: expected a number > 0, found {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{flag}: expected a number > 0, found {text!r}")
        return value

    return parse


def parse_devs(text: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> ``(1, 2, 4, 8)``; sorted, without repeats."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise argparse.ArgumentTypeError(
                f"--devs: expected developer counts >= 1 separated by commas, such "
                f"as 1,2,4,8; found {part!r} in {text!r}"
            )
        values.append(int(part))
    return tuple(sorted(set(values)))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-file", default="models.yaml", metavar="PATH")
    p.add_argument("--models", required=True, metavar="ALIAS", help="the one alias to sweep")
    p.add_argument(
        "--devs",
        required=True,
        type=parse_devs,
        metavar="N,N,...",
        help="developer counts, one level each (e.g. 1,2,4,8)",
    )
    p.add_argument("--packets", action="append", metavar="DIR", help="packet folder(s) (default task_packets)")
    p.add_argument("--packet", action="append", metavar="ID", help="only these packet ids (repeatable)")
    p.add_argument("--sandbox", choices=("auto", "docker", "local"), default="auto")
    p.add_argument(
        "--slo-ttft-p50",
        type=_positive(float, "--slo-ttft-p50"),
        metavar="S",
        help="median time to first token must be <= S seconds",
    )
    p.add_argument(
        "--slo-tps-p50",
        type=_positive(float, "--slo-tps-p50"),
        metavar="TOK/S",
        help="median per-stream decode rate must be >= TOK/S",
    )
    p.add_argument(
        "--rounds",
        type=_positive(int, "--rounds"),
        default=1,
        metavar="K",
        help="passes over the packet set per developer per level (default 1)",
    )
    p.add_argument(
        "--agent-timeout",
        type=_positive(float, "--agent-timeout"),
        metavar="S",
        help="wall budget per run, overriding the packets' limits.timeout_s",
    )
    p.add_argument(
        "--compare-alias",
        metavar="ALIAS",
        help="a commercial alias whose prices turn this run's tokens into an API $/dev-month",
    )
    p.add_argument(
        "--gpu-hours-per-month",
        type=_positive(float, "--gpu-hours-per-month"),
        default=HOURS_PER_MONTH_24X7,
        metavar="H",
        help="hours the GPU is paid for (default 730 = 24x7)",
    )
    p.add_argument(
        "--dev-hours-per-month",
        type=_positive(float, "--dev-hours-per-month"),
        default=WORKING_HOURS_PER_MONTH,
        metavar="H",
        help="hours a developer keeps an agent busy (default 176 = 22 x 8 h)",
    )
    p.add_argument("--metrics-url", metavar="URL", help="the server's /metrics if not at the endpoint's root")
    p.add_argument(
        "--sample-interval",
        type=_positive(float, "--sample-interval"),
        default=0.5,
        metavar="S",
        help="seconds between /metrics samples during a level (running requests, KV use; default 0.5)",
    )
    p.add_argument(
        "--keep-prefix-cache",
        action="store_true",
        help="do not reset the prefix cache between levels (and do not set VLLM_SERVER_DEV_MODE)",
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the one short warm-up call before level 1")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where sweep.json, sweep.html and runs.jsonl go (default .agentbench/sweeps/ALIAS-TIMESTAMP)",
    )
    p.add_argument(
        "--strict-numbers",
        action="store_true",
        help="exit 1 when a reconciliation check flags a level (client vs server numbers)",
    )


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``agentbench sweep`` on an ``add_subparsers()`` object."""
    p = sub.add_parser(
        "sweep",
        help="run the packets with N = 1, 2, 4, ... concurrent developers against one "
        "alias: SLO, knee, $/dev-month, client vs server numbers",
    )
    add_arguments(p)
    p.set_defaults(func=run_cli)
    return p


def _serve_spec(spec: ModelSpec, keep_prefix_cache: bool) -> ModelSpec:
    """The alias as the sweep starts it: vLLM in dev mode, so /reset_prefix_cache exists."""
    serve = spec.serve
    if serve is None or serve.engine != "vllm" or keep_prefix_cache:
        return spec
    env = dict(serve.env)
    env.setdefault(DEV_MODE_ENV, "1")
    return dataclasses.replace(spec, serve=dataclasses.replace(serve, env=env))


def _fail(message: str, code: int = 2) -> int:
    print(f"agentbench sweep: error: {message}", file=sys.stderr)
    return code


def run_cli(args: argparse.Namespace) -> int:
    """``agentbench sweep``: 0 done, 1 a check flagged under --strict-numbers, 2 usage, 3 infrastructure."""
    from pytest_agentbench.capacity.cost import CommercialCost
    from pytest_agentbench.models.registry import load_models, select, select_usable
    from pytest_agentbench.packets.schema import discover_packets
    from pytest_agentbench.results.store import JsonlWriter, record_to_dict
    from pytest_agentbench.serving.endpoints import Endpoints

    aliases = [a.strip() for a in args.models.split(",") if a.strip()]
    if len(aliases) != 1:
        return _fail(f"--models: a sweep takes exactly one alias, found {args.models!r}; run one sweep per alias")
    try:
        spec = select_usable(args.models_file, aliases)[0]
        compare = None
        if args.compare_alias:  # only its price is used: it need not be usable
            compare = select(load_models(args.models_file), [args.compare_alias], args.models_file)[0]
            if not isinstance(compare.cost, CommercialCost):
                return _fail(
                    f"--compare-alias: {compare.where}.cost must be a commercial price such as "
                    "{input_per_mtok: 3.0, output_per_mtok: 15.0}"
                )
        packets = discover_packets(args.packets or ["task_packets"])
        if args.packet:
            known = {p.id for p in packets}
            unknown = [pid for pid in args.packet if pid not in known]
            if unknown:
                return _fail(f"--packet: unknown packet id(s) {', '.join(unknown)}; found: {', '.join(sorted(known))}")
            packets = [p for p in packets if p.id in set(args.packet)]
        if not packets:
            return _fail(f"--packets: no packet.yaml found below {', '.join(args.packets or ['task_packets'])}")
        config = SweepConfig(
            spec=spec,
            packets=tuple(packets),
            devs=args.devs,
            sandbox=args.sandbox,
            slo=Slo(args.slo_ttft_p50, args.slo_tps_p50),
            rounds=args.rounds,
            agent_timeout=args.agent_timeout,
            compare=compare,
            gpu_hours_per_month=args.gpu_hours_per_month,
            dev_hours_per_month=args.dev_hours_per_month,
            metrics_url=args.metrics_url,
            reset_prefix_cache=not args.keep_prefix_cache,
            warmup=not args.no_warmup,
            sample_interval_s=args.sample_interval,
        )
    except ConfigError as exc:
        return _fail(str(exc))

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path(".agentbench") / "sweeps" / f"{spec.alias}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        with Endpoints() as endpoints, JsonlWriter(out / "runs.jsonl") as writer:
            served = _serve_spec(spec, args.keep_prefix_cache)
            progress(f"starting the endpoint for {spec.alias} ..." if spec.serve else f"endpoint: {spec.base_url}")
            url = endpoints.start([served])[spec.alias]
            write_lock = threading.Lock()

            def on_run(record: RunRecord, devs: int) -> None:
                data = record_to_dict(record, transcript_chars=4000)
                with write_lock:
                    writer.write(data)

            sweep = Sweep(config, url, on_run=on_run, progress=progress)
            result = sweep.run()
    except ConfigError as exc:
        return _fail(str(exc))
    except InfrastructureError as exc:
        return _fail(str(exc), 3)

    (out / "sweep.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / "sweep.html").write_text(render_html(result), encoding="utf-8")
    print(format_table(result))
    print(f"written: sweep.json, sweep.html, runs.jsonl in {out}")
    if result.stopped:
        print(f"agentbench sweep: {result.stopped}", file=sys.stderr)
        return 3
    if result.mismatches and args.strict_numbers:
        print(
            f"agentbench sweep: {len(result.mismatches)} reconciliation check(s) flagged (--strict-numbers)",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_agentbench.capacity.sweep ...`` (the same as ``agentbench sweep ...``)."""
    parser = argparse.ArgumentParser(prog="agentbench sweep", description=add_parser.__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(args)
