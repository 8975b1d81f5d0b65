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

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_evals import _files
from agent_evals.credentials import scrub
from agent_evals.errors import ConfigError
from agent_evals.load import MAX_LINE_BYTES, iter_jsonl
from agent_evals.outputs import failure, open_output

RECORD_SCHEMA_VERSION = 1

CaseStatus = Literal["pass", "fail", "error", "skipped"]


# A count as the history store keeps it (a 64-bit integer column): a record with a bigger one
# passed `diff` and then was refused by the store, naming the wrong line.
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]


class _Rec(BaseModel):
    # No inf or NaN, even as the strings "NaN" and "inf" pydantic would read: the paired tests
    # refuse them (diff, report and ci ended in internal error) and merge wrote them out as NaN.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class GradeRecord(_Rec):
    grader: str
    type: str
    score: float | None = None
    passed: bool | None = None
    reason: str
    weight: float = 1.0
    required: bool = True
    needs_review: bool = False
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Usage(_Rec):
    input_tokens: Count = 0
    output_tokens: Count = 0
    cache_read_tokens: Count = 0
    cache_write_tokens: Count = 0


def total_usage(usages: Iterable[Usage | None]) -> Usage | None:
    """The tokens of several model calls together; None when none of them reported any."""
    known = [u for u in usages if u is not None]
    if not known:
        return None
    return Usage(
        input_tokens=sum(u.input_tokens for u in known),
        output_tokens=sum(u.output_tokens for u in known),
        cache_read_tokens=sum(u.cache_read_tokens for u in known),
        cache_write_tokens=sum(u.cache_write_tokens for u in known),
    )


class ToolCallRecord(_Rec):
    """A tool call the model asked for: `arguments` parsed, or the raw string when it was not JSON."""

    name: str
    arguments: dict[str, Any] | str
    id: str | None = None


class StepRecord(_Rec):
    """One step of a case's trajectory: a model call, or a tool call answered.

    A model step has the model's text, the tool calls it asked for (in its order; several
    are a parallel call), its tokens, cost and whether it came from the cache. A tool step
    has the call (`name`, `arguments`, `call_id`) and what answered it: `source` is
    `recorded` (a result the case recorded in production), `mock` (the eval set's mock),
    or `agent` (the agent's own runtime ran it and reported it). `error` on a tool step is
    the tool's failure as the agent saw it, or why the runner could not answer the call.
    """

    kind: Literal["model", "tool"]
    latency_ms: float | None = None
    # a model step
    model: str | None = None
    text: str | None = None
    finish_reason: str | None = None
    tool_calls: tuple[ToolCallRecord, ...] = ()
    usage: Usage | None = None
    cost_usd: float | None = None
    cached: bool = False
    # a tool step
    name: str | None = None
    arguments: dict[str, Any] | str | None = None
    call_id: str | None = None
    result: Any = None
    source: Literal["recorded", "mock", "agent"] | None = None
    error: str | None = None
    # a case with turns: which turn (from 1) the step belongs to
    turn: Count | None = Field(default=None, exclude_if=lambda value: value is None)


class ReplayRecord(_Rec):
    """How a case's recorded tool calls were used: calls nothing answered, and records no call used.

    Each entry is readable as it stands: `lookup_order({"id": 7})`, with its step for unmatched calls.
    """

    unmatched: tuple[str, ...] = ()
    unconsumed: tuple[str, ...] = ()


class TurnRecord(_Rec):
    """One turn of a conversation case: what the user said, what the agent answered, and the
    per-turn grades of the graders with `turns: each` (the case's grade of such a grader sums them up).

    Turn 1 is the prompt's own messages (`user` is their last user message); later turns are
    the case's `turns`.
    """

    turn: Count
    user: str | None = None
    output: str | None = None
    finish_reason: str | None = None
    expected: Any = None
    grades: tuple[GradeRecord, ...] = ()


