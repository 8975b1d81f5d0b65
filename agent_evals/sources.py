"""The code a prompt runs, fingerprinted: from the working tree, or from a git revision.

A `python:` provider (`model.provider: python:agent.main:answer`) and an eval set's
`python:` graders run the project's own code, so a change to that code changes what
is gated as much as an edit to the prompt does. The code in scope (`CodeScope`):

* for every module a target names, its top-level package inside the project root:
  every `*.py` under `agent/` for `agent.main`, recursively (a lone module `bot` is
  `bot.py`). Installed code is never in scope: the target must be the project's own;
* the paths the prompt declares in `watch:`, globs relative to the project root
  (`watch: [agent/**.py, tools/*.yaml]`), for what the package does not hold.

Glob syntax, as in GitHub Actions `paths:` filters: `*` is any characters but `/`,
`**` any characters including `/` (and `**/` zero or more folders), `?` one
character but `/`, `[abc]`/`[!abc]` a character class. A glob may not be absolute
or contain `..`: nothing outside the project root is ever read.

The fingerprint (`Fingerprint`) is the sorted (path, sha256 of content) list and one
digest over it. It is the same from the working tree (`fingerprint`) and from a
commit (`fingerprint_at`, which reads blobs with gitpython without checking anything
out), so a baseline's code can be told from the candidate's. Hostile trees are safe:
no symlink is followed (a link is fingerprinted by its target text, as git stores
it), a FIFO, socket or device is never read, virtualenvs, `site-packages`,
`__pycache__` and VCS folders are skipped, and a file over `MAX_FILE_BYTES`, more
than `MAX_FILES` files or a walk over `MAX_ENTRIES` entries is a ConfigError that
says how to narrow the scope, rather than a hang.
"""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_evals.errors import ConfigError
from agent_evals.models import canonical_hash

if TYPE_CHECKING:
    from git import Repo

    from agent_evals.models import EvalSet, ProjectConfig, Prompt

__all__ = [
    "MAX_ENTRIES",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "CodeScope",
    "Fingerprint",
    "agent_scope",
    "changed_in_headers",
    "changed_note",
    "check_glob",
    "check_watch",
    "code_scope",
    "fingerprint",
    "fingerprint_at",
    "grader_scope",
    "listing",
]

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_FILES = 10_000
MAX_ENTRIES = 200_000

# Folders whose contents are never the project's own code.
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "site-packages", "dist-packages"})
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_WILDCARDS = frozenset("*?[")
_LINK_PREFIX = b"symlink\0"
_NARROW_HINT = "narrow 'watch:' or move large and generated files out of the agent's package"


# --- globs ------------------------------------------------------------------------------


def check_glob(glob: str) -> str:
    """`glob` if it is a valid `watch:` glob inside the project root.

    Raises:
        ValueError: empty, absolute, with `..` or `.` segments, a backslash, or a bad `[...]` class.
    """
    if not glob.strip():
        raise ValueError("a watch glob may not be empty")
    if "\\" in glob:
        raise ValueError("use '/' between folders, not '\\'")
    if glob.startswith("/") or re.match(r"^[A-Za-z]:", glob):
        raise ValueError("a watch glob is relative to the project root, not absolute")
    if any(part in (".", "..") for part in glob.split("/")):
        raise ValueError(
            "a watch glob may not contain '.' or '..' segments: it stays inside the project root"
        )
    _translate(glob)
    return glob


@functools.lru_cache(maxsize=256)
def _translate(glob: str) -> re.Pattern[str]:
    """The regular expression a glob means, matched against a whole project-relative POSIX path."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i) and (i == 0 or glob[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = glob.find("]", i + 2 if glob[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1 or end == i + 1:
                raise ValueError(f"'[' at position {i + 1} starts a character class that is not closed")
            body = glob[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            if not body or "/" in body:
                raise ValueError("a character class may not be empty or hold '/'")
            escaped = "".join("\\" + c if c in "\\^]" else c for c in body)
            out.append(f"[^/{escaped}]" if negate else f"[{escaped}]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _literal_prefix(glob: str) -> str:
    """The folder a glob's matches all lie under ('' for the root): where a walk can start."""
    parts = glob.split("/")
    fixed: list[str] = []
    for part in parts[:-1]:
        if _WILDCARDS.intersection(part):
            break
        fixed.append(part)
    else:
        if not _WILDCARDS.intersection(parts[-1]):
            fixed = parts  # no wildcard at all: the path itself (a file, or a folder to walk)
    return "/".join(fixed)


