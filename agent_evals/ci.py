"""`ci`: gate every (prompt, eval set) pair a branch changes, baseline vs candidate.

For each pair the candidate is the working tree; the baseline is the prompt as
it is at the merge-base of HEAD and the base ref (read from git objects, no
checkout), run on the candidate's eval set. Both runs go through the normal
runner. The policy in force is the stricter of base and candidate unless the
change to the bar is accepted; integrity findings are reported either way.

The code a pair runs is part of it (`agent_evals.sources`): when a pair's agent
code (`python:` provider package, `watch:` paths) or `python:` grader code changed,
the merge base is checked out into a temporary `git worktree` (`changes.worktree_at`)
and the whole baseline side runs from there, in a child interpreter. A child
process, not the same one: the baseline's `agent.main` and the candidate's are two
modules of one name, and a process has one `sys.modules` (and the agent's own
`import agent.tools` would find whichever came first). Renaming modules per root
cannot reach the agent's absolute imports of itself; a fresh interpreter whose
working folder and project root are the worktree imports exactly the base's code.
The child gets the jobs (pickled), streams each finished case back as JSON for the
progress display, shares the cost ceiling (it gets what is left and reports what it
spent) and the response cache, and is stopped with the run on an interrupt.

This module only orchestrates: which pairs changed, what runs on each side,
where the records come from (`--base REF`, `--baseline-dir DIR`, `--records
DIR`). Every mode then judges each pair with `compare.compare_pair`, the one
path `diff` and `report` take too.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_evals import sources, summary
from agent_evals.budget import Budget
from agent_evals.compare import case_locations, compare_pair
from agent_evals.errors import EXIT_CONFIG, ConfigError, ConfigErrors, EvaluationError, ProviderStopped
from agent_evals.gate import GateReport, PairReport, gate_unchanged
from agent_evals.integrity import Finding, check, effective_policy, loosened, stricter
from agent_evals.load import CONFIG_FILE, Project, load_config, load_project
from agent_evals.models import EvalSet, GatePolicy, ProjectConfig, Prompt
from agent_evals.record import CaseResult, RunRecord, load_record
from agent_evals.review import reviews_path
from agent_evals.runner import (
    Job,
    JobResult,
    Resume,
    RunOptions,
    Shard,
    build_graders,
    execute,
    make_job,
    new_run_id,
    stopped_line,
    with_model,
)

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.changes import ChangeSet, Pair


@dataclass(frozen=True)
class CiOptions:
    base_ref: str | None = None
    baseline_dir: Path | None = None
    accept_policy_change: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    run: RunOptions = field(default_factory=RunOptions)
    provider: str | None = None
    model: str | None = None
    shard: Shard | None = None
    """Run only this shard's cases and gate nothing: `merge` the shards, then gate with `records`."""
    records: Path | None = None
    """Gate the records under `records/base` and `records/cand` (merged shards) instead of running."""


@dataclass
class _Pending:
    """A pair on its way through the gate: what to run, and what is known so far."""

    prompt: Prompt
    evalset: EvalSet
    change: str
    policy: GatePolicy
    findings: list[Finding]
    base_prompt: Prompt | None = None
    base_case_ids: frozenset[str] | None = None
    base_record: RunRecord | None = None
    cand_record: RunRecord | None = None
    note: str | None = None
    cand_job: Job | None = None
    base_job: Job | None = None
    results: dict[str, JobResult] = field(default_factory=dict)
    code_changed: bool = False
    """The pair's code differs from the merge base's: its baseline must run from there."""


def _repo_rel(changes: ChangeSet, source: str | None) -> str:
    path = (Path.cwd() / (source or "")).resolve()
    return path.relative_to(changes.repo_root.resolve()).as_posix()


def _base_config(project: Project, changes: ChangeSet) -> ProjectConfig:
    """agent-evals.yaml as it is at the merge-base: its gate defaults are part of the bar."""
    from agent_evals.changes import read_at

    rel = _repo_rel(changes, str(project.root / CONFIG_FILE))
    text = read_at(changes, rel)
    return (
        ProjectConfig()
        if text is None
        else load_config(project.root, text=text, shown=f"{rel}@{changes.merge_base[:8]}")
    )


