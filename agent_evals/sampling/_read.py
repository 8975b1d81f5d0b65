"""Read a production log in chunks: JSON Lines, CSV or Parquet (optionally gzipped text).

Each chunk is a list of rows (plain dicts, nested as the log has them) with the
line each came from (JSONL, CSV: the physical line a row starts on) or its row
number (Parquet), so a problem with a row can name it. The file's sha256 is
computed while it is read, for the provenance. A malformed line stops the read
with a message naming it, unless bad lines are skipped, and then every skipped
line is counted by reason: never silently.

Malformed: not valid text in the encoding; for JSONL, not a JSON object, NaN or
Infinity, an integer past Python's digit limit, nesting deeper than MAX_DEPTH,
half a surrogate pair; for CSV, a row with too few or too many fields, a quote
that never closes (named at the line where it opens; skipping resumes on the
next line, reading the file again up to there), other invalid CSV.

Too large: a row (a JSONL line, a CSV record) over MAX_ROW_BYTES or with a
string over MAX_FIELD_CHARS is never a case. Such rows are always skipped and
counted (`too_large`); a line is read MAX_ROW_BYTES at a time at most, so one
huge line never sits in memory whole.

OpenTelemetry (`--format otel`): JSON lines of spans as exporters write them: a span
per line (flat, or the Python SDK's `to_json`), a list of spans, or OTLP JSON
(`{"resourceSpans": ...}`, the collector's file exporter). Spans are grouped by trace
id into one row per trace, whatever lines they are spread over; the file is read
twice, first to learn the line of each trace's last span, so only traces still open
are held in memory. A row is:

    {"trace_id": ..., "name": <the root span's name>, "start_time": ..., "end_time": ...,
     "attributes": {<every span's attributes; the earliest span's value wins>},
     "input": <the first user message text in a gen_ai.input.messages>,
     "output": <the trace's final answer text>,
     "spans": [<the spans, by start time, in the flat JSON form>]}

and its position is the line of its first span. A line with no span in it, or a
span without a trace id, is a bad line.

CSV is parsed with the csv module, not pandas: it tells the physical line a row
starts on and how many fields it has (pandas fills a short row with nulls
silently), and it is faster here, as rows end up as dicts anyway.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from agent_evals._json import lone_surrogate, nested_deeper, strings
from agent_evals.errors import ConfigError
from agent_evals.record import open_regular

Format = Literal["jsonl", "csv", "parquet", "otel"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet", "otel")
_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SKIP_HINT = "fix the line, or pass --skip-bad-lines"
LOG_FIX = "check the path"
PARQUET_EXTRA = "agent-evals[parquet]"
"""The install that brings pyarrow, which reading a Parquet log needs (see pyproject.toml)."""
MAX_ROW_BYTES = 4 << 20
"""A row (JSONL line, CSV record) longer than this (4 MiB) is skipped and counted, never read whole."""
MAX_FIELD_CHARS = 1 << 20
"""A row with a string (a value, a key, a CSV cell) longer than this (1 Mi characters) is skipped and counted."""
MAX_DEPTH = 100
"""JSON nested deeper than this is a bad line: every later step walks it recursively."""
ROW_TOO_LARGE = "row over 4 MiB"
FIELD_TOO_LARGE = "a field over 1 Mi characters"
_BLOCK = 1 << 20
_BOM = b"\xef\xbb\xbf"
_NOT_JSON_HINT = "write null or a string instead, fix the line, or pass --skip-bad-lines"
_NUMBER_HINT = "write the number as a string, fix the line, or pass --skip-bad-lines"
_DEPTH_HINT = "flatten the line, or pass --skip-bad-lines"


def detect_format(path: Path, given: str | None = None) -> Format:
    """The log's format: `given`, or from the file name (`.jsonl`, `.csv`, `.parquet`, each maybe `.gz`).

    Raises:
        ConfigError: an unknown format.
    """
    if given is not None:
        if given not in FORMATS:
            raise ConfigError(f"unknown log format '{given}'", hint=f"use one of: {', '.join(FORMATS)}")
        return given
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise ConfigError(
            "cannot tell the log's format from its name",
            path=path,
            hint="name it .jsonl, .csv or .parquet (optionally .gz), or pass --format",
        )
    return fmt


def open_log(path: Path, shown: str | None = None, fix: str = LOG_FIX) -> IO[bytes]:
    """The log opened for reading in binary, only if it is a regular file (`record.open_regular`):
    a FIFO would block the read, and a device such as /dev/zero would never end it.

    Raises:
        ConfigError: missing, a folder, a FIFO, a device, a symlink loop or unreadable, naming
            `shown` (else `path`); `fix` is the hint.
    """
    try:
        return open_regular(path, fix, "log file")
    except ConfigError as exc:
        raise ConfigError(exc.message, path=shown or path, hint=exc.hint) from None


@dataclass
class Chunk:
    """Rows read from the log and where each starts (a line for JSONL, a row number otherwise)."""

    rows: list[dict[str, Any]]
    positions: list[int]


class _Hashing(io.RawIOBase):
    """A binary file that hashes every byte read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.sha.update(data)
        return len(data)


