"""The `agent-evals` command line: parse, call the library, map to an exit code.

This is the only module that imports typer. Every command is a thin wrapper
over a library function; `main` is the one error boundary: user errors print
one line and no traceback, unexpected ones say so and point to a log file.
Exit codes: 0 pass, 1 gate failed, 2 usage or config error, 3 could not
evaluate, 130/143 interrupted.

What goes where (the global options and the environment decide, see `_Output`):

    out      stdout: results (tables, paths written)          muted by --quiet
    note     stderr: progress bars, tallies, remarks          muted by --quiet
    err      stderr: errors and what to do about them         always
    always   stdout: the verdict line, interactive prompts    always

Output asked for by name (`--format json`, `schema`, `--show-completion`) is written to
stdout whatever the options say, and nothing else is written to stdout beside it.
Colour: `NO_COLOR` (any value) means no colour or style escapes at all, even on a
terminal; `FORCE_COLOR` (any value) means colour even into a pipe or a CI log (a
progress bar still only animates on a terminal); NO_COLOR wins when both are set.
"""

from __future__ import annotations

import atexit
import gc
import io
import math
import os
import shlex
import signal
import sys
import traceback
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console

from agent_evals import __version__
from agent_evals.credentials import ScrubbedStream, register_url, scrub

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from agent_evals.cache import CacheStats
    from agent_evals.checks import Check
    from agent_evals.gate import GateReport
    from agent_evals.history import Imported, Store
    from agent_evals.history.query import PromptHistory
    from agent_evals.load import Project
    from agent_evals.models import ProjectConfig, Prompt
    from agent_evals.record import CaseResult
    from agent_evals.retry import RetryPolicy
    from agent_evals.runner import Job

from agent_evals._gc import collecting_less
from agent_evals.errors import (
    EXIT_CANNOT_EVALUATE,
    EXIT_CONFIG,
    EXIT_GATE_FAILED,
    EXIT_OK,
    AgentEvalsError,
    ConfigError,
    Interrupted,
)
from agent_evals.limits import MAX_CONCURRENCY, MAX_COUNT, MAX_REPEAT, MAX_SEED
from agent_evals.outputs import write_output

