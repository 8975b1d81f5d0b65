"""Run prompts on eval sets: plan the jobs, call the providers, grade, record.

`plan` is pure (load -> filter -> render -> build graders): a template that
does not render stops the run before anything is sent. `execute` runs the
jobs with a bounded pool of workers, retries per the policy, grades each
output and appends every finished case to its run record at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import json
import re
import secrets
import signal
import time
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, create_model

from agent_evals import __version__
from agent_evals.errors import ConfigError, GraderError, Interrupted, ProviderError
from agent_evals.graders import GraderBase, Sample, build_grader, grader_class
from agent_evals.load import ConfigErrors, Project, translate
from agent_evals.models import Case, EvalSet, GraderSpec, Price, ProjectConfig, Prompt
from agent_evals.pricing import cost_usd, merged_table, price_for
from agent_evals.providers import Completion, Provider, make_provider, resolve
from agent_evals.record import CaseResult, GradeRecord, RecordWriter, RunEnd, RunHeader, Usage
from agent_evals.render import ChatRequest, render
from agent_evals.retry import RetryEvent, RetryPolicy, call_with_retry

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """One prompt on one eval set, rendered and ready to send."""

    prompt: Prompt
    evalset: EvalSet
    indexes: tuple[int, ...]
    requests: tuple[ChatRequest, ...]
    graders: tuple[GraderBase, ...]
    provider: str

    @property
    def cases(self) -> list[Case]:
        return [self.evalset.cases[i] for i in self.indexes]


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    output: Path | None = None
    run_id: str | None = None


@dataclass
class JobResult:
    job: Job
    path: Path
    header: RunHeader
    results: list[CaseResult]
    end: RunEnd | None = None


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


def select(evalset: EvalSet, filters: Sequence[str]) -> tuple[int, ...]:
    """Indexes of the cases whose id or one of whose tags matches a filter (glob patterns)."""
    if not filters:
        return tuple(range(len(evalset.cases)))
    return tuple(
        i
        for i, case in enumerate(evalset.cases)
        if any(
            fnmatch.fnmatchcase(case.id, f) or any(fnmatch.fnmatchcase(t, f) for t in case.tags)
            for f in filters
        )
    )


def plan(
    project: Project,
    *,
    prompt_ids: Sequence[str] = (),
    evalset_ids: Sequence[str] = (),
    provider: str | None = None,
    model: str | None = None,
    filters: Sequence[str] = (),
) -> list[Job]:
    """Choose and render the jobs of a run.

    Args:
        project: the loaded project; its load errors are raised here.
        prompt_ids: only eval sets targeting these prompts.
        evalset_ids: only these eval sets.
        provider: run on this provider instead of the prompts' own.
        model: and this model name.
        filters: only cases whose id or a tag matches one of these globs.

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
            raise ConfigError(
                f"eval set targets prompt '{evalset.prompt}', which does not exist",
                path=evalset.source_path,
                line=evalset.line_of("prompt"),
                hint=f"known prompts: {', '.join(sorted(project.prompts)) or 'none'}",
            )
        prompt = with_model(prompt, provider=provider or project.config.defaults.provider, model=model)
        jobs.append(make_job(prompt, evalset, filters))
    if not jobs:
        raise ConfigError(
            "nothing to run", hint="add an eval set under evalsets/, or check --prompt/--evalset"
        )
    return jobs


