"""`exact_match`: the output (or one JSON field of it) equals the expected value.

Comparison rules, chosen so a YAML author gets what they wrote:

* Strings are compared after the `normalize` steps (default: strip and
  collapse whitespace). Normalisation also applies to strings nested in lists
  and objects, never to object keys.
* Other values are compared in canonical JSON: object key order does not
  matter, numbers compare by value (`1 == 1.0`, since JSON has one number
  type), and booleans never equal numbers (`true != 1`).
* When exactly one side is a string (a text output against `expected: 42`),
  the string is read as JSON first; if it is not JSON they do not match.
* An expected list means "one of": the value passes if it equals the whole
  list or any element. To expect a list value exactly, it is enough to write
  it; to offer several list values, nest them (`[[a, b], [b, a]]`).
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, ClassVar, Literal

from pydantic import Field

from agent_evals import _json
from agent_evals.graders import base
from agent_evals.graders._common import (
    FieldPath,
    OneOrMany,
    cannot_read,
    expected_value,
    quote,
    quote_all,
    read_output,
)
from agent_evals.graders.base import Grade, GraderBase, Sample

Normalizer = Literal["case", "whitespace", "punctuation"]


class ExactMatchOptions(base.Options):
    """Options of `exact_match`."""

    field: FieldPath | None = Field(
        default=None, description="Path into the parsed JSON output; omit to compare the whole text."
    )
    expected_field: FieldPath | None = Field(
        default=None,
        description="Path into the case's expected value; default: `field` when expected is a mapping.",
    )
    normalize: OneOrMany[Normalizer] = Field(
        default=("whitespace",),
        description="Applied to strings before comparing: case, whitespace (strip+collapse), punctuation.",
    )


def normalize_text(text: str, steps: tuple[str, ...]) -> str:
    """Apply normalisation steps in a fixed order: case, punctuation, whitespace.

    Whitespace runs last so that removing punctuation cannot leave double spaces.
    """
    if "case" in steps:
        text = text.casefold()
    if "punctuation" in steps:
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    if "whitespace" in steps:
        # `split()` splits at runs of what `\s` matches (`str.isspace`), and drops the ends.
        text = " ".join(text.split())
    return text


def _canonical(value: Any, steps: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return normalize_text(value, steps)
    # bool is an int subclass, never a float, so `true` stays apart from `1`.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v, steps) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v, steps) for v in value]
    return value


def _same(actual: Any, expected: Any, steps: tuple[str, ...]) -> bool:
    if isinstance(actual, str) and actual == expected:
        return True  # most passing outputs: equal text stays equal once normalised
    if isinstance(actual, str) != isinstance(expected, str):
        try:
            if isinstance(actual, str):
                actual = _json.loads(actual)
            else:
                expected = _json.loads(expected)
        except ValueError:
            return False
    if isinstance(actual, str) and isinstance(expected, str):
        return normalize_text(actual, steps) == normalize_text(expected, steps)
    # (A text that parsed to a JSON string, against a list or an object: told apart below.)
    dump = json.dumps  # canonical JSON: sorted keys; ints and bools kept apart by JSON itself
    return dump(_canonical(actual, steps), sort_keys=True, default=str) == dump(
        _canonical(expected, steps), sort_keys=True, default=str
    )


def matches(actual: Any, expected: Any, steps: tuple[str, ...]) -> bool:
    """Whether `actual` equals `expected`, or one of its elements when it is a list."""
    if _same(actual, expected, steps):
        return True
    return isinstance(expected, list) and any(_same(actual, option, steps) for option in expected)


class ExactMatch(GraderBase):
    """Pass when the output (or a JSON field of it) equals the case's expected value.

    Options: see `ExactMatchOptions`. An output that is not JSON when a field
    is asked for fails (it does not error): the model produced something unusable.
    """

    Options: ClassVar[type[base.Options]] = ExactMatchOptions
    options: ExactMatchOptions
    needs_expected = True

    def expected_path(self) -> str | None:
        # `field` applies only when the expected value is a mapping; see `expected_value`.
        return self.options.expected_field or self.options.field

    async def grade(self, sample: Sample) -> Grade:
        """Compare the output with the expected value.

        Raises:
            GraderError: the case has no expected value (at the expected path).
        """
        opts = self.options
        expected = expected_value(sample.case, opts.expected_field, opts.field)
        actual, why_not = read_output(sample, opts.field)
        if why_not is not None:
            return cannot_read(why_not)
        details = {"expected": expected, "actual": actual, "normalize": list(opts.normalize)}
        where = f"{opts.field}: " if opts.field else ""
        if matches(actual, expected, opts.normalize):
            return Grade(score=1.0, passed=True, reason=f"{where}matches {quote(actual)}", details=details)
        if isinstance(expected, list) and expected:
            wanted = f"one of {quote_all(expected[:5])}" + (", …" if len(expected) > 5 else "")
        else:
            wanted = quote(expected)
        return Grade(
            score=0.0, passed=False, reason=f"{where}expected {wanted}, got {quote(actual)}", details=details
        )