app = typer.Typer(
    name="agent-evals",
    help="Put every prompt change behind an eval gate.",
    no_args_is_help=True,
    # --install-completion and --show-completion (bash, zsh, fish, PowerShell), typer's own.
    add_completion=True,
    # -h on every command: subcommands inherit the context settings of the group.
    context_settings={"help_option_names": ["-h", "--help"]},
    # Rich tracebacks print local variables, and API keys live in locals.
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich's own answer is exit 1, which reads as a failed gate: let `main` answer (141).
        self.quiet = True
        raise BrokenPipeError


def _console(stream: IO[str], *, stderr: bool = False) -> _Console:
    """A console for `stream`, coloured as NO_COLOR and FORCE_COLOR say (no-color.org, force-color.org)."""
    tty = stream.isatty()
    colour: dict[str, Any] = {}
    if os.environ.get("NO_COLOR"):
        # rich's own NO_COLOR handling keeps bold and dim; "no colour" means plain text here.
        colour = {"color_system": None}
    elif os.environ.get("FORCE_COLOR"):
        # rich reads FORCE_COLOR as "this is a terminal", which would animate progress bars
        # into CI logs: ask for colour alone and say what the stream really is.
        colour = {"color_system": "auto" if tty else "standard", "force_terminal": tty}
    # CI logs are not terminals; give tables room there instead of rich's 80 columns.
    return _Console(stderr=stderr, highlight=False, width=None if tty else 120, **colour)


class _Output:
    """The consoles of one command, as the global options made them (see the module docstring)."""

    # A plain class: `dataclasses` costs `--help` a twentieth of its time.
    __slots__ = ("always", "err", "note", "out", "quiet", "verbose")

    def __init__(self) -> None:
        self.out = _console(sys.stdout)
        self.note = _console(sys.stderr, stderr=True)
        self.err = _console(sys.stderr, stderr=True)
        self.always = _console(sys.stdout)
        self.quiet = self.verbose = False

    def set(self, *, quiet: bool, verbose: bool) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.out.quiet = self.note.quiet = quiet


_output = _Output()
out, note, err, always = _output.out, _output.note, _output.err, _output.always


def _reset_output() -> None:
    """New consoles for a command: the environment (NO_COLOR, ...) is read again, the options reset."""
    global _output, out, note, err, always
    _output = _Output()
    out, note, err, always = _output.out, _output.note, _output.err, _output.always


def _version(value: bool) -> None:
    if value:
        print(f"agent-evals {__version__}")
        raise typer.Exit()


Format = Literal["text", "json"]
FormatOpt = Annotated[
    Format, typer.Option("--format", help="text for people, json for programs (stdout is then only JSON).")
]


@app.callback()
def _main(
    directory: Annotated[
        Path | None, typer.Option("-C", "--directory", help="Run as if started in this directory.")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Print only errors and the verdict line.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "-v", "--verbose", help="Also say what runs and why, case by case: cache hits, retries, errors."
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("-V", "--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose cannot be used together", param_hint="'-q/-v'")
    _output.set(quiet=quiet, verbose=verbose)
    if directory is not None:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise ConfigError(
                f"cannot change to this directory ({exc.strerror})", path=directory, hint="check the -C path"
            ) from None


def _finite(value: float | None) -> float | None:
    """A number option's callback: infinity and NaN (`1e400`, `inf`, `nan`) are no bound or count."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


ShardOpt = Annotated[
    str | None, typer.Option("--shard", help="Run only shard I of N (I/N), e.g. one job of a CI matrix.")
]
Repeat = Annotated[
    int, typer.Option(min=1, max=MAX_REPEAT, help="Run each case K times (flakiness; repeats cached apart).")
]
MaxCost = Annotated[
    float | None,
    typer.Option(
        min=0, callback=_finite, help="Cost ceiling in USD: stop before a call could cross it (exit 3)."
    ),
]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Call the provider even for cached requests.")]
Trace = Annotated[
    Path | None, typer.Option(help="Write a JSON line per step (render, request, retry, response, grade).")
]
ReportMd = Annotated[
    Path | None, typer.Option("--report-md", help="Write the Markdown report (for a PR comment).")
]
ReportJunit = Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML.")]
ReportJson = Annotated[Path | None, typer.Option("--json", help="Write the full diff and verdict as JSON.")]
MaxRegressions = Annotated[
    int | None, typer.Option(min=0, max=MAX_COUNT, help="Override the gate: most cases allowed to regress.")
]
MinPassRate = Annotated[
    float | None,
    typer.Option(min=0, max=1, callback=_finite, help="Override the gate: candidate pass-rate floor."),
]
Alpha = Annotated[
    float | None, typer.Option(min=0, max=1, callback=_finite, help="Override the gate: significance level.")
]
MaxErrorRate = Annotated[
    float | None, typer.Option(min=0, max=1, callback=_finite, help="Override: above this, exit 3.")
]


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders to check (default: the project).")
    ] = None,
    format_: FormatOpt = "text",
) -> None:
    """Check prompts and eval sets: schema, graders, cases, templates. Exit 2 on any problem."""
    from agent_evals.load import find_root
    from agent_evals.validate import Validation, check

    try:
        # Found from any folder of the project, as git finds its repository; the paths given
        # stay relative to where the command was started.
        result = check(find_root(Path.cwd()), paths or [])
    except ConfigError as exc:
        if format_ == "text":
            raise
        # A program reading the JSON gets the problem in it, not an empty stdout.
        result = Validation(problems=[exc], prompts=0, evalsets=0, cases=0)
    if format_ == "json":
        _print_json(result.as_json())
    else:
        # Problems on stdout (pre-commit shows it), the tally on stderr.
        for problem in result.problems:
            print(problem.render())
    if result.problems:
        err.print(f"{len(result.problems)} problem(s) found")
        raise typer.Exit(EXIT_CONFIG)
    note.print(result.summary())


def _print_json(data: Any) -> None:
    """`--format json`: one JSON document on stdout, asked for by name, so --quiet does not mute it."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@app.command()
def run(
    prompt: Annotated[
        list[str] | None, typer.Option("--prompt", metavar="<id>", help="Only eval sets of this prompt id.")
    ] = None,
    evalset: Annotated[
        list[str] | None, typer.Option("--evalset", metavar="<id>", help="Only this eval set id.")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Use this provider instead of the prompt's.")] = None,
    model: Annotated[str | None, typer.Option(help="Use this model name instead of the prompt's.")] = None,
    concurrency: Annotated[
        int | None, typer.Option("-j", "--concurrency", min=1, max=MAX_CONCURRENCY, help="Calls in flight.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Record file (one eval set) or folder.")] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", metavar="<glob>", help="Only cases whose id or a tag matches (glob)."),
    ] = None,
    prompt_file: Annotated[
        Path | None, typer.Option(help="Run this prompt file in place of the project's prompt with its id.")
    ] = None,
    repeat: Repeat = 1,
    max_cost: MaxCost = None,
    no_cache: NoCache = False,
    trace: Trace = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Finish an interrupted run (its id, or its record) without redoing finished cases."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Estimate requests, tokens and cost; send nothing.")
    ] = False,
    shard: ShardOpt = None,
    watch_: Annotated[
        bool,
        typer.Option("--watch", help="Re-run what each saved edit affects and show what changed (cached)."),
    ] = False,
) -> None:
    """Run prompts on their eval sets, grade the outputs, write a run record."""
    from agent_evals import runner
    from agent_evals.load import load_project, with_prompt_file
    from agent_evals.report.terminal import dry_run_table, print_errors, print_run

    project = load_project(Path("."))
    register_url(project.config.history.url)
    if prompt_file is not None:
        project = with_prompt_file(project, prompt_file)
    selection: dict[str, Any] = {
        "filters": filter_ or [],
        "provider": provider,
        "model": model,
        "shard": shard,
    }
    previous = None
    if resume is not None:
        previous, recorded = runner.find_resume(project, resume)
        selection = {k: recorded.get(k) for k in ("filters", "provider", "model", "shard")}
        repeat = recorded["repeat"]
        max_cost = max_cost if max_cost is not None else recorded.get("max_cost_usd")
        evalset = list(previous)
    jobs = runner.plan(
        project,
        prompt_ids=prompt or (),
        evalset_ids=evalset or (),
        provider=selection["provider"],
        model=selection["model"],
        filters=selection["filters"] or (),
        shard=runner.Shard.parse(selection["shard"]) if selection["shard"] else None,
    )
    if previous is not None:
        runner.check_resume(jobs, previous, project.root, project.config)
    run_id = runner.new_run_id()
    options = runner.RunOptions(
        concurrency=concurrency or project.config.defaults.concurrency,
        retry=_retry_policy(project.config),
        output=output,
        repeat=repeat,
        max_cost_usd=max_cost if max_cost is not None else project.config.defaults.max_cost_usd,
        cache=project.config.defaults.cache and not no_cache,
        trace=trace,
        selection=selection,
        run_id=run_id,
    )
    if dry_run:
        out.print(dry_run_table(runner.dry_run(project, jobs, options)))
        return
    if watch_:
        from agent_evals.report.terminal import print_watch_update
        from agent_evals.watch import Selection, watch

        # The jobs above were planned to check the selection before watching; each round plans again.
        watched = Selection(
            prompt_ids=tuple(prompt or ()),
            evalset_ids=tuple(evalset or ()),
            provider=selection["provider"],
            model=selection["model"],
            filters=tuple(selection["filters"] or ()),
            shard=runner.Shard.parse(selection["shard"]) if selection["shard"] else None,
            prompt_file=prompt_file,
        )
        watch(Path("."), options, lambda update: print_watch_update(out, update), selection=watched)
        return
    # A shard is part of a run: the merged record is what goes into the history (`ci --records`).
    # A fresh run's cases go into the history as they finish; a resumed run's record after it.
    from agent_evals.history.follow import ProjectStore

    feed = None if selection["shard"] or previous is not None else ProjectStore(project.root, project.config)
    # What `--resume` takes to finish this run: the run it resumed, its --output, or its id.
    again = shlex.quote(resume if resume is not None else str(output) if output is not None else run_id)
    if prompt_file is not None:
        # The run ran this file in place of the project's prompt; resumed without it, it would not match.
        again += f" --prompt-file {shlex.quote(str(prompt_file))}"
    try:
        with _progress(jobs, repeat=options.repeat) as tick:
            outcomes = runner.run_sync(
                runner.execute(project, jobs, options, on_result=tick, resume=previous, history=feed)
            )
    except Interrupted:
        # Every finished case is on disk: say how to finish the run instead of starting again.
        err.print(
            f"the finished cases are saved; finish the run with: agent-evals run --resume {again}",
            # One line, never wrapped: the command in it is copied as it stands.
            markup=False,
            soft_wrap=True,
        )
        raise
    rows = [(o.job.prompt.id, o.job.evalset.id, o.tally.summary(), str(o.path)) for o in outcomes]
    print_run(out, rows)
    print_errors(err, [(o.job.evalset.id, o.tally.errors) for o in outcomes])
    history_failed = False
    if feed is not None:
        history_failed = _report_history([o.history for o in outcomes])
    elif previous is not None:
        from agent_evals.history.ingest import import_record_file

        def write(store: Store) -> list[Imported]:
            return [import_record_file(store, o.path) for o in outcomes]

        history_failed = _record_history(project.root, project.config, write)
    stopped = next((o.stopped for o in outcomes if o.stopped is not None), None)
    if stopped is not None:
        # The provider is down or misconfigured: say so once, and exit as the cause says
        # (2: a key or model to fix; 3: a provider that cannot be reached).
        err.print(
            f"{runner.stopped_line(stopped)}; the other cases were not sent", markup=False, soft_wrap=True
        )
        raise typer.Exit(stopped.exit_code)
    skipped = sum(s.skipped for _, _, s, _ in rows)
    errors = sum(s.errors for _, _, s, _ in rows)
    if skipped:
        spent = sum(s.cost_usd or 0.0 for _, _, s, _ in rows)
        ran = sum(s.cases - s.skipped for _, _, s, _ in rows)
        err.print(
            f"stopped at the cost ceiling (${options.max_cost_usd:g}): {ran} of {ran + skipped} case runs done, "
            f"${spent:.4f} spent, {skipped} skipped; finish with --resume {again} --max-cost N",
            # One line, never wrapped: the command in it is copied as it stands.
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_CANNOT_EVALUATE)
    if errors:
        err.print(f"{errors} case(s) could not be evaluated (see the errors above)")
        raise typer.Exit(EXIT_CANNOT_EVALUATE)
    if history_failed:
        raise typer.Exit(EXIT_CONFIG)


@app.command()
def review(
    record: Annotated[
        Path | None, typer.Argument(help="Run record to review (default: the newest of the eval set).")
    ] = None,
    evalset: Annotated[
        str | None, typer.Option("--evalset", help="Eval set whose newest record to review.")
    ] = None,
) -> None:
    """Walk through grades that need a person; store each verdict beside the eval set."""
    from agent_evals.review import run_review

    # Its questions are asked even with --quiet: an interactive command that prints nothing would hang.
    # It says what it saved, and where (or that there was nothing to review).
    run_review(Path("."), record, evalset, console=always)


cache_app = typer.Typer(help="The response cache (.agent-evals/cache.sqlite3).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("stats")
def cache_stats(format_: FormatOpt = "text") -> None:
    """Entries, size, and what models they are for."""
    from agent_evals.cache import DEFAULT_CACHE_PATH, ResponseCache
    from agent_evals.report.terminal import cache_table

    with ResponseCache(DEFAULT_CACHE_PATH) as cache:
        stats = cache.stats()
    if format_ == "json":
        _print_json(_cache_json(stats, DEFAULT_CACHE_PATH))
    else:
        out.print(cache_table(stats))


def _cache_json(stats: CacheStats, path: Path) -> dict[str, Any]:
    """`cache stats --format json` (schema_version 1; README, "Machine-readable output")."""
    return {
        "schema_version": 1,
        "path": str(path),
        "entries": stats.entries,
        "text_bytes": stats.text_bytes,
        "file_bytes": stats.file_bytes,
        "oldest": stats.oldest.isoformat() if stats.oldest else None,
        "newest": stats.newest.isoformat() if stats.newest else None,
        "models": [
            {"provider": provider, "model": model, "entries": count}
            for (provider, model), count in sorted(stats.per_model.items())
        ],
    }


@cache_app.command("clear")
def cache_clear(
    older_than_days: Annotated[
        float | None, typer.Option(min=0, callback=_finite, help="Only entries older than this.")
    ] = None,
) -> None:
    """Delete cached responses (all, or the old ones)."""
    from agent_evals.cache import DEFAULT_CACHE_PATH, ResponseCache

    with ResponseCache(DEFAULT_CACHE_PATH) as cache:
        removed = cache.clear(older_than_days=older_than_days)
    out.print(f"removed {removed} cached response(s)")


@contextmanager
def _progress(jobs: Sequence[Job] = (), *, repeat: int = 1) -> Iterator[Callable[[Job, CaseResult], None]]:
    """The progress bar of a run (muted by --quiet); with --verbose, a line per job and per finished case."""
    from agent_evals.report.terminal import progress

    bar = nullcontext(_ignore) if _output.quiet else progress(note, jobs, repeat=repeat)
    with bar as tick:
        if not _output.verbose:
            yield tick
            return
        seen: set[int] = set()

        def on_result(job: Job, result: CaseResult) -> None:
            if id(job) not in seen:
                seen.add(id(job))
                note.print(_job_line(job, repeat), markup=False, soft_wrap=True)
            note.print(_case_line(job, result, repeat), markup=False, soft_wrap=True)
            tick(job, result)

        for job in jobs:
            seen.add(id(job))
            note.print(_job_line(job, repeat), markup=False, soft_wrap=True)
        yield on_result


def _ignore(job: Job, result: CaseResult) -> None:
    pass


def _job_line(job: Job, repeat: int) -> str:
    """--verbose: what one job runs, on what (`ci` learns its jobs only as they run)."""
    model = job.prompt.model.name
    times = f" x {repeat} repeats" if repeat > 1 else ""
    return f"running {job.evalset.id} (prompt {job.prompt.id}) on {job.provider} / {model or '-'}: {len(job.indexes)} case(s){times}"


def _case_line(job: Job, result: CaseResult, repeat: int) -> str:
    """--verbose: one finished case, and how it was answered (cache, retries)."""
    how = []
    if result.cached:
        how.append("from the cache")
    elif result.attempts > 1:
        how.append(f"retried: {result.attempts} attempts")
    if result.latency_ms is not None and not result.cached:
        how.append(f"{result.latency_ms:,.0f} ms")
    if result.truncated:
        how.append(f"truncated ({result.finish_reason})")
    name = f"{job.evalset.id}/{result.case_id}" + (f" #{result.repeat + 1}" if repeat > 1 else "")
    line = f"  {name}: {result.status}" + (f" ({', '.join(how)})" if how else "")
    return line + (f": {result.error}" if result.error else "")


def _publish(
    report: GateReport,
    md: Path | None,
    junit: Path | None,
    json_path: Path | None,
    *,
    extra_markdown: str = "",
    annotations: bool = False,
) -> int:
    """Write the reports asked for, then print the gate to the terminal; return the exit code.

    Files first: a reader that closes the pipe early (`agent-evals ci | head`) ends the
    process with SIGPIPE, and the reports CI uploads and comments with must exist by then.
    """
    from agent_evals.report import json_report, markdown
    from agent_evals.report import junit as junit_report
    from agent_evals.report.terminal import print_gate

    text = markdown.render(report) + ("\n" + extra_markdown if extra_markdown else "")
    renderers: dict[Path | None, tuple[str, str, Callable[[GateReport], str]]] = {
        md: ("the Markdown report", "--report-md", lambda _: text),
        junit: ("the JUnit report", "--junit", junit_report.render),
        json_path: ("the JSON report", "--json", json_report.render),
    }
    for path, (what, option, render) in renderers.items():
        if path is not None:
            write_output(path, scrub(render(report)), what=what, fix=f"pass a writable {option} path")
    markdown.append_step_summary(scrub(text))
    if annotations:
        from agent_evals.report import annotations as github_annotations

        sys.stdout.write(github_annotations.render(report))
    if _output.quiet:
        always.print(report.headline(), style=f"bold {'green' if report.status == 'pass' else 'red'}")
    else:
        print_gate(out, report)
    return report.exit_code


@app.command("diff")
def diff_cmd(
    base: Annotated[Path, typer.Argument(help="The baseline run record.")],
    candidate: Annotated[Path, typer.Argument(help="The candidate run record.")],
    report_md: ReportMd = None,
    junit: ReportJunit = None,
    json_path: ReportJson = None,
    max_regressions: MaxRegressions = None,
    min_pass_rate: MinPassRate = None,
    alpha: Alpha = None,
    max_error_rate: MaxErrorRate = None,
    accept_policy_change: Annotated[
        bool,
        typer.Option(
            help="Cases missing from the candidate run are intended (reviewed): do not fail on them."
        ),
    ] = False,
) -> None:
    """Compare two run records case by case and gate the candidate. Exit 1 on regression."""
    from agent_evals.compare import compare_records
    from agent_evals.load import root_or_here

    overrides = {
        "max_regressions": max_regressions,
        "min_pass_rate": min_pass_rate,
        "alpha": alpha,
        "max_error_rate": max_error_rate,
    }
    report = compare_records(
        base,
        candidate,
        root_or_here(Path(".")),
        overrides=overrides,
        accept_policy_change=accept_policy_change,
    )
    report = _with_freshness(report)
    code = _publish(report, report_md, junit, json_path)
    raise typer.Exit(_gate_history(report, code))


@app.command()
def ci(
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Gate changes since the merge-base with this ref, or `auto`: the branch's upstream, "
            "else origin/HEAD, origin/main, main.",
        ),
    ] = None,
    baseline_dir: Annotated[
        Path | None,
        typer.Option(help="Compare with run records committed here instead of re-running the baseline."),
    ] = None,
    accept_policy_change: Annotated[
        bool,
        typer.Option(help="The change loosens the gate on purpose (reviewed): use the candidate's policy."),
    ] = False,
    concurrency: Annotated[
        int | None, typer.Option("-j", "--concurrency", min=1, max=MAX_CONCURRENCY, help="Calls in flight.")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Run both sides on this provider.")] = None,
    model: Annotated[str | None, typer.Option(help="Run both sides on this model name.")] = None,
    report_md: ReportMd = None,
    junit: ReportJunit = None,
    json_path: ReportJson = None,
    max_regressions: MaxRegressions = None,
    min_pass_rate: MinPassRate = None,
    alpha: Alpha = None,
    max_error_rate: MaxErrorRate = None,
    repeat: Repeat = 1,
    max_cost: MaxCost = None,
    no_cache: NoCache = False,
    trace: Trace = None,
    shard: ShardOpt = None,
    output: Annotated[Path | None, typer.Option(help="Folder for the run records (base/ and cand/).")] = None,
    records: Annotated[
        Path | None,
        typer.Option(help="Gate merged shard records (RECORDS/base, RECORDS/cand) instead of running."),
    ] = None,
    annotations: Annotated[
        bool,
        typer.Option(help="Print GitHub Actions ::error annotations at the eval set lines of regressions."),
    ] = False,
    with_readiness: Annotated[
        bool,
        typer.Option("--readiness", help="Add the production-readiness scorecard to the Markdown report."),
    ] = False,
) -> None:
    """Gate every prompt and eval set changed since BASE: run baseline and candidate, diff, gate."""
    from agent_evals.ci import CiOptions, run_ci
    from agent_evals.load import load_config
    from agent_evals.runner import RunOptions, Shard, run_sync

    config = load_config(Path("."))
    register_url(config.history.url)
    options = CiOptions(
        base_ref=base,
        baseline_dir=baseline_dir,
        accept_policy_change=accept_policy_change,
        overrides={
            "max_regressions": max_regressions,
            "min_pass_rate": min_pass_rate,
            "alpha": alpha,
            "max_error_rate": max_error_rate,
        },
        run=RunOptions(
            concurrency=concurrency or config.defaults.concurrency,
            retry=_retry_policy(config),
            repeat=repeat,
            max_cost_usd=max_cost if max_cost is not None else config.defaults.max_cost_usd,
            cache=config.defaults.cache and not no_cache,
            trace=trace,
            output=output,
        ),
        provider=provider,
        model=model,
        shard=Shard.parse(shard) if shard else None,
        records=records,
    )
    try:
        with _progress(repeat=repeat) as tick:
            report = run_ci(Path("."), options, on_result=tick, runner=run_sync)
    except Interrupted:
        # ci has no --resume: its records are rewritten each time, but no answer is bought twice.
        if options.run.cache:
            err.print(
                "the model answers received are in the response cache: the same command again does not "
                "send them again",
                markup=False,
                soft_wrap=True,
            )
        raise
    if (base == "auto" or _output.verbose) and report.base_ref:
        # A hook on a developer's machine chose the base itself: say which, so a surprise is visible.
        merge_base = f" (merge-base {report.merge_base[:8]})" if report.merge_base else ""
        note.print(f"--base {base}: gating against {report.base_ref}{merge_base}", markup=False)
    if _output.verbose:
        for pair in report.pairs:
            why = f"{pair.prompt_id}/{pair.evalset_id}: gated as {pair.change}"
            note.print(why + (f" ({pair.note})" if pair.note else ""), markup=False, soft_wrap=True)
    if options.shard is not None:
        out.print(report.message)
        raise typer.Exit(EXIT_OK)
    extra = ""
    if with_readiness:
        from agent_evals import readiness as ready

        ids = sorted({p.prompt_id for p in report.pairs if p.change != "deleted"})
        extra = ready.markdown(ready.scorecards(Path("."), ids)) if ids else ""
    report = _with_freshness(report)
    code = _publish(report, report_md, junit, json_path, extra_markdown=extra, annotations=annotations)
    if report.config_error is not None:
        err.print(f"{report.config_error}; the other cases were not sent", markup=False)
    raise typer.Exit(_gate_history(report, code))


history_app = typer.Typer(
    help="The history store: what every run, diff and ci did, over time (SQLite, or PostgreSQL for a team).",
)
app.add_typer(history_app, name="history")


@history_app.command("import")
def history_import(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Run records (.jsonl), gate reports (diff/ci --json) or folders of them."),
    ],
    pr: Annotated[
        int | None,
        typer.Option("--pr", min=1, max=MAX_COUNT, help="The pull request the reports' verdicts belong to."),
    ] = None,
) -> None:
    """Load run records and gate verdicts (CI artifacts, shard records) into the history, skipping what it has."""
    from agent_evals.history.ingest import import_paths

    root, config = _history_project()
    counts: dict[tuple[str, str], int] = {}

    def done(item: Imported) -> None:
        counts[item.kind, item.outcome] = counts.get((item.kind, item.outcome), 0) + 1
        _plain(item.line())

    with _open_history(root, config) as store:
        import_paths(store, paths, pr=pr, on_done=done)
        shown = store.target.shown
    tally = ", ".join(
        f"{counts.get((kind, outcome), 0)} {kind}(s) {outcome}"
        for kind in ("run", "verdict")
        for outcome in ("added", "updated", "skipped")
        if counts.get((kind, outcome)) or outcome != "updated"
    )
    note.print(f"history {shown}: {tally}", markup=False, soft_wrap=True)


