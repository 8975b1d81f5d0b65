"""Run prompts on eval sets: plan the jobs, call the providers, grade, record.

`plan` is pure (load -> filter -> render -> build graders): a template that
does not render stops the run before anything is sent. `execute` runs the
jobs with a bounded pool of workers, retries per the policy, grades each
output and appends every finished case to its run record at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import hashlib
import json
import math
import re
import secrets
import signal
import time
from collections.abc import Callable, Collection, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, create_model

from agent_evals import __version__, _json
from agent_evals._jobclock import JobClock, running
from agent_evals.agent_loop import Trajectory, run_agent
from agent_evals.budget import Budget, BudgetExceeded
from agent_evals.calls import Calls, TraceContext, check_keys
from agent_evals.credentials import safe_url
from agent_evals.errors import (
    ConfigError,
    ConfigErrors,
    GraderError,
    Interrupted,
    ProviderError,
    ProviderStopped,
)
from agent_evals.graders import GraderBase, Sample, build_grader, get_path, grader_class
from agent_evals.graders.base import REVIEW_REASON, case_outcome, review_reason
from agent_evals.limits import MAX_REPEAT
from agent_evals.load import Project, translate
from agent_evals.models import Case, EvalSet, GraderSpec, ProjectConfig, Prompt
from agent_evals.providers import ChatRequest, Completion, capabilities, resolve
from agent_evals.record import (
    FLUSH_S,
    CaseResult,
    GradeRecord,
    RecordWriter,
    RunEnd,
    RunHeader,
    RunRecord,
    TurnRecord,
    load_record,
    total_usage,
)
from agent_evals.render import render, render_all, render_turns
from agent_evals.replay import Replayer, mock_errors
from agent_evals.retry import RetryPolicy
from agent_evals.review import Reviews, apply_reviews, load_reviews, mark_disagreements
from agent_evals.summary import Tally
from agent_evals.trace import Tracer

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.cache import ResponseCache
    from agent_evals.history.feed import HistoryFeed
    from agent_evals.history.follow import FollowedRun
    from agent_evals.history.imported import Imported
    from agent_evals.history.store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """One prompt on one eval set, checked to render and ready to send.

    Its requests are not kept: `plan` renders every case once to find a template that does not
    render before anything is sent, and the run renders each again as it sends it (rendering
    is cheap, see `render.render`; holding 100,000 rendered requests is not).
    """

    prompt: Prompt
    evalset: EvalSet
    indexes: tuple[int, ...]
    graders: tuple[GraderBase, ...]
    provider: str
    reviews: Reviews = field(default_factory=Reviews)
    """Human verdicts stored beside the eval set; they replace machine grades that need review."""
    clock: JobClock = field(default_factory=JobClock, compare=False)
    """What its mock templates, its graders' patterns and their schemas have taken, every case's
    together (each bounded: see `_jobclock`)."""

    @property
    def cases(self) -> list[Case]:
        return [self.evalset.cases[i] for i in self.indexes]

    def request(self, position: int) -> ChatRequest:
        """The request of the `position`-th selected case, rendered.

        Raises:
            TemplateError: it does not render (`make_job` checked every case already).
        """
        index = self.indexes[position]
        return render(
            self.prompt, self.evalset.cases[index], case_where=partial(case_where, self.evalset, index)
        )

    def turns(self, position: int) -> tuple[str, ...]:
        """The `position`-th selected case's scripted user turns, rendered (empty without turns)."""
        index = self.indexes[position]
        return render_turns(self.evalset, index) if self.evalset.cases[index].turns else ()


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    output: Path | None = None
    run_id: str | None = None
    repeat: int = 1
    max_cost_usd: float | None = None
    cache: bool = True
    cache_path: Path | None = None
    trace: Path | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    """How the jobs were chosen (filters, provider and model overrides): recorded so --resume can redo it."""

    def recorded(self) -> dict[str, Any]:
        """The options a run record keeps, enough to resume the run the same way."""
        return {
            "concurrency": self.concurrency,
            "repeat": self.repeat,
            "max_cost_usd": self.max_cost_usd,
            **self.selection,
        }


@dataclass
class JobResult:
    """A job's run: its record (on disk, the results) and its tally (the counts, in memory)."""

    job: Job
    path: Path
    header: RunHeader
    tally: Tally = field(default_factory=Tally)
    """Every result of the run counted, a resumed run's earlier part included."""
    end: RunEnd | None = None
    stopped: ProviderStopped | None = None
    """Set when a provider of this job (its own or a judge's) was stopped by its breaker."""
    history: Imported | ConfigError | None = None
    """What writing the run into the history store did, or why the store could not take it
    (None: not written, see `execute`'s `history`)."""

    def record(self) -> RunRecord:
        """The run's record read back: its results, in eval-set order."""
        return load_record(self.path)


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_graders(evalset: EvalSet) -> tuple[GraderBase, ...]:
    """Build an eval set's graders; every problem names its line.

    Raises:
        ConfigErrors: unknown grader types or bad options.
    """
    graders: list[GraderBase] = []
    errors: list[ConfigError] = []
    for index, spec in enumerate(evalset.graders):
        try:
            graders.append(build_grader(spec))
        except ValidationError as exc:
            errors.extend(
                translate(
                    exc,
                    path=evalset.source_path or evalset.id,
                    marks=_marks(evalset),
                    model=_options_model(spec),
                    prefix=("graders", index),
                )
            )
        except ConfigError as exc:
            errors.append(
                ConfigError(
                    exc.message,
                    path=evalset.source_path,
                    line=evalset.line_of("graders", index, "type"),
                    hint=exc.hint,
                )
            )
    if errors:
        raise ConfigErrors(errors)
    return tuple(graders)


