"""Write a sampled eval set: a new one, or new cases appended to an existing one.

A new eval set keeps `cases:` as its last key (or names a `cases_file`), so
that `--append` only ever adds text at the end of the YAML or lines at the end
of the JSONL: the old content stays a byte-prefix of the new, and the git diff
of an append shows additions only. Nothing already written is re-dumped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_evals import _yaml
from agent_evals.errors import ConfigError
from agent_evals.load import iter_jsonl
from agent_evals.models import ID_PATTERN, EvalSet
from agent_evals.sampling._options import CASES_FILE_ABOVE, SampleOptions, SampleReport
from agent_evals.sampling._select import Candidate


@dataclass(frozen=True)
class Paths:
    """The files of one sampled eval set."""

    evalset: Path
    cases: Path
    to_label: Path

    @classmethod
    def beside(cls, evalset: Path) -> Paths:
        stem = evalset.stem
        return cls(
            evalset, evalset.with_name(f"{stem}.cases.jsonl"), evalset.with_name(f"{stem}.to-label.jsonl")
        )


def case_entry(row: Candidate) -> dict[str, Any]:
    """A sampled row as an eval set case (keys in the order a person reads them)."""
    case: dict[str, Any] = {"id": row.id, "vars": row.vars}
    if row.expected is not None:
        case["expected"] = row.expected
    if row.tags:
        case["tags"] = list(dict.fromkeys(row.tags))
    if row.cluster is not None:
        case["cluster"] = row.cluster
    if row.tools:
        case["tools"] = row.tools
    return case


def to_label_entry(row: Candidate) -> dict[str, Any]:
    """A sampled row without a label: a case with `expected: null`, and what a labeller needs to see."""
    case = case_entry(row)
    entry = {"id": case.pop("id"), "vars": case.pop("vars"), "expected": None, **case}
    context = {
        "output": row.output,
        "feedback": row.feedback,
        "timestamp": row.timestamp,
        "source_line": row.position,
    }
    entry["context"] = {k: v for k, v in context.items() if v is not None}
    return entry


def json_line(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    """Write a whole file by renaming a finished temporary one over it.

    The file gets the mode an ordinary write would give it: an existing file keeps
    its own, a new one 0666 less the umask (`mkstemp` would make every file 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            # 0666 here: the kernel applies the umask, as for any new file (no racy os.umask() read).
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _append(path: Path, text: str) -> None:
    if not text:
        return
    prefix = ""
    if path.exists():
        size = path.stat().st_size
        if size:
            with path.open("rb") as handle:
                handle.seek(size - 1)
                prefix = "" if handle.read(1) == b"\n" else "\n"
    with path.open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(prefix + text)


def comment(lines: Iterable[str], indent: int = 0) -> str:
    return "".join(f"{' ' * indent}# {line}\n" for line in lines)


def write_new(
    paths: Paths,
    head: Mapping[str, Any],
    cases: Sequence[Mapping[str, Any]],
    to_label: Sequence[Mapping[str, Any]],
    *,
    header: Sequence[str],
    use_cases_file: bool,
) -> None:
    """Write a new eval set (replacing the files if they exist) with `cases:` last, or a cases file."""
    text = comment(header) + _yaml.dump(dict(head))
    if use_cases_file:
        text += _yaml.dump({"cases_file": paths.cases.name})
        _atomic_write(paths.cases, "".join(json_line(c) for c in cases))
    else:
        text += _yaml.dump({"cases": list(cases)})
        paths.cases.unlink(missing_ok=True)
    _atomic_write(paths.evalset, text)
    if to_label:
        _atomic_write(paths.to_label, "".join(json_line(r) for r in to_label))
    else:
        paths.to_label.unlink(missing_ok=True)


def append_layout(path: Path, text: str, evalset: EvalSet) -> int | None:
    """Where new cases go: the indent of the YAML's case items, or None when the cases are in a file.

    Raises:
        ConfigError: the file cannot grow by appending text at its end (`cases` is
            not its last key, or is written in flow style).
    """
    if evalset.cases_file:
        return None
    data = _yaml.load_mapping(path, text)
    if "cases" not in data:
        raise ConfigError(
            "cannot append: the eval set has neither 'cases' nor 'cases_file'",
            path=path,
            line=data.line or 1,
            hint="add 'cases:' as the last key, or sample into a new file",
        )
    if list(data)[-1] != "cases":
        raise ConfigError(
            "cannot append: 'cases' is not the last key of the eval set",
            path=path,
            line=data.key_lines["cases"],
            hint="move 'cases:' to the end of the file, so new cases can be added without rewriting it",
        )
    lines = text.splitlines()
    key_line = lines[data.key_lines["cases"] - 1]
    after = key_line.split(":", 1)[1].split("#", 1)[0].strip()
    items = data["cases"]
    if after or not isinstance(items, _yaml.MarkedList) or not items:
        raise ConfigError(
            "cannot append to 'cases' written in flow style or empty",
            path=path,
            line=data.key_lines["cases"],
            hint="write the cases as a block list, one '- id: ...' item each",
        )
    first = lines[items.item_lines[0] - 1]
    stripped = first.lstrip(" ")
    if not stripped.startswith("-"):
        raise ConfigError(
            "cannot append: the first case does not start its line with '- '",
            path=path,
            line=items.item_lines[0],
            hint="write each case as '- id: ...'",
        )
    return len(first) - len(stripped)


def write_append(
    paths: Paths,
    indent: int | None,
    cases: Sequence[Mapping[str, Any]],
    to_label: Sequence[Mapping[str, Any]],
    *,
    note: Sequence[str],
) -> None:
    """Append new cases (and rows to label) at the end of the existing files; rewrite nothing."""
    if indent is None:
        _append(paths.cases, "".join(json_line(c) for c in cases))
        _append(paths.evalset, comment(note))
    elif cases:
        pad = " " * indent
        items = "".join(pad + line + "\n" for line in _yaml.dump(list(cases)).splitlines())
        _append(paths.evalset, comment(note, indent) + items)
    else:
        _append(paths.evalset, comment(note, indent))
    _append(paths.to_label, "".join(json_line(r) for r in to_label))


def read_to_label_ids(path: Path) -> set[str]:
    """The ids of rows already waiting to be labelled (so a re-sample does not queue them twice)."""
    ids: set[str] = set()
    if not path.is_file():
        return ids
    with path.open(encoding="utf-8") as handle:
        for _, row in iter_jsonl(handle, path):
            if isinstance(row, dict) and isinstance(row.get("id"), str):
                ids.add(row["id"])
    return ids


# --- the sampled eval set -------------------------------------------------------------------


@dataclass
class Target:
    """The eval set being written: a new one, or an existing one to append to."""

    paths: Paths
    existing: EvalSet | None
    indent: int | None  # where appended YAML items go; None: into the cases file
    ids: set[str]  # ids already there or waiting to be labelled


def open_target(options: SampleOptions) -> Target:
    """Where the eval set goes, and what is there already; refuses to clobber or to rewrite."""
    from agent_evals.load import load_config, load_evalset

    output = (
        options.output or options.root / load_config(options.root).paths.evalsets / f"{options.prompt}.yaml"
    )
    if not re.fullmatch(ID_PATTERN, output.stem):
        raise ConfigError(
            "the file name is not a valid eval set id",
            path=output,
            hint="use letters, digits, '.', '_' and '-'",
        )
    paths = Paths.beside(output)
    if not output.exists():
        return Target(paths, None, None, set())
    if not options.append:
        if options.overwrite:
            return Target(paths, None, None, set())
        raise ConfigError(
            "the eval set already exists",
            path=output,
            hint="pass --append to add new cases to it, or --overwrite to replace it",
        )
    existing = load_evalset(output)
    if existing.prompt != options.prompt:
        raise ConfigError(
            f"the eval set targets prompt '{existing.prompt}', not '{options.prompt}'",
            path=output,
            line=existing.line_of("prompt"),
            hint=f"pass --prompt {existing.prompt}, or sample into another file",
        )
    # Checked now, not after reading a large log: can this file grow by appending?
    indent = append_layout(output, output.read_text(encoding="utf-8"), existing)
    ids = {c.id for c in existing.cases} | read_to_label_ids(paths.to_label)
    return Target(paths, existing, indent, ids)


def _sampled_at(given: str | None) -> str:
    if given:
        return given
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).date().isoformat()
    return dt.datetime.now(dt.UTC).date().isoformat()


