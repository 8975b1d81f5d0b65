"""Walks over a JSON value read from a file, shared by every JSON Lines reader (cases files, run
records, production logs). Each walk is bounded by the depth its reader already checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


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
