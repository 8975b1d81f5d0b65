"""`budget`: the case's run stayed within limits on steps, calls, tokens and cost.

```yaml
- type: budget
  max_steps: 8          # model calls + tool calls
  max_tool_calls: 5
  max_model_calls: 4
  max_tokens: 20000     # input + output + cache read + cache write, over every model call
  max_cost_usd: 0.05
```

Counts come from the trajectory (`Sample.steps`): model steps, and tool calls as
`agent_evals.graders._trajectory.calls_of` finds them (a call the model asked for counts even
if nothing answered it). A case with no steps is one model call and its tool calls. Tokens
and cost are summed over the model steps; when one step has no usage (or no price), the
grader cannot judge and says which step (an error, never a pass). A case with no steps is
judged on the tokens and cost of its one call (`Sample.usage`, `Sample.cost_usd`).
The reason names what went over: "7 tool calls (budget 5)".
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from agent_evals.errors import GraderError
from agent_evals.graders import base
from agent_evals.graders._trajectory import calls_of, model_calls
from agent_evals.graders.base import Grade, GraderBase, Sample

_LIMITS = ("max_steps", "max_tool_calls", "max_model_calls", "max_tokens", "max_cost_usd")


class BudgetOptions(base.Options):
    """Options of `budget`: at least one limit."""

    max_steps: int | None = Field(default=None, ge=0, description="Most steps: model calls plus tool calls.")
    max_tool_calls: int | None = Field(default=None, ge=0, description="Most tool calls.")
    max_model_calls: int | None = Field(default=None, ge=0, description="Most model calls.")
    max_tokens: int | None = Field(
        default=None, ge=0, description="Most tokens over all model calls (input, output and cache)."
    )
    max_cost_usd: float | None = Field(
        default=None, ge=0, description="Most cost of the case's model calls, USD."
    )

    @model_validator(mode="after")
    def _a_limit(self) -> BudgetOptions:
        if all(getattr(self, name) is None for name in _LIMITS):
            raise ValueError(f"a budget needs at least one limit: {', '.join(_LIMITS)}")
        return self


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


class Budget(GraderBase):
    """Pass when every limit set holds; the reason names each one that went over."""

    Options: ClassVar[type[base.Options]] = BudgetOptions
    options: BudgetOptions

    async def grade(self, sample: Sample) -> Grade:
        """Measure the run against the limits.

        Raises:
            GraderError: a token or cost limit is set and the tokens or cost are unknown.
        """
        opts = self.options
        models = model_calls(sample)
        tools = len(calls_of(sample))
        measured: list[
            tuple[str, float, float, str, str]
        ] = []  # (key, value, limit, shown value, shown limit)
        if opts.max_steps is not None:
            measured.append(
                (
                    "steps",
                    models + tools,
                    opts.max_steps,
                    _count(models + tools, "step", "steps"),
                    f"{opts.max_steps:,}",
                )
            )
        if opts.max_tool_calls is not None:
            measured.append(
                (
                    "tool_calls",
                    tools,
                    opts.max_tool_calls,
                    _count(tools, "tool call", "tool calls"),
                    f"{opts.max_tool_calls:,}",
                )
            )
        if opts.max_model_calls is not None:
            measured.append(
                (
                    "model_calls",
                    models,
                    opts.max_model_calls,
                    _count(models, "model call", "model calls"),
                    f"{opts.max_model_calls:,}",
                )
            )
        if opts.max_tokens is not None:
            tokens = _tokens(sample)
            measured.append(
                ("tokens", tokens, opts.max_tokens, _count(tokens, "token", "tokens"), f"{opts.max_tokens:,}")
            )
        if opts.max_cost_usd is not None:
            cost = _cost(sample)
            measured.append(
                ("cost_usd", cost, opts.max_cost_usd, f"cost ${cost:.4g}", f"${opts.max_cost_usd:g}")
            )
        details: dict[str, Any] = {key: value for key, value, *_ in measured}
        details["limits"] = {f"max_{key}": limit for key, _, limit, *_ in measured}
        over = [f"{shown} (budget {limit})" for _, value, top, shown, limit in measured if value > top]
        if over:
            return Grade(score=0.0, passed=False, reason="; ".join(over), details=details)
        within = ", ".join(f"{shown} (max {limit})" for *_, shown, limit in measured)
        return Grade(score=1.0, passed=True, reason=f"within budget: {within}", details=details)


def _tokens(sample: Sample) -> int:
    if not sample.steps:
        # One model call: its tokens are the case's.
        if sample.usage is None:
            raise GraderError("budget max_tokens: the model call reported no token usage")
        u = sample.usage
        return u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens
    total = 0
    for number, step in enumerate(sample.steps, 1):
        if step.kind != "model":
            continue
        if step.usage is None:
            raise GraderError(f"budget max_tokens: step {number} (model) reported no token usage")
        u = step.usage
        total += u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens
    return total


def _cost(sample: Sample) -> float:
    if not sample.steps:
        # One model call: its cost is the case's.
        if sample.cost_usd is None:
            raise GraderError(
                "budget max_cost_usd: the model call has no price (add its price under prices: in agent-evals.yaml)"
            )
        return sample.cost_usd
    total = 0.0
    for number, step in enumerate(sample.steps, 1):
        if step.kind != "model":
            continue
        if step.cost_usd is None:
            raise GraderError(
                f"budget max_cost_usd: step {number} (model {step.model or 'unknown'}) has no price "
                "(add its price under prices: in agent-evals.yaml)"
            )
        total += step.cost_usd
    return total