def make_job(
    prompt: Prompt, evalset: EvalSet, filters: Sequence[str] = (), *, only: Collection[str] | None = None
) -> Job:
    """Render `prompt` for the selected cases of `evalset` and build its graders (no network).

    Args:
        prompt: the prompt to render.
        evalset: whose cases to render.
        filters: globs on case ids and tags.
        only: if given, just these case ids (a baseline runs only the cases that existed at the base).

    Raises:
        ConfigError: a template does not render, or a grader is misconfigured.
    """
    indexes = select(evalset, filters)
    if only is not None:
        indexes = tuple(i for i in indexes if evalset.cases[i].id in only)
    requests = tuple(render(prompt, evalset.cases[i], case_where=case_where(evalset, i)) for i in indexes)
    return Job(
        prompt=prompt,
        evalset=evalset,
        indexes=indexes,
        requests=requests,
        graders=build_graders(evalset),
        provider=prompt.model.provider,
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
    copy = prompt.model_copy(update={"model": prompt.model.model_copy(update=update)})
    copy._path, copy._marks = prompt._path, prompt._marks
    return copy


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
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"output is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"


class _Calls:
    """Providers by name, built once per run and shared by jobs and judges."""

    def __init__(
        self, config: ProjectConfig, root: Path, client: httpx.AsyncClient | None, policy: RetryPolicy
    ):
        self.config = config
        self.root = root
        self.client = client
        self.policy = policy
        self.prices = merged_table(config.prices)
        self._providers: dict[str, Provider] = {}

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            self._providers[name] = make_provider(name, self.config, root=self.root, client=self.client)
        return self._providers[name]

    def price(self, provider_name: str, model: str) -> Price | None:
        return price_for(
            model or provider_name, resolve(provider_name, self.config, self.root).type, self.prices
        )

    async def call(
        self, provider_name: str, request: ChatRequest, on_retry: Callable[[RetryEvent], None] | None = None
    ) -> tuple[Completion, int]:
        provider = self.provider(provider_name)
        return await call_with_retry(lambda: provider.complete(request), self.policy, on_retry=on_retry)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()


def _usage(completion: Completion) -> Usage | None:
    if completion.usage is None:
        return None
    return Usage(input_tokens=completion.usage.input_tokens, output_tokens=completion.usage.output_tokens)


async def _run_case(job: Job, position: int, calls: _Calls) -> CaseResult:
    index = job.indexes[position]
    case = job.evalset.cases[index]
    request = job.requests[position]
    base = {
        "index": index,
        "case_id": case.id,
        "tags": case.tags,
        "cluster": case.cluster,
        "expected": case.expected,
        "request": request.to_json(),
    }
    started = time.perf_counter()
    try:
        completion, attempts = await calls.call(job.provider, request)
    except ProviderError as exc:
        return CaseResult(
            status="error",
            error=f"{job.provider}: {exc}",
            attempts=exc.attempts,
            latency_ms=(time.perf_counter() - started) * 1000,
            **base,
        )
    latency_ms = (time.perf_counter() - started) * 1000
    judge_costs: list[float | None] = []

    async def call_model(provider_name: str, judge_request: ChatRequest) -> Completion:
        judged, _ = await calls.call(provider_name, judge_request)
        judge_costs.append(cost_usd(judged.usage, calls.price(provider_name, judge_request.model.name)))
        return judged

    parsed, parse_error = parse_output(completion.text, request)
    sample = Sample(
        case=case,
        output=completion.text,
        parsed=parsed,
        parse_error=parse_error,
        output_schema=request.output.json_schema,
        call_model=call_model,
    )
    grades = [await _grade(grader, sample) for grader in job.graders]
    errors = [g for g in grades if g.error]
    scored = [g for g in grades if g.score is not None]
    weight = sum(g.weight for g in scored)
    score = sum(g.score * g.weight for g in scored if g.score is not None) / weight if weight else None
    passed = None if errors else all(g.passed for g in grades if g.required)
    costs = [cost_usd(completion.usage, calls.price(job.provider, request.model.name)), *judge_costs]
    return CaseResult(
        status="error" if errors else ("pass" if passed else "fail"),
        score=None if errors else score,
        passed=passed,
        output=completion.text,
        grades=tuple(grades),
        latency_ms=latency_ms,
        usage=_usage(completion),
        cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        attempts=attempts,
        error="; ".join(f"grader '{g.grader}': {g.error}" for g in errors) or None,
        **base,
    )


async def _grade(grader: GraderBase, sample: Sample) -> GradeRecord:
    common = {
        "grader": grader.name,
        "type": grader.spec.type,
        "weight": grader.spec.weight,
        "required": grader.spec.required,
    }
    try:
        grade = await grader.grade(sample)
    except (GraderError, ProviderError) as exc:
        return GradeRecord(score=None, passed=None, reason="could not grade", error=str(exc), **common)
    return GradeRecord(
        score=grade.score,
        passed=grade.passed,
        reason=grade.reason,
        needs_review=grade.needs_review,
        details=grade.details,
        **common,
    )


def header_for(
    job: Job, run_id: str, root: Path, config: ProjectConfig, options: dict[str, Any]
) -> RunHeader:
    from agent_evals import gitinfo

    settings = resolve(job.provider, config, root)
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
        },
        provider={
            "name": job.provider,
            "type": settings.type,
            "base_url": settings.base_url,
            "model": job.prompt.model.name,
            "params": job.prompt.model.params(),
        },
        options=options,
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


