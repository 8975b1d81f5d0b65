"""Token prices and the cost of a call.

The default table holds public list prices in USD per million tokens, as
published by the vendors in 2025; prices change, so `prices:` in
agent-evals.yaml overrides or extends it. A model with no known price costs
`None` (unknown), never a made-up zero, and reports say so.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent_evals.models import Price
from agent_evals.providers.base import Usage

DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(input_per_mtok=2.50, output_per_mtok=10.00),
    "gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.60),
    "gpt-4.1": Price(input_per_mtok=2.00, output_per_mtok=8.00),
    "gpt-4.1-mini": Price(input_per_mtok=0.40, output_per_mtok=1.60),
    "gpt-4.1-nano": Price(input_per_mtok=0.10, output_per_mtok=0.40),
    "o4-mini": Price(input_per_mtok=1.10, output_per_mtok=4.40),
    "claude-3-5-haiku": Price(input_per_mtok=0.80, output_per_mtok=4.00),
    "claude-3-haiku": Price(input_per_mtok=0.25, output_per_mtok=1.25),
    "claude-3-5-sonnet": Price(input_per_mtok=3.00, output_per_mtok=15.00),
    "claude-sonnet-4": Price(input_per_mtok=3.00, output_per_mtok=15.00),
    "claude-opus-4": Price(input_per_mtok=15.00, output_per_mtok=75.00),
    # The offline stand-in model costs nothing.
    "local": Price(input_per_mtok=0.0, output_per_mtok=0.0),
}


def price_for(model: str, provider_type: str, table: Mapping[str, Price]) -> Price | None:
    """The price of `model`: an exact entry, else the longest entry it starts with.

    Dated snapshots ("gpt-4o-mini-2024-07-18") take their family's price.
    """
    if provider_type == "local":
        return table.get(model) or DEFAULT_PRICES["local"]
    if model in table:
        return table[model]
    best = max((name for name in table if model.startswith(name)), key=len, default=None)
    return table[best] if best is not None else None


def cost_usd(usage: Usage | None, price: Price | None) -> float | None:
    """The cost of a call, or None when usage or price is unknown."""
    if usage is None or price is None:
        return None
    return (usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok) / 1e6


def merged_table(overrides: Mapping[str, Price]) -> dict[str, Price]:
    return {**DEFAULT_PRICES, **overrides}
