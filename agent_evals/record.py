"""The run record: what one run of one prompt on one eval set produced.

On disk it is JSON Lines, written as results arrive so a crash or Ctrl-C
loses no finished case:

    {"kind": "run",  "schema_version": 1, ...header: who, what, where...}
    {"kind": "case", ...one line per finished case (and repeat)...}
    {"kind": "end",  "status": "complete" | "interrupted" | "aborted", ...}

A record with no `end` line is one whose process died; it is still readable.
A resumed run appends to its record: later lines for the same (case, repeat)
and a later `end` line supersede earlier ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_evals.errors import ConfigError

RECORD_SCHEMA_VERSION = 1

CaseStatus = Literal["pass", "fail", "error", "skipped"]


class _Rec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GradeRecord(_Rec):
    grader: str
    type: str
    score: float | None
    passed: bool | None
    reason: str
    weight: float = 1.0
    required: bool = True
    needs_review: bool = False
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Usage(_Rec):
    input_tokens: int = 0
    output_tokens: int = 0


class CaseResult(_Rec):
    kind: Literal["case"] = "case"
    index: int
    case_id: str
    repeat: int = 0
    status: CaseStatus
    score: float | None = None
    passed: bool | None = None
    tags: tuple[str, ...] = ()
    cluster: str | None = None
    expected: Any = None
    request: dict[str, Any] | None = None
    output: str | None = None
    grades: tuple[GradeRecord, ...] = ()
    latency_ms: float | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    attempts: int = 0
    cached: bool = False
    error: str | None = None


class RunHeader(_Rec):
    kind: Literal["run"] = "run"
    schema_version: int = RECORD_SCHEMA_VERSION
    run_id: str
    started_at: str
    tool_version: str
    git: dict[str, Any] | None = None
    prompt: dict[str, Any]
    evalset: dict[str, Any]
    provider: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)


class RunEnd(_Rec):
    kind: Literal["end"] = "end"
    status: Literal["complete", "interrupted", "aborted"]
    finished_at: str
    reason: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    cost_usd: float | None = None


class RunRecord(BaseModel):
    """A run record read back from disk; cases in eval-set order."""

    model_config = ConfigDict(frozen=True)

    path: str
    header: RunHeader
    cases: tuple[CaseResult, ...]
    end: RunEnd | None

    @property
    def status(self) -> str:
        return self.end.status if self.end else "interrupted"


class RecordWriter:
    """Appends a run record line by line, flushing each, so nothing finished is lost."""

    def __init__(self, path: Path, header: RunHeader, *, append: bool = False) -> None:
        """Start a record at `path`, or with `append`, continue one (a resumed run) without a new header."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if append and path.is_file():
            _drop_partial_last_line(path)
            self._fh: IO[str] = path.open("a", encoding="utf-8")
        else:
            self._fh = path.open("w", encoding="utf-8")
            self._write(header)

    def _write(self, line: BaseModel) -> None:
        self._fh.write(line.model_dump_json(exclude_none=True) + "\n")
        self._fh.flush()

    def add(self, result: CaseResult) -> None:
        self._write(result)

    def close(self, end: RunEnd) -> None:
        if self._fh.closed:
            return
        self._write(end)
        os.fsync(self._fh.fileno())
        self._fh.close()


def _drop_partial_last_line(path: Path) -> None:
    # A killed writer may leave half a line; appending after it would corrupt the next one.
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as fh:
        yield from enumerate(fh, start=1)


def load_record(path: Path) -> RunRecord:
    """Read a run record, including one cut short by a crash.

    Raises:
        ConfigError: the file is missing or is not a run record.
    """
    if not path.is_file():
        raise ConfigError("run record not found", path=path, hint="pass a file written by 'agent-evals run'")
    header: RunHeader | None = None
    cases: list[CaseResult] = []
    end: RunEnd | None = None
    lines = list(_lines(path))
    for lineno, text in lines:
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            if lineno == len(lines) and not text.endswith("\n"):
                break  # the last line of a killed process may be half written
            raise ConfigError(
                "not a JSON line", path=path, line=lineno, hint="is this a run record?"
            ) from None
        try:
            kind = data.get("kind") if isinstance(data, dict) else None
            if kind == "run":
                header = RunHeader.model_validate(data)
                if header.schema_version > RECORD_SCHEMA_VERSION:
                    raise ConfigError(
                        f"run record schema_version {header.schema_version} is newer than this tool's",
                        path=path,
                        line=lineno,
                        hint="upgrade agent-evals",
                    )
            elif kind == "case":
                cases.append(CaseResult.model_validate(data))
            elif kind == "end":
                end = RunEnd.model_validate(data)
            else:
                raise ConfigError(
                    f"unknown line kind {kind!r}", path=path, line=lineno, hint="is this a run record?"
                )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"invalid {kind} line: '{where}': {first['msg']}",
                path=path,
                line=lineno,
                hint="is this a run record?",
            ) from None
    if header is None:
        raise ConfigError(
            "no header line", path=path, line=1, hint="pass a file written by 'agent-evals run'"
        )
    cases.sort(key=lambda c: (c.index, c.repeat))
    return RunRecord(path=str(path), header=header, cases=tuple(cases), end=end)
