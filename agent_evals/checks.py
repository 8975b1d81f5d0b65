"""After the merge: what `monitor`, `verify` and the freshness check conclude, and where it is kept.

A `Check` is one conclusion about one prompt at one time: a production window graded and
compared (`monitor`), a merged change's before and after (`verify`), or an eval set held up
against today's traffic (`freshness`). It is stored in the history (`checks` table), shown by
`history` and the dashboard, and handed to `alerts` to page the prompt's on-call when it is a
significant drop. `WindowRow` is one row of a production log window as `monitor` reads it
(`monitor.read_window`), what the freshness check compares with the eval set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from agent_evals.history.store import Store

__all__ = ["Check", "CheckKind", "CheckStatus", "WindowRow", "incident_key", "store_check"]

CheckKind = Literal["monitor", "verify", "freshness"]
CheckStatus = Literal["ok", "drop", "cannot_tell", "stale"]
"""`ok`: nothing significant; `drop`: a significant drop (pages the on-call); `cannot_tell`: the
window is too small to see the drop worth paging for (said, never paged); `stale`: the eval set
no longer covers today's traffic (freshness; shown, not paged)."""


@dataclass(frozen=True)
class WindowRow:
    """One row of a production log window, mapped by the eval set's `monitor.map`."""

    line: int
    """Where it is in the log (its line; CSV: its record's first line)."""
    at: dt.datetime | None
    """Naive UTC."""
    version: str | None
    """The prompt version that answered it (the map's `version`), when the log says."""
    vars: Mapping[str, Any]
    output: str | None
    tags: Mapping[str, str] = field(default_factory=dict)
    stratum: str | None = None
    feedback: Any = None
    trajectory: Any = None
    """The mapped `tools` field (messages or spans), for trajectory graders."""
    expected: Any = None
    """The row's outcome label (the map's `label` / `expected.<field>`: what support finally did),
    when the log carries it: graders that need an expected value then grade the row too."""


@dataclass(frozen=True)
class Check:
    kind: CheckKind
    prompt_id: str
    status: CheckStatus
    headline: str
    """One line a person reads first: `monitor triage: pass rate 91.2% -> 84.0% (-7.2 pts, p=0.003) ...`."""
    at: dt.datetime
    """When it was concluded: naive UTC."""
    evalset_id: str | None = None
    version: str | None = None
    prompt_hash: str | None = None
    window: tuple[dt.datetime, dt.datetime] | None = None
    figures: Mapping[str, Any] = field(default_factory=dict)
    """Everything the conclusion rests on, JSON-ready: rates, intervals, p-values, n, strata."""
    run_id: str | None = None
    """The production run `monitor` stored for its window."""
    pr: int | None = None

    @property
    def check_id(self) -> str:
        """Stable for the same conclusion on the same data: a re-run replaces, never duplicates."""
        key = {
            "kind": self.kind,
            "prompt": self.prompt_id,
            "evalset": self.evalset_id,
            "version": self.version,
            "hash": self.prompt_hash,
            "window": [w.isoformat() for w in self.window] if self.window else None,
            "at": None if self.window else self.at.isoformat(),
            "run": self.run_id,
        }
        text = json.dumps(key, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def incident_key(prompt_id: str, kind: CheckKind) -> str:
    """The one open incident a prompt can have per kind of check: paging is deduplicated by it
    (PagerDuty's `dedup_key`), so a drop seen again in the next window is the same incident."""
    return f"agent-evals/{prompt_id}/{kind}"


def store_check(store: Store, check: Check, alert: Mapping[str, Any] | None = None) -> str:
    """Write `check` into the history (replacing the same check_id); its id."""
    from agent_evals.credentials import scrub
    from agent_evals.history.store import checks, insert

    row = {
        "check_id": check.check_id,
        "kind": check.kind,
        "prompt_id": check.prompt_id,
        "evalset_id": check.evalset_id,
        "version": check.version,
        "prompt_hash": check.prompt_hash,
        "at": check.at,
        "window_start": check.window[0] if check.window else None,
        "window_end": check.window[1] if check.window else None,
        "status": check.status,
        "headline": scrub(check.headline),
        "figures": json.loads(scrub(json.dumps(check.figures, default=str, allow_nan=False))),
        "run_id": check.run_id,
        "pr": check.pr,
        "alert": json.loads(scrub(json.dumps(alert, default=str))) if alert is not None else None,
    }
    with store.write() as conn:
        ins = insert(conn, checks)
        conn.execute(
            ins.values(row).on_conflict_do_update(
                index_elements=["check_id"], set_={k: v for k, v in row.items() if k != "check_id"}
            )
        )
    return check.check_id
