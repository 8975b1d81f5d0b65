"""A large run's record followed into the history store by a process of its own.

A run's cases go into the history as they finish (`feed.HistoryFeed`). In the run's own process
the feed's writer thread shares the interpreter lock with the event loop: on a CPU-bound run of
10,000 cases it cost 1.2 s of the run's CPU, a fifth of its wall time. So a run of at least
`FOLLOW_MIN` results has its record followed by a child, `python -m agent_evals.history.follow`,
which reads the record as the run writes it and hands its cases to a `HistoryFeed` of its own
(the same batches, transactions and rows), on another core. Its garbage collector runs at
`_gc.THRESHOLDS`, as the run's does: at the defaults it took a fifth of the child's CPU. The run's
process pays a one-byte write per record flush. A smaller run keeps the feed in its process: a
child's start-up (its imports, a third of a second of CPU) would cost it more than its rows.

The child reads the record, not the run's memory: what it writes is what the record holds, line
for line (scrubbed of keys, as every record is).

Between the two, over the child's stdin: `f` after each flush of the record (lines to read), `c`
once the record is closed (its end line is on disk); the end of input without `c` (the run is
stopping, or died) abandons the run: the child stops after the transaction under way, leaving
what it wrote for `history import` of the record to complete. The child prints one JSON line on
stdout: what it wrote, or the store's error; a crash leaves its traceback on stderr. It runs in a
session of its own, so a Ctrl-C at the terminal reaches the run, which abandons it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from agent_evals.credentials import scrub
from agent_evals.errors import ConfigError
from agent_evals.history.feed import LINGER_S

if TYPE_CHECKING:
    from agent_evals.history.feed import StreamedRun
    from agent_evals.history.imported import Imported
    from agent_evals.history.store import Store
    from agent_evals.models import ProjectConfig
    from agent_evals.record import CaseResult, RunEnd

__all__ = ["FOLLOW_MIN", "FollowedRun", "ProjectStore", "child_env"]

FOLLOW_MIN = 1000
"""Results a run must expect (cases x repeats) to have its record followed by a child process."""
_ABANDON_S = 1.0
"""How long `abandon` waits for the child to end the transaction under way before killing it."""


@dataclass(frozen=True)
class ProjectStore:
    """The history store of the project at `root`, as its config and the environment name it:
    where `run` writes. Calling it opens the store; a child process finds the same one from `root`."""

    root: Path
    config: ProjectConfig

    def __call__(self) -> Store:
        from agent_evals.history.store import open_store, resolve_url

        return open_store(resolve_url(self.root, self.config))


class FollowedRun:
    """The run's side of a child following its record into the store (see the module docstring).

    Args:
        record: the run's record (the store names it as given); its header is on disk already.
        root: the project's root, from which the child finds the store (`ProjectStore`).

    Raises:
        OSError: the child could not be started.
    """

    def __init__(self, record: Path, root: Path) -> None:
        self._source = str(record)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agent_evals.history.follow", str(record.absolute()), self._source],
            cwd=root,
            env=child_env(os.environ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self._proc.stdin is not None
        self._stdin: IO[bytes] = self._proc.stdin
        # A wake-up that does not fit in the pipe is not needed: the child has many waiting.
        os.set_blocking(self._stdin.fileno(), False)

    def flushed(self, results: Sequence[CaseResult] = ()) -> None:
        """The record's writer flushed lines (`record.RecordWriter`'s `on_flush`): wake the child."""
        self._send(b"f")

    def close(self, end: RunEnd | None = None) -> Imported:
        """The record is closed (`end` is its last line): wait for the child to write the rest.

        Returns:
            What was written of the run.

        Raises:
            ConfigError: the store could not be opened or written (the cases written before
                the failure stay; `history import` of the record completes the run).
            RuntimeError: the child failed (its traceback in the message).
        """
        from agent_evals.history.imported import Imported

        self._send(b"c")
        out, err = self._proc.communicate()
        said = _said(out)
        if "error" in said:
            raise ConfigError(**said["error"])
        if "imported" in said:
            return Imported(**said["imported"])
        code = self._proc.returncode
        if code < 0:  # killed (the OOM killer, an impatient user): what it wrote stays
            raise ConfigError(
                f"the process writing this run into the history store was killed (signal {-code})",
                hint=f"agent-evals history import {self._source} completes it",
            )
        tail = scrub(err.decode("utf-8", "replace")).strip()
        raise RuntimeError(f"the history follower ended with exit code {code}:\n{tail}")

    def abandon(self) -> None:
        """Stop the child without the run's end (the run is dying): it ends the transaction
        under way, or is killed after `_ABANDON_S`. Calling it again, or after `close`, does nothing."""
        if self._proc.returncode is not None:
            return
        self._stdin.close()  # the end of input without `c`
        self._proc.stdin = None  # closed already: `communicate` must not flush it
        try:
            self._proc.communicate(timeout=_ABANDON_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()

    def _send(self, data: bytes) -> None:
        if self._stdin.closed:
            return
        # A full pipe holds wake-ups enough; a child that died is reported by `close`.
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._stdin.fileno(), data)


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: the run's, with the folder this `agent_evals` was imported from
    first on its path, so it runs the same code even when the run found it through a relative
    `PYTHONPATH` or its own working directory (the child starts in the project's root)."""
    home = str(Path(__file__).resolve().parents[2])
    path = [home, *(p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**environ, "PYTHONPATH": os.pathsep.join(path)}


def _said(out: bytes) -> dict[str, Any]:
    try:
        said = json.loads(out.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    return said if isinstance(said, dict) else {}


# --- the child ----------------------------------------------------------------------------------


class _Abandoned(Exception):
    """The run's end of the pipe closed before `c`."""


class _Batches:
    """The cases read, written a batch at a time: when `BATCH` wait, `LINGER_S` after the first of
    them was read (so a slow run's cases reach the store too), and at the end. One thread: the
    process has nothing else to do."""

    BATCH = 1000

    def __init__(self, run: StreamedRun) -> None:
        self.run = run
        self.pending: list[CaseResult] = []
        self.due: float | None = None
        """When the pending cases are written even if fewer than `BATCH` (monotonic)."""

    def add(self, case: CaseResult) -> None:
        self.pending.append(case)
        if self.due is None:
            self.due = time.monotonic() + LINGER_S
        if len(self.pending) >= self.BATCH:
            self.write()

    def write(self) -> None:
        if self.pending:
            self.run.write(self.pending)
        self.pending, self.due = [], None


def _complete_lines(fh: IO[bytes], commands: int, batches: list[_Batches]) -> Iterator[bytes]:
    """The record's lines as the run writes them, each once it is whole (a flush may be seen half
    written); after `c`, the rest of the file. A line longer than the cap is passed on at the cap,
    for the parser to refuse, as it would reading the file whole. While it waits for the run, a
    batch whose time has come is written (`batches`: empty until the header was read).

    Raises:
        _Abandoned: the run closed the pipe before `c`.
    """
    from agent_evals.load import MAX_LINE_BYTES

    part = b""
    closed = False
    while True:
        data = fh.readline(MAX_LINE_BYTES + 1 - len(part))
        if data:
            part += data
            if part.endswith(b"\n") or len(part) > MAX_LINE_BYTES:
                yield part
                part = b""
            continue
        if closed:
            if part:
                yield part  # cut short by a crash: the parser passes over a last partial line
            return
        due = batches[0].due if batches else None
        wait = None if due is None else max(0.0, due - time.monotonic())
        if not select.select([commands], [], [], wait)[0]:
            batches[0].write()  # its LINGER_S passed
            continue
        data = os.read(commands, 4096)
        if not data:
            raise _Abandoned
        closed = b"c" in data


def _follow(record: Path, source: str, commands: int) -> Imported | None:
    """Write the run whose record is at `record` into the project's store as it is written;
    None when the run abandoned it."""
    from agent_evals.history.feed import StreamedRun
    from agent_evals.load import load_config
    from agent_evals.record import CaseResult, RunEnd, RunHeader, parse_lines

    root = Path.cwd()
    opener = ProjectStore(root, load_config(root))
    batches: list[_Batches] = []
    with record.open("rb") as fh:
        lines = parse_lines(_complete_lines(fh, commands, batches), record, header_first=True)
        try:
            first = next(lines, None)
            if first is None or not isinstance(first[1], RunHeader):
                raise ConfigError("no header line", path=record, line=1, hint="is this a run record?")
            with StreamedRun(opener(), first[1], source) as run:
                batches.append(_Batches(run))
                end: RunEnd | None = None
                for _, line in lines:
                    if isinstance(line, CaseResult):
                        batches[0].add(line)
                    elif isinstance(line, RunEnd):
                        end = line  # a resumed run appends: the last end line wins
                batches[0].write()
                return run.end(end)
        except _Abandoned:
            return None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m agent_evals.history.follow RECORD SOURCE`, started by `FollowedRun`."""
    from agent_evals._gc import collecting_less

    record, source = argv if argv is not None else sys.argv[1:]
    try:
        with collecting_less():  # the lines and rows of a batch are many objects
            imported = _follow(Path(record), source, sys.stdin.fileno())
    except ConfigError as exc:
        said: dict[str, Any] = {
            "error": {"message": exc.message, "path": exc.path, "line": exc.line, "hint": exc.hint}
        }
    else:
        said = {"imported": asdict(imported)} if imported is not None else {"abandoned": True}
    # A run that died reads nothing: its end of the pipe is gone, and so is the answer.
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.write(json.dumps(said) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    code = main()
    # The store is closed and the answer flushed: the interpreter's tear-down of SQLAlchemy and
    # pydantic (a third of a second) would only keep the run waiting.
    os._exit(code)
