"""What a branch changed since it left its base, and which (prompt, eval set) pairs to gate.

`agent-evals ci --base REF` compares the work tree with the merge base of HEAD
and REF: commits on the branch, staged and unstaged edits and untracked files
all count, and commits the base got after the branch point do not. Baseline
files are read straight from git objects at the merge base: nothing is checked
out, and the index and the work tree are never touched.

It stays cheap when nothing changed: a handful of git processes (`rev-parse`,
`merge-base`, one `diff`, one `ls-files`) and no file history. gitpython is
imported inside the functions, because the CLI imports this module at start-up.

Deleted eval sets cannot be run, so they are never pairs; `changes_since` lists
them in `ChangeSet.deleted_evalsets` so the gate-integrity report can call them out.

The code a prompt runs is part of the pair (`agent_evals.sources`): a change to its
`python:` provider's package, to its `watch:` paths or to its eval set's `python:`
graders gates the pair even when no YAML changed. The changed paths are filtered
against each pair's code scope first (no file is hashed when no code changed), then
the scope's fingerprint at the merge base (from git objects) is compared with the
work tree's. `worktree_at` checks the merge base out into a temporary `git worktree`
so the baseline can run the code it had.

`--base auto` (`resolve_base`) is for hooks that run on a developer's machine,
where no CI variable names the target branch: the current branch's upstream,
else the remote's default branch, else `main`/`master`.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from agent_evals import _yaml, sources
from agent_evals.errors import ConfigError
from agent_evals.load import YAML_SUFFIXES, load_config, load_evalset, load_prompt
from agent_evals.models import EvalSet, Prompt

if TYPE_CHECKING:
    from git import Repo

    from agent_evals.load import Project

__all__ = [
    "ChangeSet",
    "Landed",
    "Pair",
    "Status",
    "affected_pairs",
    "changes_since",
    "default_branch",
    "landed",
    "load_evalset_at",
    "load_prompt_at",
    "read_at",
    "resolve_base",
    "untargeted_prompts",
    "worktree_at",
]

Status = Literal["new", "modified", "unchanged", "deleted"]

AUTO = "auto"
_NOT_A_REPO_HINT = "run inside a git repository, or use --baseline-dir"
_SHALLOW_HINT = "shallow CI clones need 'fetch-depth: 0'"


@dataclass(frozen=True)
class ChangeSet:
    """The files a branch changed since the merge base of HEAD and the base ref.

    Attributes:
        repo_root: the root of the work tree (resolved).
        base_ref: the base ref as the user gave it; for `auto`, the ref it resolved to.
        merge_base: the full sha of merge-base(HEAD, base_ref).
        changed: repo-relative POSIX paths changed since `merge_base`, sorted:
            committed on the branch, staged, unstaged and untracked (not ignored);
            a rename counts as its old and its new path; deletions included.
        deleted_evalsets: ids of the eval sets (in the project given to
            `changes_since`) whose file is gone from the work tree.
    """

    repo_root: Path
    base_ref: str
    merge_base: str
    changed: tuple[str, ...]
    deleted_evalsets: tuple[str, ...] = ()

    @property
    def short_sha(self) -> str:
        """The merge base, abbreviated, as shown in `path@sha`."""
        return self.merge_base[:8]


@dataclass(frozen=True)
class Pair:
    """One (prompt, eval set) pair to gate; each status compares the merge base with the work tree.

    Attributes:
        prompt_id: the prompt the eval set targets in the work tree.
        evalset_id: the eval set.
        prompt_status: the prompt file, merge base vs work tree.
        evalset_status: the eval set file and its cases file, merge base vs work tree.
        retargeted_from: the prompt the eval set targeted at the baseline, when it differs.
        base_prompt_path: repo-relative path of the prompt at the merge base (for
            `load_prompt_at`), None if it did not exist there.
        base_evalset_path: the same for the eval set (for `load_evalset_at`).
        agent_code: repo-relative paths of the prompt's code (its `python:` package and
            `watch:` paths) whose content differs from the merge base.
        grader_code: the same for the code of the eval set's `python:` graders.
    """

    prompt_id: str
    evalset_id: str
    prompt_status: Status
    evalset_status: Status
    retargeted_from: str | None = None
    base_prompt_path: str | None = None
    base_evalset_path: str | None = None
    agent_code: tuple[str, ...] = ()
    grader_code: tuple[str, ...] = ()

    @property
    def code_changed(self) -> bool:
        """Whether the code the pair runs differs from the merge base's."""
        return bool(self.agent_code or self.grader_code)


