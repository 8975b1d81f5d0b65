"""What `sample` is asked to do (`SampleOptions`) and what it did (`SampleReport`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Method = Literal["uniform", "diversity"]
METHODS: tuple[Method, ...] = ("uniform", "diversity")
CASES_FILE_ABOVE = 1000
"""A new eval set keeps its cases in a JSONL file beside it above this many cases."""


@dataclass(frozen=True)
class SampleOptions:
    """What to sample, from where, and where to write it.

    Attributes:
        log: the production log (`.jsonl`, `.csv`, `.parquet`; JSONL and CSV may be `.gz`).
        prompt: the id of the prompt the eval set exercises.
        mapping: `target: source` pairs (see `agent_evals.sampling._fields`); they override `map_file`'s.
        map_file: a YAML mapping file (`map:`, optional `graders:` and `text_fields:`).
        n: how many rows to sample (with `append`: how many new ones).
        output: the eval set to write; default `<evalsets>/<prompt>.yaml` under `root`.
        root: the project root (for the prompt check and the default output).
        method: `uniform`, or `diversity` (k-means over TF-IDF, the row nearest each centroid).
        stratify_by: a mapped target, its short name (`disposition`) or a log field to stratify by.
        min_per_stratum: with `stratify_by`, the fewest rows each stratum gets (all it has, if fewer).
        seed: the seed of every random choice; the same seed and log give the same files.
        since: start of the time window (ISO 8601 date or time, included); needs `timestamp` mapped.
        until: end of the time window (excluded).
        query: a pandas `DataFrame.query` condition over the log's fields (dotted names in
            backticks) and the mapped fields' short names, e.g. `channel == "email"`.
        dedup_threshold: drop near-duplicates at or above this TF-IDF cosine similarity (above 1: off).
        redact: replace personal data with typed placeholders; turning it off must be explicit.
        redact_patterns: extra `name=regex` patterns to redact (`<NAME>` placeholders).
        graders: grader entries for a new eval set; default the map file's, else exact_match per
            expected field.
        text_fields: vars paths compared for near-duplicates and diversity (e.g. `ticket.body`);
            default every string in the vars.
        cases_file: keep cases in `<id>.cases.jsonl`; None: only above CASES_FILE_ABOVE cases.
        append: add new cases to an existing eval set (created when missing).
        overwrite: replace an existing eval set.
        labelled_only: drop rows without a label instead of setting them aside for labelling.
        skip_bad_lines: skip (and count) malformed lines instead of stopping at the first.
        log_format: `jsonl`, `csv`, `parquet`, or `otel` (OpenTelemetry spans as JSON lines, a row
            per trace); default from the file name (never `otel`: JSON lines are `jsonl` by default).
        encoding: the text encoding of a JSONL or CSV log.
        chunksize: rows read at a time (memory, not results: any chunk size gives the same files).
        pool_factor: candidate pool size as a multiple of `n` (and of `min_per_stratum`, per
            stratum); the pool holds at most `_select.MAX_POOL` rows overall, or 2 x n if more.
        sampled_at: the date recorded as `provenance.sampled_at`; default today (UTC), or the day
            of SOURCE_DATE_EPOCH when set.
        synthetic: record the log as synthetic in the provenance.
        description: the new eval set's description.
    """

    log: Path
    prompt: str
    mapping: Mapping[str, str] = field(default_factory=dict)
    map_file: Path | None = None
    n: int = 100
    output: Path | None = None
    root: Path = Path(".")
    method: str = "uniform"
    stratify_by: str | None = None
    min_per_stratum: int = 5
    seed: int = 0
    since: str | None = None
    until: str | None = None
    query: str | None = None
    dedup_threshold: float = 0.95
    redact: bool = True
    redact_patterns: tuple[str, ...] = ()
    graders: tuple[Mapping[str, Any], ...] | None = None
    text_fields: tuple[str, ...] = ()
    cases_file: bool | None = None
    append: bool = False
    overwrite: bool = False
    labelled_only: bool = False
    skip_bad_lines: bool = False
    log_format: str | None = None
    encoding: str = "utf-8"
    chunksize: int = 20_000
    pool_factor: int = 20
    sampled_at: str | None = None
    synthetic: bool = False
    description: str | None = None


@dataclass
class StratumReport:
    """One stratum (or one class of the label): rows in the log vs rows sampled."""

    name: str
    source: int
    sampled: int = 0
    to_label: int = 0
    pool: int = 0


@dataclass
class SampleReport:
    """What `sample` read, dropped, chose, redacted and wrote; `print_summary` shows it.

    Attributes:
        rows_read: rows parsed from the log (bad lines not included).
        bad_lines: lines skipped with `skip_bad_lines`, by reason.
        filtered: rows dropped, by reason (time window, query, missing variable, ...).
        missing_vars: rows missing each mapped variable.
        eligible: rows left after filtering: the population sampled from.
        pool: distinct rows in the bounded candidate pool.
        exact_duplicates: pool rows whose input repeats another's (one is kept).
        near_duplicates: candidates passed over as near-duplicates of a row already taken.
        strata: per stratum (with `stratify_by`): rows in the log, in the pool, sampled, to label.
        balance: per class of the label (without `stratify_by`): rows in the log vs sampled.
        redactions: placeholders written, per kind.
        cases: cases written; to_label: sampled rows without a label, set aside for labelling.
        tool_calls: recorded tool calls written (on cases and rows to label).
        tool_calls_dropped: tool calls or trajectory items of the sampled rows that could not be
            recorded, per reason (no result, arguments that are not a JSON object, ...).
    """

    log: str
    log_format: str
    source_hash: str | None
    method: str
    seed: int
    rows_read: int = 0
    bad_lines: dict[str, int] = field(default_factory=dict)
    filtered: dict[str, int] = field(default_factory=dict)
    missing_vars: dict[str, int] = field(default_factory=dict)
    eligible: int = 0
    pool: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    stratify_by: str | None = None
    balance_by: str | None = None
    strata: list[StratumReport] = field(default_factory=list)
    balance: list[StratumReport] = field(default_factory=list)
    redaction: bool = True
    redactions: dict[str, int] = field(default_factory=dict)
    tool_calls: int = 0
    tool_calls_dropped: dict[str, int] = field(default_factory=dict)
    cases: int = 0
    to_label: int = 0
    existing_cases: int = 0
    appended: bool = False
    time_window: str | None = None
    evalset_path: Path | None = None
    cases_path: Path | None = None
    to_label_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sampled(self) -> int:
        return self.cases + self.to_label
