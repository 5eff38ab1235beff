"""LLM pricing (DOMAIN.md): USD per 1M input/output tokens, from a configurable table."""

from __future__ import annotations

from collections.abc import Mapping


def price_usd(
    model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, tuple[float, float]]
) -> float:
    """Cost of one call; a model missing from the table costs 0 (and is visible as such)."""
    in_price, out_price = prices.get(model, (0.0, 0.0))
    return round((input_tokens * in_price + output_tokens * out_price) / 1_000_000, 8)
