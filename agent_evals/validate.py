"""`validate`: every problem in the prompts and eval sets, one located line each.

Checks what `run` would trip over, without calling anything: schema and
unknown keys, grader and provider types, duplicate case ids, graders that need
an `expected` value on cases without one (a conversation's turns count for graders
with `turns: each`), eval sets whose prompt is missing, templates (prompt messages and
a case's scripted turns) that fail to render for any case, and tools: recorded calls and
`tools:` rules naming a tool the prompt does not declare, recorded arguments
that do not fit the tool's parameters, mock templates that do not compile and
mock `python:` targets that are malformed or outside the project. Fast enough
for pre-commit: it never imports pandas or scikit-learn and never imports user code.

It never passes what it did not check: a path named that does not exist, is not a
regular file, or is not part of the project is a problem, and a clean run says how
many prompts, eval sets and cases it looked at.
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_evals.errors import ConfigError, ConfigErrors
from agent_evals.load import (
    CONFIG_FILE,
    YAML_SUFFIXES,
    Project,
    load_project,
    unreadable,
)
from agent_evals.models import EvalSet, Prompt, ToolSpec
from agent_evals.providers import capabilities, resolve
from agent_evals.render import RenderClock, compile_prompt, render, render_turns
from agent_evals.runner import build_graders, case_where, expected_errors, judge_provider

if TYPE_CHECKING:
    from agent_evals.graders.json_schema import BoundedSchema


def _errors(exc: ConfigError) -> list[ConfigError]:
    return exc.errors if isinstance(exc, ConfigErrors) else [exc]


def check_prompt(prompt: Prompt, project: Project) -> list[ConfigError]:
    errors: list[ConfigError] = []
    try:
        compile_prompt(prompt)
    except ConfigError as exc:
        errors.extend(_errors(exc))
    try:
        settings = resolve(prompt.model.provider, project.config, project.root)
    except ConfigError as exc:
        errors.append(
            ConfigError(
                exc.message, path=prompt.source_path, line=prompt.line_of("model", "provider"), hint=exc.hint
            )
        )
    else:
        errors.extend(capabilities.check_prompt(prompt, settings))
    if prompt.output.json_schema is not None or prompt.tools:
        from agent_evals.graders.json_schema import prompt_schema_errors

        errors.extend(prompt_schema_errors(prompt))
    from agent_evals.sources import check_watch

    errors.extend(check_watch(prompt, project.root))
    return errors


def _check_turns(evalset: EvalSet) -> list[ConfigError]:
    """Every case's scripted turns render with its vars (`run` renders them before sending)."""
    errors: dict[tuple[str | None, int | None, str], ConfigError] = {}
    clock = RenderClock(len(evalset.cases))
    for index, case in enumerate(evalset.cases):
        if not case.turns:
            continue
        try:
            render_turns(evalset, index)
        except ConfigError as exc:
            errors.setdefault((exc.path, exc.line, exc.message), exc)
        elapsed = clock.over(index + 1)
        if elapsed is not None:  # the rest would take as long: one error says so
            return [*errors.values(), clock.error(None, evalset, index, index + 1, elapsed)]
    return list(errors.values())


def _shape(value: Any) -> object:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(sorted({repr(_shape(v)) for v in value})))
    return type(value).__name__


def _check_renders(evalset: EvalSet, prompt: Prompt) -> list[ConfigError]:
    # One line per distinct problem: a variable missing from 500 cases is one mistake.
    Key = tuple[str | None, int | None, str]
    first: dict[Key, ConfigError] = {}
    counts: Counter[Key] = Counter()
    # Cases whose vars have the same key structure meet the same undefined variables: render
    # one case of each shape and count the rest with it (`run` renders every case before sending).
    outcome_of_shape: dict[object, Key | None] = {}
    clock = RenderClock(len(evalset.cases))
    for index, case in enumerate(evalset.cases):
        shape = _shape(case.vars)
        if shape not in outcome_of_shape:
            try:
                render(prompt, case, case_where=partial(case_where, evalset, index))
                outcome_of_shape[shape] = None
            except ConfigError as exc:
                key = (exc.path, exc.line, exc.message.replace(f"'{case.id}'", "<case>"))
                first.setdefault(key, exc)
                outcome_of_shape[shape] = key
            elapsed = clock.over(index + 1)
            if elapsed is not None:  # `run` would stop here too
                return [*first.values(), clock.error(prompt, evalset, index, index + 1, elapsed)]
        failed = outcome_of_shape[shape]
        if failed is not None:
            counts[failed] += 1
    for key, err in first.items():
        if counts[key] > 1:
            err.hint = f"{err.hint}; {counts[key] - 1} more case(s) fail the same way"
    return list(first.values())


