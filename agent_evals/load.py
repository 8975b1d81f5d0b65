"""Read prompts, eval sets and the project config from disk into models.

This is the only module that turns files into models. Every problem comes out
as a ConfigError that names the file and line; `load_project` gathers all of
them so `validate` can report every problem in one pass.
"""

from __future__ import annotations

import codecs
import difflib
import errno
import io
import json
import math
import os
import stat
import sys
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent_evals import _files, _yaml
from agent_evals._json import lone_surrogate, nested_deeper
from agent_evals.errors import ConfigError, ConfigErrors
from agent_evals.models import Case, CaseSources, EvalSet, ProjectConfig, Prompt

CONFIG_FILE = "agent-evals.yaml"
YAML_SUFFIXES = (".yaml", ".yml")

S = TypeVar("S", Prompt, EvalSet, ProjectConfig)

CasesReader = Callable[[str], "tuple[str | Iterable[str], str] | None"]
"""Reads an eval set's `cases_file`, given the reference as written (relative to the
eval set): its text (or its lines, read as they are needed) and the path to name in errors,
or None when there is no such file."""

# Hints for keys a user is most likely to leave out, by dotted path.
_MISSING_HINTS = {
    "owner": "an unowned prompt is invalid: add 'owner: {name: ..., oncall: ...}'",
    "owner.name": "name the person or team who owns this prompt",
    "owner.oncall": "say who gets paged when it breaks, e.g. 'oncall: pagerduty:support-ai'",
    "model": "add 'model: {provider: local}' or a real provider",
    "messages": "add at least one '{role: user, content: ...}' message",
    "prompt": "name the id of the prompt this eval set exercises",
    "graders": "add at least one grader, e.g. '{type: exact_match}'",
    "version": "add 'version: 1' and bump it when the prompt changes",
    "id": "add 'id:' matching the file name",
}


@dataclass
class Project:
    """Everything under one project root, loaded; problems collected, not raised."""

    root: Path
    config: ProjectConfig
    prompts: dict[str, Prompt] = field(default_factory=dict)
    evalsets: dict[str, EvalSet] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)

    def raise_errors(self) -> None:
        if self.errors:
            raise ConfigErrors(self.errors)

    def missing_prompt(self, evalset: EvalSet) -> ConfigError:
        """The error of `evalset` targeting a prompt the project does not have: one wording for
        `validate`, `run` (`runner.plan`) and `ci`, which refuses such a project rather than
        finding no pair to gate."""
        known = ", ".join(sorted(self.prompts)) or "none"
        return ConfigError(
            f"eval set targets prompt '{evalset.prompt}', which does not exist",
            path=evalset.source_path,
            line=evalset.line_of("prompt"),
            hint=f"create {self.config.paths.prompts}/{evalset.prompt}.yaml or fix the id; known: {known}",
        )


