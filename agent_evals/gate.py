"""The gate: a verdict on a candidate from paired statistics and the policy.

Pure: a Diff (or, for a prompt with no baseline, the candidate record alone),
the policy in force and the integrity findings in; a Verdict out. The verdict
separates a significant regression from a change within noise, names every
rule it applied with its number and its cases, and says how small a drop this
eval set can see at its size.

Status precedence: `error` (cannot judge: too many errors, an incomplete run)
over `fail` over `pass`. A gate that cannot judge never passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agent_evals.calibrate import Calibration
from agent_evals.checks import Check
from agent_evals.diff import Diff, Group
from agent_evals.errors import EXIT_CANNOT_EVALUATE, EXIT_CONFIG, EXIT_GATE_FAILED, EXIT_OK
from agent_evals.models import GatePolicy
from agent_evals.record import RunRecord
from agent_evals.rules import (
    Context,
    Finding,
    GroupTest,
    RuleResult,
    cases_to_confirm,
    check_all,
    evidence,
    pts,
    shared_clusters,
)
from agent_evals.summary import pct

__all__ = [
    "GateReport",
    "GroupTest",
    "PairReport",
    "PowerNote",
    "RuleResult",
    "Status",
    "Verdict",
    "cases_to_confirm",
    "gate",
    "gate_absolute",
    "gate_unchanged",
    "integrity_rule",
    "missing_cases",
    "pct",
    "pts",
]

Status = Literal["pass", "fail", "error"]
ChangeKind = Literal["modified", "new", "unchanged", "deleted"]


@dataclass(frozen=True)
class PowerNote:
    """How small a drop the gate's overall test catches, simulated from these records (`power`).

    Attributes:
        n: paired cases.
        repeats: runs per case and side (`--repeat`).
        varies: outputs vary between runs; when not, repeats are copies and count once.
        clusters: distinct clusters when cases share them (else None).
        detectable_drop: the drop caught with probability `power` at `alpha`; None when
            not even every passing case failing would be caught that often.
    """

    n: int
    repeats: int
    alpha: float
    power: float
    detectable_drop: float | None
    target_drop: float
    repeats_needed: int | None
    cases_needed: int | None
    varies: bool = True
    clusters: int | None = None

    @property
    def sufficient(self) -> bool:
        return self.detectable_drop is not None and self.detectable_drop <= self.target_drop

    def _design(self) -> str:
        parts = [f"n={self.n}"]
        if self.clusters is not None:
            parts.append(f"{self.clusters} clusters")
        if self.repeats > 1:
            parts.append(
                f"{self.repeats} repeats" + ("" if self.varies else " that are identical, so count once")
            )
        parts.append(f"alpha={self.alpha:g}")
        parts.append(f"power {self.power:.0%}")
        return ", ".join(parts)

    def sentence(self) -> str:
        if self.detectable_drop is None:
            head = f"this eval set cannot detect even a total collapse of its pass rate ({self._design()})"
        else:
            head = f"this eval set can detect a drop of {100 * self.detectable_drop:.1f} points ({self._design()})"
        if self.sufficient:
            return head
        options = []
        if self.cases_needed is not None:
            options.append(f"about {self.cases_needed:,} cases")
        if self.repeats_needed is not None:
            options.append(f"--repeat {self.repeats_needed}")
        how = " or ".join(options) or "many more cases"
        return f"{head}; to detect {100 * self.target_drop:.0f} points use {how}"


@dataclass(frozen=True)
class Verdict:
    status: Status
    headline: str
    rules: tuple[RuleResult, ...]
    tests: tuple[GroupTest, ...] = ()
    power: PowerNote | None = None
    findings: tuple[Finding, ...] = ()
    policy: GatePolicy = field(default_factory=GatePolicy)
    score_delta_ci: tuple[float, float] | None = None
    cand_pass_ci: tuple[float, float] | None = None

    @property
    def exit_code(self) -> int:
        return {"pass": EXIT_OK, "fail": EXIT_GATE_FAILED, "error": EXIT_CANNOT_EVALUATE}[self.status]

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.rules if not r.passed)


def _status(rules: Sequence[RuleResult]) -> Status:
    if any(not r.passed and r.severity == "error" for r in rules):
        return "error"
    return "fail" if any(not r.passed for r in rules) else "pass"


def _test(group: Group) -> tuple[str, float]:
    """The paired one-sided test that the candidate is worse on this group: (method, p-value).

    Cases sharing clusters: the cluster sign-flip test on per-case rates (clusters are the
    units). Otherwise the exact conditional test on runs, stratified by case: exact
    McNemar with one run per side, and with repeats it uses every run.
    """
    from agent_evals import stats

    clusters = shared_clusters(group)
    if clusters is not None:
        test = stats.paired_test(group.base_pass, group.cand_pass, clusters=clusters, alternative="less")
        return "cluster-permutation", test.pvalue
    p = stats.stratified_exact_pvalue(group.base_passes, group.base_runs, group.cand_passes, group.cand_runs)
    single = all(r == 1 for r in (*group.base_runs, *group.cand_runs))
    return ("mcnemar-exact" if single else "stratified-exact"), p


def _outcomes(group: Group) -> tuple[object, ...]:
    return (
        group.case_ids,
        group.base_passes,
        group.base_runs,
        group.cand_passes,
        group.cand_runs,
        group.clusters,
    )


def _tests(diff: Diff, policy: GatePolicy) -> list[GroupTest]:
    """The overall test at full alpha, then every distinct grader and tag group behind it.

    A group with exactly the outcomes of the overall test (one required grader) or of
    an earlier group is not tested again: repeating a test only spends alpha. The
    distinct ones are a Holm family gated by the overall test (`stats.gatekeeping`),
    so the family-wise false-alarm rate is alpha and the overall test keeps all of it.
    """
    from agent_evals import stats

    if diff.overall.n == 0:
        return []
    labelled: list[tuple[str, Group]] = [(f"grader {g.name}", g) for g in diff.graders]
    labelled += [(f"tag {g.name}", g) for g in diff.tags]
    method, overall_p = _test(diff.overall)
    seen: dict[tuple[object, ...], str] = {_outcomes(diff.overall): "overall"}
    distinct: list[tuple[str, Group, str, float]] = []
    shared: list[tuple[str, Group, str]] = []
    for label, group in labelled:
        if group.n == 0:
            continue
        key = _outcomes(group)
        if key in seen:
            shared.append((label, group, seen[key]))
            continue
        seen[key] = label
        distinct.append((label, group, *_test(group)))
    adjusted = stats.gatekeeping(overall_p, [p for *_, p in distinct])

    def make(
        label: str, group: Group, method: str, p: float, adj: float, family: int, same: str | None
    ) -> GroupTest:
        delta = group.pass_delta
        return GroupTest(
            group=label, n=group.n, base_rate=group.base_pass_rate, cand_rate=group.cand_pass_rate,
            delta=delta, method=method, pvalue=p, adjusted=adj,
            significant=adj <= policy.alpha and (delta or 0) < 0, family=family, same_as=same,
        )  # fmt: skip

    tests = [make("overall", diff.overall, method, overall_p, overall_p, 0, None)]
    tests += [
        make(label, group, m, p, adj, len(distinct), None)
        for (label, group, m, p), adj in zip(distinct, adjusted, strict=True)
    ]
    by_label = {t.group: t for t in tests}
    for label, group, same in shared:
        twin = by_label[same]
        tests.append(make(label, group, twin.method, twin.pvalue, twin.adjusted, twin.family, same))
    order = {label: i for i, label in enumerate(["overall", *(label for label, _ in labelled)])}
    return sorted(tests, key=lambda t: order[t.group])


def _power(diff: Diff, policy: GatePolicy, power: float = 0.8) -> PowerNote | None:
    """The detectable drop of the overall test, simulated from the records (`power.detectable_drop`)."""
    import numpy as np

    from agent_evals import power as simulate

    group = diff.overall
    if group.n < 2:
        return None
    clusters = shared_clusters(group)
    runs = simulate.Runs(
        np.asarray(group.base_passes, dtype=np.int64),
        np.asarray(group.base_runs, dtype=np.int64),
        np.asarray(group.cand_passes, dtype=np.int64),
        np.asarray(group.cand_runs, dtype=np.int64),
        clusters,
    )
    deterministic = not diff.varies
    drop = simulate.detectable_drop(runs, alpha=policy.alpha, deterministic=deterministic, power=power)
    target = policy.detect_drop
    short = drop is None or drop > target
    return PowerNote(
        n=group.n,
        repeats=diff.repeats,
        alpha=policy.alpha,
        power=power,
        detectable_drop=drop,
        target_drop=target,
        # Repeats only shrink the noise of outputs that vary between runs.
        repeats_needed=simulate.repeats_needed(runs, target, alpha=policy.alpha, power=power)
        if short and diff.varies
        else None,
        # The drop a test can see shrinks about as 1 / sqrt(cases).
        cases_needed=math.ceil(group.n * (drop / target) ** 2) if short and drop is not None else None,
        varies=diff.varies,
        clusters=len(set(clusters)) if clusters is not None else None,
    )


def gate(
    diff: Diff,
    policy: GatePolicy,
    *,
    findings: Sequence[Finding] = (),
    accept_policy_change: bool = False,
) -> Verdict:
    """Judge a candidate against its baseline.

    Args:
        diff: the paired comparison of baseline and candidate runs.
        policy: the policy in force (see `rules.stricter`).
        findings: gate-integrity findings; they fail the gate unless accepted.
        accept_policy_change: the change to the bar was reviewed and is intended.
    """
    from agent_evals import stats

    findings = (*findings, *missing_cases(diff))
    tests = _tests(diff, policy)
    ctx = Context(
        policy=policy,
        cand=diff.cand,
        base=diff.base,
        diff=diff,
        tests=tuple(tests),
        evidence=evidence(diff, policy.alpha),
    )
    rules = check_all(ctx)
    if findings:
        rules.append(integrity_rule(findings, accept_policy_change))
    score_ci = None
    if diff.overall.n >= 2:
        ci = stats.paired_bootstrap_ci(
            diff.overall.base_score, diff.overall.cand_score, clusters=shared_clusters(diff.overall)
        )
        score_ci = (ci.low, ci.high)
    status = _status(rules)
    overall = next((t for t in tests if t.group == "overall"), None)
    return Verdict(
        status=status,
        headline=_headline(status, diff, rules, overall),
        rules=tuple(rules),
        tests=tuple(tests),
        power=_power(diff, policy),
        findings=tuple(findings),
        policy=policy,
        score_delta_ci=score_ci,
        cand_pass_ci=_pass_ci(diff.overall if diff.overall.n else None, diff.cand),
    )


def missing_cases(diff: Diff) -> tuple[Finding, ...]:
    """Cases the baseline ran and the candidate did not: a candidate must not pass by running less.

    A candidate run on part of the eval set (`--filter`, an unfinished shard) would otherwise be
    judged on what it chose to run. Cases only the candidate ran are new, reported, never a failure.
    """
    missing = tuple(c.case_id for c in diff.outcome("removed"))
    if not missing:
        return ()
    base_cases = len({r.case_id for r in diff.base.cases})
    return (
        Finding(
            "cases_missing",
            "cases run",
            f"{base_cases} in the baseline run",
            f"{len(missing)} missing from the candidate run",
            missing,
        ),
    )


def integrity_rule(findings: Sequence[Finding], accepted: bool) -> RuleResult:
    """Moving the bar fails the gate until a reviewer accepts it (`--accept-policy-change`)."""
    return RuleResult(
        "gate_integrity",
        accepted,
        ("accepted with --accept-policy-change: " if accepted else "the change moves the bar: ")
        + "; ".join(f.line() for f in findings)
        + ("" if accepted else " (review it, then re-run with --accept-policy-change)"),
        tuple(c for f in findings for c in f.cases),
    )


def gate_unchanged(note: str, policy: GatePolicy, findings: Sequence[Finding], accepted: bool) -> Verdict:
    """A pair whose prompt and cases hash the same as at the base: nothing to run, only the bar to check."""
    rules = (integrity_rule(findings, accepted),) if findings else ()
    status = _status(rules)
    headline = (
        note if not findings else f"{note}; gate integrity: {'accepted' if accepted else 'review needed'}"
    )
    return Verdict(status=status, headline=headline, rules=rules, findings=tuple(findings), policy=policy)


def _pass_ci(group: Group | None, record: RunRecord) -> tuple[float, float] | None:
    """The candidate's pass-rate interval, clustered by case (repeats are not independent trials).

    From the paired group when there is one (identical repeats already count once),
    else from the record's design runs.
    """
    from agent_evals import stats
    from agent_evals.diff import pass_counts

    passes, runs, clusters = (
        (group.cand_passes, group.cand_runs, group.clusters) if group is not None else pass_counts(record)
    )
    if not sum(runs):
        return None
    ci = stats.clustered_rate_interval(passes, runs, clusters=clusters)
    return ci.low, ci.high


def _headline(
    status: Status, diff: Diff | None, rules: Sequence[RuleResult], overall: GroupTest | None
) -> str:
    failed = [r for r in rules if not r.passed]
    if status == "error":
        return "could not evaluate: " + "; ".join(r.message for r in failed if r.severity == "error")
    change = ""
    if diff is not None and overall is not None:
        noise = "" if overall.significant else ", within noise" if (overall.delta or 0) < 0 else ""
        change = (
            f"pass rate {pct(overall.base_rate)} -> {pct(overall.cand_rate)} "
            f"({pts(overall.delta)}{noise}, {overall.p_text()}); "
            f"{len(diff.labelled('regressed'))} regressed, "
            # A pass -> fail on a cut-off output still counts; the headline names the cause.
            + (f"{n} truncated at max_tokens, " if (n := len(diff.labelled("truncated"))) else "")
            + f"{len(diff.outcome('fixed'))} fixed"
        )
    if status == "fail":
        return f"gate failed: {', '.join(dict.fromkeys(r.rule for r in failed))}" + (
            f"; {change}" if change else ""
        )
    return "gate passed" + (f": {change}" if change else "")


def gate_absolute(record: RunRecord, policy: GatePolicy) -> Verdict:
    """Judge a prompt or eval set that is new in the change: no baseline, absolute thresholds only."""
    rules = check_all(Context(policy=policy, cand=record))
    status = _status(rules)
    judged = [r for r in record.cases if r.status in ("pass", "fail")]
    rate = sum(r.status == "pass" for r in judged) / len(judged) if judged else None
    if status == "error":
        headline = _headline(status, None, rules, None)
    else:
        floor = (
            f"min_pass_rate {pct(policy.min_pass_rate)}"
            if policy.min_pass_rate is not None
            else "no min_pass_rate set"
        )
        headline = f"new, no baseline: pass rate {pct(rate)} ({floor}); gate {'passed' if status == 'pass' else 'failed'}"
    return Verdict(
        status=status,
        headline=headline,
        rules=tuple(rules),
        policy=policy,
        cand_pass_ci=_pass_ci(None, record),
    )


@dataclass(frozen=True)
class PairReport:
    """The gate's outcome for one (prompt, eval set) pair."""

    prompt_id: str
    evalset_id: str
    change: ChangeKind
    verdict: Verdict
    cand: RunRecord | None = None
    diff: Diff | None = None
    note: str | None = None
    evalset_path: str | None = None
    case_locations: Mapping[str, tuple[str | None, int | None]] = field(default_factory=dict)
    """Where each case is written (file, line): for annotations on the eval set."""
    calibrations: tuple[Calibration, ...] = ()
    """Each LLM judge's agreement with people (`calibrate.calibrations_for`): shown beside its scores."""
    freshness: Check | None = None
    """The eval set's latest freshness check (`freshness.attach`): the PR comment names it when stale."""