def _untargeted(prompt: Prompt, changes: ChangeSet) -> ConfigError:
    return ConfigError(
        f"prompt '{prompt.id}' changed since {changes.short_sha} ({changes.base_ref}) and no eval set "
        "targets it: nothing can gate the change",
        path=prompt.source_path,
        line=prompt.line_of("id"),
        hint=f"add an eval set with 'prompt: {prompt.id}', its cases sampled from the prompt's traffic "
        "with 'agent-evals sample': evals come before prompt changes",
    )


def _prepare_git(project: Project, options: CiOptions) -> tuple[list[_Pending], ChangeSet | None, str | None]:
    from agent_evals.changes import (
        affected_pairs,
        changes_since,
        load_evalset_at,
        load_prompt_at,
        untargeted_prompts,
    )

    assert options.base_ref is not None
    provider = _provider(project, options)
    watch_errors = [e for p in project.prompts.values() for e in sources.check_watch(p, project.root)]
    if watch_errors:
        raise ConfigErrors(watch_errors)
    changes = changes_since(project.root, options.base_ref)
    if untargeted := untargeted_prompts(changes, project):
        # Not "nothing changed": a change nothing can evaluate is not a gate passed.
        raise ConfigErrors([_untargeted(project.prompts[i], changes) for i in untargeted])
    pairs = affected_pairs(changes, project, provider=provider)
    # agent-evals.yaml as at the merge base (read from git only when the change touched it).
    config_changed = _repo_rel(changes, str(project.root / CONFIG_FILE)) in changes.changed
    base_config = _base_config(project, changes) if config_changed else project.config
    moved = _bar_moved(project, base_config, options, {p.evalset_id for p in pairs}) if config_changed else []
    if not pairs and not changes.deleted_evalsets and not moved:
        runs_code = any(
            sources.code_scope(project.prompts[e.prompt], e, project.config, provider)
            for e in project.evalsets.values()
        )
        what = "prompt, eval set or the code they run" if runs_code else "prompt or eval set"
        return [], changes, f"no {what} changed since {changes.merge_base[:8]} ({options.base_ref})"
    pending: list[_Pending] = []
    for pair in pairs:
        prompt, evalset = project.prompts[pair.prompt_id], project.evalsets[pair.evalset_id]
        cand_policy = effective_policy(project.config, evalset, options.overrides)
        base_prompt = base_evalset = None
        note = None
        try:
            if pair.base_prompt_path is not None:
                base_prompt = load_prompt_at(changes, pair.base_prompt_path)
            if pair.base_evalset_path is not None:
                base_evalset = load_evalset_at(changes, pair.base_evalset_path)
        except ConfigError as exc:
            note = f"the baseline does not load at {changes.merge_base[:8]} ({exc.render()}); gated without a baseline"
        base_policy = effective_policy(base_config, base_evalset, options.overrides)
        findings = check(base_evalset, evalset, base_policy, cand_policy) if base_evalset is not None else []
        findings += _reviews_added(changes, evalset, pair.base_evalset_path)
        policy = cand_policy if options.accept_policy_change else stricter(base_policy, cand_policy)
        new = base_prompt is None or base_evalset is None
        unchanged = (
            not new
            and not pair.code_changed
            and base_prompt is not None
            and base_evalset is not None
            and base_prompt.content_hash == prompt.content_hash
            and base_evalset.content_hash == evalset.content_hash
        )
        code_note = _code_note(pair)
        pending.append(
            _Pending(
                prompt=prompt,
                evalset=evalset,
                change="new" if new else "unchanged" if unchanged else "modified",
                policy=policy,
                findings=findings,
                base_prompt=None if new or unchanged else base_prompt,
                base_case_ids=frozenset(c.id for c in base_evalset.cases)
                if base_evalset is not None
                else None,
                note="; ".join(n for n in (code_note, note) if n)
                or (
                    "no behavioural change: the prompt and eval set hash the same as at the base"
                    if unchanged
                    else None
                ),
                code_changed=pair.code_changed and not new,
            )
        )
    return pending + moved, changes, None


