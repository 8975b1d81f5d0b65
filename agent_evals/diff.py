"""Compare two run records case by case. Pure: records in, a Diff out.

Cases are matched by id. Repeats of a case are averaged before pairing (a
case's pass rate is the share of its judged repeats that passed), so the
statistics see one paired observation per case. Errors are never counted as
regressions or fixes: a case that could not be judged on either side is
`errored` and stays out of every pass rate and test.

Runs come in two kinds. The design runs (`--repeat K`: repeat indexes 0..K-1,
K read from the record's header) are what every pass rate and test sees.
Confirmation runs (repeat K and up, added by `ci` for a case that went pass ->
fail while outputs vary) only add evidence about that case: they are chosen
because the case looked worse, so pooling them into the pass rates would bias them.

Whether outputs vary decides how much a repeat is worth. When every case's
repeats are identical on both sides (temperature 0), repeats are copies and
count once; with one run per case the record's sampling parameters decide
(temperature 0 and no LLM judge: deterministic).

A case whose candidate output was cut off (the provider stopped at `max_tokens`)
and that went pass -> fail keeps the outcome `regressed`, so every rule and test
counts it (a cut-off answer fails in production too), but its `label` is
`truncated`: the reports show the cause instead of calling it a regression.

Agents leave a trajectory (model calls and tool calls). Per case, `trajectory_change`
says how it moved between the two runs: tools no longer called or newly called (with
the call they came before), calls reordered, called more or fewer times, arguments
that changed, and how many model and tool calls each side made. Per pair, `Diff.deltas`
holds paired per-case figures over the cases both sides judged (steps, model calls,
tool calls, tokens, cost): the mean on each side, the mean change, and its 95%
interval (a t interval on the per-case changes, its standard error clustered when
cases share a cluster), which the `max_step_increase` and `max_cost_increase` rules read.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from agent_evals.errors import ConfigError
from agent_evals.record import CaseResult, RunRecord, ToolCallRecord
from agent_evals.summary import (
    call_sequence,
    has_trajectory,
    model_calls,
    step_count,
    token_count,
    tool_call_count,
)

Outcome = Literal["regressed", "fixed", "still_passing", "still_failing", "new", "removed", "errored"]
OUTCOMES: tuple[Outcome, ...] = (
    "regressed", "fixed", "errored", "new", "removed", "still_failing", "still_passing"
)  # fmt: skip
Label = Literal[
    "regressed", "truncated", "fixed", "still_passing", "still_failing", "new", "removed", "errored"
]
"""A case's outcome as the reports name it: `truncated` is a regression whose candidate output was cut off."""


@dataclass(frozen=True)
class Side:
    """One case on one side of the diff, its repeats folded together.

    `results` are the design runs; `extra` the confirmation runs (evidence only).
    """

    results: tuple[CaseResult, ...]
    extra: tuple[CaseResult, ...] = ()

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
        return (*self.results, *self.extra)[0]

    def counts(self) -> tuple[int, int, float | None]:
        """(passing runs, judged runs, mean score) over the design runs."""
        judged = self.judged
        return sum(r.status == "pass" for r in judged), len(judged), self.score

    def grader_counts(self, name: str) -> tuple[int, int, float | None]:
        """(passing runs, graded runs, mean score) of one grader over the judged design runs."""
        grades = [g for r in self.judged for g in r.grades if g.grader == name and g.error is None]
        scores = [g.score for g in grades if g.score is not None]
        return (
            sum(bool(g.passed) for g in grades),
            len(grades),
            sum(scores) / len(scores) if scores else None,
        )

    def evidence(self) -> tuple[int, int]:
        """(passing runs, judged runs) over design and confirmation runs: what is known of this case."""
        judged = [r for r in (*self.results, *self.extra) if r.status in ("pass", "fail")]
        return sum(r.status == "pass" for r in judged), len(judged)

    @property
    def varies(self) -> bool:
        """Its judged design runs differ from one another (in output or in outcome)."""
        judged = self.judged
        return len({(r.output, r.status) for r in judged}) > 1

    def cost(self) -> float:
        return sum(r.cost_usd or 0.0 for r in self.results)

    @property
    def truncated(self) -> bool:
        """A design run's output was cut off (the provider stopped at its output limit)."""
        return any(r.truncated for r in self.results)


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

    @property
    def truncated(self) -> bool:
        """The candidate's output was cut off in a design run."""
        return self.cand is not None and self.cand.truncated

    @property
    def label(self) -> Label:
        """The outcome the reports show: a pass -> fail whose candidate failed on a cut-off output is `truncated`.

        Only the name changes: `outcome` stays `regressed`, so the gate counts the failure.
        """
        cut = self.cand is not None and any(r.truncated and r.status == "fail" for r in self.cand.results)
        return "truncated" if self.outcome == "regressed" and cut else self.outcome


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
    base_passes: tuple[int, ...] = ()
    base_runs: tuple[int, ...] = ()
    cand_passes: tuple[int, ...] = ()
    cand_runs: tuple[int, ...] = ()
    """Per-case passing and judged runs, identical repeats counted once: what the tests see."""

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


