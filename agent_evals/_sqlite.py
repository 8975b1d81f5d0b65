"""SQLite's one trap shared by the response cache and the history store: switching a new file to WAL."""

from __future__ import annotations

import sqlite3
import time
from typing import Final

__all__ = ["set_wal"]

_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6


def set_wal(conn: sqlite3.Connection, wait_s: float) -> None:
    """Put the file in WAL mode, waiting up to `wait_s` for other processes doing the same.

    WAL is a property of the file: set once, every later connection gets it. Switching upgrades
    a shared lock to an exclusive one, and two first connections doing that at once deadlock:
    SQLite answers one of them "database is locked" at once, without calling the busy handler.
    That one tries again, as the busy timeout would have.
    """
    deadline = time.monotonic() + wait_s
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
            if not busy or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
