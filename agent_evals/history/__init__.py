"""The history store: what every `run`, `diff` and `ci` did, in SQLite or PostgreSQL.

    store.py    the tables (SQLAlchemy Core), where the store is (`resolve_url`), opening it
                (`open_store`: migrated on first use by Alembic, migrations/versions/)
    ingest.py   run records and gate reports into rows: idempotent by run id and verdict id,
                streamed in batches, one transaction per file (`import_paths`, `add_gate_report`)
    feed.py     a run's cases into the store while it runs, from a thread (`HistoryFeed`)
    follow.py   a large run's record followed into the store by a child process (`FollowedRun`)
    imported.py what a write did (`Imported`), without loading the store

Nothing here is imported by `--help` or `validate`: SQLAlchemy loads when a command writes history.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_evals.history.imported import Imported
    from agent_evals.history.ingest import add_gate_report, add_record, import_paths
    from agent_evals.history.store import Store, Target, open_store, resolve_url

__all__ = [
    "Imported",
    "Store",
    "Target",
    "add_gate_report",
    "add_record",
    "import_paths",
    "open_store",
    "resolve_url",
]

_HOMES = {
    "Imported": "imported",
    "add_gate_report": "ingest",
    "add_record": "ingest",
    "import_paths": "ingest",
    "Store": "store",
    "Target": "store",
    "open_store": "store",
    "resolve_url": "store",
}


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562): `history.feed` is imported by `run` before its first
    # request, and must not bring SQLAlchemy with it (the feed's thread imports it).
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