class CaseResult(_Rec):
    kind: Literal["case"] = "case"
    index: Count
    case_id: str
    repeat: Count = 0
    status: CaseStatus
    score: float | None = None
    passed: bool | None = None
    tags: tuple[str, ...] = ()
    cluster: str | None = None
    expected: Any = None
    request: dict[str, Any] | None = None
    output: str | None = None
    # The provider's finish reason (`stop`, `length`, `max_tokens`, `tool_calls`, ...);
    # `truncated` is derived from it: the output was cut off, and reports say so.
    finish_reason: str | None = None
    truncated: bool = False
    model: str | None = Field(default=None, description="The model that answered, as the provider named it.")
    tool_calls: tuple[ToolCallRecord, ...] = ()
    """Every tool call of the case, in order (all steps': the trajectory's calls)."""
    steps: tuple[StepRecord, ...] = ()
    """The trajectory, when the case had more than one model call or called a tool."""
    replay: ReplayRecord | None = None
    turns: tuple[TurnRecord, ...] = Field(default=(), exclude_if=lambda value: not value)
    """A conversation case's turns, in order (those it reached); `output` is the last one's answer."""
    notes: tuple[str, ...] = Field(default=(), exclude_if=lambda value: not value)
    """What could not be read of the trajectory the agent reported (left out, or read differently)."""
    grades: tuple[GradeRecord, ...] = ()
    latency_ms: float | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    attempts: Count = 0
    cached: bool = False
    error: str | None = None


class RunHeader(_Rec):
    kind: Literal["run"] = "run"
    schema_version: Annotated[int, Field(ge=1, le=2**63 - 1)] = RECORD_SCHEMA_VERSION
    run_id: str
    started_at: str
    tool_version: str
    git: dict[str, Any] | None = None
    prompt: dict[str, Any]
    evalset: dict[str, Any]
    provider: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)
    code: dict[str, Any] | None = Field(
        default=None,
        description="The project code the run executed (`python:` provider and graders, `watch:` "
        "paths): `hash` over `files` (path -> sha256 prefix); see agent_evals.sources.",
    )


class RunEnd(_Rec):
    kind: Literal["end"] = "end"
    status: Literal["complete", "interrupted", "aborted"]
    finished_at: str
    reason: str | None = None
    counts: dict[str, Count] = Field(default_factory=dict)
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


FLUSH_S = 0.1
"""How long a finished case may wait in `RecordWriter`'s buffer: the runner flushes on this timer,
on every signal and error, and when a job ends."""

_FLUSH_LINES = 256


class RecordWriter:
    """Appends a run record line by line, in batches, so nothing finished is lost.

    Lines are buffered and written together: when `_FLUSH_LINES` wait, on `flush` (the runner
    calls it every `FLUSH_S`, and when a run stops, however it stops) and on `close`, rather
    than a system call per case.
    """

    def __init__(
        self,
        path: Path,
        header: RunHeader,
        *,
        append: bool = False,
    ) -> None:
        """Start a record at `path`, or with `append`, continue one (a resumed run) without a new header.

        Raises:
            ConfigError: `path` cannot be a record: a folder in its way is a file, it is not a
                regular file, or it cannot be written (`outputs.open_output`).
        """
        self.path = path
        self._lines: list[str] = []
        self.on_flush: Callable[[Sequence[CaseResult]], None] | None = None
        """Gets the results each flush wrote, once they are on disk (the history: a case reaches the
        store only after its record line). Set once the header is written: a process following the
        record (`history.follow`) starts reading at it."""
        self._written: list[CaseResult] = []
        if append and path.is_file():
            _drop_partial_last_line(path)
            self._fh: IO[str] = _open_record(path, append=True)
        else:
            self._fh = _open_record(path)
            self._add(header)
            self.flush()

    def _add(self, line: BaseModel) -> None:
        # A key echoed into an output or an error (a leaky server) never reaches the disk.
        self._lines.append(scrub(line.model_dump_json(exclude_none=True)))

    def add(self, result: CaseResult) -> None:
        self._add(result)
        if self.on_flush is not None:
            self._written.append(result)
        if len(self._lines) >= _FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines and hand them to the operating system.

        Raises:
            ConfigError: the write failed (a full disk), naming the record.
        """
        if self._lines and not self._fh.closed:
            self._lines.append("")
            try:
                self._fh.write("\n".join(self._lines))
                self._fh.flush()
            except OSError as exc:
                raise failure(self.path, exc, what=_RECORD, fix=_RECORD_FIX) from None
            self._lines.clear()
        if self._written and self.on_flush is not None:
            written, self._written = self._written, []
            self.on_flush(written)

    def close(self, end: RunEnd) -> None:
        if self._fh.closed:
            return
        self._add(end)
        self.flush()
        try:
            os.fsync(self._fh.fileno())
            self._fh.close()
        except OSError as exc:
            raise failure(self.path, exc, what=_RECORD, fix=_RECORD_FIX) from None


_RECORD = "the run record"
_RECORD_FIX = "pass --output a regular file in a writable folder, or set paths.runs in agent-evals.yaml to a writable folder"


def _open_record(path: Path, *, append: bool = False) -> IO[str]:
    # A record is read back (resume, the history) and synced: a regular file only, never a device.
    return open_output(path, what=_RECORD, fix=_RECORD_FIX, append=append, devices=False)


def _drop_partial_last_line(path: Path) -> None:
    # A killed writer may leave half a line; appending after it would corrupt the next one.
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


_HINT = "is this a run record?"
# Pydantic, which writes records, refuses to write values nested deeper than this, so a deeper
# line was not written by a run; the limit keeps the reports' own walks of a value off the stack's end.
_MAX_DEPTH = 256


def open_regular(
    path: Path, fix: str = "pass a file written by 'agent-evals run'", what: str = "run record"
) -> IO[bytes]:
    """`path` opened for reading in binary; only a regular file is opened (a FIFO would block).

    Raises:
        ConfigError: missing, a folder, not a regular file, or unreadable; `fix` is the hint.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path=path, hint=fix) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", path=path, hint=fix) from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"is a folder, not a {what}", path=path, hint=fix)
    if not stat.S_ISREG(mode):
        raise ConfigError("not a regular file", path=path, hint=f"{_files.kind(mode)}; {fix}")
    try:
        return path.open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", path=path, hint=fix) from None


