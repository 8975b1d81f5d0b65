"""Read prompts, eval sets and the project config from disk into models.

This is the only module that turns files into models. Every problem comes out
as a ConfigError that names the file and line; `load_project` gathers all of
them so `validate` can report every problem in one pass.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent_evals import _yaml
from agent_evals.errors import ConfigError
from agent_evals.models import Case, EvalSet, ProjectConfig, Prompt

CONFIG_FILE = "agent-evals.yaml"
YAML_SUFFIXES = (".yaml", ".yml")

M = TypeVar("M", bound=BaseModel)

CasesReader = Callable[[str], "tuple[str, str] | None"]
"""Reads an eval set's `cases_file`, given the reference as written (relative to the
eval set): its text and the path to name in errors, or None when there is no such file."""

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


class ConfigErrors(ConfigError):
    """Several ConfigErrors at once; renders one per line."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(e.render() for e in self.errors))

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


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
    for err in exc.errors(include_url=False):
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
            out.append(ConfigError(f"'{where}': {msg}{shown}", path=path, line=line, hint=_fix_for(kind)))
    return out


def _fix_for(kind: str) -> str:
    if kind.startswith(("int_", "float_", "bool_", "string_", "dict_", "list_", "tuple_", "model_")):
        return "change the value to the expected type"
    if kind == "literal_error":
        return "use one of the listed values"
    if kind == "string_pattern_mismatch":
        return "use letters, digits, '.', '_' and '-'"
    return "fix the value"


def _validate(model: type[M], data: Any, path: Path) -> M:
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(translate(exc, path=path, marks=data, model=model)) from None
    obj._path = str(path)  # type: ignore[attr-defined]
    obj._marks = data  # type: ignore[attr-defined]
    return obj


def _check_id_matches_file(data: _yaml.MarkedDict, path: Path, shown: Path | None = None) -> None:
    file_id = path.stem
    if "id" in data and isinstance(data["id"], str) and data["id"] != file_id:
        raise ConfigError(
            f"id '{data['id']}' does not match the file name '{path.name}'",
            path=shown or path,
            line=data.key_lines["id"],
            hint=f"rename the file to '{data['id']}{path.suffix}' or set 'id: {file_id}'",
        )


def _mapping(path: Path, text: str | None, shown: str | None) -> tuple[_yaml.MarkedDict, Path]:
    """The file's top-level mapping, and the path its errors and `source_path` name."""
    where = path if shown is None else Path(shown)
    return _yaml.load_mapping(path if text is None else where, text=text), where


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


def _disk_cases_reader(evalset_path: Path) -> CasesReader:
    def read(ref: str) -> tuple[str, str] | None:
        cases_path = (evalset_path.parent / ref).resolve()
        shown = Path(os.path.relpath(cases_path)) if cases_path.is_absolute() else cases_path
        if not cases_path.is_file():
            return None
        try:
            return cases_path.read_text(encoding="utf-8"), str(shown)
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text", path=shown, hint="save the file as UTF-8") from None

    return read


def iter_jsonl(lines: Iterable[str], shown: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSON Lines text.

    Raises:
        ConfigError: a line is not JSON, naming the file, line and column.
    """
    for lineno, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            yield lineno, json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"not valid JSON: {exc.msg} at column {exc.colno}",
                path=shown,
                line=lineno,
                hint="each line must be one JSON object",
            ) from None


def _read_cases_file(
    evalset_path: Path, ref: str, line: int | None, read: CasesReader
) -> tuple[list[Any], list[int], str]:
    found = read(ref)
    if found is None:
        raise ConfigError(
            f"cases_file '{ref}' not found",
            path=evalset_path,
            line=line,
            hint="give a path relative to this eval set",
        )
    content, shown = found
    rows: list[Any] = []
    lines: list[int] = []
    # newline=None reads lines as a text file does, whatever the line endings.
    for lineno, row in iter_jsonl(io.StringIO(content, newline=None), shown):
        rows.append(row)
        lines.append(lineno)
    return rows, lines, shown


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
    sources: list[tuple[str, int | None]] | None = None
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
        rows, lines, cases_shown = _read_cases_file(where, ref, data.key_lines["cases_file"], reader)
        errors: list[ConfigError] = []
        cases: list[Case] = []
        for row, lineno in zip(rows, lines, strict=True):
            try:
                cases.append(Case.model_validate(row))
            except ValidationError as exc:
                for err in translate(exc, path=cases_shown, marks=None, model=Case):
                    err.line = lineno
                    errors.append(ConfigError(err.message, path=cases_shown, line=lineno, hint=err.hint))
        if errors:
            raise ConfigErrors(errors)
        # Already validated: the eval set takes the instances as they are (no second pass).
        data["cases"] = cases
        sources = [(cases_shown, lineno) for lineno in lines]
    evalset = _validate(EvalSet, data, where)
    _check_id_matches_file(data, path, where)
    if sources is not None:
        evalset._case_sources = sources
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
        shown: how errors name the file (default: its path under `root`).
    """
    path = root / CONFIG_FILE
    if text is None and not path.is_file():
        return ProjectConfig()
    data, where = _mapping(path, text, shown)
    return _validate(ProjectConfig, data, where)


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())


def _collect(errors: list[ConfigError], exc: ConfigError) -> None:
    errors.extend(exc.errors if isinstance(exc, ConfigErrors) else [exc])


def load_project(root: Path, files: Sequence[Path] | None = None) -> Project:
    """Load the project at `root`: its config, prompts and eval sets.

    Args:
        root: the project root (where agent-evals.yaml lives, if it does).
        files: only these prompt and eval set files (plus what they reference);
            default: every file under the configured folders.

    Returns:
        The project, with every problem found in `errors` rather than raised.
    """
    errors: list[ConfigError] = []
    try:
        config = load_config(root)
    except ConfigError as exc:
        _collect(errors, exc)
        config = ProjectConfig()
    project = Project(root=root, config=config, errors=errors)
    prompt_dir = root / config.paths.prompts
    evalset_dir = root / config.paths.evalsets
    prompt_files = _yaml_files(prompt_dir)
    evalset_files = _yaml_files(evalset_dir)
    if files is not None:
        wanted = {f.resolve() for f in files}
        evalset_files = [p for p in evalset_files if p.resolve() in wanted]
        # Prompts: the ones asked for, and the ones the chosen eval sets target (loaded below).
        prompt_files = [p for p in prompt_files if p.resolve() in wanted]
    for path in prompt_files:
        _load_into(project.prompts, load_prompt, _rel(path, root), errors)
    for path in evalset_files:
        _load_into(project.evalsets, load_evalset, _rel(path, root), errors)
    if files is not None:
        # The prompts the chosen eval sets target, unless already tried.
        tried = {p.resolve() for p in prompt_files}
        for evalset in list(project.evalsets.values()):
            for suffix in YAML_SUFFIXES:
                candidate = prompt_dir / f"{evalset.prompt}{suffix}"
                if candidate.is_file() and candidate.resolve() not in tried:
                    tried.add(candidate.resolve())
                    _load_into(project.prompts, load_prompt, _rel(candidate, root), errors)
    return project


def find_evalset_file(root: Path, folder: str, evalset: str) -> Path | None:
    """An eval set's YAML file: `evalset` given as a path, or its id under `folder` (.yaml or .yml)."""
    given = Path(evalset)
    if given.suffix in YAML_SUFFIXES and (root / given).is_file():
        return root / given
    for suffix in YAML_SUFFIXES:
        candidate = root / folder / f"{evalset}{suffix}"
        if candidate.is_file():
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
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


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
