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

This module is the engine (:class:`Sweep`) and its settings (:class:`SweepConfig`): it runs the
levels and measures them. The SLO and knee are in ``capacity/slo.py``, the server's side (probe,
prefix-cache reset, /metrics window) in ``capacity/server.py``, the meters in ``capacity/metering.py``, the numbers and
results in ``capacity/levels.py``, the client vs server rules in ``capacity/reconcile.py``, the
table and page in ``reports/sweep.py`` and the command in ``cli/sweep.py``.
"""

from __future__ import annotations

import dataclasses
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pytest_agentbench.capacity.cost import HOURS_PER_MONTH_24X7, WORKING_HOURS_PER_MONTH
from pytest_agentbench.capacity.levels import (
    LevelResult,
    SweepResult,
    client_stats,
    error_summary,
    level_costs,
    run_summary,
)
from pytest_agentbench.capacity.metering import InFlight, MeteredModel
from pytest_agentbench.capacity.reconcile import reconcile
from pytest_agentbench.capacity.server import ServerWatch, Window, default_model, loadavg
from pytest_agentbench.capacity.slo import Slo
from pytest_agentbench.errors import ConfigError, InfrastructureError
from pytest_agentbench.reports.sweep import level_done_line

if TYPE_CHECKING:  # kept out of the import: `agentbench --help` builds the sweep's parser
    from pytest_agentbench.agents.loop import Model
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.packets.schema import Packet
    from pytest_agentbench.results.record import RunRecord

__all__ = ["Sweep", "SweepConfig"]


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
    #: Where each part of ``slo`` came from (command line, models.yaml, ini), for the report.
    slo_sources: tuple[str, ...] = ()

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
        self.make_model = make_model or default_model
        if make_sandbox is None:
            from pytest_agentbench.sandbox import make_sandbox as _make

            def make_sandbox(packet: Packet) -> Any:
                return _make(config.sandbox, packet.workspace)

        self.make_sandbox = make_sandbox
        self.on_run = on_run
        self.progress = progress or (lambda _msg: None)
        self.server = ServerWatch(
            self.base_url,
            self.spec.model,
            metrics_url=config.metrics_url,
            reset_prefix_cache=config.reset_prefix_cache,
            sample_interval_s=config.sample_interval_s,
        )

    # -- server side ---------------------------------------------------------
    @property
    def metrics_url(self) -> str | None:
        return self.server.metrics_url

    @property
    def server_metrics(self) -> str:
        return self.server.server_metrics

    def probe_server(self) -> None:
        """Decide whether server numbers exist (``capacity.server.ServerWatch.probe``)."""
        self.server.probe()
        self.notes.extend(n for n in self.server.notes if n not in self.notes)

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

        prefix = self.server.reset_prefix_cache()
        window = self.server.window()
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
        measured = self._drive(level, window)
        for m in level.models:
            m.close()
        server = window.close()
        return self._level_result(level, measured, server, prefix, loadavg())

    def _drive(self, level: _Level, window: Window) -> _Measured:
        """Start the developers, release them together and time them until the last one is done."""
        threads = [
            threading.Thread(target=self._developer, args=(level, i), name=f"agentbench-dev-{i}", daemon=True)
            for i in range(level.devs)
        ]
        load_before = loadavg()
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
        window.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        process_cpu = time.process_time() - cpu0
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return _Measured(
            wall_s=wall,
            process_cpu_s=process_cpu,
            sandbox_cpu_s=(child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime),
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
            slo=cfg.slo,
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
            slo_sources=cfg.slo_sources,
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
