"""The exceptions agent-evals raises, and the exit code each maps to.

    AgentEvalsError             root; anything the CLI can explain in one line
    ├── ConfigError             bad input a user can fix: exit 2 (`path:line: what (how to fix)`)
    │   ├── ConfigErrors        several at once (`validate` reports every problem in one pass)
    │   └── TemplateError       a prompt template fails to render for a case
    ├── EvaluationError         the eval could not run: exit 3
    │   └── ProviderError       a model call failed (carries whether to retry, and its kind)
    │       ├── AuthError       401/403: never retried, names the env var to set
    │       └── ProviderStopped not sent: the provider's breaker tripped (exit 2 or 3 by kind)
    ├── GraderError             a grader could not judge one case (a per-case error)
    └── Interrupted             SIGINT/SIGTERM: exit 128 + signal; finished cases are on disk

A per-case failure (ProviderError after retries, GraderError) is recorded on the
case as an `error` and never turns into a pass or a fail.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

FailureKind = Literal["unreachable", "auth", "model", "unavailable", "throttled"]
"""What a failed model call says about its provider, for the breaker (`agent_evals.calls`):

    unreachable   no connection at all: refused, unknown host, TLS handshake failed
    auth          401/403: the key is missing, wrong, or lacks access
    model         404, or a 400 naming the model: unknown model or wrong endpoint
    unavailable   reached but failing: 5xx, timeouts, dropped connections (retryable)
    throttled     429/529: slow down, not broken
"""

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_CONFIG = 2
EXIT_CANNOT_EVALUATE = 3


def one_line(text: str, width: int | None = None) -> str:
    """Collapse whitespace (newlines included) and clip to `width` characters with an ellipsis:
    how an exception's or a server's text is quoted inside one message line."""
    flat = " ".join(text.split())
    if width is not None and len(flat) > width:
        return flat[: max(width - 1, 0)] + "…"
    return flat


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


class ConfigErrors(ConfigError):
    """Several ConfigErrors at once; renders one per line, in the order found.

    Attributes:
        errors: the errors, each with its own path and line (never another ConfigErrors).
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        # Flattened, so a caller that gathers errors from several loaders gets one level.
        self.errors: list[ConfigError] = [
            e for error in errors for e in (error.errors if isinstance(error, ConfigErrors) else [error])
        ]
        super().__init__("\n".join(e.render() for e in self.errors))

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


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
        kind: what the failure says about the provider (see `FailureKind`), or None when
            it is about this one call (a malformed answer, a 400 for this input).
        attempts: how many attempts were made before giving up (set by the retry loop).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        kind: FailureKind | None = None,
    ) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        self.kind = kind
        self.attempts = 1
        super().__init__(message)


class AuthError(ProviderError):
    """The provider refused our credentials; retrying cannot help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status, kind="auth")


class ProviderStopped(ProviderError):
    """A call not sent because its provider failed the same fatal way too many times in a row.

    The message is the provider's own error, so every case it stopped reads the same.
    The exit code says whose problem it is: the configuration's (a key refused, an
    unknown model: 2) or the provider's (unreachable, failing: 3).
    """

    def __init__(self, message: str, *, provider: str, kind: FailureKind, failures: int) -> None:
        super().__init__(message, kind=kind)
        self.provider = provider
        self.failures = failures
        self.attempts = 0
        self.exit_code = EXIT_CONFIG if kind in ("auth", "model") else EXIT_CANNOT_EVALUATE


class GraderError(AgentEvalsError):
    """A grader could not judge a case (e.g. a malformed judge verdict)."""


class Interrupted(AgentEvalsError):
    """A signal stopped the command; a run's finished cases are already on disk."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