def _dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that owns the keys at `loc`, walking field annotations."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # an index into a list or tuple: the unwrapping below already stepped inside
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        fld = _fields(current).get(str(part))
        if fld is None:
            return None
        current = fld.annotation
        # Unwrap Optional / tuple / list / dict to the model inside, if any.
        for _ in range(3):
            args = [a for a in typing.get_args(current) if a is not type(None) and a is not Ellipsis]
            if typing.get_origin(current) is None or not args:
                break
            current = args[-1]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the key a user writes (the alias when there is one)."""
    return {f.alias or name: f for name, f in model.model_fields.items()}


def translate(
    exc: ValidationError,
    *,
    path: str | Path,
    marks: Any,
    model: type[BaseModel],
    prefix: Sequence[int | str] = (),
) -> list[ConfigError]:
    """Turn pydantic's errors into located, human ConfigErrors."""
    out: list[ConfigError] = []
    errors = exc.errors(include_url=False)
    failed_inside = {err["loc"][:depth] for err in errors for depth in range(len(err["loc"]))}
    for err in errors:
        if err["type"] == "too_short" and err["loc"] in failed_inside:
            continue  # a list emptied by its own items' errors: those are the problem, said below
        loc = [*prefix, *err["loc"]]
        line = _yaml.line_of(marks, loc)
        where = _dotted(loc)
        kind = err["type"]
        if kind == "missing":
            out.append(
                ConfigError(
                    f"missing required key '{where}'",
                    path=path,
                    line=line,
                    hint=_MISSING_HINTS.get(where, f"add '{loc[-1]}'"),
                )
            )
        elif kind == "extra_forbidden":
            key = str(loc[-1])
            owner = _model_at(model, err["loc"][:-1])
            allowed = sorted(_fields(owner)) if owner else []
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
            parent = _dotted(loc[:-1])
            out.append(
                ConfigError(
                    f"unknown key '{key}'" + (f" in '{parent}'" if parent else ""),
                    path=path,
                    line=line,
                    hint=hint,
                )
            )
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = (
                f" (got {got!r})" if isinstance(got, str | int | float | bool) and len(repr(got)) < 60 else ""
            )
            # A validator's own hint (its error's context) says more than one guessed from the kind.
            hint = str((err.get("ctx") or {}).get("hint") or _fix_for(kind))
            out.append(ConfigError(f"'{where}': {msg}{shown}", path=path, line=line, hint=hint))
    return out


def _fix_for(kind: str) -> str:
    if kind.startswith(("int_", "float_", "bool_", "string_", "dict_", "list_", "tuple_", "model_")):
        return "change the value to the expected type"
    if kind == "literal_error":
        return "use one of the listed values"
    if kind == "string_pattern_mismatch":
        return "use letters, digits, '.', '_' and '-'"
    return "fix the value"


def _validate(model: type[S], data: Any, path: Path, **located: Any) -> S:
    try:
        return model.located(data, path=path, marks=data, **located)
    except ValidationError as exc:
        raise ConfigErrors(translate(exc, path=path, marks=data, model=model)) from None


def _check_id_matches_file(data: _yaml.MarkedDict, path: Path, shown: Path | None = None) -> None:
    file_id = path.stem
    if "id" in data and isinstance(data["id"], str) and data["id"] != file_id:
        raise ConfigError(
            f"id '{data['id']}' does not match the file name '{path.name}'",
            path=shown or path,
            line=data.key_lines["id"],
            hint=f"rename the file to '{data['id']}{path.suffix}' or set 'id: {file_id}'",
        )


def _mapping(
    path: Path, text: str | None, shown: str | None, empty_hint: str = _yaml.EMPTY_HINT
) -> tuple[_yaml.MarkedDict, Path]:
    """The file's top-level mapping, and the path its errors and `source_path` name."""
    where = path if shown is None else Path(shown)
    return _yaml.load_mapping(path if text is None else where, text=text, empty_hint=empty_hint), where


def load_prompt(path: Path, text: str | None = None, *, shown: str | None = None) -> Prompt:
    """Load and check one prompt file.

    Args:
        path: the prompt file; its name is what the `id` must match.
        text: the file's content, when it does not come from disk (e.g. from a git commit).
        shown: how errors and `source_path` name the file, e.g. `prompts/x.yaml@1a2b3c4d`
            (default: `path`).

    Raises:
        ConfigError: the file is not valid YAML or not a valid prompt.
    """
    data, where = _mapping(path, text, shown)
    prompt = _validate(Prompt, data, where)
    _check_id_matches_file(data, path, where)
    return prompt