# --- finding the changes ----------------------------------------------------------


def changes_since(root: Path, base_ref: str) -> ChangeSet:
    """The files changed since the merge base of HEAD and `base_ref`.

    Args:
        root: the project root; the repository is found from here (it may be a
            subfolder of the repository, as in a monorepo).
        base_ref: the branch, tag or commit the branch will merge into, e.g. `origin/main`;
            `auto` picks one (see `resolve_base`).

    Returns:
        The change set; paths are relative to the repository root.

    Raises:
        ConfigError: not in a git repository, no commits yet, `base_ref` unknown
            (or `auto` finding no base branch), no merge base (unrelated histories,
            or a shallow clone), git failing, or an invalid `agent-evals.yaml`
            (needed to find the eval set folder).
    """
    with _open_repo(root) as repo:
        if repo.working_tree_dir is None:
            raise ConfigError("not a git work tree (a bare repository)", path=root, hint=_NOT_A_REPO_HINT)
        repo_root = Path(repo.working_tree_dir).resolve()
        if not repo.head.is_valid():
            raise ConfigError(
                "the git repository has no commits yet",
                path=repo_root,
                hint="commit the prompts and eval sets on the base branch first",
            )
        if base_ref == AUTO:
            base_ref = _auto_base(repo)
        merge_base = _merge_base(repo, _resolve_ref(repo, base_ref), base_ref)
        changed = _changed_paths(repo, merge_base)
    return ChangeSet(
        repo_root=repo_root,
        base_ref=base_ref,
        merge_base=merge_base,
        changed=changed,
        deleted_evalsets=_deleted_evalsets(repo_root, root, changed),
    )


@contextmanager
def _open_repo(path: Path) -> Iterator[Repo]:
    """The repository containing `path`; git failures inside become ConfigErrors.

    Closing the repository on exit also ends the `git cat-file` processes
    gitpython keeps for reading objects.
    """
    try:
        import git
    except ImportError:  # gitpython could not find a git executable
        raise ConfigError("git is not installed or not on PATH", hint=_NOT_A_REPO_HINT) from None
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ConfigError("not inside a git repository", path=path, hint=_NOT_A_REPO_HINT) from None
    # Read only: no opportunistic index refresh, which takes the index lock and rewrites it.
    repo.git.update_environment(GIT_OPTIONAL_LOCKS="0")
    try:
        yield repo
    except git.CommandError as exc:
        raise _git_failed(exc.stderr, exc.status) from None
    except git.exc.ODBError as exc:  # an object missing from the clone
        raise _git_failed(str(exc), None) from None
    finally:
        repo.close()


def resolve_base(root: Path, base_ref: str) -> str:
    """The ref `--base` means: `base_ref` itself, or for `auto` the branch this one will merge into.

    `auto` tries, in order: the current branch's upstream (`@{upstream}`), the
    remote's default branch (`origin/HEAD`), `origin/main`, `origin/master`, and
    the local `main` and `master`. On the base branch itself, with no upstream,
    that is the branch: only uncommitted and staged changes are gated (a pre-commit hook).

    Args:
        root: a folder inside the repository.
        base_ref: `auto`, or a ref (returned as it is).

    Returns:
        A ref name, e.g. `origin/main`.

    Raises:
        ConfigError: not in a git repository, or `auto` found none of those refs.
    """
    if base_ref != AUTO:
        return base_ref
    with _open_repo(root) as repo:
        return _auto_base(repo)


def default_branch(root: Path) -> str:
    """The branch a team merges into and deploys from: `origin/HEAD`, `origin/main`,
    `origin/master`, `main` or `master` (never the current branch's upstream, unlike `auto`).

    Raises:
        ConfigError: not in a git repository, or none of those refs exists.
    """
    with _open_repo(root) as repo:
        return _auto_base(repo, upstream=False)


