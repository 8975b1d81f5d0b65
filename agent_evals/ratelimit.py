"""Client-side limits on model calls, so a long run converges under rate limits.

Two mechanisms, composed per provider by `ProviderLimits`:

    RateLimiter           requests-per-minute and tokens-per-minute token buckets,
                          refilled continuously; waiters are served in FIFO order
    AdaptiveConcurrency   an AIMD limit on calls in flight, learned from 429/529s

The concurrency policy is TCP congestion control, with "calls in flight" as the
window and a throttle (429, or 529 overloaded) as the loss signal:

    slow start       from `initial` (default `minimum`), +1 per success, so the limit
                     doubles every round of calls, until the first throttle or `maximum`
    decrease         on a throttle, halve the limit (never below `minimum`), at most
                     once per window: further throttles are ignored while any call
                     that was in flight at the last decrease is still running, and
                     for `cooldown_s` after it
    increase         after that, +1 per `increase_every` consecutive successes
                     (default: as many as the current limit, i.e. about +1 per round);
                     only successes while the limit holds calls back (every slot
                     taken, or callers waiting) count, so an idle limit does not grow

Starting low costs a few rounds when the provider has headroom, but starting at
the maximum would send the whole first burst into a limit we know nothing about.

Pure asyncio and the standard library; clocks and sleeps are injectable so the
tests run on logical time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

__all__ = [
    "THROTTLE_STATUSES",
    "AdaptiveConcurrency",
    "ProviderLimits",
    "RateLimiter",
    "is_throttle",
]

THROTTLE_STATUSES = frozenset({429, 529})
"""HTTP statuses that mean "slow down": rate limited (429), Anthropic overloaded (529)."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

# Float slack when a bucket is refilled to exactly what a request needs.
_EPSILON = 1e-9


def is_throttle(error: BaseException) -> bool:
    """Whether `error` is a provider telling us to slow down (a 429 or 529).

    Args:
        error: any exception; only objects with an int `status` (ProviderError) can match.

    Returns:
        True when its `status` is in `THROTTLE_STATUSES`.
    """
    return getattr(error, "status", None) in THROTTLE_STATUSES


