"""What a run records about the repository it ran in (gitpython, imported lazily)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any


def strip_credentials(url: str) -> str:
    """Drop user and password from a remote URL (https://user:token@host/x -> https://host/x)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def describe(path: Path) -> dict[str, Any] | None:
    """Commit, dirty flag, branch and credential-free remotes of the repo at `path`, or None."""
    import git

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    try:
        try:
            commit: str | None = repo.head.commit.hexsha
        except ValueError:  # no commits yet
            commit = None
        branch = None if repo.head.is_detached else repo.active_branch.name
        return {
            "commit": commit,
            "dirty": repo.is_dirty(untracked_files=True),
            "branch": branch,
            "remotes": {r.name: strip_credentials(url) for r in repo.remotes for url in r.urls},
        }
    finally:
        repo.close()
