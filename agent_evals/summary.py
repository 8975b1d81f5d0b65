"""Summaries of run results: pass rates, scores per grader, cost, latency, steps. Pure.

The measures of one result's trajectory live here too (`model_calls`, `tool_call_count`,
`step_count`, `token_count`, `call_sequence`), so the diff, the gate and every report count
a step the same way: a result with no recorded steps made one model call, and its tool
calls (if the model asked for any) are `CaseResult.tool_calls`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agent_evals.record import CaseResult, ToolCallRecord


@dataclass(frozen=True)
class GraderSummary:
    name: str
    graded: int
    passed: int
    errors: int
    mean_score: float | None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.graded if self.graded else None


@dataclass(frozen=True)
class Summary:
    """What a run amounts to. Pass rate counts judged cases only: errors are not failures."""

    cases: int
    passed: int
    failed: int
    errors: int
    skipped: int
    mean_score: float | None
    graders: tuple[GraderSummary, ...]
    cost_usd: float | None
    cost_known: bool
    input_tokens: int
    output_tokens: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    needs_review: int = 0
    """Cases (repeats counted) with a grade still waiting for a person: pass/fail is provisional."""
    trajectories: int = 0
    """Runs that recorded a trajectory (steps or tool calls); 0 for a prompt with no tools."""
    model_calls: int = 0
    """Model calls over the runs that ran (one per run with no recorded steps)."""
    tool_calls: int = 0
    """Tool calls over the runs that ran."""

    @property
    def judged(self) -> int:
        return self.passed + self.failed

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.judged if self.judged else None

    @property
    def error_rate(self) -> float:
        ran = self.judged + self.errors
        return self.errors / ran if ran else 0.0

    @property
    def ran(self) -> int:
        return self.cases - self.skipped

    @property
    def steps_per_case(self) -> float | None:
        """Mean steps (model calls plus tool calls) per run that ran."""
        return (self.model_calls + self.tool_calls) / self.ran if self.ran else None

    @property
    def tool_calls_per_case(self) -> float | None:
        return self.tool_calls / self.ran if self.ran else None


def has_trajectory(result: CaseResult) -> bool:
    """Whether the result recorded what the agent did: steps, or tool calls the model asked for."""
    return bool(result.steps or result.tool_calls)


def model_calls(result: CaseResult) -> int:
    """Model calls the result made: its model steps, or one when it recorded no steps."""
    if result.steps:
        return sum(s.kind == "model" for s in result.steps)
    return 0 if result.status == "skipped" else 1


def call_sequence(result: CaseResult) -> tuple[ToolCallRecord, ...]:
    """Every tool call of the result, in order: `tool_calls`, else read from its tool steps."""
    if result.tool_calls:
        return result.tool_calls
    return tuple(
        ToolCallRecord(
            name=s.name or "?", arguments=s.arguments if s.arguments is not None else {}, id=s.call_id
        )
        for s in result.steps
        if s.kind == "tool"
    )


def tool_call_count(result: CaseResult) -> int:
    return len(call_sequence(result))


def step_count(result: CaseResult) -> int:
    """Steps of the result: model calls plus tool calls."""
    return model_calls(result) + tool_call_count(result)


def token_count(result: CaseResult) -> int | None:
    """Input plus output tokens of the result (its model steps' when it has no total); None when unknown."""
    if result.usage is not None:
        return result.usage.input_tokens + result.usage.output_tokens
    usages = [s.usage for s in result.steps if s.kind == "model" and s.usage is not None]
    return sum(u.input_tokens + u.output_tokens for u in usages) if usages else None


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    # Computed in numpy's order of operations, so the two agree to the last bit.
    position = (len(ordered) - 1) * (q / 100)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    a, b, t = ordered[low], ordered[high], position - low
    # numpy's lerp: from the nearer end, so the result is exact at both ends and monotonic.
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def summarize(results: Sequence[CaseResult]) -> Summary:
    # Plain Python rather than numpy: importing numpy costs more than summing ten thousand floats.
    status = [r.status for r in results]
    by_grader: dict[str, list[tuple[float | None, bool | None, bool]]] = {}
    for r in results:
        for g in r.grades:
            by_grader.setdefault(g.grader, []).append((g.score, g.passed, g.error is not None))
    graders = []
    for name, rows in by_grader.items():
        scores = [s for s, _, err in rows if s is not None and not err]
        graders.append(
            GraderSummary(
                name=name,
                graded=sum(1 for _, p, err in rows if p is not None and not err),
                passed=sum(1 for _, p, err in rows if p and not err),
                errors=sum(1 for _, _, err in rows if err),
                mean_score=_mean(scores) if scores else None,
            )
        )
    scores = [r.score for r in results if r.score is not None and r.status in ("pass", "fail")]
    latencies = [r.latency_ms for r in results if r.latency_ms is not None and r.status != "skipped"]
    costs = [r.cost_usd for r in results if r.status != "skipped"]
    known = [c for c in costs if c is not None]
    p50, p95 = (_percentile(latencies, 50), _percentile(latencies, 95)) if latencies else (None, None)
    return Summary(
        cases=len(results),
        passed=status.count("pass"),
        failed=status.count("fail"),
        errors=status.count("error"),
        skipped=status.count("skipped"),
        mean_score=_mean(scores) if scores else None,
        graders=tuple(graders),
        cost_usd=sum(known) if known else (0.0 if not costs else None),
        cost_known=len(known) == len(costs),
        input_tokens=sum(r.usage.input_tokens for r in results if r.usage),
        output_tokens=sum(r.usage.output_tokens for r in results if r.usage),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        needs_review=sum(any(g.needs_review for g in r.grades) for r in results),
        trajectories=sum(has_trajectory(r) for r in results),
        model_calls=sum(model_calls(r) for r in results),
        tool_calls=sum(tool_call_count(r) for r in results if r.status != "skipped"),
    )
