"""Retry policy for model calls: timeouts, exponential backoff with full jitter,
and Retry-After honoured. The policy is data; `call_with_retry` applies it.

A provider that says "slow down" (429, or Anthropic's 529 overloaded) is not
broken: those are retried for as long as `retry_deadline_s` allows, while the
rate limiter shrinks concurrency. Every other retryable failure (5xx, timeouts,
dropped connections) is bounded by `max_attempts`, so a broken provider costs a
bounded number of tries per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TypeVar

from agent_evals.errors import ProviderError, ProviderStopped
from agent_evals.ratelimit import is_throttle

T = TypeVar("T")

# One generator for every call: seeding a new one reads the OS's entropy, per call.
_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one call is retried.

    Attributes:
        max_attempts: attempts per call for failures other than throttles (5xx, timeouts,
            dropped connections). Ten: against a provider failing 30% of attempts at random,
            a call is lost with probability 0.3**10 = 6e-6, so a 500-case run loses none in
            99.7% of runs (at four attempts it lost about four cases of every 500).
        timeout_s: longest wait for one attempt (not counting the wait for a slot).
        initial_backoff_s: the first backoff's ceiling; it doubles per attempt.
        max_backoff_s: the ceiling of any one backoff.
        max_retry_after_s: the longest Retry-After honoured.
        retry_deadline_s: how long after its first attempt a throttled (429/529) call is
            still retried; throttles do not count against `max_attempts`.
    """

    max_attempts: int = 10
    timeout_s: float = 60.0
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0
    retry_deadline_s: float = 300.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before attempt `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * (2 ** (attempt - 1)))
        return rng.uniform(0, ceiling)


def wait_text(seconds: float) -> str:
    """A wait as every retry note says it: tenths of a second, no trailing zeros (`0.4s`, `2s`)."""
    return f"{round(seconds, 1):g}s"


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
    clock: Callable[[], float] = time.monotonic,
) -> tuple[T, int]:
    """Await `call()` under `policy`; return its result and the attempts it took.

    Each attempt runs inside `acquire()` (a concurrency or rate-limit slot, held
    for the attempt only, never during a backoff) and is bounded by
    `policy.timeout_s`, which does not count the wait for the slot. Retryable ProviderErrors
    are retried after a jittered exponential backoff, or after the server's
    Retry-After when it gave a longer one: throttles (429/529) until
    `policy.retry_deadline_s` has passed since the first attempt, anything else
    (5xx, timeouts, connection errors) up to `policy.max_attempts` attempts.

    Raises:
        ProviderStopped: raised by `acquire()` (the provider's breaker tripped): as it is,
            with `attempts` set to the attempts actually made.
        ProviderError: the last error, once attempts or time run out or it is not
            retryable; `attempts` is set on it.
    """
    rng = rng or _RNG
    started = clock()
    attempt = 0
    throttles = 0
    while True:
        attempt += 1
        try:
            async with acquire() if acquire is not None else contextlib.nullcontext():
                async with asyncio.timeout(policy.timeout_s):
                    return await call(), attempt
        except TimeoutError:
            error = ProviderError(
                f"timed out after {policy.timeout_s:g}s", retryable=True, kind="unavailable"
            )
        except ProviderStopped as stopped:
            stopped.attempts = attempt - 1
            raise
        except ProviderError as exc:
            error = exc
        delay = policy.backoff(attempt, rng)
        if error.retry_after is not None:
            # Never sooner than the server asked; but a burst of calls all told "retry now"
            # (Retry-After: 0) must not come back in lockstep, so the jitter still applies.
            delay = min(max(error.retry_after, delay), policy.max_retry_after_s)
        throttled = error.retryable and is_throttle(error)
        throttles += throttled
        if throttled:
            out_of_tries = clock() - started + delay > policy.retry_deadline_s
        else:
            out_of_tries = attempt - throttles >= policy.max_attempts
        if not error.retryable or out_of_tries:
            error.attempts = attempt
            if attempt > 1:
                error.args = (f"{error.args[0]} (after {attempt} attempts)",)
            raise error
        if on_retry is not None:
            on_retry(RetryEvent(attempt=attempt, error=error, delay_s=delay))
        await asyncio.sleep(delay)
