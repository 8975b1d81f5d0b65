"""The agent loop: call the model, answer its tool calls from the case's records, call it again.

A prompt that declares `tools:` (or a case that records tool calls) runs here instead of
as one model call. Each step is one request through `Calls.call`, so the cache, the
budget, the breaker, rate limits, retries and traces apply per model call, and each
step's request is its own cache entry:

    request (rendered messages)
      -> model step: the completion; no tool calls -> done, its text is the output
      -> tool steps: each call answered in the model's order by `agent_evals.replay`
         (a parallel call is answered in full before the next model call)
      -> request + the assistant's message (its tool calls) + the tool messages -> again

The loop stops with a final answer, or as an error: after `max_steps` model calls that
all asked for tools, at a call nothing answers (`replay.Unanswered`), or when a model
call fails. A call the budget refuses skips the case. What was done by then is kept.

A tool-choice that forces a call (`required`, or a tool's name) holds for the first
model call only; later steps send `auto`, or no model could ever answer (the OpenAI
Agents SDK resets it the same way, for the same reason).

Steps are numbered from 1 in `steps` order, model and tool steps alike; `Replayer`
is told each tool step's number, so its `unmatched` entries name the step.

A case with turns (a conversation) runs the loop once per turn: after each final
answer, the assistant's message and the next scripted user message join the
conversation and the loop runs again, with its tools, replay (one replayer for the
whole conversation, so recorded calls are consumed in order across turns), tool
choice and `max_steps` applying per turn. Steps accumulate and each says its turn; a
turn that ends as an error ends the case, its error naming the turn ("turn 2: ...").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from agent_evals.budget import BudgetExceeded
from agent_evals.errors import ProviderError
from agent_evals.models import Message, ToolCallSpec
from agent_evals.providers._http import tool_call_text
from agent_evals.providers.base import Completion, ToolCall
from agent_evals.record import ReplayRecord, StepRecord, ToolCallRecord, Usage, total_usage
from agent_evals.replay import Unanswered, result_text
from agent_evals.trace import tool_attributes

if TYPE_CHECKING:
    from agent_evals.calls import CallResult, Calls, TraceContext
    from agent_evals.providers.base import ChatRequest
    from agent_evals.replay import Replayer

__all__ = ["Trajectory", "max_steps_message", "run_agent", "usage_of"]

_KEPT_CHOICES = frozenset({None, "auto", "none"})
"""Tool choices that force no call: sent on every step."""


def max_steps_message(limit: int) -> str:
    """The error of a case whose model still asked for tools at its last allowed call."""
    calls = "1 model call" if limit == 1 else f"{limit} model calls"
    return f"stopped after {calls} without a final answer (raise max_steps or fix the loop)"


@dataclass(frozen=True)
class Trajectory:
    """What one case's loop did: its steps and totals, its last answer, and why it stopped early.

    Attributes:
        steps: model and tool steps in order; empty when the model answered at its first
            call without calling a tool (a record then looks as a single call's does), or
            the agent's own steps when a `python:` agent reported them.
        tool_calls: every call the model asked for, in order (answered or not).
        last: the last model call that answered (None when the first one failed).
        usage: summed over the model steps (None when no step reported any).
        cost_usd: summed over the model steps; None when any was unpriced.
        latency_ms: the sum of the steps whose latency was measured (None if none was).
        attempts: HTTP attempts over all model calls.
        cached: every model call came from the cache.
        replay: the replayer's report: calls no record answered, records no call used
            (None without a replayer, a prompt without tools, or when the agent ran its own loop).
        error: why the case is an error (None when it ended with a final answer).
        skipped: why the case was skipped (the budget refused a model call).
        answers: a conversation's final answer of each turn it finished, in order (empty
            for a case without turns).
    """

    steps: tuple[StepRecord, ...]
    tool_calls: tuple[ToolCallRecord, ...]
    last: Completion | None
    usage: Usage | None
    cost_usd: float | None
    latency_ms: float | None
    attempts: int
    cached: bool
    replay: ReplayRecord | None
    error: str | None = None
    skipped: str | None = None
    answers: tuple[Completion, ...] = ()

    @property
    def output(self) -> str | None:
        return self.last.text if self.last is not None else None


def usage_of(completion: Completion) -> Usage | None:
    """A completion's tokens as the record keeps them."""
    usage = completion.usage
    if usage is None:
        return None
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )


def _spoken(completion: Completion) -> str:
    """What the model said beside its tool calls: the providers put the calls' JSON in the text
    of an answer made only of calls (`tool_call_text`), which is not something to send back."""
    if completion.tool_calls and completion.text == tool_call_text(completion.tool_calls):
        return ""
    return completion.text


def _call_id(call: ToolCall, step: int, position: int) -> str:
    # A legacy `function_call` has no id; the conversation needs one to pair call and answer.
    return call.id if call.id else f"call_{step}_{position}"


