"""Hidden gate (guard): the public behaviour of cart, invoice and refunds is unchanged.

Golden values were taken from the code before the refactor. They pass on the
untouched workspace and must still pass after it.
"""

from decimal import Decimal as D

import pytest

from shop import Cart, Catalog, Product, invoice_lines, refund_amount, render_invoice


@pytest.fixture
def cart():
    catalog = Catalog(
        [
            Product("MUG", "Enamel mug", D("8.50")),
            Product("TEE", "T-shirt", D("19.99")),
            Product("BOOK", "Field guide", D("12.00"), tax_rate=D("0.05")),
            Product("PEN", "Pen", D("0.15")),
            Product("CAP", "Cap", D("1.50"), tax_rate=D("0.10")),
        ]
    )
    cart = Cart(catalog)
    cart.add("TEE", 3, discount_percent=D("12.5"))
    cart.add("PEN", 7)
    cart.add("BOOK", 1, discount_percent=100)
    cart.add("CAP", 1)
    return cart


def line(cart, sku):
    return next(item for item in cart.lines if item.product.sku == sku)


def test_line_amounts(cart):
    got = {item.product.sku: (item.net(), item.tax()) for item in cart.lines}
    assert got == {
        "TEE": (D("52.47"), D("10.49")),
        "PEN": (D("1.05"), D("0.21")),
        "BOOK": (D("0.00"), D("0.00")),
        "CAP": (D("1.50"), D("0.15")),
    }


def test_totals(cart):
    assert (cart.subtotal(), cart.tax(), cart.total()) == (D("55.02"), D("10.85"), D("65.87"))


def test_rounding_is_half_up_not_bankers():
    catalog = Catalog([Product("GUM", "Gum", D("0.25"))])
    cart = Cart(catalog)
    cart.add("GUM", 1, discount_percent=50)
    assert line(cart, "GUM").net() == D("0.13")
    assert line(cart, "GUM").tax() == D("0.03")


def test_invoice_text(cart):
    assert render_invoice(cart, "X-1") == (
        "INVOICE X-1\n"
        "SKU         Qty         Net       Tax\n"
        "BOOK          1        0.00      0.00\n"
        "CAP           1        1.50      0.15\n"
        "PEN           7        1.05      0.21\n"
        "TEE           3       52.47     10.49\n"
        "Subtotal                        55.02\n"
        "Tax                             10.85\n"
        "Total                           65.87\n"
    )


def test_invoice_lines_agree_with_cart(cart):
    for item in invoice_lines(cart):
        assert (item.net, item.tax) == (line(cart, item.sku).net(), line(cart, item.sku).tax())


@pytest.mark.parametrize(
    ("sku", "returned", "fee", "expected"),
    [
        ("TEE", 1, 0, D("20.99")),
        ("TEE", 1, 1, D("20.78")),
        ("TEE", 3, D("33.3"), D("41.99")),
        ("PEN", 7, D("33.3"), D("0.84")),
        ("BOOK", 1, 0, D("0.00")),
        ("CAP", 1, 1, D("1.63")),
    ],
)
def test_refunds(cart, sku, returned, fee, expected):
    assert refund_amount(line(cart, sku), returned, fee) == expected


def test_restocking_fee_is_rounded_on_its_own():
    # 1% of 1.50 is 0.015 -> a fee of 0.02, so 1.48 back (not 1.50 * 0.99 = 1.485 -> 1.49).
    cart = Cart(Catalog([Product("STK", "Sticker", D("1.50"), tax_rate=D("0"))]))
    cart.add("STK")
    assert refund_amount(line(cart, "STK"), 1, 1) == D("1.48")


@pytest.mark.parametrize("pct", [D("-1"), D("100.01")])
def test_discount_out_of_range_is_refused_everywhere(pct):
    cart = Cart(Catalog([Product("MUG", "Enamel mug", D("8.50"))]))
    bad = cart.add("MUG", 2, discount_percent=pct)
    with pytest.raises(ValueError):
        bad.net()
    with pytest.raises(ValueError):
        bad.tax()
    with pytest.raises(ValueError):
        invoice_lines(cart)
    with pytest.raises(ValueError):
        refund_amount(bad, 1)


@pytest.mark.parametrize(("returned", "fee"), [(0, 0), (3, 0), (1, -5), (1, 101)])
def test_refund_arguments_checked(returned, fee):
    cart = Cart(Catalog([Product("MUG", "Enamel mug", D("8.50"))]))
    with pytest.raises(ValueError):
        refund_amount(cart.add("MUG", 2), returned, fee)
