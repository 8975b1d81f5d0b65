"""`tool_called`: the agent called a tool (between `min_times` and `max_times`), maybe with given arguments.

```yaml
- type: tool_called
  tool: lookup_policy                   # called at least once
- type: tool_called
  tool: lookup_order
  args: {order_id: A-1001}              # with these arguments (among others: match subset)
- type: tool_called
  tool: escalate_to_human
  args: {reason: "(?i).*damaged.*"}
  match: regex                          # exact | subset | path | regex
- type: tool_called
  tool: issue_refund
  args_from_expected: refund            # the arguments from the case's expected.refund
- type: tool_called
  tool: lookup_order
  max_times: 1                          # at most once (min_times defaults to 1; 0 with max_times: 0)
```

With arguments, only the calls whose arguments match count towards `min_times` and
`max_times`; `max_times: 0` with `args` forbids one kind of call. Calls that failed (a tool
error) count unless `include_failed: false`. Matching rules and step numbers: see
`agent_evals.graders._trajectory`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from agent_evals.graders import base
from agent_evals.graders._trajectory import (
    ArgsOptions,
    ToolName,
    arg_problems,
    calls_of,
    dropped_note,
    names,
    only,
    steps_text,
    times,
    wanted_label,
)
from agent_evals.graders.base import Grade, GraderBase, Sample
from agent_evals.models import GraderSpec


class ToolCalledOptions(ArgsOptions):
    """Options of `tool_called`."""

    tool: ToolName = Field(description="The tool that must be called.")
    min_times: int | None = Field(
        default=None,
        ge=0,
        description="Fewest calls (that match `args`, when given); default 1, 0 with max_times 0.",
    )
    max_times: int | None = Field(default=None, ge=0, description="Most calls; 0 forbids the call.")
    include_failed: bool = Field(default=True, description="Count calls the tool answered with an error.")

    @model_validator(mode="after")
    def _times(self) -> ToolCalledOptions:
        if self.max_times is not None and self.max_times < self.least:
            raise ValueError(f"max_times ({self.max_times}) is below min_times ({self.least})")
        return self

    @property
    def least(self) -> int:
        """The fewest calls: `min_times`, else 1, or 0 with `max_times: 0` (which reads as "never")."""
        if self.min_times is not None:
            return self.min_times
        return 0 if self.max_times == 0 else 1


class ToolCalled(GraderBase):
    """Pass when `tool` is called between `min_times` and `max_times` times (with matching arguments)."""

    Options: ClassVar[type[base.Options]] = ToolCalledOptions
    options: ToolCalledOptions

    def __init__(self, spec: GraderSpec, options: Any) -> None:
        super().__init__(spec, options)
        self.needs_expected = self.options.args_from_expected is not None

    def expected_path(self) -> str | None:
        return self.options.args_from_expected

    async def grade(self, sample: Sample) -> Grade:
        """Count the calls to the tool (whose arguments match).

        Raises:
            GraderError: the arguments come from the case's expected value and it has none usable.
        """
        opts = self.options
        wanted = opts.wanted(sample.case)
        calls, dropped = only(calls_of(sample), opts.include_failed)
        same = [c for c in calls if c.name == opts.tool]
        fitting = (
            same if wanted is None else [c for c in same if not arg_problems(c.arguments, wanted, opts.match)]
        )
        n = len(fitting)
        low, high = opts.least, opts.max_times
        passed = n >= low and (high is None or n <= high)
        what = opts.tool if wanted is None else f"{opts.tool}({wanted_label(wanted, opts.match)})"
        details = {
            "tool": opts.tool,
            "calls": n,
            "steps": [c.step for c in fitting],
            "min_times": low,
            "max_times": high,
        }
        if wanted is not None:
            details["args"] = wanted
        if passed:
            reason = self._passed(what, fitting, high)
        elif n < low:
            reason = self._too_few(what, same, fitting, wanted, calls) + dropped_note(dropped)
        else:
            reason = (
                f"step {fitting[0].step}: {what} called (max_times 0)"
                if high == 0
                else f"{what} called {times(n)} ({steps_text(fitting)}), more than max_times {high}"
            )
        return Grade(score=1.0 if passed else 0.0, passed=passed, reason=reason, details=details)

    def _passed(self, what: str, fitting: list[Any], high: int | None) -> str:
        if not fitting:
            return f"{what} not called"
        return f"{what} called {times(len(fitting))} ({steps_text(fitting)})"

    def _too_few(
        self, what: str, same: list[Any], fitting: list[Any], wanted: dict[str, Any] | None, calls: Any
    ) -> str:
        opts = self.options
        if not same:
            return f"{opts.tool} never called ({names(calls)})"
        if wanted is not None and not fitting:
            first = same[0]
            problem = arg_problems(first.arguments, wanted, opts.match)[0]
            return (
                f"{opts.tool} called {times(len(same))}, never with matching arguments "
                f"(step {first.step}: {problem})"
            )
        return (
            f"{what} called {times(len(fitting))} ({steps_text(fitting)}), fewer than min_times {opts.least}"
        )
