"""Paired comparison of two aliases over the same (packet, repeat) trials. pytest-free, no numpy/scipy.

Two aliases that ran the same packets the same number of times give *pairs* of outcomes; the pairs
that agree say nothing about which alias is better, so a paired test looks only at the discordant
ones and needs far fewer trials than comparing two pass rates as if they were independent.

* :class:`PairedCounts` - the 2x2 table: both passed, only A, only B, neither.
* :func:`mcnemar_exact` - the exact (binomial) McNemar test: two-sided p-value that the discordant
  pairs split evenly.
* :func:`paired_difference` - the difference in pass rate B - A with Newcombe's hybrid score interval
  for paired proportions (Newcombe 1998, method 10): good coverage at small n, never outside [-1, 1].
* :func:`paired_bootstrap` - the difference of a statistic (median latency, tokens, cost) between the
  aliases by resampling the pairs jointly.
* :func:`mcnemar_power`, :func:`pairs_needed`, :func:`minimum_detectable_difference` - the power of the
  exact test by full enumeration, for "how many repeats do we need" and "what could this run detect".
  They assume the two aliases' outcomes on a trial are independent, which *under*-states the power of a
  paired design whose aliases agree on easy and hard packets: the figures are conservative.

Checked against ``scipy.stats.binomtest`` (McNemar is a binomial test on the discordant pairs) and
``scipy.stats.bootstrap(paired=True)`` in the tests; coverage of the difference interval is checked by
simulation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pytest_agentbench.reports.intervals import (
    BOOTSTRAP_RESAMPLES,
    Estimate,
    binom_cdf,
    binom_pmf,
    wilson_interval,
)
from pytest_agentbench.reports.stats import median, percentile

__all__ = [
    "PairedCounts",
    "mcnemar_exact",
    "mcnemar_power",
    "minimum_detectable_difference",
    "paired_bootstrap",
    "paired_difference",
    "pairs_needed",
]


@dataclass(frozen=True)
class PairedCounts:
    """Outcomes of paired trials of aliases A and B: ``both`` passed, ``only_a``, ``only_b``, ``neither``."""

    both: int
    only_a: int
    only_b: int
    neither: int

    def __post_init__(self) -> None:
        if min(self.both, self.only_a, self.only_b, self.neither) < 0:
            raise ValueError(f"paired counts must be >= 0, got {self}")

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[bool, bool]]) -> PairedCounts:
        """From ``(a_passed, b_passed)`` per pair."""
        both = sum(1 for a, b in pairs if a and b)
        only_a = sum(1 for a, b in pairs if a and not b)
        only_b = sum(1 for a, b in pairs if b and not a)
        return cls(both, only_a, only_b, len(pairs) - both - only_a - only_b)

    @property
    def n(self) -> int:
        return self.both + self.only_a + self.only_b + self.neither

    @property
    def discordant(self) -> int:
        return self.only_a + self.only_b

    @property
    def rate_a(self) -> float | None:
        return (self.both + self.only_a) / self.n if self.n else None

    @property
    def rate_b(self) -> float | None:
        return (self.both + self.only_b) / self.n if self.n else None


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against Binomial(only_a + only_b, 1/2)."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a!r}, {only_b!r}")
    m = only_a + only_b
    if m == 0:
        return 1.0
    return min(1.0, 2 * binom_cdf(min(only_a, only_b), m, 0.5))


def paired_difference(counts: PairedCounts, confidence: float = 0.95) -> Estimate:
    """B's pass rate minus A's, with Newcombe's method-10 interval (unknown when there are no pairs)."""
    n = counts.n
    if n == 0:
        return Estimate(None, None, None, 0, "newcombe-paired", confidence)
    p_b, p_a = counts.rate_b, counts.rate_a
    assert p_a is not None and p_b is not None
    wb = wilson_interval(counts.both + counts.only_b, n, confidence)
    wa = wilson_interval(counts.both + counts.only_a, n, confidence)
    assert wb.low is not None and wb.high is not None and wa.low is not None and wa.high is not None
    phi = _phi(counts)
    theta = p_b - p_a
    d_low = _combine(p_b - wb.low, wa.high - p_a, phi)
    d_high = _combine(wb.high - p_b, p_a - wa.low, phi)
    return Estimate(theta, max(-1.0, theta - d_low), min(1.0, theta + d_high), n, "newcombe-paired", confidence)


def _combine(x: float, y: float, phi: float) -> float:
    """Newcombe's square-and-add of two one-sided Wilson distances, corrected for their correlation."""
    return math.sqrt(max(0.0, x * x - 2 * phi * x * y + y * y))


