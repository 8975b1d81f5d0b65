"""Regular expressions from untrusted files, matched within a time limit: the one place they run.

A pattern in a prompt or an eval set comes from a pull request like the rest of the file, and
Python's `re` has no time limit: `(a|aa)+$` against sixty `a`s and a `b` backtracks for longer
than any CI job runs. Every pattern the files supply (the `regex` grader, rubric `matches`
criteria, `match: regex` arguments of the trajectory graders, JSON Schema `pattern` and
`patternProperties` in output and tool schemas, the `local` model's parameter patterns) is
compiled and matched here, with the `regex` package, whose matching stops after `TIMEOUT_S`
and raises `PatternTimeout`. Patterns keep Python's syntax (the package's `VERSION0`, `re`'s).
"""

from __future__ import annotations

import re
import time
from typing import Any

from agent_evals import _jobclock
from agent_evals.errors import GraderError

__all__ = ["FLAGS", "TIMEOUT_S", "Pattern", "PatternError", "PatternTimeout", "compile_pattern"]

TIMEOUT_S = 1.0
"""The most one match of one pattern against one text may take."""

STRIKES = 5
"""Matches past `TIMEOUT_S` after which a pattern is not run again in this process: one that
backtracks without end on five texts would on the next 10,000 too, a second each (hours of a run).
One just under `TIMEOUT_S` on every text is stopped by its job's clock instead: a pattern may take
`_jobclock.JOB_SECONDS` in all in a job (a prompt on an eval set)."""

# The `regex` package's flags have `re`'s values; it is imported with the first pattern compiled
# (about 40 ms), so a run whose files hold no pattern never loads it.
FLAGS = {"ignorecase": int(re.IGNORECASE), "multiline": int(re.MULTILINE), "dotall": int(re.DOTALL)}


class PatternError(ValueError):
    """A pattern that does not compile."""


class PatternTimeout(GraderError):
    """A match that ran past `TIMEOUT_S`: the pattern backtracks catastrophically on this text.

    A grader's match that times out cannot judge the case: the case is an error, never a pass.
    """

    def __init__(self, pattern: str, *, strikes: int = 0, spent: float | None = None) -> None:
        shown = pattern if len(pattern) <= 60 else pattern[:59] + "…"
        if spent is not None:
            what = (
                f"has taken {spent:.3g} s on this run's texts already, over the limit of "
                f"{_jobclock.JOB_SECONDS:g} s for a prompt on an eval set, so it is not run again"
            )
        elif strikes:
            what = f"took more than {TIMEOUT_S:g} s on {strikes} texts already, so it is not run again"
        else:
            what = f"took more than {TIMEOUT_S:g} s on this text"
        super().__init__(
            f"the pattern /{shown}/ {what} "
            "(repetition of overlapping alternatives, such as (a|aa)+, backtracks without end; simplify it)"
        )


class Pattern:
    """A compiled pattern whose every match is time-limited."""

    __slots__ = ("_compiled", "pattern", "timeouts")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        import regex

        self.pattern = pattern
        self.timeouts = 0
        try:
            self._compiled = regex.compile(pattern, flags | regex.VERSION0)
        except (regex.error, OverflowError, RecursionError) as exc:
            raise PatternError(f"invalid regular expression: {exc}") from None

    def search(self, text: str) -> Any:
        """`regex.Match` or None. Raises PatternTimeout past `TIMEOUT_S`, or at once after `STRIKES` of them."""
        return self._run(self._compiled.search, text)

    def fullmatch(self, text: str) -> Any:
        """`regex.Match` or None. Raises PatternTimeout past `TIMEOUT_S`, or at once after `STRIKES` of them."""
        return self._run(self._compiled.fullmatch, text)

    def _run(self, method: Any, text: str) -> Any:
        if self.timeouts >= STRIKES:
            raise PatternTimeout(self.pattern, strikes=self.timeouts)
        clock = _jobclock.current()
        if clock is None:
            return self._match(method, text)
        spent = clock.over(self)
        if spent is not None:
            raise PatternTimeout(self.pattern, spent=spent)
        started = time.monotonic()
        try:
            return self._match(method, text)
        finally:
            clock.charge(self, time.monotonic() - started)

    def _match(self, method: Any, text: str) -> Any:
        try:
            return method(text, timeout=TIMEOUT_S)
        except TimeoutError:
            self.timeouts += 1
            raise PatternTimeout(self.pattern) from None


_CACHE: dict[tuple[str, int], Pattern] = {}


def compile_pattern(pattern: str, flags: int = 0) -> Pattern:
    """The compiled `pattern` (cached). Raises PatternError when it does not compile."""
    key = (pattern, flags)
    hit = _CACHE.get(key)
    if hit is None:
        if len(_CACHE) >= 512:
            _CACHE.clear()
        hit = _CACHE[key] = Pattern(pattern, flags)
    return hit
