"""A shopping cart: lines, per-line discounts, tax and totals."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .catalog import Catalog, Product


@dataclass
class CartLine:
    product: Product
    quantity: int
    discount_percent: Decimal = Decimal(0)

    def net(self) -> Decimal:
        """Price of the line after its discount, rounded to cents."""
        gross = self.product.unit_price * self.quantity
        if not Decimal(0) <= self.discount_percent <= Decimal(100):
            raise ValueError(f"discount must be between 0 and 100, got {self.discount_percent}")
        discounted = gross * (Decimal(100) - self.discount_percent) / Decimal(100)
        return discounted.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def tax(self) -> Decimal:
        """Tax on the discounted line, rounded to cents."""
        return (self.net() * self.product.tax_rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class Cart:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._lines: dict[str, CartLine] = {}

    def add(self, sku: str, quantity: int = 1, discount_percent: Decimal | int = 0) -> CartLine:
        """Add ``quantity`` units of ``sku``; adding a SKU again raises its quantity."""
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, got {quantity}")
        product = self._catalog.get(sku)
        line = self._lines.get(sku)
        if line is None:
            line = CartLine(product, 0, Decimal(discount_percent))
            self._lines[sku] = line
        line.quantity += quantity
        return line

    def remove(self, sku: str) -> None:
        self._lines.pop(sku, None)

    @property
    def lines(self) -> list[CartLine]:
        return list(self._lines.values())

    def subtotal(self) -> Decimal:
        return sum((line.net() for line in self._lines.values()), Decimal("0.00"))

    def tax(self) -> Decimal:
        return sum((line.tax() for line in self._lines.values()), Decimal("0.00"))

    def total(self) -> Decimal:
        return self.subtotal() + self.tax()