def _bar_moved(
    project: Project, base_config: ProjectConfig, options: CiOptions, gated: set[str]
) -> list[_Pending]:
    """The pairs no changed file put behind the gate whose bar a change to agent-evals.yaml's
    `gate:` defaults loosened: each is gated as unchanged (nothing to run), with what loosened as
    its findings, so lowering every eval set's bar at once is called out as lowering one's is."""
    moved = []
    for evalset in sorted(project.evalsets.values(), key=lambda e: e.id):
        if evalset.id in gated:
            continue
        base_policy = effective_policy(base_config, evalset, options.overrides)
        cand_policy = effective_policy(project.config, evalset, options.overrides)
        findings = loosened(base_policy, cand_policy)
        if findings:
            moved.append(
                _Pending(
                    prompt=project.prompts[evalset.prompt],
                    evalset=evalset,
                    change="unchanged",
                    policy=cand_policy
                    if options.accept_policy_change
                    else stricter(base_policy, cand_policy),
                    findings=findings,
                    note=f"{CONFIG_FILE}'s gate defaults changed; the prompt and eval set hash the same "
                    "as at the base",
                )
            )
    return moved


def _provider(project: Project, options: CiOptions) -> str | None:
    """The provider both sides run on instead of the prompts' own, if any (as `_run` applies it)."""
    return options.provider or project.config.defaults.provider


def _code_note(pair: Pair) -> str | None:
    """'agent code changed: agent/main.py; grader code changed: checks/tone.py', or None."""
    parts = [
        f"{what} code changed: {sources.listing(paths)}"
        for what, paths in (("agent", pair.agent_code), ("grader", pair.grader_code))
        if paths
    ]
    return "; ".join(parts) or None


def _reviews_added(changes: ChangeSet, evalset: EvalSet, base_path: str | None) -> list[Finding]:
    """Human verdicts the change itself adds: a pull request must not approve its own outputs."""
    from agent_evals.changes import read_at

    if evalset.source_path is None:
        return []
    path = reviews_path(Path(evalset.source_path))
    now = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    then_text = (
        read_at(changes, _repo_rel(changes, str(reviews_path(Path(base_path))))) if base_path else None
    )
    then = set((then_text or "").splitlines())
    added = [line for line in now if line.strip() and line not in then]
    if not added:
        return []
    cases = []
    for line in added:
        try:
            cases.append(str(json.loads(line).get("case_id")))
        except (ValueError, AttributeError):
            cases.append("?")
    return [
        Finding(
            "reviews_added", "human verdicts", f"{len(then)} at base", f"{len(added)} added", tuple(cases)
        )
    ]


def _deleted(project: Project, changes: ChangeSet, options: CiOptions) -> list[PairReport]:
    """An eval set deleted on the branch: nothing to run, but the bar moved."""
    reports = []
    for evalset_id in changes.deleted_evalsets:
        finding = Finding("evalset_deleted", "evalset", evalset_id, "deleted")
        note = f"eval set '{evalset_id}' is deleted in this change"
        verdict = gate_unchanged(
            note, effective_policy(project.config, None), [finding], options.accept_policy_change
        )
        reports.append(
            PairReport(
                prompt_id=_prompt_at_base(project, changes, evalset_id),
                evalset_id=evalset_id,
                change="deleted",
                verdict=verdict,
                note=note,
            )
        )
    return reports


def _prompt_at_base(project: Project, changes: ChangeSet, evalset_id: str) -> str:
    """The prompt a deleted eval set targeted, read from the merge-base."""
    from agent_evals.changes import load_evalset_at

    for suffix in (".yaml", ".yml"):
        rel = _repo_rel(changes, str(project.root / project.config.paths.evalsets / f"{evalset_id}{suffix}"))
        try:
            evalset = load_evalset_at(changes, rel)
        except ConfigError:
            break  # it did not load at the base either: no prompt to name
        if evalset is not None:
            return evalset.prompt
    return "unknown"


_BASELINE_DIR_HINT = (
    "pass the folder the base's records were written to ('agent-evals run --output DIR' on the base)"
)


