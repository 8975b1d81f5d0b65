"""`validate` checks what it is pointed at, and says so (issue 11).

A path that does not exist, a file outside the project, a command started below the
project root, an entry that must never be opened (a FIFO blocks forever, /dev/zero reads
forever, a link may lead out of the project): each is one located line and exit 2, never
a silent pass and never a hang. Opening a FIFO would hang these tests, so every one that
meets one runs under an alarm; /dev/zero, which would instead eat memory, runs in a child
process with a memory limit and a timeout.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.load import find_root, load_project
from tests.support import EVALSET, basic_project, deadline, write_tree

YAML_FIX = "replace it with a YAML file or remove it"
JSONL_FIX = "replace it with a JSON Lines file or remove it"
OUTSIDE = "a symlink to outside the project, which is never followed; copy the file into the project"
CASES_FILE = "triage.cases.jsonl"
CASES = (
    '{"id": "a", "vars": {"subject": "s", "body": "b"}, "expected": {"disposition": "refund"}}\n'
    '{"id": "b", "vars": {"subject": "s", "body": "b"}, "expected": {"disposition": "billing"}}\n'
)
SECRET = "id: triage\npassword: hunter2\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The project is one level down, so a file "outside the project" can sit beside it.
    root = basic_project(tmp_path / "proj")
    (tmp_path / "secret.yaml").write_text(SECRET)
    monkeypatch.chdir(root)
    return root


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    with deadline():
        yield


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], list[str]]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out.splitlines(), captured.err.splitlines()


# --- where validate looks ---------------------------------------------------------------


def test_a_clean_project_says_what_it_checked(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompt = (project / "prompts/triage.yaml").read_text()
    (project / "prompts/other.yaml").write_text(prompt.replace("id: triage", "id: other"))
    (project / "evalsets/other.yaml").write_text(EVALSET.replace("id: triage", "id: other"))
    code, out, err = cli(capsys, "validate")
    assert (code, out, err) == (0, [], ["validated 2 prompts, 2 eval sets (6 cases)"])


def test_named_paths_count_what_was_checked(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(
        project,
        {
            "evalsets/second.yaml": EVALSET.replace("id: triage", "id: second").split("  - id: c2")[0],
            "evalsets/" + CASES_FILE: CASES,
        },
    )
    code, out, err = cli(capsys, "validate", "evalsets/second.yaml")
    assert (code, out, err) == (0, [], ["validated 0 prompts, 1 eval set (1 case)"])
    # A prompt brings the eval sets that target it.
    code, out, err = cli(capsys, "validate", "prompts/triage.yaml")
    assert (code, out, err) == (0, [], ["validated 1 prompt, 2 eval sets (4 cases)"])
    # A folder stands for the project files under it.
    code, out, err = cli(capsys, "validate", "evalsets")
    assert (code, out, err) == (0, [], ["validated 0 prompts, 2 eval sets (4 cases)"])
    # Stored reviews and cases files beside the eval sets are the project's (pre-commit passes them).
    code, out, err = cli(capsys, "validate", "evalsets/" + CASES_FILE)
    assert (code, out, err) == (0, [], ["validated 0 prompts, 0 eval sets (0 cases)"])


def test_the_config_file_stands_for_the_whole_project(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(project, {"agent-evals.yaml": "defaults:\n  concurrency: 2\n"})
    code, out, err = cli(capsys, "validate", "agent-evals.yaml")
    assert (code, out, err) == (0, [], ["validated 1 prompt, 1 eval set (3 cases)"])


def test_a_missing_path_is_a_problem(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "validate", "prompts/triage.yaml", "prompts/tirage.yaml")
    assert (code, out, err) == (2, ["prompts/tirage.yaml: no such file"], ["1 problem(s) found"])


@pytest.mark.parametrize("path", ["agent.py", "../secret.yaml", "prompts/notes.md", "docs"])
def test_a_path_outside_the_project_is_a_problem(
    project: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    write_tree(project, {"prompts/notes.md": "notes\n", "docs/x.yaml": "a: 1\n"})
    code, out, _ = cli(capsys, "validate", path)
    assert (code, out) == (
        2,
        [
            f"{path}: not a prompt, eval set or agent-evals.yaml of this project "
            "(this project keeps prompts in prompts/ and eval sets in evalsets/)"
        ],
    )


def test_a_named_fifo_outside_the_folders_is_not_opened(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(project / "pipe")
    code, out, _ = cli(capsys, "validate", "pipe")
    assert (code, out) == (
        2,
        ["pipe: not a regular file (a FIFO; name a prompt, an eval set or agent-evals.yaml)"],
    )


def test_validate_from_a_subfolder_finds_the_root(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "prompts")
    code, out, err = cli(capsys, "validate")
    assert (code, out, err) == (0, [], ["validated 1 prompt, 1 eval set (3 cases)"])
    # Paths given are relative to where the command runs, and problems are named from there.
    (project / "evalsets/triage.yaml").write_text(EVALSET.replace("type: exact_match", "type: exact_mach"))
    code, out, _ = cli(capsys, "validate", "triage.yaml")
    assert code == 2
    assert out == [
        "../evalsets/triage.yaml:9: unknown grader type 'exact_mach' "
        "(known types: budget, contains, exact_match, json_schema, regex, rubric, tool_args, tool_called, "
        "tool_not_called, tool_sequence, python:module:function)"
    ]


def test_validate_outside_any_project_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "repo/.git").mkdir(parents=True)
    (tmp_path / "repo/src").mkdir()
    # Above the git work tree there is a project, but a walk never leaves the repository.
    (tmp_path / "prompts").mkdir()
    monkeypatch.chdir(tmp_path / "repo/src")
    code, out, err = cli(capsys, "validate")
    assert (code, out, err) == (
        2,
        [],
        [
            "no agent-evals project here or above (looked for agent-evals.yaml, prompts/, evalsets/; "
            "run 'agent-evals init' or pass -C DIR)"
        ],
    )


def test_find_root(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "agent-evals.yaml": "paths:\n  prompts: llm/prompts\n",
            "llm/prompts/x.yaml": "id: x\n",
            "sub/project/evalsets/y.yaml": "id: y\n",
            "sub/project/deep/er/.keep": "",
        },
    )
    # The config wins over a nearer folder that merely holds prompts/.
    assert find_root(tmp_path / "llm") == tmp_path
    assert find_root(tmp_path / "llm/prompts") == tmp_path
    # With no config anywhere up to the boundary, the nearest prompts/ or evalsets/ folder.
    (tmp_path / "sub/.git").mkdir()
    assert find_root(tmp_path / "sub/project/deep/er") == tmp_path / "sub/project"
    # The boundary is checked itself, then the walk stops short of the config above it.
    (tmp_path / "sub/evalsets").mkdir()
    assert find_root(tmp_path / "sub") == tmp_path / "sub"
    (tmp_path / "sub/evalsets").rmdir()
    with pytest.raises(ConfigError) as caught:
        find_root(tmp_path / "sub")
    assert caught.value.render() == (
        "no agent-evals project here or above (looked for agent-evals.yaml, prompts/, evalsets/; "
        "run 'agent-evals init' or pass -C DIR)"
    )


# --- entries that must never be opened ------------------------------------------------------

Maker = Callable[[Path, Path], None]


def fifo(path: Path, outside: Path) -> None:
    os.mkfifo(path)


def dangling(path: Path, outside: Path) -> None:
    os.symlink("nowhere.yaml", path)


def loop(path: Path, outside: Path) -> None:
    os.symlink(path.name + ".loop", path)
    os.symlink(path.name, path.parent / (path.name + ".loop"))


def to_outside(path: Path, outside: Path) -> None:
    os.symlink(outside, path)


KINDS: dict[str, tuple[Maker, str]] = {
    "fifo": (fifo, "a FIFO; {fix}"),
    "dangling": (dangling, "a dangling symlink; {fix}"),
    "loop": (loop, "a symlink loop; {fix}"),
    "outside": (to_outside, OUTSIDE),
}
# Where the entry goes; the path named in the error; its fix.
PLACES = {
    "prompt": ("prompts/triage.yaml", YAML_FIX),
    "evalset": ("evalsets/triage.yaml", YAML_FIX),
    "config": ("agent-evals.yaml", YAML_FIX),
    "cases_file": ("evalsets/" + CASES_FILE, JSONL_FIX),
}


def place(project: Path, where: str, make: Maker) -> str:
    rel, _ = PLACES[where]
    if where == "cases_file":
        head = EVALSET.split("cases:")[0] + f"cases_file: {CASES_FILE}\n"
        (project / "evalsets/triage.yaml").write_text(head)
    target = project / rel
    if target.exists():
        target.unlink()
    make(target, project.parent / "secret.yaml")
    return rel


@pytest.mark.parametrize("where", PLACES)
@pytest.mark.parametrize("kind", KINDS)
def test_validate_reports_an_entry_it_must_not_open(
    project: Path, capsys: pytest.CaptureFixture[str], kind: str, where: str
) -> None:
    make, why = KINDS[kind]
    rel = place(project, where, make)
    line = f"{rel}: not a regular file ({why.format(fix=PLACES[where][1])})"
    code, out, err = cli(capsys, "validate")
    assert (code, out, err) == (2, [line], ["1 problem(s) found"])
    assert "hunter2" not in "\n".join(out + err)
    # Named, it is reported the same way.
    code, out, _ = cli(capsys, "validate", rel)
    assert (code, out) == (2, [line])


@pytest.mark.parametrize("where", PLACES)
@pytest.mark.parametrize("kind", KINDS)
def test_run_stops_at_an_entry_it_must_not_open(
    project: Path, capsys: pytest.CaptureFixture[str], kind: str, where: str
) -> None:
    make, why = KINDS[kind]
    rel = place(project, where, make)
    code, _, err = cli(capsys, "run")
    assert code == 2
    assert f"{rel}: not a regular file ({why.format(fix=PLACES[where][1])})" in err
    assert "hunter2" not in "\n".join(err)


def _limit_memory() -> None:
    # Were /dev/zero ever read, the child fails at 2 GiB instead of taking the machine's memory.
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("where", PLACES)
def test_a_symlink_to_dev_zero_is_never_read(project: Path, where: str) -> None:
    rel = place(project, where, lambda path, _: os.symlink("/dev/zero", path))
    line = f"{rel}: not a regular file (a symlink to a device; {PLACES[where][1]})"
    script = "import sys; from agent_evals.cli import main; sys.exit(main(sys.argv[1:]))"
    for command in ("validate", "run"):
        done = subprocess.run(
            [sys.executable, "-c", script, command],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=_limit_memory,
        )
        assert done.returncode == 2, (command, done.stderr)
        assert line in (done.stdout if command == "validate" else done.stderr).splitlines()


def test_a_symlink_to_a_file_inside_the_project_is_followed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = project / "shared"
    shared.mkdir()
    (project / "prompts/triage.yaml").rename(shared / "triage.yaml")
    os.symlink("../shared/triage.yaml", project / "prompts/triage.yaml")
    (project / "evalsets/triage.yaml").write_text(EVALSET.split("cases:")[0] + f"cases_file: {CASES_FILE}\n")
    (shared / CASES_FILE).write_text(CASES)
    os.symlink("../shared/" + CASES_FILE, project / "evalsets" / CASES_FILE)
    code, out, err = cli(capsys, "validate")
    assert (code, out, err) == (0, [], ["validated 1 prompt, 1 eval set (2 cases)"])
    loaded = load_project(project)
    # Named by the link, whose name the id matches, not by where it points.
    assert loaded.prompts["triage"].source_path == "prompts/triage.yaml"
    assert loaded.evalsets["triage"].case_source(1) == ("evalsets/" + CASES_FILE, 2)


def test_a_cases_file_outside_the_project_is_not_read(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.parent / "cases.jsonl").write_text('{"id": "hunter2"}\n')
    (project / "evalsets/triage.yaml").write_text(
        EVALSET.split("cases:")[0] + "cases_file: ../../cases.jsonl\n"
    )
    code, out, _ = cli(capsys, "validate")
    assert (code, out) == (
        2,
        [
            "../cases.jsonl: outside the project (no file outside the project root is read; "
            "move it into the project)"
        ],
    )
