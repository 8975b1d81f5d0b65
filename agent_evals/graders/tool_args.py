"""`tool_args`: every call to a tool has valid arguments.

```yaml
- type: tool_args
  tool: issue_refund
  schema:                                   # a JSON Schema the arguments validate against
    type: object
    required: [order_id, amount]
    properties: {amount: {type: number, maximum: 500}}
- type: tool_args
  tool: lookup_order
  args: {order_id: "A-[0-9]{4}"}
  match: regex                              # or exact | subset | path, as in tool_called
```

`schema` and `args` may be given together (both must hold). With neither, the arguments are
checked against the tool's own `parameters` as the prompt declares them (a tighter `schema`
overrides them). A call whose arguments are not JSON fails. The score is the fraction of calls
that pass; the reason names the first failing call's step and, for a schema, the JSON path
of the error ("step 4: issue_refund arguments: $.amount: 900 is greater than the maximum of
500"). A tool that is never called passes: to require the call, add `tool_called`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field

from agent_evals.errors import GraderError
from agent_evals.graders import base
from agent_evals.graders._common import one_line
from agent_evals.graders._trajectory import (
    ArgsOptions,
    ToolName,
    arg_problems,
    args_text,
    calls_of,
    steps_text,
)
from agent_evals.graders.base import Grade, GraderBase, Sample
from agent_evals.graders.json_schema import BoundedSchema, SchemaOption
from agent_evals.models import GraderSpec

_MESSAGE_LIMIT = 120


class ToolArgsOptions(ArgsOptions):
    """Options of `tool_args`."""

    tool: ToolName = Field(description="The tool whose every call is checked.")
    # Aliased because a field named `schema` shadows a (deprecated) BaseModel method.
    json_schema: SchemaOption = Field(
        default=None,
        alias="schema",
        description="A JSON Schema every call's arguments must validate against.",
    )


class ToolArgs(GraderBase):
    """Pass when every call to `tool` has arguments that validate against `schema` and match `args`."""

    Options: ClassVar[type[base.Options]] = ToolArgsOptions
    options: ToolArgsOptions

    def __init__(self, spec: GraderSpec, options: Any) -> None:
        super().__init__(spec, options)
        self.needs_expected = self.options.args_from_expected is not None
        self._schema_validator: BoundedSchema | None = None
        self._validated: dict[str, Any] | None = None

    def expected_path(self) -> str | None:
        return self.options.args_from_expected

    def _schema(self, sample: Sample) -> dict[str, Any] | None:
        """`schema`, else (with no `args` to match either) the parameters the prompt declares for the tool."""
        opts = self.options
        if opts.json_schema is not None or opts.checks_args:
            return opts.json_schema
        declared = next((t.parameters for t in sample.tools if t.name == opts.tool), None)
        if declared is None:
            raise GraderError(
                f"tool_args has no 'schema' or 'args', and the prompt declares no tool '{opts.tool}' "
                "whose parameters it could check (set 'schema', or 'args' with 'match')"
            )
        return declared

    def _problem(
        self, arguments: Any, wanted: dict[str, Any] | None, schema: dict[str, Any] | None
    ) -> str | None:
        opts = self.options
        if schema is not None:
            if not isinstance(arguments, dict):
                return f"arguments are not a JSON object: {args_text(arguments, 60)}"
            if self._schema_validator is None or self._validated is not schema:
                self._schema_validator, self._validated = BoundedSchema(schema), schema
            # In the schema's keyword order: the first error is the same every run.
            error = next(iter(self._schema_validator.errors(arguments)), None)
            if error is not None:
                return f"{error.json_path}: {one_line(' '.join(error.message.split()), _MESSAGE_LIMIT)}"
        if wanted is not None:
            problems = arg_problems(arguments, wanted, opts.match)
            if problems:
                return problems[0]
        return None

    async def grade(self, sample: Sample) -> Grade:
        """Check every call to the tool.

        Raises:
            GraderError: the arguments come from the case's expected value and it has none usable,
                or there is nothing to check against (no `schema`, no `args`, no such tool declared).
        """
        opts = self.options
        wanted = opts.wanted(sample.case)
        schema = self._schema(sample)
        calls = [c for c in calls_of(sample) if c.name == opts.tool]
        if not calls:
            return Grade(
                score=1.0,
                passed=True,
                reason=f"{opts.tool} never called: no arguments to check",
                details={"tool": opts.tool, "calls": 0, "failing": []},
            )
        failing = [(c, p) for c in calls if (p := self._problem(c.arguments, wanted, schema)) is not None]
        details: dict[str, Any] = {
            "tool": opts.tool,
            "calls": len(calls),
            "failing": [
                {"step": c.step, "problem": p, "arguments": _jsonable(c.arguments)} for c, p in failing
            ],
        }
        score = 1 - len(failing) / len(calls)
        if not failing:
            what = "valid" if wanted is None else "matching"
            n = len(calls)
            reason = (
                f"{n} call{'s' if n > 1 else ''} to {opts.tool} with {what} arguments ({steps_text(calls)})"
            )
            return Grade(score=1.0, passed=True, reason=reason, details=details)
        first, problem = failing[0]
        reason = f"step {first.step}: {opts.tool} arguments: {problem}"
        if len(calls) > 1:
            reason += f" ({len(failing)} of {len(calls)} calls fail)"
        return Grade(score=score, passed=False, reason=reason, details=details)


def _jsonable(value: Any) -> Any:
    # Details go into the record as JSON: keep what the model sent, as it would be written.
    return json.loads(json.dumps(value, default=str))
