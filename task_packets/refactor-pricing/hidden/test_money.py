"""Hidden gate: shop.money offers the three helpers the prompt asks for."""

from decimal import Decimal as D

import pytest

from shop import money


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (D("1.005"), D("1.01")),
        (D("0.125"), D("0.13")),
        (D("2.675"), D("2.68")),
        (D("-1.005"), D("-1.01")),
        (D("3"), D("3.00")),
        (D("0.004"), D("0.00")),
    ],
)
def test_round_cents_half_up(amount, expected):
    result = money.round_cents(amount)
    assert isinstance(result, D)
    assert result == expected
    assert result.as_tuple().exponent == -2


def test_apply_discount():
    assert money.apply_discount(D("59.97"), D("12.5")) == D("52.47")
    assert money.apply_discount(D("0.25"), 50) == D("0.13")
    assert money.apply_discount(D("8.50"), 0) == D("8.50")
    assert money.apply_discount(D("8.50"), 100) == D("0.00")


@pytest.mark.parametrize("pct", [D("-0.01"), -1, D("100.5"), 250])
def test_apply_discount_range(pct):
    with pytest.raises(ValueError):
        money.apply_discount(D("10.00"), pct)


def test_tax_on():
    assert money.tax_on(D("52.47"), D("0.20")) == D("10.49")
    assert money.tax_on(D("0.13"), D("0.20")) == D("0.03")
    assert money.tax_on(D("12.00"), D("0")) == D("0.00")
