"""Read a production log in chunks: JSON Lines, CSV or Parquet (optionally gzipped text).

Each chunk is a list of rows (plain dicts, nested as the log has them) with the
line (JSONL) or row (CSV, Parquet) each came from, so a problem with a row can
name it. The file's sha256 is computed while it is read, for the provenance.
A malformed line stops the read with a message naming it, unless bad lines are
skipped, and then every skipped line is counted by reason: never silently.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from agent_evals.errors import ConfigError

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")
_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SKIP_HINT = "fix the line, or pass --skip-bad-lines"
_BLOCK = 1 << 20


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
    columns: list[str] | None = None
    sha256: str | None = None

    @property
    def name(self) -> str:
        return self.shown or str(self.path)

    @property
    def unit(self) -> str:
        return "line" if self.fmt == "jsonl" else "row"

    def error(self, position: int | None, message: str, hint: str) -> ConfigError:
        """A ConfigError naming the line (JSONL) or row (CSV, Parquet) of the log."""
        if position is None:
            return ConfigError(message, path=self.name, hint=hint)
        if self.fmt == "jsonl":
            return ConfigError(message, path=self.name, line=position, hint=hint)
        return ConfigError(f"row {position}: {message}", path=self.name, hint=hint)

    def skip_or_raise(self, position: int, reason: str, detail: str, hint: str = SKIP_HINT) -> None:
        """Count a bad line when skipping, else stop with a message naming it."""
        if not self.skip_bad_lines:
            raise self.error(position, f"{reason} ({detail})" if detail else reason, hint)
        self.bad[reason] += 1

    def chunks(self) -> Iterator[Chunk]:
        """The log's rows, `chunksize` at a time."""
        try:
            with self.path.open("rb") as raw:
                if self.fmt == "parquet":
                    yield from self._parquet(raw)
                    return
                hashing = _Hashing(raw)
                buffered = io.BufferedReader(hashing, _BLOCK)
                source: IO[bytes] = buffered
                if self.path.suffix.lower() == ".gz":
                    source = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
                try:
                    if self.fmt == "jsonl":
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
        except FileNotFoundError:
            raise ConfigError("log file not found", path=self.name, hint="check the path") from None
        except IsADirectoryError:
            raise ConfigError("is a directory, not a log file", path=self.name, hint="give a file") from None
        except PermissionError:
            raise ConfigError("cannot read the log (permission denied)", path=self.name) from None

    # --- JSON Lines -------------------------------------------------------------

    def _jsonl(self, source: IO[bytes]) -> Iterator[Chunk]:
        rows: list[dict[str, Any]] = []
        positions: list[int] = []
        lineno = 0
        for raw in source:
            lineno += 1
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
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
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                self.skip_or_raise(lineno, "not valid JSON", f"{exc.msg} at column {exc.colno}")
                continue
            if not isinstance(row, dict):
                self.skip_or_raise(lineno, "not a JSON object", f"got {_json_kind(row)}")
                continue
            rows.append(row)
            positions.append(lineno)
            if len(rows) >= self.chunksize:
                yield Chunk(rows, positions)
                rows, positions = [], []
        if rows:
            yield Chunk(rows, positions)

    # --- CSV ---------------------------------------------------------------------

    def _csv(self, source: IO[bytes]) -> Iterator[Chunk]:
        import pandas as pd

        text = _DecodedLines(source, self)
        skip = self.skip_bad_lines
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                reader = pd.read_csv(
                    text,  # type: ignore[call-overload]  # file-like enough; the stubs want a full buffer
                    chunksize=self.chunksize,
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                    on_bad_lines="warn" if skip else "error",
                )
                row = 0
                for frame in reader:
                    if self.columns is None:
                        self.columns = [str(c) for c in frame.columns]
                    records = frame.to_dict("records")
                    positions = list(range(row + 1, row + 1 + len(records)))
                    row += len(records)
                    self._count_csv_warnings(caught)
                    yield Chunk([{str(k): v for k, v in r.items()} for r in records], positions)
                self._count_csv_warnings(caught)
        except pd.errors.EmptyDataError:
            raise ConfigError(
                "the log is empty (no header row)", path=self.name, hint="check the file"
            ) from None
        except pd.errors.ParserError as exc:
            match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if match:
                expected, line, saw = match.groups()
                raise ConfigError(
                    f"expected {expected} fields, saw {saw}", path=self.name, line=int(line), hint=SKIP_HINT
                ) from None
            raise ConfigError(f"not valid CSV ({exc})", path=self.name, hint=SKIP_HINT) from None

    def _count_csv_warnings(self, caught: list[warnings.WarningMessage]) -> None:
        for warning in caught:
            self.bad["wrong number of fields"] += str(warning.message).count("Skipping line")
        caught.clear()

    # --- Parquet -----------------------------------------------------------------

    def _parquet(self, raw: IO[bytes]) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.parquet as pq

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


class _DecodedLines:
    """Text from a binary file, decoded line by line, so an undecodable line can be named or skipped.

    File-like enough for pandas (`read`, `readline`, iteration).
    """

    def __init__(self, source: IO[bytes], reader: LogReader) -> None:
        self.source = source
        self.reader = reader
        self.lineno = 0
        self.pending = ""

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    def _next_line(self) -> str | None:
        while True:
            raw = self.source.readline()
            if not raw:
                return None
            self.lineno += 1
            if self.lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                return raw.decode(self.reader.encoding)
            except UnicodeDecodeError as exc:
                reader = self.reader
                if not reader.skip_bad_lines:
                    raise ConfigError(
                        f"not {reader.encoding} text ({_decode_detail(exc)})",
                        path=reader.name,
                        line=self.lineno,
                        hint=_encoding_hint(reader),
                    ) from None
                reader.bad[f"not {reader.encoding} text"] += 1

    def read(self, size: int | None = -1) -> str:
        parts = [self.pending]
        have = len(self.pending)
        while size is None or size < 0 or have < size:
            line = self._next_line()
            if line is None:
                break
            parts.append(line)
            have += len(line)
        text = "".join(parts)
        if size is None or size < 0:
            self.pending = ""
            return text
        self.pending = text[size:]
        return text[:size]

    def readline(self, size: int | None = -1) -> str:
        if self.pending:
            line, sep, rest = self.pending.partition("\n")
            if sep:
                self.pending = rest
                return line + sep
            self.pending = ""
            return line + (self._next_line() or "")
        return self._next_line() or ""


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
