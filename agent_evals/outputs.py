"""Output files: the one way a report, a page, a trace or a run record is opened for writing.

`open_output` makes the file's folder, then opens it without ever blocking (a FIFO with no
reader would hold `open` forever, deaf to SIGTERM) and keeps it only if it is a regular file,
or, where the caller allows it, a character device or a pipe someone reads: `/dev/null` discards
a report, `/dev/stdout` shows it on a terminal or hands it to `| jq`, and `/dev/full` fails like a
full disk. A FIFO nobody reads, a folder, a socket or a block device is refused, and a run record
takes a regular file only. Every failure, making the folder, opening or writing, is one
`ConfigError` naming the path: `path: cannot write <what>: <reason> (<fix>)`.

Files are written in place, as they always were (not through a temporary file and a rename):
a run record is read while it is written (`history.follow`), and a rename would replace a
device such as `/dev/null` with a regular file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO

from agent_evals import _files
from agent_evals.errors import ConfigError

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def open_output(path: Path, *, what: str, fix: str, append: bool = False, devices: bool = True) -> IO[str]:
    """`path` opened for writing text (UTF-8), truncated or with `append` appended to; its folder made.

    Args:
        what: what is written, for the message ("the JSON report").
        fix: the hint of every error ("pass a writable --json path").
        devices: whether a character device (`/dev/null`, a terminal) or a pipe with a reader
            (`/dev/stdout | jq`) is a fit target; a run record must be a regular file (it is read
            back and synced to disk).

    Raises:
        ConfigError: the folder cannot be made, the target is not a file this accepts, or it
            cannot be opened (permissions, a read-only disk).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {what}: {_folder_reason(path.parent, exc)}", path=path, hint=fix
        ) from None
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | _NONBLOCK
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise failure(path, exc, what=what, fix=fix, devices=devices) from None
    try:
        wrong = _wrong_kind(os.fstat(fd).st_mode, devices)
        if wrong is not None:
            raise ConfigError(f"cannot write {what}: {wrong}", path=path, hint=fix)
        if _NONBLOCK:
            os.set_blocking(fd, True)  # a terminal's writes wait rather than fail
        return os.fdopen(fd, "a" if append else "w", encoding="utf-8")
    except OSError as exc:
        os.close(fd)
        raise failure(path, exc, what=what, fix=fix) from None
    except BaseException:
        os.close(fd)
        raise


def write_output(path: Path, text: str, *, what: str, fix: str) -> None:
    """Write `text` to `path` (UTF-8), replacing what it held; see `open_output`.

    Raises:
        ConfigError: as `open_output`, or the write failed (a full disk: ENOSPC).
    """
    fh = open_output(path, what=what, fix=fix)
    try:
        with fh:
            fh.write(text)
    except OSError as exc:
        raise failure(path, exc, what=what, fix=fix) from None


def failure(path: Path, exc: OSError, *, what: str, fix: str, devices: bool = True) -> ConfigError:
    """The error for an `OSError` opening or writing the output `path` (`devices` as `open_output`)."""
    reason = exc.strerror or str(exc)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_ISFIFO(mode) and devices and exc.errno == errno.ENXIO:  # opened without blocking: no reader
        reason = "it is a FIFO that no process reads"
    elif stat.S_ISFIFO(mode) or stat.S_ISDIR(mode):
        reason = _wrong_kind(mode, devices=False) or reason
    return ConfigError(f"cannot write {what}: {reason}", path=path, hint=fix)


def _wrong_kind(mode: int, devices: bool) -> str | None:
    """Why a file of this mode is not written to, or None when it is fine."""
    if stat.S_ISREG(mode) or (devices and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode))):
        return None
    return f"it is {_files.kind(mode)}, not a regular file"


def _folder_reason(folder: Path, exc: OSError) -> str:
    """Why `folder` could not be made: the part of it that is a file, else the system's words."""
    for part in (*reversed(folder.parents), folder):
        try:
            if not stat.S_ISDIR(os.stat(part).st_mode):
                return f"{part} is not a folder"
        except OSError:
            break
    return exc.strerror or str(exc)
