"""The exceptions agent-evals raises, and the exit code each maps to.

    AgentEvalsError             root; anything the CLI can explain in one line
    ├── ConfigError             bad input a user can fix: exit 2 (`path:line: what (how to fix)`)
    │   └── TemplateError       a prompt template fails to render for a case
    ├── EvaluationError         the eval could not run: exit 3
    │   └── ProviderError       a model call failed (carries whether to retry)
    │       └── AuthError       401/403: never retried, names the env var to set
    ├── GraderError             a grader could not judge one case (a per-case error)
    └── Interrupted             SIGINT/SIGTERM: exit 128 + signal; finished cases are on disk

A per-case failure (ProviderError after retries, GraderError) is recorded on the
case as an `error` and never turns into a pass or a fail.
"""

from __future__ import annotations

import signal
from pathlib import Path

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_CONFIG = 2
EXIT_CANNOT_EVALUATE = 3


class AgentEvalsError(Exception):
    """Root of every error agent-evals raises on purpose."""

    exit_code = EXIT_CANNOT_EVALUATE


class ConfigError(AgentEvalsError):
    """A file or an option is wrong in a way the user can fix.

    Renders as `path:line: message (hint)`; path, line and hint are optional.
    """

    exit_code = EXIT_CONFIG

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"


class TemplateError(ConfigError):
    """A prompt template does not render (syntax, undefined variable, sandbox)."""


class EvaluationError(AgentEvalsError):
    """The evaluation could not be carried out (provider down, budget hit)."""

    exit_code = EXIT_CANNOT_EVALUATE


class ProviderError(EvaluationError):
    """A model call failed.

    Attributes:
        retryable: whether trying again may succeed (429, 5xx, timeouts, resets).
        retry_after: seconds the server asked us to wait, if it said.
        status: the HTTP status, when there was one.
        attempts: how many attempts were made before giving up (set by the retry loop).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        self.attempts = 1
        super().__init__(message)


class AuthError(ProviderError):
    """The provider refused our credentials; retrying cannot help."""


class GraderError(AgentEvalsError):
    """A grader could not judge a case (e.g. a malformed judge verdict)."""


class Interrupted(AgentEvalsError):
    """A signal stopped the command; a run's finished cases are already on disk."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