def _prepare_dir(project: Project, options: CiOptions) -> list[_Pending]:
    """A pair per eval set, its baseline the record `<eval set id>.jsonl` in `--baseline-dir`.

    An eval set with no record there is new (gated on absolute thresholds). A folder that is not
    there, or holds no record of any eval set, is refused: gating every pair as new would pass a
    regression because the baseline was not found. So is a record that cannot be read (a FIFO, a
    device, a symlink loop): it is not a missing one.

    Raises:
        ConfigError: the folder is missing, not a folder, or holds none of the records; a record
            there does not load.
    """
    folder = options.baseline_dir
    assert folder is not None
    if not folder.is_dir():
        problem = "is not a folder" if os.path.lexists(folder) else "not found"
        raise ConfigError(f"--baseline-dir {problem}", path=folder, hint=_BASELINE_DIR_HINT)
    pending = []
    for evalset in project.evalsets.values():
        path = folder / f"{evalset.id}.jsonl"
        base_record = load_record(path) if os.path.lexists(path) else None
        pending.append(
            _Pending(
                prompt=project.prompts[evalset.prompt],
                evalset=evalset,
                change="modified" if base_record else "new",
                policy=effective_policy(project.config, evalset, options.overrides),
                findings=[],
                base_record=base_record,
                note=None if base_record else f"no baseline record {path}; gated on absolute thresholds",
            )
        )
    if pending and all(p.base_record is None for p in pending):
        names = ", ".join(f"{p.evalset.id}.jsonl" for p in pending[:3]) + (
            ", ..." if len(pending) > 3 else ""
        )
        raise ConfigError(
            f"no baseline record of any eval set in this folder (looked for {names})", path=folder,
            hint=_BASELINE_DIR_HINT,
        )  # fmt: skip
    return pending


def run_ci(
    root: Path,
    options: CiOptions,
    *,
    client: aiohttp.ClientSession | None = None,
    on_result: Callable[[Job, CaseResult], None] | None = None,
    runner: Callable[..., Any] | None = None,
) -> GateReport:
    """Find the changed pairs, run baseline and candidate, diff and gate them.

    Args:
        root: the project root.
        options: the base ref (or a baseline folder), policy overrides, run options.
        client: an HTTP client for the HTTP providers (tests point it at 127.0.0.1).
        on_result: progress callback per finished case.
        runner: how to drive `execute` (the CLI passes one that handles signals).

    Raises:
        ConfigError: the project does not load, the ref is unknown, a template fails.
    """
    if (options.base_ref is None) == (options.baseline_dir is None):
        raise ConfigError(
            "give exactly one of --base REF or --baseline-dir DIR", hint="e.g. --base origin/main"
        )
    project = load_project(root)
    project.raise_errors()
    # An eval set whose prompt is gone (a typo in `prompt:`) is in no pair: refused, not "unchanged".
    # Past here, every eval set's prompt is loaded.
    if missing := [
        project.missing_prompt(e) for e in project.evalsets.values() if e.prompt not in project.prompts
    ]:
        raise ConfigErrors(missing)
    changes = None
    deleted: list[PairReport] = []
    if options.base_ref is not None:
        pending, changes, message = _prepare_git(project, options)
        if message:
            return GateReport(
                pairs=(),
                base_ref=changes.base_ref if changes else options.base_ref,
                merge_base=changes.merge_base if changes else None,
                message=message,
            )
        assert changes is not None
        deleted = _deleted(project, changes, options)
    else:
        pending = _prepare_dir(project, options)
    with _base_code(project, changes, pending, options) as base_code:
        out = _run(
            project, pending, options, client=client, on_result=on_result, runner=runner, base_code=base_code
        )
    if options.shard is not None:
        return GateReport(
            pairs=(),
            base_ref=changes.base_ref if changes else options.base_ref,
            message=f"shard {options.shard}: records in {out}; merge the shards with 'agent-evals merge', "
            f"then gate with 'agent-evals ci --records MERGED'",
        )
    stopped = next(
        (
            o.stopped
            for p in pending
            for o in p.results.values()
            if o.stopped and o.stopped.exit_code == EXIT_CONFIG
        ),
        None,
    )
    return GateReport(
        pairs=tuple(_judge(p, project.config, options) for p in pending) + tuple(deleted),
        base_ref=changes.base_ref if changes else options.base_ref,
        merge_base=changes.merge_base if changes else None,
        config_error=stopped_line(stopped) if stopped is not None else None,
    )


