"""`agent-evals run` end to end: records, summaries, errors, interruption."""

from __future__ import annotations

import gc
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.record import load_record
from tests.support import AGENT, EVALSET, basic_project, write_tree


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    # Each test's agent module lives in its own tmp root; forget the previous one.
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    return tmp_path


def test_run_writes_a_complete_record(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--output", "out.jsonl"])
    out = capsys.readouterr().out
    assert code == 0
    assert "triage" in out
    assert "66.7% (2/3)" in out
    record = load_record(project / "out.jsonl")
    assert record.status == "complete"
    assert record.header.schema_version == 1
    assert record.header.prompt["id"] == "triage"
    assert record.header.prompt["hash"].startswith("sha256:")
    assert record.header.evalset["hash"].startswith("sha256:")
    assert record.header.provider["name"] == "python:agent:answer"
    assert record.header.provider["params"] == {"temperature": 0}
    assert [(c.case_id, c.status) for c in record.cases] == [("c1", "pass"), ("c2", "pass"), ("c3", "fail")]
    c3 = record.cases[2]
    assert c3.grades[0].reason == "disposition: expected 'billing', got 'other'"
    assert c3.request is not None
    assert c3.request["messages"][-1]["content"] == "Subject: Invoice\ncharged twice\n"
    assert json.loads(c3.output or "") == {"disposition": "other"}
    assert c3.attempts == 1
    assert c3.latency_ms is not None
    assert record.end is not None
    assert record.end.counts == {"pass": 2, "fail": 1, "error": 0, "skipped": 0}


def test_default_record_location_and_git_info(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import git

    repo = git.Repo.init(project)
    repo.index.add(["prompts/triage.yaml"])
    repo.index.commit("init")
    repo.create_remote("origin", "https://user:s3cret-token@example.com/team/agents.git")
    assert main(["run"]) == 0
    records = list((project / ".agent-evals/runs").glob("*/triage.jsonl"))
    assert len(records) == 1
    header = load_record(records[0]).header
    assert header.git is not None
    assert header.git["commit"] == repo.head.commit.hexsha
    assert header.git["dirty"] is True  # untracked files
    assert header.git["remotes"] == {"origin": "https://example.com/team/agents.git"}
    assert "s3cret" not in records[0].read_text()


def test_filter_by_tag_and_id(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--filter", "refund", "--filter", "c2", "--output", "out.jsonl"]) == 0
    record = load_record(project / "out.jsonl")
    assert [c.case_id for c in record.cases] == ["c1", "c2"]
    assert record.header.evalset["selected"] == 2


def test_provider_failure_is_an_error_not_a_fail(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(
        project,
        {
            "agent.py": """\
                async def answer(request):
                    if "log in" in request["messages"][-1]["content"]:
                        raise RuntimeError("agent crashed")
                    return {"disposition": "refund"}
                """
        },
    )
    code = main(["run", "--output", "out.jsonl"])
    captured = capsys.readouterr()
    assert code == 3
    assert "1 case(s) could not be evaluated" in captured.err
    statuses = {c.case_id: c.status for c in load_record(project / "out.jsonl").cases}
    assert statuses == {"c1": "pass", "c2": "error", "c3": "fail"}


def test_a_template_error_stops_the_run_before_any_call(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(
        project, {"agent.py": "async def answer(request):\n    raise SystemExit('must not be called')\n"}
    )
    (project / "evalsets/triage.yaml").write_text(
        EVALSET.replace("vars: {subject: Login, body: cannot log in}", "vars: {subject: Login}")
    )
    code = main(["run"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("prompts/triage.yaml:18: undefined variable in messages[1] for case 'c2'")
    # The hint says where the case is written, so the fix is one jump away.
    assert "(add it to the vars of case 'c2' at evalsets/triage.yaml:17, or use '| default(...)')" in err
    assert not (project / ".agent-evals/runs").exists()


def test_unknown_evalset_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--evalset", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "no eval set 'nope' (known: triage)"


def test_bad_option_is_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--concurrency", "0"]) == 2


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_killed_run_keeps_every_finished_case(project: Path, signum: int) -> None:
    many = (
        EVALSET.split("cases:")[0]
        + "cases:\n"
        + "".join(
            f"  - id: k{i}\n    vars: {{subject: s{i}, body: I want my money back}}\n    expected: {{disposition: refund}}\n"
            for i in range(200)
        )
    )
    (project / "evalsets/triage.yaml").write_text(many)
    env = {**os.environ, "TEST_AGENT_DELAY": "0.05"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_evals.cli", "run", "-j", "2", "--output", "out.jsonl"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = project / "out.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().count('"kind":"case"') >= 5:
            break
        time.sleep(0.02)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    assert f"interrupted by {signal.Signals(signum).name}" in err
    assert "the finished cases are saved; finish the run with: agent-evals run --resume out.jsonl" in err
    record = load_record(out)
    assert record.status == "interrupted"
    assert 5 <= len(record.cases) < 200
    assert all(c.status == "pass" for c in record.cases)
    # Every case line in the file is a finished case with its grade.
    assert record.end is not None
    assert record.end.counts["pass"] == len(record.cases)


def test_the_command_to_finish_an_interrupted_run_of_a_prompt_file_finishes_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hint names the prompt file the run ran (quoted: its path has a space); resumed without
    it, the run would not match the project's prompt."""
    many = EVALSET.split("cases:")[0] + "cases:\n" + "".join(
        f"  - id: k{i}\n    vars: {{subject: s{i}, body: I want my money back}}\n    expected: {{disposition: refund}}\n"
        for i in range(100)
    )  # fmt: skip
    (project / "evalsets/triage.yaml").write_text(many)
    edited = (project / "prompts/triage.yaml").read_text().replace("\nversion: 1\n", "\nversion: 2\n")
    assert "version: 2" in edited
    (project / "my edit").mkdir()
    (project / "my edit/triage.yaml").write_text(edited)
    env = {**os.environ, "TEST_AGENT_DELAY": "0.05"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_evals.cli", "run", "-j", "2", "--output", "out.jsonl",
         "--prompt-file", "my edit/triage.yaml"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out = project / "out.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count('"kind":"case"') >= 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    [hint] = [line for line in err.splitlines() if "finish the run with: " in line]
    command = hint.split("finish the run with: ", 1)[1]
    assert command == "agent-evals run --resume out.jsonl --prompt-file 'my edit/triage.yaml'"
    assert main(shlex.split(command)[1:]) == 0, capsys.readouterr().err
    record = load_record(out)
    assert (record.status, len(record.cases), record.header.prompt["version"]) == ("complete", 100, "2")


def test_record_cut_mid_line_is_still_readable(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--output", "out.jsonl"]) == 0
    text = (project / "out.jsonl").read_text().splitlines(keepends=True)
    # Simulate SIGKILL during a write: no end line, the last case half written.
    (project / "cut.jsonl").write_text("".join(text[:-2]) + text[-2][: len(text[-2]) // 2])
    record = load_record(project / "cut.jsonl")
    assert record.status == "interrupted"
    assert [c.case_id for c in record.cases] == ["c1", "c2"]


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from agent_evals.cli import main\n"
        "rc = main(['--help'])\n"
        "heavy = ('pandas', 'sklearn', 'scipy', 'numpy', 'git', 'httpx', 'aiohttp', 'sqlalchemy', 'alembic')\n"
        "print(rc, sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "0 []"


def test_a_closed_pipe_is_not_a_failed_gate(project: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_evals.cli", "run", "--output", "p.jsonl"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader (`| head`) is gone before the summary is printed
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGPIPE  # killed by SIGPIPE, as `... | head` expects; never exit 1
    assert load_record(project / "p.jsonl").cases  # what finished is on disk


def test_main_leaves_the_host_process_signal_handlers_as_it_found_them(project: Path) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE)}
    assert main(["validate"]) == 0
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_a_run_collects_less_often_and_main_leaves_the_host_s_thresholds(project: Path) -> None:
    """A run holds tens of thousands of objects: the collector runs at `_gc.THRESHOLDS` while it
    runs (the agent's code sees them), and the host process gets its own back."""
    from agent_evals._gc import THRESHOLDS

    (project / "agent.py").write_text(
        AGENT + "\nimport gc, json\nSEEN = []\n_answer = answer\n\n"
        "async def answer(request):\n    SEEN.append(gc.get_threshold())\n    return await _answer(request)\n"
    )
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        assert main(["run", "--no-cache", "--output", "r.jsonl"]) == 0
        seen = set(sys.modules["agent"].SEEN)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)
    assert seen == {THRESHOLDS}
    assert THRESHOLDS[0] > 700


def test_a_write_to_a_closed_connection_during_a_run_does_not_kill_the_process(project: Path) -> None:
    """Only stdout's reader leaving ends the CLI by SIGPIPE. Agent code, a provider or the GitHub
    API hanging up mid-write is an error to handle (EPIPE), never a signal that kills the run."""
    write_tree(
        project,
        {
            "agent.py": (
                "import socket\n\n"
                "async def answer(request):\n"
                "    mine, theirs = socket.socketpair()\n"
                "    theirs.close()\n"
                "    try:\n"
                "        mine.send(b'x')  # the peer is gone: EPIPE, or SIGPIPE if its default action is on\n"
                "    except OSError:\n"
                "        pass\n"
                "    return {'disposition': 'refund'}\n"
            )
        },
    )
    done = subprocess.run(
        [sys.executable, "-m", "agent_evals.cli", "run", "--output", "r.jsonl"],
        cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert len(load_record(project / "r.jsonl").cases) == 3
