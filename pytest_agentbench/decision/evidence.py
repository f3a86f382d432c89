"""The figures a decision rests on, collected from a run (and its sweeps and screenings) per candidate.

Each alias of the run becomes a :class:`Candidate` with a *role* (rule 1 of ``docs/decision.md``):
``--local`` / ``--commercial`` when the team names it; else *commercial* when its runs were priced per
token, *local* when priced per GPU-hour or served by a vLLM server the harness started; an alias that
is neither is left out and said (with the fix). Its figures are the run summary's, computed by the
same code on the same records (:func:`pytest_agentbench.reports.summary.summarize`): pass rate with its
Wilson interval, $ per run and per solved run with their bootstrap intervals, mean $ per model call,
mean model-call latency and the GPU capacity in calls/h (concurrency x 3600 / that latency).

A local candidate's GPU price is its own ``cost:`` mapping as recorded with its runs, or
``--gpu-hourly-usd`` (an assumption: its runs are then re-priced at that rate, GPU $/h x model-call
time / concurrency, and every $ figure of it says so). A sweep of a local alias gives its SLO knee and
its measured calls per developer-hour; a screening gives each candidate's disqualifiers and open
findings. Every (commercial, local) pair is compared for quality (:mod:`.quality`). pytest-free.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_agentbench.capacity.cost import (
    SelfHostedCost,
    call_cost_usd,
    parse_cost_spec,
    self_hosted_capacity_calls_per_hour,
)
from pytest_agentbench.decision.inputs import Role, TeamInputs
from pytest_agentbench.decision.quality import Quality, compare_quality
from pytest_agentbench.decision.sources import Sources
from pytest_agentbench.errors import ConfigError, UsageError
from pytest_agentbench.reports.estimates import Spend
from pytest_agentbench.reports.intervals import Estimate
from pytest_agentbench.reports.summary import AliasSummary, summarize

__all__ = ["Candidate", "Evidence", "ScreenFinding", "SweepFinding", "collect"]


@dataclass(frozen=True)
class ScreenFinding:
    """What ``agentbench screen`` found for one candidate."""

    source: Path
    disqualifiers: tuple[tuple[str, str], ...]  # (criterion, finding) of each failed row
    warnings: tuple[tuple[str, str], ...]  # (criterion, finding) of each warn row
    unknown: tuple[str, ...]  # criteria without evidence

    @classmethod
    def of(cls, source: Path, cand: Mapping[str, Any]) -> ScreenFinding:
        rows = [r for r in cand.get("rows") or [] if isinstance(r, Mapping)]

        def pick(verdict: str) -> tuple[tuple[str, str], ...]:
            return tuple((str(r["criterion"]), str(r.get("finding") or "")) for r in rows if r["verdict"] == verdict)

        return cls(source, pick("fail"), pick("warn"), tuple(c for c, _ in pick("unknown")))


@dataclass(frozen=True)
class SweepFinding:
    """What ``agentbench sweep`` measured for one local candidate."""

    source: Path
    slo: str  # the SLO as the sweep describes it
    slo_given: bool
    knee: int | None  # the largest N at which the SLO held (counting up)
    note: str  # the sweep's knee note
    knee_calls_per_hour: float | None  # calls/h the knee level served (client calls / level wall time)
    calls_per_developer_hour: float | None  # at the smallest level: calls / (developers x hours)
    smallest: int

    @property
    def breaks_at_smallest(self) -> bool:
        return self.slo_given and self.knee is None

    @classmethod
    def of(cls, source: Path, data: Mapping[str, Any]) -> SweepFinding:
        slo = data.get("slo") or {}
        levels = sorted((lv for lv in data.get("levels") or []), key=lambda lv: lv["devs"])
        knee = data.get("knee")
        at_knee = next((lv for lv in levels if lv["devs"] == knee), None)
        return cls(
            source=source,
            slo=str(slo.get("describe") or "none given"),
            slo_given=slo.get("ttft_p50_s") is not None or slo.get("tps_p50") is not None,
            knee=knee if isinstance(knee, int) and not isinstance(knee, bool) else None,
            note=str(data.get("knee_note") or ""),
            knee_calls_per_hour=_calls_per_hour(at_knee, 1) if at_knee else None,
            calls_per_developer_hour=_calls_per_hour(levels[0], levels[0]["devs"]) if levels else None,
            smallest=levels[0]["devs"] if levels else 0,
        )


def _calls_per_hour(level: Mapping[str, Any], per: int) -> float | None:
    calls, wall = (level.get("client") or {}).get("calls"), level.get("wall_s")
    if not isinstance(calls, (int, float)) or not isinstance(wall, (int, float)) or wall <= 0 or not calls:
        return None
    return float(calls) * 3600.0 / float(wall) / per


@dataclass(frozen=True)
class Candidate:
    """One alias of the run, as the decision judges it."""

    alias: str
    model: str
    role: Role
    role_from: str  # why it has that role
    test_double: bool
    runs: int  # counted runs (an endpoint that never answered is not counted)
    passes: int
    pass_rate: Estimate  # Wilson, over the counted runs
    spend: Spend  # $ per run and per solved run
    cost_per_call: float | None  # mean $ per model call over the runs whose cost is known
    call_latency_s: float | None  # mean model-call wall time
    calls: int
    infrastructure: int = 0
    gpu: SelfHostedCost | None = None  # local: the price the decision uses
    gpu_from: str = ""  # "given: the run's cost: mapping ..." or "assumed (--gpu-hourly-usd ...)"
    screen: ScreenFinding | None = None
    sweep: SweepFinding | None = None

    @property
    def gpu_assumed(self) -> bool:
        return self.gpu_from.startswith("assumed")

    @property
    def capacity_calls_per_hour(self) -> float | None:
        """One server's calls/h at its measured latency (the summary's "GPU capacity"), not SLO-checked."""
        if self.gpu is None or not self.call_latency_s:
            return None
        return self_hosted_capacity_calls_per_hour(self.gpu, self.call_latency_s)

    def pass_text(self) -> str:
        """``67% (2/3) [21, 94]``: as the run summary prints it."""
        est = self.pass_rate
        if est.value is None or est.low is None or est.high is None:
            return "n/a (no counted run)"
        return f"{est.value:.0%} ({self.passes}/{self.runs}) [{est.low * 100:.0f}, {est.high * 100:.0f}]"

    def label(self) -> str:
        return f"{self.alias} (test double)" if self.test_double else self.alias


@dataclass(frozen=True)
class Evidence:
    """Every candidate, their quality comparisons, and what the files could not give."""

    sources: Sources
    candidates: tuple[Candidate, ...]
    qualities: Mapping[tuple[str, str], Quality]  # (commercial, local) -> the comparison
    unroled: Mapping[str, str] = field(default_factory=dict)  # alias -> why it has no role
    notes: tuple[str, ...] = ()  # what was read but not used, and why

    def candidate(self, alias: str) -> Candidate:
        return next(c for c in self.candidates if c.alias == alias)


def _role(
    alias: str, summary: AliasSummary, records: Sequence[Mapping[str, Any]], inputs: TeamInputs
) -> tuple[Role | None, str]:
    if alias in inputs.local:
        return "local", "named with --local"
    if alias in inputs.commercial:
        return "commercial", "named with --commercial"
    if summary.cost_kind == "commercial":
        return "commercial", "priced per token by its cost: mapping"
    if summary.cost_kind == "self-hosted":
        return "local", "priced per GPU-hour by its cost: mapping"
    engines = {
        ((r.get("versions") or {}).get("server") or {}).get("engine") for r in records if r.get("alias") == alias
    }
    if "vllm" in engines:
        return "local", "served by a vLLM server the harness started"
    return None, (
        "no cost: mapping and not served by vLLM, so neither commercial nor local: give it a cost: mapping in "
        "models.yaml (per token or per GPU-hour) or name it with --commercial / --local"
    )


def _gpu(summary: AliasSummary, inputs: TeamInputs) -> tuple[SelfHostedCost | None, str]:
    spec = None
    if summary.cost_kind == "self-hosted":
        try:
            parsed = parse_cost_spec(summary.cost_spec, f"{summary.alias}.cost")
        except ConfigError:
            parsed = None
        spec = parsed if isinstance(parsed, SelfHostedCost) else None
    if inputs.gpu_hourly_usd is not None:
        concurrency, gpus = (spec.concurrency, spec.gpus) if spec else (1.0, 1)
        why = "" if spec else "; 1 call at a time on 1 GPU: no cost: mapping to take concurrency from"
        return SelfHostedCost(inputs.gpu_hourly_usd, concurrency, gpus), f"assumed (--gpu-hourly-usd{why})"
    if spec is not None:
        return spec, "given: the run's cost: mapping, recorded with each run"
    return None, "none: no cost: mapping and no --gpu-hourly-usd"


def _repriced(records: Sequence[Mapping[str, Any]], prices: Mapping[str, SelfHostedCost]) -> list[Mapping[str, Any]]:
    """The records with the runs of ``prices``' aliases priced at those GPU rates (model-call time)."""
    out: list[Mapping[str, Any]] = []
    for rec in records:
        spec = prices.get(str(rec.get("alias")))
        if spec is None:
            out.append(rec)
            continue
        wall = (rec.get("client") or {}).get("model_wall_s")
        usd = call_cost_usd(spec, latency_s=float(wall)) if isinstance(wall, (int, float)) and wall >= 0 else None
        cost = {**(rec.get("cost") or {}), "usd": usd, "kind": "self-hosted", "basis": "assumed (--gpu-hourly-usd)"}
        out.append({**rec, "cost": cost})
    return out