def _options_model(spec: GraderSpec) -> type[BaseModel]:
    """A model whose fields are every key a grader entry may have, for 'did you mean' hints."""
    cls = grader_class(spec)
    fields: dict[str, Any] = {name: (Any, None) for name in GraderSpec.model_fields}
    if cls is not None:
        fields.update(
            {name: (f.annotation, Field(None, alias=f.alias)) for name, f in cls.Options.model_fields.items()}
        )
    return create_model("GraderOptions", **fields)


def _marks(obj: Any) -> Any:
    return getattr(obj, "_marks", None)


def case_where(evalset: EvalSet, index: int) -> str:
    path, line = evalset.case_source(index)
    return f"{path}:{line}" if line else str(path)


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (1-based): the cases whose id hashes to it.

    Hashing the id (not the position) keeps a case on its shard when cases are
    added or reordered, so a CI matrix's shards stay comparable run to run.
    """

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N`, e.g. `2/3`.

        Raises:
            ConfigError: not of that form, or I outside 1..N.
        """
        index, _, count = text.partition("/")
        if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
            raise ConfigError(f"--shard {text!r} is not I/N with 1 <= I <= N", hint="e.g. --shard 2/3")
        return cls(int(index), int(count))

    def owns(self, case_id: str) -> bool:
        digest = hashlib.sha256(case_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def select(evalset: EvalSet, filters: Sequence[str], shard: Shard | None = None) -> tuple[int, ...]:
    """Indexes of the cases whose id or a tag matches a filter (glob patterns), on `shard` if given."""
    return tuple(
        i
        for i, case in enumerate(evalset.cases)
        if (
            not filters
            or any(
                fnmatch.fnmatchcase(case.id, f) or any(fnmatch.fnmatchcase(t, f) for t in case.tags)
                for f in filters
            )
        )
        and (shard is None or shard.owns(case.id))
    )


def plan(
    project: Project,
    *,
    prompt_ids: Sequence[str] = (),
    evalset_ids: Sequence[str] = (),
    provider: str | None = None,
    model: str | None = None,
    filters: Sequence[str] = (),
    shard: Shard | None = None,
) -> list[Job]:
    """Choose and render the jobs of a run.

    Args:
        project: the loaded project; its load errors are raised here.
        prompt_ids: only eval sets targeting these prompts.
        evalset_ids: only these eval sets.
        provider: run on this provider instead of the prompts' own.
        model: and this model name.
        filters: only cases whose id or a tag matches one of these globs.
        shard: only this shard's cases.

    Raises:
        ConfigError: load errors, unknown ids, templates that do not render.
    """
    project.raise_errors()
    for wanted, known, kind in (
        (evalset_ids, project.evalsets, "eval set"),
        (prompt_ids, project.prompts, "prompt"),
    ):
        for ident in wanted:
            if ident not in known:
                raise ConfigError(f"no {kind} '{ident}'", hint=f"known: {', '.join(sorted(known)) or 'none'}")
    jobs = []
    for evalset in project.evalsets.values():
        if evalset_ids and evalset.id not in evalset_ids:
            continue
        if prompt_ids and evalset.prompt not in prompt_ids:
            continue
        prompt = project.prompts.get(evalset.prompt)
        if prompt is None:
            raise project.missing_prompt(evalset)
        prompt = with_model(prompt, provider=provider or project.config.defaults.provider, model=model)
        jobs.append(make_job(prompt, evalset, filters, shard=shard))
    if not jobs:
        raise ConfigError(
            "nothing to run", hint="add an eval set under evalsets/, or check --prompt/--evalset"
        )
    if filters and not any(job.indexes for job in jobs):
        # An empty record would read as a clean run of nothing; a typo in a filter is a usage error.
        raise ConfigError(
            f"--filter {' '.join(filters)} matches no case of {', '.join(job.evalset.id for job in jobs)}",
            hint="filters are globs on case ids and tags, e.g. --filter 'refund-*'",
        )
    return jobs


def make_job(
    prompt: Prompt,
    evalset: EvalSet,
    filters: Sequence[str] = (),
    *,
    only: Collection[str] | None = None,
    shard: Shard | None = None,
) -> Job:
    """Render `prompt` for the selected cases of `evalset` and build its graders (no network).

    Args:
        prompt: the prompt to render.
        evalset: whose cases to render.
        filters: globs on case ids and tags.
        only: if given, just these case ids (a baseline runs only the cases that existed at the base).
        shard: only this shard's cases.

    Raises:
        ConfigError: a template does not render, a grader is misconfigured, or a JSON Schema the
            prompt declares is invalid or unusable.
    """
    if not evalset.cases:
        raise _no_cases(evalset)
    indexes = select(evalset, filters, shard)
    if only is not None:
        indexes = tuple(i for i in indexes if evalset.cases[i].id in only)
    job = Job(
        prompt=prompt,
        evalset=evalset,
        indexes=indexes,
        graders=build_graders(evalset),
        provider=prompt.model.provider,
        # Loaded now so a bad reviews file stops the run before anything is sent.
        reviews=load_reviews(Path(evalset.source_path)) if evalset.source_path else Reviews(),
    )
    if errors := expected_errors(evalset, job.graders, indexes):
        raise ConfigErrors(errors)
    if prompt.output.json_schema is not None or prompt.tools:
        # A schema the graders or the provider could not use is the prompt file's error, at its line.
        from agent_evals.graders.json_schema import prompt_schema_errors

        if errors := prompt_schema_errors(prompt):
            raise ConfigErrors(errors)
    # Every case rendered once, its turns too: a template that does not render for one case, or
    # renders too slowly, stops the run before anything is sent. The run renders each as it sends it.
    render_all(prompt, evalset, indexes, case_where=partial(case_where, evalset))
    return job


def _no_cases(evalset: EvalSet) -> ConfigError:
    """An eval set without a case gates nothing: a run of it would read as clean. (`sample` writes one
    when every row it chose awaits a label.)"""
    key = "cases_file" if evalset.cases_file else "cases"
    hint = "add cases to it"
    if evalset.source_path:
        waiting = Path(evalset.source_path).with_name(f"{Path(evalset.source_path).stem}.to-label.jsonl")
        if waiting.is_file():
            hint = f"label the rows 'agent-evals sample' set aside in {waiting.name} and add them as cases"
    return ConfigError(
        f"eval set '{evalset.id}' has no cases: nothing to evaluate",
        path=evalset.source_path,
        line=evalset.line_of(key),
        hint=hint,
    )


def with_model(prompt: Prompt, *, provider: str | None, model: str | None) -> Prompt:
    """The prompt with its provider and model name overridden (None keeps the prompt's)."""
    if provider is None and model is None:
        return prompt
    update: dict[str, Any] = {}
    if provider is not None:
        update["provider"] = provider
    if model is not None:
        update["name"] = model
    # model_copy keeps the private attributes: the copy still knows its file and lines.
    return prompt.model_copy(update={"model": prompt.model.model_copy(update=update)})


_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```\s*$", re.DOTALL)


def parse_output(text: str, request: ChatRequest) -> tuple[Any, str | None]:
    """Parse a JSON-format prompt's output; a Markdown code fence around it is tolerated."""
    if request.output.format != "json":
        return None, None
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        return _json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"output is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"


@dataclass(frozen=True, slots=True)
class _Item:
    """One (case, repeat) of a job, rendered and ready to send."""

    position: int
    repeat: int
    request: ChatRequest
    rendered_at: tuple[float, float]
    """(start, end) epoch seconds of its rendering, for traces."""


_FIRST_CHUNK = 64
_CHUNK = 512
"""Cases rendered (and their cache entries read, in one query) at a time: sending starts after the
first few, and what waits to be sent stays a few hundred requests however large the eval set."""


def _items(job: Job, calls: Calls, todo: Iterable[tuple[int, int]], concurrency: int) -> Iterator[_Item]:
    """The (position, repeat) pairs to run, rendered a chunk at a time, each chunk's cache entries
    read ahead in one query (`Calls.prefetch`). Repeats of a case share its one rendering."""
    size = max(_FIRST_CHUNK, concurrency)
    chunk: list[tuple[int, int]] = []
    for pair in todo:
        chunk.append(pair)
        if len(chunk) >= size:
            yield from _prepared(job, calls, chunk)
            chunk, size = [], max(_CHUNK, concurrency)
    if chunk:
        yield from _prepared(job, calls, chunk)


def _prepared(job: Job, calls: Calls, chunk: Sequence[tuple[int, int]]) -> list[_Item]:
    rendered: dict[int, tuple[ChatRequest, tuple[float, float]]] = {}
    for position, _ in chunk:
        if position not in rendered:
            start = time.time()
            request = job.request(position)
            rendered[position] = (request, (start, time.time()))
    items = [_Item(position, repeat, *rendered[position]) for position, repeat in chunk]
    calls.prefetch(job.provider, [(item.request, item.repeat) for item in items])
    return items


async def _run_case(job: Job, item: _Item, calls: Calls) -> CaseResult:
    position, repeat, request = item.position, item.repeat, item.request
    index = job.indexes[position]
    case = job.evalset.cases[index]
    ctx = TraceContext(evalset=job.evalset.id, case_id=case.id, repeat=repeat)
    base: dict[str, Any] = {
        "index": index,
        "case_id": case.id,
        "repeat": repeat,
        "tags": case.tags,
        "cluster": case.cluster,
        "expected": case.expected,
        "request": request.to_json(),
    }
    if calls.tracer is not None:
        start, end = item.rendered_at
        calls.tracer.event("render", start, end, evalset=ctx.evalset, case_id=case.id, repeat=repeat,
                           messages=len(request.messages))  # fmt: skip
    # A prompt with tools (or a case that recorded tool calls) runs the agent loop, its tool
    # calls answered from the case's records and the eval set's mocks; else one model call.
    agent = bool(job.prompt.tools or case.tools)
    turns = job.turns(position)
    trajectory = await run_agent(
        calls,
        job.provider,
        request,
        ctx,
        replayer=Replayer(case, job.evalset.tools, root=calls.root, clock=job.clock) if agent else None,
        max_steps=job.prompt.steps_limit,
        turns=turns,
    )
    ran = _trajectory_fields(trajectory)
    turn_records = _turn_records(case, request, turns, trajectory)
    if turn_records:
        ran["turns"] = turn_records
    if trajectory.skipped is not None:
        model_calls = sum(step.kind == "model" for step in trajectory.steps)
        after = f", after {model_calls} model call{'s' if model_calls > 1 else ''}" if model_calls else ""
        return CaseResult(
            status="skipped", error=f"skipped (budget{after}): {trajectory.skipped}", **ran, **base
        )
    if trajectory.error is not None or trajectory.last is None:
        return CaseResult(status="error", error=trajectory.error, **ran, **base)
    judge_costs: list[float | None] = []

    async def call_model(provider_name: str, judge_request: ChatRequest) -> Completion:
        judged = await calls.call(provider_name, judge_request, replace(ctx, role="judge"))
        judge_costs.append(judged.cost_usd)
        return judged.completion

    output = trajectory.last.text
    parsed, parse_error = parse_output(output, request)
    sample = Sample(
        case=case,
        output=output,
        parsed=parsed,
        parse_error=parse_error,
        output_schema=request.output.json_schema,
        call_model=call_model,
        steps=trajectory.steps,
        tool_calls=trajectory.tool_calls,
        tools=request.tools,
        usage=trajectory.usage,
        cost_usd=trajectory.cost_usd,
    )
    try:
        if turn_records:
            grades, turn_records = await _grade_conversation(
                job.graders, sample, request, trajectory, turn_records, calls, ctx
            )
            ran["turns"] = turn_records
        else:
            grades = [await _grade(grader, sample, calls, ctx) for grader in job.graders]
    except BudgetExceeded as exc:
        return CaseResult(status="skipped", error=f"skipped (budget, while grading): {exc}", **base)
    review = job.evalset.review
    grades = list(mark_disagreements(grades, review.disagree if review else ()))
    status, score, passed = case_outcome(grades)
    costs = [trajectory.cost_usd, *judge_costs]
    result = CaseResult(
        status=status,
        score=score,
        passed=passed,
        grades=tuple(grades),
        error="; ".join(f"grader '{g.grader}': {g.error}" for g in grades if g.error) or None,
        **{
            **ran,
            "cost_usd": None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        },
        **base,
    )
    return apply_reviews(result, job.reviews)


_MISSING = object()


def has_expected(expected: Any, path: str | None) -> bool:
    """Whether an expected value holds what a grader reads at `path` (which applies to a mapping only)."""
    value = expected if expected is not None else _MISSING
    if value is not _MISSING and path is not None and isinstance(value, dict):
        value = get_path(value, path, default=_MISSING)
    return value is not _MISSING and value is not None


def expected_errors(
    evalset: EvalSet, graders: Sequence[GraderBase], indexes: Sequence[int] | None = None
) -> list[ConfigError]:
    """Each case (of `indexes`, else all) without the expected value a grader of it reads, at its line:
    a problem of the eval set, found by `validate` and by `make_job` before anything is sent, not a
    case that could not be evaluated once its model had answered."""
    errors: list[ConfigError] = []
    positions = range(len(evalset.cases)) if indexes is None else indexes
    for grader in (g for g in graders if g.needs_expected):
        path = grader.expected_path()
        key = f"expected.{path}" if path else "expected"
        for index in positions:
            case = evalset.cases[index]
            # Graded turn by turn, a turn without an expected value is skipped; a conversation with
            # none has nothing to grade.
            each = grader.spec.turns == "each" and bool(case.turns)
            if has_expected(case.expected, path) or (
                each and any(has_expected(turn.expected, path) for turn in case.turns)
            ):
                continue
            if each:
                message = f"no turn of case '{case.id}' has an '{key}', which grader '{grader.name}' (turns: each) needs"
                hint = f"add '{key}' to the case (its first turn) or to one of its turns, or grade it with turns: last"
            else:
                message = f"case '{case.id}' has no '{key}', which grader '{grader.name}' needs"
                hint = f"add '{key}' to the case, or give the case a different grader"
            file, line = evalset.case_source(index)
            errors.append(ConfigError(message, path=file, line=line, hint=hint))
    return errors


def _turn_records(
    case: Case, request: ChatRequest, turns: Sequence[str], trajectory: Trajectory
) -> tuple[TurnRecord, ...]:
    """A conversation's turns as the record keeps them: each one it reached, answered or not."""
    if not turns:
        return ()
    first = next((m.content for m in reversed(request.messages) if m.role == "user"), None)
    users = (first, *turns)
    expected = (case.expected, *(t.expected for t in case.turns))
    reached = len(trajectory.answers) + (trajectory.error is not None or trajectory.skipped is not None)
    records = []
    for index in range(min(reached, len(users))):
        answer = trajectory.answers[index] if index < len(trajectory.answers) else None
        records.append(
            TurnRecord(
                turn=index + 1,
                user=users[index],
                output=answer.text if answer is not None else None,
                finish_reason=answer.finish_reason if answer is not None else None,
                expected=expected[index],
            )
        )
    return tuple(records)


def _turn_sample(sample: Sample, request: ChatRequest, trajectory: Trajectory, record: TurnRecord) -> Sample:
    """What a `turns: each` grader sees of one turn: its answer, its expected, its own steps."""
    steps = tuple(s for s in trajectory.steps if s.turn == record.turn)
    models = [s for s in steps if s.kind == "model"]
    costs = [s.cost_usd for s in models]
    output = record.output or ""
    parsed, parse_error = parse_output(output, request)
    return replace(
        sample,
        case=sample.case.model_copy(update={"expected": record.expected}),
        output=output,
        parsed=parsed,
        parse_error=parse_error,
        steps=steps,
        tool_calls=tuple(call for s in models for call in s.tool_calls),
        usage=total_usage(s.usage for s in models),
        cost_usd=None if not models or any(c is None for c in costs) else sum(c or 0.0 for c in costs),
    )


async def _grade_conversation(
    graders: Sequence[GraderBase],
    sample: Sample,
    request: ChatRequest,
    trajectory: Trajectory,
    turns: tuple[TurnRecord, ...],
    calls: Calls,
    ctx: TraceContext,
) -> tuple[list[GradeRecord], tuple[TurnRecord, ...]]:
    """Grade a conversation: `last` graders once on the final answer (and the whole trajectory),
    `each` graders on every turn that has what they need; their per-turn grades go on the turns.

    A turn without an expected value is skipped by a grader that needs one. The case's grade of
    an `each` grader passes when every graded turn passed; its score is their mean and its
    reason names the first failing turn ("turn 2: expected 'refund', got 'billing'").
    """
    grades: list[GradeRecord] = []
    per_turn: dict[int, list[GradeRecord]] = {t.turn: [] for t in turns}
    for grader in graders:
        if grader.spec.turns == "last":
            grades.append(await _grade(grader, sample, calls, ctx))
            continue
        graded: list[tuple[int, GradeRecord]] = []
        for record in turns:
            if grader.needs_expected and not has_expected(record.expected, grader.expected_path()):
                continue
            turn_sample = _turn_sample(sample, request, trajectory, record)
            grade = await _grade(grader, turn_sample, calls, ctx)
            per_turn[record.turn].append(grade)
            graded.append((record.turn, grade))
        grades.append(_over_turns(grader, graded))
    return grades, tuple(t.model_copy(update={"grades": tuple(per_turn[t.turn])}) for t in turns)


def _over_turns(grader: GraderBase, graded: Sequence[tuple[int, GradeRecord]]) -> GradeRecord:
    """One `each` grader's grade of a conversation, from its grades of the turns."""
    common = {
        "grader": grader.name,
        "type": grader.spec.type,
        "weight": grader.spec.weight,
        "required": grader.spec.required,
    }
    if not graded:
        return GradeRecord(
            reason="could not grade",
            error="no turn has an expected value, which this grader needs "
            "(give the case or one of its turns an 'expected')",
            **common,
        )
    failed = next(((t, g) for t, g in graded if g.error), None)
    if failed is not None:
        return GradeRecord(reason="could not grade", error=f"turn {failed[0]}: {failed[1].error}", **common)
    numbers = [t for t, _ in graded]
    scores = [g.score for _, g in graded if g.score is not None]
    first_fail = next(((t, g) for t, g in graded if not g.passed), None)
    if first_fail is not None:
        reason = f"turn {first_fail[0]}: {first_fail[1].reason}"
    else:
        label = "turn" if len(numbers) == 1 else "turns"
        reason = f"passed on {label} {', '.join(map(str, numbers))}"
    review_turn, review = next(((t, g) for t, g in graded if g.needs_review), (0, None))
    return GradeRecord(
        score=sum(scores) / len(scores) if scores else None,
        passed=first_fail is None,
        reason=reason,
        needs_review=review is not None,
        details={
            "turns": {str(t): {"passed": g.passed, "score": g.score, "reason": g.reason} for t, g in graded},
            **({REVIEW_REASON: f"turn {review_turn}: {review_reason(review.details)}"} if review else {}),
        },
        **common,
    )


def _trajectory_fields(trajectory: Trajectory) -> dict[str, Any]:
    """What the record keeps of a case's model calls: the last answer (its text, why it stopped,
    who answered), every tool call, the steps, and the totals over the calls."""
    last = trajectory.last
    return {
        "output": last.text if last is not None else None,
        "finish_reason": last.finish_reason if last is not None else None,
        "truncated": last.truncated if last is not None else False,
        "model": last.model if last is not None else None,
        "tool_calls": trajectory.tool_calls,
        "steps": trajectory.steps,
        "replay": trajectory.replay,
        # An agent's own trajectory, partly unreadable: what was left out, where a user sees it.
        "notes": last.notes if last is not None else (),
        # For a cached answer, the latency of the call that produced it (or None, not measured),
        # never the lookup's microseconds, so p50/p95 compare measured calls only.
        "latency_ms": trajectory.latency_ms,
        "usage": trajectory.usage,
        "cost_usd": trajectory.cost_usd,
        "attempts": trajectory.attempts,
        "cached": trajectory.cached,
    }


async def _grade(grader: GraderBase, sample: Sample, calls: Calls, ctx: TraceContext) -> GradeRecord:
    common = {
        "grader": grader.name,
        "type": grader.spec.type,
        "weight": grader.spec.weight,
        "required": grader.spec.required,
    }
    started = time.time()
    try:
        grade = await grader.grade(sample)
    except (GraderError, ProviderError) as exc:
        record = GradeRecord(score=None, passed=None, reason="could not grade", error=str(exc), **common)
    else:
        record = GradeRecord(
            score=grade.score,
            passed=grade.passed,
            reason=grade.reason,
            needs_review=grade.needs_review,
            details=grade.details,
            **common,
        )
    if calls.tracer is not None:
        calls.tracer.event(
            "grade", started, evalset=ctx.evalset, case_id=ctx.case_id, repeat=ctx.repeat, grader=record.grader,
            score=record.score, passed=record.passed, needs_review=record.needs_review or None,
            **{"error.message": record.error},
        )  # fmt: skip
    return record


def header_for(
    job: Job, run_id: str, root: Path, config: ProjectConfig, options: dict[str, Any]
) -> RunHeader:
    from agent_evals import gitinfo, sources

    settings = resolve(job.provider, config, root)
    scope = sources.code_scope(job.prompt, job.evalset, config, job.provider)
    return RunHeader(
        run_id=run_id,
        started_at=_now(),
        tool_version=__version__,
        git=gitinfo.describe(root),
        prompt={
            "id": job.prompt.id,
            "version": str(job.prompt.version),
            "hash": job.prompt.content_hash,
            "path": job.prompt.source_path,
        },
        evalset={
            "id": job.evalset.id,
            "hash": job.evalset.content_hash,
            "path": job.evalset.source_path,
            "cases": len(job.evalset.cases),
            "selected": len(job.indexes),
            **({"metric": job.evalset.metric} if job.evalset.metric else {}),
        },
        provider={
            "name": job.provider,
            "type": settings.type,
            "base_url": safe_url(settings.base_url) if settings.base_url else None,
            "model": job.prompt.model.name,
            "params": job.prompt.model.params(),
        },
        options=options,
        code=sources.fingerprint(scope, root).header() if scope else None,
    )


def record_path(
    root: Path, config: ProjectConfig, run_id: str, evalset_id: str, output: Path | None, n_jobs: int
) -> Path:
    """Where a job's record goes: `--output` as a file for one job, as a folder for several."""
    if output is not None:
        if output.suffix in (".jsonl", ".json") and n_jobs == 1:
            return output
        return output / f"{evalset_id}.jsonl"
    return root / config.paths.runs / run_id / f"{evalset_id}.jsonl"


@dataclass(frozen=True)
class Resume:
    """What an interrupted run already finished, per eval set: its record and the done (index, repeat) pairs."""

    path: Path
    header: RunHeader
    done: tuple[CaseResult, ...]


async def execute(
    project: Project,
    jobs: Sequence[Job],
    options: RunOptions,
    *,
    client: aiohttp.ClientSession | None = None,
    on_result: Callable[[Job, CaseResult], None] | None = None,
    resume: Mapping[str, Resume] | None = None,
    budget: Budget | None = None,
    history: Callable[[], Store] | None = None,
) -> list[JobResult]:
    """Run the jobs; every finished case is on disk before this returns or is cancelled.

    Args:
        project: for the config (providers, prices) and the root.
        jobs: from `plan`.
        options: concurrency, retries, repeats, cost ceiling, cache, trace, where records go.
        client: an HTTP client for the HTTP providers (left open); by default the run makes
            one on its first HTTP call, with a connection per call in flight.
        on_result: called after each case is recorded (progress display).
        resume: per eval set id, an interrupted run's record to finish instead of starting anew.
        budget: shared with other runs (ci's baseline and candidate); default: one for `options.max_cost_usd`.
        history: opens the history store: each new run's cases go into it as they are written
            (`history.feed.HistoryFeed`, a thread of its own; for the project's store,
            `history.follow.ProjectStore`, a run of `FOLLOW_MIN` results or more is followed by a
            child process instead), its end when it ends; what that did (or the store's error)
            is `JobResult.history`. A resumed run is not fed (the store may lack its first part;
            the caller imports its record afterwards).
    """
    # Before anything is opened or sent: a missing key would fail every case the same way.
    check_keys(project.config, project.root, [name for job in jobs for name in job_providers(job)])
    capabilities.check_prompts([job.prompt for job in jobs], project.config, project.root)
    # A mock that could answer no call would leave every call to its tool unanswered.
    if errors := [error for job in jobs for error in mock_errors(job.evalset, project.root)]:
        raise ConfigErrors(errors)
    run_id = options.run_id or new_run_id()
    cache = _open_cache(project, options)
    tracer = Tracer(options.trace, run_id) if options.trace is not None else None
    calls = Calls(
        project.config, project.root, options.retry, client=client, cache=cache,
        budget=budget or Budget(options.max_cost_usd), tracer=tracer, concurrency=options.concurrency,
    )  # fmt: skip
    outcomes: list[JobResult] = []
    writers: list[RecordWriter] = []
    feeds: list[HistoryFeed | FollowedRun] = []
    try:
        # The HTTP client made (and aiohttp imported) before any worker starts, rather than by the
        # first call while the others wait on the loop; except for a provider whose answers come
        # from the cache, whose first miss makes it: a run answered from the cache never imports it.
        for name in dict.fromkeys(name for job in jobs for name in job_providers(job)):
            if calls.http(name) and not calls.cacheable(name):
                calls.provider(name)
        for job in jobs:
            previous = (resume or {}).get(job.evalset.id)
            feed = None
            if previous is not None:
                header, path = previous.header, previous.path
                writer = RecordWriter(path, header, append=True)
            else:
                # Each record is a run of its own (the history keys runs by it): with several
                # jobs, the eval set's id tells them apart; the folder keeps the run's id.
                own_id = run_id if len(jobs) == 1 else f"{run_id}.{job.evalset.id}"
                header = header_for(job, own_id, project.root, project.config, options.recorded())
                path = record_path(
                    project.root, project.config, run_id, job.evalset.id, options.output, len(jobs)
                )
                writer = RecordWriter(path, header)
                if history is not None:
                    feed = _feed(history, job, options, header, path)
                    feeds.append(feed)
                    writer.on_flush = feed.flushed
            writers.append(writer)
            outcome = JobResult(job=job, path=path, header=header)
            for result in previous.done if previous else ():
                outcome.tally.add(result)
            outcomes.append(outcome)
            done = {(r.index, r.repeat) for r in previous.done} if previous else set()
            await _run_job(job, calls, options, writer, outcome, on_result, done)
            outcome.stopped = calls.stopped(job_providers(job))
            outcome.end = _end("complete", outcome.tally, calls, stopped=outcome.stopped)
            writer.close(outcome.end)
            if feed is not None:
                outcome.history = _close_feed(feed, outcome.end)
    except BaseException as exc:
        status: Literal["interrupted", "aborted"] = (
            "interrupted" if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt) else "aborted"
        )
        for writer, outcome in zip(writers, outcomes, strict=True):
            outcome.end = _end(status, outcome.tally, calls, reason=type(exc).__name__)
            writer.close(outcome.end)
        # The records hold everything; the store keeps the cases it got (`history import` completes it).
        for feed in feeds:
            feed.abandon()
        raise
    finally:
        await calls.aclose()
        if cache is not None:
            cache.close()
        if tracer is not None:
            tracer.close()
    return outcomes


def _feed(
    history: Callable[[], Store], job: Job, options: RunOptions, header: RunHeader, path: Path
) -> HistoryFeed | FollowedRun:
    """What writes a new run's cases into the history as its record is flushed: for a run of the
    project's store of at least `FOLLOW_MIN` results, a child process following the record (off
    this process's interpreter lock); else a thread of this process."""
    from agent_evals.history.follow import FOLLOW_MIN, FollowedRun, ProjectStore

    if isinstance(history, ProjectStore) and len(job.indexes) * options.repeat >= FOLLOW_MIN:
        try:
            return FollowedRun(path, history.root)
        except OSError:
            pass  # no process to be had: the thread does the same work here
    from agent_evals.history.feed import HistoryFeed

    return HistoryFeed(history, header, source=str(path))


def _close_feed(feed: HistoryFeed | FollowedRun, end: RunEnd) -> Imported | ConfigError:
    try:
        return feed.close(end)
    except ConfigError as exc:
        return exc


def job_providers(job: Job) -> list[str]:
    """The providers a job calls: its prompt's, then its LLM judges'."""
    names = [job.provider]
    for grader in job.graders:
        provider = judge_provider(grader)
        if provider is not None and provider not in names:
            names.append(provider)
    return names


def judge_provider(grader: GraderBase) -> str | None:
    """The provider an LLM-judge grader calls, if it names one (other graders call none)."""
    provider = getattr(getattr(grader.options, "judge", None), "provider", None)
    return provider if isinstance(provider, str) else None


def _open_cache(project: Project, options: RunOptions) -> ResponseCache | None:
    if not options.cache:
        return None
    from agent_evals.cache import DEFAULT_CACHE_PATH, ResponseCache

    return ResponseCache(options.cache_path or project.root / DEFAULT_CACHE_PATH)


async def _run_job(
    job: Job,
    calls: Calls,
    options: RunOptions,
    writer: RecordWriter,
    outcome: JobResult,
    on_result: Callable[[Job, CaseResult], None] | None,
    done: Collection[tuple[int, int]],
) -> None:
    def todo() -> Iterator[tuple[int, int]]:
        # (A resumed run's `done` may hold cases this job does not select: a confirmation run.)
        for position in range(len(job.indexes)):
            for repeat in range(options.repeat):
                if (job.indexes[position], repeat) not in done:
                    yield position, repeat

    remaining = sum(1 for _ in todo())
    items = _items(job, calls, todo(), options.concurrency)
    workers = min(options.concurrency, remaining)
    finished = asyncio.Event()

    async def worker() -> None:
        # Workers pull from one shared iterator (rendering a chunk when it runs dry); the limiter
        # in `calls` bounds what is in flight.
        nonlocal workers
        try:
            for item in items:
                result = await _run_case(job, item, calls)
                writer.add(result)
                outcome.tally.add(result)
                if on_result is not None:
                    on_result(job, result)
        finally:
            workers -= 1
            if not workers:
                finished.set()

    async def flush() -> None:
        # The record and the trace are written in batches; what finished reaches the disk within
        # FLUSH_S even when nothing else finishes (a signal or an error flushes at once, below).
        # In the group: a write that fails (a full disk) stops the workers and is the run's error.
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), FLUSH_S)
            _flush(writer, calls)

    try:
        # The workers' tasks copy the context: the graders' patterns and schemas charge the job's clock.
        with running(job.clock):
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(worker())
                if workers:
                    group.create_task(flush())
    except BaseExceptionGroup as group_error:
        # A worker's own error (a config problem found on first call) is the story; not the group.
        raise group_error.exceptions[0] from None
    finally:
        _flush(writer, calls)


def _flush(writer: RecordWriter, calls: Calls) -> None:
    writer.flush()
    if calls.tracer is not None:
        calls.tracer.flush()


def _end(
    status: Literal["complete", "interrupted", "aborted"],
    tally: Tally,
    calls: Calls,
    reason: str | None = None,
    *,
    stopped: ProviderStopped | None = None,
) -> RunEnd:
    if reason is None and stopped is not None:
        reason = f"{stopped_line(stopped)}; {tally.unsent} case(s) not sent"
    skipped = tally.statuses["skipped"]
    if reason is None and skipped:
        reason = f"cost ceiling ${calls.budget.ceiling:g} reached; {skipped} case(s) not sent"
    return RunEnd(
        status=status,
        finished_at=_now(),
        reason=reason,
        counts=dict(tally.statuses),
        # A case the budget stopped mid-loop spent what its steps cost.
        cost_usd=tally.spent_usd(),
    )


def stopped_line(stopped: ProviderStopped) -> str:
    """Why a provider was stopped, in one line: `provider 'openai' stopped after 8 consecutive failures: <error>`."""
    return f"provider '{stopped.provider}' stopped after {stopped.failures} consecutive failures: {stopped}"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (not on Windows), else asyncio's.

    Every HTTP call costs the loop a socket write, a read and a few wake-ups; uvloop
    does those in C, for about a third less CPU per call (bench/clients.py).
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; SIGINT, SIGTERM and SIGHUP cancel it cleanly and raise Interrupted."""
    loop = new_event_loop()
    task = loop.create_task(coro)
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        task.cancel()

    # SIGHUP too (the terminal went away): records are written in batches, and a stop by any of
    # these flushes what finished before the process ends.
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        raise Interrupted(received[0] if received else signal.SIGINT) from None
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def find_resume(project: Project, run: str) -> tuple[dict[str, Resume], dict[str, Any]]:
    """The records of an interrupted run (a run id, or a record file or folder) and the options it ran with.

    Raises:
        ConfigError: no such run, or its records do not load.
    """
    candidate = Path(run)
    folder = candidate if candidate.exists() else project.root / project.config.paths.runs / run
    paths = [folder] if folder.is_file() else sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not paths:
        raise ConfigError(
            f"no run '{run}' to resume",
            hint=f"pass a run id (a folder under {project.config.paths.runs}/) or a record file",
        )
    resume: dict[str, Resume] = {}
    options: dict[str, Any] = {}
    for path in paths:
        record = load_record(path)
        finished = tuple(c for c in record.cases if c.status in ("pass", "fail"))
        resume[str(record.header.evalset["id"])] = Resume(path=path, header=record.header, done=finished)
        options = _resumed_options(record.header.options, path)
    return resume, options


def _resumed_options(options: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The options a record kept (`RunOptions.recorded`), checked as the command line checks them:
    a record is a file anyone can edit, and a resumed run takes its repeat and cost ceiling.

    Raises:
        ConfigError: at the record's header line, for a value the run's own option would refuse.
    """

    def wrong(key: str, should: str) -> ConfigError:
        return ConfigError(
            f"the record's option {key} is {json.dumps(options.get(key))[:40]}, not {should}",
            path=path,
            line=1,
            hint="the record was edited, or is not agent-evals'; start a new run instead",
        )

    repeat = options.get("repeat", 1)
    if type(repeat) is not int or not 1 <= repeat <= MAX_REPEAT:
        raise wrong("repeat", f"a whole number from 1 to {MAX_REPEAT:,}")
    cost = options.get("max_cost_usd")
    if cost is not None and (type(cost) not in (int, float) or not math.isfinite(cost) or cost < 0):
        raise wrong("max_cost_usd", "a finite number of USD, 0 or more")
    filters = options.get("filters") or []
    if not isinstance(filters, list) or not all(isinstance(f, str) for f in filters):
        raise wrong("filters", "a list of patterns")
    for key in ("provider", "model", "shard"):
        if not isinstance(options.get(key), str | None):
            raise wrong(key, "a string")
    return {**options, "repeat": repeat, "filters": filters}


def check_resume(
    jobs: Sequence[Job], resume: Mapping[str, Resume], root: Path, config: ProjectConfig
) -> None:
    """A run resumes only with the prompt, the cases and the code it started with.

    Raises:
        ConfigError: the prompt, the eval set, or the code the run executes (a `python:`
            agent's or grader's package, a prompt's `watch:` paths) changed since the run started.
    """
    from agent_evals import sources

    for job in jobs:
        previous = resume[job.evalset.id]
        for kind, now, then in (
            ("prompt", job.prompt.content_hash, previous.header.prompt.get("hash")),
            ("eval set", job.evalset.content_hash, previous.header.evalset.get("hash")),
        ):
            if now != then:
                raise ConfigError(
                    f"the {kind} of '{job.evalset.id}' changed since run {previous.header.run_id} started",
                    path=previous.path,
                    hint="a resumed run must use the same prompt and cases; start a new run instead",
                )
        scope = sources.code_scope(job.prompt, job.evalset, config, job.provider)
        code = sources.fingerprint(scope, root).header() if scope else None
        changed = sources.changed_in_headers(previous.header.code, code)
        if changed or (previous.header.code is None) != (code is None):
            raise ConfigError(
                f"the code of '{job.evalset.id}' changed since run {previous.header.run_id} started"
                + (f" ({sources.listing(changed)})" if changed else ""),
                path=previous.path,
                hint="half a run on the old code and half on the new would be neither; start a new run instead",
            )


@dataclass(frozen=True)
class DryRunRow:
    """What a job would send and cost, estimated without calling anything."""

    evalset: str
    prompt: str
    provider: str
    model: str
    requests: int
    cached: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


def _expected_steps(job: Job, position: int) -> list[int]:
    """The model calls one case is expected to make, as the extra input tokens each carries.

    A single call is `[0]`. An agent's case is expected to make the calls production made:
    one model call per recorded tool call plus the final answer (at most `max_steps` per
    turn), each carrying the exchanges before it (the call and its recorded result); a
    conversation adds the calls of each scripted turn. An estimate, like the budget's: the
    ceiling, not this, stops a run that goes further.
    """
    from agent_evals.budget import CHARS_PER_TOKEN, MESSAGE_OVERHEAD_TOKENS

    case = job.evalset.cases[job.indexes[position]]
    turns = 1 + len(case.turns)
    if not (job.prompt.tools or case.tools):
        return [0] * turns
    exchanges = [
        2 * MESSAGE_OVERHEAD_TOKENS
        + math.ceil(len(json.dumps([c.name, c.arguments, c.result], default=str)) / CHARS_PER_TOKEN)
        for c in case.tools
    ]
    per_turn = min(job.prompt.steps_limit, len(exchanges) // turns + 1)
    steps, carried = [], 0
    for step in range(per_turn * turns):
        steps.append(carried)
        if step < len(exchanges):
            carried += exchanges[step]
    return steps


def dry_run(project: Project, jobs: Sequence[Job], options: RunOptions) -> list[DryRunRow]:
    """Estimate the requests, tokens and cost of a run: cached requests cost nothing; nothing is sent.

    An agent's case counts the model calls its recorded tool calls imply (`_expected_steps`).
    """
    from agent_evals.budget import estimate
    from agent_evals.cache import cache_key
    from agent_evals.providers.base import Usage as UsageIn

    cache = _open_cache(project, options)
    calls = Calls(project.config, project.root, options.retry, cache=cache)
    rows = []
    try:
        for job in jobs:
            settings = calls.settings(job.provider)
            price = calls.price(job.provider, job.prompt.model.name)
            cached = tokens_in = tokens_out = 0
            cost: float | None = 0.0
            requests = 0
            for position in range(len(job.indexes)):
                request = job.request(position)
                steps = _expected_steps(job, position)
                for repeat in range(options.repeat):
                    requests += len(steps)
                    if (
                        cache is not None
                        and calls.cacheable(job.provider)
                        and cache.get(cache_key(request, settings, repeat))
                    ):
                        # A case's later steps are keyed by what its first answer said: a run
                        # whose first call is cached replays the rest from the cache as well.
                        cached += len(steps)
                        continue
                    guess = estimate(request, price)
                    for grown in steps:
                        step_cost = (
                            None
                            if guess.cost_usd is None or price is None
                            else price.cost(UsageIn(guess.input_tokens + grown, guess.output_tokens))
                        )
                        tokens_in += guess.input_tokens + grown
                        tokens_out += guess.output_tokens
                        cost = None if cost is None or step_cost is None else cost + step_cost
            rows.append(
                DryRunRow(
                    evalset=job.evalset.id,
                    prompt=job.prompt.id,
                    provider=job.provider,
                    model=job.prompt.model.name,
                    requests=requests,
                    cached=cached,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost_usd=cost,
                )
            )
    finally:
        if cache is not None:
            cache.close()
    return rows
