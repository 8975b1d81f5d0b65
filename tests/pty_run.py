"""Run a command with a pseudo-terminal as its stdin, stdout and stderr, as a person's shell does.

CI has no terminal, so code that only runs when `isatty()` is true (progress bars,
interactive prompts, colour, pre-commit's pty for hook output) is invisible there
unless a test gives the process one. `run_pty` does, reads everything the process
writes, can answer prompts (`steps`), and fails the test on an internal error.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "agent_evals.cli"]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")

Action = bytes | Callable[[subprocess.Popen[bytes]], None]


@dataclass(frozen=True)
class PtyResult:
    code: int
    raw: str
    """Everything written to the terminal, escape sequences included."""

    @property
    def text(self) -> str:
        """What a person would read: escape sequences and carriage returns removed."""
        return _ANSI.sub("", self.raw)


def run_pty(
    argv: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    steps: Sequence[tuple[str, Action]] = (),
    timeout: float = 300,
    columns: int = 120,
) -> PtyResult:
    """Run `argv` in `cwd` on a fresh pseudo-terminal; return its exit code and output.

    Args:
        argv: the command.
        cwd: where to run it.
        env: its environment (default: this process's, with TERM set).
        steps: (regex, action) in order: once the output (after the previous step's match)
            matches the regex, the action runs: bytes are typed into the terminal, a callable
            gets the process (to edit a file, or send a signal).
        timeout: the process is killed after this many seconds and the test fails.
        columns: the terminal's width.
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environ = {**(os.environ if env is None else env), "TERM": "xterm-256color"}
    environ.pop("NO_COLOR", None)
    environ.pop("CI", None)  # rich treats CI as "not interactive"; a developer's shell has no CI
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=environ, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    pending = list(steps)
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(
                    f"{' '.join(argv)} did not finish in {timeout:g}s; output:\n{_decode(chunks)}"
                )
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:  # EIO: every writer of the terminal has closed it
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None and not _readable(master):
                break
            if pending:
                pattern, action = pending[0]
                text = _ANSI.sub("", _decode(chunks))
                found = re.search(pattern, text[seen:])
                if found:
                    seen += found.end()
                    pending.pop(0)
                    if isinstance(action, bytes):
                        os.write(master, action)
                    else:
                        action(proc)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    result = PtyResult(code=code, raw=_decode(chunks))
    assert not pending, f"never saw {pending[0][0]!r}; output:\n{result.text}"
    assert_no_internal_error(result.text)
    return result


def _readable(fd: int) -> bool:
    with contextlib.suppress(OSError):
        return bool(select.select([fd], [], [], 0)[0])
    return False


def _decode(chunks: Sequence[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", "replace")


def assert_no_internal_error(output: str) -> None:
    """Fail on the marks of a bug: the error boundary's `internal error`, or a traceback."""
    for mark in ("internal error", "Traceback (most recent call last)"):
        assert mark not in output, f"{mark!r} in the output:\n{output}"


def interrupt(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C: the terminal sends SIGINT to the foreground process."""
    proc.send_signal(signal.SIGINT)