class _Run:
    """The state of one case's loop: its steps and totals so far."""

    def __init__(self, calls: Calls, provider: str, ctx: TraceContext, replayer: Replayer | None) -> None:
        self.calls = calls
        self.provider = provider
        self.ctx = ctx
        self.replayer = replayer
        self.steps: list[StepRecord | Callable[[], StepRecord]] = []
        """In order; a model step is built when the steps are kept (`result`)."""
        self.tool_calls: list[ToolCallRecord] = []
        self.answers: list[CallResult] = []
        self.latencies: list[float] = []
        """What was measured: each model call's (retries included) and each tool step's."""
        self.failed_attempts = 0
        self.turn: int | None = None
        """The turn being run, in a conversation (None for a case without turns)."""
        self.reported = False
        """An agent that ran its own loop reported its steps, in some turn."""
        self.finished: list[Completion] = []
        """A conversation's final answer of each turn done."""

    def model_step(self, answer: CallResult, step: int) -> list[ToolCallSpec]:
        """Record one model call; its tool calls, with the ids the conversation uses."""
        completion = answer.completion
        self.answers.append(answer)
        if answer.latency_ms is not None:
            self.latencies.append(answer.latency_ms)
        specs = [
            ToolCallSpec(id=_call_id(call, step, i), name=call.name, arguments=call.arguments)
            for i, call in enumerate(completion.tool_calls)
        ]
        # Calls no loop answers (no replayer, or an agent that ran its own loop) are kept as
        # they came: no id made up for a legacy call.
        answered_here = self.replayer is not None and not completion.steps
        ids = [s.id for s in specs] if answered_here else [c.id for c in completion.tool_calls]
        records = tuple(
            ToolCallRecord(name=c.name, arguments=c.arguments, id=i)
            for c, i in zip(completion.tool_calls, ids, strict=True)
        )
        self.tool_calls.extend(records)
        if completion.steps and self.turn is not None:
            # An agent that ran its own loop, in a conversation: its steps of this turn.
            self.reported = True
            self.steps.extend(s.model_copy(update={"turn": self.turn}) for s in completion.steps)
            return specs
        turn = self.turn

        def record() -> StepRecord:
            return StepRecord(
                kind="model",
                latency_ms=answer.latency_ms,
                model=completion.model,
                text=_spoken(completion) or None,
                finish_reason=completion.finish_reason,
                tool_calls=records,
                usage=usage_of(completion),
                cost_usd=answer.cost_usd,
                cached=answer.cached,
                turn=turn,
            )

        # Built only if the case turns out to have steps: a single call (most cases) has none.
        self.steps.append(record)
        return specs

    async def tool_step(self, replayer: Replayer, spec: ToolCallSpec) -> Message:
        """Answer one call; the tool message for the model.

        Raises:
            Unanswered: nothing answers the call (its step is recorded, with the reason as `error`).
        """
        step = len(self.steps) + 1
        call = ToolCall(name=spec.name, arguments=spec.arguments, id=spec.id)
        start, clock = time.time(), time.perf_counter()
        try:
            answer = await replayer.answer(call, step=step)
        except Unanswered as exc:
            self._tool_done(StepRecord(kind="tool", error=str(exc)), spec, start, clock, "unanswered")
            raise
        record = StepRecord(kind="tool", result=answer.result, source=answer.source, error=answer.error)
        self._tool_done(record, spec, start, clock, "tool_error")
        return Message(
            role="tool",
            tool_call_id=spec.id,
            name=spec.name,
            content=result_text(answer),
            is_error=answer.error is not None,
        )

    def _tool_done(
        self, record: StepRecord, spec: ToolCallSpec, start: float, clock: float, error_type: str
    ) -> None:
        latency_ms = (time.perf_counter() - clock) * 1000
        self.latencies.append(latency_ms)
        step = len(self.steps) + 1
        self.steps.append(
            record.model_copy(
                update={
                    "latency_ms": latency_ms,
                    "name": spec.name,
                    "arguments": spec.arguments,
                    "call_id": spec.id,
                    "turn": self.turn,
                }
            )
        )
        tracer = self.calls.tracer
        if tracer is not None:
            error = record.error
            tracer.event(
                "tool", start, evalset=self.ctx.evalset, case_id=self.ctx.case_id, repeat=self.ctx.repeat,
                agent_step=step, source=record.source, **tool_attributes(spec.name, spec.id),
                **({"error.type": error_type, "error.message": error} if error is not None else {}),
            )  # fmt: skip

    def result(self, *, error: str | None = None, skipped: str | None = None) -> Trajectory:
        answers = self.answers
        costs = [a.cost_usd for a in answers]
        steps: tuple[StepRecord, ...] = ()
        steps_reported = self.reported or bool(self.turn is None and answers and answers[-1].completion.steps)
        if error is not None and self.turn is not None:
            error = f"turn {self.turn}: {error}"
        if steps_reported and self.turn is None:
            # An agent that ran its own loop (a `python:` agent): its steps, as it reported them.
            steps = answers[-1].completion.steps
        elif len(self.steps) > 1 or self.turn is not None:
            # One model call that called no tool reads as a single call does: no steps. A
            # conversation keeps its steps, so each answer is found with its turn.
            steps = tuple(s if isinstance(s, StepRecord) else s() for s in self.steps)
        return Trajectory(
            steps=steps,
            tool_calls=tuple(self.tool_calls),
            last=answers[-1].completion if answers else None,
            usage=usage_of(answers[0].completion)
            if len(answers) == 1
            else total_usage(usage_of(a.completion) for a in answers),
            cost_usd=None
            if not answers or any(c is None for c in costs)
            else sum(c for c in costs if c is not None),
            latency_ms=sum(self.latencies) if self.latencies else None,
            attempts=sum(a.attempts for a in answers) + self.failed_attempts,
            cached=bool(answers) and all(a.cached for a in answers),
            # An agent that ran its own loop was never answered from the case's records.
            replay=self.replayer.report() if self.replayer is not None and not steps_reported else None,
            error=error,
            skipped=skipped,
            answers=tuple(self.finished),
        )


