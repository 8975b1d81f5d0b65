"""What a run records about the repository it ran in: commit, dirty flag, branch, remotes.

Two `git` commands, run in parallel, rather than gitpython: importing it costs
more start-up than the whole question, and every `run` asks it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from agent_evals.credentials import register_url, safe_url

_TIMEOUT_S = 30.0


def _git(path: Path, *args: str) -> subprocess.Popen[str] | None:
    try:
        return subprocess.Popen(
            ["git", "-C", str(path), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError:  # no git on this machine
        return None


def _output(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return -1, ""
    return proc.returncode, out


def describe(path: Path) -> dict[str, Any] | None:
    """Commit, dirty flag, branch and credential-free remotes of the repo at `path` (or above), or None.

    Dirty means anything `git status` shows: staged or unstaged changes, or untracked
    files that are not ignored.
    """
    status = _git(path, "status", "--porcelain=v2", "--branch", "--untracked-files=normal")
    remotes = _git(path, "config", "--get-regexp", r"^remote\..*\.url$")
    if status is None:
        return None
    code, out = _output(status)
    remotes_out = _output(remotes)[1] if remotes is not None else ""
    if code != 0:  # not a repository (or one git refuses to read)
        return None
    commit: str | None = None
    branch: str | None = None
    dirty = False
    for line in out.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ")
            commit = None if oid == "(initial)" else oid  # no commits yet
        elif line.startswith("# branch.head "):
            head = line.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    found: dict[str, str] = {}
    for line in remotes_out.splitlines():
        key, _, url = line.partition(" ")
        if key.startswith("remote.") and key.endswith(".url") and url:
            register_url(url)  # a token in a remote is masked wherever it might be echoed
            found[key.removeprefix("remote.").removesuffix(".url")] = safe_url(url)
    return {"commit": commit, "dirty": dirty, "branch": branch, "remotes": found}
