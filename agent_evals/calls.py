"""One model call, the way a production job makes it.

cache lookup -> budget reservation -> rate limit and adaptive concurrency ->
retries with timeouts -> trace -> cache store. Providers are built once per
run and shared by the cases and the LLM judges.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent_evals.budget import Budget, estimate
from agent_evals.errors import ProviderError
from agent_evals.models import Price, ProjectConfig
from agent_evals.pricing import cost_usd, merged_table, price_for
from agent_evals.providers import HTTP_TYPES, Completion, Provider, ProviderSettings, make_provider, resolve
from agent_evals.ratelimit import is_throttle
from agent_evals.render import ChatRequest
from agent_evals.retry import RetryEvent, RetryPolicy, call_with_retry
from agent_evals.trace import Tracer, request_attributes

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.cache import ResponseCache
    from agent_evals.ratelimit import ProviderLimits


@dataclass(frozen=True, slots=True)
class CallResult:
    completion: Completion
    attempts: int
    cached: bool
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class TraceContext:
    """Who a call is for, so its trace lines can say so."""

    evalset: str
    case_id: str
    repeat: int
    role: str = "case"  # or "judge"


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
        self.prices = merged_table(config.prices)
        self._providers: dict[str, Provider] = {}
        self._settings: dict[str, ProviderSettings] = {}
        self._limits: dict[str, ProviderLimits] = {}

    def settings(self, name: str) -> ProviderSettings:
        if name not in self._settings:
            self._settings[name] = resolve(name, self.config, self.root)
        return self._settings[name]

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            client = self._http_client() if self.settings(name).type in HTTP_TYPES else None
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

    def price(self, provider_name: str, model: str) -> Price | None:
        return price_for(model or provider_name, self.settings(provider_name).type, self.prices)

    def cacheable(self, provider_name: str) -> bool:
        # Agent code is the system under test: a change to it is invisible to the cache key.
        return self.cache is not None and self.settings(provider_name).type != "python"

    @asynccontextmanager
    async def _slot(self, name: str, tokens: int) -> AsyncIterator[None]:
        limits = self.limits(name)
        async with limits.call(tokens):
            try:
                yield
            except ProviderError as exc:
                if is_throttle(exc):
                    limits.throttled()
                raise
            else:
                limits.succeeded()

    async def call(self, provider_name: str, request: ChatRequest, ctx: TraceContext) -> CallResult:
        """Make (or reuse) one call.

        Raises:
            BudgetExceeded: the call could cross the cost ceiling; nothing was sent.
            ProviderError: the provider failed after retries.
        """
        settings = self.settings(provider_name)
        key = None
        if self.cacheable(provider_name):
            from agent_evals.cache import cache_key

            assert self.cache is not None
            key = cache_key(request, settings, ctx.repeat)
            hit = self.cache.get(key)
            if hit is not None:
                self._trace_response(settings, request, ctx, hit, time.time(), 0, cached=True, cost=0.0)
                return CallResult(hit, attempts=0, cached=True, cost_usd=0.0)
        price = self.price(provider_name, request.model.name)
        guess = estimate(request, price)
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
                    role=ctx.role, attempt=event.attempt, delay_s=round(event.delay_s, 3),
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
            self.budget.settle(reserved, 0.0)
            if self.tracer is not None:
                self.tracer.event(
                    "request", started, evalset=ctx.evalset, case_id=ctx.case_id, repeat=ctx.repeat, role=ctx.role,
                    attempt=exc.attempts, **request_attributes(settings.type, request),
                    **{"error.type": str(exc.status or type(exc).__name__), "error.message": str(exc)},
                )  # fmt: skip
            raise
        cost = cost_usd(completion.usage, price)
        self.budget.settle(reserved, cost)
        if self.tracer is not None:
            self.tracer.event(
                "request", started, evalset=ctx.evalset, case_id=ctx.case_id, repeat=ctx.repeat, role=ctx.role,
                attempt=attempts, **request_attributes(settings.type, request),
            )  # fmt: skip
        self._trace_response(
            settings, request, ctx, completion, attempt_start[0], attempts, cached=False, cost=cost
        )
        if key is not None and self.cache is not None:
            self.cache.put(key, completion, provider=provider_name, model=request.model.name)
        return CallResult(completion, attempts=attempts, cached=False, cost_usd=cost)

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
            attempt=attempts, cached=cached, cost_usd=cost,
            **request_attributes(settings.type, request),
            **{
                "gen_ai.response.model": completion.model,
                "gen_ai.response.finish_reasons": [completion.finish_reason] if completion.finish_reason else None,
                "gen_ai.usage.input_tokens": usage.input_tokens if usage else None,
                "gen_ai.usage.output_tokens": usage.output_tokens if usage else None,
            },
        )  # fmt: skip

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        if self._owns_client and self.client is not None:
            client, self.client = self.client, None
            await client.close()
