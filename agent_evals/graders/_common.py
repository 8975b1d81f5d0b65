"""Helpers the built-in graders share: option types, expected values, short quotes.

Private: the public seam is `agent_evals.graders.base`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, GetJsonSchemaHandler
from pydantic_core import CoreSchema

from agent_evals._regex import FLAGS, compile_pattern
from agent_evals.errors import GraderError
from agent_evals.graders.base import Grade, Sample, get_path, output_value
from agent_evals.models import Case

_MISSING = object()
_PATH = re.compile(r"^(?:[^.\[\]]+|\[\d+\])(?:\.[^.\[\]]+|\[\d+\])*$")
_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _check_path(path: str) -> str:
    # get_path skips characters it cannot parse, so 'a..b' would silently read 'a.b'.
    if not _PATH.match(path):
        raise ValueError("not a field path: use dotted keys and [index], e.g. 'answer' or 'items[0].name'")
    return path


FieldPath = Annotated[str, AfterValidator(_check_path)]
"""A dotted path into parsed JSON (`a.b[0].c`), checked when the options load."""


def _check_regex(pattern: str) -> str:
    compile_pattern(pattern)  # PatternError is a ValueError: the options do not load
    return pattern


RegexPattern = Annotated[str, AfterValidator(_check_regex)]
"""A Python regular expression, compiled when the options load so a typo is a load error."""


def _listify(value: Any) -> Any:
    # `normalize: case` reads as naturally in YAML as `normalize: [case]`.
    return [value] if isinstance(value, str) else value


class _OneAccepted:
    """In the JSON Schema (`agent-evals schema`) too, a single item is accepted for the list."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        many = handler(schema)
        return {"anyOf": [many["items"], many]}


T = TypeVar("T")
OneOrMany = Annotated[tuple[T, ...], BeforeValidator(_listify), _OneAccepted()]
"""A list option that also takes a single value."""


def regex_flags(names: tuple[str, ...]) -> int:
    """Combine flag names (`ignorecase`, `multiline`, `dotall`) into the flags of `agent_evals._regex`."""
    flags = 0
    for name in names:
        flags |= FLAGS[name]
    return flags


def as_text(value: Any) -> str:
    """A value as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def quote(value: Any, limit: int = 60) -> str:
    """A short one-line rendering of a value for a reason: `'refund'`, `42`, `{"a": 1}`."""
    if isinstance(value, str):
        return f"'{one_line(value, limit)}'"
    return one_line(as_text(value), limit)


def one_line(text: str, limit: int = 60) -> str:
    """`text` with line breaks and tabs escaped (a reason stays one table row), cut at `limit`."""
    if "\n" in text or "\r" in text or "\t" in text:
        text = text.translate(_ESCAPES)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote_all(values: Any, limit: int = 60) -> str:
    """Several quoted values, comma separated."""
    return ", ".join([quote(v, limit) for v in values])


def expected_value(case: Case, expected_field: str | None, field: str | None) -> Any:
    """The part of `case.expected` a grader compares with.

    `expected_field` wins; otherwise a mapping is read at the grader's output
    `field` (so `field: disposition` pairs with `expected: {disposition: ...}`),
    and anything else is used whole.

    Raises:
        GraderError: the case has no expected value, or none at that path.
    """
    expected = case.expected
    if expected is None:
        raise GraderError(f"case '{case.id}' has no expected value")
    path = expected_field if expected_field is not None else (field if isinstance(expected, dict) else None)
    if path is None:
        return expected
    found = get_path(expected, path, default=_MISSING)
    if found is _MISSING:
        raise GraderError(f"case '{case.id}' has no expected value at '{path}'")
    return found


def read_output(sample: Sample, path: str | None) -> tuple[Any, str | None]:
    """`base.output_value`, but a missing field is always a reason, never a KeyError.

    `output_value` hands `get_path` its own "no default" sentinel as the
    default, so a missing field raises KeyError instead of returning the reason.
    """
    try:
        return output_value(sample, path)
    except KeyError:
        return None, f"output has no field '{path}'"


def cannot_read(reason: str) -> Grade:
    """The fail grade for an output the grader cannot look at (not JSON, no such field)."""
    return Grade(score=0.0, passed=False, reason=reason, details={"unreadable": True})
