"""What a path is, in words: the one naming of file kinds for every check that refuses a path
that is not a regular file, reading (`load.unreadable`, `record.open_regular`) or writing
(`outputs.open_output`)."""

from __future__ import annotations

import stat


def kind(mode: int) -> str:
    """`a FIFO`, `a device`, `a socket`, `a directory`, `a regular file` or `a special file`."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file"
