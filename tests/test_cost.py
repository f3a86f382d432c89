"""The cost model: parsing ``cost:`` specs, per-call cost, break-even, $/dev-month.

The course's worked example is reproduced with the arithmetic, not the slide's
rounding (see docs/cost-and-sizing.md):

    commercial: $3/M in, $15/M out; 3,000 in + 600 out
        3,000 x 3 / 1e6 = 0.009 ; 600 x 15 / 1e6 = 0.009 ; total $0.018 per call
    self-hosted: DGX H100 at $4.5/h, 4 concurrent calls, 12 s per call
        4.5 x 12 s / 3600 = $0.015 of GPU time; / 4 concurrent calls = $0.00375 per call
    break-even: 4.5 / 0.018 = 250 calls/h  (the slide's ~$0.012 gives 375)
    capacity:   4 x 3600 / 12 = 1,200 calls/h, so 250 is reachable
"""

from __future__ import annotations

import math

import pytest

from pytest_agentbench.capacity.cost import (
    HOURS_PER_MONTH_24X7,
    WORKING_HOURS_PER_MONTH,
    CommercialCost,
    CostSpec,
    SelfHostedCost,
    break_even_calls_per_hour,
    break_even_developers,
    call_cost_usd,
    commercial_usd_per_dev_month,
    compare_costs,
    format_usd,
    parse_cost_spec,
    self_hosted_capacity_calls_per_hour,
    self_hosted_usd_per_dev_month,
    usage_cost_usd,
)
from pytest_agentbench.errors import ConfigError, ModelsFileError
from pytest_agentbench.models.calls import Usage

WHERE = "models.yaml: models.local-coder.cost"
API = CommercialCost(input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=3.0)
DGX = SelfHostedCost(gpu_hourly_usd=4.5, concurrency=4)


# --------------------------------------------------------------------------- the worked example


def test_worked_example_commercial_call_costs_0_018() -> None:
    # 3,000 x $3/M = $0.009 ; 600 x $15/M = $0.009 ; sum $0.018
    assert call_cost_usd(API, prompt_tokens=3000, completion_tokens=600) == pytest.approx(0.018)


def test_worked_example_local_call_costs_0_00375() -> None:
    # $4.5/h x 12 s / 3600 s/h = $0.015 of GPU time, shared by 4 concurrent calls -> $0.00375
    assert call_cost_usd(DGX, latency_s=12.0) == pytest.approx(0.00375)


def test_worked_example_break_even_is_250_calls_per_hour() -> None:
    # $4.5/h / $0.018 per call = 250 calls/h; above that the GPU is cheaper
    assert break_even_calls_per_hour(0.018, DGX) == pytest.approx(250.0)
    # the slide's rounded $0.012 per call is what gives its 375 calls/h
    assert break_even_calls_per_hour(0.012, DGX) == pytest.approx(375.0)


def test_worked_example_comparison() -> None:
    result = compare_costs(API, DGX, prompt_tokens=3000, completion_tokens=600, latency_s=12.0)
    assert result.commercial_call_usd == pytest.approx(0.018)
    assert result.self_hosted_call_usd == pytest.approx(0.00375)
    assert result.break_even_calls_per_hour == pytest.approx(250.0)
    # 4 slots x 3600 s / 12 s = 1,200 calls/h: the box can actually serve 250/h
    assert result.capacity_calls_per_hour == pytest.approx(1200.0)
    assert result.reachable


def test_break_even_beyond_capacity_is_unreachable() -> None:
    # 1 slot, 60 s per call -> 60 calls/h capacity; $4.5/h / $0.018 = 250 calls/h needed
    slow = SelfHostedCost(gpu_hourly_usd=4.5, concurrency=1)
    result = compare_costs(API, slow, prompt_tokens=3000, completion_tokens=600, latency_s=60.0)
    assert result.capacity_calls_per_hour == pytest.approx(60.0)
    assert not result.reachable


def test_self_hosted_at_capacity_costs_its_per_call_price() -> None:
    # hourly / capacity = 4.5 / 1200 = 0.00375: the per-call figure assumes a busy server
    assert DGX.hourly_usd / self_hosted_capacity_calls_per_hour(DGX, 12.0) == pytest.approx(
        call_cost_usd(DGX, latency_s=12.0)
    )


# --------------------------------------------------------------------------- per-call details


