"""A content-addressed cache of model responses, in one embedded SQLite file.

Eval runs are repeated on every commit, so a re-run of an unchanged prompt must
make no provider calls. The runner computes `cache_key(request, settings,
repeat)` for each call, asks `ResponseCache.get` first, and `put`s the answer
only after a successful call.

What the caller must do (the cache cannot tell on its own):

- Only cache successes. Errors are never stored: a failed call is retried on
  the next run. `put` refuses a completion without text as a last guard.
- Never call the cache for `python:` providers. Agent code can read anything
  (files, clocks, the network), so its answer is not a function of the request.

The key is a sha256 of what decides the answer (endpoint, model, messages,
sampling parameters, output format, repeat index), never of credentials or
headers, so rotating an API key keeps the cache and the file holds no secret.
The stored row holds the completion's text, token usage (prompt-cache tokens
included), reported model, finish reason, tool calls, and the latency of the call
that produced it, so a cached answer reports the latency that call had, not the
microseconds of the lookup; never `Completion.raw`, which may echo anything.

Two processes (an editor's run and a pre-commit hook) may share one file: it
runs in WAL mode (readers never block the writer), waits up to
`BUSY_TIMEOUT_S` for the write lock instead of failing, and writes rows in
batches with `INSERT OR REPLACE`, so the last writer of a key wins. WAL needs
a local file system; do not put the cache on a network share.

One `ResponseCache` owns one connection and must be used from the thread that
made it (in practice: the asyncio event loop's thread; a lookup takes
microseconds, so it is not worth a thread hop).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _ascii
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NoReturn, Self
from urllib.parse import urlsplit, urlunsplit

from agent_evals._sqlite import set_wal
from agent_evals.credentials import scrub
from agent_evals.errors import ConfigError, EvaluationError
from agent_evals.providers.base import Completion, ToolCall, Usage, message_json, tools_json

if TYPE_CHECKING:
    from agent_evals.models import Message
    from agent_evals.providers import ProviderSettings
    from agent_evals.providers.base import ChatRequest

__all__ = [
    "BATCH_SIZE",
    "BUSY_TIMEOUT_S",
    "CACHE_KEY_VERSION",
    "DEFAULT_CACHE_PATH",
    "SCHEMA_VERSION",
    "CacheStats",
    "CachedAnswer",
    "ResponseCache",
    "cache_key",
]

CACHE_KEY_VERSION: Final = 1
"""Part of every key: bump it when the key's contents change, so old entries stop matching."""

SCHEMA_VERSION: Final = 2
"""The layout of the SQLite file; a file with a higher version is refused, a lower one upgraded.

1: text, input and output tokens, model, finish reason.
2: adds prompt-cache tokens, tool calls and the producing call's latency (NULL in rows
   from version 1: not measured).
"""

DEFAULT_CACHE_PATH: Final = Path(".agent-evals") / "cache.sqlite3"
"""Where the cache lives, relative to the project root."""

BUSY_TIMEOUT_S: Final = 10.0
"""How long a write waits for another process's write lock before giving up."""

BATCH_SIZE: Final = 200
"""Buffered `put`s are committed in one transaction once this many are waiting."""

_CORRUPT_MESSAGE: Final = "cache is corrupt; run agent-evals cache clear"
# SQLite's primary result codes for a file that is not (or no longer) a database.
_SQLITE_CORRUPT: Final = 11
_SQLITE_NOTADB: Final = 26
_SQLITE_CANTOPEN: Final = 14


# --- keys --------------------------------------------------------------------


def _normalise_base_url(url: str | None) -> str | None:
    """`url` without userinfo, fragment or trailing slash, scheme and host lowercased.

    `https://u:p@API.example.com/v1/` and `https://api.example.com/v1` are the
    same endpoint; the credentials in the first must not reach the key.
    """
    if url is None:
        return None
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rpartition("@")[2]
    try:
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # an unparsable port: keep the netloc as written, minus userinfo
        pass
    else:
        host = f"[{host}]" if ":" in host else host
        netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, ""))


def _key_payload(request: ChatRequest, settings: ProviderSettings, repeat: int) -> dict[str, Any]:
    spec = request.model
    return {
        "v": CACHE_KEY_VERSION,
        "provider": settings.type,
        "base_url": _normalise_base_url(settings.base_url),
        "model": spec.name,
        "messages": [message_json(m) for m in request.messages],
        "params": spec.params(),
        "extra": spec.extra,
        "output": {"format": request.output.format, "schema": request.output.json_schema},
        "repeat": repeat,
        # Only when offered: the keys of tool-less requests stay what they were.
        **tools_json(request.tools, request.tool_choice),
    }