def _check_named(inputs: TeamInputs, aliases: Sequence[str]) -> None:
    for flag, named in (("--local", inputs.local), ("--commercial", inputs.commercial)):
        for alias in named:
            if alias not in aliases:
                raise UsageError(
                    f"{flag} {alias}: no runs of it in the results; the aliases there: {', '.join(aliases)}"
                )


def _findings(
    sources: Sources, roles: Mapping[str, Role]
) -> tuple[dict[str, ScreenFinding], dict[str, SweepFinding], list[str]]:
    screens: dict[str, ScreenFinding] = {}
    sweeps: dict[str, SweepFinding] = {}
    notes: list[str] = []
    for path, cand in sources.screens:
        alias = str(cand["alias"])
        if alias not in roles:
            notes.append(f"{path}: the screening of {alias} is not used: {alias} has no runs in these results")
            continue
        screens[alias] = ScreenFinding.of(path, cand)
    for path, data in sources.sweeps:
        alias = str(data["alias"])
        if roles.get(alias) != "local":
            why = "has no runs in these results" if alias not in roles else "is not a local candidate"
            notes.append(f"{path}: the sweep of {alias} is not used: {alias} {why}")
            continue
        sweeps[alias] = SweepFinding.of(path, data)
    return screens, sweeps, notes


