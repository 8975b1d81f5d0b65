"""`run --watch`: re-run what a saved edit affects, and show what changed since the last run.

An edit to a prompt re-runs the eval sets that target it; an edit to an eval
set (or its cases file or reviews) re-runs that eval set; an edit to
agent-evals.yaml re-runs everything. The response cache makes unchanged
requests free, so only what the edit changed is sent to a provider. A file
saved half-way (invalid YAML) is reported and waited out, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent_evals.errors import ConfigError
from agent_evals.load import CONFIG_FILE, Project, load_project, with_prompt_file
from agent_evals.record import CaseResult
from agent_evals.runner import RunOptions, Shard, execute, plan

Snapshot = tuple[str, str | None, float | None]  # status, output, score


@dataclass(frozen=True)
class CaseChange:
    evalset: str
    case_id: str
    repeat: int
    before: Snapshot | None
    after: Snapshot | None


@dataclass(frozen=True)
class WatchUpdate:
    """One round: what was saved, what was re-run, and which cases changed."""

    changed_files: tuple[str, ...] = ()
    rerun: tuple[str, ...] = ()
    changes: tuple[CaseChange, ...] = ()
    cases_run: int = 0
    error: str | None = None
    initial: bool = False


@dataclass
class _State:
    results: dict[str, dict[tuple[str, int], Snapshot]] = field(default_factory=dict)


def affected(project: Project, paths: Iterable[Path]) -> set[str]:
    """The eval set ids an edit to `paths` affects."""
    root = project.root.resolve()
    ids: set[str] = set()
    for path in (p.resolve() for p in paths):
        if path == root / CONFIG_FILE:
            return set(project.evalsets)
        for evalset in project.evalsets.values():
            source = Path(evalset.source_path).resolve() if evalset.source_path else None
            if source is None:
                continue
            siblings = {source, source.with_name(source.stem + ".reviews.jsonl")}
            if evalset.cases_file:
                siblings.add((source.parent / evalset.cases_file).resolve())
            prompt = project.prompts.get(evalset.prompt)
            if prompt is not None and prompt.source_path:
                siblings.add(Path(prompt.source_path).resolve())
            if path in siblings:
                ids.add(evalset.id)
    return ids


def _snapshot(result: CaseResult) -> Snapshot:
    return result.status, result.output, result.score


@dataclass(frozen=True)
class Selection:
    """What `run` was asked to run; every round of the watch runs the same selection."""

    prompt_ids: tuple[str, ...] = ()
    evalset_ids: tuple[str, ...] = ()
    provider: str | None = None
    model: str | None = None
    filters: tuple[str, ...] = ()
    shard: Shard | None = None
    prompt_file: Path | None = None


def _load(root: Path, selection: Selection) -> Project:
    project = load_project(root)
    if selection.prompt_file is not None:
        project = with_prompt_file(project, selection.prompt_file)
    return project


def _round(
    root: Path, options: RunOptions, state: _State, evalset_ids: Sequence[str] | None, selection: Selection
) -> tuple[list[CaseChange], int, list[str]]:
    project = _load(root, selection)
    ids = [
        evalset.id
        for evalset in project.evalsets.values()
        if (evalset_ids is None or evalset.id in evalset_ids)
        and (not selection.evalset_ids or evalset.id in selection.evalset_ids)
        and (not selection.prompt_ids or evalset.prompt in selection.prompt_ids)
    ]
    if not ids:
        return [], 0, []
    jobs = plan(
        project,
        evalset_ids=ids,
        provider=selection.provider,
        model=selection.model,
        filters=selection.filters,
        shard=selection.shard,
    )
    outcomes = asyncio.run(execute(project, jobs, options))
    changes: list[CaseChange] = []
    ran = 0
    for outcome in outcomes:
        evalset = outcome.job.evalset.id
        now = {(r.case_id, r.repeat): _snapshot(r) for r in outcome.record().cases}
        ran += len(now)
        before = state.results.get(evalset, {})
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                changes.append(CaseChange(evalset, key[0], key[1], before.get(key), now.get(key)))
        state.results[evalset] = now
    return changes, ran, ids


_WATCHED_SUFFIXES = (".yaml", ".yml", ".jsonl")


def _mtimes(targets: Sequence[Path]) -> dict[Path, int]:
    """Modification times of the files a watch reacts to, to catch a save made before it was armed."""
    found: dict[Path, int] = {}
    for target in targets:
        files = target.rglob("*") if target.is_dir() else [target]
        for path in files:
            with contextlib.suppress(OSError):
                if path.suffix in _WATCHED_SUFFIXES and path.is_file():
                    found[path.resolve()] = path.stat().st_mtime_ns
    return found


def watch(
    root: Path,
    options: RunOptions,
    on_update: Callable[[WatchUpdate], None],
    *,
    selection: Selection | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run once, then again on every saved change, until `stop` is set (or Ctrl-C).

    Args:
        root: the project root.
        options: how to run (the cache should be on: it is what makes a round cheap).
        on_update: called after the first run and after every round.
        selection: which prompts, eval sets and cases, on which provider and model (as `run` takes them).
        stop: set it to end the watch (tests and embedding).
    """
    import watchfiles

    selection = selection or Selection()
    state = _State()
    project = load_project(root)
    targets = [root / project.config.paths.prompts, root / project.config.paths.evalsets, root / CONFIG_FILE]
    if selection.prompt_file is not None:
        targets.append(selection.prompt_file)
    # Taken before the first round: a file saved after this but before the watcher is armed
    # (the first round can take a while) is found by its time and re-run, not lost.
    before = _mtimes(targets)
    try:
        _, ran, ids = _round(root, options, state, None, selection)
        on_update(WatchUpdate(rerun=tuple(ids), cases_run=ran, initial=True))
    except ConfigError as exc:
        on_update(WatchUpdate(error=exc.render(), initial=True))
    watched = [str(t) for t in targets if t.exists()]
    armed = False
    for batch in watchfiles.watch(
        *watched, stop_event=stop, debounce=150, step=50, raise_interrupt=True,
        yield_on_timeout=True, rust_timeout=200,
    ):  # fmt: skip
        paths = {Path(p) for _, p in batch if Path(p).suffix in _WATCHED_SUFFIXES}
        if not armed:
            armed = True
            now = _mtimes(targets)
            paths |= {p for p, mtime in now.items() if before.get(p) != mtime}
            paths |= set(before) - set(now)
        if not paths:
            continue
        _rerun(root, options, state, selection, sorted(paths), on_update)


def _rerun(
    root: Path,
    options: RunOptions,
    state: _State,
    selection: Selection,
    paths: Sequence[Path],
    on_update: Callable[[WatchUpdate], None],
) -> None:
    resolved = root.resolve()
    shown = tuple(str(p.relative_to(resolved) if p.is_relative_to(resolved) else p) for p in paths)
    try:
        # A file saved mid-edit may not load; report it and wait for the next save.
        project = _load(root, selection)
        project.raise_errors()
        evalset_ids = sorted(affected(project, paths))
        changes, ran, ids = _round(root, options, state, evalset_ids, selection)
        on_update(WatchUpdate(changed_files=shown, rerun=tuple(ids), changes=tuple(changes), cases_run=ran))
    except ConfigError as exc:
        on_update(WatchUpdate(changed_files=shown, error=exc.render()))
