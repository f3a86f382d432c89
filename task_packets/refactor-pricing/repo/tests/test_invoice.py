from decimal import Decimal

from shop import Cart, invoice_lines, render_invoice


def test_lines_sorted_by_sku(catalog):
    cart = Cart(catalog)
    cart.add("TEE")
    cart.add("BOOK")
    assert [line.sku for line in invoice_lines(cart)] == ["BOOK", "TEE"]


def test_line_amounts_match_cart(catalog):
    cart = Cart(catalog)
    cart.add("TEE", 3, discount_percent=15)
    (line,) = invoice_lines(cart)
    assert line.net == cart.subtotal()
    assert line.tax == cart.tax()
    assert line.gross == cart.total()


def test_render(catalog):
    cart = Cart(catalog)
    cart.add("MUG", 2)
    text = render_invoice(cart, "2024-017")
    assert text.splitlines()[0] == "INVOICE 2024-017"
    assert "MUG" in text
    assert text.splitlines()[-1].endswith("20.40")
    assert Decimal(text.splitlines()[-1].split()[-1]) == cart.total()