def _run(
    project: Project,
    pending: Sequence[_Pending],
    options: CiOptions,
    *,
    client: aiohttp.ClientSession | None,
    on_result: Callable[[Job, CaseResult], None] | None,
    runner: Callable[..., Any] | None,
    base_code: _BaseCode | None = None,
) -> Path:
    import asyncio

    override = {"provider": options.provider or project.config.defaults.provider, "model": options.model}
    for p in pending:
        if p.change == "unchanged":
            continue
        if options.records is not None:
            p.cand_record = _merged(options.records / "cand", p.evalset.id)
            if p.base_prompt is not None:
                p.base_record = _merged(options.records / "base", p.evalset.id)
            continue
        p.cand_job = make_job(with_model(p.prompt, **override), p.evalset, shard=options.shard)
        if p.base_prompt is not None:
            # Only the cases that existed at the base: cases the change adds are new, not regressions.
            p.base_job = make_job(
                with_model(p.base_prompt, **override), p.evalset, only=p.base_case_ids, shard=options.shard
            )
    run_id = options.run.run_id or new_run_id()
    out = options.run.output or project.root / project.config.paths.runs / f"ci-{run_id}"
    drive = runner or asyncio.run
    budget = Budget(options.run.max_cost_usd)  # one ceiling for both sides of the check
    for side in ("base", "cand"):
        jobs = [j for p in pending if (j := p.base_job if side == "base" else p.cand_job) is not None]
        if not jobs:
            continue
        trace = options.run.trace
        run = replace(
            options.run,
            output=out / side,
            run_id=f"{run_id}-{side}",
            trace=trace.with_name(f"{trace.stem}.{side}{trace.suffix}") if trace is not None else None,
        )
        outcomes = _execute(
            project, jobs, run, drive=drive, client=client, on_result=on_result, budget=budget,
            elsewhere=base_code if side == "base" else None,
        )  # fmt: skip
        by_job = {id(o.job): o for o in outcomes}
        for p in pending:
            job = p.base_job if side == "base" else p.cand_job
            if job is not None:
                p.results[side] = by_job[id(job)]
    if options.shard is None:
        _confirm(
            project,
            pending,
            options,
            override,
            drive=drive,
            client=client,
            on_result=on_result,
            budget=budget,
            base_code=base_code,
        )
    return out


def _confirm(
    project: Project,
    pending: Sequence[_Pending],
    options: CiOptions,
    override: dict[str, Any],
    *,
    drive: Callable[..., Any],
    client: aiohttp.ClientSession | None,
    on_result: Callable[[Job, CaseResult], None] | None,
    budget: Budget,
    base_code: _BaseCode | None = None,
) -> None:
    """Re-run the pass -> fail cases a count rule would count but noise could explain.

    When outputs vary, one pass -> fail is not evidence (`rules.evidence`). The cases
    `max_regressions` or `critical` would count get more runs, as repeats past `--repeat`
    (cached apart, appended to the same records, read as confirmation runs), so the gate
    counts them only when they hold. Nothing else is re-run. A side given as a record
    (`--baseline-dir`) cannot be re-run: its record counts with the runs it has (those a
    `ci --base` already added, say), and the candidate is brought up to the same count.
    """
    from agent_evals.diff import diff
    from agent_evals.rules import cases_to_confirm

    wanted: list[tuple[_Pending, frozenset[str], int, dict[str, RunRecord]]] = []
    for p in pending:
        if p.cand_job is None or "cand" not in p.results:
            continue
        base = _record(p.results["base"]) if "base" in p.results else p.base_record
        if base is None:
            continue
        records = {"base": base, "cand": _record(p.results["cand"])}
        if any(r.status != "complete" for r in records.values()):
            continue  # the gate cannot judge an unfinished run anyway
        d = diff(records["base"], records["cand"])
        cases = cases_to_confirm(d, p.policy)
        if not cases:
            continue
        # Every case asked for is brought to the same number of runs per side (rules.runs_needed).
        have = {
            c.case_id: min(c.base.evidence()[1], c.cand.evidence()[1])
            for c in d.cases
            if c.case_id in cases and c.base is not None and c.cand is not None
        }
        target = max(have[case_id] + extra for case_id, extra in cases.items())
        if p.base_job is None:
            # The baseline is a record: only cases it already ran often enough can be confirmed.
            base_runs = {c.case_id: c.base.evidence()[1] for c in d.cases if c.case_id in cases and c.base}
            cases = {case_id: n for case_id, n in cases.items() if base_runs.get(case_id, 0) >= target}
            if not cases:
                continue
        wanted.append((p, frozenset(cases), target, records))
    for side in ("base", "cand"):
        runnable = [w for w in wanted if (w[0].base_job if side == "base" else w[0].cand_job) is not None]
        if not runnable:
            continue
        jobs, resume = [], {}
        for p, only, _, records in runnable:
            prompt = p.base_prompt if side == "base" else p.prompt
            assert prompt is not None
            jobs.append(make_job(with_model(prompt, **override), p.evalset, only=only))
            record = records[side]
            # Resumed: the runs the record holds are not run again, only the missing repeats are.
            resume[p.evalset.id] = Resume(path=Path(record.path), header=record.header, done=record.cases)
        trace = options.run.trace
        run = replace(
            options.run,
            repeat=max(options.run.repeat, *(target for _, _, target, _ in runnable)),
            trace=trace.with_name(f"{trace.stem}.{side}-confirm{trace.suffix}")
            if trace is not None
            else None,
        )
        outcomes = _execute(
            project, jobs, run, drive=drive, client=client, on_result=on_result, resume=resume, budget=budget,
            elsewhere=base_code if side == "base" else None,
        )  # fmt: skip
        for p, *_ in runnable:
            p.results[side] = next(o for o in outcomes if o.job.evalset.id == p.evalset.id)


