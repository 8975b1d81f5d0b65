"""`sources`: the fingerprint of the code a prompt runs, from the working tree and from git."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import git
import pytest

from agent_evals import sources
from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.load import load_project
from agent_evals.models import ProjectConfig
from agent_evals.sources import CodeScope, agent_scope, fingerprint, fingerprint_at, grader_scope
from tests.support import EVALSET, PROMPT, basic_project, write_tree

AGENT_PROMPT = PROMPT.replace("python:agent:answer", "python:agent.main:answer")
SCOPE = CodeScope(packages=("agent",), watch=("tools/*.yaml",))


def commit_all(root: Path) -> git.Repo:
    """A repository at `root` with everything in it committed."""
    repo = git.Repo.init(root)
    repo.git.add("-A")
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    identity |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    repo.git.commit("-m", "x", "--no-verify", env=identity)
    return repo


def tree(root: Path) -> Path:
    return write_tree(
        root,
        {
            "agent/__init__.py": "",
            "agent/main.py": "def answer(request):\n    return 'ok'\n",
            "agent/sub/deep.py": "X = 1\n",
            "agent/prompt.txt": "not python, not watched\n",
            "tools/search.yaml": "name: search\n",
            "tools/nested/skip.yaml": "not matched by tools/*.yaml\n",
            "other.py": "not the agent's package\n",
        },
    )


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("agent/**.py", "agent/main.py", True),
        ("agent/**.py", "agent/sub/deep.py", True),
        ("agent/**.py", "agentx/main.py", False),
        ("agent/**/*.py", "agent/main.py", True),
        ("tools/*.yaml", "tools/search.yaml", True),
        ("tools/*.yaml", "tools/nested/skip.yaml", False),
        ("**/*.md", "README.md", True),
        ("**/*.md", "docs/a/b.md", True),
        ("docs/**", "docs/a/b.md", True),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file/.txt", False),
        ("x[!ab].txt", "xc.txt", True),
        ("x[!ab].txt", "xa.txt", False),
        ("x[ab].txt", "xb.txt", True),
        ("a+b.txt", "a+b.txt", True),
        ("a+b.txt", "aab.txt", False),
    ],
)
def test_watch_globs_match_as_github_path_filters_do(glob: str, path: str, matches: bool) -> None:
    assert CodeScope(watch=(glob,)).covers(path) is matches


def test_a_package_covers_its_python_files_only() -> None:
    scope = CodeScope(packages=("agent",))
    assert scope.covers("agent/main.py")
    assert scope.covers("agent/sub/deep.py")
    assert scope.covers("agent.py")
    assert not scope.covers("agent/prompt.txt")
    assert not scope.covers("agentx/main.py")
    assert not scope.covers("agent/__pycache__/main.py")
    assert not scope.covers("agent/.venv/lib/site-packages/x.py")


def test_the_scope_of_a_prompt_and_of_an_eval_sets_graders(tmp_path: Path) -> None:
    basic_project(
        tmp_path,
        prompts__triage_yaml=AGENT_PROMPT + "watch: [tools/*.yaml]\n",
        evalsets__triage_yaml=EVALSET.replace(
            "graders:\n", "graders:\n  - {type: 'python:checks.tone:grade', name: tone}\n"
        ),
        checks__tone_py="def grade(**kw):\n    return True\n",
        tools__a_yaml="a: 1\n",
    )
    project = load_project(tmp_path)
    assert project.errors == []
    prompt = project.prompts["triage"]
    assert agent_scope(prompt, project.config) == CodeScope(packages=("agent",), watch=("tools/*.yaml",))
    assert grader_scope(project.evalsets["triage"]) == CodeScope(packages=("checks",))
    # A named provider of type python is the same; another provider runs none of the project's code.
    config = ProjectConfig.model_validate({"providers": {"bot": {"type": "python", "target": "bot.app:run"}}})
    assert agent_scope(prompt, config, "bot").packages == ("bot",)
    assert agent_scope(prompt, project.config, "openai").packages == ()


def test_the_fingerprint_is_the_same_from_the_tree_and_from_the_commit(tmp_path: Path) -> None:
    root = tree(tmp_path / "repo")
    os.symlink("main.py", root / "agent/alias.py")
    repo = commit_all(root)
    on_disk = fingerprint(SCOPE, root)
    committed = fingerprint_at(SCOPE, repo, repo.head.commit.hexsha, ".")
    assert on_disk == committed
    assert [path for path, _ in on_disk.files] == [
        "agent/__init__.py",
        "agent/alias.py",
        "agent/main.py",
        "agent/sub/deep.py",
        "tools/search.yaml",
    ]
    # One changed file: a different digest, and the diff names that file only.
    (root / "agent/sub/deep.py").write_text("X = 2\n")
    changed = fingerprint(SCOPE, root)
    assert changed.digest != committed.digest
    assert changed.changed(committed) == ("agent/sub/deep.py",)
    assert sources.changed_in_headers(committed.header(), changed.header()) == ("agent/sub/deep.py",)
    repo.close()


def test_a_project_in_a_subfolder_is_read_under_its_prefix(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    tree(root / "services/bot")
    tree(root)  # the same layout at the top of the repository must not count
    repo = commit_all(root)
    (root / "agent/main.py").write_text("changed outside the project\n")
    committed = fingerprint_at(SCOPE, repo, repo.head.commit.hexsha, "services/bot")
    assert committed == fingerprint(SCOPE, root / "services/bot")
    assert "agent/main.py" in dict(committed.files)
    repo.close()


def test_links_are_not_followed_and_environments_are_skipped(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("TOKEN = 1\n")
    root = tree(tmp_path / "project")
    os.symlink(outside, root / "agent/linked")  # a folder out of the root
    os.symlink(outside / "secret.py", root / "agent/secret.py")  # a file out of the root
    write_tree(root / "agent/.venv", {"pyvenv.cfg": "home = /usr\n", "lib/site-packages/x.py": "X = 1\n"})
    write_tree(root / "agent/__pycache__", {"main.py": "cached\n"})
    before = fingerprint(SCOPE, root)
    files = dict(before.files)
    assert "agent/secret.py" in files  # fingerprinted as the link it is
    assert not any(path.startswith(("agent/linked/", "agent/.venv/", "agent/__pycache__/")) for path in files)
    # What the links point at is never read: changing it changes nothing.
    (outside / "secret.py").write_text("TOKEN = 2\n")
    assert fingerprint(SCOPE, root) == before


def test_a_fifo_in_the_package_is_skipped_without_blocking(tmp_path: Path) -> None:
    root = tree(tmp_path)
    os.mkfifo(root / "agent/pipe.py")
    result: list[sources.Fingerprint] = []
    worker = threading.Thread(target=lambda: result.append(fingerprint(SCOPE, root)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert result, "fingerprinting a tree with a FIFO in it did not finish"
    assert "agent/pipe.py" not in dict(result[0].files)


def test_a_file_too_large_is_refused_on_disk_and_in_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree(tmp_path / "repo")
    (root / "agent/model.py").write_bytes(b"W = '" + b"x" * 4096 + b"'\n")
    repo = commit_all(root)
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 1024)
    with pytest.raises(ConfigError) as on_disk:
        fingerprint(SCOPE, root)
    assert on_disk.value.path == str(root / "agent/model.py")
    assert "too large to fingerprint as agent code" in on_disk.value.message
    with pytest.raises(ConfigError) as in_git:
        fingerprint_at(SCOPE, repo, repo.head.commit.hexsha, ".")
    assert in_git.value.path == f"agent/model.py@{repo.head.commit.hexsha[:8]}"
    repo.close()


def test_too_many_files_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path)
    monkeypatch.setattr(sources, "MAX_FILES", 2)
    with pytest.raises(ConfigError, match="more than 2 files of agent code"):
        fingerprint(SCOPE, root)


def test_watch_globs_that_leave_the_root_or_do_not_parse_are_errors_at_their_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    watch = "watch:\n  - agent/**.py\n  - ../shared/*.py\n  - /etc/passwd\n  - 'tools\\*.yaml'\n  - 'a[b'\n"
    basic_project(tmp_path, prompts__triage_yaml=AGENT_PROMPT + watch)
    errors = [e.render() for e in load_project(tmp_path).errors]
    assert errors == [
        "prompts/triage.yaml:23: 'watch[1]': a watch glob may not contain '.' or '..' segments: it stays "
        "inside the project root (got '../shared/*.py') (fix the value)",
        "prompts/triage.yaml:24: 'watch[2]': a watch glob is relative to the project root, not absolute "
        "(got '/etc/passwd') (fix the value)",
        "prompts/triage.yaml:25: 'watch[3]': use '/' between folders, not '\\' (got 'tools\\\\*.yaml') (fix the value)",
        "prompts/triage.yaml:26: 'watch[4]': '[' at position 2 starts a character class that is not closed "
        "(got 'a[b') (fix the value)",
    ]


def test_validate_names_a_watch_glob_that_matches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    basic_project(tmp_path, prompts__triage_yaml=PROMPT + "watch:\n  - agent.py\n  - tools/*.yaml\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 2
    out = capsys.readouterr()
    assert out.err == "1 problem(s) found\n"
    assert out.out.splitlines() == [
        "prompts/triage.yaml:23: watch glob 'tools/*.yaml' matches no file under the project root "
        "(globs are relative to the project root, e.g. 'agent/**.py' or 'tools/*.yaml')"
    ]