async def execute(
    project: Project,
    jobs: Sequence[Job],
    options: RunOptions,
    *,
    client: httpx.AsyncClient | None = None,
    on_result: Callable[[Job, CaseResult], None] | None = None,
) -> list[JobResult]:
    """Run the jobs; every finished case is on disk before this returns or is cancelled.

    Args:
        project: for the config (providers, prices) and the root.
        jobs: from `plan`.
        options: concurrency, retry policy, where records go.
        client: an httpx client for the HTTP providers (one is made if not given).
        on_result: called after each case is recorded (progress display).
    """
    import httpx

    run_id = options.run_id or new_run_id()
    own_client = client is None
    if client is None:
        limits = httpx.Limits(
            max_connections=options.concurrency, max_keepalive_connections=options.concurrency
        )
        client = httpx.AsyncClient(timeout=httpx.Timeout(options.retry.timeout_s), limits=limits)
    calls = _Calls(project.config, project.root, client, options.retry)
    outcomes: list[JobResult] = []
    writers: list[RecordWriter] = []
    try:
        for job in jobs:
            header = header_for(
                job, run_id, project.root, project.config, {"concurrency": options.concurrency}
            )
            path = record_path(
                project.root, project.config, run_id, job.evalset.id, options.output, len(jobs)
            )
            writer = RecordWriter(path, header)
            writers.append(writer)
            outcome = JobResult(job=job, path=path, header=header, results=[])
            outcomes.append(outcome)
            await _run_job(job, calls, options.concurrency, writer, outcome, on_result)
            outcome.end = _end("complete", outcome.results)
            writer.close(outcome.end)
    except BaseException as exc:
        status: Literal["interrupted", "aborted"] = (
            "interrupted" if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt) else "aborted"
        )
        for writer, outcome in zip(writers, outcomes, strict=True):
            outcome.end = _end(status, outcome.results, reason=type(exc).__name__)
            writer.close(outcome.end)
        raise
    finally:
        await calls.aclose()
        if own_client:
            await client.aclose()
    return outcomes


async def _run_job(
    job: Job,
    calls: _Calls,
    concurrency: int,
    writer: RecordWriter,
    outcome: JobResult,
    on_result: Callable[[Job, CaseResult], None] | None,
) -> None:
    positions = iter(range(len(job.indexes)))

    async def worker() -> None:
        # Workers pull from one shared iterator: at most `concurrency` calls in flight.
        for position in positions:
            result = await _run_case(job, position, calls)
            writer.add(result)
            outcome.results.append(result)
            if on_result is not None:
                on_result(job, result)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(job.indexes))):
                group.create_task(worker())
    except BaseExceptionGroup as group_error:
        # A worker's own error (a config problem found on first call) is the story; not the group.
        raise group_error.exceptions[0] from None
    outcome.results.sort(key=lambda r: (r.index, r.repeat))


def _end(
    status: Literal["complete", "interrupted", "aborted"],
    results: Sequence[CaseResult],
    reason: str | None = None,
) -> RunEnd:
    counts = {s: 0 for s in ("pass", "fail", "error", "skipped")}
    for r in results:
        counts[r.status] += 1
    costs = [r.cost_usd for r in results]
    total = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
    return RunEnd(status=status, finished_at=_now(), reason=reason, counts=counts, cost_usd=total)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; SIGINT and SIGTERM cancel it cleanly and raise Interrupted."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(coro)
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        raise Interrupted(received[0] if received else signal.SIGINT) from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
