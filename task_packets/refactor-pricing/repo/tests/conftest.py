from decimal import Decimal

import pytest

from shop import Catalog, Product


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(
        [
            Product("MUG", "Enamel mug", Decimal("8.50")),
            Product("TEE", "T-shirt", Decimal("19.99")),
            Product("BOOK", "Field guide", Decimal("12.00"), tax_rate=Decimal("0.05")),
        ]
    )
