"""AdaptiveConcurrency, RateLimiter and ProviderLimits, on logical time.

Concurrency is driven by event-loop turns (`asyncio.sleep(0)`) and hand-held
slots; rate limits by a fake clock whose sleep advances it. Nothing here waits
on the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import pytest

from agent_evals.errors import ProviderError
from agent_evals.ratelimit import AdaptiveConcurrency, ProviderLimits, RateLimiter, is_throttle

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` with a guard, so a leaked slot fails the test instead of hanging it."""

    async def guarded() -> T:
        async with asyncio.timeout(5):
            return await main()

    return asyncio.run(guarded())


class FakeClock:
    """A clock that only moves when something sleeps on it (or a test sets it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def hold(limiter: AdaptiveConcurrency) -> AbstractAsyncContextManager[None]:
    """Enter a slot by hand; leave it with `await slot.__aexit__(None, None, None)`."""
    slot = limiter.slot()
    await slot.__aenter__()
    return slot


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


# --- AdaptiveConcurrency: the limit holds ----------------------------------------


def test_never_more_holders_than_the_limit() -> None:
    limiter = AdaptiveConcurrency(8, initial=8)
    holders = peak = 0

    async def task(i: int) -> None:
        nonlocal holders, peak
        async with limiter.slot():
            holders += 1
            peak = max(peak, holders)
            # A slot counts from its grant, a moment before its holder resumes.
            assert holders <= limiter.in_flight <= limiter.limit
            await turns(1 + i % 3)
            holders -= 1

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            for i in range(200):
                tg.create_task(task(i))

    run(main)
    assert peak == 8
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


def test_holders_stay_under_a_rising_limit() -> None:
    limiter = AdaptiveConcurrency(16)  # slow start from 1
    over: list[tuple[int, int]] = []
    peak = 0

    async def task(i: int) -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            if limiter.in_flight > limiter.limit:
                over.append((limiter.in_flight, limiter.limit))
            await turns(1 + i % 4)
            limiter.on_success()

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            for i in range(200):
                tg.create_task(task(i))

    run(main)
    assert over == []
    assert peak == 16
    assert limiter.limit == 16


def test_slots_are_granted_in_fifo_order() -> None:
    limiter = AdaptiveConcurrency(1)
    entered: list[int] = []

    async def task(i: int) -> None:
        async with limiter.slot():
            entered.append(i)
            await turns(1)

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            for i in range(10):
                tg.create_task(task(i))

    run(main)
    assert entered == list(range(10))


def test_after_a_decrease_no_one_enters_until_in_flight_is_under_the_new_limit() -> None:
    limiter = AdaptiveConcurrency(4, initial=4)
    entered: list[int] = []

    async def waiter(i: int) -> None:
        async with limiter.slot():
            entered.append(i)

    async def main() -> None:
        held = [await hold(limiter) for _ in range(4)]
        tasks = [asyncio.create_task(waiter(i)) for i in range(2)]
        await turns(2)
        assert limiter.on_throttled()
        assert limiter.limit == 2
        for expected_in_flight in (3, 2):
            await held.pop().__aexit__(None, None, None)
            await turns(2)
            assert (entered, limiter.in_flight) == ([], expected_in_flight)
        await held.pop().__aexit__(None, None, None)  # 1 in flight: one may enter
        await turns(4)
        assert entered == [0, 1]  # 0 entered and left, then 1
        await held.pop().__aexit__(None, None, None)
        await asyncio.gather(*tasks)

    run(main)
    assert limiter.in_flight == 0


# --- AdaptiveConcurrency: decrease ----------------------------------------------


def test_throttle_halves_the_limit_but_not_below_minimum() -> None:
    limiter = AdaptiveConcurrency(64, minimum=4, initial=64)

    # No call is in flight, so each throttle opens a new window.
    results = [limiter.on_throttled() for _ in range(6)]

    assert results == [True] * 6
    assert limiter.limit == 4
    assert [limit for _, limit in limiter.history] == [64, 32, 16, 8, 4]
    assert limiter.throttles == 6


def test_a_burst_of_simultaneous_throttles_halves_once() -> None:
    limiter = AdaptiveConcurrency(20, initial=20)
    all_in = asyncio.Event()
    decreased: list[bool] = []

    async def call() -> None:
        async with limiter.slot():
            if limiter.in_flight == 20:
                all_in.set()
            await all_in.wait()
            decreased.append(limiter.on_throttled())  # the provider said 429 to all of us

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(20):
                tg.create_task(call())

    run(main)
    assert decreased.count(True) == 1
    assert limiter.limit == 10
    assert limiter.throttles == 20
    # The window closed when the last of the burst left: the next throttle counts.
    assert limiter.on_throttled()
    assert limiter.limit == 5


def test_throttles_from_a_later_burst_still_in_the_window_are_ignored() -> None:
    limiter = AdaptiveConcurrency(8, initial=8)

    async def main() -> None:
        held = [await hold(limiter) for _ in range(8)]
        assert limiter.on_throttled()  # limit 4; these 8 are the window
        for slot in held[:7]:
            assert not limiter.on_throttled()
            await slot.__aexit__(None, None, None)
        assert not limiter.on_throttled()  # the last of them is still in flight
        await held[7].__aexit__(None, None, None)
        fresh = await hold(limiter)
        assert limiter.on_throttled()  # a call admitted after the window: a new signal
        await fresh.__aexit__(None, None, None)

    run(main)
    assert [limit for _, limit in limiter.history] == [8, 4, 2]


def test_cooldown_ignores_throttles_reported_outside_any_slot() -> None:
    clock = FakeClock()
    limiter = AdaptiveConcurrency(16, initial=16, cooldown_s=5.0, clock=clock)

    assert limiter.on_throttled()
    assert not limiter.on_throttled()
    clock.now = 4.9
    assert not limiter.on_throttled()
    clock.now = 5.0
    assert limiter.on_throttled()
    assert limiter.history == [(0.0, 16), (0.0, 8), (5.0, 4)]


# --- AdaptiveConcurrency: increase ----------------------------------------------


def succeed_while_busy(limiter: AdaptiveConcurrency, n: int) -> None:
    """Report `n` successes, each while every slot is held, as in a busy run."""

    async def main() -> None:
        held = []
        for _ in range(n):
            while limiter.in_flight < limiter.limit:
                held.append(await hold(limiter))
            limiter.on_success()
        for slot in held:
            await slot.__aexit__(None, None, None)

    run(main)


def test_slow_start_adds_one_per_success_up_to_maximum() -> None:
    limiter = AdaptiveConcurrency(64)

    assert limiter.limit == 1
    succeed_while_busy(limiter, 63)
    assert limiter.limit == 64
    succeed_while_busy(limiter, 10)
    assert limiter.limit == 64


def test_recovery_after_a_throttle_is_additive_one_per_round() -> None:
    limiter = AdaptiveConcurrency(16, initial=16)
    limiter.on_throttled()
    assert limiter.limit == 8

    # Congestion avoidance: +1 after as many successes as the current limit.
    needed = sum(range(8, 16))  # 8 + 9 + ... + 15
    succeed_while_busy(limiter, needed - 1)
    assert limiter.limit == 15
    succeed_while_busy(limiter, 1)
    assert limiter.limit == 16
    succeed_while_busy(limiter, 100)
    assert limiter.limit == 16
    assert [limit for _, limit in limiter.history] == [16, *range(8, 17)]


def test_recovery_with_a_fixed_increase_every() -> None:
    limiter = AdaptiveConcurrency(16, initial=16, increase_every=5)
    limiter.on_throttled()

    succeed_while_busy(limiter, 8 * 5 - 1)
    assert limiter.limit == 15
    succeed_while_busy(limiter, 1)
    assert limiter.limit == 16


def test_an_idle_limit_does_not_grow() -> None:
    limiter = AdaptiveConcurrency(16, initial=4)

    async def main() -> None:
        slot = await hold(limiter)  # 1 of 4 slots in use: the limit is not what holds calls back
        for _ in range(100):
            limiter.on_success()
        await slot.__aexit__(None, None, None)

    run(main)
    assert limiter.limit == 4


def test_a_throttle_resets_the_success_streak() -> None:
    limiter = AdaptiveConcurrency(16, initial=8, increase_every=5)

    async def main() -> None:
        held = [await hold(limiter) for _ in range(8)]
        assert limiter.on_throttled()  # 8 -> 4; these 8 calls are the window
        for _ in range(4):
            limiter.on_success()
        assert not limiter.on_throttled()  # inside the window: no decrease, but the streak restarts
        for _ in range(4):
            limiter.on_success()
        assert limiter.limit == 4
        limiter.on_success()
        assert limiter.limit == 5
        for slot in held:
            await slot.__aexit__(None, None, None)

    run(main)


def test_history_is_bounded() -> None:
    limiter = AdaptiveConcurrency(100, history_size=10)
    succeed_while_busy(limiter, 99)

    assert len(limiter.history) == 10
    assert limiter.history[-1][1] == 100


@pytest.mark.parametrize(
    "kwargs",
    [
        {"maximum": 0},
        {"maximum": 4, "minimum": 5},
        {"maximum": 4, "minimum": 0},
        {"maximum": 4, "initial": 5},
        {"maximum": 4, "minimum": 2, "initial": 1},
        {"maximum": 4, "increase_every": 0},
        {"maximum": 4, "cooldown_s": -1.0},
    ],
)
def test_bad_bounds_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"minimum|initial|increase_every|cooldown_s"):
        AdaptiveConcurrency(**kwargs)


# --- AdaptiveConcurrency: cancellation ------------------------------------------


def test_cancelled_waiters_take_no_slot() -> None:
    limiter = AdaptiveConcurrency(2, initial=2)
    entered: list[int] = []

    async def waiter(i: int) -> None:
        async with limiter.slot():
            entered.append(i)

    async def main() -> None:
        held = [await hold(limiter) for _ in range(2)]
        tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
        await turns(2)
        assert limiter.waiting == 5
        for i in (0, 2, 3):
            tasks[i].cancel()
        await turns(2)
        assert limiter.waiting == 2
        for slot in held:
            await slot.__aexit__(None, None, None)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert [isinstance(r, asyncio.CancelledError) for r in results] == [True, False, True, True, False]
        # Both slots are free again: two fresh callers get in without waiting.
        again = [await hold(limiter) for _ in range(2)]
        assert limiter.waiting == 0
        for slot in again:
            await slot.__aexit__(None, None, None)

    run(main)
    assert entered == [1, 4]
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


def test_cancelled_holders_release_their_slots() -> None:
    limiter = AdaptiveConcurrency(3, initial=3)
    never = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot():
            await never.wait()

    async def main() -> None:
        tasks = [asyncio.create_task(holder()) for _ in range(5)]
        await turns(2)
        assert (limiter.in_flight, limiter.waiting) == (3, 2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    run(main)
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


def test_a_waiter_cancelled_just_as_it_is_granted_passes_the_slot_on() -> None:
    limiter = AdaptiveConcurrency(1, initial=1)
    entered: list[str] = []

    async def waiter(name: str) -> None:
        async with limiter.slot():
            entered.append(name)

    async def main() -> None:
        slot = await hold(limiter)
        first = asyncio.create_task(waiter("first"))
        second = asyncio.create_task(waiter("second"))
        await turns(2)
        await slot.__aexit__(None, None, None)  # grants the slot to `first`...
        first.cancel()  # ...which is cancelled before it can run
        await asyncio.gather(first, second, return_exceptions=True)
        assert first.cancelled()

    run(main)
    assert entered == ["second"]
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


def test_an_exception_in_the_body_releases_the_slot() -> None:
    limiter = AdaptiveConcurrency(1, initial=1)

    async def main() -> None:
        with contextlib.suppress(RuntimeError):
            async with limiter.slot():
                raise RuntimeError("provider blew up")

    run(main)
    assert limiter.in_flight == 0


# --- AdaptiveConcurrency: converges instead of hammering -------------------------


def test_converges_under_a_provider_that_throttles_above_a_concurrency_cap() -> None:
    cap, calls = 12, 500
    limiter = AdaptiveConcurrency(64)
    active = attempts = throttled = 0

    async def provider(i: int) -> bool:
        """Answers 429 at once when more than `cap` calls are in flight, else succeeds later."""
        nonlocal active
        active += 1
        try:
            if active > cap:
                await turns(1)
                return False
            await turns(2 + i % 5)
            return True
        finally:
            active -= 1

    async def job(i: int) -> None:
        nonlocal attempts, throttled
        while True:  # the retry loop, reduced to its essence
            async with limiter.slot():
                attempts += 1
                if await provider(i):
                    limiter.on_success()
                    return
                throttled += 1
                limiter.on_throttled()

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            for i in range(calls):
                tg.create_task(job(i))

    run(main)
    assert attempts == calls + throttled
    assert throttled < calls // 10, f"{throttled} throttles for {calls} calls"
    limits = [limit for _, limit in limiter.history]
    decreases = [i for i in range(1, len(limits)) if limits[i] < limits[i - 1]]
    # Once the cap was found, the limit saw-tooths just under and over it, and it
    # kept probing rather than settling far below.
    assert len(decreases) >= 3
    after_first = limits[decreases[0] :]
    assert min(after_first) >= cap // 2, limits
    assert max(after_first) <= cap + 2, limits
    assert cap // 2 <= limiter.limit <= cap + 1
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


# --- RateLimiter ----------------------------------------------------------------


def times_of(limiter: RateLimiter, clock: FakeClock, sizes: list[int]) -> list[float]:
    """Acquire `sizes` one after another; return the fake clock at each grant."""

    async def main() -> list[float]:
        granted = []
        for tokens in sizes:
            await limiter.acquire(tokens)
            granted.append(clock.now)
        return granted

    return run(main)


def test_rpm_allows_a_minute_of_burst_then_one_per_interval() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, clock=clock, sleep=clock.sleep)

    granted = times_of(limiter, clock, [0] * 100)

    assert granted[:60] == [0.0] * 60
    assert granted[60:] == pytest.approx([float(n) for n in range(1, 41)])


def test_tpm_with_varying_sizes() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tpm=1000, clock=clock, sleep=clock.sleep)

    # 1000 tokens a minute refill at 1000/60 per second.
    granted = times_of(limiter, clock, [400, 400, 400, 300, 1000, 50, 0])

    assert granted == pytest.approx([0.0, 0.0, 12.0, 30.0, 90.0, 93.0, 93.0])


def test_both_budgets_must_pay() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=2, tpm=600, clock=clock, sleep=clock.sleep)

    # 1 request per 30 s, 10 tokens per s: whichever budget is shorter decides.
    granted = times_of(limiter, clock, [300, 300, 100, 600])

    # The third waits for a request (30 s), the fourth for 400 tokens (40 s).
    assert granted == pytest.approx([0.0, 0.0, 30.0, 70.0])


def test_an_oversized_request_passes_when_the_bucket_is_full() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tpm=1000, clock=clock, sleep=clock.sleep)

    # The first passes at once; the second waits for a full bucket; the third
    # waits for the second's debt (4000) to be repaid plus its own 100 tokens.
    granted = times_of(limiter, clock, [5000, 5000, 100])

    assert granted == pytest.approx([0.0, 300.0, 546.0])


def test_waiters_are_served_first_come_first_served() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tpm=100, clock=clock, sleep=clock.sleep)
    served: list[tuple[str, float]] = []

    async def request(name: str, tokens: int) -> None:
        await limiter.acquire(tokens)
        served.append((name, clock.now))

    async def main() -> None:
        await limiter.acquire(100)
        # A big request at the head is not overtaken by the small ones behind it.
        tasks = [asyncio.create_task(request(n, t)) for n, t in [("big", 100), ("a", 1), ("b", 1), ("c", 1)]]
        await asyncio.gather(*tasks)

    run(main)
    assert [name for name, _ in served] == ["big", "a", "b", "c"]
    assert [t for _, t in served] == pytest.approx([60.0, 60.6, 61.2, 61.8])


def test_a_cancelled_waiter_spends_nothing() -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def sleep(seconds: float) -> None:
        await gate.wait()  # park the head waiter until the test lets time pass
        clock.now += seconds

    limiter = RateLimiter(rpm=1, clock=clock, sleep=sleep)

    async def main() -> float:
        await limiter.acquire()
        head = asyncio.create_task(limiter.acquire())
        await turns(2)
        head.cancel()
        await asyncio.gather(head, return_exceptions=True)
        gate.set()
        await limiter.acquire()
        return clock.now

    # The cancelled request paid nothing, so the next one waits one interval, not two.
    assert run(main) == pytest.approx(60.0)


def test_no_budgets_means_no_waiting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)

    assert times_of(limiter, clock, [10**9] * 3) == [0.0] * 3


@pytest.mark.parametrize(("rpm", "tpm"), [(0, None), (None, 0), (-5, 100)])
def test_budgets_must_be_positive(rpm: int | None, tpm: int | None) -> None:
    with pytest.raises(ValueError, match="must be a positive integer or None"):
        RateLimiter(rpm=rpm, tpm=tpm)


def test_negative_tokens_are_rejected() -> None:
    limiter = RateLimiter(tpm=10)

    with pytest.raises(ValueError, match=r"^tokens must be >= 0, got -1$"):
        asyncio.run(limiter.acquire(-1))


# --- ProviderLimits -------------------------------------------------------------


def test_provider_limits_pay_the_budget_then_hold_a_slot() -> None:
    clock = FakeClock()
    limits = ProviderLimits(4, rpm=2, tpm=1000, initial_concurrency=4, clock=clock, sleep=clock.sleep)
    seen: list[tuple[float, dict[str, int | None]]] = []

    async def main() -> None:
        for _ in range(3):
            async with limits.call(estimated_tokens=100):
                seen.append((clock.now, limits.snapshot()))
                limits.succeeded()

    run(main)
    assert [t for t, _ in seen] == pytest.approx([0.0, 0.0, 30.0])
    assert seen[0][1] == {"limit": 4, "in_flight": 1, "throttles": 0, "rpm": 2, "tpm": 1000}
    assert limits.snapshot()["in_flight"] == 0


def test_provider_limits_pass_throttles_through() -> None:
    limits = ProviderLimits(8, initial_concurrency=8)

    assert limits.throttled()
    assert limits.snapshot() == {"limit": 4, "in_flight": 0, "throttles": 1, "rpm": None, "tpm": None}
    limits.succeeded()
    assert limits.concurrency.limit == 4


def test_provider_limits_start_low_by_default() -> None:
    limits = ProviderLimits(32, min_concurrency=2)

    assert limits.concurrency.limit == 2


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ProviderError("rate limited", retryable=True, retry_after=1.0, status=429), True),
        (ProviderError("overloaded", retryable=True, status=529), True),
        (ProviderError("unavailable", retryable=True, status=503), False),
        (ProviderError("timed out", retryable=True), False),
        (ValueError("not a provider error"), False),
    ],
)
def test_is_throttle(error: BaseException, expected: bool) -> None:
    assert is_throttle(error) is expected
