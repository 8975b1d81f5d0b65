"""The cost ceiling: estimate a request's cost before it is sent, refuse what could cross.

Estimates are deliberately pessimistic so the ceiling holds: input tokens are
counted as one per three characters (English BPE averages about four) plus a
per-message overhead, and output as the request's `max_tokens` (or
DEFAULT_OUTPUT_TOKENS when the prompt sets none), priced as the model asked
for (what answers is known only afterwards). A call is sent only if
what is spent, plus what is reserved by calls in flight, plus its estimate
stays within the ceiling; once one is refused, no new call is scheduled.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent_evals.errors import EvaluationError
from agent_evals.pricing import Rate
from agent_evals.providers.base import ChatRequest, Usage, tools_json

if TYPE_CHECKING:
    from agent_evals.models import Message

CHARS_PER_TOKEN = 3.0
MESSAGE_OVERHEAD_TOKENS = 8
DEFAULT_OUTPUT_TOKENS = 1024


class BudgetExceeded(EvaluationError):
    """The next call could cross the cost ceiling; it was not sent."""


@dataclass(frozen=True, slots=True)
class Estimate:
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


def estimate(request: ChatRequest, rate: Rate | None) -> Estimate:
    """A pessimistic estimate of the tokens and cost of sending `request`.

    Args:
        request: the rendered request.
        rate: the price of the model asked for; None when unpriced (the cost is then None).
    """
    input_tokens = sum(
        math.ceil(_chars(m) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS for m in request.messages
    )
    if request.tools:
        # The tools' names, descriptions and schemas are sent with every call of an agent.
        input_tokens += math.ceil(len(_compact(tools_json(request.tools, None))) / CHARS_PER_TOKEN)
    output_tokens = request.model.max_tokens or DEFAULT_OUTPUT_TOKENS
    # Counted as uncached input. A prompt-cache write costs up to 1.25 times that, which counting
    # three characters a token where English averages four (1.33 times) more than covers.
    cost = rate.cost(Usage(input_tokens, output_tokens)) if rate is not None else None
    return Estimate(input_tokens, output_tokens, cost)


def _chars(message: Message) -> int:
    """What a message sends: its text, and its tool calls' names and arguments as JSON."""
    if not message.tool_calls:
        return len(message.content)
    return len(message.content) + len(_compact([[c.name, c.arguments] for c in message.tool_calls]))


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


class Budget:
    """Spent and reserved money against an optional ceiling; one per run."""

    def __init__(self, ceiling_usd: float | None) -> None:
        self.ceiling = ceiling_usd
        self.spent = 0.0
        self.reserved = 0.0
        self.exhausted = False

    def reserve(self, cost: float | None) -> float:
        """Reserve `cost` for a call about to be sent; return the amount reserved.

        Raises:
            BudgetExceeded: the call could cross the ceiling (and from then on every call is refused).
        """
        if self.ceiling is None:
            return 0.0
        if cost is None:
            raise BudgetExceeded("cannot estimate the cost of a call to an unpriced model under --max-cost")
        if self.exhausted or self.spent + self.reserved + cost > self.ceiling:
            self.exhausted = True
            raise BudgetExceeded(
                f"the next call (up to ${cost:.4f}) could cross the ${self.ceiling:g} ceiling "
                f"(spent ${self.spent:.4f}, in flight ${self.reserved:.4f})"
            )
        self.reserved += cost
        return cost

    def settle(self, reserved: float, actual: float | None) -> None:
        """Replace a reservation with what the call actually cost (its estimate when unknown)."""
        self.reserved -= reserved
        self.spent += actual if actual is not None else reserved
