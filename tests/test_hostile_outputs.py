"""Output paths that cannot take a file end in one line naming the path and exit 2, at once.

Every file a command writes (diff/ci's --json, --report-md and --junit; report's and dashboard's
--html; readiness --markdown; run --trace; the run record of run and merge) goes through
`agent_evals.outputs.open_output`: a FIFO (which would block `open` for ever, SIGTERM unheard),
a folder, a full disk (/dev/full), a file where a folder should be, never `internal error`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent_evals.cli import main
from tests.pty_run import CLI
from tests.support import basic_project

RECORD_FIX = "pass --output a regular file in a writable folder, or set paths.runs in agent-evals.yaml to a writable folder"

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a finished run, `a.jsonl`, to diff and report on."""
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    assert main(["run", "--output", "a.jsonl"]) == 0
    return tmp_path


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stderr of a command expected to fail on an output path."""
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "internal error" not in captured.err
    return code, captured.err.strip()


# The commands, each with the output option under test last; (what, option) name it in the message.
WRITERS: dict[str, tuple[list[str], str, str]] = {
    "diff-json": (["diff", "a.jsonl", "a.jsonl", "--json"], "the JSON report", "--json"),
    "diff-report-md": (["diff", "a.jsonl", "a.jsonl", "--report-md"], "the Markdown report", "--report-md"),
    "diff-junit": (["diff", "a.jsonl", "a.jsonl", "--junit"], "the JUnit report", "--junit"),
    "report-html": (["report", "a.jsonl", "--html"], "the HTML report", "--html"),
    "readiness-md": (["readiness", "--markdown"], "the scorecard", "--markdown"),
    "run-trace": (["run", "--trace"], "the trace", "--trace"),
}
# `dashboard --html` caught a folder and a full disk already (tests/test_history_report.py); a FIFO hung it.
WITH_DASHBOARD = {**WRITERS, "dashboard-html": (["dashboard", "--html"], "the dashboard", "--html")}


# --- a FIFO: refused at once, never opened and waited on --------------------------------


def piped(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process: a command stuck opening a FIFO is killed, and the test fails."""
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("argv", "what", "option"), WITH_DASHBOARD.values(), ids=WITH_DASHBOARD.keys())
def test_a_fifo_as_an_output_is_refused_without_waiting_for_a_reader(
    project: Path, argv: list[str], what: str, option: str
) -> None:
    os.mkfifo(project / "pipe")
    done = piped([*argv, "pipe"], project)
    assert (done.returncode, done.stderr) == (
        2,
        f"pipe: cannot write {what}: it is a FIFO that no process reads (pass a writable {option} path)\n",
    )


@pytest.mark.parametrize(
    "argv", [["run", "--output"], ["merge", "a.jsonl", "--output"]], ids=["run", "merge"]
)
def test_a_fifo_as_a_run_record_is_refused(project: Path, argv: list[str]) -> None:
    os.mkfifo(project / "pipe.jsonl")
    done = piped([*argv, "pipe.jsonl"], project)
    assert (done.returncode, done.stderr) == (
        2,
        f"pipe.jsonl: cannot write the run record: it is a FIFO, not a regular file ({RECORD_FIX})\n",
    )


def test_a_pipe_someone_reads_gets_the_report(project: Path) -> None:
    """`--json /dev/stdout | jq` in a CI script: a FIFO with a reader is written to, not refused."""
    done = subprocess.run(
        f"{' '.join(CLI)} diff a.jsonl a.jsonl --json /dev/stdout | cat > piped.json",
        shell=True, cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert main(["diff", "a.jsonl", "a.jsonl", "--json", "file.json"]) == 0
    written = (project / "file.json").read_text(encoding="utf-8")
    piped_out = (project / "piped.json").read_text(encoding="utf-8")  # the report, then the terminal's
    report, _ = json.JSONDecoder().raw_decode(piped_out)
    assert report == json.loads(written)


# --- a folder -------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "what", "option"), WRITERS.values(), ids=WRITERS.keys())
def test_a_folder_as_an_output_is_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], what: str, option: str
) -> None:
    (project / "taken").mkdir()
    code, err = cli_error(capsys, *argv, "taken")
    assert (code, err) == (
        2,
        f"taken: cannot write {what}: it is a directory, not a regular file (pass a writable {option} path)",
    )


