"""`validate`: every problem in the prompts and eval sets, one located line each.

Checks what `run` would trip over, without calling anything: schema and
unknown keys, grader and provider types, duplicate case ids, graders that need
an `expected` value on cases without one, eval sets whose prompt is missing,
and templates that fail to render for any case. Fast enough for pre-commit:
it never imports pandas or scikit-learn and never imports user code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent_evals.errors import ConfigError
from agent_evals.graders import GraderBase, get_path
from agent_evals.load import YAML_SUFFIXES, ConfigErrors, Project, load_project
from agent_evals.models import EvalSet, Prompt
from agent_evals.providers import resolve
from agent_evals.render import compile_prompt, render
from agent_evals.runner import build_graders, case_where


def _errors(exc: ConfigError) -> list[ConfigError]:
    return exc.errors if isinstance(exc, ConfigErrors) else [exc]


def check_prompt(prompt: Prompt, project: Project) -> list[ConfigError]:
    errors: list[ConfigError] = []
    try:
        compile_prompt(prompt)
    except ConfigError as exc:
        errors.extend(_errors(exc))
    try:
        resolve(prompt.model.provider, project.config, project.root)
    except ConfigError as exc:
        errors.append(
            ConfigError(
                exc.message, path=prompt.source_path, line=prompt.line_of("model", "provider"), hint=exc.hint
            )
        )
    schema = prompt.output.json_schema
    if schema is not None:
        import jsonschema

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            errors.append(
                ConfigError(
                    f"output schema is not a valid JSON Schema: {exc.message}",
                    path=prompt.source_path,
                    line=prompt.line_of("output", "schema"),
                    hint="see https://json-schema.org/understanding-json-schema/",
                )
            )
    return errors


def _check_expected(evalset: EvalSet, graders: Sequence[GraderBase]) -> list[ConfigError]:
    errors = []
    missing = object()
    for grader in graders:
        if not grader.needs_expected:
            continue
        path = grader.expected_path()
        for index, case in enumerate(evalset.cases):
            value = case.expected if case.expected is not None else missing
            if value is not missing and path is not None and isinstance(value, dict):
                value = get_path(value, path, default=missing)
            if value is missing or value is None:
                file, line = evalset.case_source(index)
                key = f"expected.{path}" if path else "expected"
                errors.append(
                    ConfigError(
                        f"case '{case.id}' has no '{key}', which grader '{grader.name}' needs",
                        path=file,
                        line=line,
                        hint=f"add '{key}' to the case, or give the case a different grader",
                    )
                )
    return errors


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
    for index, case in enumerate(evalset.cases):
        shape = _shape(case.vars)
        if shape not in outcome_of_shape:
            try:
                render(prompt, case, case_where=case_where(evalset, index))
                outcome_of_shape[shape] = None
            except ConfigError as exc:
                key = (exc.path, exc.line, exc.message.replace(f"'{case.id}'", "<case>"))
                first.setdefault(key, exc)
                outcome_of_shape[shape] = key
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
    errors.extend(_check_expected(evalset, graders))
    for grader in graders:
        judge = getattr(grader.options, "judge", None)
        provider = getattr(judge, "provider", None)
        if isinstance(provider, str):
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
    if prompt is None and any((prompt_dir / f"{evalset.prompt}{s}").is_file() for s in YAML_SUFFIXES):
        pass  # the prompt exists but did not load: its own errors say why
    elif prompt is None:
        errors.append(
            ConfigError(
                f"eval set targets prompt '{evalset.prompt}', which does not exist",
                path=evalset.source_path,
                line=evalset.line_of("prompt"),
                hint=f"create {project.config.paths.prompts}/{evalset.prompt}.yaml or fix the id "
                f"(known: {', '.join(sorted(project.prompts)) or 'none'})",
            )
        )
    else:
        try:
            compile_prompt(prompt)
        except ConfigError:
            pass  # reported once, against the prompt
        else:
            errors.extend(_check_renders(evalset, prompt))
    return errors


def validate(root: Path, paths: Sequence[Path] = ()) -> list[ConfigError]:
    """Check the project at `root`; with `paths`, only problems touching those files.

    Args:
        root: the project root.
        paths: files or folders to check (what pre-commit passes); default all.

    Returns:
        Every problem found, in file order; empty when clean.
    """
    project = load_project(root)
    errors = list(project.errors)
    for prompt in project.prompts.values():
        errors.extend(check_prompt(prompt, project))
    for evalset in project.evalsets.values():
        errors.extend(check_evalset(evalset, project))
    if paths:
        wanted = _wanted(paths, project)
        errors = [e for e in errors if e.path is not None and Path(e.path).resolve() in wanted]
    return sorted(errors, key=lambda e: (e.path or "", e.line or 0))


def _wanted(paths: Sequence[Path], project: Project) -> set[Path]:
    """The files asked about, plus the eval sets of asked-about prompts (a prompt edit can break them)."""
    files: set[Path] = set()
    for p in paths:
        p = p.resolve()
        files.update(x.resolve() for x in p.rglob("*") if x.is_file()) if p.is_dir() else files.add(p)
    for evalset in project.evalsets.values():
        prompt = project.prompts.get(evalset.prompt)
        if (
            prompt
            and prompt.source_path
            and Path(prompt.source_path).resolve() in files
            and evalset.source_path
        ):
            files.add(Path(evalset.source_path).resolve())
            if evalset.cases_file:
                files.add((Path(evalset.source_path).parent / evalset.cases_file).resolve())
    return files