def _disk_cases_reader(evalset_path: Path, root: Path | None = None) -> CasesReader:
    """Reads an eval set's `cases_file` from beside `evalset_path`, refusing what must not be opened.

    Args:
        evalset_path: the eval set file, as errors name it.
        root: the project root no cases file may lie outside (default: the project
            `find_root` finds from the eval set's folder, else the current directory).
    """

    def read(ref: str) -> tuple[Iterable[str], str] | None:
        cases_path = evalset_path.parent / ref
        if not os.path.lexists(cases_path):
            return None
        base = root
        if base is None:
            try:
                base = find_root(evalset_path.parent)
            except ConfigError:
                base = Path.cwd()
        shown = _rel(cases_path, base)
        refused = unreadable(cases_path, base, "replace it with a JSON Lines file or remove it")
        if refused is not None:
            raise refused
        try:
            return _CasesFile(cases_path, str(shown)), str(shown)
        except OSError as exc:
            raise ConfigError(f"cannot read file: {exc.strerror}", path=shown) from None

    return read


class _CasesFile:
    """A cases file's lines, read one at a time as they are needed: the lines `read_text`
    would give (UTF-8, any line ending read as \\n), without holding the whole text.

    Reading the whole text first, a failing read or a byte that is not UTF-8 anywhere in the
    file came out before any problem of a line: `first_problem` finds them, to keep it so.
    """

    def __init__(self, path: Path, shown: str) -> None:
        self.path = path
        self.shown = shown
        self._text = open(path, encoding="utf-8", newline=None)  # noqa: SIM115 - closed by `close`

    def __iter__(self) -> Iterator[str]:
        # At most one character over the limit, so a longer line is refused without being read whole.
        readline = partial(self._text.readline, MAX_LINE_BYTES + 1)
        try:
            yield from iter(readline, "")
        except UnicodeDecodeError:
            raise self._not_utf8(None) from None  # located by `first_problem`
        except OSError as exc:
            raise ConfigError(f"cannot read file: {exc.strerror}", path=self.shown) from None

    def first_problem(self) -> ConfigError | None:
        """The error reading the whole text gave, if any: a failing read, else the first byte
        that is not UTF-8.

        Reads the whole file again, a megabyte at a time: only ever called on the way to an error.
        """
        decoder = codecs.getincrementaldecoder("utf-8")()
        newlines = 0
        bad_line: int | None = None
        try:
            with open(self.path, "rb") as fh:
                for chunk in iter(partial(fh.read, 2**20), b""):
                    if bad_line is None:
                        try:
                            decoder.decode(chunk)
                        except UnicodeDecodeError as exc:
                            # `exc.object` is this chunk after the undecoded end of the one before
                            # (the start of a character, never a \\n).
                            bad_line = newlines + exc.object.count(b"\n", 0, exc.start) + 1
                    newlines += chunk.count(b"\n")
        except OSError as exc:
            return ConfigError(f"cannot read file: {exc.strerror}", path=self.shown)
        if bad_line is None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:  # the file ends inside a character
                bad_line = newlines + 1
        return None if bad_line is None else self._not_utf8(bad_line)

    def _not_utf8(self, line: int | None) -> ConfigError:
        return ConfigError("not UTF-8 text", path=self.shown, line=line, hint="save the file as UTF-8")

    def close(self) -> None:
        self._text.close()


def unreadable(path: Path, root: Path, fix: str) -> ConfigError | None:
    """Why the entry at `path` must not be read, or None for a regular file inside `root`.

    Only stats, never opens: opening a FIFO blocks until something writes to it, and a
    device such as /dev/zero reads forever. A symlink is followed when it leads to a
    regular file inside the project and refused when it leads out of it: a pull request
    is untrusted input, and a link to /etc/passwd or a key must not get that file read
    and quoted back in an error message.

    Args:
        path: the entry, which must exist (it may be a broken symlink).
        root: the project root no file may lie outside.
        fix: how to fix a non-regular entry, e.g. "replace it with a YAML file or remove it".

    Returns:
        The error to report (`path: not a regular file (a FIFO; <fix>)`), or None.
    """
    shown = _rel(path, root)
    link = os.path.islink(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            kind = "a symlink loop"
        elif link and exc.errno == errno.ENOENT:
            kind = "a dangling symlink"
        else:
            return None  # e.g. permission denied: the read that follows says so
    else:
        if stat.S_ISREG(mode):
            if Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root)):
                return None
            if link:
                return ConfigError(
                    "not a regular file",
                    path=shown,
                    hint="a symlink to outside the project, which is never followed; "
                    "copy the file into the project",
                )
            return ConfigError(
                "outside the project",
                path=shown,
                hint="no file outside the project root is read; move it into the project",
            )
        kind = _files.kind(mode)
        if link:
            kind = f"a symlink to {kind}"
    return ConfigError("not a regular file", path=shown, hint=f"{kind}; {fix}")


MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest line of a JSON Lines file read (16 MB): one case of a cases file, one case of a
run record. Bounds the memory one line takes, whatever the file holds."""


def iter_jsonl(
    lines: Iterable[str | bytes],
    shown: str | Path,
    *,
    hint: str = "each line must be one JSON object",
    max_depth: int = _yaml.MAX_DEPTH,
    partial_last_line: bool = False,
    first_line: int = 1,
) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSON Lines text.

    Args:
        lines: the lines, each with its line break; bytes are decoded as UTF-8 (read them
            with `readline(MAX_LINE_BYTES + 1)` to bound the memory a line takes).
        shown: how errors name the file.
        hint: what each line should be, for a line that is not JSON or not UTF-8.
        max_depth: refuse a value with collections nested deeper.
        partial_last_line: stop quietly at a last line with no line break that is not
            JSON or not UTF-8: what a writer killed mid-line leaves.
        first_line: the number of the first of `lines` (a reader passing one line at a time).

    Raises:
        ConfigError: a line is not UTF-8 or not JSON (naming the column), or is longer than
            MAX_LINE_BYTES, holds NaN or Infinity, an integer too long to print, collections
            nested over `max_depth` deep, or half a surrogate pair (a lone `\\ud800` escape).
    """
    for lineno, line in enumerate(lines, start=first_line):
        if len(line) > MAX_LINE_BYTES:
            raise ConfigError(
                f"line is longer than {MAX_LINE_BYTES // 2**20} MB",
                path=shown,
                line=lineno,
                hint=f"a line holds one case: keep each under {MAX_LINE_BYTES // 2**20} MB",
            )
        partial = partial_last_line and line[-1:] not in ("\n", b"\n")
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                if partial:
                    return
                raise ConfigError("not UTF-8 text", path=shown, line=lineno, hint=hint) from None
        if not line.strip():
            continue
        try:
            # Without its line break, so an error at the end of the line gets the line's column.
            value = _loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            if partial:
                return
            raise ConfigError(
                f"not valid JSON: {exc.msg} at column {exc.colno}", path=shown, line=lineno, hint=hint
            ) from None
        except _NotJSON as exc:
            raise ConfigError(
                f"not valid JSON: {exc} is not a JSON value",
                path=shown,
                line=lineno,
                hint="write null, or the number as a string",
            ) from None
        except _TooLarge as exc:
            raise ConfigError(
                f"number {exc} is too large (a number is at most 1.8e308)",
                path=shown,
                line=lineno,
                hint="write the number as a string",
            ) from None
        except ValueError:  # json.loads' only other one: an int over Python's digit limit
            raise ConfigError(
                f"integer with more than {sys.get_int_max_str_digits()} digits",
                path=shown,
                line=lineno,
                hint="quote it to keep it as text",
            ) from None
        except RecursionError:
            too_deep = True  # as deep as the stack goes: deeper than any max_depth
        else:
            # Collections nest no deeper than the line has brackets: most lines need no walk.
            too_deep = line.count("{") + line.count("[") > max_depth and nested_deeper(value, max_depth)
        if too_deep:
            raise ConfigError(
                f"collections nested more than {max_depth} deep",
                path=shown,
                line=lineno,
                hint="flatten the data",
            )
        if "\\u" in line and lone_surrogate(value):  # only a \u escape can make one
            raise ConfigError(
                "not valid JSON: a \\u escape of half a surrogate pair",
                path=shown,
                line=lineno,
                hint="write the character itself, or both halves of its \\u escape pair",
            )
        yield lineno, value