def cache_key(request: ChatRequest, settings: ProviderSettings, repeat: int = 0) -> str:
    """The cache key of one provider call: a sha256 hex digest.

    The digest covers `CACHE_KEY_VERSION`, the provider type, the base URL
    (without userinfo or trailing slash), the model name, the rendered
    messages, the sampling parameters, `model.extra`, the output format and
    schema, and `repeat`. It never covers the API key, `api_key_env`, the
    headers or the provider's name (two names for one endpoint share entries),
    nor `request.vars`, which matter only through the rendered messages.

    Do not call it for `python:` providers: their answers are not cached.

    Args:
        request: the rendered request.
        settings: the provider the request goes to.
        repeat: the repeat index under `--repeat K` (0 to K-1), so each repeat
            of a case has its own entry.

    Returns:
        64 lowercase hex characters.
    """
    if request.tools or request.tool_choice is not None:
        # An agent step: rarer, and its payload has more keys than the split below knows.
        return hashlib.sha256(_canonical(_key_payload(request, settings, repeat)).encode("ascii")).hexdigest()
    head, middle, tail = _shared_parts(request, settings)
    messages = "[" + ",".join(map(_message_canonical, request.messages)) + "]"
    blob = head + messages + middle + _canonical(repeat) + tail
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def _message_canonical(message: Message) -> str:
    """`_canonical(message_json(message))`, written directly for a message with no tool fields
    (every message of a tool-less prompt): its two strings escaped by the encoder json.dumps uses."""
    if message.tool_calls or message.tool_call_id is not None or message.name or message.is_error:
        return _canonical(message_json(message))
    return '{"content":' + _ascii(message.content) + ',"role":' + _ascii(message.role) + "}"


def _canonical(value: Any) -> str:
    # ensure_ascii keeps the encoding total (a lone surrogate cannot fail it);
    # default=str matches models.canonical_hash for YAML values JSON lacks (dates).
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False, default=str
    )


# Every case of a job shares its model, output spec and provider: the payload is
# serialised around the two parts that differ (messages, repeat), and the rest once
# per job. Keyed by identity; the entry holds the objects, so an id is not reused.
_SharedParts = tuple[object, object, object, tuple[str, str, str]]
_SHARED: dict[tuple[int, int, int], _SharedParts] = {}


def _shared_parts(request: ChatRequest, settings: ProviderSettings) -> tuple[str, str, str]:
    """`_canonical(_key_payload(...))` cut before the messages and before the repeat."""
    spec, output = request.model, request.output
    memo = (id(spec), id(output), id(settings))
    hit = _SHARED.get(memo)
    if hit is not None and hit[0] is spec and hit[1] is output and hit[2] is settings:
        return hit[3]
    payload = _key_payload(request, settings, 0)
    # The keys in sorted order, as json.dumps(sort_keys=True) writes them.
    assert sorted(payload) == [
        "base_url",
        "extra",
        "messages",
        "model",
        "output",
        "params",
        "provider",
        "repeat",
        "v",
    ]
    parts = (
        '{"base_url":'
        + _canonical(payload["base_url"])
        + ',"extra":'
        + _canonical(payload["extra"])
        + ',"messages":',
        ',"model":'
        + _canonical(payload["model"])
        + ',"output":'
        + _canonical(payload["output"])
        + ',"params":'
        + _canonical(payload["params"])
        + ',"provider":'
        + _canonical(payload["provider"])
        + ',"repeat":',
        ',"v":' + _canonical(payload["v"]) + "}",
    )
    if len(_SHARED) >= 64:
        _SHARED.clear()
    _SHARED[memo] = (spec, output, settings, parts)
    return parts


# --- the store ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What a cache file holds, and how one `ResponseCache` has fared.

    Attributes:
        entries: stored responses.
        text_bytes: UTF-8 bytes of stored response text.
        oldest: when the oldest entry was stored (UTC), None when empty.
        newest: when the newest entry was stored (UTC), None when empty.
        per_model: entries per (provider, model), as given to `put`.
        hits: `get` calls answered by this instance.
        misses: `get` calls this instance could not answer.
        file_bytes: size on disk of the database file plus its write-ahead log.
    """

    entries: int
    text_bytes: int
    oldest: datetime | None
    newest: datetime | None
    per_model: Mapping[tuple[str, str], int] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    file_bytes: int = 0


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored answer.

    Attributes:
        completion: the answer; its `raw` is always None (never stored).
        latency_ms: the latency of the call that produced it; None for an entry stored
            before the cache kept latencies (not measured).
    """

    completion: Completion
    latency_ms: float | None


