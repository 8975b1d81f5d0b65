"""`run --watch`: re-run what a saved edit affects, and show what changed since the last run.

An edit to a prompt re-runs the eval sets that target it; an edit to an eval
set (or its cases file or reviews) re-runs that eval set; an edit to
agent-evals.yaml re-runs everything. The response cache makes unchanged
requests free, so only what the edit changed is sent to a provider. A file
saved half-way (invalid YAML) is reported and waited out, never fatal.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent_evals.errors import ConfigError
from agent_evals.load import CONFIG_FILE, Project, load_project
from agent_evals.record import CaseResult
from agent_evals.runner import RunOptions, execute, plan

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


def _round(
    root: Path, options: RunOptions, state: _State, evalset_ids: Sequence[str] | None, filters: Sequence[str]
) -> tuple[list[CaseChange], int, list[str]]:
    project = load_project(root)
    ids = list(project.evalsets) if evalset_ids is None else [i for i in evalset_ids if i in project.evalsets]
    if not ids:
        return [], 0, []
    jobs = plan(project, evalset_ids=ids, filters=filters)
    outcomes = asyncio.run(execute(project, jobs, options))
    changes: list[CaseChange] = []
    ran = 0
    for outcome in outcomes:
        evalset = outcome.job.evalset.id
        now = {(r.case_id, r.repeat): _snapshot(r) for r in outcome.results}
        ran += len(now)
        before = state.results.get(evalset, {})
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                changes.append(CaseChange(evalset, key[0], key[1], before.get(key), now.get(key)))
        state.results[evalset] = now
    return changes, ran, ids


def watch(
    root: Path,
    options: RunOptions,
    on_update: Callable[[WatchUpdate], None],
    *,
    filters: Sequence[str] = (),
    stop: threading.Event | None = None,
) -> None:
    """Run once, then again on every saved change, until `stop` is set (or Ctrl-C).

    Args:
        root: the project root.
        options: how to run (the cache should be on: it is what makes a round cheap).
        on_update: called after the first run and after every round.
        filters: only cases whose id or a tag matches.
        stop: set it to end the watch (tests and embedding).
    """
    import watchfiles

    state = _State()
    try:
        _, ran, ids = _round(root, options, state, None, filters)
        on_update(WatchUpdate(rerun=tuple(ids), cases_run=ran, initial=True))
    except ConfigError as exc:
        on_update(WatchUpdate(error=exc.render(), initial=True))
    project = load_project(root)
    targets = [root / project.config.paths.prompts, root / project.config.paths.evalsets, root / CONFIG_FILE]
    watched = [str(t) for t in targets if t.exists()]
    for batch in watchfiles.watch(*watched, stop_event=stop, debounce=150, step=50, raise_interrupt=True):
        paths = sorted({Path(p) for _, p in batch if Path(p).suffix in (".yaml", ".yml", ".jsonl")})
        if not paths:
            continue
        shown = tuple(
            str(p.relative_to(root.resolve()) if p.is_relative_to(root.resolve()) else p) for p in paths
        )
        try:
            # A file saved mid-edit may not load; report it and wait for the next save.
            project = load_project(root)
            project.raise_errors()
            evalset_ids = sorted(affected(project, paths))
            changes, ran, ids = _round(root, options, state, evalset_ids, filters)
            on_update(
                WatchUpdate(changed_files=shown, rerun=tuple(ids), changes=tuple(changes), cases_run=ran)
            )
        except ConfigError as exc:
            on_update(WatchUpdate(changed_files=shown, error=exc.render()))