LiveFromOpt = Annotated[
    Literal["auto", "merges", "deploys"],
    typer.Option(
        "--live-from",
        help="When each version was live: merges on the deploy branch, the times told to "
        "'history deploy', or auto (deploys when there are any, else merges).",
    ),
]
DeployBranchOpt = Annotated[
    str | None,
    typer.Option("--base", help="The branch you deploy from (default: origin/HEAD, origin/main, main...)."),
]


HistoryPromptOpt = Annotated[
    list[str] | None,
    typer.Option("--prompt", metavar="<id>", help="Only this prompt id (repeatable; default: every prompt)."),
]
HistoryEvalsetOpt = Annotated[
    str | None, typer.Option("--evalset", help="Only runs and verdicts of this eval set.")
]


@history_app.callback(invoke_without_command=True)
def history(
    ctx: typer.Context,
    prompt: HistoryPromptOpt = None,
    evalset: HistoryEvalsetOpt = None,
    live_from: LiveFromOpt = "auto",
    base: DeployBranchOpt = None,
    fmt: FormatOpt = "text",
) -> None:
    """Per prompt: its versions in order (pass rate with its interval, cost and latency per case,
    steps, flaky cases), each gate verdict, and its business metric while each version was live."""
    if ctx.invoked_subcommand is not None:
        return
    from agent_evals.history.query import document

    root, config = _history_project()
    with _open_history(root, config) as store:
        histories = _histories(store, root, prompt, evalset, live_from, base)
        shown = store.target.shown
    if fmt == "json":
        _print_json(document(histories, shown))
        return
    from agent_evals.report.history import print_history

    print_history(out, histories, shown)


