"""Summaries of run results: pass rates, scores per grader, cost, latency. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agent_evals.record import CaseResult


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
    )