def check_evalset(evalset: EvalSet, project: Project) -> list[ConfigError]:
    errors: list[ConfigError] = []
    try:
        graders = build_graders(evalset)
    except ConfigError as exc:
        errors.extend(_errors(exc))
        graders = ()
    errors.extend(expected_errors(evalset, graders))
    errors.extend(_check_turns(evalset))
    for grader in graders:
        provider = judge_provider(grader)
        if provider is not None:
            try:
                resolve(provider, project.config, project.root)
            except ConfigError as exc:
                index = evalset.graders.index(grader.spec)
                errors.append(
                    ConfigError(
                        f"judge: {exc.message}",
                        path=evalset.source_path,
                        line=evalset.line_of("graders", index, "judge", "provider"),
                        hint=exc.hint,
                    )
                )
    prompt = project.prompts.get(evalset.prompt)
    prompt_dir = project.root / project.config.paths.prompts
    if prompt is None and any(os.path.lexists(prompt_dir / f"{evalset.prompt}{s}") for s in YAML_SUFFIXES):
        pass  # the prompt exists but did not load (or must not be opened): its own errors say why
    elif prompt is None:
        errors.append(project.missing_prompt(evalset))
    else:
        try:
            compile_prompt(prompt)
        except ConfigError:
            pass  # reported once, against the prompt
        else:
            errors.extend(_check_renders(evalset, prompt))
    errors.extend(_check_tools(evalset, prompt, project))
    return errors


# --- tools: recorded calls and replay rules --------------------------------------------------


def _case_at(evalset: EvalSet, index: int, *loc: int | str) -> tuple[str | None, int | None]:
    """The file and line of `loc` inside case `index` (its own line when it comes from a JSONL file)."""
    path, line = evalset.case_source(index)
    if path == evalset.source_path:
        line = evalset.line_of("cases", index, *loc) or line
    return path, line


