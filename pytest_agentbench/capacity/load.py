"""Request-rate load: N prompts against one endpoint, arriving as a Poisson (or gamma) process.

    agentbench load --models local-coder --num-prompts 100 --request-rate 4 --input-len 256 --output-len 128

The load shapes of ``vllm bench serve``, each answer timed and classified by the agent adapter's own
code (``models/adapter.py``: its stream state and failure taxonomy, so the numbers mean what they mean
for every agent turn):

* ``--request-rate R`` (several: one run each, ``inf`` = all at once): request *i* is due at the
  *i*-th arrival of ``capacity/arrivals.py`` (gamma gaps of shape ``--burstiness``; 1 = Poisson);
* ``--max-concurrency C``: at most C requests in flight; a due request waits for a free slot
  (the wait shows as ``send_lag_s``), as vllm bench's semaphore;
* prompts from ``capacity/prompts.py`` (random of ``--input-len`` tokens, or a dataset file);
  ``--output-len`` is each request's ``max_tokens``, and ``--ignore-eos`` adds vLLM's
  ``ignore_eos: true`` so every answer is exactly that long;
* streamed with usage; no retries (a retried request would be counted twice by the server and
  would hide the failure); the first failure of a request is its result.

One worker per slot takes the next due request, waits until it is due and sends it. ``--client``
says what a worker is: ``asyncio`` (the default where aiohttp is installed), a coroutine, every
stream read by one event loop (``capacity/load_async.py`` over ``serving/aio.py``), as vllm bench
does; ``threads``, a thread with its own adapter (``ModelAdapter`` over ``serving/http.py``: the
agent loop's client). Which one ran is in the result's config. Before each rate the prefix cache
is reset and ``/metrics`` is scraped once the server is idle; after it, the server's token
counters are reconciled with the client's usage (``capacity/reconcile.py``). The numbers of one
run (``capacity/latency.py``): request and token throughput, TTFT/TPOT/ITL/E2E mean and
percentiles, goodput, the harness's CPU per output token.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pytest_agentbench.capacity.arrivals import arrival_times, check_rate
from pytest_agentbench.capacity.latency import RequestTiming, request_stats
from pytest_agentbench.capacity.metering import InFlight
from pytest_agentbench.capacity.reconcile import Check, reconcile
from pytest_agentbench.capacity.server import ServerWatch, default_model, loadavg
from pytest_agentbench.capacity.slo import Slo
from pytest_agentbench.errors import ConfigError, ModelCallError
from pytest_agentbench.results.jsonsafe import json_safe

if TYPE_CHECKING:
    from pytest_agentbench.agents.loop import Model
    from pytest_agentbench.capacity.prompts import Prompt, PromptSet
    from pytest_agentbench.models.registry import ModelSpec

__all__ = ["CLIENTS", "MAX_WORKERS", "Load", "LoadConfig", "LoadResult", "RateRun", "load_spec"]

#: The load clients: ``auto`` is ``asyncio`` where aiohttp is installed, else ``threads`` (and a note says so).
CLIENTS = ("auto", "asyncio", "threads")

#: At most this many worker threads (requests in flight) per run; a larger --max-concurrency is refused.
MAX_WORKERS = 512
#: A request sent later than this after it was due (without a slot limit) was shaped by the client, not the rate.
LATE_S = 0.050


def load_spec(spec: ModelSpec, *, ignore_eos: bool) -> ModelSpec:
    """The alias as a load sends it: streamed with usage, never retried, ``ignore_eos`` if asked."""
    from pytest_agentbench.models.taxonomy import RetryPolicy

    extra = dict(spec.extra_body or {})
    if ignore_eos:
        extra["ignore_eos"] = True
    no_retries = {cls: RetryPolicy(attempts=0) for cls in spec.retries}
    return dataclasses.replace(spec, stream=True, retries=no_retries, extra_body=extra)


@dataclass(frozen=True)
class LoadConfig:
    """What to load: the alias, the prompts, the rates and the shape."""

    spec: ModelSpec
    prompts: PromptSet
    rates: tuple[float, ...]
    burstiness: float = 1.0
    max_concurrency: int | None = None
    output_len: int | None = 128
    ignore_eos: bool = False
    seed: int = 0
    slo: Slo = field(default_factory=Slo)
    slo_sources: tuple[str, ...] = ()
    metrics_url: str | None = None
    reset_prefix_cache: bool = True
    warmup: bool = True
    sample_interval_s: float = 0.5
    request_timeout_s: float = 600.0
    client: str = "auto"

    def __post_init__(self) -> None:
        if self.client not in CLIENTS:
            raise ConfigError(f"--client: expected one of {', '.join(CLIENTS)}, found {self.client!r}")
        if not self.rates:
            raise ConfigError("--request-rate: give at least one rate (requests per second, or inf)")
        for rate in self.rates:
            check_rate(rate, self.burstiness)
        if self.max_concurrency is not None and not 1 <= self.max_concurrency <= MAX_WORKERS:
            raise ConfigError(f"--max-concurrency: expected 1 to {MAX_WORKERS}, found {self.max_concurrency!r}")
        if self.output_len is not None and self.output_len < 1:
            raise ConfigError(f"--output-len: expected a whole number >= 1, found {self.output_len!r}")
        if not self.prompts.prompts:
            raise ConfigError("--num-prompts: no prompts to send")


@dataclass
class RateRun:
    """One run at one request rate: the client's numbers, the server's, the checks and the verdict."""

    rate: float
    stats: dict[str, Any]
    client: dict[str, Any]
    server: dict[str, Any] | None
    checks: list[Check]
    slo_holds: bool | None
    slo_reasons: list[str]
    prefix_cache: str
    loadavg_before: tuple[float, float, float] | None = None
    loadavg_after: tuple[float, float, float] | None = None

    @property
    def mismatches(self) -> list[Check]:
        return [c for c in self.checks if c.status == "mismatch"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_rate": "inf" if math.isinf(self.rate) else self.rate,
            **self.stats,
            "client": self.client,
            "server": self.server,
            "checks": [c.to_dict() for c in self.checks],
            "mismatches": len(self.mismatches),
            "slo_holds": self.slo_holds,
            "slo_reasons": self.slo_reasons,
            "prefix_cache": self.prefix_cache,
            "loadavg_before": self.loadavg_before,
            "loadavg_after": self.loadavg_after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RateRun:
        """A run back from its :meth:`to_dict` form: what is not one of its own keys is the stats."""
        rate = data["request_rate"]
        own = {"request_rate", "client", "server", "checks", "mismatches", "slo_holds", "slo_reasons", "prefix_cache"}
        own |= {"loadavg_before", "loadavg_after"}
        stats = {k: v for k, v in data.items() if k not in own}
        missing = [k for k in ("completed", "requests", "request_throughput", "ttft_s", "itl_s") if k not in stats]
        if missing:  # the stats every report reads: without them this is no load run
            raise KeyError(missing[0])
        return cls(
            rate=math.inf if rate == "inf" else float(rate),
            stats=stats,
            client=dict(data.get("client") or {}),
            server=None if data.get("server") is None else dict(data["server"]),
            checks=[Check(**c) for c in data.get("checks") or []],
            slo_holds=data.get("slo_holds"),
            slo_reasons=list(data.get("slo_reasons") or []),
            prefix_cache=str(data.get("prefix_cache", "")),
            loadavg_before=_triple(data.get("loadavg_before")),
            loadavg_after=_triple(data.get("loadavg_after")),
        )


@dataclass
class LoadResult:
    """Every rate's run and how the load was made (``to_dict``: the ``agentbench-load/1`` JSON)."""

    alias: str
    model: str
    test_double: bool
    base_url: str
    config: dict[str, Any]
    prompts: str
    slo: Slo
    slo_sources: tuple[str, ...]
    server_metrics: str
    notes: list[str]
    started_at: str
    runs: list[RateRun] = field(default_factory=list)
    finished_at: str = ""

    @property
    def mismatches(self) -> list[tuple[float, Check]]:
        return [(r.rate, c) for r in self.runs for c in r.mismatches]

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "schema": "agentbench-load/1",
                "alias": self.alias,
                "model": self.model,
                "test_double": self.test_double,
                "base_url": self.base_url,
                "config": self.config,
                "prompts": self.prompts,
                "slo": {**self.slo.to_dict(), "describe": self.slo.describe(), "sources": list(self.slo_sources)},
                "server_metrics": self.server_metrics,
                "notes": self.notes,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "machine": {"cpus": os.cpu_count(), "loadavg_end": loadavg()},
                "runs": [r.to_dict() for r in self.runs],
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadResult:
        """A load back from its ``agentbench-load/1`` JSON (``KeyError`` / ``TypeError`` when it is not one)."""
        slo = data.get("slo") or {}
        return cls(
            alias=str(data["alias"]),
            model=str(data["model"]),
            test_double=bool(data.get("test_double")),
            base_url=str(data.get("base_url", "")),
            config=dict(data["config"]),
            prompts=str(data.get("prompts", "")),
            slo=Slo.from_dict(slo),
            slo_sources=tuple(slo.get("sources") or ()),
            server_metrics=str(data.get("server_metrics", "")),
            notes=list(data.get("notes") or []),
            started_at=str(data.get("started_at", "")),
            runs=[RateRun.from_dict(r) for r in data["runs"]],
            finished_at=str(data.get("finished_at", "")),
        )


