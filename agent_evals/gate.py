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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agent_evals.calibrate import Calibration
from agent_evals.diff import Diff, Group
from agent_evals.errors import EXIT_CANNOT_EVALUATE, EXIT_CONFIG, EXIT_GATE_FAILED, EXIT_OK
from agent_evals.integrity import Finding
from agent_evals.models import GatePolicy
from agent_evals.record import RunRecord

Status = Literal["pass", "fail", "error"]
ChangeKind = Literal["modified", "new", "unchanged", "deleted"]


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    message: str
    cases: tuple[str, ...] = ()
    severity: Literal["fail", "error"] = "fail"


@dataclass(frozen=True)
class GroupTest:
    """The paired test of one group (overall, a grader, a tag)."""

    group: str
    n: int
    base_rate: float | None
    cand_rate: float | None
    delta: float | None
    method: str
    pvalue: float
    adjusted: float
    significant: bool


@dataclass(frozen=True)
class PowerNote:
    n: int
    repeats: int
    alpha: float
    power: float
    detectable_drop: float
    target_drop: float
    repeats_needed: int | None
    cases_needed: int | None

    @property
    def sufficient(self) -> bool:
        return self.detectable_drop <= self.target_drop

    def sentence(self) -> str:
        head = (
            f"this eval set can detect a drop of {100 * self.detectable_drop:.1f} points "
            f"(n={self.n}, repeats={self.repeats}, alpha={self.alpha:g}, power {self.power:.0%})"
        )
        if self.sufficient:
            return head
        options = []
        if self.cases_needed is not None:
            options.append(f"{self.cases_needed:,} cases")
        if self.repeats_needed is not None:
            # Repeats only shrink the noise of outputs that vary from run to run (temperature > 0).
            options.append(f"--repeat {self.repeats_needed} if outputs vary between runs")
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


def pts(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f} pts"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _status(rules: Sequence[RuleResult]) -> Status:
    if any(not r.passed and r.severity == "error" for r in rules):
        return "error"
    return "fail" if any(not r.passed for r in rules) else "pass"


def _completeness(record: RunRecord, side: str, policy: GatePolicy) -> list[RuleResult]:
    rules = []
    if record.status != "complete":
        rules.append(
            RuleResult(
                "complete_run", False, f"the {side} run did not finish ({record.status})", severity="error"
            )
        )
    results = record.cases
    skipped = [r.case_id for r in results if r.status == "skipped"]
    if skipped:
        rules.append(
            RuleResult(
                "complete_run",
                False,
                f"{len(skipped)} {side} case(s) were skipped (budget)",
                tuple(skipped),
                "error",
            )
        )
    ran = [r for r in results if r.status != "skipped"]
    errors = [r.case_id for r in ran if r.status == "error"]
    rate = len(errors) / len(ran) if ran else 1.0
    rules.append(
        RuleResult(
            "max_error_rate",
            rate <= policy.max_error_rate,
            f"{side}: {len(errors)}/{len(ran)} cases could not be evaluated ({pct(rate)}; max {pct(policy.max_error_rate)})",
            tuple(errors),
            "error",
        )
    )
    return rules


def _tests(diff: Diff, policy: GatePolicy) -> list[GroupTest]:
    from agent_evals import stats

    groups: list[tuple[str, Group]] = [("overall", diff.overall)]
    groups += [(f"grader {g.name}", g) for g in diff.graders]
    groups += [(f"tag {g.name}", g) for g in diff.tags]
    raw = []
    for label, group in groups:
        if group.n == 0:
            continue
        test = stats.paired_test(
            group.base_pass, group.cand_pass, clusters=_clusters(group), alternative="less"
        )
        raw.append((label, group, test))
    adjusted = stats.holm([t.pvalue for _, _, t in raw]) if raw else []
    return [
        GroupTest(
            group=label,
            n=group.n,
            base_rate=group.base_pass_rate,
            cand_rate=group.cand_pass_rate,
            delta=group.pass_delta,
            method=test.method,
            pvalue=test.pvalue,
            adjusted=adj,
            significant=adj < policy.alpha and (group.pass_delta or 0) < 0,
        )
        for (label, group, test), adj in zip(raw, adjusted, strict=True)
    ]