def _histories(
    store: Store,
    root: Path,
    prompts: list[str] | None,
    evalset: str | None,
    live_from: Literal["auto", "merges", "deploys"],
    base: str | None,
) -> list[PromptHistory]:
    """Each prompt's history, with what the project's files add (owner, file, eval sets' metrics)."""
    from agent_evals.history.query import prompt_history, prompt_ids

    known = prompt_ids(store)
    wanted = list(dict.fromkeys(prompts)) if prompts else known
    missing = [p for p in wanted if p not in known]
    if missing:
        raise ConfigError(
            f"no runs of prompt {', '.join(repr(m) for m in missing)} in the history {store.target.shown}",
            hint=f"known: {', '.join(known) or 'none yet'}; 'agent-evals history import' loads CI artifacts",
        )
    project = _project_quietly(root)
    found = []
    for prompt_id in wanted:
        files = _prompt_files(project, prompt_id)
        found.append(
            prompt_history(
                store,
                prompt_id,
                evalset=evalset,
                root=root,
                prompt_path=files.path,
                owner=files.prompt.owner.model_dump() if files.prompt else None,
                metrics=list(files.metrics),
                live_from=live_from,
                branch=base,
            )
        )
    return found


def _project_quietly(root: Path) -> Project | None:
    """The project's files for what they add to the history; a broken file only loses that."""
    from agent_evals.load import load_project

    try:
        return load_project(root)
    except ConfigError:
        return None


