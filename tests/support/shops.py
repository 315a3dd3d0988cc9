"""The merchant most API tests sell as, on the test's ``psp``. Its name is
not ASCII, so every test that reads it back also checks that a name survives
the round trip through the database and JSON."""

from __future__ import annotations

import pytest

from tests.support.psp import Merchant, Psp

SHOP_NAME = "Café Lumière"


@pytest.fixture
async def shop(psp: Psp) -> Merchant:
    return await psp.merchant(SHOP_NAME)
