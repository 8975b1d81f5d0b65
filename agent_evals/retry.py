"""Retry policy for model calls: timeouts, exponential backoff with full jitter,
and Retry-After honoured. The policy is data; `call_with_retry` applies it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TypeVar

from agent_evals.errors import ProviderError

T = TypeVar("T")

# One generator for every call: seeding a new one reads the OS's entropy, per call.
_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    timeout_s: float = 60.0
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before attempt `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * (2 ** (attempt - 1)))
        return rng.uniform(0, ceiling)


@dataclass(frozen=True, slots=True)
class RetryEvent:
    attempt: int
    error: ProviderError
    delay_s: float


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[RetryEvent], None] | None = None,
    rng: random.Random | None = None,
    acquire: Callable[[], AbstractAsyncContextManager[object]] | None = None,
) -> tuple[T, int]:
    """Await `call()` under `policy`; return its result and the attempts it took.

    Each attempt runs inside `acquire()` (a concurrency or rate-limit slot, held
    for the attempt only, never during a backoff) and is bounded by
    `policy.timeout_s`, which does not count the wait for the slot. Retryable ProviderErrors
    (429, 5xx, timeouts, connection errors) are retried after a jittered
    exponential backoff, or after the server's Retry-After when it gave a longer one.

    Raises:
        ProviderError: the last error, once attempts run out or it is not
            retryable; `attempts` is set on it.
    """
    rng = rng or _RNG
    attempt = 0
    while True:
        attempt += 1
        try:
            async with acquire() if acquire is not None else contextlib.nullcontext():
                async with asyncio.timeout(policy.timeout_s):
                    return await call(), attempt
        except TimeoutError:
            error = ProviderError(f"timed out after {policy.timeout_s:g}s", retryable=True)
        except ProviderError as exc:
            error = exc
        if not error.retryable or attempt >= policy.max_attempts:
            error.attempts = attempt
            if attempt > 1:
                error.args = (f"{error.args[0]} (after {attempt} attempts)",)
            raise error
        delay = policy.backoff(attempt, rng)
        if error.retry_after is not None:
            # Never sooner than the server asked; but a burst of calls all told "retry now"
            # (Retry-After: 0) must not come back in lockstep, so the jitter still applies.
            delay = min(max(error.retry_after, delay), policy.max_retry_after_s)
        if on_retry is not None:
            on_retry(RetryEvent(attempt=attempt, error=error, delay_s=delay))
        await asyncio.sleep(delay)