@dataclass(frozen=True)
class _PromptFiles:
    """What a prompt's files add to its history: the prompt (owner, on-call), its file as an absolute
    path (for the merges that made its versions live), and its eval sets' business metrics."""

    prompt: Prompt | None
    path: str | None
    metrics: dict[str, Literal["higher", "lower"]]


def _prompt_files(project: Project | None, prompt_id: str) -> _PromptFiles:
    prompt = project.prompts.get(prompt_id) if project else None
    metrics = {
        e.metric: e.metric_direction
        for e in (project.evalsets.values() if project else ())
        if e.prompt == prompt_id and e.metric
    }
    path = str(Path(prompt.source_path).absolute()) if prompt and prompt.source_path else None
    return _PromptFiles(prompt, path, metrics)


@history_app.command("deploy")
def history_deploy(
    prompt: Annotated[str, typer.Argument(help="The prompt id.")],
    version: Annotated[str, typer.Argument(help="The prompt's version: string that went live.")],
    at: Annotated[str, typer.Option("--at", help="When it went live: ISO 8601, e.g. 2026-11-02T14:00Z.")],
    commit: Annotated[str | None, typer.Option("--commit", help="The commit that was deployed.")] = None,
) -> None:
    """Record when a prompt version went live, for teams whose deploys are not their merges."""
    from agent_evals.history.metrics import add_deploy, parse_time

    try:
        when = parse_time(at)
    except (ValueError, OverflowError):
        raise ConfigError(
            f"--at {at[:40]!r} is not an ISO 8601 date or time", hint="e.g. 2026-11-02T14:00Z"
        ) from None
    root, config = _history_project()
    with _open_history(root, config) as store:
        new = add_deploy(store, prompt, version, when, commit=commit)
    what = "recorded" if new else "replaced"
    note.print(
        f"{what}: {prompt} version {version} live from {when.isoformat()}Z", markup=False, soft_wrap=True
    )


metric_app = typer.Typer(
    help="The business metric an eval set protects: its values over time, beside the prompt's versions.",
    no_args_is_help=True,
)
app.add_typer(metric_app, name="metric")


@metric_app.command("add")
def metric_add(
    name: Annotated[str, typer.Argument(help="The metric: the name an eval set's `metric:` gives.")],
    value: Annotated[str, typer.Argument(help="Its value, a number.")],
    at: Annotated[str, typer.Option("--at", help="When: ISO 8601, e.g. 2026-11-02 or 2026-11-02T14:00Z.")],
) -> None:
    """Record one value of a business metric at a time (a later value at the same time replaces it)."""
    from agent_evals.history.metrics import add_points, point

    found = point(name, value, at)
    root, config = _history_project()
    with _open_history(root, config) as store:
        added, _ = add_points(store, [found], source="metric add")
    what = "added" if added else "replaced"
    note.print(
        f"{what}: {found.name} = {found.value:g} at {found.at.isoformat()}Z", markup=False, soft_wrap=True
    )


@metric_app.command("import")
def metric_import(
    path: Annotated[Path, typer.Argument(help="A CSV file with a header row: metric,at,value.")],
    metric: Annotated[
        str | None, typer.Option("--metric", help="The metric's name, when the file has no metric column.")
    ] = None,
) -> None:
    """Load a business metric's values from a CSV export (your warehouse's), replacing the times it repeats."""
    from agent_evals.history.metrics import add_points, read_csv

    points = read_csv(path, metric)
    root, config = _history_project()
    with _open_history(root, config) as store:
        added, replaced = add_points(store, points, source=str(path))
        shown = store.target.shown
    names = sorted({p.name for p in points})
    note.print(
        f"history {shown}: {added} point(s) added, {replaced} replaced ({', '.join(names) or 'none'})",
        markup=False,
        soft_wrap=True,
    )


@app.command()
def dashboard(
    html: Annotated[Path, typer.Option("--html", help="Write the page here (one self-contained file).")],
    prompt: HistoryPromptOpt = None,
    evalset: HistoryEvalsetOpt = None,
    live_from: LiveFromOpt = "auto",
    base: DeployBranchOpt = None,
) -> None:
    """The owner's page: per prompt, pass rate per version over time, gate verdicts, cost, latency,
    steps, flaky cases, judge calibration, and the business metric with each version's live period."""
    from agent_evals.history.query import document
    from agent_evals.report.dashboard import render

    root, config = _history_project()
    with _open_history(root, config) as store:
        histories = _histories(store, root, prompt, evalset, live_from, base)
        shown = store.target.shown
    page = scrub(render(document(histories, shown)))
    write_output(html, page, what="the dashboard", fix="pass a writable --html path")
    note.print(f"dashboard: {html} ({len(histories)} prompt(s))", markup=False, soft_wrap=True)


@app.command()
def verify(
    prompt: Annotated[str, typer.Argument(help="The prompt id.")],
    version: Annotated[
        str | None, typer.Option("--version", help="The version to check (default: the one live now).")
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=366, help="Days on each side of going live.")
    ] = 14,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0.001, max=0.2, callback=_finite, help="The level of a drop.")
    ] = 0.05,
    live_from: LiveFromOpt = "auto",
    base: DeployBranchOpt = None,
    fmt: FormatOpt = "text",
) -> None:
    """After the merge: did the version that went live move production's pass rate and the business
    metric, with intervals, beside what the gate predicted on the eval set? Pages the on-call on a drop."""
    from agent_evals.verify import verify as run_verify

    root, config = _history_project()
    files = _prompt_files(_project_quietly(root), prompt)
    with _open_history(root, config) as store:
        result = run_verify(
            store,
            prompt,
            version=version,
            root=root,
            prompt_path=files.path,
            metrics=files.metrics,
            days=days,
            alpha=alpha,
            live_from=live_from,
            branch=base,
        )
        sent = _page(store, config, files.prompt, result.check)
    if fmt == "json":
        from agent_evals.verify import as_json

        _print_json({**as_json(result), "alert": sent})
    else:
        from agent_evals.report.checks import headline, print_verification

        # The verdict line goes where `-q` still prints it, as monitor's does.
        always.print(headline(result), soft_wrap=True)
        print_verification(out, result, sent)
    raise typer.Exit(EXIT_GATE_FAILED if result.check.status == "drop" else EXIT_OK)


def _page(store: Store, config: ProjectConfig, prompt: Prompt | None, check: Check) -> dict[str, Any] | None:
    """Store the check and page the prompt's on-call for a drop, or resolve a recovered incident
    (`alerts.page`); without the prompt's file (its owner and on-call) the check is only stored.

    Raises:
        EvaluationError: the receiver stayed down (exit 3; the check is in the history).
    """
    from agent_evals.checks import store_check

    if prompt is None:
        store_check(store, check)
        return None
    from agent_evals.alerts import page

    return page(store, config.alerts, prompt, check, retry=_retry_policy(config), on_retry=_remark)


alert_app = typer.Typer(
    help="Pages to a prompt's on-call (alerts: in agent-evals.yaml): PagerDuty or a Slack-style webhook.",
    no_args_is_help=True,
)
app.add_typer(alert_app, name="alert")


@alert_app.command("test")
def alert_test(
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help="Page this prompt's on-call channels (default: every channel)."),
    ] = None,
) -> None:
    """Send a test event: PagerDuty gets a trigger (severity info) and its resolve, a webhook one message."""
    from agent_evals import alerts
    from agent_evals.load import load_project

    root, config = _history_project()
    found = None
    if prompt is not None:
        project = load_project(root)
        found = project.prompts.get(prompt)
        if found is None:
            project.raise_errors()
            known = ", ".join(sorted(project.prompts)) or "none"
            raise ConfigError(f"--prompt {prompt}: no such prompt", hint=f"prompts: {known}")
    deliveries = alerts.send_test(config.alerts, found, retry=_retry_policy(config), on_retry=_remark)
    for delivery in deliveries:
        if delivery.ok:
            out.print(delivery.line(), markup=False, soft_wrap=True)
    alerts.raise_for(deliveries)