class AdaptiveConcurrency:
    """An AIMD limit on calls in flight (see the module docstring for the policy).

    Use `async with limiter.slot():` around each call, and report its outcome with
    `on_success()` or `on_throttled()` before leaving the slot: a throttle reported
    from inside the slot is recognised as part of the burst it belongs to.

    Slots are granted in FIFO order. A waiter that is cancelled takes no slot, and
    a holder that is cancelled (or raises) gives its slot back.
    """

    def __init__(
        self,
        maximum: int,
        *,
        minimum: int = 1,
        initial: int | None = None,
        increase_every: int | None = None,
        cooldown_s: float = 0.0,
        history_size: int = 1000,
        clock: Clock = time.monotonic,
    ) -> None:
        """Create a limiter.

        Args:
            maximum: the limit is never raised above this (the configured concurrency).
            minimum: the limit is never halved below this.
            initial: the starting limit; defaults to `minimum` (slow start probes up).
            increase_every: consecutive successes per +1 once slow start is over;
                None means "the current limit" (TCP congestion avoidance).
            cooldown_s: a decrease also ignores throttles for this long after it, for
                callers that report throttles after leaving their slot.
            history_size: how many (time, limit) changes `history` keeps.
            clock: seconds, monotonic; used for `history` and the cooldown.

        Raises:
            ValueError: the bounds are inconsistent or not positive.
        """
        if minimum < 1 or maximum < minimum:
            raise ValueError(f"need 1 <= minimum <= maximum, got minimum={minimum}, maximum={maximum}")
        start = minimum if initial is None else initial
        if not minimum <= start <= maximum:
            raise ValueError(f"initial={start} is outside [{minimum}, {maximum}]")
        if increase_every is not None and increase_every < 1:
            raise ValueError(f"increase_every must be >= 1, got {increase_every}")
        if cooldown_s < 0 or history_size < 1:
            raise ValueError("cooldown_s must be >= 0 and history_size >= 1")
        self._maximum = maximum
        self._minimum = minimum
        self._limit = start
        self._increase_every = increase_every
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._slow_start = True
        self._in_flight = 0
        self._successes = 0  # consecutive, since the last increase or throttle
        self._throttles = 0
        # A holder remembers the generation it was admitted in; each decrease starts
        # a new one. Holders from older generations were in flight at the last
        # decrease, and while any of them runs, its throttles are echoes of that one.
        self._generation = 0
        self._old_holders = 0
        self._last_decrease: float | None = None
        # Futures rather than an asyncio.Condition: releasing a slot must not await
        # (a cancelled holder could be cancelled again while re-taking the lock and
        # leak its slot), and granting in release() gives FIFO order for free.
        self._waiters: deque[asyncio.Future[int]] = deque()
        self._history: deque[tuple[float, int]] = deque([(clock(), start)], maxlen=history_size)

    @property
    def limit(self) -> int:
        """The current number of calls allowed in flight."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """Slots held right now (may exceed `limit` just after a decrease)."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Callers queued for a slot."""
        return len(self._waiters)

    @property
    def maximum(self) -> int:
        """The ceiling of `limit`."""
        return self._maximum

    @property
    def minimum(self) -> int:
        """The floor of `limit`."""
        return self._minimum

    @property
    def throttles(self) -> int:
        """Throttles reported so far, including those ignored inside a window."""
        return self._throttles

    @property
    def history(self) -> list[tuple[float, int]]:
        """(clock time, new limit) for the start and each change, oldest first, bounded."""
        return list(self._history)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of `limit` slots for the body; wait (FIFO) while all are taken."""
        generation = await self._acquire()
        try:
            yield
        finally:
            self._release(generation)

    def on_success(self) -> None:
        """Record a call that was not throttled; may raise the limit by one.

        Only successes while the limit is in use count (all slots held, or callers
        waiting): an idle limit, at the tail of a run or in a quiet phase, has not
        been tested against the provider, and growing it would bank headroom that
        the next burst then spends on 429s.
        """
        if self._in_flight < self._limit and not self._waiters:
            return
        self._successes += 1
        needed = 1 if self._slow_start else (self._increase_every or self._limit)
        if self._successes >= needed and self._limit < self._maximum:
            self._successes = 0
            self._set_limit(self._limit + 1)
            self._wake()

    def on_throttled(self) -> bool:
        """Record a 429/529; halve the limit unless this window already did.

        Returns:
            True when the limit was decreased (or would have been, but sits at
            `minimum`); False when the throttle fell inside the current window.
        """
        self._throttles += 1
        self._successes = 0
        now = self._clock()
        in_cooldown = self._last_decrease is not None and now - self._last_decrease < self._cooldown_s
        if self._old_holders > 0 or in_cooldown:
            return False
        self._slow_start = False
        self._last_decrease = now
        self._generation += 1
        self._old_holders = self._in_flight
        self._set_limit(max(self._minimum, self._limit // 2))
        return True

    async def _acquire(self) -> int:
        if not self._waiters and self._in_flight < self._limit:
            self._in_flight += 1
            return self._generation
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Granted and cancelled in the same loop iteration: the slot was
            # counted for us, so pass it on instead of leaking it.
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _release(self, generation: int) -> None:
        self._in_flight -= 1
        if generation < self._generation:
            self._old_holders -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self._limit:
            waiter = self._waiters.popleft()
            if waiter.done():  # cancelled while queued
                continue
            self._in_flight += 1
            waiter.set_result(self._generation)

    def _set_limit(self, limit: int) -> None:
        if limit != self._limit:
            self._limit = limit
            self._history.append((self._clock(), limit))


class _TokenBucket:
    """A budget of `per_minute` units, refilled continuously, starting full.

    The level may go negative: an oversized request is let through when the
    bucket is full, and the debt is paid back before anyone else is served.
    """

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def delay(self, amount: int) -> float:
        """Seconds until `amount` can be paid (a full bucket pays any amount)."""
        deficit = min(float(amount), self.capacity) - self.level
        return max(0.0, deficit / self.rate)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budgets for one provider.

    Both are token buckets that start full and refill continuously, so a run may
    burst up to a minute's budget and then proceeds at the steady rate. Callers
    are served strictly in arrival order: a large request at the head is not
    overtaken by small ones behind it, so it cannot starve.
    """

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Create a limiter; a None budget is unlimited.

        Args:
            rpm: requests per minute.
            tpm: tokens per minute (prompt plus expected completion, as estimated by the caller).
            clock: seconds, monotonic.
            sleep: awaited to wait; tests pass one that advances a fake clock.

        Raises:
            ValueError: a budget is not positive.
        """
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer or None, got {value}")
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._requests = _TokenBucket(rpm, now) if rpm is not None else None
        self._tokens = _TokenBucket(tpm, now) if tpm is not None else None
        # asyncio.Lock wakes its waiters in order and lets no newcomer barge in.
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int = 0) -> float:
        """Wait until one request of `tokens` fits both budgets, then spend it.

        A request larger than the whole tpm budget passes once the bucket is full
        (the budget then runs into debt), so it cannot deadlock. A caller that is
        cancelled while waiting spends nothing.

        Args:
            tokens: the request's estimated token count; ignored without a tpm budget.

        Returns:
            Seconds waited, by the limiter's clock.

        Raises:
            ValueError: `tokens` is negative.
        """
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        demands = [(b, n) for b, n in ((self._requests, 1), (self._tokens, tokens)) if b is not None]
        if not demands:
            return 0.0
        async with self._lock:
            start = self._clock()
            while True:
                now = self._clock()
                delay = 0.0
                for bucket, amount in demands:
                    bucket.refill(now)
                    delay = max(delay, bucket.delay(amount))
                if delay <= _EPSILON:
                    break
                await self._sleep(delay)
            for bucket, amount in demands:
                bucket.level -= amount
            return self._clock() - start


class ProviderLimits:
    """The rate budget and the adaptive concurrency limit of one provider.

    The runner keeps one per provider name and wraps each attempt (not the whole
    retry loop, so a backoff sleep holds no slot):

        async with limits.call(estimated_tokens):
            try:
                completion = await provider.complete(request)
            except ProviderError as error:
                if is_throttle(error):
                    limits.throttled()
                raise
            limits.succeeded()
    """

    def __init__(
        self,
        max_concurrency: int,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        min_concurrency: int = 1,
        initial_concurrency: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Create both limiters.

        Args:
            max_concurrency: the configured calls in flight; the adaptive limit's ceiling.
            rpm: requests per minute, or None for no budget.
            tpm: tokens per minute, or None for no budget.
            min_concurrency: the adaptive limit's floor.
            initial_concurrency: where the adaptive limit starts (default: `min_concurrency`).
            clock: seconds, monotonic, shared by both limiters.
            sleep: awaited by the rate limiter to wait.

        Raises:
            ValueError: a bound or budget is invalid.
        """
        self.rate = RateLimiter(rpm, tpm, clock=clock, sleep=sleep)
        self.concurrency = AdaptiveConcurrency(
            max_concurrency, minimum=min_concurrency, initial=initial_concurrency, clock=clock
        )

    @asynccontextmanager
    async def call(self, estimated_tokens: int = 0) -> AsyncIterator[None]:
        """Spend rate budget for one call, then hold a concurrency slot for the body.

        Budget comes first so that a caller waiting for budget holds no slot.
        """
        await self.rate.acquire(estimated_tokens)
        async with self.concurrency.slot():
            yield

    def throttled(self) -> bool:
        """Report a 429/529 (see `AdaptiveConcurrency.on_throttled`)."""
        return self.concurrency.on_throttled()

    def succeeded(self) -> None:
        """Report a call that was not throttled."""
        self.concurrency.on_success()

    def snapshot(self) -> dict[str, int | None]:
        """The current state, for traces: limit, in_flight, throttles, rpm, tpm."""
        return {
            "limit": self.concurrency.limit,
            "in_flight": self.concurrency.in_flight,
            "throttles": self.concurrency.throttles,
            "rpm": self.rate.rpm,
            "tpm": self.rate.tpm,
        }
