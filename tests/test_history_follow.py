"""`history.follow`: a large run's record followed into the history store by a child process, on
SQLite and a real PostgreSQL. What the child writes equals the same run written at once; cases
reach the store while the run runs (a full batch, or `LINGER_S` after the first of a partial one);
an abandoned run leaves its cases without an end for `history import` to complete; the store's
error comes back as the store's one line; a killed child is said, not a traceback. End to end, a
run of `FOLLOW_MIN` cases never loads SQLAlchemy in its own process, and a Ctrl-C leaves no child."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.history.follow import FOLLOW_MIN, FollowedRun, _complete_lines, child_env
from agent_evals.history.ingest import add_run, import_record_file
from agent_evals.history.store import ENV_VAR, cases, grades, runs
from agent_evals.record import RecordWriter, RunEnd, load_record
from tests.http_server import ScriptedServer, openai_chat
from tests.pg import pg_cluster
from tests.support import write_tree
from tests.test_history_feed import END, dump, header, opener, results, wait_for_cases
from tests.test_history_import import history_url
from tests.test_runtime import PROMPT, evalset

__all__ = ["history_url", "pg_cluster"]


@pytest.fixture
def project(history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose store is `history_url` (the child finds it from the environment it inherits)."""
    write_tree(tmp_path, {"agent-evals.yaml": "schema_version: 1\n"})
    monkeypatch.setenv(ENV_VAR, history_url)
    monkeypatch.chdir(tmp_path)  # a run's record path is as given, here relative to the project
    return tmp_path


def start(project: Path, run_id: str) -> tuple[RecordWriter, FollowedRun, Path]:
    path = Path("records") / f"{run_id}.jsonl"
    writer = RecordWriter(path, header(run_id))
    followed = FollowedRun(path, project)
    writer.on_flush = followed.flushed
    return writer, followed, path


def count(url: str, run_id: str) -> int:
    with opener(url)() as store, store.connect() as conn:
        return conn.execute(select(func.count()).where(cases.c.run_id == run_id)).scalar_one()


def test_a_followed_run_equals_the_same_run_added_at_once(history_url: str, project: Path) -> None:
    done = results(2500)  # two full batches and a partial one
    with opener(history_url)() as store:
        add_run(store, header("added"), ((None, r) for r in done), END, source="records/followed.jsonl")
    writer, followed, _ = start(project, "followed")
    for i, result in enumerate(done):
        writer.add(result)
        if i % 300 == 0:
            writer.flush()
    writer.close(END)

    imported = followed.close(END)

    assert (imported.kind, imported.id, imported.outcome, imported.results) == (
        "run",
        "followed",
        "added",
        2500,
    )
    for table in (runs, cases, grades):
        assert dump(history_url, table, "followed") == dump(history_url, table, "added"), table.name


def test_cases_reach_the_store_while_the_run_runs(history_url: str, project: Path) -> None:
    writer, followed, _ = start(project, "live")
    done = results(1005)
    try:
        for result in done[:1000]:  # a full batch: written at once
            writer.add(result)
        writer.flush()
        wait_for_cases(history_url, "live", 1000)
        for result in done[1000:]:  # a partial batch: written `LINGER_S` after it began
            writer.add(result)
        writer.flush()
        wait_for_cases(history_url, "live", 1005)
        with opener(history_url)() as store, store.connect() as conn:
            status = conn.execute(select(runs.c.status).where(runs.c.run_id == "live")).scalar_one()
        assert status == "interrupted"  # no end yet: as a record without its end line imports
    finally:
        writer.close(END)
        imported = followed.close(END)
    assert imported.results == 1005
    with opener(history_url)() as store, store.connect() as conn:
        assert conn.execute(select(runs.c.status).where(runs.c.run_id == "live")).scalar_one() == "complete"


def test_an_abandoned_run_keeps_its_cases_without_an_end_and_importing_the_record_completes_it(
    history_url: str, project: Path
) -> None:
    writer, followed, path = start(project, "dying")
    for result in results(1200):
        writer.add(result)
    writer.flush()
    wait_for_cases(history_url, "dying", 1000)

    followed.abandon()
    followed.abandon()  # again: nothing

    assert count(history_url, "dying") == 1000  # the partial batch was not yet due
    with opener(history_url)() as store, store.connect() as conn:
        assert conn.execute(select(runs.c.finished_at).where(runs.c.run_id == "dying")).scalar_one() is None
    writer.close(RunEnd(status="interrupted", finished_at="2026-01-01T00:10:00Z"))
    with opener(history_url)() as store:
        completed = import_record_file(store, path)
    assert (completed.outcome, completed.results) == ("updated", 200)  # what the store lacked
    assert count(history_url, "dying") == 1200