# The row as bound to the INSERT below, in column order.
_Row = tuple[
    str, str, str, str, int | None, int | None, str | None, str | None, float,
    int | None, int | None, str | None, float | None,
]  # fmt: skip

# Version 1's table, then what each later version adds (`_prepare` upgrades in place:
# the entries are paid-for answers, kept).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    response_model TEXT,
    finish_reason TEXT,
    created_at REAL NOT NULL
);
"""
_UPGRADES: Final = {
    2: (
        "ALTER TABLE responses ADD COLUMN cache_read_tokens INTEGER",
        "ALTER TABLE responses ADD COLUMN cache_write_tokens INTEGER",
        "ALTER TABLE responses ADD COLUMN tool_calls TEXT",
        "ALTER TABLE responses ADD COLUMN latency_ms REAL",
    ),
}
_INSERT = (
    "INSERT OR REPLACE INTO responses (key, provider, model, text, input_tokens, output_tokens,"
    " response_model, finish_reason, created_at, cache_read_tokens, cache_write_tokens, tool_calls,"
    " latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = (
    "text, input_tokens, output_tokens, response_model, finish_reason, cache_read_tokens,"
    " cache_write_tokens, tool_calls, latency_ms"
)
_SELECT = f"SELECT {_COLUMNS} FROM responses WHERE key = ?"
_SELECT_MANY = f"SELECT key, {_COLUMNS} FROM responses WHERE key IN ({{marks}})"
_PREFETCH: Final = 500
"""Keys per query of `prefetch` (SQLite allows 32,766 parameters; the statement is cached per size)."""


class ResponseCache:
    """Responses stored by `cache_key`, in a SQLite file shared safely between processes.

    A missing file (and its directory) is created. A file that is corrupt, or
    was written by a newer agent-evals, does not fail here: every method but
    `clear` and `close` raises ConfigError, and `clear` deletes the file and
    starts afresh, so `agent-evals cache clear` always works.

    `put` buffers rows and commits every `BATCH_SIZE` of them; `flush`, `stats`,
    `clear` and `close` (or leaving a `with` block) commit the rest. `get` sees
    buffered rows too.

    Errors: ConfigError for a corrupt, newer-version or unopenable file;
    EvaluationError for anything else SQLite reports (a disk full, a write lock
    held longer than `BUSY_TIMEOUT_S`), with the buffered rows kept for a retry.
    """

    def __init__(self, path: Path) -> None:
        """Open (creating if missing) the cache at `path`.

        Args:
            path: the SQLite file, usually `root / DEFAULT_CACHE_PATH`.

        Raises:
            ConfigError: the file cannot be opened (e.g. `path` is a directory).
            EvaluationError: another process held the write lock for longer than
                `BUSY_TIMEOUT_S` while the schema was being checked.
        """
        self.path = Path(path)
        self._pending: dict[str, _Row] = {}
        self._ahead: dict[str, tuple[Any, ...] | None] = {}
        """Entries `prefetch` read (None: known missing), each dropped when `get` takes it."""
        self._hits = 0
        self._misses = 0
        self._problem: ConfigError | None = None
        self._conn: sqlite3.Connection | None = None
        self._open()

    # --- lifecycle ---

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(self.path):
            # SQLite would open a FIFO (and block), or fail on a device as "disk I/O error" (exit 3).
            try:
                regular = stat.S_ISREG(os.stat(self.path).st_mode)
            except OSError as exc:
                raise ConfigError(
                    f"cannot open the response cache: {exc.strerror}", path=self.path, hint=_NOT_A_FILE
                ) from None
            if not regular:
                raise ConfigError(
                    "the response cache is not a regular file", path=self.path, hint=_NOT_A_FILE
                )
        try:
            # isolation_level=None: reads run in autocommit, and writes take the lock
            # up front with BEGIN IMMEDIATE (a read upgraded to a write can fail with
            # "database is locked" without waiting for the busy timeout).
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            self._raise(exc)
        self._conn = conn
        try:
            self._prepare(conn)
        except ConfigError as exc:
            self._problem = exc
        except sqlite3.Error as exc:
            if _is_corrupt(exc):
                self._problem = ConfigError(_CORRUPT_MESSAGE, path=self.path)
            else:
                self._close_connection()
                self._raise(exc)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Set the pragmas, then create the schema or check its version."""
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        set_wal(conn, BUSY_TIMEOUT_S)
        # In WAL mode NORMAL cannot corrupt the file; a power cut may lose the last
        # commits, which for a cache costs only a repeated call.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = self._schema_version(conn)
            if found is not None and found > SCHEMA_VERSION:
                raise ConfigError(
                    f"the response cache was written by a newer agent-evals (cache schema {found},"
                    f" this version reads {SCHEMA_VERSION})",
                    path=self.path,
                    hint="run agent-evals cache clear, or upgrade agent-evals",
                )
            if found is None:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                found = 1
            if found < SCHEMA_VERSION:
                for version in range(found + 1, SCHEMA_VERSION + 1):
                    for statement in _UPGRADES[version]:
                        conn.execute(statement)
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int | None:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if exists is None:
            return None
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0]) if row is not None and row[0] is not None else None

    def close(self) -> None:
        """Commit buffered rows and close the connection; closing twice is harmless."""
        try:
            if self._conn is not None and self._problem is None:
                self.flush()
        finally:
            self._close_connection()

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- reads and writes ---

    def get(self, key: str) -> CachedAnswer | None:
        """The stored answer for `key`, or None on a miss.

        Raises:
            ConfigError: the file is corrupt or from a newer version.
        """
        row = self._pending.get(key)
        if row is not None:
            self._hits += 1
            return _answer(*row[3:8], *row[9:])
        if key in self._ahead:
            found = self._ahead.pop(key)
        else:
            conn = self._usable()
            try:
                found = conn.execute(_SELECT, (key,)).fetchone()
            except sqlite3.Error as exc:
                self._raise(exc)
        if found is None:
            self._misses += 1
            return None
        self._hits += 1
        return _answer(*found)

    def prefetch(self, keys: Iterable[str]) -> None:
        """Read the entries of many keys in one query (per `_PREFETCH` keys); the next `get` of
        each is answered from memory, a hit or a miss. What is read ahead is dropped as it is got.

        Raises:
            ConfigError: the file is corrupt or from a newer version.
        """
        wanted = [k for k in dict.fromkeys(keys) if k not in self._pending and k not in self._ahead]
        if not wanted:
            return
        conn = self._usable()
        for start in range(0, len(wanted), _PREFETCH):
            chunk = wanted[start : start + _PREFETCH]
            marks = ",".join("?" * len(chunk))
            try:
                found = {row[0]: row[1:] for row in conn.execute(_SELECT_MANY.format(marks=marks), chunk)}
            except sqlite3.Error as exc:
                self._raise(exc)
            for key in chunk:
                self._ahead[key] = found.get(key)

    def put(
        self, key: str, completion: Completion, *, provider: str, model: str, latency_ms: float | None = None
    ) -> None:
        """Store a successful completion under `key` (replacing any entry).

        Only successes belong here: the caller never puts errors. The row is
        buffered and committed with the next batch.

        Args:
            key: from `cache_key`.
            completion: the answer; its `raw` is dropped.
            provider: the provider's name, for `stats`.
            model: the requested model name, for `stats`.
            latency_ms: how long the call that produced it took; what a later hit reports.

        Raises:
            ValueError: `completion.text` is not a string (not a success).
            ConfigError: the file is corrupt or from a newer version.
            EvaluationError: a batch could not be committed.
        """
        if not isinstance(completion.text, str):
            raise ValueError("refusing to cache a completion without text: only successes are cached")
        self._usable()
        usage = completion.usage
        self._pending[key] = (
            key,
            provider,
            model,
            scrub(completion.text),
            usage.input_tokens if usage is not None else None,
            usage.output_tokens if usage is not None else None,
            completion.model,
            completion.finish_reason,
            time.time(),
            usage.cache_read_tokens if usage is not None else None,
            usage.cache_write_tokens if usage is not None else None,
            scrub(_tool_calls_json(completion.tool_calls)) if completion.tool_calls else None,
            latency_ms,
        )
        if len(self._pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        """Commit buffered rows in one transaction.

        Raises:
            ConfigError: the file is corrupt or from a newer version.
            EvaluationError: the write failed; the rows stay buffered.
        """
        if not self._pending:
            return
        conn = self._usable()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT, self._pending.values())
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._raise(exc)
        self._pending.clear()

    # --- maintenance ---

    def stats(self) -> CacheStats:
        """Counts and sizes of the stored entries, after committing buffered rows.

        Raises:
            ConfigError: the file is corrupt or from a newer version.
        """
        self.flush()
        conn = self._usable()
        try:
            entries, text_bytes, oldest, newest = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(text AS BLOB))), 0), MIN(created_at),"
                " MAX(created_at) FROM responses"
            ).fetchone()
            per_model = {
                (provider, model): count
                for provider, model, count in conn.execute(
                    "SELECT provider, model, COUNT(*) FROM responses GROUP BY provider, model"
                    " ORDER BY provider, model"
                )
            }
        except sqlite3.Error as exc:
            self._raise(exc)
        return CacheStats(
            entries=entries,
            text_bytes=text_bytes,
            oldest=_utc(oldest),
            newest=_utc(newest),
            per_model=per_model,
            hits=self._hits,
            misses=self._misses,
            file_bytes=sum(_size(self.path.with_name(self.path.name + s)) for s in ("", "-wal")),
        )

    def clear(self, *, older_than_days: float | None = None) -> int:
        """Delete entries: all of them, or those stored more than `older_than_days` ago.

        A corrupt or newer-version file is deleted whole (whatever
        `older_than_days` says) and a fresh cache is created in its place.

        Args:
            older_than_days: keep entries younger than this; None deletes all.

        Returns:
            The number of entries deleted (0 when a broken file was deleted:
            its rows cannot be counted).

        Raises:
            ValueError: `older_than_days` is negative or not a number.
            EvaluationError: the write failed.
        """
        if older_than_days is not None and not (math.isfinite(older_than_days) and older_than_days >= 0):
            raise ValueError(f"older_than_days must be a number >= 0, not {older_than_days}")
        if self._problem is not None:
            self._pending.clear()
            self._close_connection()
            for suffix in ("", "-wal", "-shm", "-journal"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            self._problem = None
            self._open()
            return 0
        self.flush()
        self._ahead.clear()
        conn = self._usable()
        try:
            if older_than_days is None:
                deleted = conn.execute("DELETE FROM responses").rowcount
            else:
                cutoff = time.time() - older_than_days * 86400
                deleted = conn.execute("DELETE FROM responses WHERE created_at < ?", (cutoff,)).rowcount
        except sqlite3.Error as exc:
            self._raise(exc)
        if deleted:
            self._shrink(conn)
        return deleted

    def _shrink(self, conn: sqlite3.Connection) -> None:
        """Give freed pages back to the file system; best effort."""
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            # Another process is using the file: the space is reused by later puts anyway.
            pass

    # --- errors ---

    def _usable(self) -> sqlite3.Connection:
        if self._problem is not None:
            raise self._problem
        if self._conn is None:
            raise EvaluationError(f"the response cache {self.path} is closed")
        return self._conn

    def _raise(self, exc: sqlite3.Error) -> NoReturn:
        """Raise our error for a SQLite error (corruption found late is remembered)."""
        if _is_corrupt(exc):
            self._problem = ConfigError(_CORRUPT_MESSAGE, path=self.path)
            raise self._problem from None
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_CANTOPEN:
            raise ConfigError(
                f"cannot open the response cache: {exc}", path=self.path, hint=_NOT_A_FILE
            ) from None
        raise EvaluationError(f"response cache {self.path}: {exc}") from exc


_NOT_A_FILE = "check the path is a writable file, not a directory; remove it and the cache starts empty"


def _is_corrupt(exc: sqlite3.Error) -> bool:
    # Extended result codes keep the primary code in the low byte.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _tool_calls_json(calls: tuple[ToolCall, ...]) -> str:
    return json.dumps(
        [{"name": c.name, "arguments": c.arguments, "id": c.id} for c in calls], ensure_ascii=False
    )


def _answer(
    text: str,
    input_tokens: int | None,
    output_tokens: int | None,
    model: str | None,
    finish_reason: str | None,
    cache_read_tokens: int | None,
    cache_write_tokens: int | None,
    tool_calls: str | None,
    latency_ms: float | None,
) -> CachedAnswer:
    usage = None
    if input_tokens is not None or output_tokens is not None:
        usage = Usage(
            input_tokens=input_tokens or 0,
            output_tokens=output_tokens or 0,
            cache_read_tokens=cache_read_tokens or 0,
            cache_write_tokens=cache_write_tokens or 0,
        )
    calls = (
        tuple(ToolCall(name=c["name"], arguments=c["arguments"], id=c["id"]) for c in json.loads(tool_calls))
        if tool_calls
        else ()
    )
    completion = Completion(
        text=text, usage=usage, model=model, finish_reason=finish_reason, tool_calls=calls
    )
    return CachedAnswer(completion, latency_ms)


def _utc(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
