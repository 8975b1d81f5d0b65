"""The grader seam: one async method, `grade(sample) -> Grade`.

A grader type is a class with an `Options` model (its own keys in the eval
set, extra keys forbidden) registered by name in `agent_evals.graders.GRADERS`.
Deterministic graders are pure functions of the sample; the LLM judge calls a
model through `sample.call_model`, which the runner supplies with retries.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from agent_evals.models import Case, GraderSpec

if TYPE_CHECKING:
    from agent_evals.providers.base import Completion
    from agent_evals.render import ChatRequest

ModelCaller = Callable[[str, "ChatRequest"], Awaitable["Completion"]]
"""call_model(provider_name, request): a model call with the runner's retry policy."""

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Grade:
    """One grader's judgement of one output: a score in [0, 1], pass/fail and why."""

    score: float
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    needs_review: bool = False


@dataclass(frozen=True, slots=True)
class Sample:
    """What a grader sees: the case, the raw output and, for JSON prompts, the parsed output."""

    case: Case
    output: str
    parsed: Any = None
    parse_error: str | None = None
    output_schema: dict[str, Any] | None = None
    call_model: ModelCaller | None = None


class Options(BaseModel):
    """Base of every grader's options: strict, frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class GraderBase:
    """Common plumbing: the spec, the validated options, `needs_expected`."""

    Options: ClassVar[type[Options]] = Options
    needs_expected: bool = False

    def __init__(self, spec: GraderSpec, options: Any) -> None:
        self.spec = spec
        self.options = options

    @property
    def name(self) -> str:
        return self.spec.label

    def expected_path(self) -> str | None:
        """Where in `case.expected` this grader reads its expected value (None: the whole value)."""
        return None

    async def grade(self, sample: Sample) -> Grade:
        raise NotImplementedError


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def get_path(value: Any, path: str | None, default: Any = _MISSING) -> Any:
    """Follow a dotted path (`a.b[0].c` or `a.b.0.c`) into nested dicts and lists.

    Raises:
        KeyError: the path does not exist and no default was given.
    """
    if not path:
        return value
    current = value
    for name, index in _PATH_PART.findall(path):
        key: str | int = int(index) if index else name
        if isinstance(current, dict) and not index and key in current:
            current = current[key]
        elif isinstance(current, list) and (index or name.isdigit()):
            i = int(key)
            if not -len(current) <= i < len(current):
                if default is _MISSING:
                    raise KeyError(path)
                return default
            current = current[i]
        else:
            if default is _MISSING:
                raise KeyError(path)
            return default
    return current


def output_value(sample: Sample, path: str | None) -> tuple[Any, str | None]:
    """The output (or a field of the parsed JSON output) a grader looks at, or why there is none."""
    if path is None:
        return sample.output, None
    if sample.parsed is None:
        why = sample.parse_error or "output is not JSON"
        return None, f"cannot read field '{path}': {why}"
    try:
        return get_path(sample.parsed, path), None
    except KeyError:
        return None, f"output has no field '{path}'"