def test_a_store_that_cannot_be_opened_is_the_stores_one_line(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "taken").write_text("a file where the store's folder would be\n")
    monkeypatch.setenv(ENV_VAR, f"sqlite:///{tmp_path / 'taken' / 'history.sqlite3'}")
    writer, followed, _ = start(project, "nowhere")
    for result in results(10):
        writer.add(result)
    writer.close(END)
    with pytest.raises(ConfigError) as raised:
        followed.close(END)
    assert "cannot create the history store's folder" in raised.value.render()
    assert raised.value.path == ENV_VAR


def test_a_child_that_was_killed_is_said_in_one_line(project: Path) -> None:
    writer, followed, _ = start(project, "killed")
    os.kill(followed._proc.pid, signal.SIGKILL)  # the OOM killer, say
    for result in results(10):
        writer.add(result)
    writer.close(END)  # its wake-ups hit a closed pipe: never an error for the run
    with pytest.raises(ConfigError) as raised:
        followed.close(END)
    assert "was killed (signal 9)" in raised.value.render()
    assert "agent-evals history import records/killed.jsonl" in raised.value.render()


def test_a_record_that_is_not_a_run_record_is_refused_naming_its_line(project: Path) -> None:
    path = project / "other.jsonl"
    path.write_text('{"kind": "trace"}\n')
    followed = FollowedRun(path, project)
    with pytest.raises(ConfigError) as raised:
        followed.close()
    assert raised.value.render().startswith(f"{path}:1: the first line is not a run header")


def test_a_line_seen_half_written_is_passed_on_whole(tmp_path: Path) -> None:
    # A flush may reach the disk in pieces: the child passes a line on once its newline is there.
    # The reader is driven from a thread: it waits for the run's wake-up on a real pipe.
    record = tmp_path / "halves.jsonl"
    whole = b'{"kind": "end", "status": "complete"}\n'
    record.write_bytes(whole[:20])
    wake_r, wake_w = os.pipe()
    got: list[bytes] = []

    def read(lines: Iterator[bytes]) -> None:
        with contextlib.suppress(Exception):  # an abandoned reader (a failed assert below) just ends
            got.extend(lines)

    with record.open("rb") as fh:
        reader = threading.Thread(target=read, args=(_complete_lines(fh, wake_r, []),), daemon=True)
        reader.start()
        try:
            os.write(wake_w, b"f")  # the half is there: nothing may come of it
            time.sleep(0.2)
            assert got == []
            with record.open("ab") as out:
                out.write(whole[20:])
            os.write(wake_w, b"c")  # the rest, and the record closed
            reader.join(30)
        finally:
            os.close(wake_w)  # an abandoned reader sees the end of input
            reader.join(30)
            os.close(wake_r)
    assert got == [whole]


