"""The grader seam: one async method, `grade(sample) -> Grade`.

A grader type is a class with an `Options` model (its own keys in the eval
set, extra keys forbidden) registered by name in `agent_evals.graders.GRADERS`.
Deterministic graders are pure functions of the sample; the LLM judge calls a
model through `sample.call_model`, which the runner supplies with retries.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from agent_evals.models import Case, GraderSpec, ToolSpec

if TYPE_CHECKING:
    from agent_evals.providers.base import ChatRequest, Completion
    from agent_evals.record import CaseStatus, GradeRecord, StepRecord, ToolCallRecord, Usage

ModelCaller = Callable[[str, "ChatRequest"], Awaitable["Completion"]]
"""call_model(provider_name, request): a model call with the runner's retry policy."""

_MISSING = object()

REVIEW_REASON = "review_reason"
"""The `Grade.details` key that says why a grade needs a person (shown by `review` and the reports)."""


@dataclass(frozen=True, slots=True)
class Grade:
    """One grader's judgement of one output: a score in [0, 1], pass/fail and why.

    `needs_review` marks a provisional grade that a person should confirm
    (`agent-evals review`); the grader says why in `details[REVIEW_REASON]`.
    """

    score: float
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    needs_review: bool = False


def review_reason(details: Mapping[str, Any]) -> str:
    """Why a grade needs human review, from its details (a generic reason when the grader gave none)."""
    why = details.get(REVIEW_REASON)
    return why if isinstance(why, str) and why else "the grader asked for human review"


def case_outcome(grades: Sequence[GradeRecord]) -> tuple[CaseStatus, float | None, bool | None]:
    """A case's status, score and verdict from its graders: the one rule the runner and reviews share.

    The score is the weighted mean of the scores of the graders that gave one;
    the case passes when every required grader passes; a grader that could not
    judge makes the case an error (no score, no verdict).
    """
    if any(g.error for g in grades):
        return "error", None, None
    scored = [g for g in grades if g.score is not None]
    weight = sum(g.weight for g in scored)
    score = sum((g.score or 0.0) * g.weight for g in scored) / weight if weight else None
    passed = all(bool(g.passed) for g in grades if g.required)
    return ("pass" if passed else "fail"), score, passed


@dataclass(frozen=True, slots=True)
class Sample:
    """What a grader sees: the case, the raw output and, for JSON prompts, the parsed output."""

    case: Case
    output: str
    parsed: Any = None
    parse_error: str | None = None
    output_schema: dict[str, Any] | None = None
    call_model: ModelCaller | None = None
    steps: tuple[StepRecord, ...] = ()
    """The trajectory: model steps and tool steps in order (empty for a single call with no tools)."""
    tool_calls: tuple[ToolCallRecord, ...] = ()
    """Every tool call of the case, in order."""
    tools: tuple[ToolSpec, ...] = ()
    """The tools the prompt offered the model (their parameters' JSON Schemas)."""
    usage: Usage | None = None
    """The case's tokens, all model steps together (None: not reported)."""
    cost_usd: float | None = None
    """The case's cost before grading, all model steps together (None: unpriced)."""


class Options(BaseModel):
    """Base of every grader's options: strict, frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


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
