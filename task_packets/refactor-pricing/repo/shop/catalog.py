"""Products and the price list."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price: Decimal
    tax_rate: Decimal = Decimal("0.20")


class Catalog:
    """Products by SKU."""

    def __init__(self, products: Iterable[Product] = ()) -> None:
        self._by_sku: dict[str, Product] = {}
        for product in products:
            self.add(product)

    def add(self, product: Product) -> None:
        if product.sku in self._by_sku:
            raise ValueError(f"duplicate SKU {product.sku!r}")
        self._by_sku[product.sku] = product

    def get(self, sku: str) -> Product:
        try:
            return self._by_sku[sku]
        except KeyError:
            raise KeyError(f"unknown SKU {sku!r}") from None

    def __contains__(self, sku: object) -> bool:
        return sku in self._by_sku

    def __len__(self) -> int:
        return len(self._by_sku)
