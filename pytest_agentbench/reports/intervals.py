"""Interval estimates for one alias: pass rates, pass@k, pass^k, bootstrap intervals. pytest-free, no numpy/scipy.

Every figure that ranks aliases carries an interval (``../shared/DESIGN.md``, "Comparisons"); this module
computes them from plain counts and lists:

* :func:`wilson_interval` - the score interval for a pass rate (good coverage down to n = 5, never
  outside [0, 1]); :func:`exact_interval` - Clopper-Pearson, conservative, for when a guarantee is wanted.
* :func:`pass_at_k` - the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models
  Trained on Code"): the chance that at least one of k trials drawn from the n run passes.
* :func:`pass_hat_k` - pass^k (Yao et al. 2024, tau-bench): the chance that *all* k drawn trials pass,
  unbiased as C(c, k) / C(n, k). Where pass@k rewards a lucky retry, pass^k punishes a flaky agent.
* :func:`bootstrap_interval` - a seeded percentile bootstrap of any statistic (the median by default), for
  latency, tokens and cost per run.

Why a small implementation and not scipy: the plugin needs six textbook formulas; scipy is a 40 MB
install and ~0.2 s of import for them. The tests check every function against ``scipy.stats``
(``binomtest(...).proportion_ci``, ``binom.cdf``, ``bootstrap``) as the reference.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from pytest_agentbench.reports.stats import median, percentile

__all__ = [
    "Estimate",
    "binom_cdf",
    "binom_pmf",
    "bootstrap_interval",
    "exact_interval",
    "pass_at_k",
    "pass_hat_k",
    "wilson_interval",
    "z_value",
]

#: Bootstrap resamples by default: the percentile bounds of a 95 % interval move by < 1 % of the
#: interval's width between seeds at this size.
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval, the sample size behind it and how the interval was made.

    ``value``/``low``/``high`` are ``None`` when there was nothing to estimate from (n = 0): unknown,
    never 0.
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str
    confidence: float = 0.95

    @property
    def known(self) -> bool:
        return self.value is not None

    def percent(self, digits: int = 0) -> str:
        """``"40 % [19, 64]"`` for a proportion; ``"n/a"`` when unknown."""
        if self.value is None or self.low is None or self.high is None:
            return "n/a"
        return f"{self.value * 100:.{digits}f} % [{self.low * 100:.{digits}f}, {self.high * 100:.{digits}f}]"


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")


def _check_counts(successes: int, n: int) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes!r}, n={n!r}")


def z_value(confidence: float) -> float:
    """The two-sided standard-normal quantile: 1.96 for 0.95."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """The Wilson score interval of a pass rate ``successes / n`` (Wilson 1927)."""
    _check_counts(successes, n)
    if n == 0:
        return Estimate(None, None, None, 0, "wilson", confidence)
    z = z_value(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at 0 and n the bound equals p exactly; rounding must not put it on the wrong side of p
    low = 0.0 if successes == 0 else max(0.0, min(p, centre - half))
    high = 1.0 if successes == n else min(1.0, max(p, centre + half))
    return Estimate(p, low, high, n, "wilson", confidence)


def binom_pmf(k: int, n: int, p: float) -> float:
    """P(X = k) for X ~ Binomial(n, p), in log space so large n does not overflow."""
    if k < 0 or k > n:
        return 0.0
    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p >= 1.0:
        return 1.0 if k == n else 0.0
    log = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)
    return math.exp(log)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, math.fsum(binom_pmf(i, n, p) for i in range(k + 1)))


def _solve(f: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where the monotone decreasing ``f(p)`` crosses ``target`` (bisection to 1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def exact_interval(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """The Clopper-Pearson ("exact") interval: coverage at least ``confidence`` for every true rate."""
    _check_counts(successes, n)
    _check_confidence(confidence)
    if n == 0:
        return Estimate(None, None, None, 0, "clopper-pearson", confidence)
    tail = (1 - confidence) / 2
    # low: P(X >= k | p) = tail, i.e. 1 - cdf(k-1) = tail; high: P(X <= k | p) = tail.
    low = 0.0 if successes == 0 else _solve(lambda p: binom_cdf(successes - 1, n, p), 1 - tail)
    high = 1.0 if successes == n else _solve(lambda p: binom_cdf(successes, n, p), tail)
    return Estimate(successes / n, low, high, n, "clopper-pearson", confidence)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` trials of which ``c`` passed: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021)."""
    _check_counts(c, n)
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n (the trials run), got k={k!r}, n={n!r}")
    if n - c < k:
        return 1.0
    # the product form of Chen et al., stable where the binomials overflow
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k: the chance that all of ``k`` trials drawn without replacement passed, C(c, k) / C(n, k)."""
    _check_counts(c, n)
    if not 1 <= k <= n:
        raise ValueError(f"pass^k needs 1 <= k <= n (the trials run), got k={k!r}, n={n!r}")
    if c < k:
        return 0.0
    return math.prod((c - i) / (n - i) for i in range(k))


def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float | None] = median,
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """A percentile-bootstrap interval of ``statistic(values)``; seeded, so a report reads the same twice.

    With one value the interval is that value (nothing to resample); with none, unknown.
    """
    _check_confidence(confidence)
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples!r}")
    data = [float(v) for v in values]
    point = statistic(data) if data else None
    if point is None:
        return Estimate(None, None, None, 0, "bootstrap", confidence)
    if len(data) == 1:
        return Estimate(point, point, point, 1, "bootstrap", confidence)
    rng = random.Random(seed)
    stats = [s for s in (statistic(rng.choices(data, k=len(data))) for _ in range(resamples)) if s is not None]
    tail = (1 - confidence) / 2
    low, high = percentile(stats, tail * 100), percentile(stats, (1 - tail) * 100)
    return Estimate(point, low, high, len(data), "bootstrap", confidence)