def _merged(folder: Path, evalset_id: str) -> RunRecord:
    path = folder / f"{evalset_id}.jsonl"
    if not path.is_file():
        raise ConfigError(
            f"no record for eval set '{evalset_id}' in {folder}",
            hint="run the shards with 'ci --shard I/N --output DIR', then 'agent-evals merge DIR... --output MERGED'",
        )
    return load_record(path)


def _record(outcome: JobResult) -> RunRecord:
    return outcome.record()


def _judge(p: _Pending, config: ProjectConfig, options: CiOptions) -> PairReport:
    if p.change == "unchanged":
        return PairReport(
            p.prompt.id,
            p.evalset.id,
            change="unchanged",
            verdict=gate_unchanged(p.note or "unchanged", p.policy, p.findings, options.accept_policy_change),
            note=p.note,
            evalset_path=p.evalset.source_path,
            case_locations=case_locations(p.evalset),
        )
    cand = p.cand_record or _record(p.results["cand"])
    base = p.base_record or (_record(p.results["base"]) if "base" in p.results else None)
    return compare_pair(
        base,
        cand,
        config=config,
        evalset=p.evalset,
        policy=p.policy,
        findings=p.findings,
        accept_policy_change=options.accept_policy_change,
        note=p.note,
    )


# --- the baseline from the merge base's code -----------------------------------------------


@dataclass(frozen=True)
class _BaseCode:
    """The merge base checked out: where the baseline side runs when a pair's code changed.

    Attributes:
        root: the project root inside the worktree.
        cwd: the working folder there, as the current one is in the repository (`python:`
            graders find their modules from it).
        commit: the merge base.
    """

    root: Path
    cwd: Path
    commit: str


@contextlib.contextmanager
def _base_code(
    project: Project, changes: ChangeSet | None, pending: Sequence[_Pending], options: CiOptions
) -> Iterator[_BaseCode | None]:
    """A worktree of the merge base while the sides run, if any baseline needs its code; else None."""
    needed = (
        changes is not None
        and options.records is None
        and any(p.code_changed and p.base_prompt is not None and p.change != "unchanged" for p in pending)
    )
    if not needed:
        yield None
        return
    assert changes is not None
    from agent_evals.changes import worktree_at

    repo_root = changes.repo_root.resolve()
    project_root = Path(project.root).resolve()
    here = Path.cwd().resolve()
    with worktree_at(changes) as tree:
        root = tree / project_root.relative_to(repo_root)
        yield _BaseCode(
            root=root,
            cwd=tree / here.relative_to(repo_root) if here.is_relative_to(repo_root) else root,
            commit=changes.merge_base,
        )


