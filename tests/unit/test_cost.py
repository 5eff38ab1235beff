"""domain.cost: USD per 1M tokens from a price table."""

from __future__ import annotations

import pytest

from core.settings import Settings
from domain.cost import price_usd

PRICES = {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00)}


@pytest.mark.parametrize(
    ("model", "tokens_in", "tokens_out", "expected"),
    [
        ("gpt-4o-mini", 1_000_000, 1_000_000, 0.75),
        ("gpt-4o-mini", 1_000_000, 0, 0.15),
        ("gpt-4o-mini", 0, 1_000_000, 0.60),
        ("gpt-4o", 1000, 500, 0.0075),  # 1000*2.5/1e6 + 500*10/1e6
        ("gpt-4o", 0, 0, 0.0),
        ("unknown-model", 1_000_000, 1_000_000, 0.0),
        ("GPT-4O", 1000, 500, 0.0),  # lookup is exact
    ],
)
def test_price_usd(model: str, tokens_in: int, tokens_out: int, expected: float) -> None:
    assert price_usd(model, tokens_in, tokens_out, PRICES) == pytest.approx(expected, abs=1e-12)


def test_price_usd_rounds_to_8_decimals() -> None:
    # 1 input token of gpt-4o-mini = 0.15e-6 = 0.00000015 (exactly representable at 8 dp)
    assert price_usd("gpt-4o-mini", 1, 0, PRICES) == 0.00000015
    # 1 token at 0.123456789/1M = 1.23456789e-7 -> 1.2e-7 after rounding to 8 dp
    assert price_usd("m", 1, 0, {"m": (0.123456789, 0.0)}) == 0.00000012
    # below half of the last place rounds to zero
    assert price_usd("m", 1, 0, {"m": (0.004, 0.0)}) == 0.0
    value = price_usd("gpt-4o", 123_457, 98_765, PRICES)
    assert value == round(value, 8)
    assert value == pytest.approx(123_457 * 2.5e-6 + 98_765 * 10e-6, abs=5e-9)


def test_default_settings_price_table_matches() -> None:
    prices = Settings.model_fields["model_prices"].default
    assert price_usd("gpt-4o-mini", 1_000_000, 1_000_000, prices) == 0.75
    assert price_usd("gpt-4o", 1000, 500, prices) == 0.0075
