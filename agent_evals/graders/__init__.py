"""Grader registry: a mapping from type name to grader class, each module imported on first use.

Adding a grader is one module and one line here. `python:module:function`
types resolve to a custom grader in the team's own code. A run imports only the
graders its eval sets name (the trajectory graders and their regex engine are a
tenth of a run's start-up otherwise).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from agent_evals.errors import ConfigError
from agent_evals.graders.base import Grade, GraderBase, Sample, get_path, output_value
from agent_evals.graders.python_fn import PythonGrader
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


class _Registry(Mapping[str, type[GraderBase]]):
    """Type name -> grader class, from "module:Class" targets imported when a name is looked up."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        self._targets = dict(targets)
        self._classes: dict[str, type[GraderBase]] = {}

    def __getitem__(self, name: str) -> type[GraderBase]:
        cls = self._classes.get(name)
        if cls is None:
            module, _, attr = self._targets[name].partition(":")
            cls = self._classes[name] = getattr(importlib.import_module(module), attr)
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)


GRADERS: Mapping[str, type[GraderBase]] = _Registry(
    {
        "exact_match": "agent_evals.graders.exact_match:ExactMatch",
        "contains": "agent_evals.graders.text:Contains",
        "regex": "agent_evals.graders.text:Regex",
        "json_schema": "agent_evals.graders.json_schema:JsonSchema",
        "rubric": "agent_evals.graders.rubric:Rubric",
        "tool_called": "agent_evals.graders.tool_called:ToolCalled",
        "tool_not_called": "agent_evals.graders.tool_not_called:ToolNotCalled",
        "tool_sequence": "agent_evals.graders.tool_sequence:ToolSequence",
        "tool_args": "agent_evals.graders.tool_args:ToolArgs",
        "budget": "agent_evals.graders.budget:Budget",
    }
)


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