@dataclass
class LogReader:
    """Reads one log file chunk by chunk; see the module docstring.

    Attributes:
        bad: skipped lines by reason (only with `skip_bad_lines`).
        too_large: rows skipped as too large (over MAX_ROW_BYTES, or a field over MAX_FIELD_CHARS), by reason.
        columns: the columns of the file, when its format has a header (CSV, Parquet).
        sha256: `sha256:<hex>` of the file's bytes, once it has been read to the end.
    """

    path: Path
    fmt: Format
    chunksize: int = 50_000
    encoding: str = "utf-8"
    skip_bad_lines: bool = False
    shown: str | None = None
    bad: Counter[str] = field(default_factory=Counter)
    too_large: Counter[str] = field(default_factory=Counter)
    columns: list[str] | None = None
    sha256: str | None = None
    group_traces: bool = True
    """`otel`: rows are traces (False: the lines' own objects, for the first pass)."""

    @property
    def name(self) -> str:
        return self.shown or str(self.path)

    @property
    def unit(self) -> str:
        return "row" if self.fmt == "parquet" else "line"

    def error(self, position: int | None, message: str, hint: str) -> ConfigError:
        """A ConfigError naming the line (JSONL, CSV) or row (Parquet) of the log."""
        if position is None:
            return ConfigError(message, path=self.name, hint=hint)
        if self.fmt != "parquet":
            return ConfigError(message, path=self.name, line=position, hint=hint)
        return ConfigError(f"row {position}: {message}", path=self.name, hint=hint)

    def skip_or_raise(self, position: int, reason: str, detail: str, hint: str = SKIP_HINT) -> None:
        """Count a bad line when skipping, else stop with a message naming it."""
        if not self.skip_bad_lines:
            raise self.error(position, f"{reason} ({detail})" if detail else reason, hint)
        self.bad[reason] += 1

    def chunks(self) -> Iterator[Chunk]:
        """The log's rows, `chunksize` at a time."""
        ends = self._trace_ends() if self.fmt == "otel" and self.group_traces else None
        with open_log(self.path, self.shown) as raw:
            try:
                if self.fmt == "parquet":
                    yield from self._parquet(raw)
                    return
                hashing = _Hashing(raw)
                buffered = io.BufferedReader(hashing, _BLOCK)
                source: IO[bytes] = buffered
                if self.path.suffix.lower() == ".gz":
                    source = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
                try:
                    if ends is not None:
                        yield from self._traces(self._jsonl(source), ends)
                    elif self.fmt in ("jsonl", "otel"):
                        yield from self._jsonl(source)
                    else:
                        yield from self._csv(source)
                except (gzip.BadGzipFile, EOFError) as exc:
                    raise ConfigError(
                        f"not a gzip file ({exc})", path=self.name, hint="check the file"
                    ) from None
                # Hash what is left (a gzip trailer, a last partial block) so the digest is the file's.
                while hashing.read(_BLOCK):
                    pass
                self.sha256 = "sha256:" + hashing.sha.hexdigest()
            except OSError as exc:  # a disk or network file system failing mid-read
                raise ConfigError(
                    f"cannot read the log ({exc.strerror or exc})", path=self.name, hint=LOG_FIX
                ) from None

    # --- JSON Lines -------------------------------------------------------------

    def _jsonl(self, source: IO[bytes]) -> Iterator[Chunk]:
        rows: list[dict[str, Any]] = []
        positions: list[int] = []
        lineno = 0
        readline = source.readline
        decode = _DECODER.decode
        while raw := readline(MAX_ROW_BYTES + 1):
            lineno += 1
            if len(raw) > MAX_ROW_BYTES and raw[-1:] != b"\n":
                _skip_line(source)
                self.too_large[ROW_TOO_LARGE] += 1
                continue
            if lineno == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                self.skip_or_raise(
                    lineno, f"not {self.encoding} text", _decode_detail(exc), _encoding_hint(self)
                )
                continue
            try:
                row = decode(text)
            except json.JSONDecodeError as exc:
                self.skip_or_raise(lineno, "not valid JSON", f"{exc.msg} at column {exc.colno}")
                continue
            except _NotJson as exc:
                self.skip_or_raise(lineno, "not valid JSON", str(exc), _NOT_JSON_HINT)
                continue
            except RecursionError:
                self.skip_or_raise(lineno, "nested too deeply", f"more than {MAX_DEPTH} levels", _DEPTH_HINT)
                continue
            except ValueError:  # an integer past Python's digit limit: the only other ValueError
                self.skip_or_raise(lineno, "number out of range", _digits_detail(), _NUMBER_HINT)
                continue
            if isinstance(row, list) and self.fmt == "otel":
                row = {"spans": row}  # a line holding a list of spans
            if not isinstance(row, dict):
                self.skip_or_raise(lineno, "not a JSON object", f"got {_json_kind(row)}")
                continue
            # Cheap byte counts rule out almost every line; the walks below run only on the rest.
            if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nested_deeper(row, MAX_DEPTH):
                self.skip_or_raise(lineno, "nested too deeply", f"more than {MAX_DEPTH} levels", _DEPTH_HINT)
                continue
            if b"\\u" in raw and lone_surrogate(row):
                self.skip_or_raise(
                    lineno, "not valid JSON", "a \\u escape of half a surrogate pair", SKIP_HINT
                )
                continue
            if len(raw) > MAX_FIELD_CHARS and _longest_string(row) > MAX_FIELD_CHARS:
                self.too_large[FIELD_TOO_LARGE] += 1
                continue
            rows.append(row)
            positions.append(lineno)
            if len(rows) >= self.chunksize:
                yield Chunk(rows, positions)
                rows, positions = [], []
        if rows:
            yield Chunk(rows, positions)

    # --- OpenTelemetry spans, a row per trace ------------------------------------

    def _trace_ends(self) -> dict[str, int]:
        """The first pass: the line of each trace's last span (bad lines are the second pass's to report)."""
        probe = LogReader(
            self.path,
            "otel",
            chunksize=self.chunksize,
            encoding=self.encoding,
            skip_bad_lines=self.skip_bad_lines,
            shown=self.shown,
            group_traces=False,
        )
        ends: dict[str, int] = {}
        for chunk in probe.chunks():
            for row, line in zip(chunk.rows, chunk.positions, strict=True):
                for span in _line_spans(row) or ():
                    ends[span.trace_id or ""] = line
        return ends

    def _traces(self, chunks: Iterator[Chunk], ends: dict[str, int]) -> Iterator[Chunk]:
        """Spans grouped into a row per trace, each given out at its last span's line."""
        from agent_evals.trajectory import Span

        open_traces: dict[str, tuple[int, list[Span]]] = {}
        rows: list[dict[str, Any]] = []
        positions: list[int] = []
        for chunk in chunks:
            for row, line in zip(chunk.rows, chunk.positions, strict=True):
                spans = _line_spans(row)
                if spans is None:
                    self.skip_or_raise(line, "not OpenTelemetry spans", _SPANS_DETAIL, _SPANS_HINT)
                    continue
                for span in spans:
                    open_traces.setdefault(span.trace_id or "", (line, []))[1].append(span)
                for trace_id in dict.fromkeys(span.trace_id or "" for span in spans):
                    if ends.get(trace_id, line) <= line and trace_id in open_traces:
                        first, trace = open_traces.pop(trace_id)
                        rows.append(trace_row(trace_id, trace))
                        positions.append(first)
                if len(rows) >= self.chunksize:
                    yield Chunk(rows, positions)
                    rows, positions = [], []
        for trace_id, (first, trace) in open_traces.items():
            rows.append(trace_row(trace_id, trace))
            positions.append(first)
        if rows:
            yield Chunk(rows, positions)

    # --- CSV ---------------------------------------------------------------------

    def _csv(self, source: IO[bytes]) -> Iterator[Chunk]:
        with contextlib.ExitStack() as stack:
            lines = _CsvLines(source, self)
            header = self._csv_header(lines)
            if header is None:
                raise ConfigError("the log is empty (no header row)", path=self.name, hint="check the file")
            self.columns = header
            width = len(header)
            parse = csv.reader(lines, strict=True)
            done = False
            while not done:
                rows: list[dict[str, Any]] = []
                positions: list[int] = []
                # The csv module's field limit is process-wide: ours holds only while we parse, never
                # across a yield (other code may run then).
                with _csv_field_limit(MAX_FIELD_CHARS):
                    while len(rows) < self.chunksize:
                        lines.begin()
                        try:
                            fields = next(parse)
                        except StopIteration:
                            done = True
                            break
                        except _LineProblem as exc:
                            lines.finish()
                            self._csv_problem(exc)
                            continue
                        except csv.Error as exc:
                            reopened = self._csv_error(lines, str(exc), stack)
                            if reopened is not None:
                                lines = _CsvLines(reopened[0], self, reopened[1])
                                parse = csv.reader(lines, strict=True)
                            continue
                        if len(fields) != width:
                            if not fields or (len(fields) == 1 and not fields[0].strip()):
                                continue  # a blank line
                            self._bad(
                                lines.start,
                                "wrong number of fields",
                                f"expected {width} fields, saw {len(fields)}",
                                SKIP_HINT,
                            )
                            continue
                        # An empty cell is no value (as pandas read it): a missing variable, no label.
                        cells: Sequence[str | None] = [f or None for f in fields] if "" in fields else fields
                        rows.append(dict(zip(header, cells, strict=True)))
                        positions.append(lines.start)
                if rows:
                    yield Chunk(rows, positions)

    def _csv_header(self, lines: _CsvLines) -> list[str] | None:
        parse = csv.reader(lines, strict=True)
        while True:
            lines.begin()
            try:
                with _csv_field_limit(MAX_FIELD_CHARS):
                    fields = next(parse)
            except StopIteration:
                return None
            except _LineProblem as exc:
                raise ConfigError(
                    f"the header row: {exc.reason}" + (f" ({exc.detail})" if exc.detail else ""),
                    path=self.name,
                    line=exc.line,
                    hint="fix the header row",
                ) from None
            except csv.Error as exc:
                raise ConfigError(
                    f"the header row is not valid CSV ({_csv_detail(str(exc))})",
                    path=self.name,
                    line=lines.open or lines.start,
                    hint="fix the header row",
                ) from None
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            seen: set[str] = set()
            for name in fields:
                if name in seen:
                    raise ConfigError(
                        f"the header names column '{name if name.isprintable() else repr(name)[1:-1]}' twice",
                        path=self.name,
                        line=lines.start,
                        hint="give every column its own name",
                    )
                seen.add(name)
            return fields

    def _bad(self, line: int, reason: str, message: str, hint: str) -> None:
        if not self.skip_bad_lines:
            raise ConfigError(message, path=self.name, line=line, hint=hint)
        self.bad[reason] += 1

    def _csv_problem(self, problem: _LineProblem) -> None:
        if problem.reason in (ROW_TOO_LARGE, FIELD_TOO_LARGE):
            self.too_large[problem.reason] += 1
        else:
            self.skip_or_raise(problem.line, problem.reason, problem.detail, problem.hint)

    def _csv_error(
        self, lines: _CsvLines, detail: str, stack: contextlib.ExitStack
    ) -> tuple[IO[bytes], int] | None:
        """Handle an error the csv module raised mid-record; a file to read on from (closed with
        `stack`), after an unclosed quote."""
        start = lines.start
        if detail.startswith("field larger than field limit"):
            if lines.finish():
                self.too_large[FIELD_TOO_LARGE] += 1
                return None
        elif not detail.startswith("unexpected end of data"):
            closed = lines.finish()
            if closed:
                self._bad(start, "not valid CSV", f"not valid CSV ({_csv_detail(detail)})", SKIP_HINT)
                return None
        # The file ended inside quotes: the quote opened on `lines.open` (or, if the quotes
        # counted per line disagree with the csv module, somewhere in the record).
        opened = lines.open or start
        if not self.skip_bad_lines:
            raise ConfigError(
                "unclosed quote: a quoted field opens here and never closes",
                path=self.name,
                line=opened,
                hint="close the quote, or pass --skip-bad-lines to skip this row and read on from the next line",
            )
        self.bad["unclosed quote"] += 1
        # Everything after the quote was read as part of it: read the file again from the next line.
        source = self._open_source(stack)
        _skip_lines(source, opened)
        return source, opened

    def _open_source(self, stack: contextlib.ExitStack) -> IO[bytes]:
        """The log opened again from its start (decompressed), closed with `stack`."""
        raw = stack.enter_context(open_log(self.path, self.shown))
        if self.path.suffix.lower() == ".gz":
            unzipped: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            return stack.enter_context(unzipped)
        return raw

    # --- Parquet -----------------------------------------------------------------

    def _parquet(self, raw: IO[bytes]) -> Iterator[Chunk]:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            # An extra, not a dependency: pyarrow is a third of a runtime install and only Parquet needs it.
            raise ConfigError(
                "reading a Parquet log needs pyarrow, which is not installed",
                path=self.name,
                hint=f"pip install '{PARQUET_EXTRA}', or convert the log to JSONL or CSV",
            ) from None

        sha = hashlib.sha256()
        while block := raw.read(_BLOCK):
            sha.update(block)
        self.sha256 = "sha256:" + sha.hexdigest()
        try:
            parquet = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ConfigError(
                f"not a Parquet file ({exc})", path=self.name, hint="check the file and --format"
            ) from None
        self.columns = _flat_columns(parquet.schema_arrow)
        row = 0
        for batch in parquet.iter_batches(batch_size=self.chunksize):
            records = batch.to_pylist()
            yield Chunk(records, list(range(row + 1, row + 1 + len(records))))
            row += len(records)