def _undeclared_hint(name: str, prompt: Prompt) -> str:
    declared = [t.name for t in prompt.tools]
    close = difflib.get_close_matches(name, declared, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    where = prompt.source_path or f"prompt '{prompt.id}'"
    known = f"it declares {', '.join(declared)}" if declared else "it declares none"
    return f"declare it under tools: in {where} or fix the name; {known}"


def _runs_its_own_tools(prompt: Prompt, project: Project) -> bool:
    """A `python:` agent that declares no tools runs its own; its cases' records are for graders and `sample`."""
    if prompt.tools:
        return False
    try:
        return resolve(prompt.model.provider, project.config, project.root).type == "python"
    except ConfigError:
        return False


def _check_tools(evalset: EvalSet, prompt: Prompt | None, project: Project) -> list[ConfigError]:
    from agent_evals.replay import mock_errors

    errors = mock_errors(evalset, project.root)
    if prompt is None or _runs_its_own_tools(prompt, project):
        return errors
    declared = {t.name: t for t in prompt.tools}
    for name in evalset.tools:
        if name not in declared:
            errors.append(
                ConfigError(
                    f"tools.{name}: prompt '{prompt.id}' declares no tool '{name}'",
                    path=evalset.source_path,
                    line=evalset.line_of("tools", name),
                    hint=_undeclared_hint(name, prompt),
                )
            )
    errors.extend(_check_recorded_calls(evalset, prompt, declared))
    return errors


def _check_recorded_calls(
    evalset: EvalSet, prompt: Prompt, declared: dict[str, ToolSpec]
) -> list[ConfigError]:
    # One line per distinct problem: a misspelt tool in 500 sampled cases is one mistake.
    first: dict[str, ConfigError] = {}
    counts: Counter[str] = Counter()
    validators: dict[str, BoundedSchema | None] = {}
    for index, case in enumerate(evalset.cases):
        for position, call in enumerate(case.tools):
            tool = declared.get(call.name)
            if tool is None:
                key = f"undeclared {call.name}"
                path, line = _case_at(evalset, index, "tools", position, "name")
                error = ConfigError(
                    f"case '{case.id}' records a call to '{call.name}', a tool prompt '{prompt.id}' does not declare",
                    path=path,
                    line=line,
                    hint=_undeclared_hint(call.name, prompt),
                )
            else:
                found = _argument_errors(tool, call.arguments, validators)
                if found is None:
                    continue
                key = f"arguments {call.name} {found}"
                path, line = _case_at(evalset, index, "tools", position, "arguments")
                error = ConfigError(
                    f"case '{case.id}' records {call.name} arguments that do not fit its parameters: {found}",
                    path=path,
                    line=line,
                    hint=f"fix the recorded arguments, or the parameters of '{call.name}' in "
                    f"{prompt.source_path or prompt.id}",
                )
            first.setdefault(key, error)
            counts[key] += 1
    for key, error in first.items():
        if counts[key] > 1:
            error.hint = f"{error.hint}; {counts[key] - 1} more recorded call(s) fail the same way"
    return list(first.values())


def _argument_errors(
    tool: ToolSpec, arguments: dict[str, Any], validators: dict[str, BoundedSchema | None]
) -> str | None:
    """Why `arguments` do not fit the tool's parameters (the first violation, in schema order), or None."""
    # The json_schema grader's validator: the same draft and format checks for outputs and arguments.
    from agent_evals._regex import PatternTimeout
    from agent_evals.graders.json_schema import SchemaTooCostly, check_schema

    if tool.name not in validators:
        try:
            validators[tool.name] = check_schema(tool.parameters)
        except ValueError:  # reported once, against the prompt
            validators[tool.name] = None
    validator = validators[tool.name]
    if validator is None:
        return None
    try:
        found = validator.errors(arguments)
    except (PatternTimeout, SchemaTooCostly) as exc:
        return str(exc)
    if not found:
        return None
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    message = " ".join(found[0].message.split())
    if len(message) > 200:
        message = message[:199] + "…"
    return f"{found[0].json_path}: {message}{more}"


@dataclass(frozen=True)
class Validation:
    """What `check` found, and how much it looked at."""

    problems: list[ConfigError]
    prompts: int
    evalsets: int
    cases: int

    def summary(self) -> str:
        """What was checked, e.g. `validated 2 prompts, 3 eval sets (412 cases)`."""
        return (
            f"validated {_plural(self.prompts, 'prompt')}, {_plural(self.evalsets, 'eval set')} "
            f"({_plural(self.cases, 'case')})"
        )

    def as_json(self) -> dict[str, Any]:
        """`validate --format json`: a stable shape (schema_version 1) for programs and editors.

        `{"schema_version": 1, "ok": bool, "errors": [{"path", "line", "message", "hint"}],
        "prompts": n, "evalsets": n, "cases": n}`; `path`, `line` and `hint` may be null,
        `path` is as the text output prints it, the counts are what was checked.
        """
        return {
            "schema_version": 1,
            "ok": not self.problems,
            "errors": [
                {"path": e.path, "line": e.line, "message": e.message, "hint": e.hint} for e in self.problems
            ],
            "prompts": self.prompts,
            "evalsets": self.evalsets,
            "cases": self.cases,
        }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def validate(root: Path, paths: Sequence[Path] = ()) -> list[ConfigError]:
    """Check the project at `root`; with `paths`, only problems touching those files.

    Args:
        root: the project root.
        paths: files or folders to check (what pre-commit passes), relative to the
            current directory; default all.

    Returns:
        Every problem found, in file order; empty when clean.
    """
    return check(root, paths).problems


def check(root: Path, paths: Sequence[Path] = ()) -> Validation:
    """`validate`, with a count of what was checked.

    A path that does not exist, is not a regular file or folder, or is not one of the
    project's prompts, eval sets, cases files or `agent-evals.yaml` is a problem of its
    own: a check that silently checks nothing would pass what it never looked at. A
    folder stands for the project files under it; `agent-evals.yaml` for the whole
    project, since every prompt reads it.

    Args:
        root: the project root (see `agent_evals.load.find_root`).
        paths: files or folders to check, relative to the current directory; default all.

    Returns:
        The problems, in file order, and the number of prompts, eval sets and cases checked.
    """
    project = load_project(root)
    errors = list(project.errors)
    for prompt in project.prompts.values():
        errors.extend(check_prompt(prompt, project))
    for evalset in project.evalsets.values():
        errors.extend(check_evalset(evalset, project))
    prompts = list(project.prompts.values())
    evalsets = list(project.evalsets.values())
    if paths:
        files, named = _named(paths, project)
        if _key(project.root / CONFIG_FILE) not in files:
            wanted = _wanted(files, project)
            errors = [e for e in errors if e.path is not None and _key(e.path) in wanted]
            prompts = [p for p in prompts if p.source_path and _key(p.source_path) in wanted]
            evalsets = [e for e in evalsets if e.source_path and _key(e.source_path) in wanted]
        errors.extend(named)
    return Validation(
        problems=sorted(errors, key=lambda e: (e.path or "", e.line or 0)),
        prompts=len(prompts),
        evalsets=len(evalsets),
        cases=sum(len(e.cases) for e in evalsets),
    )


def _key(path: str | Path) -> str:
    """One spelling per file: its folder resolved, its own name kept (a symlink is named, not followed)."""
    path = Path(path)
    return os.path.join(os.path.realpath(path.parent), path.name)


def _project_files(project: Project) -> set[str]:
    """Every file the project consists of (those that failed to load too), as `_key`s."""
    root = project.root
    files = {_key(e.path) for e in project.errors if e.path is not None}
    if os.path.lexists(root / CONFIG_FILE):
        files.add(_key(root / CONFIG_FILE))
    # What pre-commit's hook passes: YAML beside the prompts and eval sets, JSONL (cases
    # files, stored reviews) beside the eval sets.
    for folder, suffixes in (
        (root / project.config.paths.prompts, YAML_SUFFIXES),
        (root / project.config.paths.evalsets, (*YAML_SUFFIXES, ".jsonl")),
    ):
        if folder.is_dir():
            files.update(_key(p) for p in folder.iterdir() if p.suffix in suffixes)
    for evalset in project.evalsets.values():
        if evalset.source_path and evalset.cases_file:
            files.add(_key(Path(evalset.source_path).parent / evalset.cases_file))
    return files


def _named(paths: Sequence[Path], project: Project) -> tuple[set[str], list[ConfigError]]:
    """The project files `paths` name (a folder names those under it), and a problem per path naming none."""
    members = _project_files(project)
    folders = {
        os.path.realpath(project.root / sub)
        for sub in ("", project.config.paths.prompts, project.config.paths.evalsets)
    }
    files: set[str] = set()
    problems: list[ConfigError] = []
    for path in paths:
        if not os.path.lexists(path):
            problems.append(ConfigError("no such file", path=path))
        elif os.path.isdir(path):
            folder = os.path.realpath(path)
            under = {f for f in members if Path(f).is_relative_to(folder)}
            files |= under
            if not under and folder not in folders:
                problems.append(_not_in_project(path, project))
        elif _key(path) in members:
            files.add(_key(path))
        elif not os.path.isfile(path):
            problems.append(
                unreadable(path, project.root, "name a prompt, an eval set or agent-evals.yaml")
                or _not_in_project(path, project)
            )
        else:
            problems.append(_not_in_project(path, project))
    return files, problems


def _not_in_project(path: Path, project: Project) -> ConfigError:
    at = os.path.relpath(project.root)
    where = "this project" if at == "." else f"the project at {at}"
    return ConfigError(
        "not a prompt, eval set or agent-evals.yaml of this project",
        path=path,
        hint=f"{where} keeps prompts in {project.config.paths.prompts}/ "
        f"and eval sets in {project.config.paths.evalsets}/",
    )


def _wanted(files: set[str], project: Project) -> set[str]:
    """The files asked about, plus the eval sets of asked-about prompts (a prompt edit can break them)."""
    wanted = set(files)
    for evalset in project.evalsets.values():
        prompt = project.prompts.get(evalset.prompt)
        if prompt and prompt.source_path and _key(prompt.source_path) in files and evalset.source_path:
            wanted.add(_key(evalset.source_path))
            if evalset.cases_file:
                wanted.add(_key(Path(evalset.source_path).parent / evalset.cases_file))
    return wanted
