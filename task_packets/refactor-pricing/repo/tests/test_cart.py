from decimal import Decimal

import pytest

from shop import Cart


def test_empty_cart_totals_zero(catalog):
    cart = Cart(catalog)
    assert cart.subtotal() == Decimal("0.00")
    assert cart.total() == Decimal("0.00")


def test_totals_without_discount(catalog):
    cart = Cart(catalog)
    cart.add("MUG", 2)
    cart.add("BOOK")
    assert cart.subtotal() == Decimal("29.00")
    assert cart.tax() == Decimal("4.00")
    assert cart.total() == Decimal("33.00")


def test_adding_again_raises_quantity(catalog):
    cart = Cart(catalog)
    cart.add("TEE")
    line = cart.add("TEE", 2)
    assert line.quantity == 3
    assert len(cart.lines) == 1


def test_discount_applies_per_line(catalog):
    cart = Cart(catalog)
    cart.add("TEE", 1, discount_percent=10)
    assert cart.subtotal() == Decimal("17.99")
    assert cart.tax() == Decimal("3.60")


def test_unknown_sku(catalog):
    with pytest.raises(KeyError, match="NOPE"):
        Cart(catalog).add("NOPE")


def test_quantity_must_be_positive(catalog):
    with pytest.raises(ValueError):
        Cart(catalog).add("MUG", 0)