def _auto_base(repo: Repo, *, upstream: bool = True) -> str:
    import git

    if upstream:
        try:
            found: str = repo.git.rev_parse("--abbrev-ref", "--symbolic-full-name", "@{upstream}")
            if found.strip() and _is_commit(repo, found.strip()):
                return found.strip()
        except git.GitCommandError:
            pass  # no upstream configured, a detached HEAD, or an upstream never fetched
    try:
        default: str = repo.git.symbolic_ref("--quiet", "--short", "refs/remotes/origin/HEAD")
        if default.strip() and _is_commit(repo, default.strip()):
            return default.strip()
    except git.GitCommandError:
        pass  # no origin, or a clone that never recorded the remote's default branch
    for full, short in (
        ("refs/remotes/origin/main", "origin/main"),
        ("refs/remotes/origin/master", "origin/master"),
        ("refs/heads/main", "main"),
        ("refs/heads/master", "master"),
    ):
        if _is_commit(repo, full):
            return short
    raise ConfigError(
        "--base auto found no base branch: the current branch has no upstream, and there is no "
        "origin/HEAD, origin/main, origin/master, main or master",
        hint="pass --base REF, or set an upstream: git branch --set-upstream-to=origin/main",
    )


def _is_commit(repo: Repo, ref: str) -> bool:
    import git

    try:
        repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def _resolve_ref(repo: Repo, base_ref: str) -> str:
    """The commit sha `base_ref` names."""
    import git

    if base_ref and not base_ref.startswith("-"):  # a leading '-' would be read as an option
        try:
            sha: str = repo.git.rev_parse("--verify", "--quiet", f"{base_ref}^{{commit}}")
            return sha.strip()
        except git.GitCommandError as exc:
            if exc.status != 1:
                raise
    raise ConfigError(f"unknown git ref '{base_ref}'", hint=_fetch_hint(repo, base_ref))


def _fetch_hint(repo: Repo, base_ref: str) -> str:
    """'fetch it first: git fetch origin main; ...', with the remote the ref names if any."""
    ref = base_ref.removeprefix("refs/remotes/").removeprefix("refs/heads/")
    remote, _, branch = ref.partition("/")
    if not branch or remote not in {"origin", *(r.name for r in repo.remotes)}:
        remote, branch = "origin", ref
    return f"fetch it first: git fetch {remote} {branch}; {_SHALLOW_HINT}"


def _merge_base(repo: Repo, base_sha: str, base_ref: str) -> str:
    bases = repo.merge_base("HEAD", base_sha)
    if bases:
        return str(bases[0].hexsha)
    if Path(repo.common_dir, "shallow").is_file():
        # The branch point is older than the clone's history: it looks like unrelated histories.
        hint = f"the clone is shallow: git fetch --unshallow; {_SHALLOW_HINT}"
    else:
        hint = "the histories are unrelated: pass a --base this branch was made from"
    raise ConfigError(f"HEAD and '{base_ref}' have no common ancestor", hint=hint)


def _changed_paths(repo: Repo, merge_base: str) -> tuple[str, ...]:
    # One diff against the merge base covers committed, staged and unstaged changes.
    # --no-renames: a rename shows as a deletion plus an addition, i.e. both paths.
    diff: bytes = repo.git.diff(
        "--name-status", "-z", "--no-renames", "--no-ext-diff", merge_base, "--", stdout_as_string=False
    )
    paths = set(_parse_name_status(diff))
    # `ls-files -z` rather than `repo.untracked_files`: no full `git status`, no path unquoting.
    untracked: bytes = repo.git.ls_files("--others", "--exclude-standard", "-z", stdout_as_string=False)
    paths.update(os.fsdecode(p) for p in untracked.split(b"\0") if p)
    return tuple(sorted(paths))


def _parse_name_status(out: bytes) -> Iterator[str]:
    """The paths in `git diff --name-status -z` output (renames and copies give two)."""
    fields = out.split(b"\0")
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i][:1]
        count = 2 if status in (b"R", b"C") else 1
        names = fields[i + 1 : i + 1 + count]
        if status == b"C":
            names = names[1:]  # a copy leaves its source as it was
        yield from (os.fsdecode(n) for n in names)
        i += 1 + count


