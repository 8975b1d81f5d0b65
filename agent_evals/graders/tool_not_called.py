"""`tool_not_called`: forbidden tools (a deny list) or the only tools allowed (an allow list).

```yaml
- type: tool_not_called
  tools: [issue_refund, delete_account]     # none of these may be called
- type: tool_not_called
  allow: [lookup_order, lookup_policy]      # any other tool fails; `allow: []` forbids every tool
```

Every call counts, a failed one too: the agent tried it. The reason names the step of the
first offending call (step numbers: see `agent_evals.graders._trajectory`). To forbid a call
only with some arguments, use `tool_called` with `args` and `max_times: 0`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from agent_evals.graders import base
from agent_evals.graders._common import OneOrMany
from agent_evals.graders._trajectory import ToolName, calls_of, steps_text
from agent_evals.graders.base import Grade, GraderBase, Sample


class ToolNotCalledOptions(base.Options):
    """Options of `tool_not_called`."""

    tools: OneOrMany[ToolName] | None = Field(default=None, description="Tools that must not be called.")
    allow: OneOrMany[ToolName] | None = Field(
        default=None, description="The only tools that may be called ([] forbids every tool)."
    )

    @model_validator(mode="after")
    def _one_list(self) -> ToolNotCalledOptions:
        if (self.tools is None) == (self.allow is None):
            raise ValueError(
                "set exactly one of 'tools' (the forbidden tools) or 'allow' (the only tools allowed)"
            )
        if self.tools == ():
            raise ValueError("'tools' is empty: list at least one forbidden tool")
        return self


class ToolNotCalled(GraderBase):
    """Fail when a forbidden tool (or one outside the allow list) is called, naming the first such step."""

    Options: ClassVar[type[base.Options]] = ToolNotCalledOptions
    options: ToolNotCalledOptions

    async def grade(self, sample: Sample) -> Grade:
        """Look for calls the lists forbid."""
        opts = self.options
        calls = calls_of(sample)
        if opts.tools is not None:
            listed = ", ".join(opts.tools)
            bad = [c for c in calls if c.name in opts.tools]
        else:
            listed = ", ".join(opts.allow or ())
            bad = [c for c in calls if c.name not in (opts.allow or ())]
        details: dict[str, Any] = {
            "tools" if opts.tools is not None else "allow": list(opts.tools or opts.allow or ()),
            "offending": [{"step": c.step, "tool": c.name} for c in bad],
        }
        if not bad:
            if opts.tools is not None:
                reason = f"none of {listed} called"
            elif not calls:
                reason = "no tool called"
            else:
                reason = f"every call is one of {listed}"
            return Grade(score=1.0, passed=True, reason=reason, details=details)
        first = bad[0]
        if opts.tools is not None:
            reason = f"step {first.step}: {first.name} called (forbidden)"
        elif listed:
            reason = f"step {first.step}: {first.name} called, not in the allow list ({listed})"
        else:
            reason = f"step {first.step}: {first.name} called; no tool is allowed"
        if len(bad) > 1:
            rest = bad[1:]
            reason += f"; {len(rest)} more such call{'s' if len(rest) > 1 else ''} ({steps_text(rest)})"
        return Grade(score=0.0, passed=False, reason=reason, details=details)