def test_cached_tokens_are_priced_at_the_cached_rate() -> None:
    spec = CommercialCost(input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3)
    # (3000 - 2000) x 3 + 2000 x 0.3 + 600 x 15 = 3000 + 600 + 9000 = 12,600 per M -> $0.0126
    cost = call_cost_usd(spec, prompt_tokens=3000, completion_tokens=600, cached_tokens=2000)
    assert cost == pytest.approx(0.0126)


def test_cached_price_defaults_to_input_price() -> None:
    spec = parse_cost_spec({"input_per_mtok": 3, "output_per_mtok": 15}, WHERE)
    assert spec == API
    # without a discount, caching changes nothing
    assert call_cost_usd(spec, prompt_tokens=3000, completion_tokens=600, cached_tokens=2000) == pytest.approx(0.018)


def test_gpus_multiply_the_hourly_rate() -> None:
    # 8 GPUs x $2/h = $16/h ; 10 s x 16 / 3600 / 32 slots = $0.0013888...
    spec = SelfHostedCost(gpu_hourly_usd=2.0, concurrency=32, gpus=8)
    assert spec.hourly_usd == 16.0
    assert call_cost_usd(spec, latency_s=10.0) == pytest.approx(16 * 10 / 3600 / 32)


def test_no_spec_is_unknown_never_zero() -> None:
    assert call_cost_usd(None, prompt_tokens=3000, completion_tokens=600) is None
    assert call_cost_usd(None, latency_s=12.0) is None
    assert format_usd(None) == "unknown"


def test_self_hosted_without_latency_is_unknown_not_zero() -> None:
    assert call_cost_usd(DGX, prompt_tokens=3000, completion_tokens=600) is None


def test_self_hosted_is_zero_only_when_gpu_price_is_explicitly_zero() -> None:
    free = parse_cost_spec({"gpu_hourly_usd": 0, "concurrency": 4}, WHERE)
    assert call_cost_usd(free, latency_s=12.0) == 0.0
    assert call_cost_usd(DGX, latency_s=12.0) > 0


def test_run_cost_sums_calls() -> None:
    # three calls of 4 s cost what one 12 s call costs; tokens add linearly
    assert call_cost_usd(DGX, latency_s=4.0 + 4.0 + 4.0) == pytest.approx(3 * call_cost_usd(DGX, latency_s=4.0))
    total = Usage(1000, 200) + Usage(2000, 400)
    assert usage_cost_usd(API, total) == pytest.approx(0.018)