Measure = Literal["steps", "model_calls", "tool_calls", "tokens", "cost_usd"]
CONFIDENCE = 0.95
"""Coverage of the per-case delta intervals (the gate shows every interval at 95%)."""


@dataclass(frozen=True)
class PairedDelta:
    """One per-case measure over the cases both sides judged, paired by case.

    A case's value on a side is the mean over its judged design runs (identical repeats
    give the same mean as one). Cases with the measure unknown on a side (an unpriced
    model's cost) are left out, so `n` may differ between measures.

    Attributes:
        measure: what is counted per case.
        case_ids: the paired cases.
        base: per-case baseline values, in `case_ids` order.
        cand: per-case candidate values.
        clusters: per-case cluster keys when some cases share one, else empty.
    """

    measure: Measure
    case_ids: tuple[str, ...]
    base: tuple[float, ...]
    cand: tuple[float, ...]
    clusters: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.case_ids)

    @property
    def base_mean(self) -> float:
        """Mean per case on the baseline (NaN with no case: `case_deltas` never builds one)."""
        return math.fsum(self.base) / self.n if self.n else math.nan

    @property
    def cand_mean(self) -> float:
        return math.fsum(self.cand) / self.n if self.n else math.nan

    @property
    def delta(self) -> float:
        """Mean change per case, candidate minus baseline."""
        changes = [c - b for b, c in zip(self.base, self.cand, strict=True)]
        return math.fsum(changes) / self.n if self.n else math.nan

    @property
    def relative(self) -> float | None:
        """Relative change of the mean (0.25: 25% more); None when the baseline's mean is 0."""
        b = self.base_mean
        return None if not self.n or b == 0 else self.cand_mean / b - 1

    @cached_property
    def interval(self) -> tuple[float, float] | None:
        """95% interval of `delta`; None with fewer than two cases (or clusters)."""
        return _t_interval([c - b for b, c in zip(self.base, self.cand, strict=True)], self.clusters, 0.0)

    @cached_property
    def relative_interval(self) -> tuple[float, float] | None:
        """95% interval of `relative`, by the delta method for a ratio of paired means.

        With R = mean(cand) / mean(base), the standard error of R is that of the mean of
        cand_i - R * base_i over mean(base) (clustered alike); the interval is R - 1 +- t * SE.
        """
        b, rel = self.base_mean, self.relative
        if rel is None:
            return None
        ratio = rel + 1
        residuals = [(c - ratio * x) / b for x, c in zip(self.base, self.cand, strict=True)]
        return _t_interval(residuals, self.clusters, rel)

    def increases(self) -> tuple[tuple[str, float], ...]:
        """(case id, change) for every case that went up, largest first (ties in case order)."""
        ups = [(cid, c - b) for cid, b, c in zip(self.case_ids, self.base, self.cand, strict=True) if c > b]
        return tuple(sorted(ups, key=lambda item: -item[1]))


def _t_interval(
    values: Sequence[float], clusters: Sequence[str], centre: float
) -> tuple[float, float] | None:
    """`centre` +- t * SE(mean of values): SE clustered when `clusters` is given, t on G - 1 degrees of freedom.

    `values` are the per-case deltas (or, for a ratio, its linearised residuals, which average to 0);
    `centre` is added to their mean.
    """
    from scipy import stats as sps

    from agent_evals import stats

    n = len(values)
    if n < 2:
        return None
    units = len(set(clusters)) if clusters else n
    se = stats.clustered_standard_error(values, list(clusters) if clusters else None)
    if units < 2 or not math.isfinite(se):
        return None
    mean = math.fsum(values) / n + centre
    if se == 0:
        return mean, mean
    half = float(sps.t.ppf(0.5 + CONFIDENCE / 2, units - 1)) * se
    return mean - half, mean + half


