"""Interval estimates and paired tests, checked against scipy.stats (the reference) and by simulation."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from pytest_agentbench.reports.intervals import (
    Estimate,
    binom_cdf,
    bootstrap_interval,
    exact_interval,
    pass_at_k,
    pass_hat_k,
    wilson_interval,
)
from pytest_agentbench.reports.paired import (
    PairedCounts,
    mcnemar_exact,
    mcnemar_power,
    minimum_detectable_difference,
    paired_bootstrap,
    paired_difference,
    pairs_needed,
)

stats = pytest.importorskip("scipy.stats", reason="scipy is the reference implementation: pip install scipy")


@pytest.mark.parametrize("n", [1, 2, 5, 10, 20, 37, 100])
def test_wilson_and_exact_match_scipy(n: int) -> None:
    for k in range(n + 1):
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        ours = wilson_interval(k, n)
        assert ours.value == pytest.approx(k / n)
        assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=1e-9)
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.9, method="exact")
        ours = exact_interval(k, n, confidence=0.9)
        assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_intervals_hold_the_estimate_and_stay_in_range() -> None:
    for n in range(1, 30):
        for k in range(n + 1):
            for est in (wilson_interval(k, n), exact_interval(k, n)):
                assert 0.0 <= est.low <= est.value <= est.high <= 1.0


def test_no_trials_is_unknown_not_zero() -> None:
    for est in (wilson_interval(0, 0), exact_interval(0, 0), bootstrap_interval([])):
        assert est == Estimate(None, None, None, 0, est.method)
        assert est.percent() == "n/a"
    assert paired_difference(PairedCounts(0, 0, 0, 0)).value is None


@pytest.mark.parametrize("bad", [(3, 2), (-1, 4), (1, -1)])
def test_impossible_counts_are_refused(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(*bad)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=95)


def test_binomial_cdf_matches_scipy() -> None:
    for n, p in itertools.product([1, 7, 40, 500], [0.0, 0.03, 0.5, 0.91, 1.0]):
        for k in range(-1, n + 2, max(1, n // 25)):
            assert binom_cdf(k, n, p) == pytest.approx(float(stats.binom.cdf(k, n, p)), abs=1e-10)


def _pass_at_k_by_enumeration(n: int, c: int, k: int, all_pass: bool) -> float:
    trials = [True] * c + [False] * (n - c)
    draws = list(itertools.combinations(trials, k))
    hits = sum((all(d) if all_pass else any(d)) for d in draws)
    return hits / len(draws)


@pytest.mark.parametrize("n", [1, 3, 6, 9])
def test_pass_at_k_and_pass_hat_k_are_the_draw_probabilities(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_pass_at_k_by_enumeration(n, c, k, all_pass=False))
            assert pass_hat_k(n, c, k) == pytest.approx(_pass_at_k_by_enumeration(n, c, k, all_pass=True))
            assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_pass_at_1_is_the_pass_rate_and_k_past_n_is_refused() -> None:
    assert pass_at_k(200, 37, 1) == pytest.approx(37 / 200)
    assert pass_hat_k(200, 37, 1) == pytest.approx(37 / 200)
    assert 0.0 < pass_at_k(10_000, 5, 100) < 1.0  # the product form does not overflow
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(5, 2, 6)
    with pytest.raises(ValueError, match="k <= n"):
        pass_hat_k(5, 2, 0)


def test_bootstrap_of_the_median_agrees_with_scipy() -> None:
    rng = random.Random(3)
    data = [rng.lognormvariate(0, 0.6) for _ in range(40)]
    ours = bootstrap_interval(data, resamples=20_000, seed=1)
    ref = stats.bootstrap(
        (data,), statistics.median, n_resamples=20_000, method="percentile", random_state=1, vectorized=False
    ).confidence_interval
    spread = max(data) - min(data)
    assert ours.value == pytest.approx(statistics.median(data))
    assert ours.low == pytest.approx(ref.low, abs=0.03 * spread)
    assert ours.high == pytest.approx(ref.high, abs=0.03 * spread)
    assert bootstrap_interval(data, seed=5) == bootstrap_interval(data, seed=5)  # seeded: a report reads the same


def test_one_value_bootstraps_to_itself() -> None:
    assert bootstrap_interval([2.5]) == Estimate(2.5, 2.5, 2.5, 1, "bootstrap")


@pytest.mark.parametrize("m", [0, 1, 2, 5, 13, 40, 101])
def test_mcnemar_exact_is_scipys_binomial_test_on_the_discordant_pairs(m: int) -> None:
    for b in range(m + 1):
        c = m - b
        ref = 1.0 if m == 0 else stats.binomtest(min(b, c), m, 0.5).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(ref, abs=1e-12)


def test_paired_bootstrap_agrees_with_scipy_paired() -> None:
    rng = random.Random(11)
    a = [rng.gauss(10, 2) for _ in range(30)]
    b = [x + rng.gauss(1.5, 1) for x in a]
    ours = paired_bootstrap(a, b, resamples=10_000, seed=2)
    ref = stats.bootstrap(
        (a, b),
        lambda x, y: statistics.median(y) - statistics.median(x),
        paired=True,
        vectorized=False,
        n_resamples=10_000,
        method="percentile",
        random_state=2,
    ).confidence_interval
    assert ours.value == pytest.approx(statistics.median(b) - statistics.median(a))
    assert ours.low == pytest.approx(ref.low, abs=0.25)
    assert ours.high == pytest.approx(ref.high, abs=0.25)
    with pytest.raises(ValueError, match="one value each per pair"):
        paired_bootstrap([1.0], [1.0, 2.0])


def _simulate_pairs(rng: random.Random, n: int, p_a: float, p_b: float) -> PairedCounts:
    return PairedCounts.from_pairs([(rng.random() < p_a, rng.random() < p_b) for _ in range(n)])


def test_paired_difference_covers_the_true_difference() -> None:
    rng = random.Random(7)
    hits, sims = 0, 2000
    for _ in range(sims):
        est = paired_difference(_simulate_pairs(rng, 40, 0.5, 0.7))
        hits += est.low <= 0.2 <= est.high
    assert 0.93 <= hits / sims <= 0.985


def test_paired_difference_reads_the_table_the_right_way_round() -> None:
    est = paired_difference(PairedCounts(both=10, only_a=0, only_b=10, neither=0))
    assert est.value == pytest.approx(0.5)  # B passed 20 of 20, A 10 of 20
    assert 0.2 < est.low < 0.5 < est.high <= 1.0
    assert paired_difference(PairedCounts(both=10, only_a=10, only_b=0, neither=0)).value == pytest.approx(-0.5)


def test_identical_coin_flips_are_not_called_different() -> None:
    """200 simulated comparisons of two aliases that pass with p = 0.5 each, 2 packets x 20 repeats."""
    rng = random.Random(2026)
    false_alarms = sum(
        mcnemar_exact(c.only_a, c.only_b) < 0.05 for c in (_simulate_pairs(rng, 40, 0.5, 0.5) for _ in range(200))
    )
    assert false_alarms <= 10  # >= 95 % "no detectable difference"


def test_coin_flip_against_always_passes_is_called_different() -> None:
    rng = random.Random(5)
    detected = sum(
        mcnemar_exact(c.only_a, c.only_b) < 0.05 for c in (_simulate_pairs(rng, 40, 0.5, 1.0) for _ in range(200))
    )
    assert detected >= 198


def test_power_by_enumeration_matches_simulation() -> None:
    rng = random.Random(13)
    exact = mcnemar_power(30, 0.4, 0.75)
    sims = 4000
    runs = (_simulate_pairs(rng, 30, 0.4, 0.75) for _ in range(sims))
    hit = sum(mcnemar_exact(c.only_a, c.only_b) < 0.05 for c in runs)
    se = math.sqrt(exact * (1 - exact) / sims)
    assert abs(hit / sims - exact) < 4 * se
    assert mcnemar_power(30, 0.5, 0.5) <= 0.05  # the exact test holds its size


def test_pairs_needed_and_minimum_detectable_difference_agree() -> None:
    n = pairs_needed(0.2)
    assert n is not None and 80 < n < 140  # the normal approximation gives ~98 for 0.4 vs 0.6
    assert mcnemar_power(n, 0.4, 0.6) >= 0.8 > mcnemar_power(n - 1, 0.4, 0.6)
    mdd = minimum_detectable_difference(n)
    assert mdd is not None and mdd <= 0.2
    assert minimum_detectable_difference(1) is None  # one pair can never reach p < 0.05
    assert pairs_needed(0.1) > pairs_needed(0.2) > pairs_needed(0.3)
