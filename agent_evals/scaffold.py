"""`init`: put agent-evals into an existing repository, ready to validate, run and gate.

It writes a commented `agent-evals.yaml`, a small synthetic example prompt and
eval set on the offline `local` model (they run with no API key), the
pre-commit hooks, and a GitHub Actions workflow that gates pull requests. The
files are package data under `agent_evals/templates/init/`, copied as they are: the
only value filled in is the workflow's `uses:` of the agent-evals action (`action_ref`).

It never overwrites a file unless told to, and never rewrites an existing
`.pre-commit-config.yaml` (it holds the team's other hooks): `precommit_snippet`
gives the block to add to it instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import urlsplit

from agent_evals.errors import ConfigError

__all__ = [
    "ACTION_UNKNOWN",
    "ACTION_UNKNOWN_NOTE",
    "PRECOMMIT_CONFIG",
    "action_ref",
    "init",
    "precommit_snippet",
]

PRECOMMIT_CONFIG = ".pre-commit-config.yaml"
_GITIGNORE_LINE = ".agent-evals/"  # run records and the response cache
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # what GitHub accepts as a pinned `uses:` ref
_ACTION_PLACEHOLDER = "__AGENT_EVALS_ACTION__"
ACTION_UNKNOWN = "OWNER/agent-evals@COMMIT"
"""The workflow's `uses:` when `action_ref` cannot tell (the user fills in both parts)."""
ACTION_UNKNOWN_NOTE = (
    f".github/workflows/prompt-gate.yml uses {ACTION_UNKNOWN}: replace it with the agent-evals repository "
    "and a full commit SHA (init fills it in when agent-evals was installed with "
    'pip install "agent-evals @ git+https://github.com/OWNER/agent-evals@SHA")'
)
"""What `init` says when it wrote ACTION_UNKNOWN."""


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
    ref = action_ref()
    uses = (
        f"{ref}  # the commit of agent-evals that ran init (a commit, not a tag: a tag can move)"
        if ref is not None
        else f"{ACTION_UNKNOWN}  # TODO: the agent-evals repository and a full commit SHA"
    )
    for file in _FILES:
        text = _template(file.template).replace(_ACTION_PLACEHOLDER, uses)
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


def action_ref(dist: metadata.Distribution | None = None) -> str | None:
    """The `uses:` of the agent-evals GitHub Action at the commit that is running now.

    Known when agent-evals was installed from a GitHub repository with pip (PEP 610
    `direct_url.json`: `pip install "agent-evals @ git+https://github.com/OWNER/agent-evals@SHA"`);
    the action in that repository installs agent-evals from its own checkout. A local folder,
    an editable install or a wheel names no commit GitHub has.

    Args:
        dist: the installed distribution; default: agent-evals'.

    Returns:
        `OWNER/NAME@<full commit sha>`, or None when it cannot be told.
    """
    if dist is None:
        try:
            dist = metadata.distribution("agent-evals")
        except metadata.PackageNotFoundError:
            return None
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except ValueError:
        return None
    if not isinstance(direct, dict) or not isinstance(direct.get("url"), str):
        return None
    vcs = direct.get("vcs_info")
    if not isinstance(vcs, dict) or vcs.get("vcs") != "git":
        return None
    commit = vcs.get("commit_id")
    if not isinstance(commit, str) or not _FULL_SHA.fullmatch(commit):
        return None
    parts = urlsplit(direct["url"])
    owner_name = parts.path.strip("/").removesuffix(".git").split("/")
    if parts.scheme not in ("https", "ssh") or parts.hostname != "github.com" or len(owner_name) != 2:
        return None
    return f"{owner_name[0]}/{owner_name[1]}@{commit}"


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
