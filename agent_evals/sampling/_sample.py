"""`sample`: from a production log to a versioned eval set.

log (JSONL / CSV / Parquet / OTel spans: a row per trace)    _read
  -> mapped fields; filters; counts per stratum; the pool      _scan (+ _fields, _select.Pool,
     (the trajectory's tool calls as recorded calls)             agent_evals.trajectory)
  -> redaction of the pool                                     agent_evals.redact
  -> allotment to strata, near-duplicates, the choice          _select.select
  -> eval set YAML (+ cases JSONL), <id>.to-label.jsonl        _write
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent_evals.errors import ConfigError
from agent_evals.limits import MAX_SEED
from agent_evals.models import ID_PATTERN
from agent_evals.sampling._fields import FieldMap, SampleSpec, load_spec, set_path
from agent_evals.sampling._options import (
    METHODS,
    SampleOptions,
    SampleReport,
    StratumReport,
)
from agent_evals.sampling._read import LogReader, detect_format
from agent_evals.sampling._scan import Scan, check_columns, check_found, iso, similarity_text, window_bound
from agent_evals.sampling._select import MAX_POOL, Candidate, Pool, select
from agent_evals.sampling._write import case_entry, open_target, to_label_entry, write_sampled

if TYPE_CHECKING:
    from agent_evals.models import Prompt
    from agent_evals.redact import Redactor


def sample(options: SampleOptions) -> SampleReport:
    """Sample an eval set from a production log and write it.

    Reads the log once, in chunks; keeps a bounded candidate pool (see
    `agent_evals.sampling._select`); redacts; chooses; writes the eval set (with
    `cases:` last, or a cases file), and the sampled rows without a label to
    `<id>.to-label.jsonl`. With `append`, only adds at the end of the files.

    Args:
        options: what to read, how to choose, where to write.

    Returns:
        What was read, dropped, chosen, redacted and written.

    Raises:
        ConfigError: bad options or mapping, a mapping that misses a variable of the prompt,
            a malformed log (naming the line or column), or an eval set that exists (without
            `append` or `overwrite`) or cannot be appended to without rewriting it.
    """
    started = time.monotonic()
    _check_options(options)
    fields, spec = _spec(options)
    redactor = _redactor(options)
    since = window_bound(options.since, "--since")
    until = window_bound(options.until, "--until")
    if (since or until) and fields.timestamp is None:
        raise ConfigError("--since/--until need a timestamp", hint="map one, e.g. --map timestamp=ts")
    fmt = detect_format(options.log, options.log_format)
    if fmt == "otel" and fields.tools is None:
        # A trace row holds its spans: their tool calls are what a trace is sampled for.
        fields = dataclasses.replace(fields, tools="spans")
    target = open_target(options)
    graders = _graders(options, spec, fields) if target.existing is None else []
    prompt = _target_prompt(options)
    notes = [] if prompt else [f"prompt '{options.prompt}' not found: the cases were not rendered with it"]
    if target.existing is not None and (options.graders is not None or (spec and spec.graders)):
        notes.append("appending: the eval set keeps its graders (the ones given were not used)")
    if prompt is not None:
        _check_mapping(prompt, fields)
    text_fields = options.text_fields or (spec.text_fields if spec else ())

    stratify = fields.aliases().get(options.stratify_by, options.stratify_by) if options.stratify_by else None
    label = fields.expected[0] if len(fields.expected) == 1 else None
    balance = stratify or (label[1] if label else None)
    minimum = options.min_per_stratum if stratify else 0
    reader = LogReader(
        options.log,
        fmt,
        chunksize=options.chunksize,
        encoding=options.encoding,
        skip_bad_lines=options.skip_bad_lines,
    )
    scan = Scan(
        fields=fields,
        reader=reader,
        pool=Pool(
            min(options.pool_factor * options.n, max(MAX_POOL, 2 * options.n)),
            options.pool_factor * max(minimum, 1) if stratify else 0,
        ),
        seed=options.seed,
        sources=list(dict.fromkeys([*fields.sources(), *(s for s in (stratify, balance) if s)])),
        since=since,
        until=until,
        query=options.query,
        stratum_source=stratify,
        balance_source=balance,
        existing=target.ids,
        labelled_only=options.labelled_only,
    )
    for chunk in reader.chunks():
        if reader.columns is not None and scan.rows == 0:
            check_columns(reader, scan.sources, fields)
        scan.chunk(chunk)
    check_found(scan)
    # Rows too large to be a case were read (they are rows of the log) and are dropped like filtered ones.
    scan.rows += sum(reader.too_large.values())
    scan.filtered.update(reader.too_large)
    if not scan.strata and target.existing is None:
        raise ConfigError(
            f"no rows left to sample: {scan.rows} read, {_dropped_text(scan)}",
            path=reader.name,
            hint="check the mapping, the time window and --query",
        )

    pool, exact = _distinct(scan.pool.rows)
    redaction = [_redact_row(row, redactor) for row in pool]
    selection = select(
        pool,
        n=options.n,
        population=dict(scan.strata),
        minimum=minimum,
        method=options.method,
        threshold=options.dedup_threshold,
        seed=options.seed,
        texts=[similarity_text(r.vars, text_fields) for r in pool],
        taken_texts=[similarity_text(c.vars, text_fields) for c in target.existing.cases]
        if target.existing
        else [],
    )
    # Written grouped by stratum, by id within: a stable, reviewable order.
    chosen = [
        i for s in sorted(selection.chosen) for i in sorted(selection.chosen[s], key=lambda i: pool[i].id)
    ]
    redactions: Counter[str] = Counter()
    tool_calls_dropped: Counter[str] = Counter()
    for i in chosen:
        redactions.update(redaction[i])
        tool_calls_dropped.update(pool[i].tool_notes)
    cases = [case_entry(pool[i]) for i in chosen if pool[i].labelled]
    to_label = [to_label_entry(pool[i]) for i in chosen if not pool[i].labelled]
    if prompt is not None:
        _check_cases(prompt, [pool[i] for i in chosen], reader)
    filters = _filters(options, since, until)
    if redactor is not None:  # the query goes into the file too
        filters = [_redact_text(text, redactor, redactions) for text in filters]

    report = SampleReport(
        log=str(options.log),
        log_format=fmt,
        source_hash=reader.sha256,
        method=_method_text(options),
        seed=options.seed,
        rows_read=scan.rows,
        bad_lines=dict(reader.bad),
        filtered=dict(scan.filtered),
        missing_vars=dict(sorted(scan.missing_vars.items())),
        eligible=sum(scan.strata.values()),
        pool=len(pool),
        exact_duplicates=exact,
        near_duplicates=selection.near_duplicates,
        stratify_by=options.stratify_by,
        balance_by=options.stratify_by or (".".join(("expected", *label[0])) if label else None),
        redaction=redactor is not None,
        redactions=dict(sorted(redactions.items())),
        tool_calls=sum(len(pool[i].tools) for i in chosen),
        tool_calls_dropped=dict(sorted(tool_calls_dropped.items())),
        cases=len(cases),
        to_label=len(to_label),
        existing_cases=len(target.existing.cases) if target.existing else 0,
        appended=target.existing is not None,
        time_window=_window_text(since, until, scan),
        evalset_path=target.paths.evalset,
        to_label_path=target.paths.to_label if to_label else None,
        notes=notes + list(selection.notes),
    )
    _fill_strata(report, scan, pool, selection.chosen, redactor)
    write_sampled(options, target, report, graders, filters, cases, to_label)
    report.seconds = time.monotonic() - started
    return report


# --- before reading ---------------------------------------------------------------------------


def _check_options(options: SampleOptions) -> None:
    checks = [
        (options.n >= 1, f"--n must be at least 1 (got {options.n})", "e.g. --n 200"),
        (options.min_per_stratum >= 0, "--min-per-stratum must be 0 or more", "e.g. --min-per-stratum 5"),
        (0 <= options.seed <= MAX_SEED, f"--seed must be from 0 to {MAX_SEED}", "e.g. --seed 0"),
        (options.pool_factor >= 1, "the pool factor must be at least 1", "e.g. 20"),
        (options.chunksize >= 1, "--chunksize must be at least 1", "e.g. --chunksize 20000"),
        (options.dedup_threshold > 0, "--dedup-threshold must be above 0", "e.g. 0.95; above 1 turns it off"),
        (
            options.method in METHODS,
            f"unknown --method {options.method!r}",
            f"use one of: {', '.join(METHODS)}",
        ),
        (not (options.append and options.overwrite), "--append and --overwrite contradict", "pass one"),
        (options.redact or not options.redact_patterns, "--redact-pattern with --no-redact", "drop one"),
        (
            bool(re.fullmatch(ID_PATTERN, options.prompt)),
            f"--prompt {options.prompt!r} is not a valid id",
            "use letters, digits, '.', '_' and '-'",
        ),
    ]
    for ok, message, hint in checks:
        if not ok:
            raise ConfigError(message, hint=hint)


def _spec(options: SampleOptions) -> tuple[FieldMap, SampleSpec | None]:
    spec = load_spec(options.map_file) if options.map_file is not None else None
    mapping = {**(spec.mapping if spec else {}), **options.mapping}
    if not mapping:
        raise ConfigError(
            "no field mapping",
            hint="pass --map TARGET=FIELD (e.g. --map vars.ticket.subject=payload.subject) or --map-file FILE",
        )
    if spec is not None and not options.mapping:
        return FieldMap.parse(mapping, lines=spec.lines, path=spec.path), spec
    return FieldMap.parse(mapping), spec


def _redactor(options: SampleOptions) -> Redactor | None:
    if not options.redact:
        return None
    from agent_evals.redact import Redactor, parse_patterns

    return Redactor(extra=parse_patterns(options.redact_patterns))


def _graders(options: SampleOptions, spec: SampleSpec | None, fields: FieldMap) -> list[dict[str, Any]]:
    if options.graders is not None:
        return [dict(g) for g in options.graders]
    if spec is not None and spec.graders is not None:
        return [dict(g) for g in spec.graders]
    if not fields.expected:
        raise ConfigError(
            "no graders for the new eval set, and no label to grade against",
            hint="map a label (--map label=FIELD or expected.NAME=FIELD) for exact_match graders, "
            "or list graders in the --map-file",
        )
    names = fields.expected_fields
    if not names:
        return [{"type": "exact_match", "name": "expected"}]
    return [{"type": "exact_match", "name": name, "field": name} for name in names]


def _target_prompt(options: SampleOptions) -> Prompt | None:
    """The prompt the eval set targets, when the project has it."""
    from agent_evals.load import YAML_SUFFIXES, load_config, load_prompt

    folder = options.root / load_config(options.root).paths.prompts
    for suffix in YAML_SUFFIXES:
        if (folder / f"{options.prompt}{suffix}").is_file():
            return load_prompt(folder / f"{options.prompt}{suffix}")
    return None


def _check_mapping(prompt: Prompt, fields: FieldMap) -> None:
    """Render the prompt with placeholder values of the mapped variables: one the mapping lacks fails now,
    before a large log is read."""
    from agent_evals.models import Case
    from agent_evals.render import render

    dummy: dict[str, Any] = {}
    for parts, _ in fields.vars:
        set_path(dummy, parts, "x")
    try:
        render(prompt, Case(id="mapping", vars=dummy))
    except ConfigError as exc:
        if exc.message.startswith("undefined variable"):  # placeholders may fail a filter; real values decide
            raise ConfigError(
                f"the mapping gives no value for a variable prompt '{prompt.id}' uses: "
                f"{exc.message.split(': ', 1)[-1]}",
                path=exc.path,
                line=exc.line,
                hint="map the variable that template line uses: --map vars.NAME=FIELD",
            ) from None


def _check_cases(prompt: Prompt, rows: Sequence[Candidate], reader: LogReader) -> None:
    """Render the prompt for every sampled row, so what is written validates against it.

    Raises:
        ConfigError: naming the row of the log; nothing is written.
    """
    from agent_evals.models import Case
    from agent_evals.render import render

    for row in rows:
        try:
            render(prompt, Case(id=row.id, vars=row.vars))
        except ConfigError as exc:
            raise ConfigError(
                f"the row at {reader.unit} {row.position} of {reader.name} does not render with "
                f"prompt '{prompt.id}': {exc.message}",
                path=exc.path,
                line=exc.line,
                hint="check the mapping and the types of the mapped fields; nothing was written",
            ) from None


# --- after reading ------------------------------------------------------------------------------


def _distinct(rows: Sequence[Candidate]) -> tuple[list[Candidate], int]:
    """The pool in key order, an input seen twice (the same id) kept once; and how many were not."""
    seen: set[str] = set()
    out: list[Candidate] = []
    for row in sorted(rows, key=lambda r: r.key):
        if row.id not in seen:
            seen.add(row.id)
            out.append(row)
    return out, len(rows) - len(out)


def _redact_row(row: Candidate, redactor: Redactor | None) -> Counter[str]:
    """Redact everything of the row that can be written; return what was replaced."""
    total: Counter[str] = Counter()
    if redactor is None:
        return total
    # Tool calls too: their arguments and results carry what the customer said and what systems hold.
    for name in ("vars", "expected", "cluster", "tags", "output", "feedback", "tools"):
        value, counts = redactor.redact_value(getattr(row, name))
        setattr(row, name, value)
        total.update(counts)
    return total


def _redact_text(text: str, redactor: Redactor, counts: Counter[str]) -> str:
    clean, found = redactor.redact(text)
    counts.update(found)
    return clean


def _dropped_text(scan: Scan) -> str:
    parts = [f"{count} {reason}" for reason, count in scan.filtered.items()]
    parts += [f"{count} bad line(s): {reason}" for reason, count in scan.reader.bad.items()]
    return ", ".join(parts) or "none eligible"


def _window_text(since: dt.datetime | None, until: dt.datetime | None, scan: Scan) -> str | None:
    if since or until:
        return f"{iso(since) if since else '...'} .. {iso(until) if until else '...'}"
    if scan.first and scan.last:
        return f"{iso(scan.first)} .. {iso(scan.last)} (span of the eligible rows)"
    return None


def _filters(options: SampleOptions, since: dt.datetime | None, until: dt.datetime | None) -> list[str]:
    out = []
    if since:
        out.append(f"timestamp >= {iso(since)}")
    if until:
        out.append(f"timestamp < {iso(until)}")
    if options.query:
        out.append(f"query: {options.query}")
    out.append("rows missing a mapped variable dropped")
    if options.labelled_only:
        out.append("labelled rows only")
    return out


def _method_text(options: SampleOptions) -> str:
    if options.method == "diversity":
        within = "diversity (TF-IDF, MiniBatchKMeans, the row nearest each centroid)"
    else:
        within = "uniform"
    if options.stratify_by:
        parts = [
            f"stratified by {options.stratify_by} (at least {options.min_per_stratum} per stratum), "
            f"{within} within strata"
        ]
    else:
        parts = [within]
    if options.dedup_threshold <= 1:
        parts.append(f"near-duplicates (TF-IDF cosine >= {options.dedup_threshold}) dropped")
    parts.append("PII redacted" if options.redact else "PII NOT redacted (--no-redact)")
    return "; ".join(parts)


def _fill_strata(
    report: SampleReport,
    scan: Scan,
    pool: Sequence[Candidate],
    chosen: Mapping[str, Sequence[int]],
    redactor: Redactor | None,
) -> None:
    def shown(name: str) -> str:
        return redactor.redact(name)[0] if redactor is not None else name

    if scan.stratum_source is not None:
        in_pool = Counter(r.stratum for r in pool)
        for name in sorted(scan.strata, key=lambda s: (-scan.strata[s], s)):
            rows = chosen.get(name, [])
            to_label = sum(1 for i in rows if not pool[i].labelled)
            report.strata.append(
                StratumReport(shown(name), scan.strata[name], len(rows), to_label, in_pool[name])
            )
    if scan.balance_source is not None:
        taken = Counter(pool[i].balance for rows in chosen.values() for i in rows)
        for name in sorted(scan.balance, key=lambda s: (-scan.balance[s], s)):
            report.balance.append(StratumReport(shown(name), scan.balance[name], taken[name]))