def _clusters(group: Group) -> tuple[str, ...] | None:
    # Only cluster when some cases actually share a cluster; otherwise the exact McNemar applies.
    return group.clusters if len(set(group.clusters)) < len(group.clusters) else None


def _power(diff: Diff, policy: GatePolicy, power: float = 0.8) -> PowerNote | None:
    from agent_evals import stats

    n = diff.overall.n
    if n < 2:
        return None
    rate = diff.overall.base_pass_rate or 0.0
    sd = stats.assumed_delta_sd(rate, repeats=diff.repeats)
    mde = stats.minimum_detectable_drop(n, sd_delta=sd, alpha=policy.alpha, power=power)
    target = policy.detect_drop
    return PowerNote(
        n=n,
        repeats=diff.repeats,
        alpha=policy.alpha,
        power=power,
        detectable_drop=mde,
        target_drop=target,
        repeats_needed=None
        if mde <= target
        else stats.repeats_needed(target, n, pass_rate=rate, alpha=policy.alpha, power=power),
        cases_needed=None
        if mde <= target
        else stats.cases_needed(
            target,
            sd_delta=stats.assumed_delta_sd(rate, repeats=diff.repeats),
            alpha=policy.alpha,
            power=power,
        ),
    )


def _regressed_in(diff: Diff, selector: str) -> tuple[str, ...]:
    return tuple(c.case_id for c in diff.outcome("regressed") if c.case_id == selector or selector in c.tags)