@dataclass(frozen=True)
class CaseDeltas:
    """Paired per-case figures of a diff; a measure is None when no case has it on both sides."""

    steps: PairedDelta | None
    model_calls: PairedDelta | None
    tool_calls: PairedDelta | None
    tokens: PairedDelta | None
    cost: PairedDelta | None

    def all(self) -> tuple[PairedDelta, ...]:
        """The measures there are, in reading order."""
        found = (self.steps, self.model_calls, self.tool_calls, self.tokens, self.cost)
        return tuple(d for d in found if d is not None)


_MEASURES: dict[Measure, Callable[[CaseResult], float | None]] = {
    "steps": step_count,
    "model_calls": model_calls,
    "tool_calls": tool_call_count,
    "tokens": token_count,
    "cost_usd": lambda r: r.cost_usd,
}


def _side_mean(side: Side, measure: Callable[[CaseResult], float | None]) -> float | None:
    values = [v for r in side.judged if (v := measure(r)) is not None]
    return math.fsum(values) / len(values) if values else None


def case_deltas(cases: Sequence[CaseDiff]) -> CaseDeltas:
    """Per-case steps, model calls, tool calls, tokens and cost, paired over the cases both sides judged."""
    found: dict[Measure, PairedDelta | None] = {}
    for name, measure in _MEASURES.items():
        ids: list[str] = []
        base: list[float] = []
        cand: list[float] = []
        clusters: list[str] = []
        for case in cases:
            if case.base is None or case.cand is None:
                continue
            b, c = _side_mean(case.base, measure), _side_mean(case.cand, measure)
            if b is None or c is None:
                continue
            ids.append(case.case_id)
            base.append(b)
            cand.append(c)
            clusters.append(case.cluster or case.case_id)
        shared = len(set(clusters)) < len(clusters)
        found[name] = (
            PairedDelta(name, tuple(ids), tuple(base), tuple(cand), tuple(clusters) if shared else ())
            if ids
            else None
        )
    return CaseDeltas(
        steps=found["steps"],
        model_calls=found["model_calls"],
        tool_calls=found["tool_calls"],
        tokens=found["tokens"],
        cost=found["cost_usd"],
    )


# --- how a case's trajectory changed -----------------------------------------------------------


@dataclass(frozen=True)
class CallPlace:
    """A tool one side calls and the other never does, and where it sat among the calls both make.

    `before`: the first call both sides make that came after it; else `after`, the last that came
    before it; both None when the two sides share no call.
    """

    tool: str
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class CallMove:
    """The candidate calls `tool` before `other`; the baseline called it after (first calls compared)."""

    tool: str
    other: str


@dataclass(frozen=True)
class CallCount:
    """A tool both sides call, a different number of times."""

    tool: str
    base: int
    cand: int


@dataclass(frozen=True)
class ArgumentChange:
    """The `call`-th call (from 1) to `tool` on each side, with different arguments.

    `calls` is how often the busier side calls the tool (1: the reports need not say which call).
    """

    tool: str
    call: int
    calls: int
    base: dict[str, Any] | str
    cand: dict[str, Any] | str


@dataclass(frozen=True)
class TrajectoryChange:
    """How a case's trajectory moved from the baseline's run to the candidate's.

    Each list is in the order of the calls; `model_calls` and `tool_calls` are
    (baseline, candidate) counts.
    """

    removed: tuple[CallPlace, ...] = ()
    reordered: tuple[CallMove, ...] = ()
    added: tuple[CallPlace, ...] = ()
    recounted: tuple[CallCount, ...] = ()
    arguments: tuple[ArgumentChange, ...] = ()
    model_calls: tuple[int, int] = (0, 0)
    tool_calls: tuple[int, int] = (0, 0)

    @property
    def changed(self) -> bool:
        return bool(
            self.removed
            or self.reordered
            or self.added
            or self.recounted
            or self.arguments
            or self.model_calls[0] != self.model_calls[1]
            or self.tool_calls[0] != self.tool_calls[1]
        )


def _canonical(arguments: dict[str, Any] | str) -> str:
    # JSON's 7 is not 7.0 and true is not 1, though Python calls them equal.
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)


def _place(tool: str, calls: Sequence[str], shared: set[str]) -> CallPlace:
    at = calls.index(tool)
    later = next((name for name in calls[at + 1 :] if name in shared), None)
    if later is not None:
        return CallPlace(tool, before=later)
    earlier = next((name for name in reversed(calls[:at]) if name in shared), None)
    return CallPlace(tool, after=earlier)


def _first_move(base: Sequence[str], cand: Sequence[str], shared: set[str]) -> CallMove | None:
    """The first pair of shared tools whose first calls come in the other order in the candidate."""
    order = [name for name in dict.fromkeys(cand) if name in shared]
    was = {name: base.index(name) for name in order}
    for i, name in enumerate(order):
        for other in order[i + 1 :]:
            if was[name] > was[other]:
                return CallMove(name, other)
    return None