@dataclass(frozen=True)
class GateReport:
    """Everything `ci` or `diff` decided, for every reporter."""

    pairs: tuple[PairReport, ...]
    base_ref: str | None = None
    merge_base: str | None = None
    message: str | None = None
    config_error: str | None = None
    """A provider stopped for a reason the configuration must fix (a key refused, an unknown model)."""

    @property
    def status(self) -> Status:
        statuses = {p.verdict.status for p in self.pairs}
        return "error" if "error" in statuses else "fail" if "fail" in statuses else "pass"

    @property
    def exit_code(self) -> int:
        if self.config_error is not None:
            return EXIT_CONFIG  # the eval could not run, and the fix is in the configuration
        return {"pass": EXIT_OK, "fail": EXIT_GATE_FAILED, "error": EXIT_CANNOT_EVALUATE}[self.status]

    def headline(self) -> str:
        if not self.pairs:
            return self.message or "nothing to gate"
        counts = {s: sum(p.verdict.status == s for p in self.pairs) for s in ("fail", "error", "pass")}
        parts = [
            f"{n} {label}"
            for label, n in (
                ("failed", counts["fail"]),
                ("could not evaluate", counts["error"]),
                ("passed", counts["pass"]),
            )
            if n
        ]
        word = {"pass": "PASSED", "fail": "FAILED", "error": "COULD NOT EVALUATE"}[self.status]
        return f"agent-evals gate {word}: {', '.join(parts)} of {len(self.pairs)} prompt/eval set pair(s)"