def _score_rules(diff: Diff, policy: GatePolicy) -> list[RuleResult]:
    drops = policy.max_score_drop
    if drops is None:
        return []
    targets: list[tuple[str, Group | None, float]] = []
    if drops.overall is not None:
        targets.append(("max_score_drop.overall", diff.overall, drops.overall))
    graders = {g.name: g for g in diff.graders}
    tags = {g.name: g for g in diff.tags}
    targets += [(f"max_score_drop.graders.{k}", graders.get(k), v) for k, v in drops.graders.items()]
    targets += [(f"max_score_drop.tags.{k}", tags.get(k), v) for k, v in drops.tags.items()]
    rules = []
    for rule, group, limit in targets:
        delta = group.score_delta if group is not None else None
        drop = -delta if delta is not None else 0.0
        worse = (
            tuple(
                cid
                for cid, b, c in zip(group.case_ids, group.base_score, group.cand_score, strict=True)
                if c < b
            )
            if group is not None
            else ()
        )
        rules.append(
            RuleResult(
                rule,
                drop <= limit,
                f"mean score {pts(delta).replace(' pts', '')} ({'no cases' if group is None else f'n={group.n}'}); "
                f"max drop {limit:g}",
                worse if drop > limit else (),
            )
        )
    return rules


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
        policy: the policy in force (see `integrity.stricter`).
        findings: gate-integrity findings; they fail the gate unless accepted.
        accept_policy_change: the change to the bar was reviewed and is intended.
    """
    from agent_evals import stats

    findings = (*findings, *missing_cases(diff))
    rules = _completeness(diff.base, "baseline", policy) + _completeness(diff.cand, "candidate", policy)
    tests = _tests(diff, policy)
    significant = [t for t in tests if t.significant]
    regressed = tuple(c.case_id for c in diff.outcome("regressed"))
    overall = next((t for t in tests if t.group == "overall"), None)
    rules.append(
        RuleResult(
            "significant_regression",
            not significant,
            "; ".join(
                f"{t.group}: {pct(t.base_rate)} -> {pct(t.cand_rate)} ({pts(t.delta)}), p={t.adjusted:.2g} < alpha {policy.alpha:g}"
                for t in significant
            )
            or (
                f"no significant regression (overall {pts(overall.delta)}, p={overall.adjusted:.2g}; alpha {policy.alpha:g})"
                if overall
                else "no paired cases to test"
            ),
            regressed if significant else (),
        )
    )
    for selector in policy.critical:
        hit = _regressed_in(diff, selector)
        rules.append(
            RuleResult(
                f"critical {selector}",
                not hit,
                f"{len(hit)} critical case(s) regressed" if hit else "no critical case regressed",
                hit,
            )
        )
    if policy.max_regressions is not None:
        rules.append(
            RuleResult(
                "max_regressions",
                len(regressed) <= policy.max_regressions,
                f"{len(regressed)} regression(s); max {policy.max_regressions}",
                regressed if len(regressed) > policy.max_regressions else (),
            )
        )
    if policy.min_pass_rate is not None:
        rules.append(_min_pass_rate(diff.cand, policy.min_pass_rate))
    rules += _score_rules(diff, policy)
    if policy.noninferiority_margin is not None and diff.overall.n:
        # One-sided (1 - alpha) lower bound = the lower end of a two-sided (1 - 2 alpha) interval.
        result = stats.noninferior(
            diff.overall.base_pass,
            diff.overall.cand_pass,
            margin=policy.noninferiority_margin,
            clusters=_clusters(diff.overall),
            confidence=1 - 2 * policy.alpha,
        )
        rules.append(
            RuleResult(
                "noninferiority",
                result.passed,
                f"pass-rate change {pts(result.interval.estimate)}, lower bound {pts(result.interval.low)} "
                f"vs margin -{100 * policy.noninferiority_margin:.1f} pts ({1 - policy.alpha:.0%} one-sided)",
                regressed if not result.passed else (),
            )
        )
    if findings:
        rules.append(integrity_rule(findings, accept_policy_change))
    score_ci = None
    if diff.overall.n >= 2:
        ci = stats.paired_bootstrap_ci(
            diff.overall.base_score, diff.overall.cand_score, clusters=_clusters(diff.overall)
        )
        score_ci = (ci.low, ci.high)
    status = _status(rules)
    return Verdict(
        status=status,
        headline=_headline(status, diff, rules, overall),
        rules=tuple(rules),
        tests=tuple(tests),
        power=_power(diff, policy),
        findings=tuple(findings),
        policy=policy,
        score_delta_ci=score_ci,
        cand_pass_ci=_pass_ci(diff.cand),
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


def _pass_ci(record: RunRecord) -> tuple[float, float] | None:
    from agent_evals import stats

    judged = [r for r in record.cases if r.status in ("pass", "fail")]
    if not judged:
        return None
    ci = stats.pass_rate_interval(sum(r.status == "pass" for r in judged), len(judged))
    return ci.low, ci.high


def _min_pass_rate(record: RunRecord, floor: float) -> RuleResult:
    judged = [r for r in record.cases if r.status in ("pass", "fail")]
    rate = sum(r.status == "pass" for r in judged) / len(judged) if judged else 0.0
    failing = tuple(r.case_id for r in judged if r.status == "fail")
    return RuleResult(
        "min_pass_rate",
        rate >= floor,
        f"candidate pass rate {pct(rate)} ({len(judged) - len(failing)}/{len(judged)}); min {pct(floor)}",
        failing if rate < floor else (),
    )


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
            f"pass rate {pct(overall.base_rate)} -> {pct(overall.cand_rate)} ({pts(overall.delta)}{noise}); "
            f"{len(diff.outcome('regressed'))} regressed, {len(diff.outcome('fixed'))} fixed"
        )
    if status == "fail":
        return f"gate failed: {', '.join(dict.fromkeys(r.rule for r in failed))}" + (
            f"; {change}" if change else ""
        )
    return "gate passed" + (f": {change}" if change else "")


def gate_absolute(record: RunRecord, policy: GatePolicy) -> Verdict:
    """Judge a prompt or eval set that is new in the change: no baseline, absolute thresholds only."""
    rules = _completeness(record, "candidate", policy)
    if policy.min_pass_rate is not None:
        rules.append(_min_pass_rate(record, policy.min_pass_rate))
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
        status=status, headline=headline, rules=tuple(rules), policy=policy, cand_pass_ci=_pass_ci(record)
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
