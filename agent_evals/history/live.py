"""When each version of a prompt was live: from the merges on the deploy branch, or from deploy times.

A version is live from the moment its commit reached the branch a team deploys from (the
first-parent line of `origin/HEAD`, `origin/main`, ..., `changes.default_branch`) until the
next version reached it. A team whose deploys lag its merges tells `history deploy` when each
version went out instead; when a prompt has recorded deploys, they win (`live_from="auto"`).

The versions are matched to the runs in the history by the prompt's content hash (what
`run` records), else by its `version:` string.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select

from agent_evals.errors import ConfigError
from agent_evals.history.store import deploys

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["Live", "LiveFrom", "from_deploys", "from_merges", "live_periods"]

LiveFrom = Literal["auto", "merges", "deploys"]
Source = Literal["merges", "deploys"]


@dataclass(frozen=True)
class Live:
    """One stretch of time a prompt version was in production."""

    version: str
    prompt_hash: str | None
    start: dt.datetime
    end: dt.datetime | None
    """When the next version replaced it (None: still live, or the file was deleted then)."""
    commit: str | None
    source: Literal["merge", "deploy"]


def from_deploys(conn: Connection, prompt_id: str) -> list[Live]:
    """The prompt's recorded deploys as live periods, oldest first; each ends at the next."""
    rows = conn.execute(
        select(deploys.c.at, deploys.c.version, deploys.c.prompt_hash, deploys.c.git_commit)
        .where(deploys.c.prompt_id == prompt_id)
        .order_by(deploys.c.at)
    ).all()
    return [
        Live(
            row.version,
            row.prompt_hash,
            row.at,
            rows[i + 1].at if i + 1 < len(rows) else None,
            row.git_commit,
            "deploy",
        )
        for i, row in enumerate(rows)
    ]


def from_merges(root: Path, prompt_path: str, branch: str) -> list[Live]:
    """The versions of the prompt file at `prompt_path` (relative to `root`) as they landed on `branch`.

    A commit that leaves the prompt's content unchanged (a comment, a reordered key) does
    not start a new period; one that deletes the file ends the current one; a version
    that does not load (it could not have run) is passed over.
    """
    from agent_evals.changes import landed
    from agent_evals.load import load_prompt

    periods: list[Live] = []
    current: Live | None = None
    for change in landed(root, prompt_path, branch):
        if current is not None and change.text is None:
            periods.append(_ended(current, change.at))
            current = None
            continue
        if change.text is None:
            continue
        try:
            prompt = load_prompt(Path(prompt_path), change.text, shown=f"{prompt_path}@{change.commit[:8]}")
        except ConfigError:
            continue
        if current is not None and current.prompt_hash == prompt.content_hash:
            continue
        if current is not None:
            periods.append(_ended(current, change.at))
        current = Live(str(prompt.version), prompt.content_hash, change.at, None, change.commit, "merge")
    if current is not None:
        periods.append(current)
    return periods


def _ended(live: Live, at: dt.datetime) -> Live:
    return Live(live.version, live.prompt_hash, live.start, at, live.commit, live.source)


def live_periods(
    conn: Connection,
    prompt_id: str,
    *,
    root: Path | None,
    prompt_path: str | None,
    live_from: LiveFrom = "auto",
    branch: str | None = None,
) -> tuple[Source | None, list[Live]]:
    """Where the live periods come from, and the periods.

    `auto`: the recorded deploys when the prompt has any, else the merges when `root` is in a
    git repository with a deploy branch and the prompt's file is known, else none.

    Raises:
        ConfigError: `merges` was asked for and the repository or branch cannot be read.
    """
    if live_from in ("auto", "deploys"):
        found = from_deploys(conn, prompt_id)
        if found or live_from == "deploys":
            return "deploys", found
    if root is None or prompt_path is None:
        return (None, []) if live_from == "auto" else ("merges", [])
    from agent_evals.changes import default_branch

    try:
        return "merges", from_merges(root, prompt_path, branch or default_branch(root))
    except ConfigError:
        if live_from == "merges":
            raise
        return None, []
