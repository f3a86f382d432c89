"""Cart, invoice and refund arithmetic for the shop back office."""

from .cart import Cart, CartLine
from .catalog import Catalog, Product
from .invoice import InvoiceLine, invoice_lines, render_invoice
from .refunds import refund_amount

__all__ = [
    "Cart",
    "CartLine",
    "Catalog",
    "InvoiceLine",
    "Product",
    "invoice_lines",
    "refund_amount",
    "render_invoice",
]
