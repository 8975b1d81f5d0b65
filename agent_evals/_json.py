"""JSON from outside, read and walked in bounds: the walks shared by every JSON Lines reader (cases
files, run records, production logs), each bounded by the depth its reader already checked, and
`loads`, the one reading of JSON text that comes from elsewhere (a server's body, a model's output
or tool-call arguments, a judge's verdict), which refuses nesting the rest of the code cannot walk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

MAX_DEPTH = 100
"""Collections nested deeper than this are refused: as in YAML files (`_yaml.MAX_DEPTH`), far above
any real value, far below what Python's recursion (serializers, comparisons, pydantic) can walk."""


def nested_deeper(value: Any, limit: int) -> bool:
    """Whether `value` holds collections nested more than `limit` deep."""
    # Level by level, without recursion: the point is to refuse what recursion cannot walk.
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return any(isinstance(item, dict | list) for item in level)


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, **options: Any) -> Any:
    """`json.loads(text)`, where a value nested more than `max_depth` deep is a `json.JSONDecodeError`
    like any other text that is not JSON: the decoder's RecursionError (5,000 brackets) and the
    serializers' later (1,000) were internal errors. `options` go to `json.loads`.

    Raises:
        json.JSONDecodeError: not JSON, or nested too deeply.
        ValueError: an integer over Python's digit limit.
        UnicodeDecodeError: `text` is bytes and not UTF-8 (or UTF-16/32).
    """
    try:
        value = json.loads(text, **options)
    except RecursionError:
        value = None
    else:
        # Collections nest no deeper than the text has brackets: most texts need no walk.
        opening = (
            text.count(b"{") + text.count(b"[")
            if isinstance(text, bytes)
            else text.count("{") + text.count("[")
        )
        if opening <= max_depth or not nested_deeper(value, max_depth):
            return value
    raise json.JSONDecodeError(f"nested more than {max_depth} deep", "", 0)


def strings(value: Any) -> Iterator[str]:
    """Every string in a value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def lone_surrogate(value: Any) -> bool:
    """Whether a string holds half a surrogate pair (a `\\ud800` escape alone), which no UTF-8 text
    can hold: every writer of it (the cache, a record, a report) would fail on it later."""
    for text in strings(value):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False
