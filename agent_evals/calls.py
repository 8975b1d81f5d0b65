"""One model call, the way a production job makes it.

cache lookup -> breaker -> budget reservation -> rate limit and adaptive
concurrency -> retries with timeouts -> trace -> cache store. Providers are
built once per run and shared by the cases and the LLM judges.

A provider that is down or misconfigured must not be tried case by case. Two
guards stop that, both here so cases and judges share them:

    check_keys   before anything is sent: an HTTP provider that needs a key and
                 whose variable is unset or empty stops the run (ConfigError, exit 2)
    Breaker      per provider: after `BREAKER_THRESHOLD` consecutive failures of the
                 same fatal kind (unreachable, key refused, unknown model; or calls
                 that ran out of retries), every later call fails at once with
                 ProviderStopped and sends nothing
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent_evals.budget import Budget, estimate
from agent_evals.errors import ConfigError, FailureKind, ProviderError, ProviderStopped
from agent_evals.models import ProjectConfig
from agent_evals.pricing import Prices, Rate
from agent_evals.providers import Completion, Provider, ProviderSettings, make_provider, resolve, spec
from agent_evals.providers.base import ChatRequest, Usage
from agent_evals.ratelimit import is_throttle
from agent_evals.retry import RetryEvent, RetryPolicy, call_with_retry
from agent_evals.trace import Tracer, request_attributes

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.cache import ResponseCache
    from agent_evals.ratelimit import ProviderLimits


BREAKER_THRESHOLD = 8
"""Consecutive failures of one fatal kind that stop a provider: the first burst of a run at the
default concurrency. Random failures do not line up eight in a row (0.3**8 is 7e-5), and a
provider that is merely slow or rate limited never counts."""

# Kinds that say the provider cannot answer any call as configured, attempt by attempt.
_FATAL: frozenset[FailureKind] = frozenset({"unreachable", "auth", "model"})
_AFTER_ATTEMPTS = re.compile(r" \(after \d+ attempts\)$")


class Breaker:
    """Stops calls to one provider that fails the same fatal way again and again.

    Fed every attempt's outcome (`succeeded`, `failed`) and every call that gave up
    (`gave_up`). It trips when either
      - the provider has never answered this run and `threshold` consecutive attempts
        failed with one fatal kind (unreachable, auth, model): a wrong port, a
        missing key or a misspelt model shows in the first burst, so stop there; or
      - `threshold` consecutive calls gave up with one kind (fatal, or `unavailable`:
        5xx and timeouts after all their retries): an outage mid-run, once retries
        have had their chance to ride out a blip.
    Any other outcome (a success, a throttle, an error about one input) breaks the streak.
    """

    def __init__(self, provider: str, threshold: int = BREAKER_THRESHOLD) -> None:
        self.provider = provider
        self.threshold = threshold
        self.answered = False
        self.kind: FailureKind | None = None
        self.attempts = 0
        self.calls = 0
        self.message = ""
        self.tripped: ProviderStopped | None = None

    def check(self) -> None:
        """Raise ProviderStopped if the breaker has tripped; nothing is sent then."""
        if self.tripped is not None:
            tripped = self.tripped
            raise ProviderStopped(
                tripped.args[0],
                provider=self.provider,
                kind=tripped.kind or "unavailable",
                failures=tripped.failures,
            )

    def succeeded(self) -> None:
        self.answered = True
        self._reset()

    def failed(self, error: ProviderError) -> None:
        """One attempt failed (before the retry loop decides what to do with it)."""
        if error.kind is None or error.kind == "throttled":
            self._reset()
            return
        self._extend(error)
        self.attempts += 1
        if not self.answered and error.kind in _FATAL and self.attempts >= self.threshold:
            self._trip(self.attempts)

    def gave_up(self, error: ProviderError) -> None:
        """A call failed for good (its retries, if any, spent)."""
        if isinstance(error, ProviderStopped) or error.kind is None or error.kind == "throttled":
            return
        self._extend(error)
        self.calls += 1
        if self.calls >= self.threshold:
            self._trip(self.calls)

    def _extend(self, error: ProviderError) -> None:
        if error.kind != self.kind:
            self._reset()
            self.kind = error.kind
        # The retry loop appends "(after N attempts)"; the provider's own words are what repeats.
        self.message = _AFTER_ATTEMPTS.sub("", str(error))

    def _reset(self) -> None:
        self.kind, self.attempts, self.calls = None, 0, 0

    def _trip(self, failures: int) -> None:
        if self.tripped is None and self.kind is not None:
            self.tripped = ProviderStopped(
                self.message, provider=self.provider, kind=self.kind, failures=failures
            )


def check_keys(config: ProjectConfig, root: Path, providers: Iterable[str]) -> None:
    """Refuse to start a run whose HTTP providers lack the key they need.

    A key is needed when agent-evals.yaml names the provider's `api_key_env`, or when
    the provider talks to its vendor's own API (api.openai.com, api.anthropic.com),
    which refuses every call without one. `api_key_env: null` (or "") says a server
    needs none; a custom base URL (a local vLLM or Ollama) needs none unless named,
    and if it does refuse, the breaker stops the run at the first 401s.

    Raises:
        ConfigError: a needed variable is unset or empty, naming it.
    """
    for name in dict.fromkeys(providers):
        settings = resolve(name, config, root)
        if not spec(settings).http or not settings.api_key_env:
            continue
        # (`api_key_env: null` already resolved to no variable, skipped above.)
        pc = config.providers.get(name)
        named = pc is not None and "api_key_env" in pc.model_fields_set
        if not (named or _vendor_api(settings)):
            continue
        if not (settings.api_key() or "").strip():
            raise ConfigError(
                f"provider '{name}': {settings.api_key_env} is not set",
                hint="export it, or set api_key_env in agent-evals.yaml",
            )


def _vendor_api(settings: ProviderSettings) -> bool:
    from urllib.parse import urlsplit

    default = spec(settings).base_url
    if default is None:
        return False
    try:
        return urlsplit(settings.base_url or default).hostname == urlsplit(default).hostname
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class CallResult:
    """A call's answer and what it took.

    `latency_ms` is the wall time of the call that produced the answer, retries and waits
    for a rate limit included: for a cached answer, the call that filled the cache entry
    (None when the entry is older than latencies in the cache: not measured).
    """

    completion: Completion
    attempts: int
    cached: bool
    cost_usd: float | None
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class TraceContext:
    """Who a call is for, so its trace lines can say so."""

    evalset: str
    case_id: str
    repeat: int
    role: str = "case"  # or "judge"
    step: int | None = None
    """The call's step in the case's trajectory (agent loops only), numbered from 1."""


class Calls:
    """Providers by name, with the run's cache, budget, limits and tracer."""

    def __init__(
        self,
        config: ProjectConfig,
        root: Path,
        policy: RetryPolicy,
        *,
        client: aiohttp.ClientSession | None = None,
        cache: ResponseCache | None = None,
        budget: Budget | None = None,
        tracer: Tracer | None = None,
        concurrency: int = 8,
    ) -> None:
        self.config = config
        self.root = root
        self.client = client
        self._owns_client = False
        self.policy = policy
        self.cache = cache
        self.budget = budget or Budget(None)
        self.tracer = tracer
        self.concurrency = concurrency
        self.prices = Prices(config.prices)
        self._providers: dict[str, Provider] = {}
        self._settings: dict[str, ProviderSettings] = {}
        self._limits: dict[str, ProviderLimits] = {}
        self.breakers: dict[str, Breaker] = {}
        self._keys: dict[tuple[int, int], tuple[ChatRequest, str]] = {}

    def settings(self, name: str) -> ProviderSettings:
        if name not in self._settings:
            self._settings[name] = resolve(name, self.config, self.root)
        return self._settings[name]

    def http(self, name: str) -> bool:
        """Whether the provider speaks HTTP (and gets the run's client)."""
        return spec(self.settings(name)).http

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            client = self._http_client() if self.http(name) else None
            self._providers[name] = make_provider(name, self.config, root=self.root, client=client)
        return self._providers[name]

    def _http_client(self) -> aiohttp.ClientSession:
        """The run's one HTTP client, made on first use: a run on local or python: providers needs none."""
        if self.client is None:
            from agent_evals.providers._http import new_client

            # A connection per call in flight. The retry policy's timeout bounds each attempt,
            # so the client keeps no read timeout of its own: that timer is re-armed on every read.
            self.client = new_client(
                connections=self.concurrency, read_timeout_s=None, connect_timeout_s=self.policy.timeout_s
            )
            self._owns_client = True
        return self.client

    def limits(self, name: str) -> ProviderLimits:
        if name not in self._limits:
            from agent_evals.ratelimit import ProviderLimits

            pc = self.config.providers.get(name)
            ceiling = (
                min(self.concurrency, pc.max_concurrency) if pc and pc.max_concurrency else self.concurrency
            )
            # Start at the concurrency asked for (-j is the user's intent); AIMD halves on the first 429s.
            self._limits[name] = ProviderLimits(
                ceiling, rpm=pc.rpm if pc else None, tpm=pc.tpm if pc else None, initial_concurrency=ceiling
            )
        return self._limits[name]

    def breaker(self, name: str) -> Breaker:
        if name not in self.breakers:
            self.breakers[name] = Breaker(name)
        return self.breakers[name]

    def price(self, provider_name: str, model: str) -> Rate | None:
        """The rate of a call asking `provider_name` for `model` (before it answers); None: unpriced."""
        return self.prices.rate(self.settings(provider_name).type, model)

    def prefetch(self, provider_name: str, calls: Sequence[tuple[ChatRequest, int]]) -> None:
        """Read the cache entries of calls about to be made, in one query (`ResponseCache.prefetch`).

        Each call's key is kept for `call` to use, so it is computed once. A no-op when the
        provider's answers are not cached.

        Args:
            provider_name: the provider the calls go to.
            calls: (request, repeat index) of each call.
        """
        if not self.cacheable(provider_name) or self.cache is None:
            return
        from agent_evals.cache import cache_key

        settings = self.settings(provider_name)
        keys = []
        for request, repeat in calls:
            key = cache_key(request, settings, repeat)
            self._keys[(id(request), repeat)] = (request, key)
            keys.append(key)
        self.cache.prefetch(keys)

    def _cache_key(self, request: ChatRequest, settings: ProviderSettings, repeat: int) -> str:
        # A key `prefetch` computed is used once; the entry holds the request, so its id is not reused.
        kept = self._keys.pop((id(request), repeat), None)
        if kept is not None and kept[0] is request:
            return kept[1]
        from agent_evals.cache import cache_key

        return cache_key(request, settings, repeat)

    def cacheable(self, provider_name: str) -> bool:
        # Agent code is the system under test: a change to it is invisible to the cache key.
        return self.cache is not None and spec(self.settings(provider_name)).cacheable

    @asynccontextmanager
    async def _slot(self, name: str, tokens: int) -> AsyncIterator[None]:
        limits = self.limits(name)
        breaker = self.breaker(name)
        async with limits.call(tokens):
            # Checked once the slot is ours: a call that waited for it, or slept in a
            # backoff, may find the provider stopped meanwhile.
            breaker.check()
            try:
                yield
            except ProviderError as exc:
                if is_throttle(exc):
                    limits.throttled()
                breaker.failed(exc)
                raise
            except TimeoutError:
                breaker.failed(ProviderError("timed out", kind="unavailable"))
                raise
            else:
                limits.succeeded()
                breaker.succeeded()

    async def call(self, provider_name: str, request: ChatRequest, ctx: TraceContext) -> CallResult:
        """Make (or reuse) one call.

        Raises:
            BudgetExceeded: the call could cross the cost ceiling; nothing was sent.
            ProviderStopped: the provider's breaker has tripped; nothing more was sent.
            ProviderError: the provider failed after retries.
        """
        settings = self.settings(provider_name)
        key = None
        if self.cacheable(provider_name):
            assert self.cache is not None
            key = self._cache_key(request, settings, ctx.repeat)
            hit = self.cache.get(key)
            if hit is not None:
                self._trace_response(
                    settings, request, ctx, hit.completion, time.time(), 0, cached=True, cost=0.0
                )
                return CallResult(
                    hit.completion, attempts=0, cached=True, cost_usd=0.0, latency_ms=hit.latency_ms
                )
        clock = time.perf_counter()
        breaker = self.breaker(provider_name)
        breaker.check()
        # Reserved at the price of the model asked for: which model answers is known only after.
        guess = estimate(request, self.price(provider_name, request.model.name))
        reserved = self.budget.reserve(guess.cost_usd)
        provider = self.provider(provider_name)
        started = time.time()
        attempt_start = [started]

        async def attempt() -> Completion:
            attempt_start[0] = time.time()
            return await provider.complete(request)

        def on_retry(event: RetryEvent) -> None:
            if self.tracer is not None:
                self.tracer.event(
                    "retry", attempt_start[0], evalset=ctx.evalset, case_id=ctx.case_id, repeat=ctx.repeat,
                    role=ctx.role, agent_step=ctx.step, attempt=event.attempt, delay_s=round(event.delay_s, 3),
                    concurrency_limit=self.limits(provider_name).snapshot()["limit"],
                    **{"error.type": str(event.error.status or type(event.error).__name__),
                       "error.message": str(event.error)},
                )  # fmt: skip

        try:
            completion, attempts = await call_with_retry(
                attempt,
                self.policy,
                on_retry=on_retry,
                acquire=lambda: self._slot(provider_name, guess.input_tokens + guess.output_tokens),
            )
        except ProviderError as exc:
            breaker.gave_up(exc)
            self.budget.settle(reserved, 0.0)
            if self.tracer is not None:
                self.tracer.event(
                    "request", started, evalset=ctx.evalset, case_id=ctx.case_id, repeat=ctx.repeat, role=ctx.role,
                    agent_step=ctx.step, attempt=exc.attempts, **request_attributes(settings.type, request),
                    **{"error.type": str(exc.status or type(exc).__name__), "error.message": str(exc)},
                )  # fmt: skip
            raise
        latency_ms = (time.perf_counter() - clock) * 1000
        cost = self.prices.cost(completion.usage, settings.type, completion.model, request.model.name)
        if completion.steps:
            completion, cost = self._price_steps(completion, cost, settings.type, request.model.name)
        self.budget.settle(reserved, cost)
        if self.tracer is not None:
            self.tracer.event(
                "request", started, evalset=ctx.evalset, case_id=ctx.case_id, repeat=ctx.repeat, role=ctx.role,
                agent_step=ctx.step, attempt=attempts, **request_attributes(settings.type, request),
            )  # fmt: skip
        self._trace_response(
            settings, request, ctx, completion, attempt_start[0], attempts, cached=False, cost=cost
        )
        if key is not None and self.cache is not None:
            self.cache.put(
                key, completion, provider=provider_name, model=request.model.name, latency_ms=latency_ms
            )
        return CallResult(completion, attempts=attempts, cached=False, cost_usd=cost, latency_ms=latency_ms)

    def _price_steps(
        self, completion: Completion, cost: float | None, provider_type: str, asked: str
    ) -> tuple[Completion, float | None]:
        """An agent's own model steps priced each by the model that answered it.

        A call whose steps answered from several models has no single price; the sum of its
        steps' costs is its cost when every step is priced (else it stays unpriced, never $0).
        """
        priced = []
        for step in completion.steps:
            if step.kind == "model" and step.cost_usd is None and step.usage is not None:
                usage = step.usage
                tokens = Usage(
                    usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens
                )
                step = step.model_copy(
                    update={"cost_usd": self.prices.cost(tokens, provider_type, step.model, asked)}
                )
            priced.append(step)
        costs = [s.cost_usd for s in priced if s.kind == "model"]
        if cost is None and costs and all(c is not None for c in costs):
            cost = sum(c for c in costs if c is not None)
        return replace(completion, steps=tuple(priced)), cost

    def _trace_response(
        self,
        settings: ProviderSettings,
        request: ChatRequest,
        ctx: TraceContext,
        completion: Completion,
        start: float,
        attempts: int,
        *,
        cached: bool,
        cost: float | None,
    ) -> None:
        if self.tracer is None:
            return
        usage = completion.usage
        self.tracer.event(
            "response", start, evalset=ctx.evalset, case_id=ctx.case_id, repeat=ctx.repeat, role=ctx.role,
            agent_step=ctx.step, attempt=attempts, cached=cached, cost_usd=cost,
            **request_attributes(settings.type, request),
            **{
                "gen_ai.response.model": completion.model,
                "gen_ai.response.finish_reasons": [completion.finish_reason] if completion.finish_reason else None,
                "gen_ai.usage.input_tokens": usage.input_tokens if usage else None,
                "gen_ai.usage.output_tokens": usage.output_tokens if usage else None,
                "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens if usage else None,
                "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens if usage else None,
            },
        )  # fmt: skip

    def stopped(self, names: Iterable[str]) -> ProviderStopped | None:
        """The first tripped breaker among these providers, if any."""
        for name in names:
            breaker = self.breakers.get(name)
            if breaker is not None and breaker.tripped is not None:
                return breaker.tripped
        return None

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        if self._owns_client and self.client is not None:
            client, self.client = self.client, None
            await client.close()