class _NotJSON(Exception):
    """A constant json.loads reads but JSON has not: NaN, Infinity, -Infinity."""


def _refuse_constant(name: str) -> Any:
    raise _NotJSON(name)


class _TooLarge(Exception):
    """A number json.loads reads as infinity: JSON has no limit, a float has (1.8e308)."""


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _TooLarge(text if len(text) <= 20 else text[:17] + "...")
    return number


# Checking each float costs a run record's line about a microsecond (10%); a regex deciding which
# lines need it cost 30.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def _loads(text: str) -> Any:
    """`json.loads(text)` refusing NaN, Infinity and numbers too large for a float, with one
    decoder for every line."""
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


def _read_cases_file(
    evalset_path: Path, ref: str, line: int | None, read: CasesReader
) -> tuple[list[Case], CaseSources]:
    """The cases of a `cases_file`, each validated as its line is read, and the line of each.

    Raises:
        ConfigError: the file is missing or unreadable, a line is not a JSON object
            (the first such line only), or cases are invalid (every one).
    """
    found = read(ref)
    if found is None:
        raise ConfigError(
            f"cases_file '{ref}' not found",
            path=evalset_path,
            line=line,
            hint="give a path relative to this eval set",
        )
    content, shown = found
    # newline=None reads lines as a text file does, whatever the line endings.
    lines = io.StringIO(content, newline=None) if isinstance(content, str) else content
    cases: list[Case] = []
    sources = CaseSources(shown)
    errors: list[ConfigError] = []
    shared = _Shared()
    try:
        for lineno, row in iter_jsonl(lines, shown):
            try:
                case = Case.model_validate(shared.strings(row))
            except ValidationError as exc:
                for err in translate(exc, path=shown, marks=None, model=Case):
                    errors.append(ConfigError(err.message, path=shown, line=lineno, hint=err.hint))
                continue
            shared.fields_set(case)
            cases.append(case)
            sources.append(lineno)
    except ConfigError as exc:
        # Reading the whole text first, a byte that is not UTF-8 anywhere came out first.
        first = content.first_problem() if isinstance(content, _CasesFile) else None
        raise (first or exc) from None
    finally:
        if isinstance(content, _CasesFile):
            content.close()
    if errors:
        raise ConfigErrors(errors)
    return cases, sources


class _Shared:
    """One object for what many cases of a file hold equal, so 100,000 cases keep one copy.

    Only immutable values, or values no code changes: a case behaves the same either way.
    """

    def __init__(self) -> None:
        self._fields_sets: dict[frozenset[str], set[str]] = {}

    def strings(self, row: Any) -> Any:
        """`row` with its tags, cluster and the keys of its vars interned (one str object each)."""
        if type(row) is not dict:
            return row
        tags = row.get("tags")
        if type(tags) is list:
            row["tags"] = [sys.intern(tag) if type(tag) is str else tag for tag in tags]
        cluster = row.get("cluster")
        if type(cluster) is str:
            row["cluster"] = sys.intern(cluster)
        variables = row.get("vars")
        if type(variables) is dict:
            row["vars"] = {sys.intern(key): value for key, value in variables.items()}
        return row

    def fields_set(self, case: Case) -> None:
        """Give `case` the set of the keys it was given that an earlier case with the same keys has.

        Pydantic keeps this set per instance (216 bytes for a case's four keys) and never
        changes it on a frozen model; `model_copy` copies it first.
        """
        fields = case.__pydantic_fields_set__
        shared = self._fields_sets.setdefault(frozenset(fields), fields)
        if shared is not fields:
            object.__setattr__(case, "__pydantic_fields_set__", shared)