def _execute(
    project: Project,
    jobs: Sequence[Job],
    run: RunOptions,
    *,
    drive: Callable[..., Any],
    client: aiohttp.ClientSession | None,
    on_result: Callable[[Job, CaseResult], None] | None,
    budget: Budget,
    resume: Mapping[str, Resume] | None = None,
    elsewhere: _BaseCode | None = None,
) -> list[JobResult]:
    """Run one side's jobs: here, or (`elsewhere`) from the merge base's code in a child interpreter."""
    if elsewhere is None:
        coro = execute(project, jobs, run, client=client, on_result=on_result, resume=resume, budget=budget)
    else:
        coro = _execute_in_child(
            elsewhere, project, jobs, run, on_result=on_result, resume=resume, budget=budget
        )
    outcomes: list[JobResult] = drive(coro)
    return outcomes


async def _execute_in_child(
    where: _BaseCode,
    project: Project,
    jobs: Sequence[Job],
    run: RunOptions,
    *,
    on_result: Callable[[Job, CaseResult], None] | None,
    resume: Mapping[str, Resume] | None,
    budget: Budget,
) -> list[JobResult]:
    """`runner.execute` in a fresh interpreter whose project root and working folder are `where`.

    The jobs go to the child pickled (without their graders: the child builds them from
    its own working folder), with every path made absolute and the response cache kept
    the project's. The child answers on a pipe of its own, one JSON object per line:
    each finished case (for `on_result`), then the outcome or the error. It runs in a
    session of its own, so a terminal's Ctrl-C reaches only this process, which stops
    the child (SIGTERM: its finished cases are on disk, its records marked interrupted).

    Raises:
        ConfigError: the baseline's configuration or code failed there (named with the commit).
        EvaluationError: the child failed or ended without an answer.
        Interrupted: the child was stopped by a signal it did not get from here.
    """
    import asyncio
    import pickle
    import subprocess
    import sys
    import threading

    from agent_evals.cache import DEFAULT_CACHE_PATH

    def absolute(path: Path) -> Path:
        return Path(os.path.abspath(path))

    run = replace(
        run,
        output=absolute(run.output) if run.output is not None else None,
        trace=absolute(run.trace) if run.trace is not None else None,
        cache_path=absolute(run.cache_path or Path(project.root) / DEFAULT_CACHE_PATH),
    )
    if run.output is None:  # default: under this project's runs folder, not the worktree's
        run = replace(
            run, output=absolute(Path(project.root) / project.config.paths.runs / (run.run_id or "ci"))
        )
    left = None if budget.ceiling is None else max(0.0, budget.ceiling - budget.spent - budget.reserved)
    payload = pickle.dumps(
        {
            "root": where.root,
            "config": project.config,
            "jobs": [replace(job, graders=()) for job in jobs],
            "run": run,
            "resume": {k: replace(v, path=absolute(v.path)) for k, v in (resume or {}).items()},
            "ceiling": left,
        }
    )
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(  # noqa: ASYNC220 - it returns at once; every wait on it is in a thread
            # -P: the worktree (the working folder) is not on sys.path ahead of the standard library.
            [
                sys.executable,
                "-P",
                "-c",
                "from agent_evals.ci import _child_main; _child_main()",
                str(write_fd),
            ],
            cwd=where.cwd,
            stdin=subprocess.PIPE,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    finally:
        os.close(write_fd)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def post(message: dict[str, Any] | None) -> None:
        # RuntimeError: the run was stopped and its loop closed; nobody is listening.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, message)

    def pump() -> None:
        with open(read_fd, "rb") as pipe:
            for line in pipe:
                try:
                    post(json.loads(line))
                except ValueError:
                    continue  # not one of the child's messages
        post(None)

    reader = threading.Thread(target=pump, name="agent-evals-baseline", daemon=True)
    reader.start()
    done: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    try:
        assert proc.stdin is not None
        # BrokenPipeError: the child ended early; what it said (or its exit status) tells why.
        with contextlib.suppress(BrokenPipeError):
            await asyncio.to_thread(_feed, proc.stdin, payload)
        while (message := await queue.get()) is not None:
            if "case" in message:
                if on_result is not None:
                    on_result(jobs[message["case"]], CaseResult.model_validate(message["result"]))
            elif "done" in message:
                done = message
            elif "error" in message:
                failure = message
        status = await asyncio.to_thread(proc.wait)
    except BaseException:  # cancelled by an interrupt, or a progress callback failed
        _stop(proc)
        raise
    if failure is not None:
        raise _child_error(failure, where)
    if done is None:
        raise EvaluationError(
            f"the baseline run from {where.commit[:8]} ended without a result (exit status {status})"
        )
    budget.settle(0.0, float(done["spent"]))
    if done["exhausted"]:
        budget.exhausted = True
    outcomes = []
    for job, entry in zip(jobs, done["done"], strict=True):
        record = load_record(Path(entry["path"]))
        stopped = entry["stopped"]
        outcomes.append(
            JobResult(
                job=job,
                path=Path(entry["path"]),
                header=record.header,
                tally=summary.tally(record.cases),
                end=record.end,
                stopped=ProviderStopped(
                    stopped["message"],
                    provider=stopped["provider"],
                    kind=stopped["kind"],
                    failures=stopped["failures"],
                )
                if stopped
                else None,
            )
        )
    return outcomes


def _feed(stdin: Any, payload: bytes) -> None:
    with stdin:
        stdin.write(payload)


def _stop(proc: Any, grace_s: float = 15.0) -> None:
    """Stop the child as an interrupt stops a run (its finished cases stay on disk), then for good."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _child_error(failure: Mapping[str, Any], where: _BaseCode) -> Exception:
    from agent_evals.errors import Interrupted

    at = f"the baseline at {where.commit[:8]}"
    kind = failure["error"]
    if kind == "config":
        return ConfigErrors(
            [
                ConfigError(f"{at}: {e['message']}", path=e["path"], line=e["line"], hint=e["hint"])
                for e in failure["errors"]
            ]
        )
    if kind == "interrupted":
        return Interrupted(int(failure["signal"]))
    return EvaluationError(f"{at} could not run: {failure['message']}")


def _child_main() -> None:
    """The child of `_execute_in_child`: run the jobs it was sent, answer on the pipe it was given."""
    import pickle
    import sys
    import traceback

    from agent_evals.errors import AgentEvalsError, Interrupted
    from agent_evals.runner import run_sync

    with open(int(sys.argv[1]), "w", encoding="utf-8") as pipe:

        def send(message: dict[str, Any]) -> None:
            pipe.write(json.dumps(message) + "\n")
            pipe.flush()

        request = pickle.loads(sys.stdin.buffer.read())
        project = Project(root=request["root"], config=request["config"])
        budget = Budget(request["ceiling"])
        try:
            # Built here: a `python:` grader finds its module from this process's working folder.
            jobs = [replace(job, graders=build_graders(job.evalset)) for job in request["jobs"]]
            index = {id(job): i for i, job in enumerate(jobs)}

            def progress(job: Job, result: CaseResult) -> None:
                send({"case": index[id(job)], "result": result.model_dump(mode="json")})

            outcomes = run_sync(
                execute(
                    project,
                    jobs,
                    request["run"],
                    on_result=progress,
                    resume=request["resume"] or None,
                    budget=budget,
                )
            )
        except ConfigError as exc:
            errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
            send(
                {
                    "error": "config",
                    "errors": [
                        {"message": e.message, "path": e.path, "line": e.line, "hint": e.hint} for e in errors
                    ],
                }
            )
        except Interrupted as exc:
            send({"error": "interrupted", "signal": exc.signum})
        except AgentEvalsError as exc:
            send({"error": "evaluation", "message": str(exc)})
        except Exception as exc:
            traceback.print_exc()
            send({"error": "crash", "message": f"{type(exc).__name__}: {exc}"})
        else:
            send(
                {
                    "done": [
                        {
                            "path": str(o.path),
                            "stopped": {
                                "message": str(o.stopped),
                                "provider": o.stopped.provider,
                                "kind": o.stopped.kind,
                                "failures": o.stopped.failures,
                            }
                            if o.stopped is not None
                            else None,
                        }
                        for o in outcomes
                    ],
                    "spent": budget.spent,
                    "exhausted": budget.exhausted,
                }
            )
