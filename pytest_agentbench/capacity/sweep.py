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

This module is the engine (:class:`Sweep`): it runs the levels and measures them. The settings,
SLO and knee are in ``capacity/slo.py``, the meters in ``capacity/metering.py``, the numbers and
results in ``capacity/levels.py``, the client vs server rules in ``capacity/reconcile.py``, the
table and page in ``reports/sweep.py`` and the command in ``cli/sweep.py``.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pytest_agentbench.capacity.levels import (
    LevelResult,
    SweepResult,
    client_stats,
    error_summary,
    level_costs,
    run_summary,
    server_stats,
)
from pytest_agentbench.capacity.metering import InFlight, MeteredModel, MetricsSampler
from pytest_agentbench.capacity.reconcile import reconcile
from pytest_agentbench.capacity.slo import SweepConfig
from pytest_agentbench.errors import InfrastructureError, ServerError
from pytest_agentbench.reports.sweep import level_done_line

if TYPE_CHECKING:  # kept out of the import: `agentbench --help` builds the sweep's parser
    from pytest_agentbench.agents.loop import Model
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.packets.schema import Packet
    from pytest_agentbench.results.record import RunRecord

__all__ = ["Sweep"]


def _loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def _default_make_model(spec: ModelSpec, base_url: str) -> Model:
    from pytest_agentbench.models.adapter import ModelAdapter

    return ModelAdapter(spec, base_url)