def load_evalset(
    path: Path,
    text: str | None = None,
    *,
    shown: str | None = None,
    read_cases: CasesReader | None = None,
) -> EvalSet:
    """Load and check one eval set, with its JSONL cases file if it names one.

    Args:
        path: the eval set file; its name is what the `id` must match.
        text: the file's content, when it does not come from disk (e.g. from a git commit).
        shown: how errors and `source_path` name the file (default: `path`).
        read_cases: reads the `cases_file` (default: from disk, beside `path`).

    Raises:
        ConfigError: the file (or its cases file) is not valid.
    """
    data, where = _mapping(path, text, shown)
    sources: CaseSources | None = None
    ref = data.get("cases_file")
    if isinstance(ref, str):
        if data.get("cases"):
            raise ConfigError(
                "both 'cases' and 'cases_file' are set",
                path=where,
                line=data.key_lines["cases_file"],
                hint="keep the cases in one place",
            )
        reader = read_cases or _disk_cases_reader(path)
        cases, sources = _read_cases_file(where, ref, data.key_lines["cases_file"], reader)
        # Already validated: the eval set takes the instances as they are (no second pass).
        data["cases"] = cases
    evalset = _validate(EvalSet, data, where, case_sources=sources)
    if sources is not None:
        data["cases"] = evalset.cases  # the marks keep the eval set's tuple, not a list of the same cases
    _check_id_matches_file(data, path, where)
    _check_duplicate_case_ids(evalset)
    return evalset


def _check_duplicate_case_ids(evalset: EvalSet) -> None:
    seen: dict[str, int] = {}
    errors = []
    for index, case in enumerate(evalset.cases):
        if case.id in seen:
            path, line = evalset.case_source(index)
            _, first_line = evalset.case_source(seen[case.id])
            errors.append(
                ConfigError(
                    f"duplicate case id '{case.id}'",
                    path=path,
                    line=line,
                    hint=f"first used on line {first_line}; case ids must be unique",
                )
            )
        else:
            seen[case.id] = index
    if errors:
        raise ConfigErrors(errors)


def load_config(root: Path, text: str | None = None, *, shown: str | None = None) -> ProjectConfig:
    """Load `agent-evals.yaml` from `root` (or from `text`), or the defaults when there is none.

    Args:
        root: the project root.
        text: the config's content, when it does not come from disk (e.g. from a git commit).
        shown: how errors name the file (default: its path from the current directory).

    Raises:
        ConfigError: the file is invalid, or is not a regular file inside `root` (a FIFO,
            a device, a dangling symlink, a symlink out of the project...).
    """
    path = root / CONFIG_FILE
    if text is None:
        if not os.path.lexists(path):
            return ProjectConfig()
        refused = unreadable(path, root, "replace it with a YAML file or remove it")
        if refused is not None:
            raise refused
        path = _rel(path, root)
    # The config has no id; every key has a default.
    data, where = _mapping(path, text, shown, empty_hint="write 'schema_version: 1', or remove the file")
    return _validate(ProjectConfig, data, where)


def _yaml_files(folder: Path, root: Path, errors: list[ConfigError]) -> list[Path]:
    """The YAML files in `folder` that may be read; an error in `errors` for each that may not."""
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in YAML_SUFFIXES:
            continue
        refused = unreadable(path, root, "replace it with a YAML file or remove it")
        if refused is None:
            files.append(path)
        else:
            errors.append(refused)
    return files


def _collect(errors: list[ConfigError], exc: ConfigError) -> None:
    errors.extend(exc.errors if isinstance(exc, ConfigErrors) else [exc])


