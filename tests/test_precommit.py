"""The pre-commit hooks, run by the real pre-commit in real temporary repositories.

The hooks of this repository's `.pre-commit-hooks.yaml` are installed the way a user's
`repo:` entry installs them: pre-commit clones the hook repository at a commit and
pip-installs agent-evals into a virtualenv of its own (`language: python`).

Why not `pre-commit try-repo <this repo>`, which does the same thing? try-repo keeps
its store in a fresh temporary folder, so every call pays the whole install again,
whatever PRE_COMMIT_HOME says; and its shadow commit of a dirty repository takes only
tracked files, so a new module (or `.pre-commit-hooks.yaml` itself, before it is
committed) would be missing. So this module does what try-repo does (a config naming
the repository and a commit, then `pre-commit run`) with two changes: the commit is a
snapshot of the work tree as it is now, committed with fixed metadata, so the same
content gives the same sha; and PRE_COMMIT_HOME is a fixed folder under
`.agent-evals/`, so the environment is built once per content of the package and
reused by later test runs (the first build takes about half a minute with a warm pip
cache, minutes without).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from agent_evals import scaffold
from tests.support import GitRepo
from tests.test_scaffold import drop_refund_examples

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".agent-evals" / "pre-commit"  # ignored by git; `make clean` removes it
HOOKS = ("agent-evals-validate", "agent-evals-gate")
# What `pip install .` of the hook repository needs, and the manifest.
_SNAPSHOT = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "agent_evals/")
_FIXED = {
    "GIT_AUTHOR_NAME": "agent-evals tests",
    "GIT_AUTHOR_EMAIL": "tests@agent-evals.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_NAME": "agent-evals tests",
    "GIT_COMMITTER_EMAIL": "tests@agent-evals.invalid",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def snapshot(dest: Path) -> str:
    """Commit the installable part of this work tree (tracked and untracked) at `dest`; its sha."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *_SNAPSHOT)
    shutil.rmtree(dest, ignore_errors=True)
    for rel in sorted(filter(None, listed.split("\0"))):
        source = ROOT / rel
        if source.is_file():  # a tracked file may be deleted in the work tree
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    env = {**os.environ, **_FIXED}
    git(dest, "init", "--quiet", "--initial-branch=main", env=env)
    git(dest, "add", "--all", env=env)
    git(dest, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", "snapshot", env=env)
    return git(dest, "rev-parse", "HEAD")


@dataclass(frozen=True)
class HookRepo:
    path: Path
    sha: str
    home: Path  # PRE_COMMIT_HOME
    install_seconds: float


def pre_commit(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args],
        cwd=cwd,
        env={**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"},
        capture_output=True,
        text=True,
        timeout=1800,  # the first install builds a virtualenv with pandas and scikit-learn
        check=False,
    )


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HookRepo]:
    """This repository as a pre-commit hook repository, its hook environment installed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building the same environment
        repo = CACHE / "hook-repo"
        sha = snapshot(repo)
        home = CACHE / "home"
        marker = CACHE / "hook-repo.sha"
        if not marker.is_file() or marker.read_text() != sha:
            shutil.rmtree(home, ignore_errors=True)  # environments of older snapshots: never used again
            marker.unlink(missing_ok=True)
        config = tmp_path_factory.mktemp("hooks") / "config.yaml"
        write_config(config, repo, sha)
        started = time.monotonic()
        installed = pre_commit(repo, home, "install-hooks", "--config", str(config))
        assert installed.returncode == 0, installed.stdout + installed.stderr
        marker.write_text(sha)
        yield HookRepo(repo, sha, home, time.monotonic() - started)


def write_config(path: Path, repo: Path, sha: str) -> Path:
    """The config `pre-commit try-repo` writes: the hook repository at a commit, both hooks."""
    config = {"repos": [{"repo": str(repo), "rev": sha, "hooks": [{"id": h} for h in HOOKS]}]}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Project(GitRepo):
    """A developer's clone of a repository set up by `agent-evals init`, on a feature branch."""

    def __init__(self, tmp_path: Path) -> None:
        origin = GitRepo(tmp_path / "origin")
        scaffold.init(origin.root)
        origin.commit(message="agent-evals init")
        subprocess.run(["git", "clone", "--quiet", str(origin.root), str(tmp_path / "clone")], check=True)
        origin.git.close()
        super().__init__(tmp_path / "clone")
        self.git.git.switch("--create", "feature")
        self.git.git.branch("--set-upstream-to=origin/main")

    def stage(self, files: dict[str, str]) -> None:
        self.write(files)
        self.git.git.add("--", *files)

    def text(self, rel: str) -> str:
        return (self.root / rel).read_text()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    p = Project(tmp_path)
    yield p
    p.git.close()


def run_hooks(project: Project, hook_repo: HookRepo, tmp_path: Path, *hook: str) -> tuple[int, str]:
    """`pre-commit run [HOOK]` on what is staged, as at commit time."""
    config = write_config(tmp_path / "hooks.yaml", hook_repo.path, hook_repo.sha)
    done = pre_commit(project.root, hook_repo.home, "run", "--config", str(config), *hook)
    return done.returncode, done.stdout + done.stderr