# A production log window (monitor, freshness): one definition of each option.
SinceOpt = Annotated[
    str | None, typer.Option(help="Window start, ISO 8601 (default: window_days before --until).")
]
UntilOpt = Annotated[
    str | None,
    typer.Option(help="Window end, exclusive, ISO 8601 (default: the midnight after the newest row)."),
]
LogMapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        metavar="<target=field>",
        help="TARGET=FIELD, repeatable, as sample takes it (replaces the eval set's map).",
    ),
]
LogMapFileOpt = Annotated[
    Path | None,
    typer.Option("--map-file", help="YAML: map: {TARGET: FIELD} (replaces the eval set's map)."),
]
LogFormatOpt = Annotated[
    str | None,
    typer.Option("--log-format", help="jsonl, csv, parquet or otel (default: from the file name)."),
]


@app.command()
def monitor(
    log: Annotated[
        Path,
        typer.Argument(
            help="The production log: .jsonl, .csv or .parquet (JSONL and CSV may be .gz), or otel."
        ),
    ],
    prompt: Annotated[str, typer.Option("--prompt", help="The prompt whose live version answered the log.")],
    evalset: Annotated[
        str | None,
        typer.Option(
            "--evalset", help="The eval set whose graders and monitor: policy apply (default: the one)."
        ),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    map_: LogMapOpt = None,
    map_file: LogMapFileOpt = None,
    log_format: LogFormatOpt = None,
    fmt: FormatOpt = "text",
) -> None:
    """Grade a window of production logs with the eval set's graders, compare it with the previous window
    and the one before the version went live, store it, and page the on-call on a significant drop.
    Exit 0 fine or cannot tell, 1 a significant drop, 2 configuration, 3 could not evaluate."""
    from agent_evals import monitor as mon
    from agent_evals.sampling import parse_map_args, window_bound

    root, config = _history_project()
    result = mon.monitor(
        root,
        log,
        prompt,
        evalset_id=evalset,
        since=window_bound(since, "--since"),
        until=window_bound(until, "--until"),
        mapping=parse_map_args(map_ or []),
        map_file=map_file,
        log_format=log_format,
        retry=_retry_policy(config),
        on_retry=_remark,
    )
    if fmt == "json":
        _print_json(mon.as_json(result))
    else:
        mon.print_summary(out, result)
        always.print(result.check.headline, markup=False, soft_wrap=True)
    if result.alert_error is not None:
        raise result.alert_error
    raise typer.Exit(result.exit_code)


@app.command()
def freshness(
    log: Annotated[
        Path,
        typer.Argument(
            help="The production log (the formats monitor reads), mapped by the eval set's monitor:."
        ),
    ],
    evalset: Annotated[str, typer.Option("--evalset", help="The eval set to hold up against the traffic.")],
    since: SinceOpt = None,
    until: UntilOpt = None,
    map_: LogMapOpt = None,
    map_file: LogMapFileOpt = None,
    log_format: LogFormatOpt = None,
    min_per_stratum: Annotated[
        int,
        typer.Option(
            "--min-per-stratum", min=1, max=MAX_COUNT, help="The fewest cases each stratum should have."
        ),
    ] = 5,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when the eval set is stale (require it in CI).")
    ] = False,
    fmt: FormatOpt = "text",
) -> None:
    """Hold an eval set up against a window of production traffic: strata and text clusters it misses,
    the share of traffic it does not cover, and the `sample --append` command that fills the gap."""
    import datetime as dt

    from agent_evals import freshness as fresh
    from agent_evals.sampling import parse_map_args, window_bound

    root, config = _history_project()
    with _open_history(root, config) as store:
        check = fresh.run(
            root,
            log,
            evalset,
            now=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            since=window_bound(since, "--since"),
            until=window_bound(until, "--until"),
            mapping=parse_map_args(map_ or []),
            map_file=map_file,
            log_format=log_format,
            min_per_stratum=min_per_stratum,
            store=store,
        )
    if fmt == "json":
        _print_json(fresh.as_json(check))
    else:
        fresh.print_check(out, check)
        always.print(check.headline, markup=False, soft_wrap=True)
    if strict and check.status == "stale":
        raise typer.Exit(EXIT_GATE_FAILED)


def _history_project() -> tuple[Path, ProjectConfig]:
    """The project whose history `diff`, `ci` and `history` use: found from here, else here."""
    from agent_evals.load import find_root, load_config

    try:
        root = find_root(Path.cwd())
    except ConfigError:
        root = Path.cwd()
    return root, load_config(root)


def _open_history(root: Path, config: ProjectConfig) -> Store:
    from agent_evals.history.follow import ProjectStore

    return ProjectStore(root, config)()


def _report_history(written: Sequence[Imported | ConfigError | None]) -> bool:
    """What writing the history did (a command's writes, or a run's feeds): each store error once
    on stderr, and True when there was one; with --verbose, a line per run or verdict written."""
    failed = False
    shown: set[str] = set()
    for item in written:
        if isinstance(item, ConfigError):
            failed = True
            line = item.render()
            if line not in shown:
                shown.add(line)
                err.print(line, markup=False, soft_wrap=True)
        elif item is not None and _output.verbose:
            note.print(f"history: {item.line()}", markup=False, soft_wrap=True)
    return failed


def _record_history(root: Path, config: ProjectConfig, write: Callable[[Store], list[Imported]]) -> bool:
    """Write what a command did into the history, after its records and reports are on disk.

    A store that cannot be used is one line on stderr, and True: the command then exits 2
    unless it already failed for a reason of its own (history never hides a gate's result).
    """
    try:
        with _open_history(root, config) as store:
            written: list[Imported | ConfigError] = list(write(store))
    except ConfigError as exc:
        written = [exc]
    return _report_history(written)


def _with_freshness(report: GateReport) -> GateReport:
    """Each pair's eval set's latest freshness check from the history, for the PR comment to name a
    stale one. Reading only: a store that is missing or cannot be used leaves the report as it is
    (`_gate_history` reports the store's problem once, after the report is written)."""
    if not report.pairs:
        return report
    from agent_evals.freshness import attach
    from agent_evals.history.store import open_store, resolve_url

    try:
        root, config = _history_project()
        target = resolve_url(root, config)
        if target.url.get_backend_name() == "sqlite" and not Path(target.url.database or "").is_file():
            return report  # no history yet: nothing was ever checked
        with open_store(target) as store:
            return attach(report, store)
    except ConfigError:
        return report


def _gate_history(report: GateReport, code: int) -> int:
    """`diff` and `ci`: the pairs' runs and verdicts into the history; the exit code after it."""
    if not report.pairs:
        return code
    from agent_evals.history.ingest import add_gate_report

    try:
        root, config = _history_project()
    except ConfigError as exc:
        err.print(exc.render(), markup=False, soft_wrap=True)
        return code or EXIT_CONFIG
    failed = _record_history(root, config, lambda store: add_gate_report(store, report, pr=_pull_request()))
    return (code or EXIT_CONFIG) if failed else code


