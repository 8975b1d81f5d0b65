"""Summaries of run results: pass rates, scores per grader, cost, latency, steps. Pure.

The measures of one result's trajectory live here too (`model_calls`, `tool_call_count`,
`step_count`, `token_count`, `call_sequence`), so the diff, the gate and every report count
a step the same way: a result with no recorded steps made one model call, and its tool
calls (if the model asked for any) are `CaseResult.tool_calls`.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
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


def pct(x: float | None) -> str:
    """A rate as a percentage with one decimal: `87.5%`, or `n/a`."""
    return "n/a" if x is None else f"{100 * x:.1f}%"


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


def summarize(results: Iterable[CaseResult]) -> Summary:
    """The summary of some results (`Tally` over them: one way to count, however they arrive)."""
    return tally(results).summary()


def tally(results: Iterable[CaseResult]) -> Tally:
    """A `Tally` of these results."""
    counted = Tally()
    for result in results:
        counted.add(result)
    return counted


class Tally:
    """A `Summary` counted one result at a time, so a run need not keep its results in memory.

    It holds counts and sums, plus what no running sum can give: the latencies (for the
    percentiles; 8 bytes per case) and each error's case id and words (to group errors once,
    `report.terminal.print_errors`). Sums of floats are `math.fsum`'s, exact and so
    independent of the order the results arrive in (a run's workers finish out of order).
    Plain Python rather than numpy: importing numpy costs more than summing ten thousand floats.
    """

    def __init__(self) -> None:
        self.cases = 0
        self.statuses = {"pass": 0, "fail": 0, "error": 0, "skipped": 0}
        self._graders: dict[str, _GraderTally] = {}
        self._scores = array("d")
        self._latencies = array("d")
        self._costs = array("d")
        self._costs_seen = 0
        self._tokens = [0, 0]
        self._needs_review = 0
        self._trajectories = 0
        self._model_calls = 0
        self._tool_calls = 0
        self._spent = array("d")
        self._spent_unknown = False
        self.unsent = 0
        """Results that could not be evaluated and were never sent (a stopped provider's)."""
        self.errors: list[tuple[str, str]] = []
        """(case id, error) of each result that could not be evaluated, in the order they came."""

    def add(self, r: CaseResult) -> None:
        self.cases += 1
        self.statuses[r.status] += 1
        for g in r.grades:
            grader = self._graders.get(g.grader)
            if grader is None:
                grader = self._graders[g.grader] = _GraderTally()
            grader.add(g.score, g.passed, g.error is not None)
        ran = r.status != "skipped"
        if r.score is not None and r.status in ("pass", "fail"):
            self._scores.append(r.score)
        if r.latency_ms is not None and ran:
            self._latencies.append(r.latency_ms)
        if ran:
            self._costs_seen += 1
            if r.cost_usd is not None:
                self._costs.append(r.cost_usd)
            self._tool_calls += tool_call_count(r)
        if r.usage is not None:
            self._tokens[0] += r.usage.input_tokens
            self._tokens[1] += r.usage.output_tokens
        self._needs_review += any(g.needs_review for g in r.grades)
        self._trajectories += has_trajectory(r)
        self._model_calls += model_calls(r)
        if ran or r.steps:
            if r.cost_usd is None:
                self._spent_unknown = True
            else:
                self._spent.append(r.cost_usd)
        if r.status == "error":
            self.errors.append((r.case_id, r.error or "unknown error"))
            self.unsent += r.attempts == 0

    def spent_usd(self) -> float | None:
        """What the results spent (those that ran, and those the cost ceiling stopped after a step);
        None when one of them is unpriced: the run record's `end.cost_usd`."""
        if self._spent_unknown:
            return None
        return math.fsum(self._spent)

    def summary(self) -> Summary:
        latencies = sorted(self._latencies)
        p50, p95 = (_percentile(latencies, 50), _percentile(latencies, 95)) if latencies else (None, None)
        known = len(self._costs)
        return Summary(
            cases=self.cases,
            passed=self.statuses["pass"],
            failed=self.statuses["fail"],
            errors=self.statuses["error"],
            skipped=self.statuses["skipped"],
            mean_score=_mean(self._scores) if self._scores else None,
            graders=tuple(g.summary(name) for name, g in self._graders.items()),
            cost_usd=math.fsum(self._costs) if known else (0.0 if not self._costs_seen else None),
            cost_known=known == self._costs_seen,
            input_tokens=self._tokens[0],
            output_tokens=self._tokens[1],
            latency_p50_ms=p50,
            latency_p95_ms=p95,
            needs_review=self._needs_review,
            trajectories=self._trajectories,
            model_calls=self._model_calls,
            tool_calls=self._tool_calls,
        )


class _GraderTally:
    __slots__ = ("errors", "graded", "passed", "scores")

    def __init__(self) -> None:
        self.graded = self.passed = self.errors = 0
        self.scores = array("d")

    def add(self, score: float | None, passed: bool | None, error: bool) -> None:
        if error:
            self.errors += 1
            return
        if score is not None:
            self.scores.append(score)
        if passed is not None:
            self.graded += 1
            self.passed += bool(passed)

    def summary(self, name: str) -> GraderSummary:
        return GraderSummary(
            name=name,
            graded=self.graded,
            passed=self.passed,
            errors=self.errors,
            mean_score=_mean(self.scores) if self.scores else None,
        )