def test_a_run_that_cannot_start_a_process_keeps_the_thread(
    project: Path, history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No process to be had (here: no interpreter where the run says it is): the run's own
    # thread writes the history, as it does for a smaller run.
    write_tree(project, {"prompts/echo.yaml": PROMPT, "evalsets/echo.yaml": evalset(FOLLOW_MIN)})
    monkeypatch.setattr(sys, "executable", str(project / "no-python-here"))
    with ScriptedServer(default=openai_chat()) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        assert main(["run", "-j", "50", "--output", "r.jsonl"]) == 0
    run_id = load_record(project / "r.jsonl").header.run_id
    assert count(history_url, run_id) == FOLLOW_MIN


def environ_of(pid: int) -> list[bytes]:
    """A started process's environment. Popen returns once exec has closed the process's
    close-on-exec pipe, which the kernel does before it copies the environment onto the new stack:
    read in between (a loaded machine), /proc/PID/environ is empty for a moment."""
    deadline = time.monotonic() + 10  # a hang guard, not a timing assertion
    while not (data := Path(f"/proc/{pid}/environ").read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return data.split(b"\0")


def test_the_child_runs_with_the_run_s_agent_evals_first_on_its_path(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent_evals

    monkeypatch.setenv("PYTHONPATH", "relative")
    writer, followed, _ = start(project, "pathed")
    try:
        environ = environ_of(followed._proc.pid)
    finally:
        writer.close(END)
        followed.close(END)
    path = next(v for v in environ if v.startswith(b"PYTHONPATH=")).decode().removeprefix("PYTHONPATH=")
    assert path.split(os.pathsep) == [str(Path(agent_evals.__file__).resolve().parents[1]), "relative"]


def test_the_child_collects_garbage_at_the_run_s_thresholds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch's parsed lines and rows are many objects: the child collects at `_gc.THRESHOLDS`,
    as the run does (at the defaults the collector took a fifth of its CPU)."""
    from agent_evals._gc import THRESHOLDS
    from agent_evals.history import follow

    seen: list[tuple[int, int, int]] = []
    monkeypatch.setattr(follow, "_follow", lambda *args: seen.append(gc.get_threshold()))
    with open(os.devnull) as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        before = gc.get_threshold()
        assert follow.main(["r.jsonl", "r.jsonl"]) == 0
    assert seen == [THRESHOLDS]
    assert gc.get_threshold() == before
    assert json.loads(capsys.readouterr().out) == {"abandoned": True}


# --- end to end --------------------------------------------------------------------------------------


def run_script(root: Path, *args: str) -> subprocess.Popen[str]:
    script = (
        "import json, sys\n"
        "from agent_evals.cli import main\n"
        "code = main(['run', '--output', 'r.jsonl', *sys.argv[1:]])\n"
        "open('loaded.json', 'w').write(json.dumps([code, 'sqlalchemy' in sys.modules]))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("n", [FOLLOW_MIN, FOLLOW_MIN - 1])
def test_a_large_run_is_followed_by_a_child_and_a_small_one_by_a_thread(
    project: Path, history_url: str, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    write_tree(project, {"prompts/echo.yaml": PROMPT, "evalsets/echo.yaml": evalset(n)})
    with ScriptedServer(default=openai_chat()) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        proc = run_script(project, "-j", "50")
        _, err = proc.communicate(timeout=300)
    code, loaded_sqlalchemy = json.loads((project / "loaded.json").read_text())
    assert code == 0, err
    # The followed run's rows were all written by another process.
    assert loaded_sqlalchemy is (n < FOLLOW_MIN)
    run_id = load_record(project / "r.jsonl").header.run_id
    assert count(history_url, run_id) == n
    with opener(history_url)() as store, store.connect() as conn:
        assert conn.execute(select(runs.c.status).where(runs.c.run_id == run_id)).scalar_one() == "complete"


def test_a_ctrl_c_abandons_the_child_and_leaves_none_behind(
    project: Path, history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(project, {"prompts/echo.yaml": PROMPT, "evalsets/echo.yaml": evalset(FOLLOW_MIN)})
    hold = 0.5

    def slow(request: object) -> object:
        time.sleep(hold)
        return openai_chat()(request)

    with ScriptedServer(default=slow) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        proc = run_script(project, "-j", "4")
        record = project / "r.jsonl"
        deadline = time.monotonic() + 60
        while not (record.exists() and '"kind":"case"' in record.read_text()):
            assert time.monotonic() < deadline, "no case was written"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        children = _children(proc.pid)
        assert len(children) == 1  # the follower
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert json.loads((project / "loaded.json").read_text())[0] == 130
    end = load_record(record).end
    assert end is not None
    assert end.status == "interrupted"
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or _state(pid) == "Z", "the follower outlived the run"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_the_child_answers_in_one_json_line(project: Path, history_url: str) -> None:
    # The protocol `FollowedRun` reads: run by hand, as it starts it.
    path = project / "records" / "byhand.jsonl"
    writer = RecordWriter(path, header("byhand"))
    for result in results(3):
        writer.add(result)
    writer.close(END)
    done = subprocess.run(
        [sys.executable, "-m", "agent_evals.history.follow", str(path), "byhand.jsonl"],
        cwd=project, input=b"c", capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    assert json.loads(done.stdout) == {
        "imported": {
            "kind": "run", "id": "byhand", "outcome": "added", "source": "byhand.jsonl", "results": 3,
            "why": "already in the store",
        }
    }  # fmt: skip


def test_the_child_imports_the_agent_evals_the_run_imported(tmp_path: Path) -> None:
    # A run that found agent_evals through a relative PYTHONPATH (or its working directory) must
    # not leave its child, which starts in the project's root, with another copy or none.
    import agent_evals

    home = Path(agent_evals.__file__).resolve().parent.parent
    env = child_env({"PYTHONPATH": "relative:/elsewhere", "OTHER": "kept"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(home), "relative", "/elsewhere"]
    assert env["OTHER"] == "kept"
    found = subprocess.run(
        [sys.executable, "-c", "import agent_evals; print(agent_evals.__file__)"],
        cwd=tmp_path, env={**child_env(os.environ)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(found.stdout.strip()).resolve() == Path(agent_evals.__file__).resolve()