def write_sampled(
    options: SampleOptions,
    target: Target,
    report: SampleReport,
    graders: list[dict[str, Any]],
    filters: list[str],
    cases: list[dict[str, Any]],
    to_label: list[dict[str, Any]],
) -> None:
    """Write the new eval set, or append to the existing one; say what was written in `report`."""
    paths = target.paths
    sampled_at = _sampled_at(options.sampled_at)
    if target.existing is None:
        use_file = options.cases_file if options.cases_file is not None else len(cases) > CASES_FILE_ABOVE
        # An empty inline `cases: []` could not grow by appending; an empty cases file can.
        use_file = use_file or not cases
        provenance = {
            "source": options.log.name,
            "sampled_at": sampled_at,
            "method": report.method,
            "synthetic": True if options.synthetic else None,
            "source_hash": report.source_hash,
            "time_window": report.time_window,
            "filters": filters or None,
            "seed": options.seed,
            "notes": _notes_text(report),
        }
        head = {
            "schema_version": 1,
            "id": paths.evalset.stem,
            "prompt": options.prompt,
            "description": options.description or f"Sampled from production traffic ({options.log.name}).",
            "provenance": {k: v for k, v in provenance.items() if v is not None},
            "graders": graders,
        }
        write_new(paths, head, cases, to_label, header=_header(report, paths), use_cases_file=use_file)
        report.cases_path = paths.cases if use_file else None
    elif cases or to_label:
        note = [
            f"appended by agent-evals sample on {sampled_at}: {len(cases)} case(s) from {options.log.name}",
            f"  source_hash: {report.source_hash}; seed: {options.seed}",
            f"  method: {report.method}",
        ]
        if report.time_window:
            note.append(f"  time window: {report.time_window}")
        note.append(f"  filters: {'; '.join(filters)}")
        if to_label:
            note.append(f"  and {len(to_label)} row(s) without a label, in {paths.to_label.name}")
        write_append(paths, target.indent, cases, to_label, note=note)
        report.cases_path = paths.cases if target.indent is None else None
    else:
        report.notes.append("nothing new to add: the eval set is unchanged")