@dataclass
class _Level:
    """One level while its developer threads run: what they share and what they collect."""

    devs: int
    models: list[MeteredModel]
    in_flight: InFlight
    cpu: list[float]
    barrier: threading.Barrier
    run_packet: Callable[..., RunRecord]
    records: list[tuple[RunRecord, int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class _Measured:
    """What the main thread measured around one level, from the barrier to the last developer."""

    wall_s: float
    process_cpu_s: float
    sandbox_cpu_s: float
    samples: dict[str, Any]
    mean_in_flight: float
    load_before: tuple[float, float, float] | None


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
        make_model: Callable[[ModelSpec, str], Model] | None = None,
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
            model.close()

    # -- one level -----------------------------------------------------------
    def run_level(self, devs: int) -> LevelResult:
        """Run *devs* developers at once (released together by a barrier) and measure the level."""
        from pytest_agentbench.runner import run_packet

        prefix = self.reset_prefix_cache()
        before = self._scrape_settled() if self.metrics_url else None
        in_flight = InFlight()
        cpu: list[float] = []
        level = _Level(
            devs=devs,
            models=[MeteredModel(self.make_model(self.spec, self.base_url), in_flight, cpu) for _ in range(devs)],
            in_flight=in_flight,
            cpu=cpu,
            barrier=threading.Barrier(devs + 1),
            run_packet=run_packet,
        )
        measured = self._drive(level)
        for m in level.models:
            m.close()
        server = None
        if before is not None:
            from pytest_agentbench.serving.vllm.metrics import diff

            server = server_stats(diff(before, self._scrape_settled()), measured.samples)
        return self._level_result(level, measured, server, prefix, _loadavg())

    def _drive(self, level: _Level) -> _Measured:
        """Start the developers, release them together and time them until the last one is done."""
        cfg = self.config
        sampler = (
            MetricsSampler(self.metrics_url, self.metrics_model, cfg.sample_interval_s) if self.metrics_url else None
        )
        threads = [
            threading.Thread(target=self._developer, args=(level, i), name=f"agentbench-dev-{i}", daemon=True)
            for i in range(level.devs)
        ]
        load_before = _loadavg()
        for t in threads:
            t.start()
        try:
            level.barrier.wait(timeout=600)
        except threading.BrokenBarrierError:
            level.errors.append("the developers never all reached the start barrier (sandbox creation hung?)")
        level.in_flight.restart()
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
        return _Measured(
            wall_s=wall,
            process_cpu_s=process_cpu,
            sandbox_cpu_s=(child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime),
            samples=sampler.finish() if sampler is not None else {},
            mean_in_flight=level.in_flight.mean(),
            load_before=load_before,
        )

    def _developer(self, level: _Level, index: int) -> None:
        """One developer's thread: its first sandbox, the barrier, then every packet of every round."""
        cfg = self.config
        order = [cfg.packets[(index + k) % len(cfg.packets)] for k in range(len(cfg.packets))]
        first: list[Any] = []
        try:  # the first sandbox is made before the barrier: the first calls really start together
            first.append(self.make_sandbox(order[0]))
        except Exception as exc:
            with level.lock:
                level.errors.append(f"developer {index}: sandbox for {order[0].id}: {type(exc).__name__}: {exc}")
        try:
            level.barrier.wait()
        except threading.BrokenBarrierError:
            for box in first:
                box.close()
            return
        for round_ in range(cfg.rounds):
            for packet in order:
                if round_ == 0 and packet is order[0] and not first:
                    continue  # its sandbox failed above
                self._run_one(level, index, packet, round_, first)

    def _run_one(self, level: _Level, index: int, packet: Packet, round_: int, first: list[Any]) -> None:
        """One run of *packet* by developer *index*; the first run takes the sandbox made before the barrier."""

        def sandbox_for(p: Packet) -> Any:
            return first.pop() if first else self.make_sandbox(p)

        try:
            record = level.run_packet(
                packet, self.spec, level.models[index], sandbox_for, agent_timeout=self.config.agent_timeout
            )
        except Exception as exc:  # infrastructure: the level records it and goes on
            with level.lock:
                level.errors.append(f"developer {index}, {packet.id}, round {round_}: {type(exc).__name__}: {exc}")
            return
        record.extra.update({"sweep_devs": level.devs, "developer": index, "round": round_})
        with level.lock:
            level.records.append((record, index, round_))
        if self.on_run is not None:
            self.on_run(record, level.devs)

    def _level_result(
        self,
        level: _Level,
        measured: _Measured,
        server: dict[str, Any] | None,
        prefix: str,
        load_after: tuple[float, float, float] | None,
    ) -> LevelResult:
        """The level's numbers: client stats, the SLO verdict, costs, run summaries and checks."""
        cfg = self.config
        level.records.sort(key=lambda item: (item[1], item[2]))
        client = client_stats(
            [r for r, _, _ in level.records],
            wall_s=measured.wall_s,
            cpu_per_call_s=level.cpu,
            concurrency_max=level.in_flight.max,
            concurrency_mean=measured.mean_in_flight,
            process_cpu_s=measured.process_cpu_s,
            sandbox_cpu_s=measured.sandbox_cpu_s,
        )
        holds, reasons = cfg.slo.judge(client["ttft_p50_s"], client["decode_tok_s_p50"])
        cost = level_costs(
            self.spec.cost,
            cfg.compare.cost if cfg.compare else None,
            devs=level.devs,
            client=client,
            wall_s=measured.wall_s,
            gpu_hours_per_month=cfg.gpu_hours_per_month,
            dev_hours_per_month=cfg.dev_hours_per_month,
            compare_label=f"{cfg.compare.alias}: " if cfg.compare else "",
        )
        summaries = [run_summary(r, d, k) for r, d, k in level.records]
        return LevelResult(
            devs=level.devs,
            wall_s=measured.wall_s,
            runs=summaries + [error_summary(e) for e in level.errors],
            client=client,
            server=server,
            slo_holds=holds,
            slo_reasons=reasons,
            cost=cost,
            checks=reconcile(level.devs, client, server),
            prefix_cache=prefix,
            errors=level.errors,
            loadavg_before=measured.load_before,
            loadavg_after=load_after,
        )

    def run(self) -> SweepResult:
        """Probe the server, warm it up, then run every level from the smallest N up."""
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
            self.progress(level_done_line(level))
        result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        return result