_SPANS_DETAIL = "no span with a trace id in the line"
_SPANS_HINT = "write a span, a list of spans or OTLP JSON per line, fix the line, or pass --skip-bad-lines"


def _line_spans(row: dict[str, Any]) -> list[Any] | None:
    """The spans of one line; None when it holds none, or one without a trace id."""
    from agent_evals.trajectory import TrajectoryError, spans_of

    inner = row["spans"] if set(row) == {"spans"} and isinstance(row["spans"], list) else row
    try:
        spans = spans_of(inner)
    except TrajectoryError:
        return None
    if not spans or any(not span.trace_id for span in spans):
        return None
    return spans


def trace_row(trace_id: str, spans: list[Any]) -> dict[str, Any]:
    """One trace as a row of the log (see the module docstring)."""
    from agent_evals.trajectory import from_spans, iso_time

    ordered = sorted(spans, key=lambda s: float("inf") if s.start is None else s.start)
    attributes: dict[str, Any] = {}
    for span in ordered:
        for key, value in span.attributes.items():
            attributes.setdefault(key, value)
    root = next((s for s in ordered if not s.parent_id), ordered[0])
    flat = [s.to_json() for s in ordered]
    row: dict[str, Any] = {
        "trace_id": trace_id,
        "name": root.name or None,
        "start_time": iso_time(min((s.start for s in ordered if s.start is not None), default=None)),
        "end_time": iso_time(max((s.end for s in ordered if s.end is not None), default=None)),
        "attributes": attributes,
        "input": _first_user_text(ordered),
        "output": from_spans(flat).text,
        "spans": flat,
    }
    return {k: v for k, v in row.items() if v is not None}