def _notes_text(report: SampleReport) -> str:
    bad = sum(report.bad_lines.values())
    text = f"{report.rows_read} rows read"
    if bad:
        text += f", {bad} bad line(s) skipped"
    text += f", {sum(report.filtered.values())} filtered out, {report.eligible} eligible; {report.cases} case(s) written"
    if report.tool_calls or report.tool_calls_dropped:
        text += f" with {report.tool_calls} recorded tool call(s)"
        dropped = sum(report.tool_calls_dropped.values())
        if dropped:
            text += f" ({dropped} left out: {', '.join(report.tool_calls_dropped)})"
    if report.to_label:
        text += f", {report.to_label} row(s) without a label set aside for labelling"
    return text


def _header(report: SampleReport, paths: Paths) -> list[str]:
    lines = [
        "Sampled from production traffic by `agent-evals sample`; see provenance for the source and method."
    ]
    if report.redaction:
        lines.append(
            "Personal data was redacted before writing (placeholders such as <EMAIL>, <PHONE>, <CARD>)."
        )
    else:
        lines.append(
            "Redaction was turned OFF (--no-redact): review these cases for personal data before committing."
        )
    if report.to_label:
        lines.append(
            f"{report.to_label} sampled row(s) had no label: they are in {paths.to_label.name}, not in this eval set."
        )
    lines.append("New cases are only ever appended (agent-evals sample --append): keep 'cases' the last key.")
    return lines
