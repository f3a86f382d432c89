"""Which of two candidates solves more: the significance of a pass-rate difference, never the raw rates.

Rule 8 of ``docs/decision.md``. Where the two aliases ran the same (packet, repeat) trials, the
paired comparison of ``agentbench compare`` decides (:func:`pytest_agentbench.reports.compare.compare`:
the exact McNemar test on the discordant pairs, Newcombe's paired interval); trials only one of them
ran are left out, and said. Where they share no trial, the two pass rates are independent samples:
Newcombe's hybrid score interval for the difference of independent proportions (Newcombe 1998,
method 10, from the two Wilson intervals) decides - a difference whose interval excludes 0 at the
chosen confidence is significant. The difference is always *local - commercial*. pytest-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_agentbench.reports.compare import compare, format_p, format_points, pair_trials
from pytest_agentbench.reports.intervals import Estimate, wilson_interval

__all__ = ["Quality", "compare_quality", "unpaired_difference"]

#: The deltas' bootstrap (wall time, tokens, cost) is not read by the decision: few resamples suffice.
_RESAMPLES = 200


@dataclass(frozen=True)
class Quality:
    """Local against commercial: the test, the difference (local - commercial) and who is better."""

    commercial: str
    local: str
    method: Literal["paired", "unpaired"]
    n: int  # pairs (paired) or runs of both (unpaired)
    difference: Estimate
    p_value: float | None  # the exact McNemar p (paired); None for the interval-only unpaired rule
    significant: bool
    text: str  # one sentence for the record
    left_out: int = 0  # trials only one of the two ran (paired)

    def short(self) -> str:
        """``-40 points [-71, -2], p = 0.031``: the difference (local - commercial), its interval and test."""
        d = self.difference
        text = f"{format_points(d.value)} points [{format_points(d.low)}, {format_points(d.high)}]"
        test = format_p(self.p_value) if self.p_value is not None else "unpaired"
        return f"{text}, {test}"

    @property
    def better(self) -> str | None:
        """The alias that solves significantly more, or None for a tie (no detectable difference)."""
        if not self.significant or self.difference.value is None:
            return None
        return self.local if self.difference.value > 0 else self.commercial


def unpaired_difference(passes_a: int, n_a: int, passes_b: int, n_b: int, confidence: float = 0.95) -> Estimate:
    """B - A of two independent pass rates with Newcombe's hybrid score interval (method 10)."""
    a, b = wilson_interval(passes_a, n_a, confidence), wilson_interval(passes_b, n_b, confidence)
    if a.value is None or b.value is None:
        return Estimate(None, None, None, n_a + n_b, "newcombe-unpaired", confidence)
    assert a.low is not None and a.high is not None and b.low is not None and b.high is not None
    d = b.value - a.value
    low = d - math.sqrt((b.value - b.low) ** 2 + (a.high - a.value) ** 2)
    high = d + math.sqrt((b.high - b.value) ** 2 + (a.value - a.low) ** 2)
    return Estimate(d, max(-1.0, low), min(1.0, high), n_a + n_b, "newcombe-unpaired", confidence)


def _paired(records: Sequence[Mapping[str, Any]], commercial: str, local: str, confidence: float) -> Quality:
    c = compare(records, commercial, local, confidence=confidence, resamples=_RESAMPLES)
    return Quality(
        commercial=commercial,
        local=local,
        method="paired",
        n=c.n,
        difference=c.difference,
        p_value=c.p_value,
        significant=c.significant,
        text=c.verdict,
        left_out=c.pairing.lost,
    )


def _unpaired(commercial: tuple[str, int, int], local: tuple[str, int, int], confidence: float) -> Quality:
    (c_alias, c_passes, c_runs), (l_alias, l_passes, l_runs) = commercial, local
    d = unpaired_difference(c_passes, c_runs, l_passes, l_runs, confidence)
    significant = d.low is not None and d.high is not None and (d.low > 0 or d.high < 0)
    interval = f"{format_points(d.value)} points [{format_points(d.low)}, {format_points(d.high)}]"
    if significant:
        more = "more" if (d.value or 0) > 0 else "fewer"
        text = f"{l_alias} solves {more} than {c_alias}: {interval} ({l_alias} - {c_alias})"
    else:
        text = f"no detectable difference ({l_alias} - {c_alias}: {interval})"
    text += f", unpaired: no shared trials, {c_runs} and {l_runs} runs, Newcombe's interval"
    return Quality(c_alias, l_alias, "unpaired", c_runs + l_runs, d, None, significant, text)


def compare_quality(
    records: Sequence[Mapping[str, Any]],
    commercial: tuple[str, int, int],
    local: tuple[str, int, int],
    confidence: float = 0.95,
) -> Quality:
    """Local against commercial (each ``(alias, passes, runs)`` over its counted runs): paired where they
    share a judged (packet, repeat) trial, else unpaired."""
    if pair_trials(records, commercial[0], local[0]).pairs:
        return _paired(records, commercial[0], local[0], confidence)
    return _unpaired(commercial, local, confidence)
