"""The time one job (a prompt on an eval set) may spend on each piece of work its files supply.

Each render, match and schema check is bounded on its own (`_sandbox`, `_regex`, the JSON Schema
grader), but one just under its limit at every case of 10,000 would keep a run going for hours:
a template at 1.9 s a render, a pattern at 0.9 s a match, a schema at 1.9 s a check. So each is
also bounded over the job: `JOB_SECONDS` in all for the prompt's templates (`render.RenderClock`,
before anything is sent), for the eval set's mock templates together, and for each pattern and
each schema the graders run. Past it, that work is not done again in the job: the cases left
that need it are errors at once, saying so, and the run ends in about a minute.

The runner gives each job a `JobClock` and makes it current (`running`) while the job's cases
run, so the graders' patterns and schemas charge it wherever they are matched; the monitor does
the same for a window's rows. Elsewhere (`validate`, which checks what files hold, not outputs) no
clock is current and only the per-call limits apply.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["JOB_SECONDS", "JobClock", "current", "running"]

JOB_SECONDS = 60.0
"""The most one job may spend on one piece of file-supplied work: its prompt's templates, its mock
templates, one pattern, one schema. A prompt renders in well under a millisecond a case, a pattern
matches in microseconds: 10,000 cases of either take a second or two."""


class JobClock:
    """The seconds one job has spent on each piece of file-supplied work, by key."""

    __slots__ = ("spent",)

    def __init__(self) -> None:
        self.spent: dict[Hashable, float] = {}

    def over(self, key: Hashable) -> float | None:
        """The seconds spent on `key`, when that is over `JOB_SECONDS`; else None."""
        spent = self.spent.get(key, 0.0)
        return spent if spent > JOB_SECONDS else None

    def charge(self, key: Hashable, seconds: float) -> None:
        self.spent[key] = self.spent.get(key, 0.0) + seconds


_CURRENT: ContextVar[JobClock | None] = ContextVar("agent_evals_job_clock", default=None)


def current() -> JobClock | None:
    """The clock of the job whose cases are running here, if any."""
    return _CURRENT.get()


@contextmanager
def running(clock: JobClock) -> Iterator[None]:
    """Make `clock` current here and in the tasks started here (they copy the context)."""
    token = _CURRENT.set(clock)
    try:
        yield
    finally:
        _CURRENT.reset(token)