def load_project(root: Path, files: Sequence[Path] | None = None) -> Project:
    """Load the project at `root`: its config, prompts and eval sets.

    Args:
        root: the project root (where agent-evals.yaml lives, if it does).
        files: only these prompt and eval set files (plus what they reference);
            default: every file under the configured folders.

    Returns:
        The project, with every problem found in `errors` rather than raised. Entries
        that must not be opened (a FIFO, a device, a dangling or looping symlink, a
        symlink out of the project) are errors too, and are never opened.

    Raises:
        ConfigError: `root` is not a project's root (`check_root`).
    """
    check_root(root)
    errors: list[ConfigError] = []
    try:
        config = load_config(root)
    except ConfigError as exc:
        _collect(errors, exc)
        config = ProjectConfig()
    errors.extend(_missing_folders(root, config))
    project = Project(root=root, config=config, errors=errors)
    prompt_dir = root / config.paths.prompts
    evalset_dir = root / config.paths.evalsets
    all_prompt_files = _yaml_files(prompt_dir, root, errors)
    prompt_files = all_prompt_files
    evalset_files = _yaml_files(evalset_dir, root, errors)
    if files is not None:
        # realpath, not resolve(): a symlink loop among `files` must not raise.
        wanted = {os.path.realpath(f) for f in files}
        evalset_files = [p for p in evalset_files if os.path.realpath(p) in wanted]
        # Prompts: the ones asked for, and the ones the chosen eval sets target (loaded below).
        prompt_files = [p for p in prompt_files if os.path.realpath(p) in wanted]
    for path in prompt_files:
        _load_into(project.prompts, load_prompt, _rel(path, root), errors)
    for path in evalset_files:
        shown = _rel(path, root)
        reader = _disk_cases_reader(shown, root)
        _load_into(project.evalsets, partial(load_evalset, read_cases=reader), shown, errors)
    if files is not None:
        # The prompts the chosen eval sets target, unless already tried; only files that may be read.
        readable = {p.name: p for p in all_prompt_files}
        tried = {os.path.realpath(p) for p in prompt_files}
        for evalset in list(project.evalsets.values()):
            for suffix in YAML_SUFFIXES:
                candidate = readable.get(f"{evalset.prompt}{suffix}")
                if candidate is not None and os.path.realpath(candidate) not in tried:
                    tried.add(os.path.realpath(candidate))
                    _load_into(project.prompts, load_prompt, _rel(candidate, root), errors)
    return project


def _missing_folders(root: Path, config: ProjectConfig) -> list[ConfigError]:
    """The prompts and eval sets folders `agent-evals.yaml` names (`paths:`) that are not folders:
    a typo there left the project empty, so `validate` passed and `ci` found nothing changed."""
    missing = []
    for key, what in (("prompts", "prompts"), ("evalsets", "eval sets")):
        folder = getattr(config.paths, key)
        if key in config.paths.model_fields_set and not (root / folder).is_dir():
            missing.append(
                ConfigError(
                    f"paths.{key}: {folder!r} is not a folder of the project",
                    path=config.source_path,
                    line=config.line_of("paths", key, value=True),
                    hint=f"create it, or name the folder that holds the {what}",
                )
            )
    return missing


def find_root(start: Path) -> Path:
    """The root of the agent-evals project `start` is in, found the way git finds a repository.

    Walks up from `start` to the nearest folder holding `agent-evals.yaml`; when none
    does, to the nearest holding a `prompts/` or `evalsets/` folder. The config wins
    because it may move those folders (`paths:`), so the folder above them is the root.
    The walk stops at the filesystem root and at the top of a git work tree (a folder
    holding `.git`), after checking it: a project never borrows a config from outside
    its repository.

    Args:
        start: where the command was started, usually the current directory.

    Returns:
        The project root, as an absolute path.

    Raises:
        ConfigError: no folder up to the boundary looks like a project.
    """
    here = Path(os.path.abspath(start))
    chain = []
    for folder in (here, *here.parents):
        chain.append(folder)
        if os.path.lexists(folder / ".git"):
            break
    for folder in chain:
        if _has_config(folder):
            return folder
    for folder in chain:
        if _has_folders(folder):
            return folder
    raise ConfigError(
        "no agent-evals project here or above",
        hint="looked for agent-evals.yaml, prompts/, evalsets/; run 'agent-evals init' or pass -C DIR",
    )