def test_usage_not_reported_is_unknown_for_commercial_only() -> None:
    missing = Usage(0, 0, 0, reported=False)
    assert usage_cost_usd(API, missing) is None
    # a GPU-priced call costs its time whatever the token counts
    assert usage_cost_usd(DGX, missing, latency_s=12.0) == pytest.approx(0.00375)
    assert usage_cost_usd(None, Usage(3000, 600)) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt_tokens": -1}, "prompt_tokens must be a count >= 0"),
        ({"completion_tokens": -5}, "completion_tokens must be a count >= 0"),
        ({"prompt_tokens": 10, "cached_tokens": 11}, "cannot exceed prompt_tokens"),
    ],
)
def test_impossible_token_counts_are_rejected(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call_cost_usd(API, **kwargs)


@pytest.mark.parametrize("latency", [-1.0, math.nan, math.inf])
def test_impossible_latency_is_rejected(latency: float) -> None:
    with pytest.raises(ValueError, match="latency_s"):
        call_cost_usd(DGX, latency_s=latency)


def test_break_even_edges() -> None:
    assert break_even_calls_per_hour(0.0, DGX) == math.inf  # free API: self-hosting never wins
    free_gpu = SelfHostedCost(gpu_hourly_usd=0.0, concurrency=1)
    assert break_even_calls_per_hour(0.0, free_gpu) == 0.0
    assert break_even_calls_per_hour(0.018, free_gpu) == 0.0
    with pytest.raises(ValueError, match="commercial_call_usd"):
        break_even_calls_per_hour(-0.01, DGX)
    with pytest.raises(ValueError, match="latency_s"):
        self_hosted_capacity_calls_per_hour(DGX, 0.0)


# --------------------------------------------------------------------------- $/dev-month


def test_self_hosted_dev_month_24x7() -> None:
    # $4.5/h x 730 h = $3,285 per month; shared by 10 developers -> $328.50 each
    assert HOURS_PER_MONTH_24X7 == 730.0
    assert self_hosted_usd_per_dev_month(DGX, 10) == pytest.approx(328.5)


def test_self_hosted_dev_month_working_hours_and_servers() -> None:
    # $4.5/h x 176 h = $792 per server-month; 2 servers for 8 developers -> $198 each
    assert WORKING_HOURS_PER_MONTH == 176.0
    assert self_hosted_usd_per_dev_month(DGX, 8, hours_per_month=WORKING_HOURS_PER_MONTH, servers=2) == pytest.approx(
        198.0
    )


def test_commercial_dev_month_from_measured_rates() -> None:
    # one developer: 20 calls/h x (3,000 in + 600 out) = 60,000 in + 12,000 out per hour
    # 60,000 x 3 / 1e6 + 12,000 x 15 / 1e6 = 0.18 + 0.18 = $0.36/h; x 176 h = $63.36
    monthly = commercial_usd_per_dev_month(API, prompt_tokens_per_hour=60_000, completion_tokens_per_hour=12_000)
    assert monthly == pytest.approx(63.36)
    # same as calls/h x per-call cost x hours
    assert monthly == pytest.approx(20 * 0.018 * 176)


def test_commercial_dev_month_with_cache() -> None:
    spec = CommercialCost(input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3)
    # (60,000 - 40,000) x 3 + 40,000 x 0.3 + 12,000 x 15 = 60,000 + 12,000 + 180,000 = 252,000 per M
    # -> $0.252/h x 730 h = $183.96
    monthly = commercial_usd_per_dev_month(
        spec,
        prompt_tokens_per_hour=60_000,
        completion_tokens_per_hour=12_000,
        cached_tokens_per_hour=40_000,
        hours_per_month=730,
    )
    assert monthly == pytest.approx(183.96)


def test_break_even_developers() -> None:
    # GPU 24x7: $3,285/month ; API: $63.36 per dev-month -> 3285 / 63.36 = 51.85 developers
    assert break_even_developers(DGX, 63.36) == pytest.approx(3285 / 63.36)
    # a GPU kept up only in working hours: $792 / $63.36 = 12.5 developers
    assert break_even_developers(DGX, 63.36, hours_per_month=176) == pytest.approx(12.5)
    assert break_even_developers(DGX, 0.0) == math.inf


@pytest.mark.parametrize("hours", [0, -1, 745, 8760, math.nan, True])
def test_hours_per_month_must_be_one_months_hours(hours: float) -> None:
    with pytest.raises(ConfigError, match=r"hours_per_month: .*730 for 24x7 or 176"):
        self_hosted_usd_per_dev_month(DGX, 4, hours_per_month=hours)


@pytest.mark.parametrize("developers", [0, -3, 2.5, True])
def test_developers_must_be_a_positive_count(developers: int) -> None:
    with pytest.raises(ConfigError, match="developers: expected"):
        self_hosted_usd_per_dev_month(DGX, developers)


def test_bad_token_rates_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="prompt_tokens_per_hour"):
        commercial_usd_per_dev_month(API, prompt_tokens_per_hour=-1, completion_tokens_per_hour=0)
    with pytest.raises(ConfigError, match="cached_tokens_per_hour .* cannot exceed"):
        commercial_usd_per_dev_month(
            API, prompt_tokens_per_hour=10, completion_tokens_per_hour=0, cached_tokens_per_hour=20
        )
    with pytest.raises(ConfigError, match="commercial_dev_month_usd"):
        break_even_developers(DGX, -1.0)


# --------------------------------------------------------------------------- parsing


def test_parse_commercial() -> None:
    spec = parse_cost_spec({"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cached_input_per_mtok": 0.3}, WHERE)
    assert spec == CommercialCost(3.0, 15.0, 0.3)
    assert isinstance(spec, CostSpec)
    assert spec.kind == "commercial"
    assert spec.describe() == "$3/M in, $15/M out, $0.3/M cached in"


