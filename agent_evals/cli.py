"""The `agent-evals` command line: parse, call the library, map to an exit code.

This is the only module that imports typer. Every command is a thin wrapper
over a library function; `main` is the one error boundary: user errors print
one line and no traceback, unexpected ones say so and point to a log file.
Exit codes: 0 pass, 1 gate failed, 2 usage or config error, 3 could not
evaluate, 130/143 interrupted.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from agent_evals import __version__
from agent_evals.errors import EXIT_CANNOT_EVALUATE, EXIT_CONFIG, EXIT_OK, AgentEvalsError, Interrupted

app = typer.Typer(
    name="agent-evals",
    help="Put every prompt change behind an eval gate.",
    no_args_is_help=True,
    add_completion=False,
    # Rich tracebacks print local variables, and API keys live in locals.
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# CI logs are not terminals; give tables room there instead of rich's 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)


def _version(value: bool) -> None:
    if value:
        print(f"agent-evals {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    directory: Annotated[
        Path | None, typer.Option("-C", "--directory", help="Run as if started in this directory.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    if directory is not None:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise AgentEvalsError(f"{directory}: cannot change to this directory ({exc.strerror})") from None


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders to check (default: the project).")
    ] = None,
) -> None:
    """Check prompts and eval sets: schema, graders, cases, templates. Exit 2 on any problem."""
    from agent_evals.validate import validate as check

    problems = check(Path("."), paths or [])
    for problem in problems:
        print(problem.render())
    if problems:
        err.print(f"{len(problems)} problem(s) found")
        raise typer.Exit(EXIT_CONFIG)


@app.command()
def run(
    prompt: Annotated[
        list[str] | None, typer.Option("--prompt", help="Only eval sets of this prompt id.")
    ] = None,
    evalset: Annotated[list[str] | None, typer.Option("--evalset", help="Only this eval set id.")] = None,
    provider: Annotated[str | None, typer.Option(help="Use this provider instead of the prompt's.")] = None,
    model: Annotated[str | None, typer.Option(help="Use this model name instead of the prompt's.")] = None,
    concurrency: Annotated[
        int | None, typer.Option("-j", "--concurrency", min=1, help="Calls in flight.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Record file (one eval set) or folder.")] = None,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", help="Only cases whose id or a tag matches (glob).")
    ] = None,
) -> None:
    """Run prompts on their eval sets, grade the outputs, write a run record."""
    from agent_evals.load import load_project
    from agent_evals.report.terminal import print_run, progress
    from agent_evals.retry import RetryPolicy
    from agent_evals.runner import RunOptions, execute, plan, run_sync
    from agent_evals.summary import summarize

    project = load_project(Path("."))
    jobs = plan(
        project,
        prompt_ids=prompt or (),
        evalset_ids=evalset or (),
        provider=provider,
        model=model,
        filters=filter_ or (),
    )
    d = project.config.defaults
    options = RunOptions(
        concurrency=concurrency or d.concurrency,
        retry=RetryPolicy(
            max_attempts=d.max_attempts,
            timeout_s=d.timeout_s,
            initial_backoff_s=d.initial_backoff_s,
            max_backoff_s=d.max_backoff_s,
        ),
        output=output,
    )
    with progress(err, jobs) as tick:
        outcomes = run_sync(execute(project, jobs, options, on_result=tick))
    rows = [(o.job.prompt.id, o.job.evalset.id, summarize(o.results), str(o.path)) for o in outcomes]
    print_run(out, rows)
    errors = sum(s.errors for _, _, s, _ in rows)
    if errors:
        err.print(f"{errors} case(s) could not be evaluated (see the errors above)")
        raise typer.Exit(EXIT_CANNOT_EVALUATE)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every outcome into an exit code."""
    # Our own handlers, so Ctrl-C is 130 (not the framework's "Aborted!" and 1, which reads as a failed gate).
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        app(args=argv, prog_name="agent-evals")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_CONFIG)
    except AgentEvalsError as exc:
        render = getattr(exc, "render", None)
        print(render() if render else str(exc), file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        log = _write_crash_log(exc)
        print(
            f"internal error: {type(exc).__name__}: {exc} (this is a bug; details in {log})", file=sys.stderr
        )
        return EXIT_CANNOT_EVALUATE
    return EXIT_OK


def _write_crash_log(exc: BaseException) -> str:
    # The traceback only, never locals: API keys live there.
    path = Path(".agent-evals") / "crash.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return "<could not write .agent-evals/crash.log>"
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
