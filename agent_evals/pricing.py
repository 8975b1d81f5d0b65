"""Token prices and the cost of a call.

Prices come from genai-prices (github.com/pydantic/genai-prices), a maintained
database of the vendors' list prices, read from the snapshot bundled with the
installed package: agent-evals never asks it to fetch newer data, so pricing
makes no network call and one version of the package prices a run the same way
every time (upgrade the package for new prices).

A model is found by its name or a snapshot the database lists (`gpt-4o-2024-08-06`
is gpt-4o), never by a prefix (`claude-opus-4-5` is not `claude-opus-4`);
`prices:` in agent-evals.yaml sets the price of a model name and wins over the
database. A call is priced by the model that answered (`Completion.model`: a
snapshot, or the model an agent framework says it used), else by the model asked
for. A model priced nowhere costs None (unpriced), never a made-up zero; calls to
a provider type registered `free` (`local`) cost nothing.

`Usage.input_tokens` are the uncached input tokens; prompt-cache reads and writes
are priced at their own rates (the input rate when a price names none).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from agent_evals.models import Price
from agent_evals.providers import PROVIDERS
from agent_evals.providers.base import Usage

__all__ = ["Prices", "Rate"]


@dataclass(frozen=True, slots=True)
class Rate:
    """How one model is priced.

    Attributes:
        model: the model name it is priced under.
        source: "config" (`prices:` in agent-evals.yaml), "genai-prices", or "free".
        price: the configured price, for source "config".
        vendor: the provider id genai-prices lists the model under, for source "genai-prices"
            (None: found by the model name alone).
    """

    model: str
    source: Literal["config", "genai-prices", "free"]
    price: Price | None = None
    vendor: str | None = None

    def cost(self, usage: Usage) -> float:
        """The cost in USD of `usage` at this rate."""
        if self.source == "free":
            return 0.0
        if self.price is not None:
            return _config_cost(self.price, usage)
        return _database_cost(self.model, self.vendor, usage)


class Prices:
    """The prices of a run: `prices:` from agent-evals.yaml over genai-prices' bundled snapshot."""

    def __init__(self, overrides: Mapping[str, Price]) -> None:
        self.overrides = dict(overrides)

    def rate(self, provider_type: str, *models: str | None) -> Rate | None:
        """The rate of a call to a provider of `provider_type`, by the first of `models` priced.

        Args:
            provider_type: the registered provider type (a `free` type costs nothing).
            models: model names, most specific first (the one that answered, then the one
                asked for); empty and None names are skipped.

        Returns:
            A configured price for any of the names, else the database's, else None (unpriced).
        """
        spec = PROVIDERS.get(provider_type)
        names = [name for name in dict.fromkeys(models) if name]
        if spec is not None and spec.free:
            return Rate(model=names[0] if names else provider_type, source="free")
        for name in names:
            if name in self.overrides:
                return Rate(model=name, source="config", price=self.overrides[name])
        for name in names:
            listed = _database_rate(name, provider_type)
            if listed is not None:
                return listed
        return None

    def cost(self, usage: Usage | None, provider_type: str, *models: str | None) -> float | None:
        """The cost in USD of a call, or None when its usage or its price is unknown.

        Args:
            usage: the tokens the provider counted.
            provider_type: the registered provider type.
            models: as for `rate`: the model that answered, then the one asked for.
        """
        rate = self.rate(provider_type, *models)
        if rate is not None and rate.source == "free":
            return 0.0
        if usage is None or rate is None:
            return None
        return rate.cost(usage)


def _config_cost(price: Price, usage: Usage) -> float:
    read = price.input_per_mtok if price.cache_read_per_mtok is None else price.cache_read_per_mtok
    write = price.input_per_mtok if price.cache_write_per_mtok is None else price.cache_write_per_mtok
    return (
        usage.input_tokens * price.input_per_mtok
        + usage.output_tokens * price.output_per_mtok
        + usage.cache_read_tokens * read
        + usage.cache_write_tokens * write
    ) / 1e6


@lru_cache(maxsize=256)
def _database_rate(model: str, provider_type: str) -> Rate | None:
    """The rate genai-prices lists `model` at, or None when it does not list it.

    The provider type is tried first as the vendor (an `openai` call is OpenAI's price list);
    then the vendor is inferred from the model name, because an OpenAI-compatible proxy
    serves every vendor's models; last, `vendor/model` as LiteLLM and OpenRouter name them.
    """
    # Imported here: the database is 1.6 MB of Python, and `--help` must stay fast.
    from genai_prices import Usage as DatabaseUsage
    from genai_prices import calc_price

    attempts: list[str | None] = [provider_type, None] + (["litellm"] if "/" in model else [])
    for provider_id in attempts:
        try:
            calc_price(DatabaseUsage(), model, provider_id=provider_id)
        except LookupError:
            continue
        return Rate(model=model, source="genai-prices", vendor=provider_id)
    return None


def _database_cost(model: str, vendor: str | None, usage: Usage) -> float:
    counts = (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens)
    # genai-prices' own arithmetic (a unit registry, Decimals) takes 70 us a call, more than the
    # HTTP client's; a flat price is linear in the four counts, so it is worked out once a minute
    # (a price may depend on the time of day) and applied by multiplying.
    linear = _linear(model, vendor, int(time.time() // 60))
    if linear is None:
        return _exact_cost(model, vendor, counts)
    fixed, *per_token = linear
    return fixed + math.fsum(n * price for n, price in zip(counts, per_token, strict=True))


_BASIS = 1_000_000
"""Tokens of each kind the linear form is measured at (exact in genai-prices' Decimals)."""


@lru_cache(maxsize=256)
def _linear(model: str, vendor: str | None, minute: int) -> tuple[float, float, float, float, float] | None:
    """(cost of a call with no tokens, then per input, output, cache read and cache write token), or
    None when the price is tiered (a rate that changes past a number of tokens is not linear)."""
    from genai_prices import Usage as DatabaseUsage
    from genai_prices import calc_price
    from genai_prices.types import TieredPrices

    prices = calc_price(DatabaseUsage(), model, provider_id=vendor).model_price
    if any(isinstance(value, TieredPrices) for value in vars(prices).values()):
        return None
    fixed = _exact_cost(model, vendor, (0, 0, 0, 0))
    per_token = [
        (_exact_cost(model, vendor, tuple(_BASIS if i == k else 0 for i in range(4))) - fixed) / _BASIS
        for k in range(4)
    ]
    per_input, per_output, per_read, per_write = per_token
    return fixed, per_input, per_output, per_read, per_write


def _exact_cost(model: str, vendor: str | None, counts: tuple[int, ...]) -> float:
    from genai_prices import Usage as DatabaseUsage
    from genai_prices import calc_price

    input_tokens, output_tokens, cache_read, cache_write = counts
    # genai-prices counts cache reads and writes inside input_tokens; ours are apart.
    counted = DatabaseUsage(
        input_tokens=input_tokens + cache_read + cache_write,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    return float(calc_price(counted, model, provider_id=vendor).total_price)
