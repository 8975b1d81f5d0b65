"""A run's case results into the history store while the run runs, from a background thread (a run
of `follow.FOLLOW_MIN` results or more is followed by a child process instead, `history.follow`,
which writes with this module's `StreamedRun`).

`agent-evals run` hands each finished case to `HistoryFeed.put` (a cheap append); a thread of
the feed's own opens the store (SQLAlchemy loads there, not before the first request), writes
the cases in batches while the run waits on the network, and writes the run's end at `close`.
What it holds is bounded: `put` waits while the writer is `batch * 4` cases behind, as long as
the writer keeps taking batches; one that takes none for `_STALL_S` (a stuck store) makes the feed
stop queueing and, at `close`, complete the run from its record, so the run's event loop never
stops for long.

It is `ingest.add_run` spread over several transactions (`ingest.RunWrite`: the same rows, the
same inserts): each batch is one transaction, so another process can write the store between
two (SQLite's write lock is held for a batch, never for the run). A batch is written when it
is full, or `LINGER_S` after its first case arrived, so a slow run's cases reach the store too.

What readers see mid-run: the run's row appears with its first batch, as a record without an end
line imports: status `interrupted` and no `finished_at`, with totals counted from the cases
written so far (recounted with each batch, so `history`'s cached figures, stamped by the totals,
are recomputed). `close` writes the end (status, `finished_at`). A run that dies (`abandon`)
leaves the cases written so far and no end; `history import` of its record, which holds the
rest, completes it, each case once, as it would a record imported half-written.

A store that cannot be opened or written does not stop the run: the feed stops writing, `put`
goes on accepting (and dropping) cases, and `close` raises the store's `ConfigError`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent_evals.errors import ConfigError

if TYPE_CHECKING:
    from agent_evals.history.imported import Imported
    from agent_evals.history.store import Store
    from agent_evals.record import CaseResult, RunEnd, RunHeader

__all__ = ["LINGER_S", "HistoryFeed", "StreamedRun"]

LINGER_S = 1.0
"""How long a case waits for its batch to fill before the batch is written as it is."""
_BEHIND = 4
"""Batches the writer may be behind before `put` waits for it."""
_STALL_S = 5.0
"""How long `put` waits for a writer that takes no batch before the feed stops queueing (the
record then completes the run at `close`)."""
_ABANDON_S = 1.0
"""How long `abandon` waits for a transaction under way to end."""


class HistoryFeed:
    """Writes one run into the history store as its cases finish.

    `put` is called from the run's thread (the event loop), `close` or `abandon` once at the end
    from the same thread; the store's engine and connections are used by the feed's thread only.

    Args:
        open_store: opens the store (called in the feed's thread).
        header: the run's header.
        source: the run's record path, stored and shown.
        batch: case results per transaction.
        behind: batches queued before `put` waits for the writer.
        stall_s: how long `put` waits for a writer that takes no batch before the feed stops
            queueing and leaves the rest of the run to its record.
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        header: RunHeader,
        *,
        source: str,
        batch: int = 1000,
        behind: int = _BEHIND,
        stall_s: float = _STALL_S,
    ) -> None:
        if batch < 1 or behind < 1:
            raise ValueError("batch and behind must be at least 1")
        self._open_store = open_store
        self._header = header
        self._source = source
        self._batch = batch
        self._limit = batch * behind
        self._stall_s = stall_s
        self._pending: deque[CaseResult] = deque()
        self._ready = threading.Event()
        """Set when the writer has something to do: a first or a full batch, close, abandon."""
        self._room = threading.Event()
        """Set when the writer took a batch (or stopped): a waiting `put` checks again."""
        self._dropping = False
        self._overflowed = False
        """The writer took no batch for `stall_s` while `behind` batches waited: the rest of the run
        comes from its record."""
        self._closing = False
        self._abandoned = False
        self._end: RunEnd | None = None
        self._error: BaseException | None = None
        self._imported: Imported | None = None
        self._thread = threading.Thread(target=self._main, name="agent-evals history feed", daemon=True)
        self._thread.start()

    def put(self, result: CaseResult) -> None:
        """Queue a finished case for the store; waits only while the writer is far behind.

        It is called from the run's event loop. When the writer is `_BEHIND` batches behind, it
        waits for room, as long as the writer keeps taking batches: a CPU-bound run yields the
        interpreter to it. A writer that takes none for `_STALL_S` (a store stuck on a lock or a
        slow link) must not stall every call in flight: the feed stops queueing, writes what it
        holds, and at `close` completes the run from its record (`ingest.import_record_file`,
        which adds what the store lacks).
        After the store failed, or after `close` or `abandon`, the case is dropped.
        """
        if self._dropping:
            return
        pending = self._pending
        if len(pending) >= self._limit and not self._wait_for_room():
            self._overflowed = self._dropping = True
            self._ready.set()
            return
        pending.append(result)
        n = len(pending)
        # Wake the writer for a batch's first case (its LINGER_S starts) and once a batch is full.
        if n == 1 or n >= self._batch:
            self._ready.set()

    def flushed(self, results: Sequence[CaseResult]) -> None:
        """`put` each of the results a flush of the run's record wrote (`record.RecordWriter`'s `on_flush`)."""
        for result in results:
            self.put(result)

    def _wait_for_room(self) -> bool:
        """Wait while the writer makes room, as long as it takes a batch at least every `_STALL_S`
        (a run busier than its store slows down a little, and the store keeps up); False when it
        took none for that long (a store stuck on a lock or a slow link) or has stopped."""
        while len(self._pending) >= self._limit:
            self._room.clear()
            # Checked again after clearing: the writer may have taken a batch in between.
            if len(self._pending) < self._limit:
                break
            if self._dropping or not self._thread.is_alive() or not self._room.wait(self._stall_s):
                return False
        return True

    def close(self, end: RunEnd | None) -> Imported:
        """Write the cases still queued and the run's end (None: the run has none), and wait for it.

        Returns:
            What was written of the run (`added` when the feed inserted it).

        Raises:
            ConfigError: the store could not be opened or written (the cases written before
                the failure stay; `history import` of the record completes the run).
        """
        if self._abandoned:
            raise RuntimeError("close() after abandon()")
        self._end = end
        self._closing = True
        self._ready.set()
        self._thread.join()
        self._dropping = True
        if self._error is not None:
            raise self._error
        assert self._imported is not None
        return self._imported

    def abandon(self) -> None:
        """Stop writing without the end (the run is dying); what is queued is dropped.

        Waits at most `_ABANDON_S` for a transaction under way; the thread is a daemon, so it
        never holds the process. Calling it again, or after `close`, does nothing.
        """
        if self._abandoned or not self._thread.is_alive():
            self._abandoned = True
            return
        self._abandoned = True
        self._dropping = True
        self._ready.set()
        self._room.set()
        self._thread.join(_ABANDON_S)

    # --- the feed's thread ---------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._write()
        except ConfigError as exc:
            self._error = exc
        except BaseException as exc:  # a bug: raised by close in the run's thread, not printed here
            self._error = exc
        finally:
            self._dropping = True
            self._pending.clear()
            self._room.set()

    def _write(self) -> None:
        # The store is opened (and SQLAlchemy imported) when the first batch is due, not when the
        # run starts: a run's start-up is all on the way to its first request.
        cases = self._take()
        if self._abandoned:
            return
        with StreamedRun(self._open_store(), self._header, self._source) as run:
            while cases is not None:
                run.write(cases)
                cases = self._take()
            if self._abandoned:
                return
            self._imported = run.complete() if self._overflowed else run.end(self._end)

    def _take(self) -> list[CaseResult] | None:
        """The next batch to write: when full, `LINGER_S` after its first case, or at close;
        None once closing with nothing left, or abandoned."""
        pending = self._pending
        deadline: float | None = None
        while not self._abandoned:
            # `closing` read before the length: once it is set, every case has been put.
            closing = self._closing
            n = len(pending)
            due = deadline is not None and time.monotonic() >= deadline
            if n and (n >= self._batch or closing or due):
                taken = [pending.popleft() for _ in range(min(n, self._batch))]
                self._room.set()
                return taken
            if closing:
                return None
            if n and deadline is None:
                deadline = time.monotonic() + LINGER_S
            self._ready.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            self._ready.clear()
        return None