def root_or_here(start: Path) -> Path:
    """The root of the project `start` is in (`find_root`), or `start` itself when it is in none:
    where `diff` and `report` read the config and the eval set of records, which may be compared
    outside any project (with the default policy) but, inside one, only with its own."""
    try:
        return find_root(start)
    except ConfigError:
        return start


def check_root(root: Path) -> None:
    """That `root` is a project's root, as `find_root` marks one: it holds `agent-evals.yaml`, a
    `prompts/` or an `evalsets/` folder. A command that works on the project where it was started
    (`run`, `ci`...) must not take a folder inside a project, or outside any, for an empty
    project: `ci` there would find nothing changed and pass the gate.

    Raises:
        ConfigError: `root` is inside a project (naming its root) or in none.
    """
    if _has_config(root) or _has_folders(root):
        return
    found = find_root(root)  # raises: no project here or above
    raise ConfigError(
        f"{os.path.abspath(root)} is inside the agent-evals project at {found}, not its root",
        hint=f"run from {found}, or pass -C {found}",
    )


def _has_config(folder: Path) -> bool:
    # lexists: a config that is a FIFO or a broken link still marks the root, and is reported.
    return os.path.lexists(folder / CONFIG_FILE)


def _has_folders(folder: Path) -> bool:
    return (folder / "prompts").is_dir() or (folder / "evalsets").is_dir()


def find_evalset_file(root: Path, folder: str, evalset: str) -> Path | None:
    """An eval set's YAML file: `evalset` given as a path, or its id under `folder` (.yaml or .yml).

    Raises:
        ConfigError: the file is there but must not be opened (a FIFO, a device, a
            dangling or looping symlink, a symlink out of the project).
    """
    given = Path(evalset)
    candidates = [root / given] if given.suffix in YAML_SUFFIXES else []
    candidates += [root / folder / f"{evalset}{suffix}" for suffix in YAML_SUFFIXES]
    for candidate in candidates:
        if os.path.lexists(candidate):
            refused = unreadable(candidate, root, "replace it with a YAML file or remove it")
            if refused is not None:
                raise refused
            return candidate
    return None


def with_prompt_file(project: Project, path: Path) -> Project:
    """The project with the prompt in `path` standing in for the project's prompt of the same id.

    Raises:
        ConfigError: the file is not a valid prompt.
    """
    prompt = load_prompt(path, shown=str(path))
    prompts = {**project.prompts, prompt.id: prompt}
    return Project(
        root=project.root,
        config=project.config,
        prompts=prompts,
        evalsets=project.evalsets,
        errors=project.errors,
    )


def _rel(path: Path, root: Path) -> Path:
    """`path` as errors and `source_path` name it: from the current directory, as git shows paths.

    The folder is resolved but not the file itself: a prompt that is a symlink keeps its
    own name (which its `id` must match). Outside the current directory, a path is shown
    with `..` when the current directory is inside the project, else in full.
    """
    absolute = Path(os.path.realpath(path.parent)) / path.name
    cwd = Path.cwd()
    if absolute.is_relative_to(cwd):
        return absolute.relative_to(cwd)
    if cwd.is_relative_to(os.path.realpath(root)):
        return Path(os.path.relpath(absolute, cwd))
    return absolute


def _load_into(target: dict[str, Any], loader: Any, path: Path, errors: list[ConfigError]) -> None:
    try:
        obj = loader(path)
    except ConfigError as exc:
        _collect(errors, exc)
        return
    if obj.id in target:
        errors.append(
            ConfigError(
                f"id '{obj.id}' is also used by {target[obj.id].source_path}",
                path=path,
                line=obj.line_of("id"),
                hint="ids must be unique",
            )
        )
        return
    target[obj.id] = obj