def _phi(c: PairedCounts) -> float:
    """The phi correlation of the 2x2 table; 0 where a margin is empty (Newcombe's convention)."""
    a, b, cc, d = c.both, c.only_b, c.only_a, c.neither  # rows: B passed / failed; columns: A passed / failed
    denom = (a + b) * (cc + d) * (a + cc) * (b + d)
    if denom == 0:
        return 0.0
    return (a * d - b * cc) / math.sqrt(denom)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    statistic: Callable[[Sequence[float]], float | None] = median,
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """``statistic(b) - statistic(a)`` with a percentile interval from resampling the pairs together."""
    if len(a) != len(b):
        raise ValueError(f"paired samples must have one value each per pair, got {len(a)} and {len(b)}")
    xs, ys = [float(v) for v in a], [float(v) for v in b]
    if not xs:
        return Estimate(None, None, None, 0, "paired-bootstrap", confidence)

    def diff(idx: Sequence[int]) -> float | None:
        sa, sb = statistic([xs[i] for i in idx]), statistic([ys[i] for i in idx])
        return None if sa is None or sb is None else sb - sa

    point = diff(range(len(xs)))
    if point is None or len(xs) == 1:
        return Estimate(point, point, point, len(xs), "paired-bootstrap", confidence)
    rng = random.Random(seed)
    indices = range(len(xs))
    draws = [d for d in (diff(rng.choices(indices, k=len(xs))) for _ in range(resamples)) if d is not None]
    tail = (1 - confidence) / 2
    low, high = percentile(draws, tail * 100), percentile(draws, (1 - tail) * 100)
    return Estimate(point, low, high, len(xs), "paired-bootstrap", confidence)


@lru_cache(maxsize=8192)
def _critical(m: int, alpha: float) -> int:
    """The largest k for which ``min(only_a, only_b) <= k`` among ``m`` discordant pairs rejects at ``alpha``
    (-1: nothing rejects). The test is symmetric, so this one number is its whole rejection region."""
    k, tail = -1, 0.0
    while k + 1 <= m // 2:
        tail += binom_pmf(k + 1, m, 0.5)
        if min(1.0, 2 * tail) >= alpha:
            break
        k += 1
    return k


def mcnemar_power(n_pairs: int, p_a: float, p_b: float, alpha: float = 0.05) -> float:
    """The chance that the exact McNemar test at ``alpha`` rejects, over ``n_pairs`` independent trials
    where A passes with ``p_a`` and B with ``p_b`` (independently within a pair; enumeration, not simulation)."""
    if n_pairs < 0:
        raise ValueError(f"n_pairs must be >= 0, got {n_pairs!r}")
    for name, p in (("p_a", p_a), ("p_b", p_b)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    only_a, only_b = p_a * (1 - p_b), p_b * (1 - p_a)
    disc = only_a + only_b
    if disc == 0 or n_pairs == 0:
        return 0.0
    share_b = only_b / disc
    power = 0.0
    for m in range(n_pairs + 1):
        weight = binom_pmf(m, n_pairs, disc)
        k = _critical(m, alpha)
        if k < 0 or weight < 1e-16:  # so unlikely a count changes no digit: skip its O(m) tails
            continue
        rejected = binom_cdf(k, m, share_b) + (1.0 - binom_cdf(m - k - 1, m, share_b))
        power += weight * rejected
    return min(1.0, power)


def _centred(mean: float, delta: float) -> tuple[float, float]:
    """Rates ``mean -/+ delta/2``, shifted inside [0, 1] when the mean is near an edge."""
    p_a = min(max(mean - delta / 2, 0.0), 1.0 - delta)
    return p_a, p_a + delta


def pairs_needed(
    delta: float, mean: float = 0.5, *, alpha: float = 0.05, power: float = 0.8, limit: int = 20_000
) -> int | None:
    """The fewest paired trials at which the exact test detects a difference ``delta`` in pass rate
    (around the mean rate ``mean``) with ``power``; ``None`` past ``limit``."""
    if not 0 < delta <= 1:
        raise ValueError(f"delta must be in (0, 1], got {delta!r}")
    p_a, p_b = _centred(mean, delta)
    lo, hi = 1, 1
    while mcnemar_power(hi, p_a, p_b, alpha) < power:
        lo, hi = hi + 1, hi * 2
        if hi > limit:
            return None
    while lo < hi:  # power rises with n but in a saw-tooth: this finds the first n past the target on the way up
        mid = (lo + hi) // 2
        if mcnemar_power(mid, p_a, p_b, alpha) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


def minimum_detectable_difference(
    n_pairs: int, mean: float = 0.5, *, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """The smallest difference in pass rate (to 0.01) that ``n_pairs`` paired trials detect with ``power``;
    ``None`` when not even 1.0 is (too few pairs)."""
    if n_pairs < 1:
        return None
    if mcnemar_power(n_pairs, *_centred(mean, 1.0), alpha) < power:
        return None
    lo, hi = 1, 100  # in points
    while lo < hi:
        mid = (lo + hi) // 2
        if mcnemar_power(n_pairs, *_centred(mean, mid / 100), alpha) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo / 100