def test_parse_self_hosted() -> None:
    spec = parse_cost_spec({"gpu_hourly_usd": 4.5, "concurrency": 4}, WHERE)
    assert spec == DGX
    assert isinstance(spec, CostSpec)
    assert spec.kind == "self-hosted"
    assert spec.describe() == "$4.5/GPU-h, 4 concurrent calls"
    eight = parse_cost_spec({"gpu_hourly_usd": 2, "concurrency": 3.5, "gpus": 8}, WHERE)
    assert eight == SelfHostedCost(2.0, 3.5, 8)  # a measured mean concurrency may be fractional
    assert eight.describe() == "$2/GPU-h x 8 GPUs, 3.5 concurrent calls"


@pytest.mark.parametrize("mapping", [None, {}])
def test_no_cost_spec_is_none(mapping: dict[str, object] | None) -> None:
    assert parse_cost_spec(mapping, WHERE) is None


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"gpu_hourly": 4.5, "concurrency": 4},
            r"models\.local-coder\.cost: unknown key 'gpu_hourly' \(did you mean 'gpu_hourly_usd'\?\); allowed keys",
        ),
        (
            {"input_per_mtok": 3, "output_per_mtok": 15, "gpu_hourly_usd": 4.5},
            r"cost: mixes commercial keys \(input_per_mtok, output_per_mtok\) with self-hosted keys "
            r"\(gpu_hourly_usd\)",
        ),
        ({"input_per_mtok": 3}, r"cost: missing 'output_per_mtok'"),
        ({"cached_input_per_mtok": 0.3}, r"cost: missing 'input_per_mtok'"),
        ({"gpu_hourly_usd": 4.5}, r"cost: missing 'concurrency' \(calls the server serves at once\)"),
        ({"concurrency": 4}, r"cost: missing 'gpu_hourly_usd'"),
        ({"input_per_mtok": -3, "output_per_mtok": 15}, r"cost\.input_per_mtok: a price cannot be negative, found -3"),
        (
            {"input_per_mtok": "3.0", "output_per_mtok": 15},
            r"cost\.input_per_mtok: expected a number \(write it without quotes\), found a string",
        ),
        ({"input_per_mtok": True, "output_per_mtok": 15}, r"cost\.input_per_mtok: expected a number"),
        ({"input_per_mtok": math.inf, "output_per_mtok": 15}, r"cost\.input_per_mtok: expected a finite number"),
        (
            {"input_per_mtok": 3, "output_per_mtok": 15, "cached_input_per_mtok": -0.1},
            r"cost\.cached_input_per_mtok: a price cannot be negative",
        ),
        ({"gpu_hourly_usd": -1, "concurrency": 4}, r"cost\.gpu_hourly_usd: a price cannot be negative"),
        ({"gpu_hourly_usd": 4.5, "concurrency": 0}, r"cost\.concurrency: .*\(>= 1\), found 0; use 1"),
        ({"gpu_hourly_usd": 4.5, "concurrency": 0.5}, r"cost\.concurrency: .*found 0\.5"),
        ({"gpu_hourly_usd": 4.5, "concurrency": "4"}, r"cost\.concurrency: expected a number"),
        ({"gpu_hourly_usd": 4.5, "concurrency": 4, "gpus": 0}, r"cost\.gpus: expected a whole number of GPUs"),
        ({"gpu_hourly_usd": 4.5, "concurrency": 4, "gpus": 1.5}, r"cost\.gpus: expected a whole number"),
    ],
)
def test_parse_rejects(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_cost_spec(mapping, WHERE)
    assert str(info.value).startswith(WHERE)


def test_parse_rejects_a_non_mapping() -> None:
    with pytest.raises(ConfigError, match=r"cost: expected a mapping such as .* found a number"):
        parse_cost_spec(4.5, WHERE)  # type: ignore[arg-type]


def test_parse_raises_the_callers_error_class() -> None:
    with pytest.raises(ModelsFileError):
        parse_cost_spec({"input_per_mtok": 3}, WHERE, error=ModelsFileError)


def test_specs_are_frozen() -> None:
    with pytest.raises(AttributeError):
        DGX.concurrency = 8  # type: ignore[misc]


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (None, "unknown"),
        (0.0, "$0"),
        (0.018, "$0.018"),
        (0.00375, "$0.00375"),
        (1234.5, "$1,234.50"),
        (328.5, "$328.50"),
        (0.0000417, "$4.17e-05"),
    ],
)
def test_format_usd(amount: float | None, text: str) -> None:
    assert format_usd(amount) == text
