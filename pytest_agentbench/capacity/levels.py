"""What a capacity sweep measured: each level's numbers and the sweep's result.

:func:`client_stats` (every model call of every run, as the client saw it), :func:`server_stats`
(the server's ``/metrics`` deltas and sampled gauges), :func:`level_costs` ($/dev-month for the
alias and the commercial alternative, priced by their parsed ``cost:``), the run summaries, and
the results they fill: :class:`LevelResult` per N and :class:`SweepResult` with the knee and
``to_dict`` / ``from_dict`` (the ``agentbench-sweep/1`` JSON). Pure: the engine that measures is
``capacity/sweep.py``.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_agentbench.capacity.cost import HOURS_PER_MONTH_24X7, WORKING_HOURS_PER_MONTH
from pytest_agentbench.capacity.latency import RequestTiming, goodput
from pytest_agentbench.capacity.reconcile import TTFT_ABS_TOLERANCE_S, TTFT_REL_TOLERANCE, Check
from pytest_agentbench.capacity.slo import Slo, find_knee
from pytest_agentbench.reports.stats import percentile
from pytest_agentbench.results.jsonsafe import json_safe

if TYPE_CHECKING:
    from pytest_agentbench.results.record import RunRecord

__all__ = [
    "LevelResult",
    "SweepResult",
    "client_stats",
    "error_summary",
    "level_costs",
    "run_summary",
    "server_stats",
]


# --------------------------------------------------------------------------- per-level numbers


def client_stats(
    records: Sequence[RunRecord],
    *,
    wall_s: float,
    cpu_per_call_s: Sequence[float],
    concurrency_max: int,
    concurrency_mean: float,
    process_cpu_s: float,
    sandbox_cpu_s: float,
    slo: Slo | None = None,
) -> dict[str, Any]:
    """The level as the client saw it: every model call of every run.

    Per call, TTFT and the decode rate are the adapter's, defined as ``vllm bench serve``'s
    (``models/adapter.py``): TTFT to the first chunk with content, decode rate
    ``(completion_tokens - 1) / (last chunk - first chunk)``, i.e. 1 / TPOT. ``goodput`` counts
    the calls that meet *slo*'s per-request thresholds (``capacity/latency.py``; ``None`` without).
    """
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
        "goodput": None if slo is None else goodput([RequestTiming.of_turn(t) for t in turns], slo, wall_s),
    }


def server_stats(delta: Any, samples: Mapping[str, Any]) -> dict[str, Any]:
    """The level as the server counted it (``delta``: a metrics.MetricsDelta)."""
    ttft = delta.ttft.p50 if delta.ttft is not None and delta.ttft.count else None
    ttft_mean = delta.ttft.mean if delta.ttft is not None and delta.ttft.count else None
    tpot = delta.tpot.p50 if delta.tpot is not None and delta.tpot.count else None
    bucket = delta.ttft.p50_bucket if delta.ttft is not None and delta.ttft.count else None
    return {
        "ttft_p50_s": ttft,
        "ttft_mean_s": ttft_mean,
        "ttft_p50_bucket_s": None if bucket is None else [bucket[0], None if math.isinf(bucket[1]) else bucket[1]],
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


def _tokens_per_dev_hour(client: Mapping[str, Any], devs: int, wall_s: float) -> dict[str, float] | None:
    """The level's token totals per developer per hour; ``None`` for a level that took no time."""
    hours = wall_s / 3600.0
    if not hours > 0:
        return None
    per = devs * hours
    return {
        "prompt_tokens_per_hour": client["prompt_tokens"] / per,
        "completion_tokens_per_hour": client["completion_tokens"] / per,
        "cached_tokens_per_hour": client["cached_tokens"] / per,
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

    rates = _tokens_per_dev_hour(client, devs, wall_s)

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


# --------------------------------------------------------------------------- results


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LevelResult:
        """A level back from its :meth:`to_dict` form (``KeyError`` / ``TypeError`` when it is not one)."""
        return cls(
            devs=int(data["devs"]),
            wall_s=float(data["wall_s"]),
            runs=list(data["runs"]),
            client=dict(data["client"]),
            server=None if data.get("server") is None else dict(data["server"]),
            slo_holds=data.get("slo_holds"),
            slo_reasons=list(data.get("slo_reasons") or []),
            cost=dict(data["cost"]),
            checks=[Check(**c) for c in data.get("checks") or []],
            prefix_cache=str(data.get("prefix_cache", "")),
            errors=list(data.get("errors") or []),
            loadavg_before=_triple(data.get("loadavg_before")),
            loadavg_after=_triple(data.get("loadavg_after")),
        )


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
    #: Where each part of the SLO came from (command line, models.yaml, ini).
    slo_sources: tuple[str, ...] = ()

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
                    **self.slo.to_dict(),
                    "describe": self.slo.describe(),
                    "judged_on": "client-side medians; goodput: each model call",
                    "sources": list(self.slo_sources),
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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepResult:
        """A sweep back from its ``agentbench-sweep/1`` JSON (``KeyError`` / ``TypeError`` when it is not one);
        the knee and mismatches are derived again from the levels, as :meth:`to_dict` derived them."""
        slo = data.get("slo") or {}
        return cls(
            alias=str(data["alias"]),
            model=str(data["model"]),
            test_double=bool(data.get("test_double")),
            slo=Slo.from_dict(slo),
            levels=[LevelResult.from_dict(lv) for lv in data["levels"]],
            packets=list(data["packets"]),
            rounds=int(data["rounds"]),
            sandbox=str(data["sandbox"]),
            base_url=str(data.get("base_url", "")),
            metrics_url=data.get("metrics_url"),
            server_metrics=str(data.get("server_metrics", "")),
            notes=list(data.get("notes") or []),
            started_at=str(data.get("started_at", "")),
            finished_at=str(data.get("finished_at", "")),
            compare_alias=data.get("compare_alias"),
            gpu_hours_per_month=float(data.get("gpu_hours_per_month", HOURS_PER_MONTH_24X7)),
            dev_hours_per_month=float(data.get("dev_hours_per_month", WORKING_HOURS_PER_MONTH)),
            stopped=data.get("stopped"),
            slo_sources=tuple(slo.get("sources") or ()),
        )


def _triple(value: Any) -> tuple[float, float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]), float(value[2]))


# --------------------------------------------------------------------------- run summaries


def run_summary(record: RunRecord, developer: int, round_: int) -> dict[str, Any]:
    """One finished run as a level lists it."""
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


def error_summary(error: str) -> dict[str, Any]:
    """A run that never produced a record (its sandbox or the harness failed), as a summary."""
    return {
        "packet": None,
        "developer": None,
        "round": None,
        "passed": False,
        "outcome": "error",
        "error": error,
        "failures": {},
    }
