"""What one write into the history store did, said without loading the store (SQLAlchemy): a run's
process reads it back from the child that followed its record (`history.follow`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Imported"]


@dataclass(frozen=True)
class Imported:
    """What one write did: a run or a verdict `added`, `updated` (a run gained cases or its end), or `skipped`."""

    kind: Literal["run", "verdict"]
    id: str
    outcome: Literal["added", "updated", "skipped"]
    source: str | None = None
    results: int = 0
    """Case results written (runs)."""
    why: str = "already in the store"
    """Why it was skipped."""

    def line(self) -> str:
        what = f"{self.kind} {self.id}"
        if self.kind == "run" and self.outcome != "skipped":
            what += f": {self.results} case result(s)"
        where = f" ({self.source})" if self.source else ""
        if self.outcome == "skipped":
            return f"skipped {what}: {self.why}{where}"
        return f"{self.outcome} {what}{where}"