# --- scopes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeScope:
    """What code counts as a prompt's (and its eval set's graders'): project-relative, POSIX.

    Attributes:
        packages: top-level module names: `agent` covers `agent/**/*.py` and `agent.py`.
        watch: globs the prompt declares.
    """

    packages: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.packages or self.watch)

    def __or__(self, other: CodeScope) -> CodeScope:
        return CodeScope(
            packages=tuple(sorted({*self.packages, *other.packages})),
            watch=tuple(dict.fromkeys((*self.watch, *other.watch))),
        )

    def covers(self, path: str) -> bool:
        """Whether the project-relative POSIX `path` is code in this scope."""
        parts = path.split("/")
        if _SKIPPED_DIRS.intersection(parts[:-1]) or not path or path.startswith("../"):
            return False
        if path.endswith(".py") and (
            path[:-3] in self.packages or (parts[0] in self.packages and len(parts) > 1)
        ):
            return True
        return any(pattern.match(path) for pattern in self._patterns())

    def starts(self) -> tuple[str, ...]:
        """The paths a walk starts from: package folders and files, and each glob's literal prefix."""
        starts = {s for name in self.packages for s in (name, f"{name}.py")}
        starts.update(_literal_prefix(glob) for glob in self.watch)
        if "" in starts:
            return ("",)
        # A start inside another start is walked with it.
        return tuple(s for s in sorted(starts) if not any(s.startswith(o + "/") for o in starts if o != s))

    def _patterns(self) -> list[re.Pattern[str]]:
        return [_translate(glob) for glob in self.watch]


def _package(target: str) -> str | None:
    """The top-level package of a `module:attr` target, None if it is not one."""
    module = target.partition(":")[0]
    return module.split(".")[0] if _MODULE.fullmatch(module) else None


def agent_scope(prompt: Prompt, config: ProjectConfig, provider: str | None = None) -> CodeScope:
    """The code a prompt runs: its `python:` provider's package and its `watch:` globs.

    Args:
        prompt: the prompt.
        config: the project's configuration (a named provider may be of type `python`).
        provider: the provider the run uses instead of the prompt's own, if any.
    """
    name = provider or prompt.model.provider
    target: str | None = None
    if name.startswith("python:"):
        target = name.removeprefix("python:")
    else:
        configured = config.providers.get(name)
        if configured is not None and configured.type == "python":
            target = configured.target
    package = _package(target) if target else None
    return CodeScope(packages=(package,) if package else (), watch=tuple(prompt.watch))


def grader_scope(evalset: EvalSet) -> CodeScope:
    """The code an eval set's `python:module:function` graders run: their packages."""
    packages = {
        package
        for spec in evalset.graders
        if spec.type.startswith("python:") and (package := _package(spec.type.removeprefix("python:")))
    }
    return CodeScope(packages=tuple(sorted(packages)))


def code_scope(
    prompt: Prompt, evalset: EvalSet | None, config: ProjectConfig, provider: str | None = None
) -> CodeScope:
    """All the project code a run of `prompt` on `evalset` executes (see `agent_scope`, `grader_scope`)."""
    scope = agent_scope(prompt, config, provider)
    return scope | grader_scope(evalset) if evalset is not None else scope


# --- fingerprints -----------------------------------------------------------------------


@dataclass(frozen=True)
class Fingerprint:
    """The code in a scope: project-relative POSIX paths with the sha256 of each file, sorted.

    A symlink's hash is of its target text (it is never followed), as git stores it.
    """

    files: tuple[tuple[str, str], ...]

    @property
    def digest(self) -> str:
        """One hash over every path and content hash: what a record header keeps."""
        return canonical_hash(list(self.files))

    def header(self) -> dict[str, Any]:
        """The record header's `code` entry: the digest and each file's hash (shortened)."""
        return {"hash": self.digest, "files": {path: sha[:16] for path, sha in self.files}}

    def changed(self, other: Fingerprint) -> tuple[str, ...]:
        """The paths whose content differs between the two, or that only one has."""
        return _changed(dict(self.files), dict(other.files))


