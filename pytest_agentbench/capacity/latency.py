"""Per-request numbers of a load, a replay or a sweep level, as ``vllm bench serve`` reports them.

:class:`RequestTiming` is one request as the client saw it (from a ``Completion``, a failed call,
or an agent turn); :func:`request_stats` turns many into throughput, token totals and the mean,
median, p90 and p99 of each latency; :func:`goodput` counts the requests that meet an SLO's
per-request thresholds. The definitions are vLLM's (``models/adapter.py`` measures them so):

* **TTFT**: from sending the request to the first streamed chunk with content;
* **TPOT**: the decode time after the first token over the output tokens less the first,
  ``(latency - ttft) / (output_tokens - 1)`` (only requests of more than one output token);
* **ITL**: every gap between successive chunks after the first (one per chunk, all requests pooled);
* **E2E**: from sending the request to its last chunk (the adapter's ``attempt_wall_s``: the
  last attempt, so a retried request counts from its retry);
* request throughput = completed requests / the run's wall time (first send to last answer),
  output tok/s = output tokens of completed requests / the same wall time;
* goodput (share, rate) = requests meeting every per-request threshold / completed requests,
  and / the wall time (vllm bench's ``request_goodput``).

Percentiles interpolate linearly between closest ranks (``numpy.percentile``'s default, as vllm bench).
Pure.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_agentbench.reports.stats import percentile

if TYPE_CHECKING:
    from pytest_agentbench.agents.transcript import Turn
    from pytest_agentbench.capacity.slo import Slo
    from pytest_agentbench.models.calls import Completion, Usage

__all__ = ["PERCENTILES", "RequestTiming", "goodput", "latency_summary", "request_stats"]

#: The percentiles reported for every latency (besides the mean).
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class RequestTiming:
    """One request: its latencies (seconds; ``None`` = not measured) and tokens as the server reported them."""

    ok: bool
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    itl_s: tuple[float, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    usage_reported: bool = True
    error: str | None = None  # the failure class of a failed request
    message: str = ""  # what the failure said (the server's message), for the report
    sent_at_s: float | None = None  # when it was sent, from the start of the run
    scheduled_at_s: float | None = None  # when its arrival was due (request-rate loads)

    @classmethod
    def of_completion(
        cls, completion: Completion, sent_at_s: float | None = None, scheduled_at_s: float | None = None
    ) -> RequestTiming:
        extra = completion.extra
        return cls.answered(
            completion.usage,
            ttft_s=completion.ttft_s,
            tpot_s=extra.get("tpot_s"),
            e2e_s=float(extra.get("attempt_wall_s", completion.wall_s)),
            itl_s=tuple(completion.itl_s),
            sent_at_s=sent_at_s,
            scheduled_at_s=scheduled_at_s,
        )

    @classmethod
    def answered(cls, usage: Usage, **timings: Any) -> RequestTiming:
        """A completed request: its timings (the other fields, by name) and the tokens the server reported."""
        return cls(
            ok=True,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            usage_reported=usage.reported,
            **timings,
        )

    @classmethod
    def of_turn(cls, turn: Turn) -> RequestTiming:
        """An agent turn (a sweep's model call); ITL gaps are not kept on turns."""
        if turn.error:
            return cls(ok=False, error=turn.error, e2e_s=turn.wall_s, usage_reported=False)
        usage = turn.usage
        return cls(
            ok=True,
            ttft_s=turn.ttft_s,
            tpot_s=turn.extra.get("tpot_s"),
            e2e_s=float(turn.extra.get("attempt_wall_s", turn.wall_s)),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            usage_reported=usage.reported,
        )


def latency_summary(values: Sequence[float]) -> dict[str, float | None]:
    """``{"mean", "p50", "p90", "p99", "n"}`` of *values* (seconds); ``None`` where there are none."""
    out: dict[str, Any] = {"n": len(values), "mean": statistics.fmean(values) if values else None}
    for q in PERCENTILES:
        out[f"p{q}"] = percentile(values, q)
    return out


def goodput(timings: Sequence[RequestTiming], slo: Slo, wall_s: float) -> dict[str, Any] | None:
    """The requests meeting *slo*'s per-request thresholds: how many, their share of the completed
    requests and their rate over *wall_s*. ``None`` when the SLO has no per-request half."""
    if not slo.goodput_defined:
        return None
    done = [t for t in timings if t.ok]
    good = sum(1 for t in done if slo.meets(t.ttft_s, t.tpot_s, t.e2e_s))
    return {
        "good": good,
        "completed": len(done),
        "share": good / len(done) if done else None,
        "rate_per_s": good / wall_s if wall_s > 0 else None,
        "slo": slo.describe_goodput(),
    }


def request_stats(timings: Sequence[RequestTiming], *, wall_s: float, slo: Slo | None = None) -> dict[str, Any]:
    """Throughput, token totals, latency summaries and goodput of one run (see the module docstring)."""
    done = [t for t in timings if t.ok]
    failures: dict[str, int] = {}
    examples: list[str] = []
    for t in timings:
        if not t.ok:
            failures[t.error or "error"] = failures.get(t.error or "error", 0) + 1
            text = f"{t.error}: {t.message}"[:300]
            if t.message and text not in examples and len(examples) < 3:
                examples.append(text)
    prompt = sum(t.prompt_tokens for t in done)
    output = sum(t.completion_tokens for t in done)
    per_second = (lambda n: n / wall_s) if wall_s > 0 else (lambda n: None)
    lags = [t.sent_at_s - t.scheduled_at_s for t in timings if t.sent_at_s is not None and t.scheduled_at_s is not None]
    return {
        "requests": len(timings),
        "completed": len(done),
        "failed": len(timings) - len(done),
        "failures_by_class": failures,
        "failure_examples": examples,
        "wall_s": wall_s,
        "request_throughput": per_second(len(done)),
        "output_tok_s": per_second(output),
        "total_tok_s": per_second(prompt + output),
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "cached_tokens": sum(t.cached_tokens for t in done),
        "usage_reported": all(t.usage_reported for t in done),
        "ttft_s": latency_summary([t.ttft_s for t in done if t.ttft_s is not None]),
        "tpot_s": latency_summary([t.tpot_s for t in done if t.tpot_s is not None]),
        "itl_s": latency_summary([gap for t in done for gap in t.itl_s]),
        "e2e_s": latency_summary([t.e2e_s for t in done if t.e2e_s is not None]),
        "decode_tok_s_p50": percentile([1.0 / t.tpot_s for t in done if t.tpot_s], 50),
        "send_lag_s": latency_summary(lags) if lags else None,
        "goodput": goodput(timings, slo, wall_s) if slo is not None else None,
    }
