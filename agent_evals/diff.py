"""Compare two run records case by case. Pure: records in, a Diff out.

Cases are matched by id. Repeats of a case are averaged before pairing (a
case's pass rate is the share of its judged repeats that passed), so the
statistics see one paired observation per case. Errors are never counted as
regressions or fixes: a case that could not be judged on either side is
`errored` and stays out of every pass rate and test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_evals.errors import ConfigError
from agent_evals.record import CaseResult, RunRecord

Outcome = Literal["regressed", "fixed", "still_passing", "still_failing", "new", "removed", "errored"]
OUTCOMES: tuple[Outcome, ...] = (
    "regressed", "fixed", "errored", "new", "removed", "still_failing", "still_passing"
)  # fmt: skip


@dataclass(frozen=True)
class Side:
    """One case on one side of the diff, its repeats folded together."""

    results: tuple[CaseResult, ...]

    @property
    def judged(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if r.status in ("pass", "fail"))

    @property
    def pass_rate(self) -> float | None:
        judged = self.judged
        return sum(r.status == "pass" for r in judged) / len(judged) if judged else None

    @property
    def score(self) -> float | None:
        scores = [r.score for r in self.judged if r.score is not None]
        return sum(scores) / len(scores) if scores else None

    @property
    def passed(self) -> bool | None:
        rate = self.pass_rate
        return None if rate is None else rate >= 0.5

    @property
    def flaky(self) -> bool:
        rate = self.pass_rate
        return rate is not None and 0 < rate < 1

    @property
    def error(self) -> str | None:
        errors = [r.error for r in self.results if r.status == "error" and r.error]
        return errors[0] if errors else None

    @property
    def first(self) -> CaseResult:
        return self.results[0]

    def grader(self, name: str) -> tuple[float | None, float | None]:
        """(pass rate, mean score) of one grader over the judged repeats."""
        grades = [g for r in self.judged for g in r.grades if g.grader == name and g.error is None]
        if not grades:
            return None, None
        scores = [g.score for g in grades if g.score is not None]
        return (
            sum(bool(g.passed) for g in grades) / len(grades),
            sum(scores) / len(scores) if scores else None,
        )

    def cost(self) -> float:
        return sum(r.cost_usd or 0.0 for r in self.results)


@dataclass(frozen=True)
class CaseDiff:
    case_id: str
    outcome: Outcome
    tags: tuple[str, ...]
    cluster: str | None
    expected: Any
    base: Side | None
    cand: Side | None

    @property
    def flaky(self) -> bool:
        return bool((self.base and self.base.flaky) or (self.cand and self.cand.flaky))


@dataclass(frozen=True)
class Group:
    """Paired figures for a set of cases (all, one grader, or one tag)."""

    kind: Literal["overall", "grader", "tag"]
    name: str
    case_ids: tuple[str, ...]
    base_pass: tuple[float, ...]
    cand_pass: tuple[float, ...]
    base_score: tuple[float, ...]
    cand_score: tuple[float, ...]
    clusters: tuple[str, ...]
    regressions: int
    fixes: int

    @property
    def n(self) -> int:
        return len(self.case_ids)

    @staticmethod
    def _mean(xs: Sequence[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    @property
    def base_pass_rate(self) -> float | None:
        return self._mean(self.base_pass)

    @property
    def cand_pass_rate(self) -> float | None:
        return self._mean(self.cand_pass)

    @property
    def pass_delta(self) -> float | None:
        b, c = self.base_pass_rate, self.cand_pass_rate
        return None if b is None or c is None else c - b

    @property
    def base_mean_score(self) -> float | None:
        return self._mean(self.base_score)

    @property
    def cand_mean_score(self) -> float | None:
        return self._mean(self.cand_score)

    @property
    def score_delta(self) -> float | None:
        b, c = self.base_mean_score, self.cand_mean_score
        return None if b is None or c is None else c - b


@dataclass(frozen=True)
class Totals:
    cost_usd: float
    input_tokens: int
    output_tokens: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cases: int
    errors: int
    skipped: int

    @property
    def error_rate(self) -> float:
        ran = self.cases - self.skipped
        return self.errors / ran if ran else 0.0


@dataclass(frozen=True)
class Diff:
    """Everything the gate and the reports need about base vs candidate."""

    base: RunRecord
    cand: RunRecord
    cases: tuple[CaseDiff, ...]
    overall: Group
    graders: tuple[Group, ...]
    tags: tuple[Group, ...]
    base_totals: Totals
    cand_totals: Totals
    repeats: int = 1
    by_outcome: dict[str, tuple[CaseDiff, ...]] = field(default_factory=dict)

    def outcome(self, outcome: Outcome) -> tuple[CaseDiff, ...]:
        return self.by_outcome.get(outcome, ())

    @property
    def flaky(self) -> tuple[CaseDiff, ...]:
        return tuple(c for c in self.cases if c.flaky)


def _sides(record: RunRecord) -> dict[str, Side]:
    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for result in record.cases:
        grouped[result.case_id].append(result)
    return {case_id: Side(tuple(results)) for case_id, results in grouped.items()}


def _classify(base: Side | None, cand: Side | None) -> Outcome:
    if base is None:
        return "new"
    if cand is None:
        return "removed"
    if base.passed is None or cand.passed is None:
        return "errored"
    table: dict[tuple[bool, bool], Outcome] = {
        (True, False): "regressed",
        (False, True): "fixed",
        (True, True): "still_passing",
        (False, False): "still_failing",
    }
    return table[(base.passed, cand.passed)]


def _group(
    kind: Literal["overall", "grader", "tag"],
    name: str,
    cases: Iterable[CaseDiff],
    measure: Callable[[Side], tuple[float | None, float | None]],
) -> Group:
    ids: list[str] = []
    bp: list[float] = []
    cp: list[float] = []
    bs: list[float] = []
    cs: list[float] = []
    clusters: list[str] = []
    regressions = fixes = 0
    for case in cases:
        if case.base is None or case.cand is None:
            continue
        (b_pass, b_score), (c_pass, c_score) = measure(case.base), measure(case.cand)
        if b_pass is None or c_pass is None:
            continue
        ids.append(case.case_id)
        bp.append(b_pass)
        cp.append(c_pass)
        # A score missing on one side (a grader with no score) pairs as nothing: keep lists aligned by using pass.
        bs.append(b_score if b_score is not None else b_pass)
        cs.append(c_score if c_score is not None else c_pass)
        clusters.append(case.cluster or case.case_id)
        regressions += b_pass >= 0.5 > c_pass
        fixes += c_pass >= 0.5 > b_pass
    return Group(
        kind=kind,
        name=name,
        case_ids=tuple(ids),
        base_pass=tuple(bp),
        cand_pass=tuple(cp),
        base_score=tuple(bs),
        cand_score=tuple(cs),
        clusters=tuple(clusters),
        regressions=regressions,
        fixes=fixes,
    )


def totals(record: RunRecord) -> Totals:
    import numpy as np

    results = record.cases
    latencies = [r.latency_ms for r in results if r.latency_ms is not None and r.status != "skipped"]
    p50, p95 = (float(x) for x in np.percentile(latencies, [50, 95])) if latencies else (None, None)
    return Totals(
        cost_usd=sum(r.cost_usd or 0.0 for r in results),
        input_tokens=sum(r.usage.input_tokens for r in results if r.usage),
        output_tokens=sum(r.usage.output_tokens for r in results if r.usage),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        cases=len(results),
        errors=sum(r.status == "error" for r in results),
        skipped=sum(r.status == "skipped" for r in results),
    )


def check_comparable(base: RunRecord, cand: RunRecord) -> None:
    """Two records compare case by case only if they ran the same eval set (same id and content).

    Raises:
        ConfigError: they ran different eval sets, or different versions of one.
    """
    b, c = base.header.evalset, cand.header.evalset
    if b.get("id") != c.get("id"):
        raise ConfigError(
            f"the records are of different eval sets: '{b.get('id')}' ({base.path}) and '{c.get('id')}' ({cand.path})",
            hint="compare two runs of the same eval set",
        )
    if b.get("hash") != c.get("hash"):
        raise ConfigError(
            f"the records ran different versions of eval set '{b.get('id')}': "
            f"{_short(b.get('hash'))} ({base.path}) and {_short(c.get('hash'))} ({cand.path})",
            hint="run the baseline prompt on the candidate's eval set (agent-evals ci --base REF does), then diff",
        )


def _short(content_hash: object) -> str:
    text = str(content_hash)
    return text[: len("sha256:") + 12] if text.startswith("sha256:") else text


def diff(base: RunRecord, cand: RunRecord) -> Diff:
    """Match cases by id and compute paired figures overall, per grader and per tag.

    Args:
        base: the baseline run (the prompt as it is on the base branch).
        cand: the candidate run (the prompt as it is in the change).

    Returns:
        The diff; cases in the candidate's order, removed cases last.
    """
    base_sides, cand_sides = _sides(base), _sides(cand)
    order = list(cand_sides) + [cid for cid in base_sides if cid not in cand_sides]
    cases = []
    for case_id in order:
        b, c = base_sides.get(case_id), cand_sides.get(case_id)
        first = (c or b).first  # type: ignore[union-attr]
        cases.append(
            CaseDiff(
                case_id=case_id,
                outcome=_classify(b, c),
                tags=first.tags,
                cluster=first.cluster,
                expected=first.expected,
                base=b,
                cand=c,
            )
        )
    graders = sorted({g.grader for r in (*base.cases, *cand.cases) for g in r.grades})
    tags = sorted({t for case in cases for t in case.tags})
    by_outcome: dict[str, list[CaseDiff]] = defaultdict(list)
    for case in cases:
        by_outcome[case.outcome].append(case)
    repeats = max((r.repeat + 1 for r in (*base.cases, *cand.cases)), default=1)
    return Diff(
        base=base,
        cand=cand,
        cases=tuple(cases),
        overall=_group("overall", "overall", cases, lambda s: (s.pass_rate, s.score)),
        graders=tuple(_group("grader", g, cases, lambda s, g=g: s.grader(g)) for g in graders),  # type: ignore[misc]
        tags=tuple(
            _group("tag", t, (c for c in cases if t in c.tags), lambda s: (s.pass_rate, s.score))
            for t in tags
        ),
        base_totals=totals(base),
        cand_totals=totals(cand),
        repeats=repeats,
        by_outcome={k: tuple(v) for k, v in by_outcome.items()},
    )