def _git_failed(stderr: object, status: object) -> ConfigError:
    """One line from what git said, e.g. 'fatal: detected dubious ownership in repository'."""
    # gitpython wraps stderr as "\n  stderr: '...'".
    text = str(stderr or "").strip().removeprefix("stderr:").strip().strip("'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = lines[0].removeprefix("fatal: ").removeprefix("error: ") if lines else f"exit status {status}"
    return ConfigError(f"git failed: {detail}", hint="run git by hand here to see why, or use --baseline-dir")


def _deleted_evalsets(repo_root: Path, project_root: Path, changed: tuple[str, ...]) -> tuple[str, ...]:
    """Eval sets whose file is among the changes but gone from the work tree.

    A changed path that is not in the work tree was there at the merge base (a
    deletion or the old side of a rename). An id is only deleted if no file with
    another YAML suffix took its place.
    """
    folder = _repo_rel(repo_root, project_root / load_config(project_root).paths.evalsets)
    if folder is None:
        return ()
    gone = {
        stem
        for path in changed
        if (stem := _id_in(folder, path)) is not None and not (repo_root / path).exists()
    }
    return tuple(sorted(i for i in gone if _current(repo_root, folder, i) is None))


# --- mapping changes to pairs ---------------------------------------------------------


def untargeted_prompts(changes: ChangeSet, project: Project) -> list[str]:
    """The ids of the prompts whose files the changes touched and that no eval set of the project
    targets (prompts of the work tree only): no pair gates them (`affected_pairs`), so nothing
    evaluates the change. Sorted."""
    if not changes.changed:
        return []
    layout = _Layout.of(changes.repo_root, project)
    targeted = {evalset.prompt for evalset in project.evalsets.values()}
    touched = {i for path in changes.changed if (i := _id_in(layout.prompts, path)) is not None}
    return sorted(i for i in touched if i in project.prompts and i not in targeted)


def affected_pairs(
    changes: ChangeSet,
    project: Project,
    base_evalset_prompts: Mapping[str, str] | None = None,
    *,
    provider: str | None = None,
) -> list[Pair]:
    """The (prompt, eval set) pairs the changes put behind the gate, sorted by eval set id.

    A pair is gated when its eval set changed (its YAML or its cases file), when
    its prompt changed (every eval set targeting the prompt is gated with it), when
    the eval set now targets a different prompt (gated with the new one), or when
    the code the pair runs changed: the prompt's `python:` package or `watch:` paths,
    or the eval set's `python:` graders (`agent_evals.sources`). A changed prompt no
    eval set targets gives no pair (`untargeted_prompts` names them, for `ci` to
    refuse); deleted eval sets are not pairs (see `ChangeSet.deleted_evalsets`);
    neither is an eval set whose prompt exists neither in the work tree nor at the
    merge base (`validate` reports it, and `ci` refuses the project: `Project.missing_prompt`).

    Args:
        changes: from `changes_since`.
        project: the candidate (work tree) project, from `load_project`.
        base_evalset_prompts: eval set id -> the prompt it targeted at the baseline,
            when the caller already knows; an eval set whose entry differs from its
            prompt now is gated even if its file did not change. Default: read from
            the merge base, for the changed eval sets only.
        provider: the provider both sides run on instead of the prompts' own (`ci --provider`),
            which decides whose code runs.

    Returns:
        The pairs, with each side's status at the merge base vs the work tree, and the
        files of their code that changed.

    Raises:
        ConfigError: a file at the merge base is not UTF-8, or the code in a pair's scope
            cannot be fingerprinted (a file too large, too many files).
    """
    if not changes.changed and not base_evalset_prompts:
        return []  # the common CI case: no git, no disk reads
    layout = _Layout.of(changes.repo_root, project)
    changed = set(changes.changed)
    changed_prompts = {i for path in changed if (i := _id_in(layout.prompts, path)) is not None}
    pairs: list[Pair] = []
    with _open_repo(changes.repo_root) as repo:
        baseline: _Baseline | None = None  # built on the first pair: no git objects read before
        code = _CodeChanges(repo, changes, project)
        for evalset_id in sorted(project.evalsets):
            evalset = project.evalsets[evalset_id]
            current = _current(layout.root, layout.evalsets, evalset_id)
            cases = _cases_path(current, evalset.cases_file)
            touched = current in changed or cases in changed
            was = (base_evalset_prompts or {}).get(evalset_id)
            prompt = project.prompts.get(evalset.prompt)
            agent_code = code.changed(sources.agent_scope(prompt, project.config, provider)) if prompt else ()
            grader_code = code.changed(sources.grader_scope(evalset))
            if not (
                touched
                or evalset.prompt in changed_prompts
                or (was and was != evalset.prompt)
                or agent_code
                or grader_code
            ):
                continue
            baseline = baseline or _Baseline(repo, changes.merge_base, layout.root)
            evalset_side = baseline.side(changed, layout.evalsets, evalset_id, current)
            prompt_side = baseline.side(
                changed, layout.prompts, evalset.prompt, _current(layout.root, layout.prompts, evalset.prompt)
            )
            if evalset_side is None or prompt_side is None:
                continue  # the file is gone, or the prompt never existed: `validate` says so
            evalset_status, base_evalset = evalset_side
            if evalset_status == "unchanged" and cases is not None and cases in changed:
                evalset_status = "modified" if baseline.file_changed(cases) else "unchanged"
            if base_evalset_prompts is None and base_evalset is not None and touched:
                was = _prompt_at(baseline, base_evalset)
            pairs.append(
                Pair(
                    prompt_id=evalset.prompt,
                    evalset_id=evalset_id,
                    prompt_status=prompt_side[0],
                    evalset_status=evalset_status,
                    retargeted_from=was if was != evalset.prompt else None,
                    base_prompt_path=prompt_side[1],
                    base_evalset_path=base_evalset,
                    agent_code=agent_code,
                    grader_code=grader_code,
                )
            )
    return pairs


class _CodeChanges:
    """Which files of a code scope differ between the merge base and the work tree."""

    def __init__(self, repo: Repo, changes: ChangeSet, project: Project) -> None:
        self._repo = repo
        self._merge_base = changes.merge_base
        self._root = Path(project.root)
        self._prefix = _repo_rel(changes.repo_root, self._root)
        # The changed paths, relative to the project root (the scopes' frame), those outside it dropped.
        self._changed: tuple[str, ...] = ()
        if self._prefix is not None:
            self._changed = tuple(
                rel for path in changes.changed if (rel := _under(self._prefix, path)) is not None
            )
        self._seen: dict[sources.CodeScope, tuple[str, ...]] = {}

    def changed(self, scope: sources.CodeScope) -> tuple[str, ...]:
        """Repo-relative paths in `scope` whose content differs from the merge base, sorted."""
        if self._prefix is None or not any(scope.covers(path) for path in self._changed):
            return ()  # nothing in scope among the changed paths: nothing to hash
        if scope not in self._seen:
            then = sources.fingerprint_at(scope, self._repo, self._merge_base, self._prefix)
            now = sources.fingerprint(scope, self._root)
            prefix = "" if self._prefix == "." else self._prefix + "/"
            self._seen[scope] = tuple(prefix + path for path in now.changed(then))
        return self._seen[scope]


def _under(prefix: str, path: str) -> str | None:
    """`path` (repo-relative) relative to the folder `prefix` (repo-relative, '.' for the root)."""
    if prefix == ".":
        return path
    return path[len(prefix) + 1 :] if path.startswith(prefix + "/") else None


# --- the baseline's code, checked out ------------------------------------------------------


@contextmanager
def worktree_at(changes: ChangeSet) -> Iterator[Path]:
    """The merge base checked out in a temporary `git worktree`, removed on the way out.

    The baseline of a pair whose code changed runs from here, so its `python:` imports
    load the merge base's code. The work tree, the index and HEAD are not touched; git
    records the worktree under `.git/worktrees/` until it is removed, which happens on
    every way out (an error or an interrupt too): `git worktree remove --force`, then
    `git worktree prune` (which also clears a worktree left by a process that was killed).
    Hooks do not run (`post-checkout` could be anything).

    Args:
        changes: from `changes_since`.

    Yields:
        The repository root of the worktree: the project root is at the same relative path in it.

    Raises:
        ConfigError: git could not create it.
    """
    folder = Path(tempfile.mkdtemp(prefix="agent-evals-base-"))
    tree = folder / "tree"
    no_hooks = folder / "no-hooks"
    no_hooks.mkdir()
    try:
        with _open_repo(changes.repo_root) as repo:
            repo.git.worktree("prune")
            command = ["git", "-c", f"core.hooksPath={no_hooks}", "worktree", "add", "--detach", "--quiet"]
            repo.git.execute([*command, str(tree), changes.merge_base])
        yield tree
    finally:
        try:
            with _open_repo(changes.repo_root) as repo:
                if tree.exists():
                    repo.git.worktree("remove", "--force", str(tree))
                repo.git.worktree("prune")
        except ConfigError:
            pass  # the folder goes below; `prune` on the next run clears git's record of it
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class _Layout:
    """Where the project's folders are, relative to the repository root (POSIX)."""

    root: Path
    prompts: str | None
    evalsets: str | None

    @classmethod
    def of(cls, repo_root: Path, project: Project) -> _Layout:
        base = Path(project.root)
        paths = project.config.paths
        return cls(
            root=repo_root,
            prompts=_repo_rel(repo_root, base / paths.prompts),
            evalsets=_repo_rel(repo_root, base / paths.evalsets),
        )


def _repo_rel(repo_root: Path, path: Path) -> str | None:
    """`path` relative to the repository root, POSIX ('.' for the root), None if outside it."""
    try:
        return path.resolve().relative_to(repo_root.resolve()).as_posix()
    except ValueError:
        return None


def _id_in(folder: str | None, path: str) -> str | None:
    """The id of a prompt or eval set file directly in `folder` (as the loader finds them)."""
    pure = PurePosixPath(path)
    if folder is None or pure.suffix not in YAML_SUFFIXES or pure.parent.as_posix() != folder:
        return None
    return pure.stem


def _candidates(folder: str | None, file_id: str) -> list[str]:
    if folder is None:
        return []
    return [posixpath.normpath(posixpath.join(folder, file_id + suffix)) for suffix in YAML_SUFFIXES]


def _current(repo_root: Path, folder: str | None, file_id: str) -> str | None:
    """The repo-relative path of the file for `file_id` in the work tree, if there is one."""
    return next((c for c in _candidates(folder, file_id) if (repo_root / c).is_file()), None)


def _cases_path(evalset_path: str | None, ref: str | None) -> str | None:
    """The repo-relative path a `cases_file` reference names, None if outside the repository."""
    if evalset_path is None or ref is None or posixpath.isabs(ref):
        return None
    path = posixpath.normpath(posixpath.join(posixpath.dirname(evalset_path), ref))
    return None if path == ".." or path.startswith("../") else path


class _Baseline:
    """The files of the merge-base commit, read from git objects, beside the work tree's."""

    def __init__(self, repo: Repo, sha: str, work_tree: Path) -> None:
        self._tree = repo.commit(sha).tree
        self._work_tree = work_tree

    def read(self, relpath: str) -> bytes | None:
        """The bytes of the file at `relpath` in the commit, None if there is no file there."""
        try:
            obj = self._tree / relpath
        except KeyError:
            return None
        if obj.type != "blob":
            return None  # a folder or a submodule
        data: bytes = obj.data_stream.read()
        return data

    def same(self, data: bytes, current: str) -> bool:
        """Whether the work tree file `current` has exactly the bytes `data`."""
        return (self._work_tree / current).read_bytes() == data

    def side(
        self, changed: set[str], folder: str | None, file_id: str, current: str | None
    ) -> tuple[Status, str | None] | None:
        """A prompt's or eval set's status and its path at the merge base; None if it exists nowhere.

        Args:
            changed: the changed paths.
            folder: the repo-relative folder of such files.
            file_id: the id (the file name without suffix).
            current: the file in the work tree, if any.
        """
        if current is not None and current not in changed:
            return "unchanged", current
        # The same path first, then the other suffix (a .yml -> .yaml rename).
        others = [c for c in _candidates(folder, file_id) if c != current]
        for base_path in [current, *others] if current is not None else others:
            data = self.read(base_path)
            if data is None:
                continue
            if current is None:
                return "deleted", base_path
            return ("unchanged" if self.same(data, current) else "modified"), base_path
        return None if current is None else ("new", None)

    def file_changed(self, path: str) -> bool:
        """Whether a changed path really differs (it may be deleted and re-added as untracked)."""
        data = self.read(path)
        return data is None or not (self._work_tree / path).is_file() or not self.same(data, path)


def _prompt_at(baseline: _Baseline, evalset_path: str) -> str | None:
    """The prompt an eval set targeted at the merge base; None if its YAML does not say."""
    data = baseline.read(evalset_path)
    if data is None:
        return None
    try:
        mapping = _yaml.load_mapping(Path(evalset_path), text=data.decode("utf-8"))
    except (ConfigError, UnicodeDecodeError):
        return None  # a broken baseline: the gate reports it when it loads the baseline
    target = mapping.get("prompt")
    return target if isinstance(target, str) else None


# --- a file's history on a branch -------------------------------------------------------


@dataclass(frozen=True)
class Landed:
    """A commit on a branch's first-parent line that changed a file: when it landed, and the file then."""

    commit: str
    at: dt.datetime
    """The commit's committer time, naive UTC: when the change reached the branch (a merge's own time)."""
    text: str | None
    """The file's text after the commit; None when the commit deleted it (or it is not UTF-8)."""


def landed(root: Path, relpath: str, branch: str) -> list[Landed]:
    """The commits on `branch`'s first-parent line that changed `relpath` (relative to `root`), oldest first.

    A merged pull request is its merge commit here (first parent: the branch before it), so
    each entry is when a version of the file reached the branch, not when it was written.

    Raises:
        ConfigError: not in a git repository, or `branch` is unknown.
    """
    with _open_repo(root) as repo:
        try:
            rel = (root / relpath).absolute().relative_to(Path(repo.working_dir).absolute()).as_posix()
        except ValueError:
            return []  # outside the repository: no history to read
        if not _is_commit(repo, branch):
            raise ConfigError(
                f"unknown branch {branch!r}", hint="pass --base REF: the branch you deploy from"
            )
        found: list[Landed] = []
        for commit in repo.iter_commits(branch, paths=rel, first_parent=True):
            data = _Baseline(repo, commit.hexsha, Path(repo.working_dir)).read(rel)
            try:
                text = None if data is None else data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            at = commit.committed_datetime.astimezone(dt.UTC).replace(tzinfo=None)
            found.append(Landed(commit.hexsha, at, text))
    return found[::-1]


# --- reading the baseline ---------------------------------------------------------------


def read_at(changes: ChangeSet, relpath: str) -> str | None:
    """The text of a file at the merge base, read from git objects.

    Args:
        changes: from `changes_since`.
        relpath: the file's repo-relative POSIX path.

    Returns:
        The text, or None if there was no such file at the merge base.

    Raises:
        ConfigError: the file is not UTF-8 (named `path@sha`).
        ValueError: `relpath` is absolute or leaves the repository.
    """
    rel = _normalized(relpath)
    with _open_repo(changes.repo_root) as repo:
        data = _Baseline(repo, changes.merge_base, changes.repo_root).read(rel)
    return None if data is None else _decode(data, f"{rel}@{changes.short_sha}")


def load_prompt_at(changes: ChangeSet, relpath: str) -> Prompt | None:
    """The prompt at `relpath` as it was at the merge base, loaded with the usual checks.

    Errors and `source_path` name the file `relpath@short_sha`.

    Returns:
        The prompt, or None if the file did not exist at the merge base.

    Raises:
        ConfigError: the file was not a valid prompt at the merge base.
    """
    rel = _normalized(relpath)
    text = read_at(changes, rel)
    if text is None:
        return None
    return load_prompt(Path(rel), text, shown=f"{rel}@{changes.short_sha}")


def load_evalset_at(changes: ChangeSet, relpath: str) -> EvalSet | None:
    """The eval set at `relpath` as it was at the merge base, with its cases file from the same commit.

    Errors and `source_path` name the files `path@short_sha`.

    Returns:
        The eval set, or None if the file did not exist at the merge base.

    Raises:
        ConfigError: the eval set (or its cases file) was not valid at the merge base.
    """
    rel = _normalized(relpath)
    with _open_repo(changes.repo_root) as repo:
        baseline = _Baseline(repo, changes.merge_base, changes.repo_root)
        data = baseline.read(rel)
        if data is None:
            return None

        def read_cases(ref: str) -> tuple[str, str] | None:
            cases = _cases_path(rel, ref)
            blob = baseline.read(cases) if cases is not None else None
            if cases is None or blob is None:
                return None
            shown = f"{cases}@{changes.short_sha}"
            return _decode(blob, shown), shown

        shown = f"{rel}@{changes.short_sha}"
        return load_evalset(Path(rel), _decode(data, shown), shown=shown, read_cases=read_cases)


def _normalized(relpath: str) -> str:
    rel = posixpath.normpath(relpath)
    if posixpath.isabs(rel) or rel == ".." or rel.startswith("../"):
        raise ValueError(f"not a path inside the repository: {relpath!r}")
    return rel


def _decode(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=shown, hint="save the file as UTF-8") from None