def collect(sources: Sources, inputs: TeamInputs) -> Evidence:
    """The candidates of the run with their figures, findings and quality comparisons."""
    records = list(sources.records)
    first = summarize(records)
    _check_named(inputs, [s.alias for s in first])
    roles: dict[str, Role] = {}
    unroled: dict[str, str] = {}
    why: dict[str, str] = {}
    for s in first:
        role, reason = _role(s.alias, s, records, inputs)
        why[s.alias] = reason
        if role is None:
            unroled[s.alias] = reason
        else:
            roles[s.alias] = role
    gpus = {s.alias: _gpu(s, inputs) for s in first if roles.get(s.alias) == "local"}
    assumed = {a: g for a, (g, src) in gpus.items() if g is not None and src.startswith("assumed")}
    summaries = summarize(_repriced(records, assumed)) if assumed else first
    screens, sweeps, notes = _findings(sources, roles)
    candidates = []
    for s in summaries:
        if s.alias not in roles or s.estimate is None:
            continue
        gpu, gpu_from = gpus.get(s.alias, (None, ""))
        candidates.append(
            Candidate(
                alias=s.alias,
                model=s.model,
                role=roles[s.alias],
                role_from=why[s.alias],
                test_double=s.test_double,
                runs=s.runs,
                passes=s.passed,
                pass_rate=s.estimate.pass_at_1,
                spend=s.estimate.spend,
                cost_per_call=s.cost_per_call,
                call_latency_s=statistics.fmean(s.call_wall_s) if s.call_wall_s else None,
                calls=s.model_calls,
                infrastructure=sum(s.infrastructure.values()),
                gpu=gpu,
                gpu_from=gpu_from,
                screen=screens.get(s.alias),
                sweep=sweeps.get(s.alias),
            )
        )
    qualities = {
        (c.alias, loc.alias): compare_quality(
            records, (c.alias, c.passes, c.runs), (loc.alias, loc.passes, loc.runs), inputs.confidence
        )
        for c in candidates
        if c.role == "commercial" and c.runs
        for loc in candidates
        if loc.role == "local" and loc.runs
    }
    return Evidence(sources, tuple(candidates), qualities, unroled, tuple(notes))