def _pull_request() -> int | None:
    """The PR this build is for, when GitHub Actions says (its verdicts link to it), else None."""
    if not (os.environ.get("GITHUB_EVENT_PATH") or os.environ.get("GITHUB_REF")):
        return None
    from agent_evals.github import find_pull_request

    try:
        return find_pull_request(os.environ).number
    except ConfigError:
        return None


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="The repository to set up (default: here).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite the files init writes.")] = False,
) -> None:
    """Set up agent-evals: config, an example prompt and eval set, pre-commit hooks, a CI workflow."""
    from agent_evals import scaffold, schema

    # Plain print: the pre-commit snippet's regexes must not be read as rich markup.
    for path in scaffold.init(directory, force=force):
        _plain(f"wrote {path}")
    # The JSON Schemas the files' `# yaml-language-server: $schema=` lines point at, for editors.
    for path in schema.write(directory / "schemas"):
        _plain(f"wrote {path}")
    snippet = scaffold.precommit_snippet(directory)
    if snippet is not None:
        # What init could not do itself: shown even with --quiet.
        print(
            f"{directory / scaffold.PRECOMMIT_CONFIG} exists; add these hooks under its `repos:`:\n{snippet}"
        )
    if scaffold.repository_root(directory) is None:
        # The gate compares a change with its base in git; without a repository it has nothing to gate.
        print(
            f"note: {directory} is not in a git repository; run 'git init' there: the gate (agent-evals ci, "
            "the pre-commit hooks, the workflow) compares each change with git history",
            file=sys.stderr,
        )
    if scaffold.action_ref() is None:
        print(f"note: {scaffold.ACTION_UNKNOWN_NOTE}", file=sys.stderr)
    _plain("next: git add -A && git commit -m 'agent-evals init'; agent-evals run; pre-commit install")


def _remark(text: str) -> None:
    """A note on stderr as it happens, muted by --quiet: a retry's wait (up to a minute when
    rate-limited) is said, not silent. Plain print: what a server answered is not rich markup."""
    if not _output.quiet:
        print(f"note: {text}", file=sys.stderr, flush=True)


def _plain(line: str) -> None:
    """A result line printed as it is (a path, a URL, YAML: no markup, no wrapping); muted by --quiet."""
    if not _output.quiet:
        print(line)


@app.command("comment")
def comment_cmd(
    report: Annotated[
        Path, typer.Option("--report", help="The Markdown report (agent-evals ci --report-md).")
    ],
    pr: Annotated[
        int | None,
        typer.Option(
            "--pr", min=1, max=MAX_COUNT, help="PR number (default: from the GitHub Actions event)."
        ),
    ] = None,
    repo: Annotated[
        str | None, typer.Option("--repo", help="owner/name (default: GITHUB_REPOSITORY).")
    ] = None,
) -> None:
    """Post the report as one PR comment, updated in place on later runs."""
    from agent_evals.github import comment

    result = comment(report, os.environ, pr=pr, repo=repo, on_note=_remark)
    # Plain print: a URL or a note must not be read as rich markup.
    _plain(f"{result.action} comment {result.id}: {result.url}")


@app.command()
def calibrate(
    evalset: Annotated[str, typer.Argument(help="The eval set: its id, or its YAML file.")],
    record: Annotated[
        list[Path] | None,
        typer.Option(
            "--record",
            metavar="<path>",
            help="A run record to read; repeat for more (default: the eval set's records).",
        ),
    ] = None,
    grader: Annotated[str | None, typer.Option("--grader", help="Only this judge grader.")] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when a judge is below its calibration floor.")
    ] = False,
) -> None:
    """Compare LLM judges' verdicts with the human verdicts stored by `review`: agreement, kappa, corrected rate."""
    from agent_evals.calibrate import run_calibrate

    raise typer.Exit(
        run_calibrate(Path("."), evalset, record or (), grader=grader, strict=strict, console=out)
    )


@app.command("report")
def report_cmd(
    run: Annotated[Path, typer.Argument(help="The run record to show.")],
    html_path: Annotated[
        Path, typer.Option("--html", help="Write one self-contained HTML page (opens from a CI artifact).")
    ],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Compare with this baseline run record.")
    ] = None,
) -> None:
    """Show a run, or baseline vs candidate, as one HTML page with charts, filters and word diffs."""
    from agent_evals.compare import compare_records, single_run_report
    from agent_evals.load import root_or_here
    from agent_evals.report import html

    # A viewer, not a gate: `diff` and `ci` decide exit codes.
    root = root_or_here(Path("."))
    report = compare_records(baseline, run, root) if baseline is not None else single_run_report(run, root)
    write_output(
        html_path, scrub(html.render(report)), what="the HTML report", fix="pass a writable --html path"
    )
    out.print(f"wrote {html_path}")


@app.command()
def sample(
    log: Annotated[
        Path, typer.Argument(help="The production log: .jsonl, .csv or .parquet (JSONL and CSV may be .gz).")
    ],
    prompt: Annotated[str, typer.Option("--prompt", help="The id of the prompt the eval set exercises.")],
    n: Annotated[
        int,
        typer.Option("--n", min=1, max=MAX_COUNT, help="Rows to sample (with --append: new rows to add)."),
    ] = 100,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="<target=field>",
            help="TARGET=FIELD, repeatable: vars.ticket.subject=payload.subject, label=resolution.disposition, "
            "expected.NAME=FIELD, timestamp=ts, cluster=conversation_id, output=..., feedback=..., tags.NAME=...",
        ),
    ] = None,
    map_file: Annotated[
        Path | None,
        typer.Option("--map-file", help="YAML: map: {TARGET: FIELD}; optional graders: and text_fields:."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="The eval set to write (default: evalsets/<prompt>.yaml)."),
    ] = None,
    method: Annotated[
        str, typer.Option(help="uniform, or diversity (TF-IDF + k-means: the row nearest each centroid).")
    ] = "uniform",
    stratify_by: Annotated[
        str | None,
        typer.Option("--stratify-by", help="Stratify by a mapped name (e.g. disposition) or a log field."),
    ] = None,
    min_per_stratum: Annotated[
        int,
        typer.Option(
            "--min-per-stratum",
            min=0,
            max=MAX_COUNT,
            help="With --stratify-by: at least this many rows per stratum.",
        ),
    ] = 5,
    seed: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_SEED,
            help="Seed of every random choice: the same log and seed give the same files.",
        ),
    ] = 0,
    since: Annotated[str | None, typer.Option(help="Only rows at or after this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Only rows before this time (ISO 8601).")] = None,
    query: Annotated[
        str | None, typer.Option(help="Only rows matching this pandas query, e.g. 'channel == \"email\"'.")
    ] = None,
    dedup_threshold: Annotated[
        float,
        typer.Option(
            "--dedup-threshold",
            min=0,
            callback=_finite,
            help="Drop near-duplicates at or above this TF-IDF cosine (above 1: off).",
        ),
    ] = 0.95,
    text_field: Annotated[
        list[str] | None,
        typer.Option(
            "--text-field",
            metavar="<var>",
            help="A var compared for near-duplicates and diversity, e.g. ticket.body (repeatable).",
        ),
    ] = None,
    no_redact: Annotated[
        bool, typer.Option("--no-redact", help="Write personal data as logged (redaction is on by default).")
    ] = False,
    redact_pattern: Annotated[
        list[str] | None,
        typer.Option(
            "--redact-pattern", metavar="<name=regex>", help="Also redact NAME=REGEX as <NAME> (repeatable)."
        ),
    ] = None,
    cases_file: Annotated[
        bool | None,
        typer.Option(
            "--cases-file/--inline-cases", help="Cases in <id>.cases.jsonl (default: above 1000 cases)."
        ),
    ] = None,
    append: Annotated[
        bool, typer.Option("--append", help="Add new cases at the end of an existing eval set.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing eval set.")] = False,
    labelled_only: Annotated[
        bool,
        typer.Option("--labelled-only", help="Drop rows without a label (default: <id>.to-label.jsonl)."),
    ] = False,
    skip_bad_lines: Annotated[
        bool, typer.Option("--skip-bad-lines", help="Skip malformed lines (counted) instead of stopping.")
    ] = False,
    log_format: Annotated[
        str | None, typer.Option("--format", help="jsonl, csv or parquet (default: from the file name).")
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a JSONL or CSV log.")] = "utf-8",
) -> None:
    """Sample an eval set from a production log: filtered, stratified or diverse, deduplicated, PII redacted."""
    from agent_evals.sampling import SampleOptions, parse_map_args, print_summary
    from agent_evals.sampling import sample as sample_log

    report = sample_log(
        SampleOptions(
            log=log,
            prompt=prompt,
            n=n,
            mapping=parse_map_args(map_ or []),
            map_file=map_file,
            output=output,
            method=method,
            stratify_by=stratify_by,
            min_per_stratum=min_per_stratum,
            seed=seed,
            since=since,
            until=until,
            query=query,
            dedup_threshold=dedup_threshold,
            text_fields=tuple(text_field or ()),
            redact=not no_redact,
            redact_patterns=tuple(redact_pattern or ()),
            cases_file=cases_file,
            append=append,
            overwrite=overwrite,
            labelled_only=labelled_only,
            skip_bad_lines=skip_bad_lines,
            log_format=log_format,
            encoding=encoding,
        )
    )
    print_summary(out, report)


