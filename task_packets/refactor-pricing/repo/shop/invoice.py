"""Invoice lines and the plain-text invoice we email to customers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .cart import Cart

CENT = Decimal("0.01")


@dataclass(frozen=True)
class InvoiceLine:
    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    discount_percent: Decimal
    net: Decimal
    tax: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.tax


def invoice_lines(cart: Cart) -> list[InvoiceLine]:
    """One invoice line per cart line, sorted by SKU."""
    result = []
    for line in sorted(cart.lines, key=lambda cart_line: cart_line.product.sku):
        product = line.product
        pct = line.discount_percent
        if pct < 0 or pct > 100:
            raise ValueError(f"discount out of range: {pct}")
        amount = product.unit_price * line.quantity
        net = (amount * (Decimal(100) - pct) / Decimal(100)).quantize(CENT, rounding=ROUND_HALF_UP)
        tax = (net * product.tax_rate).quantize(CENT, rounding=ROUND_HALF_UP)
        result.append(
            InvoiceLine(product.sku, product.name, line.quantity, product.unit_price, pct, net, tax)
        )
    return result


def render_invoice(cart: Cart, number: str) -> str:
    """The invoice as fixed-width text."""
    lines = invoice_lines(cart)
    out = [f"INVOICE {number}", f"{'SKU':<10}{'Qty':>5}{'Net':>12}{'Tax':>10}"]
    for item in lines:
        out.append(f"{item.sku:<10}{item.quantity:>5}{item.net:>12}{item.tax:>10}")
    net_total = sum((item.net for item in lines), Decimal("0.00"))
    tax_total = sum((item.tax for item in lines), Decimal("0.00"))
    out.append(f"{'Subtotal':<15}{net_total:>22}")
    out.append(f"{'Tax':<15}{tax_total:>22}")
    out.append(f"{'Total':<15}{net_total + tax_total:>22}")
    return "\n".join(out) + "\n"
