"""The estimates behind every ranking: per alias and per (packet, alias), from run records. pytest-free.

    for est in estimate_aliases(load_records("results.jsonl")):
        print(est.alias, est.pass_at_1.percent(), est.spend.per_solved_text())

From the records (``results.record_to_dict``: ``alias``, ``packet.id``, ``repeat``, ``passed``,
``client.wall_s``, ``client.tokens``, ``cost.usd``), with the formulas of :mod:`.intervals`:

* **pass@1** - passed runs / runs with a 95 % Wilson interval. The runs are taken as independent
  trials; with repeats, the trials of one packet are correlated, so the interval speaks for *this*
  packet set, not for packets like it.
* **pass@k**, **pass^k** for k <= N (N: trials per packet) - the unbiased estimators (Chen et al.
  2021; Yao et al. 2024) per packet; per alias the mean over the packets with at least k trials,
  and how many packets that is (a resumed run may have fewer trials of some packets). Every k up
  to 10, then 20, 50, 100, ... and N itself (:func:`reported_ks`).
* **flaky packets** - packets that both passed and failed.
* **medians** of run wall time (client), tokens (prompt + completion, runs whose server reported
  usage) and cost per run (runs whose cost is known), each with a seeded percentile bootstrap
  (above 500 runs, the large-sample interval the bootstrap converges to: pure Python resampling of
  thousands of runs would cost seconds).
* **spend** - $ per run (mean) and $ per *solved* run (total spend / passed runs), both over the runs
  whose cost is known, with a bootstrap over runs of the mean and of the ratio. Self-hosted runs are
  priced from the GPU $/h and the measured model-call time, commercial ones from token prices with
  cached input at its own price (``capacity.cost``; the record holds the result). Unknown is
  ``None``, never $0; partial says over how many runs; no passed run is "no solved run", not
  infinity.

Runs whose endpoint never answered (:func:`is_infrastructure`) are left out of every figure.
:func:`estimates_document` is the JSON form, written by :func:`write_estimates` as ``estimates.json``
beside ``results.jsonl``: a separate, derived file, so the append-only run log and its readers
(merge, ``--resume``, reports) never meet a record that is not a run, and a resumed session rewrites
it from all the runs instead of leaving a stale summary line behind.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_agentbench.agents.transcript import INFRASTRUCTURE
from pytest_agentbench.capacity.cost import format_usd
from pytest_agentbench.reports.intervals import (
    BOOTSTRAP_RESAMPLES,
    Estimate,
    bootstrap_interval,
    pass_at_k,
    pass_hat_k,
    wilson_interval,
    z_value,
)
from pytest_agentbench.reports.stats import median
from pytest_agentbench.results.cells import SEPARATOR, cell_columns, column_of, label_cells
from pytest_agentbench.results.jsonsafe import json_safe

__all__ = [
    "CONFIDENCE",
    "ESTIMATES_FILE",
    "AliasEstimates",
    "AtK",
    "PairEstimates",
    "Spend",
    "estimate_aliases",
    "estimates_document",
    "is_infrastructure",
    "reported_ks",
    "resamples_for",
    "write_estimates",
]

#: The file :func:`write_estimates` writes next to ``results.jsonl``.
ESTIMATES_FILE = "estimates.json"
CONFIDENCE = 0.95
#: Draws one bootstrap may make (resamples x runs), per alias and per (packet, alias): above 50 runs
#: (10 per pair) the resamples shrink so a report over thousands of runs stays fast in pure Python
#: (~0.4 us a draw); never below :data:`_MIN_RESAMPLES`, whose 2.5 % bound is the 5th of 200.
_DRAW_BUDGET = 100_000
_PAIR_DRAW_BUDGET = 20_000
_MIN_RESAMPLES = 200
#: Above this many runs (of a (packet, alias): _PAIR_LARGE), the large-sample limits of the bootstrap
#: intervals (see ``_Bootstrap``).
_LARGE = 500
_PAIR_LARGE = 100
#: The ratio of a resample without a solved run: finite, so the percentile's interpolation stays defined.
_UNBOUNDED = 1e300


def is_infrastructure(record: Mapping[str, Any]) -> bool:
    """The run's endpoint never answered: not counted for or against the model."""
    return record.get("outcome") == INFRASTRUCTURE