def _first_user_text(spans: list[Any]) -> str | None:
    """The text of the first user message a span's `gen_ai.input.messages` holds."""
    for span in spans:
        messages = span.attributes.get("gen_ai.input.messages")
        if isinstance(messages, str):
            try:
                messages = json.loads(messages)
            except ValueError:
                continue
        for message in messages if isinstance(messages, list) else ():
            if isinstance(message, dict) and message.get("role") == "user":
                parts = message.get("parts")
                texts = (
                    [p.get("content") for p in parts if isinstance(p, dict)]
                    if isinstance(parts, list)
                    else []
                )
                text = "".join(t for t in texts if isinstance(t, str)) or message.get("content")
                if isinstance(text, str) and text:
                    return text
    return None


def _flat_columns(schema: Any) -> list[str]:
    import pyarrow as pa

    out: list[str] = []

    def walk(prefix: str, fields: Any) -> None:
        for f in fields:
            name = f"{prefix}{f.name}"
            if pa.types.is_struct(f.type):
                walk(f"{name}.", list(f.type))
            else:
                out.append(name)

    walk("", list(schema))
    return out


class _LineProblem(Exception):
    """A line the CSV reader cannot hand to the csv module (too long, undecodable); ends the record."""

    def __init__(self, line: int, reason: str, detail: str = "", hint: str = SKIP_HINT) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason
        self.detail = detail
        self.hint = hint


