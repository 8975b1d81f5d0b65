"""Log and report paths that are not regular files: one located line and exit 2, never a hang.

`sample`, `monitor` and `freshness` read a production log, and `comment --report` a Markdown
report. A FIFO blocks whoever opens it, a device such as /dev/zero never ends, and a symlink
loop cannot be opened at all: each is refused before it is opened, with a message naming what
it is. A report is read only as far as a comment can hold (GitHub's 65,536 characters).

Every test runs the CLI in-process under an alarm: a FIFO that gets opened ends the test as
`Hung` instead of hanging the run.
"""

from __future__ import annotations

import errno
import os
import resource
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.github import _REPORT_READ_BYTES, COMMENT_LIMIT, comment
from agent_evals.history.store import ENV_VAR
from agent_evals.report.markdown import MARKER
from tests.http_server import ScriptedServer
from tests.support import copy_ticket_triage_example, deadline
from tests.test_github import NUMBER, REPO, TOKEN, FakeGitHub
from tests.test_monitor import project as monitor_project

MAP = ["--map", "vars.text=text", "--map", "label=label"]
LOOP = os.strerror(errno.ELOOP)  # "Too many levels of symbolic links"
REPORT_FIX = "write it with `agent-evals ci --report-md PATH`"


@pytest.fixture(autouse=True)
def no_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    with deadline():
        yield


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Exit code and stderr of one in-process CLI run."""
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.err.strip()


# What a hostile path is, made in the current folder, and how the message names it.
def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _loop(path: Path) -> None:
    path.symlink_to(path.name)


def _folder(path: Path) -> None:
    path.mkdir()


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo": (_fifo, "not a regular file (a FIFO; {fix})"),
    "symlink to /dev/zero": (_zero, "not a regular file (a device; {fix})"),
    "symlink loop": (_loop, f"cannot read file: {LOOP} ({{fix}})"),
    "folder": (_folder, "is a folder, not a log file ({fix})"),
}


# --- sample -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", HOSTILE)
def test_sample_refuses_a_log_that_is_not_a_regular_file(
    capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    make, message = HOSTILE[kind]
    make(Path("log.jsonl"))
    code, err = cli(capsys, "sample", "log.jsonl", "--prompt", "triage", "--n", "3", *MAP)
    assert (code, err) == (2, "log.jsonl: " + message.format(fix="check the path"))


@pytest.mark.parametrize(
    ("name", "extra"),
    [("log.csv", ()), ("log.jsonl.gz", ()), ("spans.jsonl", ("--format", "otel"))],
    ids=["csv", "gzip", "otel"],
)
def test_sample_refuses_a_fifo_in_every_format(
    capsys: pytest.CaptureFixture[str], name: str, extra: tuple[str, ...]
) -> None:
    # otel reads the log twice (the first pass finds where each trace ends): neither pass opens it.
    os.mkfifo(name)
    code, err = cli(capsys, "sample", name, "--prompt", "triage", "--n", "3", *MAP, *extra)
    assert (code, err) == (2, f"{name}: not a regular file (a FIFO; check the path)")


# --- monitor and freshness ----------------------------------------------------------------------

MONITOR_FIX = "pass the path of a production log"


@pytest.mark.parametrize("kind", HOSTILE)
def test_monitor_says_what_the_log_path_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    monitor_project(tmp_path)
    make, message = HOSTILE[kind]
    make(Path("prod.jsonl"))
    code, err = cli(capsys, "monitor", "prod.jsonl", "--prompt", "triage")
    assert (code, err) == (2, "prod.jsonl: " + message.format(fix=MONITOR_FIX))


@pytest.mark.parametrize("kind", ["fifo", "symlink loop"])
def test_freshness_says_what_the_log_path_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    copy_ticket_triage_example(tmp_path, ("prompts", "evalsets"))  # its eval set has a monitor policy
    monkeypatch.delenv(ENV_VAR, raising=False)
    make, message = HOSTILE[kind]
    make(Path("prod.jsonl"))
    code, err = cli(capsys, "freshness", "prod.jsonl", "--evalset", "ticket-triage")
    assert (code, err) == (2, "prod.jsonl: " + message.format(fix=MONITOR_FIX))


# --- comment --report ---------------------------------------------------------------------------


@pytest.fixture
def memory_cap() -> Iterator[None]:
    """At most 2 GiB more address space while the test runs: an unbounded read of /dev/zero
    ends in MemoryError (an internal error, failing the test) instead of exhausting the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * resource.getpagesize()
    cap = used + (2 << 30)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero", "symlink loop"])
@pytest.mark.usefixtures("memory_cap")
def test_comment_refuses_a_report_that_is_not_a_regular_file(
    capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    make, message = HOSTILE[kind]
    make(Path("report.md"))
    code, err = cli(capsys, "comment", "--report", "report.md", "--pr", "1", "--repo", "a/b")
    assert (code, err) == (2, "report.md: " + message.format(fix=REPORT_FIX))


def test_comment_names_the_byte_that_is_not_utf8(capsys: pytest.CaptureFixture[str]) -> None:
    Path("report.md").write_bytes(b"# Eval report\n\ncaf\xe9\n")
    code, err = cli(capsys, "comment", "--report", "report.md", "--pr", "1", "--repo", "a/b")
    assert (code, err) == (
        2,
        f"report.md: the report is not UTF-8 text (byte 0xe9 at offset 18) ({REPORT_FIX}, which writes UTF-8)",
    )


def test_comment_reads_a_long_report_only_as_far_as_the_comment_holds(
    http_server: ScriptedServer, tmp_path: Path
) -> None:
    github = FakeGitHub(http_server)
    report = tmp_path / "report.md"
    line = "\u00e9" * 100 + "\n\n"  # 2-byte characters
    data = ("# Eval report\n\n" + line * COMMENT_LIMIT).encode() + b"\xff"
    # The read stops inside a character (which is not refused); the byte that is not UTF-8 lies
    # past it: had the whole file been read, the report would be refused for it.
    assert 0x80 <= data[_REPORT_READ_BYTES] < 0xC0
    report.write_bytes(data)
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": http_server.url}

    assert comment(report, env, pr=NUMBER, repo=REPO).action == "created"
    (posted,) = github.comments
    assert len(posted["body"]) <= COMMENT_LIMIT
    assert posted["body"].startswith(f"{MARKER}\n\n# Eval report\n\n{line}{line}")
    assert "cut here: the report is longer than the 65,536 characters" in posted["body"]
