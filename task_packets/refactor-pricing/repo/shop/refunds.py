"""Refunds for returned units."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .cart import CartLine


def refund_amount(
    line: CartLine, returned: int, restocking_fee_percent: Decimal | int = 0
) -> Decimal:
    """Money back for ``returned`` units of ``line``, tax included, minus a restocking fee.

    The refund is what those units cost: their discounted net price plus the
    tax on it, each rounded to cents; the fee is a percentage of that, also
    rounded to cents.
    """
    if not 0 < returned <= line.quantity:
        raise ValueError(f"can return between 1 and {line.quantity} units, not {returned}")
    fee_pct = Decimal(restocking_fee_percent)
    if fee_pct < 0 or fee_pct > 100:
        raise ValueError(f"restocking fee must be between 0 and 100, got {fee_pct}")
    discount = line.discount_percent
    if discount < 0 or discount > 100:
        raise ValueError(f"discount must be between 0 and 100, got {discount}")
    units = line.product.unit_price * returned
    net = (units * (Decimal(100) - discount) / Decimal(100)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    tax = (net * line.product.tax_rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    paid = net + tax
    fee = (paid * fee_pct / Decimal(100)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return paid - fee