def status(output: str, hook_name: str) -> str:
    """'Passed', 'Failed' or 'Skipped' for the hook named `hook_name` in pre-commit's output."""
    line = next(line for line in output.splitlines() if line.startswith(hook_name + "."))
    return line.rsplit(")", 1)[-1].rsplit(".", 1)[-1].strip()


# --- the manifest and the generated config, checked by pre-commit itself -------------------


def test_pre_commit_accepts_the_manifest_and_the_generated_config(tmp_path: Path) -> None:
    scaffold.init(tmp_path)
    manifest = pre_commit(ROOT, tmp_path / "home", "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml"))
    assert manifest.returncode == 0, manifest.stdout + manifest.stderr
    config = pre_commit(ROOT, tmp_path / "home", "validate-config", str(tmp_path / ".pre-commit-config.yaml"))
    assert config.returncode == 0, config.stdout + config.stderr


# --- the hooks of this repository (language: python) ----------------------------------------


def test_a_valid_change_passes_both_hooks(project: Project, hook_repo: HookRepo, tmp_path: Path) -> None:
    prompt = project.text("prompts/ticket-triage.yaml")
    project.stage({"prompts/ticket-triage.yaml": prompt.replace("(synthetic example)", "(synthetic, v2)")})

    code, output = run_hooks(project, hook_repo, tmp_path)

    assert code == 0, output
    assert (status(output, "agent-evals validate"), status(output, "agent-evals gate")) == (
        "Passed",
        "Passed",
    )


def test_broken_yaml_fails_validate_with_its_location(
    project: Project, hook_repo: HookRepo, tmp_path: Path
) -> None:
    project.stage({"evalsets/broken.yaml": "schema_version: 1\nid: broken\nprompt: [ticket-triage\n"})

    code, output = run_hooks(project, hook_repo, tmp_path, "agent-evals-validate")

    assert code == 1, output
    assert status(output, "agent-evals validate") == "Failed"
    assert "evalsets/broken.yaml:4: not valid YAML" in output
    assert "Traceback" not in output


def test_a_regressing_prompt_edit_fails_the_gate(
    project: Project, hook_repo: HookRepo, tmp_path: Path
) -> None:
    project.stage(
        {"prompts/ticket-triage.yaml": drop_refund_examples(project.text("prompts/ticket-triage.yaml"))}
    )

    code, output = run_hooks(project, hook_repo, tmp_path)

    assert code == 1, output
    assert (status(output, "agent-evals validate"), status(output, "agent-evals gate")) == (
        "Passed",
        "Failed",
    )
    assert "critical refund" in output
    assert "agent-evals gate FAILED" in output


def test_hooks_skip_commits_without_prompts_or_eval_sets(
    project: Project, hook_repo: HookRepo, tmp_path: Path
) -> None:
    project.stage({"README.md": "# a repository with prompts\n", "notes/prompts.yaml": "not: a prompt\n"})

    code, output = run_hooks(project, hook_repo, tmp_path)

    assert code == 0, output
    assert (status(output, "agent-evals validate"), status(output, "agent-evals gate")) == (
        "Skipped",
        "Skipped",
    )


# --- the config init writes (repo: local, language: system), through a real `git commit` ----


def test_the_generated_hooks_block_a_regressing_commit(project: Project, tmp_path: Path) -> None:
    env_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # agent-evals on PATH
    home = tmp_path / "pre-commit-home"
    installed = pre_commit(project.root, home, "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    head = project.git.head.commit.hexsha
    env = {**os.environ, "PATH": env_path, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}

    def commit(message: str) -> tuple[int, str]:
        done = subprocess.run(
            ["git", "commit", "-m", message], cwd=project.root, env=env, capture_output=True, text=True
        )
        return done.returncode, done.stdout + done.stderr  # git sends a hook's output to stderr

    prompt = project.text("prompts/ticket-triage.yaml")
    project.stage({"prompts/ticket-triage.yaml": drop_refund_examples(prompt)})
    code, output = commit("drop the refund examples")

    assert code == 1, output
    assert status(output, "agent-evals gate") == "Failed"
    assert "critical refund" in output
    assert project.git.head.commit.hexsha == head

    project.stage({"prompts/ticket-triage.yaml": prompt.replace("(synthetic example)", "(synthetic, v2)")})
    code, output = commit("reword the description")
    assert code == 0, output
    assert (status(output, "agent-evals validate"), status(output, "agent-evals gate")) == (
        "Passed",
        "Passed",
    )
    assert project.git.head.commit.hexsha != head


def test_try_repo_runs_both_hooks_from_this_repository(project: Project, hook_repo: HookRepo) -> None:
    """The literal `pre-commit try-repo`, once: it installs into a throwaway store, so it is slow.

    It runs every hook of the hook repository on what is staged: the regressing edit
    validates, and the gate fails it.
    """
    project.stage(
        {"prompts/ticket-triage.yaml": drop_refund_examples(project.text("prompts/ticket-triage.yaml"))}
    )
    done = pre_commit(project.root, hook_repo.home, "try-repo", str(hook_repo.path), "--ref", hook_repo.sha)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert (status(output, "agent-evals validate"), status(output, "agent-evals gate")) == (
        "Passed",
        "Failed",
    )
    assert "critical refund" in output