def resamples_for(n: int, budget: int = _DRAW_BUDGET) -> int:
    """Bootstrap resamples for ``n`` runs: 2,000 up to ``budget`` / 2,000 runs, then fewer (at least 200)."""
    return max(_MIN_RESAMPLES, min(BOOTSTRAP_RESAMPLES, budget // max(1, n)))


def reported_ks(n: int) -> tuple[int, ...]:
    """The k a report gives pass@k and pass^k for: 1..n up to 10, then 20, 50, 100, 200, 500, ... and n."""
    ks = list(range(1, min(n, 10) + 1))
    step = 20
    while step < n:
        ks.append(step)
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    if n > 10:
        ks.append(n)
    return tuple(ks)


@dataclass(frozen=True)
class AtK:
    """pass@k or pass^k of one alias: the mean over the ``packets`` (of ``of_packets``) with >= k trials."""

    k: int
    value: float | None
    packets: int
    of_packets: int

    def text(self, glue: str = " ") -> str:
        """``85%``, ``85% (4 of 5 packets)`` when some packets had fewer than k trials, or ``n/a``.

        ``glue`` joins the words of one part (a non-breaking space keeps them on one line in a table)."""
        if self.value is None:
            return "n/a"
        part = "" if self.packets == self.of_packets else f" ({self.packets} of {self.of_packets} packets)"
        return f"{self.value:.0%}" + part.replace(" ", glue)


@dataclass(frozen=True)
class Spend:
    """$ per run and $ per solved run, over the ``known`` runs (of ``runs``) whose cost is known."""

    per_run: Estimate
    per_solved: Estimate  # value None: unknown, or no solved run (``solved == 0``); high inf: no upper bound
    known: int
    runs: int
    solved: int  # passed runs among the known ones
    total_usd: float | None

    @property
    def partial(self) -> bool:
        return 0 < self.known < self.runs

    def over(self) -> str:
        """``over 7 of 10 runs`` when some costs were unknown, else empty."""
        return f"over {self.known} of {self.runs} runs" if self.partial else ""

    def per_run_text(self, glue: str = " ") -> str:
        """``$0.018 [$0.015, $0.021] (over 7 of 10 runs)``, or ``unknown``; ``glue`` as in :meth:`AtK.text`."""
        return _usd_text(self.per_run, self.over(), glue)

    def per_solved_text(self, glue: str = " ") -> str:
        """Like :meth:`per_run_text`, or ``no solved run`` (never infinity, never $0)."""
        if not self.known:
            return "unknown"
        if not self.solved:
            return "no solved run" + (f" ({self.over().replace(' ', glue)})" if self.partial else "")
        return _usd_text(self.per_solved, self.over(), glue)


def _usd_text(est: Estimate, over: str, glue: str) -> str:
    if est.value is None:
        return "unknown"
    parts = [format_usd(est.value)]
    if est.n >= 2 and est.low is not None and est.high is not None:
        high = "unbounded" if math.isinf(est.high) else format_usd(est.high)
        parts.append(f"[{format_usd(est.low)},{glue}{high}]")
    if over:
        parts.append(f"({over.replace(' ', glue)})")
    return " ".join(parts)


@dataclass(frozen=True)
class PairEstimates:
    """One (packet, alias): its trials, pass@1 with interval, pass@k / pass^k (k in :func:`reported_ks`), medians."""

    packet: str
    alias: str
    trials: int
    passes: int
    pass_at_1: Estimate
    pass_at_k: dict[int, float]
    pass_hat_k: dict[int, float]
    latency_s: Estimate
    tokens: Estimate
    cost_usd: Estimate

    @property
    def flaky(self) -> bool:
        """Both passed and failed."""
        return 0 < self.passes < self.trials


@dataclass(frozen=True)
class AliasEstimates:
    """Everything estimated for one alias (counted runs only)."""

    alias: str
    runs: int
    passes: int
    trials: int  # N: the most trials any of its packets had
    pass_at_1: Estimate
    pass_at_k: tuple[AtK, ...]  # k in reported_ks(N)
    pass_hat_k: tuple[AtK, ...]
    flaky: tuple[str, ...]
    latency_s: Estimate
    tokens: Estimate
    cost_usd: Estimate  # the median run's cost
    spend: Spend
    packets: tuple[PairEstimates, ...] = field(default=())

    def at(self, k: int, hat: bool = False) -> AtK | None:
        """pass@k (``hat``: pass^k), or None where k is not one of :func:`reported_ks` of N."""
        return next((x for x in (self.pass_hat_k if hat else self.pass_at_k) if x.k == k), None)

    def properties(self, prefix: str = "agentbench") -> list[tuple[str, int | float]]:
        """Numeric JUnit testsuite properties ``agentbench.<alias>.<figure>``; unknown figures are left out.
        A cell ``agent @ alias`` is named ``<agent>@<alias>`` there."""
        p = f"{prefix}.{self.alias.replace(SEPARATOR, '@')}"
        out: list[tuple[str, int | float]] = [(f"{p}.runs", self.runs), (f"{p}.passes", self.passes)]
        out.append((f"{p}.trials_per_packet", self.trials))
        out += _est_props(f"{p}.pass_at_1", self.pass_at_1)
        for k in reported_ks(self.trials)[1:]:
            for name, at in ((f"pass_at_{k}", self.at(k)), (f"pass_hat_{k}", self.at(k, hat=True))):
                if at is not None and at.value is not None:
                    out += [(f"{p}.{name}", round(at.value, 6)), (f"{p}.{name}_packets", at.packets)]
        out.append((f"{p}.flaky_packets", len(self.flaky)))
        out += _est_props(f"{p}.latency_p50_s", self.latency_s)
        out += _est_props(f"{p}.tokens_p50", self.tokens)
        out += _est_props(f"{p}.cost_p50_usd", self.cost_usd)
        out += _est_props(f"{p}.usd_per_run", self.spend.per_run)
        out += _est_props(f"{p}.usd_per_solved_run", self.spend.per_solved)
        out += [(f"{p}.cost_known_runs", self.spend.known), (f"{p}.cost_known_solved", self.spend.solved)]
        return out


def _est_props(name: str, est: Estimate) -> list[tuple[str, int | float]]:
    out: list[tuple[str, int | float]] = []
    for suffix, value in (("", est.value), ("_ci_low", est.low), ("_ci_high", est.high)):
        if value is not None and math.isfinite(value):
            out.append((name + suffix, round(value, 6)))
    return out


# --------------------------------------------------------------------------- estimating


@dataclass
class _Runs:
    """The counted runs of one alias (or one (packet, alias)), as the estimators read them."""

    passed: list[bool] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)
    costs: list[float | None] = field(default_factory=list)

    def add(self, rec: Mapping[str, Any]) -> None:
        client = rec.get("client") or {}
        self.passed.append(bool(rec.get("passed")))
        if client.get("wall_s") is not None:
            self.wall_s.append(float(client["wall_s"]))
        tokens = client.get("tokens") or {}
        if tokens.get("usage_reported", True):
            self.tokens.append(float(int(tokens.get("prompt", 0)) + int(tokens.get("completion", 0))))
        usd = (rec.get("cost") or {}).get("usd")
        self.costs.append(None if usd is None else float(usd))

    @property
    def known_costs(self) -> list[float]:
        return [c for c in self.costs if c is not None]


class _Bootstrap:
    """Seeded bootstrap intervals, memoised (a packet that is an alias's only one costs nothing twice).

    Above :data:`_LARGE` runs, the large-sample intervals the percentile bootstrap converges to, which
    cost no resampling: the order-statistic interval of the median, the normal one of the mean and the
    delta-method one of a ratio (``Estimate.method`` says which).
    """

    def __init__(self, confidence: float, seed: int):
        self.confidence, self.seed = confidence, seed
        self._memo: dict[tuple[str, tuple[float, ...]], Estimate] = {}

    def _boot(self, values: Sequence[float], statistic: Callable[..., float | None], key: str, budget: int) -> Estimate:
        resamples = resamples_for(len(values), budget)
        memo = (f"{key}/{resamples}", tuple(values))
        if memo not in self._memo:
            self._memo[memo] = bootstrap_interval(
                values, statistic, confidence=self.confidence, resamples=resamples, seed=self.seed
            )
        return self._memo[memo]

    def median(self, values: Sequence[float], budget: int = _DRAW_BUDGET, large: int = _LARGE) -> Estimate:
        if len(values) <= large:
            return self._boot(values, median, "median", budget)
        data, n = sorted(values), len(values)
        half = z_value(self.confidence) * math.sqrt(n) / 2
        low, high = max(1, math.floor(n / 2 - half)), min(n, math.ceil(1 + n / 2 + half))
        return Estimate(median(data), data[low - 1], data[high - 1], n, "order-statistics", self.confidence)

    def mean(self, values: Sequence[float]) -> Estimate:
        if len(values) <= _LARGE:
            return self._boot(values, statistics.fmean, "mean", _DRAW_BUDGET)
        m, half = statistics.fmean(values), z_value(self.confidence) * statistics.stdev(values) / math.sqrt(len(values))
        return Estimate(m, m - half, m + half, len(values), "normal", self.confidence)

    def ratio(self, costs: Sequence[float], passes: Sequence[float]) -> Estimate:
        """sum(costs) / sum(passes), resampling runs jointly; a resample without a pass is unboundedly dear,
        so the high bound is infinite where that happens more often than the tail (2.5 %)."""
        n, won = len(costs), sum(passes)
        tail = (1 - self.confidence) / 2
        if n <= _LARGE:

            def ratio(idx: Sequence[float]) -> float:
                hits = sum(passes[int(i)] for i in idx)
                return sum(costs[int(i)] for i in idx) / hits if hits else _UNBOUNDED

            est = self._boot([float(i) for i in range(n)], ratio, f"ratio:{costs}:{passes}", _DRAW_BUDGET)
            unbounded = est.high is not None and est.high >= _UNBOUNDED / 1e8  # the bound fell among those
            return Estimate(est.value, est.low, math.inf if unbounded else est.high, n, est.method, est.confidence)
        r = math.fsum(costs) / won
        spread = statistics.stdev([c - r * p for c, p in zip(costs, passes, strict=True)])
        half = z_value(self.confidence) * spread / math.sqrt(n) / (won / n)
        high = math.inf if (1 - won / n) ** n > tail else r + half
        return Estimate(r, max(0.0, r - half), high, n, "delta", self.confidence)


def estimate_aliases(
    records: Sequence[Mapping[str, Any]],
    aliases: Sequence[str] | None = None,
    *,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> list[AliasEstimates]:
    """Per alias, in ``aliases`` order (default: order of first appearance; listed aliases without runs
    get empty estimates), from the counted records. With more than one agent, per agent x alias cell
    (``results.cells``: ``alias`` is then the cell's label, ``mini-swe-agent @ local-coder``)."""
    records = label_cells(records)
    by_alias: dict[str, dict[str, _Runs]] = {c: {} for c in cell_columns(records, aliases)}
    for rec in records:
        by_packet = by_alias.setdefault(column_of(rec), {})
        if is_infrastructure(rec):
            continue
        packet = str((rec.get("packet") or {}).get("id", "?"))
        by_packet.setdefault(packet, _Runs()).add(rec)
    boot = _Bootstrap(confidence, seed)
    return [_alias(alias, by_packet, boot) for alias, by_packet in by_alias.items()]


def _alias(alias: str, by_packet: Mapping[str, _Runs], boot: _Bootstrap) -> AliasEstimates:
    pairs = tuple(_pair(packet, alias, runs, boot) for packet, runs in sorted(by_packet.items()))
    every = _Runs()
    for runs in (by_packet[p.packet] for p in pairs):
        every.passed += runs.passed
        every.wall_s += runs.wall_s
        every.tokens += runs.tokens
        every.costs += runs.costs
    trials = max((p.trials for p in pairs), default=0)
    return AliasEstimates(
        alias=alias,
        runs=len(every.passed),
        passes=sum(every.passed),
        trials=trials,
        pass_at_1=wilson_interval(sum(every.passed), len(every.passed), boot.confidence),
        pass_at_k=tuple(_mean_at(pairs, k, hat=False) for k in reported_ks(trials)),
        pass_hat_k=tuple(_mean_at(pairs, k, hat=True) for k in reported_ks(trials)),
        flaky=tuple(p.packet for p in pairs if p.flaky),
        latency_s=boot.median(every.wall_s),
        tokens=boot.median(every.tokens),
        cost_usd=boot.median(every.known_costs),
        spend=_spend(every, boot),
        packets=pairs,
    )


def _pair(packet: str, alias: str, runs: _Runs, boot: _Bootstrap) -> PairEstimates:
    n, c = len(runs.passed), sum(runs.passed)
    return PairEstimates(
        packet=packet,
        alias=alias,
        trials=n,
        passes=c,
        pass_at_1=wilson_interval(c, n, boot.confidence),
        pass_at_k={k: pass_at_k(n, c, k) for k in reported_ks(n)},
        pass_hat_k={k: pass_hat_k(n, c, k) for k in reported_ks(n)},
        latency_s=boot.median(runs.wall_s, _PAIR_DRAW_BUDGET, _PAIR_LARGE),
        tokens=boot.median(runs.tokens, _PAIR_DRAW_BUDGET, _PAIR_LARGE),
        cost_usd=boot.median(runs.known_costs, _PAIR_DRAW_BUDGET, _PAIR_LARGE),
    )


def _mean_at(pairs: Sequence[PairEstimates], k: int, *, hat: bool) -> AtK:
    estimator = pass_hat_k if hat else pass_at_k
    values = [estimator(p.trials, p.passes, k) for p in pairs if p.trials >= k]
    return AtK(k, statistics.fmean(values) if values else None, len(values), len(pairs))


def _spend(runs: _Runs, boot: _Bootstrap) -> Spend:
    """$ per run (mean) and per solved run (sum / passes) over the runs whose cost is known."""
    known = [(c, p) for c, p in zip(runs.costs, runs.passed, strict=True) if c is not None]
    costs = [c for c, _ in known]
    solved = sum(p for _, p in known)
    per_run = boot.mean(costs)
    if solved:  # resample the runs (by index) so each run's cost and outcome stay together
        per_solved = boot.ratio(costs, [1.0 if p else 0.0 for _, p in known])
    else:
        per_solved = Estimate(None, None, None, len(known), "bootstrap", boot.confidence)
    total = math.fsum(costs) if costs else None
    return Spend(per_run, per_solved, len(known), len(runs.costs), solved, total)


# --------------------------------------------------------------------------- JSON


def _est_dict(est: Estimate) -> dict[str, Any]:
    out: dict[str, Any] = {"value": est.value, "low": est.low, "high": est.high, "n": est.n, "method": est.method}
    if est.high is not None and math.isinf(est.high):
        out["high"], out["high_unbounded"] = None, True
    return out


def _alias_dict(a: AliasEstimates) -> dict[str, Any]:
    s = a.spend
    return {
        "alias": a.alias,
        "runs": a.runs,
        "passes": a.passes,
        "trials_per_packet": a.trials,
        "pass_at_1": _est_dict(a.pass_at_1),
        "pass_at_k": [vars(x) for x in a.pass_at_k],
        "pass_hat_k": [vars(x) for x in a.pass_hat_k],
        "flaky_packets": list(a.flaky),
        "latency_p50_s": _est_dict(a.latency_s),
        "tokens_p50": _est_dict(a.tokens),
        "cost_p50_usd": _est_dict(a.cost_usd),
        "spend": {
            "usd_per_run": _est_dict(s.per_run),
            "usd_per_solved_run": _est_dict(s.per_solved),
            "per_solved_text": s.per_solved_text(),
            "known_runs": s.known,
            "runs": s.runs,
            "solved_known_runs": s.solved,
            "total_usd": s.total_usd,
        },
        "packets": [
            {
                "packet": p.packet,
                "trials": p.trials,
                "passes": p.passes,
                "flaky": p.flaky,
                "pass_at_1": _est_dict(p.pass_at_1),
                "pass_at_k": {str(k): v for k, v in p.pass_at_k.items()},
                "pass_hat_k": {str(k): v for k, v in p.pass_hat_k.items()},
                "latency_p50_s": _est_dict(p.latency_s),
                "tokens_p50": _est_dict(p.tokens),
                "cost_p50_usd": _est_dict(p.cost_usd),
            }
            for p in a.packets
        ],
    }


def estimates_document(
    estimates: Sequence[AliasEstimates], records: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The JSON form: ``{"kind": "agentbench-estimates", "aliases": [...]}``, JSON-safe.

    ``kind`` and the missing ``run_id``/``packet`` keep it from being read as a run record.
    """
    infra = sum(1 for r in records if is_infrastructure(r))
    return json_safe(
        {
            "kind": "agentbench-estimates",
            "schema_version": 1,
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
            "confidence": estimates[0].pass_at_1.confidence if estimates else CONFIDENCE,
            "methods": {
                "pass_at_1": "Wilson score interval over runs",
                "pass_at_k": "unbiased estimator (Chen et al. 2021) per packet; per alias the mean over packets "
                "with >= k trials",
                "pass_hat_k": "C(c, k) / C(n, k) per packet (all k trials pass); per alias the mean",
                "medians": "percentile bootstrap over runs, seed 0, 2,000 resamples (fewer above 50 runs of an "
                "alias or 10 of a packet, at least 200); above 500 runs (100 of a packet) the order-statistic interval",
                "usd_per_run": "mean over runs with a known cost; bootstrap as the medians (above 500 runs: normal)",
                "usd_per_solved_run": "total spend / passed runs over the runs with a known cost; bootstrap over "
                "runs of the ratio (a resample without a pass counts as unbounded; above 500 runs: delta method)",
            },
            "left_out_infrastructure_runs": infra,
            "aliases": [_alias_dict(a) for a in estimates],
        }
    )


def write_estimates(
    estimates: Sequence[AliasEstimates], path: Path | str, records: Sequence[Mapping[str, Any]] = ()
) -> Path:
    """Write ``estimates.json`` to ``path`` (atomically; indented, so no line of it is a JSON object that a
    JSONL reader could take for a run); ``records`` (those estimated from) count the runs left out."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = estimates_document(estimates, records)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
