"""`ci`: gate every (prompt, eval set) pair a branch changes, baseline vs candidate.

For each pair the candidate is the working tree; the baseline is the prompt as
it is at the merge-base of HEAD and the base ref (read from git objects, no
checkout), run on the candidate's eval set. Both runs go through the normal
runner. The policy in force is the stricter of base and candidate unless the
change to the bar is accepted; integrity findings are reported either way.

This module only orchestrates: which pairs changed, what runs on each side,
where the records come from (`--base REF`, `--baseline-dir DIR`, `--records
DIR`). Every mode then judges each pair with `compare.compare_pair`, the one
path `diff` and `report` take too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_evals.budget import Budget
from agent_evals.compare import case_locations, compare_pair
from agent_evals.errors import EXIT_CONFIG, ConfigError
from agent_evals.gate import GateReport, PairReport, gate_unchanged
from agent_evals.integrity import Finding, check, effective_policy, stricter
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
    execute,
    make_job,
    new_run_id,
    stopped_line,
    with_model,
)

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.changes import ChangeSet


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


def _prepare_git(project: Project, options: CiOptions) -> tuple[list[_Pending], ChangeSet | None, str | None]:
    from agent_evals.changes import affected_pairs, changes_since, load_evalset_at, load_prompt_at

    assert options.base_ref is not None
    changes = changes_since(project.root, options.base_ref)
    pairs = affected_pairs(changes, project)
    if not pairs and not changes.deleted_evalsets:
        return (
            [],
            changes,
            f"no prompt or eval set changed since {changes.merge_base[:8]} ({options.base_ref})",
        )
    base_config = _base_config(project, changes)
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
            and base_prompt is not None
            and base_evalset is not None
            and base_prompt.content_hash == prompt.content_hash
            and base_evalset.content_hash == evalset.content_hash
        )
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
                note=note
                or (
                    "no behavioural change: the prompt and eval set hash the same as at the base"
                    if unchanged
                    else None
                ),
            )
        )
    return pending, changes, None


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


def _prepare_dir(project: Project, options: CiOptions) -> list[_Pending]:
    assert options.baseline_dir is not None
    pending = []
    for evalset in project.evalsets.values():
        prompt = project.prompts.get(evalset.prompt)
        if prompt is None:
            continue
        path = options.baseline_dir / f"{evalset.id}.jsonl"
        base_record = load_record(path) if path.is_file() else None
        pending.append(
            _Pending(
                prompt=prompt,
                evalset=evalset,
                change="modified" if base_record else "new",
                policy=effective_policy(project.config, evalset, options.overrides),
                findings=[],
                base_record=base_record,
                note=None if base_record else f"no baseline record {path}; gated on absolute thresholds",
            )
        )
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
    out = _run(project, pending, options, client=client, on_result=on_result, runner=runner)
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
        outcomes = drive(execute(project, jobs, run, client=client, on_result=on_result, budget=budget))
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
        outcomes = drive(
            execute(project, jobs, run, client=client, on_result=on_result, resume=resume, budget=budget)
        )
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
    return load_record(outcome.path)


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
