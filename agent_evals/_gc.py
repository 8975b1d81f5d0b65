"""How often the garbage collector runs in a process that holds a run.

A run holds tens of thousands of live objects (cases, requests, results; in the history
follower, the record's parsed lines and their rows) and at Python's default thresholds the
collector walks them all again and again: a sixth of a 10,000-case run's CPU, and a fifth of
the follower's. `collecting_less` makes it collect less often (as mypy does); cycles are still
found. The CLI (`cli.main`) and the follower (`history.follow.main`) both run under it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["THRESHOLDS", "collecting_less"]

THRESHOLDS = (50_000, 20, 20)
"""The generations' thresholds: a young collection every 50,000 allocations, not every 700."""


@contextmanager
def collecting_less() -> Iterator[None]:
    """`THRESHOLDS` inside, the caller's before and after (a host process's own are left as they were)."""
    previous = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