async def run_agent(
    calls: Calls,
    provider: str,
    request: ChatRequest,
    ctx: TraceContext,
    *,
    replayer: Replayer | None,
    max_steps: int,
    turns: Sequence[str] = (),
) -> Trajectory:
    """Run one case: a single model call, or (with a replayer) the loop to a final answer.

    Args:
        calls: the run's calls (cache, budget, limits, retries, tracer).
        provider: the provider name the prompt uses.
        request: the case's rendered request, with the tools offered.
        ctx: who the calls are for, for traces; each model call's carries its step.
        replayer: answers the case's tool calls (its records, then the eval set's mocks);
            None for a prompt without tools: one model call, whose tool calls (if any) are
            only recorded.
        max_steps: the most model calls (`Prompt.steps_limit`), per turn.
        turns: a conversation's next user messages (rendered), each sent after the
            previous turn's final answer; empty for a case without turns.

    Returns:
        The trajectory; a model call that failed, a call nothing answered, or too many
        steps make it an error (`error`, naming the turn in a conversation), a call the
        budget refused skips it (`skipped`).
    """
    run = _Run(calls, provider, ctx, replayer)
    if not turns:
        return await _run_turn(run, request, list(request.messages), replayer=replayer, max_steps=max_steps)
    conversation = list(request.messages)
    trajectory: Trajectory | None = None
    for turn, user in enumerate((None, *turns), start=1):
        run.turn = turn
        if user is not None:
            # The previous turn's final answer (never None here: that turn ended with one).
            last = run.finished[-1]
            conversation.extend(
                (Message(role="assistant", content=last.text), Message(role="user", content=user))
            )
        turn_request = replace(request, messages=tuple(conversation))
        trajectory = await _run_turn(run, turn_request, conversation, replayer=replayer, max_steps=max_steps)
        if trajectory.error is not None or trajectory.skipped is not None or trajectory.last is None:
            return trajectory
    assert trajectory is not None
    return trajectory


async def _run_turn(
    run: _Run,
    request: ChatRequest,
    conversation: list[Message],
    *,
    replayer: Replayer | None,
    max_steps: int,
) -> Trajectory:
    """One turn of the loop: model calls and tool steps to a final answer, appended to `run`.

    `conversation` (the request's messages) grows with the turn's tool calls and answers.
    """
    calls, provider, ctx = run.calls, run.provider, run.ctx
    conversational = run.turn is not None
    step_request = request
    for model_calls in range(1, max_steps + 1):
        step = len(run.steps) + 1
        started = time.perf_counter()
        try:
            answer = await calls.call(
                provider,
                step_request,
                replace(ctx, step=step) if replayer is not None or conversational else ctx,
            )
        except BudgetExceeded as exc:
            return run.result(skipped=str(exc))
        except ProviderError as exc:
            run.failed_attempts = exc.attempts
            if exc.attempts:  # a call the breaker stopped was never sent: no time to report
                run.latencies.append((time.perf_counter() - started) * 1000)
            return run.result(error=f"{provider}: {exc}")
        specs = run.model_step(answer, step)
        if not specs or replayer is None or answer.completion.steps:
            # A final answer; or calls nothing here answers: a prompt without tools, or an
            # agent that ran its own loop (its completion carries the steps it took).
            if conversational:
                run.finished.append(answer.completion)
            return run.result()
        if model_calls == max_steps:
            break
        conversation.append(
            Message(role="assistant", content=_spoken(answer.completion), tool_calls=tuple(specs))
        )
        for spec in specs:
            try:
                conversation.append(await run.tool_step(replayer, spec))
            except Unanswered as exc:
                return run.result(error=str(exc))
        step_request = replace(
            request,
            messages=tuple(conversation),
            tool_choice=request.tool_choice if request.tool_choice in _KEPT_CHOICES else "auto",
        )
    return run.result(error=max_steps_message(max_steps))