@app.command()
def readiness(
    prompts: Annotated[list[str] | None, typer.Argument(help="Prompt ids (default: every prompt).")] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when a prompt is not ready (require readiness in CI).")
    ] = False,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write the scorecard as Markdown.")
    ] = None,
    format_: FormatOpt = "text",
) -> None:
    """Score each prompt on the shifts that get an agent into production, with a one-line fix per gap."""
    from agent_evals import readiness as ready

    cards = ready.scorecards(Path("."), prompts or ())
    if markdown_path is not None:
        write_output(
            markdown_path, ready.markdown(cards), what="the scorecard", fix="pass a writable --markdown path"
        )
    if format_ == "json":
        _print_json(ready.as_json(cards))
    else:
        ready.print_scorecards(out, cards)
        always.print(ready.verdict(cards), markup=False, soft_wrap=True)
    if strict and not all(card.ready for card in cards):
        raise typer.Exit(EXIT_GATE_FAILED)


SchemaName = Literal["prompt", "evalset", "config"]


@app.command("schema")
def schema_cmd(
    name: Annotated[
        SchemaName | None, typer.Argument(help="The file kind whose JSON Schema to print.")
    ] = None,
    write: Annotated[
        Path | None,
        typer.Option("--write", help="Write <name>.schema.json into this folder instead (all, or NAME)."),
    ] = None,
) -> None:
    """Print the JSON Schema of prompt, eval set or config files (for editors), or --write them all."""
    from agent_evals import schema

    if write is not None:
        for path in schema.write(write, [name] if name else schema.SCHEMAS):
            _plain(f"wrote {path}")
    elif name is not None:
        sys.stdout.write(schema.render(name))
    else:
        raise typer.BadParameter(
            f"name a schema ({', '.join(schema.SCHEMAS)}) or give --write DIR", param_hint="NAME"
        )


@app.command()
def merge(
    records: Annotated[list[Path], typer.Argument(help="Shard records, or folders of them.")],
    output: Annotated[Path, typer.Option(help="The merged record (.jsonl) or a folder for several.")],
) -> None:
    """Merge the records of a sharded run (a CI matrix) into one per eval set."""
    from agent_evals.record import merge_paths

    for path in merge_paths(records, output):
        out.print(f"merged: {path}")


def _retry_policy(config: ProjectConfig) -> RetryPolicy:
    from agent_evals.retry import RetryPolicy

    d = config.defaults
    return RetryPolicy(
        max_attempts=d.max_attempts,
        timeout_s=d.timeout_s,
        initial_backoff_s=d.initial_backoff_s,
        max_backoff_s=d.max_backoff_s,
        retry_deadline_s=d.retry_deadline_s,
    )


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every outcome into an exit code."""
    # Our own handlers, so Ctrl-C is 130 (not the framework's "Aborted!" and 1, which reads as a
    # failed gate). Restored on return: `main` may run in a host process (tests, an embedding
    # tool) whose own handling must not change. SIGPIPE stays ignored, as Python leaves it: with
    # its default action, any write to a closed socket or pipe by any thread (a provider or the
    # GitHub API hanging up mid-request, a test server's thread) would kill the whole process.
    # A closed stdout is a BrokenPipeError, turned into exit 141 below.
    handlers: dict[signal.Signals, Any] = {signal.SIGINT: _on_signal, signal.SIGTERM: _on_signal}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    # The collector runs less often while the command runs (`_gc.collecting_less`). And at exit
    # it would walk every object still alive (a few hundred thousand: pydantic, typer,
    # aiohttp...) once more, a quarter of a second for a process that is ending.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    # Everything the command prints passes a scrubber: a key echoed by a provider into an
    # output or an error must not reach a terminal or a CI log (agent_evals.credentials).
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbedStream(sys.stdout), ScrubbedStream(sys.stderr)
    # The history store's password (agent_evals.history.store.ENV_VAR), masked before a run can
    # echo it into a record; `history.url` in the config is registered when the config is read.
    register_url(os.environ.get("AGENT_EVALS_HISTORY_URL"))
    _reset_output()
    with collecting_less():
        try:
            try:
                app(args=argv, prog_name="agent-evals")
            finally:
                # What is still buffered for a pipe goes now, so a reader that left (`| head`) is
                # noticed here and not as a traceback while the interpreter exits.
                sys.stdout.flush()
        except SystemExit as exc:
            if _stdout_broken(streams[0]):
                # The framework meets a closed stdout with exit 1, which would read as a failed gate.
                _drop_stdout()
                return EXIT_BROKEN_PIPE
            code = exc.code
            return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_CONFIG)
        except BrokenPipeError:
            _drop_stdout()
            return EXIT_BROKEN_PIPE
        except AgentEvalsError as exc:
            render = getattr(exc, "render", None)
            print(render() if render else str(exc), file=sys.stderr)
            return exc.exit_code
        except Exception as exc:
            log = _write_crash_log(exc)
            if _output.verbose:
                # The traceback only, never locals: API keys live there.
                print(scrub("".join(traceback.format_exception(exc))), end="", file=sys.stderr)
            print(
                f"internal error: {type(exc).__name__}: {exc} (this is a bug; details in {log})",
                file=sys.stderr,
            )
            return EXIT_CANNOT_EVALUATE
        finally:
            sys.stdout, sys.stderr = streams
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return EXIT_OK


EXIT_BROKEN_PIPE = 128 + 13
"""The reader of stdout went away (`agent-evals ... | head`): what a Unix tool killed by SIGPIPE reports."""


def _stdout_broken(stdout: Any) -> bool:
    """Whether stdout's reader has gone: the framework said so (it wraps stdout to hush it), or a flush fails."""
    hushed = type(sys.stdout).__name__.endswith("PacifyFlushWrapper")  # click's, set only on EPIPE
    try:
        stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return hushed
    return hushed


def _drop_stdout() -> None:
    # Later writes (and the interpreter's last flush) go nowhere instead of raising again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def entry() -> None:
    """The `agent-evals` command: `main`, then exit as a Unix tool does when its reader went away.

    Only here, in a process of our own, is SIGPIPE's default action taken (ending by the
    signal, as `... | head` expects); `main` itself never touches the host's signals.
    """
    code = main()
    if code == EXIT_BROKEN_PIPE and hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    sys.exit(code)


def _write_crash_log(exc: BaseException) -> str:
    # The traceback only, never locals: API keys live there.
    path = Path(".agent-evals") / "crash.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(scrub("".join(traceback.format_exception(exc))), encoding="utf-8")
    except OSError:
        return "<could not write .agent-evals/crash.log>"
    return str(path)


if __name__ == "__main__":
    entry()