Line = RunHeader | CaseResult | RunEnd
_KINDS: dict[str, type[RunHeader] | type[CaseResult] | type[RunEnd]] = {
    "run": RunHeader,
    "case": CaseResult,
    "end": RunEnd,
}


def iter_lines(
    fh: IO[bytes], path: Path, hint: str = _HINT, *, header_first: bool = False
) -> Iterator[tuple[int, Line]]:
    """A record file's lines, read and checked one at a time (memory stays bounded): (line number,
    header, case or end). A last line cut short by a crash is passed over. With `header_first`,
    a file whose first line is not a run header is refused there (a trace, another tool's JSONL).

    Raises:
        ConfigError: a line that is not JSON, of an unknown kind, invalid, or a header newer than
            this tool's (naming the line); unreadable (naming the file).
    """
    # A line at a time, each read with a cap: a binary file may have no line break at all.
    yield from parse_lines(
        iter(partial(fh.readline, MAX_LINE_BYTES + 1), b""), path, hint, header_first=header_first
    )


def parse_lines(
    lines: Iterator[bytes], path: Path, hint: str = _HINT, *, header_first: bool = False
) -> Iterator[tuple[int, Line]]:
    """`iter_lines` of raw lines from anywhere (a file read as it is written: `history.follow`)."""
    try:
        for lineno, data in iter_jsonl(lines, path, hint=hint, max_depth=_MAX_DEPTH, partial_last_line=True):
            kind = data.get("kind") if isinstance(data, dict) else None
            if header_first and kind != "run":
                raise ConfigError("the first line is not a run header", path=path, line=lineno, hint=hint)
            header_first = False
            model = _KINDS.get(kind) if isinstance(kind, str) else None
            if model is None:
                shown = repr(kind)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise ConfigError(f"unknown line kind {shown}", path=path, line=lineno, hint=hint)
            try:
                line = model.model_validate(data)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ConfigError(
                    f"invalid {kind} line: '{where}': {first['msg']}", path=path, line=lineno, hint=hint
                ) from None
            if isinstance(line, RunHeader) and line.schema_version > RECORD_SCHEMA_VERSION:
                raise ConfigError(
                    f"run record schema_version {line.schema_version} is newer than this tool's",
                    path=path,
                    line=lineno,
                    hint="upgrade agent-evals",
                )
            yield lineno, line
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", path=path, hint=hint) from None


def second_header(path: Path, lineno: int) -> ConfigError:
    """A record's second header line: a run writes one, and a resumed run appends none."""
    return ConfigError(
        "a second header line: two records in one file",
        path=path,
        line=lineno,
        hint="keep each run's record in its own file ('agent-evals merge' joins shards of one run)",
    )


