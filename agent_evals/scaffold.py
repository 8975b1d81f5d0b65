"""`init`: put agent-evals into an existing repository, ready to validate, run and gate.

It writes a commented `agent-evals.yaml`, a small synthetic example prompt and
eval set on the offline `local` model (they run with no API key), the
pre-commit hooks, and a GitHub Actions workflow that gates pull requests. The
files are package data under `agent_evals/templates/init/`, copied as they are: the
only value filled in is how the workflow installs agent-evals.

It never overwrites a file unless told to, and never rewrites an existing
`.pre-commit-config.yaml` (it holds the team's other hooks): `precommit_snippet`
gives the block to add to it instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from agent_evals.errors import ConfigError

__all__ = ["PRECOMMIT_CONFIG", "init", "install_spec", "precommit_snippet"]

PRECOMMIT_CONFIG = ".pre-commit-config.yaml"
_GITIGNORE_LINE = ".agent-evals/"  # run records and the response cache
_INSTALL_PLACEHOLDER = "__AGENT_EVALS_SPEC__"


@dataclass(frozen=True)
class _File:
    template: str  # path under agent_evals/templates/init/
    target: str  # path under the repository root


_FILES = (
    _File("agent-evals.yaml", "agent-evals.yaml"),
    _File("prompts/ticket-triage.yaml", "prompts/ticket-triage.yaml"),
    _File("evalsets/ticket-triage.yaml", "evalsets/ticket-triage.yaml"),
    _File("github/workflows/prompt-gate.yml", ".github/workflows/prompt-gate.yml"),
)
_PRECOMMIT_TEMPLATE = "pre-commit-config.yaml"


def _template(name: str) -> str:
    path = resources.files("agent_evals").joinpath("templates").joinpath("init")
    for part in name.split("/"):
        path = path.joinpath(part)
    return path.read_text(encoding="utf-8")


def init(root: Path, *, force: bool = False) -> list[Path]:
    """Scaffold agent-evals into the repository at `root`.

    Writes `agent-evals.yaml`, `prompts/ticket-triage.yaml`, `evalsets/ticket-triage.yaml`,
    `.github/workflows/prompt-gate.yml`, and `.pre-commit-config.yaml` unless one
    exists (see `precommit_snippet`); adds `.agent-evals/` to `.gitignore`.

    Args:
        root: the root of the repository (or a folder that will become one); it must exist.
        force: overwrite the scaffold's files if they exist (never `.pre-commit-config.yaml`).

    Returns:
        The files written or changed, in the order above, `.gitignore` last.

    Raises:
        ConfigError: `root` is not a folder, or is inside a git repository but not its
            root, or some files exist and `force` is not set (the message lists them).
    """
    if not root.is_dir():
        raise ConfigError("no such folder", path=root, hint="create it, or run init in the repository")
    top = repository_root(root)
    if top is not None and top != root.resolve():
        raise ConfigError(
            f"not the root of its git repository ({top}): GitHub and pre-commit read their files there",
            path=root,
            hint=f"run init in {top}; a project in a subfolder needs the folder in the workflow's "
            "working-directory and in the hooks' `files:`",
        )
    existing = [f.target for f in _FILES if (root / f.target).exists()]
    if existing and not force:
        raise ConfigError(
            f"init would overwrite {', '.join(existing)}",
            path=root,
            hint="move them away, or pass --force to overwrite them",
        )
    written: list[Path] = []
    spec = install_spec()
    for file in _FILES:
        text = _template(file.template).replace(_INSTALL_PLACEHOLDER, spec)
        written.append(_write(root / file.target, text))
    if not (root / PRECOMMIT_CONFIG).exists():
        written.append(_write(root / PRECOMMIT_CONFIG, _template(_PRECOMMIT_TEMPLATE)))
    if _ignore(root / ".gitignore"):
        written.append(root / ".gitignore")
    return written


def precommit_snippet(root: Path) -> str | None:
    """The hooks to add to the `.pre-commit-config.yaml` at `root`, if it lacks them.

    Returns:
        The `- repo: local` block (indented to go under `repos:`), or None when there
        is no such file (init writes one) or it already names both agent-evals hooks.
    """
    path = root / PRECOMMIT_CONFIG
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    if "agent-evals-validate" in text and "agent-evals-gate" in text:
        return None
    return _template(_PRECOMMIT_TEMPLATE).split("repos:\n", 1)[1]


def install_spec(dist: metadata.Distribution | None = None) -> str:
    """How CI should `pip install` the agent-evals that is running now.

    From a VCS URL it was installed from (PEP 610 `direct_url.json`), that URL at
    the same commit, credentials removed; otherwise the same version from the
    package index (a local folder or an editable install cannot be reached from CI).

    Args:
        dist: the installed distribution; default: agent-evals'.

    Returns:
        A pip requirement, e.g. `agent-evals==0.1.0` or `agent-evals @ git+https://...@<sha>`.
    """
    if dist is None:
        try:
            dist = metadata.distribution("agent-evals")
        except metadata.PackageNotFoundError:
            return "agent-evals"
    pinned = f"agent-evals=={dist.version}"
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except ValueError:
        return pinned
    if not isinstance(direct, dict) or not isinstance(direct.get("url"), str):
        return pinned
    vcs = direct.get("vcs_info")
    if not isinstance(vcs, dict) or vcs.get("vcs") != "git" or not isinstance(vcs.get("commit_id"), str):
        return pinned
    url = _without_credentials(direct["url"])
    if url is None:
        return pinned
    return f"agent-evals @ git+{url}@{vcs['commit_id']}"


def _without_credentials(url: str) -> str | None:
    """`url` without a user or password; None for URLs CI cannot reach (local files)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http", "ssh") or not parts.hostname:
        return None
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    if parts.scheme == "ssh" and parts.username == "git" and parts.password is None:
        netloc = f"git@{netloc}"  # a user name, not a secret: ssh to GitHub needs it
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def repository_root(folder: Path) -> Path | None:
    """The work tree root of the git repository `folder` is in, if any (no git needed)."""
    here = folder.resolve()
    return next((p for p in (here, *here.parents) if (p / ".git").exists()), None)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _ignore(gitignore: Path) -> bool:
    """Add `.agent-evals/` to `.gitignore` unless it is there; whether the file changed."""
    text = gitignore.read_text(encoding="utf-8") if gitignore.is_file() else ""
    entries = {line.strip().strip("/") for line in text.splitlines()}
    if _GITIGNORE_LINE.strip("/") in entries:
        return False
    separator = "" if not text or text.endswith("\n") else "\n"
    gitignore.write_text(
        f"{text}{separator}# agent-evals: run records and the response cache\n{_GITIGNORE_LINE}\n",
        encoding="utf-8",
    )
    return True
