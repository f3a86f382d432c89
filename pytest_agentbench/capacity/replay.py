"""Agent-trace replay: the model calls of a finished quality run, sent again by N concurrent developers.

    agentbench replay results.jsonl --models local-coder --developers 1,2,4

Capacity under *agent* traffic rather than random prompts: the real prompt lengths, the growing
conversations (each call resends the previous one plus the tool results, so the prefix cache
matters as it does for agents), the tool schemas and the think time between calls (tool commands,
the harness), as recorded by ``--agentbench-keep-requests`` (``capacity/trace.py``).

A level of N developers runs N threads released together; each replays every recorded session
(``--rounds`` times), starting at a different one, each session's calls in their recorded order
and each after its recorded think time (x ``--think-scale``; 0 = back to back). A call is sent
exactly as recorded - the messages the agent sent, not the replay server's answers, so the prompts
are the recorded ones - with ``max_tokens`` = the tokens the recorded answer had (``--ignore-eos``
makes vLLM produce exactly that many). Failed recorded calls and calls without usage are not sent
(counted as ``skipped``).

Per level: the latency numbers of ``capacity/latency.py`` (TTFT/TPOT/ITL/E2E, goodput), the SLO
verdict on the medians, the knee over levels, and the **trace check**: the level's prompt tokens
must equal N x rounds x the recorded prompt tokens (the same model and template give the same
counts; prefix-cache hits do not change ``prompt_tokens``, they are reported beside it as cached
tokens and the server's hit rate). Before each level the prefix cache is reset; the server's
counters are reconciled with the client's as for a sweep (``capacity/reconcile.py``).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pytest_agentbench.capacity.latency import RequestTiming, request_stats
from pytest_agentbench.capacity.load import load_spec
from pytest_agentbench.capacity.metering import InFlight
from pytest_agentbench.capacity.reconcile import Check, reconcile
from pytest_agentbench.capacity.server import ServerWatch, default_model, loadavg
from pytest_agentbench.capacity.slo import Slo, find_knee
from pytest_agentbench.errors import ConfigError, ModelCallError
from pytest_agentbench.results.jsonsafe import json_safe

if TYPE_CHECKING:
    from pytest_agentbench.agents.loop import Model
    from pytest_agentbench.capacity.trace import Session, TraceCall
    from pytest_agentbench.models.registry import ModelSpec

__all__ = ["Replay", "ReplayConfig", "ReplayLevel", "ReplayResult"]


@dataclass(frozen=True)
class ReplayConfig:
    """What to replay, against which alias, at which developer counts."""

    spec: ModelSpec
    sessions: tuple[Session, ...]
    devs: tuple[int, ...]
    source: str = ""
    rounds: int = 1
    think_scale: float = 1.0
    ignore_eos: bool = False
    #: Send vLLM's ``cache_salt`` per developer: no prefix-cache sharing between developers (same tokens).
    salt_per_developer: bool = False
    slo: Slo = field(default_factory=Slo)
    slo_sources: tuple[str, ...] = ()
    metrics_url: str | None = None
    reset_prefix_cache: bool = True
    sample_interval_s: float = 0.5
    request_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if not self.devs or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.devs):
            raise ConfigError(f"--developers: expected counts >= 1 such as 1,2,4, found {self.devs!r}")
        if not any(s.calls for s in self.sessions):
            raise ConfigError(f"{self.source or 'the trace'}: no replayable model call in any session")
        if self.rounds < 1:
            raise ConfigError(f"--rounds: expected a whole number >= 1, found {self.rounds!r}")
        if not self.think_scale >= 0:
            raise ConfigError(f"--think-scale: expected a factor >= 0 (1 = as recorded), found {self.think_scale!r}")

    @property
    def recorded_prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.sessions)

    @property
    def recorded_completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.sessions)


@dataclass
class ReplayLevel:
    """One level: N developers replaying the trace at once."""

    devs: int
    stats: dict[str, Any]
    client: dict[str, Any]
    server: dict[str, Any] | None
    checks: list[Check]
    slo_holds: bool | None
    slo_reasons: list[str]
    prefix_cache: str
    errors: list[str] = field(default_factory=list)
    loadavg_after: tuple[float, float, float] | None = None

    @property
    def mismatches(self) -> list[Check]:
        return [c for c in self.checks if c.status == "mismatch"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "devs": self.devs,
            **self.stats,
            "client": self.client,
            "server": self.server,
            "checks": [c.to_dict() for c in self.checks],
            "mismatches": len(self.mismatches),
            "slo_holds": self.slo_holds,
            "slo_reasons": self.slo_reasons,
            "prefix_cache": self.prefix_cache,
            "errors": self.errors,
            "loadavg_after": self.loadavg_after,
        }


@dataclass
class ReplayResult:
    """Every level, the knee, and the trace replayed (``to_dict``: the ``agentbench-replay-result/1`` JSON)."""

    alias: str
    model: str
    test_double: bool
    base_url: str
    source: str
    sessions: list[dict[str, Any]]
    settings: dict[str, Any]
    slo: Slo
    slo_sources: tuple[str, ...]
    server_metrics: str
    notes: list[str]
    started_at: str
    levels: list[ReplayLevel] = field(default_factory=list)
    finished_at: str = ""

    @property
    def knee(self) -> tuple[int | None, str]:
        return find_knee([(lv.devs, lv.slo_holds) for lv in self.levels])

    @property
    def mismatches(self) -> list[tuple[int, Check]]:
        return [(lv.devs, c) for lv in self.levels for c in lv.mismatches]

    def to_dict(self) -> dict[str, Any]:
        knee, note = self.knee
        return json_safe(
            {
                "schema": "agentbench-replay-result/1",
                "alias": self.alias,
                "model": self.model,
                "test_double": self.test_double,
                "base_url": self.base_url,
                "source": self.source,
                "sessions": self.sessions,
                "settings": self.settings,
                "slo": {**self.slo.to_dict(), "describe": self.slo.describe(), "sources": list(self.slo_sources)},
                "knee": knee,
                "knee_note": note,
                "server_metrics": self.server_metrics,
                "notes": self.notes,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "machine": {"cpus": os.cpu_count()},
                "levels": [lv.to_dict() for lv in self.levels],
            }
        )


@dataclass
class _Level:
    devs: int
    in_flight: InFlight
    barrier: threading.Barrier
    start: float = 0.0
    timings: list[RequestTiming] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Replay:
    """Replays a :class:`ReplayConfig`'s sessions against an endpoint that is already up, level by level."""

    def __init__(
        self,
        config: ReplayConfig,
        base_url: str,
        *,
        make_model: Callable[[ModelSpec, str], Model] | None = None,
        progress: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config = config
        self.spec = load_spec(config.spec, ignore_eos=config.ignore_eos)
        self.base_url = base_url.rstrip("/")
        self.make_model = make_model or default_model
        self.progress = progress or (lambda _msg: None)
        self.sleep = sleep
        self.server = ServerWatch(
            self.base_url,
            self.spec.model,
            metrics_url=config.metrics_url,
            reset_prefix_cache=config.reset_prefix_cache,
            sample_interval_s=config.sample_interval_s,
        )
        self.notes: list[str] = []
        self._baseline: int | None = None  # prompt tokens per developer-round at the first level

    def _spec_for(self, developer: int) -> ModelSpec:
        if not self.config.salt_per_developer:
            return self.spec
        return dataclasses.replace(
            self.spec, extra_body={**self.spec.extra_body, "cache_salt": f"developer-{developer}"}
        )

    def _call(self, model: Model, level: _Level, call: TraceCall) -> RequestTiming:
        max_tokens = call.completion_tokens or call.max_tokens
        sent = time.perf_counter() - level.start
        level.in_flight.enter()
        try:
            completion = model.complete(
                list(call.messages), list(call.tools), max_tokens=max_tokens, timeout=self.config.request_timeout_s
            )
        except ModelCallError as exc:
            return RequestTiming(ok=False, error=exc.failure, message=str(exc), sent_at_s=sent)
        finally:
            level.in_flight.leave()
        return RequestTiming.of_completion(completion, sent_at_s=sent)

    def _developer(self, level: _Level, index: int) -> None:
        """One developer: every session (from a different first one), each call after its think time."""
        cfg = self.config
        sessions = [s for s in cfg.sessions if s.calls]
        order = [sessions[(index + k) % len(sessions)] for k in range(len(sessions))]
        try:
            model = self.make_model(self._spec_for(index), self.base_url)
        except Exception as exc:
            with level.lock:
                level.errors.append(f"developer {index}: no client: {type(exc).__name__}: {exc}")
            level.barrier.abort()
            return
        mine: list[RequestTiming] = []
        try:
            level.barrier.wait()
            for _round in range(cfg.rounds):
                for session in order:
                    for call in session.calls:
                        if call.think_s and cfg.think_scale:
                            self.sleep(call.think_s * cfg.think_scale)
                        mine.append(self._call(model, level, call))
        except threading.BrokenBarrierError:
            return
        except Exception as exc:  # the harness, not the server: recorded for the level
            with level.lock:
                level.errors.append(f"developer {index}: {type(exc).__name__}: {exc}")
        finally:
            model.close()
            with level.lock:
                level.timings.extend(mine)

    def run_level(self, devs: int) -> ReplayLevel:
        """*devs* developers at once, released by a barrier; the level's numbers and checks."""
        cfg = self.config
        prefix = self.server.reset_prefix_cache()
        window = self.server.window()
        level = _Level(devs=devs, in_flight=InFlight(), barrier=threading.Barrier(devs + 1))
        threads = [
            threading.Thread(target=self._developer, args=(level, i), name=f"agentbench-replay-{i}", daemon=True)
            for i in range(devs)
        ]
        for t in threads:
            t.start()
        window.start()
        cpu0 = time.process_time()
        try:
            level.barrier.wait(timeout=600)
        except threading.BrokenBarrierError:
            level.errors.append("the developers never all reached the start barrier")
        level.in_flight.restart()
        level.start = time.perf_counter()
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - level.start, time.process_time() - cpu0
        server = window.close()
        stats = request_stats(level.timings, wall_s=wall, slo=cfg.slo)
        client = self._client(stats, level, wall, cpu)
        holds, reasons = cfg.slo.judge(stats["ttft_s"]["p50"], stats["decode_tok_s_p50"])
        checks = [self._trace_check(devs, stats)]
        checks += [c for c in reconcile(devs, client, server) if c.name != "concurrency"]
        return ReplayLevel(
            devs=devs,
            stats=stats,
            client=client,
            server=server,
            checks=checks,
            slo_holds=holds,
            slo_reasons=reasons,
            prefix_cache=prefix,
            errors=level.errors,
            loadavg_after=loadavg(),
        )

    def _client(self, stats: dict[str, Any], level: _Level, wall: float, cpu: float) -> dict[str, Any]:
        out = stats["completion_tokens"]
        return {
            "concurrency_max": level.in_flight.max,
            "concurrency_mean": level.in_flight.mean(),
            "prompt_tokens": stats["prompt_tokens"],
            "completion_tokens": out,
            "cached_tokens": stats["cached_tokens"],
            "usage_reported": stats["usage_reported"],
            "ttft_p50_s": stats["ttft_s"]["p50"],
            "failed_calls": stats["failed"],
            "retried_attempts": 0,
            "harness_cpu_s": cpu,
            "harness_cpu_share": cpu / wall if wall > 0 else None,
            "harness_cpu_per_output_token_ms": 1000 * cpu / out if out else None,
        }

    def _reference(self) -> tuple[int | None, str]:
        """Prompt tokens one developer's round must send, and why: the recorded counts when the target serves
        the recorded model; else the first level's, per developer and round (another tokenizer counts otherwise)."""
        cfg = self.config
        recorded = {s.model for s in cfg.sessions}
        if recorded == {self.spec.model}:
            return cfg.recorded_prompt_tokens, "recorded"
        return self._baseline, f"the first level's (the trace was recorded on {', '.join(sorted(recorded))})"

    def _trace_check(self, devs: int, stats: dict[str, Any]) -> Check:
        """The level's prompt tokens: N x rounds x the reference (:meth:`_reference`), exactly."""
        copies = devs * self.config.rounds
        got_in, cached = stats["prompt_tokens"], stats["cached_tokens"]
        if self._baseline is None and not stats["failed"] and got_in % copies == 0:
            self._baseline = got_in // copies
        per, basis = self._reference()
        want_in = None if per is None else copies * per
        text = (
            f"prompt tokens {got_in:,} vs {basis} {'-' if per is None else f'{per:,}'} x {copies}"
            + ("" if want_in is None else f" = {want_in:,}")
            + (f" ({got_in - want_in:+,})" if want_in is not None and got_in != want_in else "")
            + f"; {cached:,} of them served from the prefix cache (usage)"
        )
        if stats["failed"]:
            return Check("trace", "mismatch", text + f"; {stats['failed']} replayed call(s) failed")
        if got_in != want_in:
            return Check(
                "trace",
                "mismatch",
                text + ": the same calls were counted differently (another chat template, or a secret "
                "redacted in the trace)",
            )
        return Check("trace", "ok", text)

    def _sessions_summary(self) -> list[dict[str, Any]]:
        return [
            {
                "run_id": s.run_id,
                "packet": s.packet,
                "alias": s.alias,
                "model": s.model,
                "repeat": s.repeat,
                "calls": len(s.calls),
                "skipped": s.skipped,
                "truncated": s.truncated,
                "prompt_tokens": s.prompt_tokens,
                "completion_tokens": s.completion_tokens,
                "think_s": round(sum(c.think_s for c in s.calls), 6),
            }
            for s in self.config.sessions
        ]

    def run(self) -> ReplayResult:
        """Probe the server, then every level from the smallest N up."""
        cfg = self.config
        self.server.probe()
        self.notes.extend(self.server.notes)
        skipped = sum(s.skipped for s in cfg.sessions)
        if skipped:
            self.notes.append(f"{skipped} recorded call(s) not replayed (failed, without usage, or past a truncation)")
        result = ReplayResult(
            alias=self.spec.alias,
            model=self.spec.model,
            test_double=self.spec.test_double,
            base_url=self.base_url,
            source=cfg.source,
            sessions=self._sessions_summary(),
            settings={
                "rounds": cfg.rounds,
                "think_scale": cfg.think_scale,
                "ignore_eos": cfg.ignore_eos,
                "salt_per_developer": cfg.salt_per_developer,
                "recorded_prompt_tokens": cfg.recorded_prompt_tokens,
                "recorded_completion_tokens": cfg.recorded_completion_tokens,
            },
            slo=cfg.slo,
            slo_sources=cfg.slo_sources,
            server_metrics=self.server.server_metrics,
            notes=self.notes,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        calls = sum(len(s.calls) for s in cfg.sessions)
        for devs in sorted(set(cfg.devs)):
            self.progress(f"level N={devs}: {devs} developer(s) x {calls} call(s) x {cfg.rounds} round(s) ...")
            level = self.run_level(devs)
            result.levels.append(level)
            s = level.stats
            self.progress(
                f"level N={devs}: {s['completed']}/{s['requests']} calls in {s['wall_s']:.1f} s, "
                f"trace {level.checks[0].status}"
            )
        result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        return result