def changed_in_headers(base: Mapping[str, Any] | None, cand: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The files that differ between two record headers' `code` entries (`Fingerprint.header`).

    Returns:
        The changed paths, sorted; empty when the digests agree or a record has no `code`.
    """
    if not base or not cand or base.get("hash") == cand.get("hash"):
        return ()
    return _changed(dict(base.get("files") or {}), dict(cand.get("files") or {}))


def changed_note(base: Mapping[str, Any] | None, cand: Mapping[str, Any] | None) -> str | None:
    """'code changed: agent/main.py' when two record headers' `code` entries differ, else None."""
    paths = changed_in_headers(base, cand)
    return f"code changed: {listing(paths)}" if paths else None


def listing(paths: Sequence[str], limit: int = 5) -> str:
    """'a.py, b.py and 3 more': changed files, named in a note."""
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _changed(a: Mapping[str, str], b: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(sorted(path for path in {*a, *b} if a.get(path) != b.get(path)))


def fingerprint(scope: CodeScope, root: Path) -> Fingerprint:
    """The fingerprint of the code in `scope`, read from the files under `root`.

    Args:
        scope: from `code_scope`.
        root: the project root.

    Raises:
        ConfigError: a file over `MAX_FILE_BYTES`, more than `MAX_FILES` files, or more
            than `MAX_ENTRIES` entries walked.
    """
    root = Path(os.path.abspath(root))
    hashes: dict[str, str] = {}
    for rel in _matches_on_disk(scope, root):
        digest = _hash_path(root, rel)
        if digest is not None:
            hashes[rel] = digest
            if len(hashes) > MAX_FILES:
                raise _too_many(root)
    return Fingerprint(tuple(sorted(hashes.items())))


def _matches_on_disk(scope: CodeScope, root: Path) -> Iterator[str]:
    if not scope:
        return
    entries = 0
    for start in scope.starts():
        for rel in _walk(root, start):
            entries += 1
            if entries > MAX_ENTRIES:
                raise ConfigError(
                    f"more than {MAX_ENTRIES:,} entries to look through for the agent's code",
                    path=root / start if start else root,
                    hint=_NARROW_HINT,
                )
            if scope.covers(rel):
                yield rel


def _walk(root: Path, start: str) -> Iterator[str]:
    """Project-relative paths of the files and symlinks at or under `start`, never following a link."""
    top = root / start if start else root
    try:
        info = top.lstat()
    except OSError:
        return
    if not stat.S_ISDIR(info.st_mode):
        if start and (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            yield start
        return
    stack = [start]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(root / folder if folder else root) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError:
            continue  # unreadable: nothing of it can be code the run imports
        for entry in children:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIPPED_DIRS and not _foreign(Path(entry.path)):
                    stack.append(rel)
            elif entry.is_symlink() or entry.is_file(follow_symlinks=False):
                yield rel
            # FIFOs, sockets and devices are not code, and opening one may block.


def _foreign(folder: Path) -> bool:
    """A virtualenv, or another repository (a submodule): installed or vendored, not this project's code."""
    return os.path.lexists(folder / "pyvenv.cfg") or os.path.lexists(folder / ".git")


def _hash_path(root: Path, rel: str) -> str | None:
    """sha256 of a regular file's bytes or of a symlink's target; None for anything else."""
    path = root / rel
    try:
        info = path.lstat()
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return hashlib.sha256(_LINK_PREFIX + os.fsencode(os.readlink(path))).hexdigest()
    if not stat.S_ISREG(info.st_mode):
        return None
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(path, flags)
    except OSError:
        return None  # replaced by a link or removed since it was listed
    with os.fdopen(fd, "rb") as file:
        opened = os.fstat(file.fileno())
        if not stat.S_ISREG(opened.st_mode):
            return None  # swapped for a FIFO or a device between the listing and the open
        _check_size(opened.st_size, path)
        digest = hashlib.sha256()
        read = 0
        while chunk := file.read(1 << 20):
            read += len(chunk)
            _check_size(read, path)  # a file still growing
            digest.update(chunk)
    return digest.hexdigest()


def _check_size(size: int, shown: object) -> None:
    if size > MAX_FILE_BYTES:
        raise ConfigError(
            f"{size / 1e6:,.1f} MB is too large to fingerprint as agent code "
            f"(the limit is {MAX_FILE_BYTES // (1024 * 1024)} MiB)",
            path=str(shown),
            hint=_NARROW_HINT,
        )


def _too_many(where: object) -> ConfigError:
    return ConfigError(
        f"more than {MAX_FILES:,} files of agent code to fingerprint", path=str(where), hint=_NARROW_HINT
    )


def fingerprint_at(scope: CodeScope, repo: Repo, commit: str, prefix: str) -> Fingerprint:
    """The fingerprint of the code in `scope` as it is in a commit, read from git objects.

    Nothing is checked out: `git ls-tree` lists the paths, blobs are read from the object
    database. Symlinks hash as their target text, as `fingerprint` hashes them; submodules
    are skipped.

    Args:
        scope: from `code_scope`.
        repo: the repository (gitpython).
        commit: a commit sha.
        prefix: the project root relative to the repository root, POSIX ('.' or '' for the root).

    Raises:
        ConfigError: a file over `MAX_FILE_BYTES` or more than `MAX_FILES` files.
    """
    if not scope:
        return Fingerprint(())
    base = "" if prefix in ("", ".") else prefix.strip("/")
    starts = [posixpath.join(base, s) if s else base for s in scope.starts()]
    args = ["-r", "-z", "--long", "--full-tree", commit]
    specs = [s for s in starts if s]
    # Literal pathspecs: a folder named `[x]` must not be read as a glob by git.
    out: bytes = repo.git.ls_tree(
        *args, "--", *specs, stdout_as_string=False, env={"GIT_LITERAL_PATHSPECS": "1"}
    )
    hashes: dict[str, str] = {}
    for mode, kind, oid, size, path in _ls_tree(out):
        rel = path[len(base) + 1 :] if base else path
        if base and not path.startswith(base + "/"):
            continue
        if kind != "blob" or not scope.covers(rel):
            continue  # submodules (commits) and folders are not files
        shown = f"{path}@{commit[:8]}"
        if size is not None:
            _check_size(size, shown)
        data = repo.odb.stream(bytes.fromhex(oid)).read()
        hashes[rel] = hashlib.sha256((_LINK_PREFIX + data) if mode == "120000" else data).hexdigest()
        if len(hashes) > MAX_FILES:
            raise _too_many(f"{base or '.'}@{commit[:8]}")
    return Fingerprint(tuple(sorted(hashes.items())))


def _ls_tree(out: bytes) -> Iterator[tuple[str, str, str, int | None, str]]:
    """(mode, type, object id, size, path) from `git ls-tree -r -z --long`."""
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid, size = meta.decode("ascii").split()
        yield mode, kind, oid, int(size) if size.isdigit() else None, os.fsdecode(raw_path)


# --- checking a prompt's globs ------------------------------------------------------------------


def check_watch(prompt: Prompt, root: Path) -> list[ConfigError]:
    """A `watch:` glob that matches no file under the project root is an error at its line.

    (Globs that are absolute, leave the root or do not parse are refused when the prompt loads.)

    Args:
        prompt: the prompt.
        root: the project root.

    Returns:
        One error per glob that matches nothing, or the error that stopped the walk.
    """
    errors: list[ConfigError] = []
    for index, glob in enumerate(prompt.watch):
        try:
            found = next(_matches_on_disk(CodeScope(watch=(glob,)), Path(os.path.abspath(root))), None)
        except ConfigError as exc:
            found = None
            errors.append(
                ConfigError(
                    f"watch glob '{glob}': {exc.message}",
                    path=prompt.source_path,
                    line=prompt.line_of("watch", index),
                    hint=exc.hint,
                )
            )
            continue
        if found is None:
            errors.append(
                ConfigError(
                    f"watch glob '{glob}' matches no file under the project root",
                    path=prompt.source_path,
                    line=prompt.line_of("watch", index),
                    hint="globs are relative to the project root, e.g. 'agent/**.py' or 'tools/*.yaml'",
                )
            )
    return errors
