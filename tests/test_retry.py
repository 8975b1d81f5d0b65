"""`call_with_retry` and `RetryPolicy`, with plain coroutines (no network).

The same loop against a real HTTP server is in test_providers_http.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from agent_evals.errors import AuthError, ProviderError
from agent_evals.retry import RetryEvent, RetryPolicy, call_with_retry, wait_text

FAST = RetryPolicy(max_attempts=3, timeout_s=1.0, initial_backoff_s=0.001, max_backoff_s=0.002)


def script(*outcomes: str | BaseException | float) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """A call that, on attempt n, raises outcomes[n], sleeps that many seconds, or returns it."""
    calls: list[int] = []

    async def call() -> str:
        calls.append(len(calls) + 1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, float):
            await asyncio.sleep(outcome)
            return "slept"
        return outcome

    return call, calls


def retry(
    call: Callable[[], Awaitable[str]], policy: RetryPolicy = FAST, events: list[RetryEvent] | None = None
) -> tuple[str, int]:
    on_retry = events.append if events is not None else None
    return asyncio.run(call_with_retry(call, policy, on_retry=on_retry, rng=random.Random(7)))


def test_success_first_time() -> None:
    call, calls = script("ok")

    assert retry(call) == ("ok", 1)
    assert calls == [1]


def test_retryable_error_then_success() -> None:
    call, calls = script(ProviderError("503 from x", retryable=True, status=503), "ok")
    events: list[RetryEvent] = []

    assert retry(call, events=events) == ("ok", 2)
    assert calls == [1, 2]
    [event] = events
    assert (event.attempt, str(event.error)) == (1, "503 from x")
    assert 0 <= event.delay_s <= FAST.initial_backoff_s


def test_retry_after_is_used_instead_of_backoff() -> None:
    call, _ = script(ProviderError("429", retryable=True, retry_after=0.05), "ok")
    events: list[RetryEvent] = []
    retry(call, events=events)

    assert events[0].delay_s == 0.05


def test_retry_after_zero_still_waits_a_jittered_backoff() -> None:
    # A burst of calls all told "retry now" must not come back in lockstep; never sooner
    # than the server asked, but the backoff's jitter still spreads them.
    policy = RetryPolicy(max_attempts=2, timeout_s=1.0, initial_backoff_s=0.04, max_backoff_s=0.04)
    call, _ = script(ProviderError("429", retryable=True, retry_after=0.0), "ok")
    events: list[RetryEvent] = []
    retry(call, policy, events)

    assert events[0].delay_s == policy.backoff(1, random.Random(7)) > 0


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(max_attempts=2, timeout_s=1.0, max_retry_after_s=0.01)
    call, _ = script(ProviderError("429", retryable=True, retry_after=3600.0), "ok")
    events: list[RetryEvent] = []

    assert retry(call, policy, events) == ("ok", 2)
    assert events[0].delay_s == 0.01


def test_non_retryable_error_is_raised_at_once() -> None:
    call, calls = script(ProviderError("400 bad request"), "never")

    with pytest.raises(ProviderError) as info:
        retry(call)

    assert calls == [1]
    assert info.value.attempts == 1
    assert str(info.value) == "400 bad request"


def test_auth_error_is_never_retried() -> None:
    call, calls = script(AuthError("401 (set OPENAI_API_KEY to a valid key)", status=401), "never")

    with pytest.raises(AuthError):
        retry(call)

    assert calls == [1]


def test_attempts_run_out() -> None:
    error = ProviderError("503 from x", retryable=True)
    call, calls = script(error, error, error, "never")

    with pytest.raises(ProviderError) as info:
        retry(call)

    assert calls == [1, 2, 3]
    assert info.value.attempts == 3
    assert str(info.value) == "503 from x (after 3 attempts)"


def test_a_slow_attempt_times_out_and_is_retried() -> None:
    policy = RetryPolicy(max_attempts=2, timeout_s=0.05, initial_backoff_s=0.001)
    call, _ = script(5.0, "ok")
    events: list[RetryEvent] = []

    assert retry(call, policy, events) == ("ok", 2)
    assert events[0].error.retryable
    assert str(events[0].error) == "timed out after 0.05s"


def test_timeouts_run_out() -> None:
    policy = RetryPolicy(max_attempts=2, timeout_s=0.05, initial_backoff_s=0.001)
    call, _ = script(5.0, 5.0)

    with pytest.raises(ProviderError) as info:
        retry(call, policy)

    assert info.value.attempts == 2
    assert str(info.value) == "timed out after 0.05s (after 2 attempts)"


def test_other_exceptions_pass_through_untouched() -> None:
    call, calls = script(ValueError("a bug"), "never")

    with pytest.raises(ValueError, match=r"^a bug$"):
        retry(call)

    assert calls == [1]


def test_max_attempts_one_means_no_retry() -> None:
    call, calls = script(ProviderError("503", retryable=True), "never")

    with pytest.raises(ProviderError) as info:
        retry(call, RetryPolicy(max_attempts=1))

    assert calls == [1]
    assert str(info.value) == "503"


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (20, 30.0)]
)
def test_backoff_is_full_jitter_under_an_exponential_ceiling(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=30.0)
    rng = random.Random(1)
    delays = [policy.backoff(attempt, rng) for _ in range(200)]

    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling * 0.9  # jitter spans the whole range


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    policy = RetryPolicy()

    assert policy.backoff(3, random.Random(42)) == policy.backoff(3, random.Random(42))


# --- throttles are retried until the deadline, other failures up to max_attempts -----------------


def throttle() -> ProviderError:
    return ProviderError("429 Too Many Requests from x", retryable=True, retry_after=0.0, status=429)


def test_throttles_do_not_count_against_max_attempts() -> None:
    call, calls = script(*(throttle() for _ in range(5)), "ok")

    assert retry(call, FAST) == ("ok", 6)  # FAST allows 3 attempts
    assert len(calls) == 6


def test_throttles_are_retried_until_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002, retry_deadline_s=10.0)
    ticks = iter(range(0, 1000, 4))  # each look at the clock is 4 s later
    call, calls = script(*(throttle() for _ in range(10)), "never")

    with pytest.raises(ProviderError) as info:
        asyncio.run(call_with_retry(call, policy, rng=random.Random(7), clock=lambda: float(next(ticks))))

    # Started at 0; retried at 4 and 8; at 12 the deadline (10 s) has passed.
    assert calls == [1, 2, 3]
    assert str(info.value) == "429 Too Many Requests from x (after 3 attempts)"


def test_other_failures_after_throttles_still_run_out() -> None:
    error = ProviderError("503 from x", retryable=True, status=503)
    call, calls = script(throttle(), throttle(), error, throttle(), error, error, "never")

    with pytest.raises(ProviderError) as info:
        retry(call, FAST)

    assert calls == [1, 2, 3, 4, 5, 6]  # 3 throttles + FAST's 3 attempts of 503s
    assert str(info.value) == "503 from x (after 6 attempts)"


def test_a_stopped_provider_ends_the_retries_as_it_is() -> None:
    from contextlib import asynccontextmanager

    from agent_evals.errors import ProviderStopped

    stops = [False, True]

    @asynccontextmanager
    async def acquire() -> AsyncIterator[None]:
        if stops.pop(0):
            raise ProviderStopped("connection refused", provider="gpt", kind="unreachable", failures=8)
        yield

    call, calls = script(ProviderError("connection refused", retryable=True, kind="unreachable"), "never")
    with pytest.raises(ProviderStopped) as info:
        asyncio.run(call_with_retry(call, FAST, rng=random.Random(7), acquire=acquire))

    assert calls == [1]
    assert info.value.attempts == 1  # the attempt it made; the stopped one was not sent
    assert str(info.value) == "connection refused"
    assert info.value.exit_code == 3


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0.0, "0s"), (0.04, "0s"), (0.44, "0.4s"), (1.0, "1s"), (2.5, "2.5s"), (119.96, "120s")],
)
def test_every_retry_note_says_its_wait_the_same_way(seconds: float, said: str) -> None:
    """GitHub's notes said `1s` and the alerts' `0.0s`; both now go through wait_text."""
    assert wait_text(seconds) == said
