"""Helpers for tests: build project trees from dicts, run the CLI in-process."""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType, ModuleType

import pytest

from agent_evals.record import CaseResult, GradeRecord, RunEnd, RunHeader, RunRecord


class Hung(BaseException):
    """The alarm of `deadline` went off: something opened a FIFO or read a device. A BaseException,
    so the CLI's error boundary (which turns an Exception into exit 3) lets it through to fail the test."""


@contextlib.contextmanager
def deadline(seconds: int = 10) -> Iterator[None]:
    """Fail an in-process test that blocks (an opened FIFO, /dev/zero read) instead of hanging the run."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"timed out after {seconds} s: a FIFO was opened or a device read")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


PROMPT = """\
schema_version: 1
id: triage
version: 1
description: Classify a support ticket (synthetic test data).
owner:
  name: Support AI team
  oncall: pagerduty:support-ai
model:
  provider: python:agent:answer
  name: test-agent
  temperature: 0
messages:
  - role: system
    content: Classify the ticket into a disposition.
  - role: user
    content: |
      Subject: {{ subject }}
      {{ body }}
output:
  format: json
"""

EVALSET = """\
schema_version: 1
id: triage
prompt: triage
metric: refund handling time
provenance:
  source: synthetic test cases
  synthetic: true
graders:
  - type: exact_match
    name: disposition
    field: disposition
cases:
  - id: c1
    vars: {subject: Refund, body: I want my money back}
    expected: {disposition: refund}
    tags: [refund]
  - id: c2
    vars: {subject: Login, body: cannot log in}
    expected: {disposition: account_access}
    tags: [access]
  - id: c3
    vars: {subject: Invoice, body: charged twice}
    expected: {disposition: billing}
    tags: [billing]
"""

# The system under test for pipeline tests: deterministic agent code (a `python:` provider).
AGENT = """\
import asyncio
import os

DELAY = float(os.environ.get("TEST_AGENT_DELAY", "0"))

async def answer(request):
    if DELAY:
        await asyncio.sleep(DELAY)
    text = request["messages"][-1]["content"].lower()
    if "money back" in text:
        return {"disposition": "refund"}
    if "log in" in text:
        return {"disposition": "account_access"}
    return {"disposition": "other"}
"""


def echo_prompt(provider: str) -> str:
    """A one-message prompt that sends the case's question to `provider` (synthetic test data)."""
    return (
        "schema_version: 1\nid: echo\nversion: 1\ndescription: Echo the question (synthetic test prompt).\n"
        "owner: {name: Test team, oncall: test-pager}\n"
        f"model: {{provider: {provider}, name: test-model, temperature: 0, max_tokens: 20}}\n"
        'messages:\n  - role: user\n    content: "{{ q }}"\n'
    )


def echo_evalset(n: int, graders: str = "  - {type: contains, name: echoed}\n") -> str:
    """`n` cases `q00000`... whose expected answer echoes the question (synthetic test data)."""
    cases = "".join(
        f"  - id: q{i:05d}\n    vars: {{q: question {i}}}\n    expected: 'echo: question {i}'\n"
        for i in range(n)
    )
    return (
        "schema_version: 1\nid: echo\nprompt: echo\nmetric: answers echoed\n"
        "provenance: {source: synthetic, synthetic: true}\n"
        f"graders:\n{graders}cases:\n{cases}"
    )


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write `files` (relative path -> text, dedented) under `root`; return root."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def basic_project(root: Path, **overrides: str) -> Path:
    """A small valid project: one prompt, one eval set, the agent module."""
    files = {"prompts/triage.yaml": PROMPT, "evalsets/triage.yaml": EVALSET, "agent.py": AGENT}
    files.update({k.replace("__", "/").replace("_yaml", ".yaml"): v for k, v in overrides.items()})
    return write_tree(root, files)


def make_record(
    cases: list[tuple[str, str]] | list[tuple[str, str, tuple[str, ...]]],
    *,
    run_id: str = "run",
    repeat_of: dict[str, list[str]] | None = None,
    status: str = "complete",
    temperature: float = 0,
) -> RunRecord:
    """A run record built in memory: (case_id, status[, tags]) per case; repeats via `repeat_of`.

    Sampling is off (`temperature` 0) unless asked: outputs are deterministic, so every
    pass -> fail counts. With a temperature, one run per case is not evidence by itself.
    """
    results = []
    for index, spec in enumerate(cases):
        case_id, outcome = spec[0], spec[1]
        tags = spec[2] if len(spec) > 2 else ()  # type: ignore[misc]
        outcomes = (repeat_of or {}).get(case_id, [outcome])
        for repeat, each in enumerate(outcomes):
            judged = each in ("pass", "fail")
            results.append(
                CaseResult(
                    index=index,
                    case_id=case_id,
                    repeat=repeat,
                    status=each,  # type: ignore[arg-type]
                    score=(1.0 if each == "pass" else 0.0) if judged else None,
                    passed=(each == "pass") if judged else None,
                    tags=tags,
                    output=f"output of {case_id}",
                    expected={"label": "x"},
                    grades=(
                        (
                            GradeRecord(
                                grader="label",
                                type="exact_match",
                                score=1.0 if each == "pass" else 0.0,
                                passed=each == "pass",
                                reason="ok" if each == "pass" else "expected 'x', got 'y'",
                            ),
                        )
                        if judged
                        else ()
                    ),
                    latency_ms=10.0,
                    cost_usd=0.001,
                    attempts=1,
                    error="boom" if each == "error" else None,
                )
            )
    header = RunHeader(
        run_id=run_id,
        started_at="2026-01-01T00:00:00Z",
        tool_version="0",
        prompt={"id": "p", "hash": f"sha256:{run_id}"},
        evalset={"id": "e", "hash": "sha256:e"},
        provider={"name": "local", "params": {"temperature": temperature}},
    )
    end = RunEnd(status=status, finished_at="2026-01-01T00:00:01Z") if status != "none" else None  # type: ignore[arg-type]
    return RunRecord(path=f"{run_id}.jsonl", header=header, cases=tuple(results), end=end)


