"""The history store: what every `run`, `diff` and `ci` did, in SQLite or PostgreSQL.

    store.py    the tables (SQLAlchemy Core), where the store is (`resolve_url`), opening it
                (`open_store`: migrated on first use by Alembic, migrations/versions/)
    ingest.py   run records and gate reports into rows: idempotent by run id and verdict id,
                streamed in batches, one transaction per file (`import_paths`, `add_gate_report`)

Nothing here is imported by `--help` or `validate`: SQLAlchemy loads when a command writes history.
"""

from __future__ import annotations

from agent_evals.history.ingest import Imported, add_gate_report, add_record, import_paths
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