class StreamedRun:
    """One run written in batches, a transaction each, its end last: `ingest.add_run` spread over
    several transactions (`ingest.RunWrite`). What a `HistoryFeed`'s thread and a followed record's
    process (`history.follow`) both write with. Closing it closes the store.

    Args:
        store: the open store (this object closes it).
        header: the run's header.
        source: the run's record path, stored and shown.
    """

    def __init__(self, store: Store, header: RunHeader, source: str) -> None:
        from agent_evals.history.ingest import RunWrite

        self._store = store
        self._source = source
        self._run = RunWrite(header, source)
        self._skipped: Imported | None = None
        """Set when the store holds the run already (from another process): nothing more is written."""

    def write(self, cases: Sequence[CaseResult]) -> None:
        """Write a batch of cases in one transaction (the run's row first, when it is new)."""
        if self._skipped is None:
            with self._store.write() as conn:
                self._skipped = self._run.open(conn)
                if self._skipped is None:
                    self._run.cases(conn, ((None, case) for case in cases))
                    self._run.finish(conn, None)

    def end(self, end: RunEnd | None) -> Imported:
        """Write the run's end (None: the run has none); what was written of the run."""
        if self._skipped is None:
            with self._store.write() as conn:
                self._skipped = self._run.open(conn)
                if self._skipped is None:
                    self._run.finish(conn, end)
        return self._skipped or self._run.imported()

    def complete(self) -> Imported:
        """Complete the run from its record, which is whole now (its end line written): what was
        not written in batches goes in from it, each case once, with the end."""
        from agent_evals.history.imported import Imported
        from agent_evals.history.ingest import import_record_file

        if self._skipped is not None:
            return self._skipped
        rest = import_record_file(self._store, Path(self._source))
        return Imported(
            "run", rest.id, "added" if self._run.created else rest.outcome, self._source,
            self._run.written + rest.results,
        )  # fmt: skip

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> StreamedRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