def _triple(value: Any) -> tuple[float, float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]), float(value[2]))


@dataclass
class _Run:
    """One rate while its workers run: the schedule, the next request, what came back."""

    due: list[float]
    prompts: tuple[Prompt, ...]
    in_flight: InFlight
    go: threading.Event = field(default_factory=threading.Event)
    start: float = 0.0
    next_index: int = 0
    timings: list[RequestTiming | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> int | None:
        with self.lock:
            if self.next_index >= len(self.due):
                return None
            self.next_index += 1
            return self.next_index - 1


class Load:
    """Runs a :class:`LoadConfig` against an endpoint that is already up, one rate after another."""

    def __init__(
        self,
        config: LoadConfig,
        base_url: str,
        *,
        make_model: Callable[[ModelSpec, str], Model] | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.config = config
        self.spec = load_spec(config.spec, ignore_eos=config.ignore_eos)
        self.base_url = base_url.rstrip("/")
        self.make_model = make_model or default_model
        self.progress = progress or (lambda _msg: None)
        self.server = ServerWatch(
            self.base_url,
            self.spec.model,
            metrics_url=config.metrics_url,
            reset_prefix_cache=config.reset_prefix_cache,
            sample_interval_s=config.sample_interval_s,
        )
        self.notes: list[str] = list(config.prompts.notes)
        self.client = self._client_kind(config.client, make_model is not None)

    def _client_kind(self, asked: str, own_model: bool) -> str:
        """The engine that runs: ``asyncio`` needs aiohttp (and the package's own client, not ``make_model``'s)."""
        from pytest_agentbench.serving import aio

        if asked == "threads" or (asked == "auto" and own_model):
            return "threads"
        if aio.available() and not own_model:
            return "asyncio"
        if asked == "asyncio":
            why = "a make_model client was given" if own_model else f"aiohttp is not installed: {aio.install_hint()}"
            raise ConfigError(f"--client asyncio: {why}; or choose --client threads")
        self.notes.append(f"the load ran on threads (--client threads): {aio.install_hint()} for the event loop")
        return "threads"

    def _workers(self) -> int:
        n = len(self.config.prompts.prompts)
        return min(n, self.config.max_concurrency or n, MAX_WORKERS)

    def _send(self, model: Model, run: _Run, index: int) -> RequestTiming:
        prompt = run.prompts[index]
        max_tokens = prompt.output_len or self.config.output_len
        sent = time.perf_counter() - run.start
        run.in_flight.enter()
        try:
            completion = model.complete(
                prompt.messages, (), max_tokens=max_tokens, timeout=self.config.request_timeout_s
            )
        except ModelCallError as exc:
            return RequestTiming(
                ok=False, error=exc.failure, message=str(exc), sent_at_s=sent, scheduled_at_s=run.due[index]
            )
        finally:
            run.in_flight.leave()
        return RequestTiming.of_completion(completion, sent_at_s=sent, scheduled_at_s=run.due[index])

    def _worker(self, model: Model, run: _Run) -> None:
        run.go.wait()
        while (index := run.take()) is not None:
            wait = run.start + run.due[index] - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            run.timings[index] = self._send(model, run, index)

    def _drive(self, run: _Run) -> tuple[float, float]:
        """Start the workers, release them together; (wall seconds, process CPU seconds) to the last answer."""
        if self.client == "asyncio":
            from pytest_agentbench.capacity import load_async

            timeout = min(self.spec.timeout_s, self.config.request_timeout_s)
            return load_async.drive(
                self.spec,
                self.base_url,
                run,
                workers=self._workers(),
                output_len=self.config.output_len,
                timeout=timeout,
            )
        models = [self.make_model(self.spec, self.base_url) for _ in range(self._workers())]
        threads = [
            threading.Thread(target=self._worker, args=(m, run), name=f"agentbench-load-{i}", daemon=True)
            for i, m in enumerate(models)
        ]
        for t in threads:
            t.start()
        cpu0 = time.process_time()
        run.in_flight.restart()
        run.start = time.perf_counter()
        run.go.set()
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - run.start, time.process_time() - cpu0
        for m in models:
            m.close()
        return wall, cpu

    def run_rate(self, rate: float) -> RateRun:
        """One run at *rate*: reset the prefix cache, send every prompt on schedule, measure."""
        cfg = self.config
        prefix = self.server.reset_prefix_cache()
        window = self.server.window()
        n = len(cfg.prompts.prompts)
        run = _Run(arrival_times(n, rate, cfg.burstiness, seed=cfg.seed), cfg.prompts.prompts, InFlight())
        run.timings = [None] * n
        load_before = loadavg()
        window.start()
        wall, cpu = self._drive(run)
        server = window.close()
        timings = [t for t in run.timings if t is not None]
        stats = request_stats(timings, wall_s=wall, slo=cfg.slo)
        client = self._client(stats, run, wall, cpu)
        holds, reasons = cfg.slo.judge(stats["ttft_s"]["p50"], stats["decode_tok_s_p50"])
        return RateRun(
            rate=rate,
            stats=stats,
            client=client,
            server=server,
            checks=self._checks(stats, client, server),
            slo_holds=holds,
            slo_reasons=reasons,
            prefix_cache=prefix,
            loadavg_before=load_before,
            loadavg_after=loadavg(),
        )

    def _client(self, stats: dict[str, Any], run: _Run, wall: float, cpu: float) -> dict[str, Any]:
        """The client's side in the keys ``reconcile`` reads, plus its CPU."""
        out = stats["completion_tokens"]
        return {
            "workers": self._workers(),
            "concurrency_max": run.in_flight.max,
            "concurrency_mean": run.in_flight.mean(),
            "prompt_tokens": stats["prompt_tokens"],
            "completion_tokens": out,
            "usage_reported": stats["usage_reported"],
            "ttft_p50_s": stats["ttft_s"]["p50"],
            "failed_calls": stats["failed"],
            "retried_attempts": 0,
            "harness_cpu_s": cpu,
            "harness_cpu_share": cpu / wall if wall > 0 else None,
            "harness_cpu_per_output_token_ms": 1000 * cpu / out if out else None,
        }

    def _checks(self, stats: dict[str, Any], client: dict[str, Any], server: dict[str, Any] | None) -> list[Check]:
        """The schedule, then tokens, TTFT and client CPU (``capacity/reconcile.py``). Not concurrency: a load
        asks for a rate, not for N in flight (how many were is in ``client.concurrency_max``)."""
        return [self._schedule_check(stats)] + [
            c for c in reconcile(self._workers(), client, server) if c.name != "concurrency"
        ]

    def _schedule_check(self, stats: dict[str, Any]) -> Check:
        """Were requests sent when due? Late sends mean the client (or a busy machine) shaped the arrivals."""
        lag = stats.get("send_lag_s") or {}
        if lag.get("p90") is None:
            return Check("schedule", "skipped", "no request sent")
        text = f"sent after their due time by p50 {lag['p50'] * 1000:.1f} ms, p90 {lag['p90'] * 1000:.1f} ms"
        if self.config.max_concurrency is not None:
            return Check("schedule", "skipped", text + " (--max-concurrency: a due request waits for a free slot)")
        if lag["p90"] <= LATE_S:
            return Check("schedule", "ok", text)
        return Check(
            "schedule",
            "mismatch",
            text + f": over {LATE_S * 1000:.0f} ms late, so the arrivals were not the asked process; the client's "
            "threads waited for a CPU (a server on the same machine?)",
        )

    def warmup(self) -> None:
        """One short call, so the first rate does not pay for lazy server start-up."""
        model = self.make_model(self.spec, self.base_url)
        try:
            model.complete([{"role": "user", "content": "warm-up: reply with one word"}], (), max_tokens=8, timeout=120)
        except Exception as exc:  # a failing server shows in the runs; say it here too
            self.notes.append(f"warm-up call failed: {exc}")
        finally:
            model.close()

    def run(self) -> LoadResult:
        """Probe the server, warm it up, then one run per rate in the order given."""
        cfg = self.config
        self.server.probe()
        self.notes.extend(self.server.notes)
        if len(cfg.prompts.prompts) > MAX_WORKERS and cfg.max_concurrency is None:
            self.notes.append(f"at most {MAX_WORKERS} requests in flight (worker threads); set --max-concurrency")
        result = LoadResult(
            alias=self.spec.alias,
            model=self.spec.model,
            test_double=self.spec.test_double,
            base_url=self.base_url,
            config=self.describe_config(),
            prompts=cfg.prompts.describe(),
            slo=cfg.slo,
            slo_sources=cfg.slo_sources,
            server_metrics=self.server.server_metrics,
            notes=self.notes,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        if cfg.warmup:
            self.warmup()
        for rate in cfg.rates:
            self.progress(f"request rate {_rate(rate)}: {len(cfg.prompts.prompts)} request(s) ...")
            run = self.run_rate(rate)
            result.runs.append(run)
            self.progress(_done_line(run))
        result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        return result

    def describe_config(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "num_prompts": len(cfg.prompts.prompts),
            "request_rates": [_rate(r) for r in cfg.rates],
            "burstiness": cfg.burstiness,
            "max_concurrency": cfg.max_concurrency,
            "workers": self._workers(),
            "client": self.client,
            "output_len": cfg.output_len,
            "ignore_eos": cfg.ignore_eos,
            "seed": cfg.seed,
            "endpoint": "/chat/completions (streamed, usage included, no retries)",
        }


def _rate(rate: float) -> str | float:
    return "inf" if math.isinf(rate) else rate


def _done_line(run: RateRun) -> str:
    s = run.stats
    ttft = s["ttft_s"]["p50"]
    return (
        f"request rate {_rate(run.rate)}: {s['completed']}/{s['requests']} done in {s['wall_s']:.1f} s, "
        f"{s['output_tok_s'] or 0:.1f} output tok/s, TTFT p50 {'-' if ttft is None else f'{ttft * 1000:.0f} ms'}"
        + (f", {len(run.mismatches)} mismatch(es)" if run.mismatches else "")
    )