def load_record(path: Path) -> RunRecord:
    """Read a run record, including one cut short by a crash.

    Raises:
        ConfigError: the file is missing, unreadable or not a run record (naming the line).
    """
    header: RunHeader | None = None
    # By (case id, repeat), as the history keys them: a resumed run appends the cases it redid
    # (those skipped or in error), and the later line is the case's result.
    cases: dict[tuple[str, int], CaseResult] = {}
    end: RunEnd | None = None
    with open_regular(path) as fh:
        for lineno, line in iter_lines(fh, path):
            if isinstance(line, RunHeader):
                if header is not None:
                    raise second_header(path, lineno)
                header = line
            elif isinstance(line, CaseResult):
                cases[(line.case_id, line.repeat)] = line
            else:
                end = line
    if header is None:
        raise ConfigError(
            "no header line", path=path, line=1, hint="pass a file written by 'agent-evals run'"
        )
    ordered = sorted(cases.values(), key=lambda c: (c.index, c.repeat))
    return RunRecord(path=str(path), header=header, cases=tuple(ordered), end=end)


def merge(records: Sequence[RunRecord]) -> tuple[RunHeader, list[CaseResult], RunEnd]:
    """One record from the shard records of one run (same prompt, cases and provider).

    Raises:
        ConfigError: the records are not shards of one run, or two shards hold the same case.
    """
    first = records[0]
    identity = _identity(first.header)
    for record in records[1:]:
        if _identity(record.header) != identity:
            raise ConfigError(
                "not a shard of the same run as " + first.path,
                path=record.path,
                hint="merge records of one prompt version, eval set and provider (same --shard run)",
            )
    cases: dict[tuple[int, int], CaseResult] = {}
    for record in records:
        for case in record.cases:
            key = (case.index, case.repeat)
            if key in cases and cases[key] != case:
                raise ConfigError(
                    f"case '{case.case_id}' (repeat {case.repeat}) is in two shards",
                    path=record.path,
                    hint="merge each shard once; shards of one run do not overlap",
                )
            cases[key] = case
    ordered = sorted(cases.values(), key=lambda c: (c.index, c.repeat))
    options = {k: v for k, v in first.header.options.items() if k != "shard"}
    header = first.header.model_copy(
        update={
            "run_id": first.header.run_id.split("-shard")[0],
            "evalset": {**first.header.evalset, "selected": len({c.index for c in ordered})},
            # The shards' own run ids: the history replaces their runs with this one (each case once).
            "options": {
                **options,
                "merged_shards": len(records),
                "shard_runs": [r.header.run_id for r in records],
            },
        }
    )
    statuses = [r.status for r in records]
    status: Literal["complete", "interrupted", "aborted"] = (
        "complete"
        if all(s == "complete" for s in statuses)
        else "aborted"
        if "aborted" in statuses
        else "interrupted"
    )
    counts: dict[str, int] = {}
    for case in ordered:
        counts[case.status] = counts.get(case.status, 0) + 1
    costs = [c.cost_usd for c in ordered if c.status != "skipped"]
    end = RunEnd(
        status=status,
        finished_at=max((r.end.finished_at for r in records if r.end), default=first.header.started_at),
        reason=None if status == "complete" else "a shard did not finish",
        counts=counts,
        cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
    )
    return header, ordered, end


def _identity(header: RunHeader) -> tuple[object, ...]:
    return (
        header.prompt.get("hash"),
        header.evalset.get("hash"),
        header.provider.get("name"),
        header.provider.get("model"),
        header.options.get("repeat"),
        (header.code or {}).get("hash"),
    )


def write(path: Path, header: RunHeader, cases: Sequence[CaseResult], end: RunEnd) -> None:
    """Write a whole record at once (a merge); the same format `RecordWriter` streams."""
    writer = RecordWriter(path, header)
    for case in cases:
        writer.add(case)
    writer.close(end)


def merge_paths(paths: Sequence[Path], output: Path) -> list[Path]:
    """Merge shard records given as files or folders; return the records written.

    Files inside folders are grouped by their path relative to the folder
    (`shard1/base/triage.jsonl` with `shard2/base/triage.jsonl`); loose files by
    eval set id. With one group and an `output` ending in `.jsonl`, that file
    is written; otherwise one file per group under the `output` folder.

    Raises:
        ConfigError: nothing to merge, or records that are not shards of one run.
    """
    groups: dict[str, list[RunRecord]] = {}
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*.jsonl")):
                groups.setdefault(file.relative_to(path).as_posix(), []).append(load_record(file))
        else:
            record = load_record(path)
            groups.setdefault(f"{record.header.evalset.get('id')}.jsonl", []).append(record)
    if not groups:
        raise ConfigError(
            "no run records to merge", hint="pass the shard records or the folders that hold them"
        )
    written = []
    for rel, records in sorted(groups.items()):
        target = output if output.suffix == ".jsonl" and len(groups) == 1 else output / rel
        write(target, *merge(records))
        written.append(target)
    return written