class GitRepo:
    """A real repository under a temporary folder, with helpers to change it."""

    def __init__(self, root: Path) -> None:
        import git

        self.root = root
        self.git = git.Repo.init(root, initial_branch="main")
        with self.git.config_writer() as config:
            config.set_value("user", "name", "Test Author")
            config.set_value("user", "email", "author@example.com")
            config.set_value("commit", "gpgsign", "false")

    def write(self, files: Mapping[str, str]) -> None:
        write_tree(self.root, files)

    def commit(self, files: Mapping[str, str] | None = None, message: str = "change") -> str:
        """Write `files`, stage everything and commit; the new commit's sha."""
        self.write(files or {})
        self.git.git.add("-A")
        self.git.git.commit("-m", message, "--no-verify")
        return str(self.git.head.commit.hexsha)

    def branch(self, name: str = "feature") -> None:
        self.git.git.checkout("-b", name)


def feature_branch(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: Mapping[str, str],
    modules: tuple[str, ...] = ("agent",),
) -> GitRepo:
    """A repository whose main holds `files`, checked out on a feature branch and made the working folder.

    The project's agent modules (`python:` providers) are dropped from `sys.modules`, so each test
    imports its own.
    """
    repo = GitRepo(root)
    repo.commit(dict(files))
    repo.branch()
    monkeypatch.chdir(repo.root)
    for module in modules:
        monkeypatch.delitem(sys.modules, module, raising=False)
    return repo


EXAMPLE_ROOT = Path(__file__).resolve().parents[1]


def copy_ticket_triage_example(
    dest: Path, folders: tuple[str, ...] = ("prompts", "evalsets", "examples")
) -> Path:
    """The bundled ticket-triage example (its prompt, eval set and candidate edit) copied into `dest`.

    The refund-agent example beside it is left out: tests of the first example count its
    eval sets and records, and the refund agent has its own tests (tests/test_refund_demo.py).
    """
    import shutil

    for folder in folders:
        shutil.copytree(
            EXAMPLE_ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("refund-agent*", "logs")
        )
    return dest


def load_script(path: Path) -> ModuleType:
    """A script of the repository (an example's generator, a benchmark's) imported as a module, by
    its file name; registered in `sys.modules` first, as dataclasses look their module up there."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_past_the_job_limit(root: Path) -> list[str]:
    """`run -j 1` twice in this process on the project at `root` (the working directory), whose every
    case does file-supplied work just under its per-call limit, with `_jobclock.JOB_SECONDS` lowered:
    each run grades some cases (they fail), then the job's clock refuses the rest, in order; the
    second run starts afresh (the limit is the job's, not the process's). The refused grades' errors.
    """
    from agent_evals.cli import main
    from agent_evals.record import load_record

    errors = []
    for _ in range(2):
        assert main(["run", "--output", "out.jsonl", "-j", "1"]) == 3
        cases = load_record(root / "out.jsonl").cases
        graded = [c for c in cases if c.status == "fail"]
        refused = [c for c in cases if c.status == "error"]
        assert graded
        assert refused
        assert cases == (*graded, *refused)  # in order, with -j 1: the limit came, then held
        errors += [c.grades[0].error or "" for c in refused]
    return errors


def refused(command: str, root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """`validate` or `run` in the project at `root` (the working directory): its exit code and the
    lines it said about the project (validate's stdout, run's stderr). Neither may print a traceback
    or an internal error, and `run` may write no record: what validate finds, run refuses before
    anything is sent."""
    from agent_evals.cli import main

    argv = ["validate"] if command == "validate" else ["run", "--output", "out.jsonl"]
    code = main(argv)
    captured = capsys.readouterr()
    for said in (captured.out, captured.err):
        assert "Traceback" not in said
        assert "internal error" not in said
    if command == "validate":
        return code, captured.out.splitlines()
    assert not (root / "out.jsonl").exists()
    return code, captured.err.splitlines()