def trajectory_change(base: CaseResult | None, cand: CaseResult | None) -> TrajectoryChange | None:
    """How the trajectory changed from the baseline's run of a case to the candidate's.

    Args:
        base: the baseline's run (the repeat the reports show).
        cand: the candidate's run of the same case.

    Returns:
        The change, or None when a side is missing or neither recorded a trajectory
        (no steps, no tool calls): a prompt without tools has nothing to say here.
    """
    if base is None or cand is None or not (has_trajectory(base) or has_trajectory(cand)):
        return None
    b_calls, c_calls = call_sequence(base), call_sequence(cand)
    b_names, c_names = [c.name for c in b_calls], [c.name for c in c_calls]
    shared = set(b_names) & set(c_names)
    removed = tuple(_place(name, b_names, shared) for name in dict.fromkeys(b_names) if name not in shared)
    added = tuple(_place(name, c_names, shared) for name in dict.fromkeys(c_names) if name not in shared)
    move = _first_move(b_names, c_names, shared)
    recounted = tuple(
        CallCount(name, b_names.count(name), c_names.count(name))
        for name in dict.fromkeys(c_names)
        if name in shared and b_names.count(name) != c_names.count(name)
    )
    arguments = []
    for name in dict.fromkeys(c_names):
        if name not in shared:
            continue
        olds: list[ToolCallRecord] = [c for c in b_calls if c.name == name]
        news: list[ToolCallRecord] = [c for c in c_calls if c.name == name]
        calls = max(len(olds), len(news))
        for k, (old, new) in enumerate(zip(olds, news, strict=False)):
            if _canonical(old.arguments) != _canonical(new.arguments):
                arguments.append(ArgumentChange(name, k + 1, calls, old.arguments, new.arguments))
    return TrajectoryChange(
        removed=removed,
        reordered=(move,) if move is not None else (),
        added=added,
        recounted=recounted,
        arguments=tuple(arguments),
        model_calls=(model_calls(base), model_calls(cand)),
        tool_calls=(len(b_calls), len(c_calls)),
    )


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
    varies: bool = True
    """Outputs vary between runs; False when repeats are copies or sampling is off."""
    deltas: CaseDeltas = field(default_factory=lambda: CaseDeltas(None, None, None, None, None))
    """Paired per-case steps, tool calls, tokens and cost over the cases both sides judged."""
    trajectories: bool = False
    """Either run recorded a trajectory (steps or tool calls): the reports show the per-case figures."""

    @property
    def effective_repeats(self) -> int:
        """Repeats that carry information: identical repeats count once."""
        return self.repeats if self.varies else 1

    def outcome(self, outcome: Outcome) -> tuple[CaseDiff, ...]:
        return self.by_outcome.get(outcome, ())

    def labelled(self, label: Label) -> tuple[CaseDiff, ...]:
        """The cases the reports show under `label`: `regressed` without the truncated ones."""
        return tuple(c for c in self.cases if c.label == label)

    @property
    def flaky(self) -> tuple[CaseDiff, ...]:
        return tuple(c for c in self.cases if c.flaky)


def design_repeats(record: RunRecord) -> int:
    """K of `--repeat K`: from the header, else the repeats the record holds."""
    declared = record.header.options.get("repeat")
    if isinstance(declared, int) and not isinstance(declared, bool) and declared >= 1:
        return declared
    return max((r.repeat + 1 for r in record.cases), default=1)


def _sides(record: RunRecord) -> dict[str, Side]:
    repeats = design_repeats(record)
    design: dict[str, list[CaseResult]] = defaultdict(list)
    extra: dict[str, list[CaseResult]] = defaultdict(list)
    for result in record.cases:
        (design if result.repeat < repeats else extra)[result.case_id].append(result)
    for case_id in extra:
        design.setdefault(case_id, [])
    return {
        case_id: Side(tuple(results), tuple(extra.get(case_id, ())))
        for case_id, results in design.items()
        if results or extra.get(case_id)
    }


def sampling_varies(record: RunRecord) -> bool:
    """Whether one run of a case may differ from the next, judging by how the record was made.

    Deterministic only when sampling is off (temperature 0) or the model is the offline
    `local` one, and no grade came from an LLM judge (a judge samples too).
    """
    provider = record.header.provider
    params = provider.get("params") or {}
    sampled = provider.get("type") != "local" and params.get("temperature") != 0
    judged = any("judge_score" in g.details for r in record.cases for g in r.grades)
    return sampled or judged


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