class _CsvLines:
    """The physical lines of a CSV log, decoded, for `csv.reader`: bounded, numbered, quotes counted.

    Reads at most MAX_ROW_BYTES + 1 bytes of a line at a time. Counting the quote
    characters of each line tells where a quoted field opened (`open`) and, after a
    bad record, where the record ends: the first line after which the quotes balance.

    Attributes:
        start: the line the record being read starts on.
        open: the line where a quote still open in this record opened (0: none is open).
    """

    def __init__(self, source: IO[bytes], reader: LogReader, lineno: int = 0) -> None:
        self.source = source
        self.readline = source.readline
        self.reader = reader
        self.lineno = lineno
        self.start = 0
        self.open = 0
        self.size = 0

    def begin(self) -> None:
        """A new record starts with the next line."""
        self.start = 0
        self.open = 0
        self.size = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self.readline(MAX_ROW_BYTES + 1)
        if not raw:
            raise StopIteration
        self.lineno += 1
        if not self.start:
            self.start = self.lineno
        if self.lineno == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        quotes = raw.count(b'"')
        self.size += len(raw)
        if len(raw) > MAX_ROW_BYTES and raw[-1:] != b"\n":
            quotes += _skip_line(self.source)[0]
            self.size = MAX_ROW_BYTES + 1
        if quotes & 1:
            self.open = 0 if self.open else self.lineno
        if self.size > MAX_ROW_BYTES:
            raise _LineProblem(self.start, ROW_TOO_LARGE)
        try:
            return raw.decode(self.reader.encoding)
        except UnicodeDecodeError as exc:
            raise _LineProblem(
                self.lineno,
                f"not {self.reader.encoding} text",
                _decode_detail(exc),
                _encoding_hint(self.reader),
            ) from None

    def finish(self) -> bool:
        """Skip the rest of a record cut short; False if the file ends inside its quotes."""
        while self.open:
            quotes, read = _skip_line(self.source)
            if not read:
                return False
            self.lineno += 1
            if quotes & 1:
                self.open = 0
        return True


