"""Grader registry: a plain dict from type name to grader class.

Adding a grader is one module and one line here. `python:module:function`
types resolve to a custom grader in the team's own code.
"""

from __future__ import annotations

from agent_evals.errors import ConfigError
from agent_evals.graders.base import Grade, GraderBase, Sample, get_path, output_value
from agent_evals.graders.budget import Budget
from agent_evals.graders.exact_match import ExactMatch
from agent_evals.graders.json_schema import JsonSchema
from agent_evals.graders.python_fn import PythonGrader
from agent_evals.graders.rubric import Rubric
from agent_evals.graders.text import Contains, Regex
from agent_evals.graders.tool_args import ToolArgs
from agent_evals.graders.tool_called import ToolCalled
from agent_evals.graders.tool_not_called import ToolNotCalled
from agent_evals.graders.tool_sequence import ToolSequence
from agent_evals.models import GraderSpec

__all__ = [
    "GRADERS",
    "Grade",
    "GraderBase",
    "Sample",
    "build_grader",
    "get_path",
    "grader_class",
    "output_value",
]

GRADERS: dict[str, type[GraderBase]] = {
    "exact_match": ExactMatch,
    "contains": Contains,
    "regex": Regex,
    "json_schema": JsonSchema,
    "rubric": Rubric,
    "tool_called": ToolCalled,
    "tool_not_called": ToolNotCalled,
    "tool_sequence": ToolSequence,
    "tool_args": ToolArgs,
    "budget": Budget,
}


def grader_class(spec: GraderSpec) -> type[GraderBase] | None:
    """The class a spec's type names, or None when unknown."""
    return PythonGrader if spec.type.startswith("python:") else GRADERS.get(spec.type)


def build_grader(spec: GraderSpec) -> GraderBase:
    """Build the grader a spec names, checking its options.

    Raises:
        ConfigError: unknown grader type (no location; the caller adds it).
        pydantic.ValidationError: the options do not fit the type (the caller
            translates it with the spec's location).
    """
    if spec.type.startswith("python:"):
        options = PythonGrader.Options.model_validate(
            {"target": spec.type.removeprefix("python:"), **spec.options}
        )
        return PythonGrader(spec, options)
    cls = GRADERS.get(spec.type)
    if cls is None:
        known = ", ".join([*sorted(GRADERS), "python:module:function"])
        raise ConfigError(f"unknown grader type '{spec.type}'", hint=f"known types: {known}")
    return cls(spec, cls.Options.model_validate(spec.options))