def _once(passes: int, runs: int, copies: bool) -> tuple[int, int]:
    """Identical repeats are one run: its outcome is the case's (the rate rounds to it)."""
    if not copies or runs <= 1:
        return passes, runs
    return int(passes / runs >= 0.5), 1


def _group(
    kind: Literal["overall", "grader", "tag"],
    name: str,
    cases: Iterable[CaseDiff],
    measure: Callable[[Side], tuple[int, int, float | None]],
    copies: bool,
) -> Group:
    ids: list[str] = []
    bp: list[float] = []
    cp: list[float] = []
    bs: list[float] = []
    cs: list[float] = []
    counts: list[tuple[int, int, int, int]] = []
    clusters: list[str] = []
    regressions = fixes = 0
    for case in cases:
        if case.base is None or case.cand is None:
            continue
        (b_hits, b_runs, b_score), (c_hits, c_runs, c_score) = measure(case.base), measure(case.cand)
        if not b_runs or not c_runs:
            continue
        b_pass, c_pass = b_hits / b_runs, c_hits / c_runs
        ids.append(case.case_id)
        bp.append(b_pass)
        cp.append(c_pass)
        counts.append((*_once(b_hits, b_runs, copies), *_once(c_hits, c_runs, copies)))
        # A score missing on one side (a grader with no score) pairs as nothing: keep lists aligned by using pass.
        bs.append(b_score if b_score is not None else b_pass)
        cs.append(c_score if c_score is not None else c_pass)
        clusters.append(case.cluster or case.case_id)
        regressions += b_pass >= 0.5 > c_pass
        fixes += c_pass >= 0.5 > b_pass
    columns = list(zip(*counts, strict=True)) if counts else [(), (), (), ()]
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
        base_passes=tuple(columns[0]),
        base_runs=tuple(columns[1]),
        cand_passes=tuple(columns[2]),
        cand_runs=tuple(columns[3]),
    )


def outputs_vary(sides: Iterable[Side], records: Sequence[RunRecord]) -> bool:
    """Whether one run of a case may differ from the next: from the repeats when there are any
    (identical repeats are copies), else from how the records were made (`sampling_varies`)."""
    sides = list(sides)
    if any(len(s.judged) > 1 for s in sides):
        return any(s.varies for s in sides)
    return any(sampling_varies(r) for r in records)


def pass_counts(record: RunRecord) -> tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
    """Per case of one record: passing design runs, judged design runs, cluster (identical repeats once)."""
    sides = _sides(record)
    copies = not outputs_vary(sides.values(), (record,))
    passes, runs, clusters = [], [], []
    for case_id, side in sides.items():
        hits, n, _ = side.counts()
        if n:
            hits, n = _once(hits, n, copies)
            passes.append(hits)
            runs.append(n)
            clusters.append(side.first.cluster or case_id)
    return tuple(passes), tuple(runs), tuple(clusters)


def max_tokens(result: CaseResult) -> int | None:
    """The output limit the case's recorded request set (`max_tokens`), or None when it set none."""
    params = (result.request or {}).get("params")
    limit = params.get("max_tokens") if isinstance(params, dict) else None
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else None


def truncations(record: RunRecord) -> tuple[tuple[int | None, int], ...]:
    """(max_tokens, outputs cut off at it) over every run of the record, by limit (no limit last)."""
    counts: dict[int | None, int] = defaultdict(int)
    for result in record.cases:
        if result.truncated:
            counts[max_tokens(result)] += 1
    return tuple(sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or 0)))


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
    repeats = max(design_repeats(base), design_repeats(cand))
    varies = outputs_vary(
        [s for case in cases for s in (case.base, case.cand) if s is not None], (base, cand)
    )
    copies = not varies

    def overall(side: Side) -> tuple[int, int, float | None]:
        return side.counts()

    return Diff(
        base=base,
        cand=cand,
        cases=tuple(cases),
        overall=_group("overall", "overall", cases, overall, copies),
        graders=tuple(
            _group("grader", g, cases, lambda s, g=g: s.grader_counts(g), copies)  # type: ignore[misc]
            for g in graders
        ),
        tags=tuple(_group("tag", t, (c for c in cases if t in c.tags), overall, copies) for t in tags),
        base_totals=totals(base),
        cand_totals=totals(cand),
        repeats=repeats,
        by_outcome={k: tuple(v) for k, v in by_outcome.items()},
        varies=varies,
        deltas=case_deltas(cases),
        trajectories=any(has_trajectory(r) for r in (*base.cases, *cand.cases)),
    )