def _skip_line(source: IO[bytes]) -> tuple[int, bool]:
    """Read past the end of the current line a block at a time: (quote characters in it, anything read)."""
    quotes = 0
    read = False
    while block := source.readline(_BLOCK):
        read = True
        quotes += block.count(b'"')
        if block[-1:] == b"\n":
            break
    return quotes, read


def _skip_lines(source: IO[bytes], count: int) -> None:
    for _ in range(count):
        _skip_line(source)


@contextlib.contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _csv_detail(detail: str) -> str:
    if detail.startswith("new-line character seen in unquoted field"):
        return "a carriage return inside an unquoted field"
    return detail


class _NotJson(ValueError):
    """NaN, Infinity or -Infinity: Python's json reads them, but they are not JSON."""


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _digits_detail() -> str:
    limit = sys.get_int_max_str_digits() or sys.int_info.default_max_str_digits
    return f"an integer of more than {limit} digits"


def _longest_string(value: Any) -> int:
    return max((len(text) for text in strings(value)), default=0)


def _decode_detail(exc: UnicodeDecodeError) -> str:
    bad = exc.object[exc.start : exc.start + 1]
    return f"byte 0x{bad.hex()} at column {exc.start + 1}"


def _encoding_hint(reader: LogReader) -> str:
    return f"convert the log to {reader.encoding}, pass --encoding (e.g. latin-1), or pass --skip-bad-lines"


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number"}.get(
        type(value), "a value"
    )