# --- a full disk, and the devices that are fine ---------------------------------------------


@needs_dev_full
@pytest.mark.parametrize(("argv", "what", "option"), WRITERS.values(), ids=WRITERS.keys())
def test_a_full_disk_is_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], what: str, option: str
) -> None:
    code, err = cli_error(capsys, *argv, "/dev/full")
    assert (code, err) == (
        2,
        f"/dev/full: cannot write {what}: No space left on device (pass a writable {option} path)",
    )


@needs_dev_full
def test_a_trace_that_fills_the_disk_stops_the_run_and_keeps_its_record(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = cli_error(capsys, "run", "--output", "b.jsonl", "--trace", "/dev/full")
    assert (code, err) == (
        2,
        "/dev/full: cannot write the trace: No space left on device (pass a writable --trace path)",
    )
    end = json.loads((project / "b.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert (end["kind"], end["status"], end["reason"]) == ("end", "aborted", "ConfigError")


def test_dev_null_takes_a_report_but_not_a_run_record(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A report sent to /dev/null is discarded, as asked. A run record is read back (resume, the
    # history) and synced to disk: it must be a regular file, so a link to a device is refused.
    assert main(["diff", "a.jsonl", "a.jsonl", "--json", os.devnull]) == 0
    (project / "null.jsonl").symlink_to(os.devnull)
    code, err = cli_error(capsys, "run", "--output", "null.jsonl")
    assert (code, err) == (
        2,
        f"null.jsonl: cannot write the run record: it is a device, not a regular file ({RECORD_FIX})",
    )


# --- a file where a folder should be -------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["run", "--output"], ["merge", "a.jsonl", "--output"]], ids=["run", "merge"]
)
def test_a_file_in_the_way_of_the_records_folder_is_named(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    (project / "f").write_text("x\n", encoding="utf-8")
    code, err = cli_error(capsys, *argv, "f/x.jsonl")
    assert (code, err) == (
        2,
        f"{Path('f/x.jsonl')}: cannot write the run record: f is not a folder ({RECORD_FIX})",
    )


def test_a_file_in_the_way_of_a_reports_folder_is_named(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "f").write_text("x\n", encoding="utf-8")
    code, err = cli_error(capsys, "diff", "a.jsonl", "a.jsonl", "--junit", "f/sub/junit.xml")
    assert (code, err) == (
        2,
        f"{Path('f/sub/junit.xml')}: cannot write the JUnit report: f is not a folder (pass a writable --junit path)",
    )


def test_paths_runs_set_to_a_device_is_one_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "agent-evals.yaml").write_text("paths:\n  runs: /dev/null\n", encoding="utf-8")
    code, err = cli_error(capsys, "run")
    where, _, message = err.partition(": ")
    assert code == 2
    assert re.fullmatch(r"/dev/null/[^/]+/triage\.jsonl", where), where
    assert message == f"cannot write the run record: /dev/null is not a folder ({RECORD_FIX})"


def test_a_record_that_fills_the_disk_mid_run_is_one_line(project: Path) -> None:
    """A write past the file-size limit fails as a full disk does (EFBIG, not ENOSPC: a size
    limit is what a test can set); the record's flush turned it into `internal error`."""
    import resource
    import signal

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))

    done = subprocess.run(
        [*CLI, "run", "--no-cache", "--output", "r.jsonl"],
        cwd=project, capture_output=True, text=True, timeout=60, preexec_fn=small_files,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "r.jsonl: cannot write the run record: File too large (pass --output a regular file in a writable "
        "folder, or set paths.runs in agent-evals.yaml to a writable folder)"
    ]
