"""The gate's rules, as a registry: each rule owns its policy fields, their direction, and its check.

A policy field knows which way is stricter (a lower `max_regressions`, a higher
`min_pass_rate`, more `critical` selectors) and whether unset means "off".
From that alone the registry derives `stricter` (the policy in force when the
base and the change disagree: field by field, the harder value) and `loosened`
(every field a change makes easier to pass: a gate-integrity finding). A rule
added here is therefore in both, and a test checks that every `GatePolicy`
field belongs to exactly one rule.

The checks are pure: a `Context` (the diff, the policy, the paired tests the
gate ran, the per-case evidence) in, `RuleResult`s out. Count rules
(`max_regressions`, `critical`) count only cases whose own evidence says they
regressed (`evidence`): with outputs that vary, a single pass -> fail is noise
until the case's runs confirm it.

The budget rules (`max_step_increase`, `max_cost_increase`) read the paired per-case
figures of the diff (`Diff.deltas`) and act on the mean change over the cases both
sides judged; the 95% interval beside it in the message shows how much of it noise
could account for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent_evals.diff import CaseDiff, Diff, Group
from agent_evals.models import GatePolicy, ScoreDrops
from agent_evals.record import RunRecord
from agent_evals.summary import pct

__all__ = [
    "REGISTRY",
    "Context",
    "Evidence",
    "Finding",
    "FindingKind",
    "GateRule",
    "GroupTest",
    "PolicyField",
    "RuleResult",
    "cases_to_confirm",
    "evidence",
    "loosened",
    "stricter",
]

FindingKind = Literal[
    "policy_loosened",
    "cases_removed",
    "cases_missing",
    "expected_changed",
    "graders_removed",
    "evalset_deleted",
    "reviews_added",
]

# Share of alpha the count rules may spend on noise: over the cases that went pass -> fail, the
# expected number that noise alone makes look consistently worse is kept below alpha * this.
COUNT_ALPHA_SHARE = 0.5
# Most runs per side a confirmation asks for; beyond it a case stays unconfirmed.
MAX_CONFIRMATION_RUNS = 12


@dataclass(frozen=True)
class Finding:
    """A change to the bar: a looser policy, removed cases, edited expectations, removed graders."""

    kind: FindingKind
    rule: str
    old: str
    new: str
    cases: tuple[str, ...] = ()

    def line(self) -> str:
        cases = (
            f": {', '.join(self.cases[:20])}{' ...' if len(self.cases) > 20 else ''}" if self.cases else ""
        )
        return f"{self.rule}: {self.old} -> {self.new}{cases}"


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    message: str
    cases: tuple[str, ...] = ()
    severity: Literal["fail", "error"] = "fail"


@dataclass(frozen=True)
class GroupTest:
    """The paired test of one group (overall, a grader, a tag).

    The overall test runs at full alpha; the other groups are tested behind it
    (Holm over the `family` distinct ones, each adjusted p at least the
    overall's). A group with exactly the overall's outcomes, or another
    group's, is not tested again: `same_as` names the test it shares.
    """

    group: str
    n: int
    base_rate: float | None
    cand_rate: float | None
    delta: float | None
    method: str
    pvalue: float
    adjusted: float
    significant: bool
    family: int = 0
    same_as: str | None = None

    @property
    def adjustment(self) -> str:
        """How `adjusted` came from `pvalue`, for a reader."""
        if self.same_as is not None:
            return f"same outcomes as {self.same_as}: its test"
        if self.family == 0:
            return "not adjusted (the overall test, at full alpha)"
        return f"Holm over {self.family} test{'s' if self.family != 1 else ''}, behind the overall test"

    def p_cell(self, fmt: Callable[[float], str]) -> str:
        """The p-value as a table shows it: `as overall`, `0.01`, or `0.01 → 0.03` when adjusted."""
        if self.same_as is not None:
            return f"as {self.same_as}"
        if self.family == 0 or self.adjusted == self.pvalue:
            return fmt(self.pvalue)
        return f"{fmt(self.pvalue)} → {fmt(self.adjusted)}"

    def p_text(self) -> str:
        """`p=0.033`, or `p=0.004, 0.036 after Holm over 9 tests` when the figure is adjusted."""
        raw = f"p={self.pvalue:.2g}"
        if self.same_as is not None or self.family == 0 or math.isclose(self.adjusted, self.pvalue):
            return raw
        return (
            f"{raw}, {self.adjusted:.2g} after Holm over {self.family} test{'s' if self.family != 1 else ''}"
        )


@dataclass(frozen=True)
class Evidence:
    """What each pass -> fail case's own runs say.

    With outputs that do not vary, every pass -> fail case is `regressed`.

    Attributes:
        regressed: cases confirmed worse.
        flaky: cases whose runs disagree on a side: noise, not a regression.
        unconfirmed: consistently worse so far, on too few runs to tell from noise.
        runs_needed: runs per side a consistent case needs to be confirmed.
    """

    regressed: tuple[str, ...]
    flaky: tuple[str, ...] = ()
    unconfirmed: tuple[str, ...] = ()
    runs_needed: int = 1

    def note(self, scope: Sequence[str] | None = None) -> str:
        """Why some pass -> fail cases were not counted (empty when all were)."""
        keep = set(scope) if scope is not None else None
        flaky = [c for c in self.flaky if keep is None or c in keep]
        unsure = [c for c in self.unconfirmed if keep is None or c in keep]
        parts = []
        if flaky:
            parts.append(f"{len(flaky)} flaky (their runs disagree)")
        if unsure:
            parts.append(
                f"{len(unsure)} not confirmed (outputs vary; {self.runs_needed} consistent runs per side "
                "confirm one: agent-evals ci re-runs them, or use --repeat)"
            )
        return "; ".join(parts)


@dataclass(frozen=True)
class Context:
    """What a rule check sees. `diff` is None for a prompt with no baseline."""

    policy: GatePolicy
    cand: RunRecord
    base: RunRecord | None = None
    diff: Diff | None = None
    tests: tuple[GroupTest, ...] = ()
    evidence: Evidence | None = None


# --- policy fields: which way is stricter ------------------------------------------------


@dataclass(frozen=True)
class PolicyField:
    """One `GatePolicy` field and which way tightens it.

    `stricter_is` is "lower" (a smaller limit fails more), "higher" (a larger
    floor, or alpha, fails more) or "superset" (more selectors fail more).
    `optional`: None means the rule is off, the loosest value there is.
    """

    name: str
    stricter_is: Literal["lower", "higher", "superset"]
    optional: bool = False

    def stricter(self, a: Any, b: Any) -> Any:
        if self.stricter_is == "superset":
            return tuple(sorted({*a, *b}))
        if a is None or b is None:
            return b if a is None else a
        return min(a, b) if self.stricter_is == "lower" else max(a, b)

    def looser(self, old: Any, new: Any) -> bool:
        """Whether `new` is easier to pass than `old`."""
        if self.stricter_is == "superset":
            return bool(set(old) - set(new))
        if old is None:
            return False
        if new is None:
            return True
        return bool(new > old) if self.stricter_is == "lower" else bool(new < old)

    def findings(self, old: Any, new: Any) -> list[Finding]:
        if not self.looser(old, new):
            return []
        dropped = tuple(sorted(set(old) - set(new))) if self.stricter_is == "superset" else ()
        return [Finding("policy_loosened", self.name, show(old), show(new), dropped)]


@dataclass(frozen=True)
class ScoreDropsField(PolicyField):
    """`max_score_drop`: a limit overall, per grader and per tag; each key tightens downwards."""

    _key: PolicyField = PolicyField("limit", "lower", optional=True)

    def stricter(self, a: Any, b: Any) -> Any:
        if a is None or b is None:
            return b if a is None else a

        def merged(x: dict[str, float], y: dict[str, float]) -> dict[str, float]:
            return {
                k: v for k in sorted({*x, *y}) if (v := self._key.stricter(x.get(k), y.get(k))) is not None
            }

        return ScoreDrops(
            overall=self._key.stricter(a.overall, b.overall),
            graders=merged(a.graders, b.graders),
            tags=merged(a.tags, b.tags),
        )

    def _limits(self, drops: ScoreDrops | None) -> dict[str, float | None]:
        d = drops or ScoreDrops()
        return {
            f"{self.name}.overall": d.overall,
            **{f"{self.name}.graders.{k}": v for k, v in d.graders.items()},
            **{f"{self.name}.tags.{k}": v for k, v in d.tags.items()},
        }

    def looser(self, old: Any, new: Any) -> bool:
        return bool(self.findings(old, new))

    def findings(self, old: Any, new: Any) -> list[Finding]:
        before, after = self._limits(old), self._limits(new)
        return [
            Finding("policy_loosened", key, show(limit), show(after.get(key)))
            for key, limit in before.items()
            if self._key.looser(limit, after.get(key))
        ]


def show(value: Any) -> str:
    """A policy value as a finding shows it."""
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    return str(value)


# --- the registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class GateRule:
    """A rule of the gate: its policy fields, and the check that applies them."""

    name: str
    fields: tuple[PolicyField, ...]
    check: Callable[[Context], list[RuleResult]]
    needs_baseline: bool = True


def register(rule: GateRule) -> None:
    """Add a rule to the registry (`REGISTRY`, built at the end of this module), after the others."""
    if any(r.name == rule.name for r in REGISTRY):
        raise ValueError(f"gate rule {rule.name!r} is registered twice")
    if any(f.name == g.name for r in REGISTRY for f in r.fields for g in rule.fields):
        raise ValueError(f"a policy field of gate rule {rule.name!r} belongs to another rule")
    REGISTRY.append(rule)


def policy_fields() -> tuple[PolicyField, ...]:
    return tuple(f for rule in REGISTRY for f in rule.fields)


def stricter(a: GatePolicy, b: GatePolicy) -> GatePolicy:
    """Field by field, the policy more likely to fail a change."""
    return GatePolicy(**{f.name: f.stricter(getattr(a, f.name), getattr(b, f.name)) for f in policy_fields()})


def loosened(base: GatePolicy, cand: GatePolicy) -> list[Finding]:
    """Every field the candidate policy makes easier to pass."""
    return [x for f in policy_fields() for x in f.findings(getattr(base, f.name), getattr(cand, f.name))]


def check_all(ctx: Context) -> list[RuleResult]:
    """Every registered rule's results, in registry order (rules needing a baseline skip without one)."""
    return [
        r for rule in REGISTRY if ctx.diff is not None or not rule.needs_baseline for r in rule.check(ctx)
    ]


# --- per-case evidence for the count rules -------------------------------------------------


def runs_needed(family: int, alpha: float) -> int:
    """Consistent runs per side that confirm one of `family` pass -> fail cases against noise.

    A case that is really unchanged passes each run with some probability p; the
    chance that, having gone pass -> fail once, it passes r - 1 more baseline runs
    and fails r - 1 more candidate runs is (p (1 - p))^(r - 1) <= 4^-(r - 1). Over
    `family` such cases the expected number of false confirmations is at most
    family * 4^-(r - 1), kept at or below alpha * COUNT_ALPHA_SHARE.
    """
    if family <= 0:
        return 1
    budget = alpha * COUNT_ALPHA_SHARE
    return 1 + max(0, math.ceil(math.log(family / budget, 4) - 1e-12))


def evidence(diff: Diff, alpha: float) -> Evidence:
    """Which pass -> fail cases count as regressed, from each case's own runs."""
    candidates = diff.outcome("regressed")
    if not diff.varies:
        return Evidence(regressed=tuple(c.case_id for c in candidates))
    needed = runs_needed(len(candidates), alpha)
    regressed, flaky, unconfirmed = [], [], []
    for case in candidates:
        # Regressed cases ran on both sides.
        assert case.base is not None
        assert case.cand is not None
        (b_pass, b_runs), (c_pass, c_runs) = case.base.evidence(), case.cand.evidence()
        if b_pass != b_runs or c_pass != 0:
            flaky.append(case.case_id)
        elif min(b_runs, c_runs) >= needed:
            regressed.append(case.case_id)
        else:
            unconfirmed.append(case.case_id)
    return Evidence(tuple(regressed), tuple(flaky), tuple(unconfirmed), needed)


def _in_scope(case: CaseDiff, selectors: Sequence[str]) -> bool:
    return any(case.case_id == s or s in case.tags for s in selectors)


def cases_to_confirm(diff: Diff, policy: GatePolicy) -> dict[str, int]:
    """Runs per side to add to each unconfirmed case a count rule would count (case id -> runs).

    Only when outputs vary and a count rule is on: `max_regressions` looks at every
    case, `critical` at its own.
    """
    if not diff.varies or (policy.max_regressions is None and not policy.critical):
        return {}
    found = evidence(diff, policy.alpha)
    wanted = {}
    for case in diff.outcome("regressed"):
        if case.case_id not in found.unconfirmed:
            continue
        if policy.max_regressions is None and not _in_scope(case, policy.critical):
            continue
        assert case.base is not None
        assert case.cand is not None
        have = min(case.base.evidence()[1], case.cand.evidence()[1])
        extra = min(found.runs_needed, MAX_CONFIRMATION_RUNS) - have
        if extra > 0:
            wanted[case.case_id] = extra
    return wanted


# --- the rules -------------------------------------------------------------------------------


def pts(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f} pts"


def _completeness(record: RunRecord, side: str, policy: GatePolicy) -> list[RuleResult]:
    rules = []
    if record.status != "complete":
        rules.append(
            RuleResult(
                "complete_run", False, f"the {side} run did not finish ({record.status})", severity="error"
            )
        )
    from agent_evals.diff import design_repeats

    # The design runs: confirmation runs add evidence about a case, not cases to evaluate.
    repeats = design_repeats(record)
    results = [r for r in record.cases if r.repeat < repeats]
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
    if ran:
        rate = len(errors) / len(ran)
        passed = rate <= policy.max_error_rate
        said = f"{side}: {len(errors)}/{len(ran)} cases could not be evaluated ({pct(rate)}; max {pct(policy.max_error_rate)})"
    else:
        # Nothing evaluated is never within the error rate, even `max_error_rate: 1`: a run of no
        # case must not pass the gate.
        passed = False
        said = (
            f"{side}: no case was evaluated, every one was skipped"
            if skipped
            else f"{side}: no case to evaluate (the eval set has no cases, or none was selected)"
        )
    rules.append(RuleResult("max_error_rate", passed, said, tuple(errors), "error"))
    return rules


def _check_completeness(ctx: Context) -> list[RuleResult]:
    """A run that did not finish, skipped cases, or too many errors: the gate cannot judge (exit 3)."""
    base = _completeness(ctx.base, "baseline", ctx.policy) if ctx.base is not None else []
    return base + _completeness(ctx.cand, "candidate", ctx.policy)


def _check_significance(ctx: Context) -> list[RuleResult]:
    """The overall paired test at full alpha; the other groups behind it say where."""
    assert ctx.diff is not None
    alpha = ctx.policy.alpha
    overall = next((t for t in ctx.tests if t.group == "overall"), None)
    significant = [t for t in ctx.tests if t.significant and t.same_as is None]
    regressed = tuple(c.case_id for c in ctx.diff.outcome("regressed"))
    if significant:
        message = "; ".join(
            f"{t.group}: {pct(t.base_rate)} -> {pct(t.cand_rate)} ({pts(t.delta)}), {t.p_text()} <= alpha {alpha:g}"
            for t in significant
        )
    elif overall is not None:
        message = (
            f"no significant regression (overall {pts(overall.delta)}, {overall.p_text()}; alpha {alpha:g})"
        )
    else:
        message = "no paired cases to test"
    return [RuleResult("significant_regression", not significant, message, regressed if significant else ())]


def _check_critical(ctx: Context) -> list[RuleResult]:
    """Tags or case ids that must never regress: one confirmed regression among them fails."""
    assert ctx.diff is not None
    assert ctx.evidence is not None
    confirmed = set(ctx.evidence.regressed)
    results = []
    for selector in ctx.policy.critical:
        scope = [c.case_id for c in ctx.diff.outcome("regressed") if _in_scope(c, (selector,))]
        hit = tuple(c for c in scope if c in confirmed)
        note = ctx.evidence.note(scope)
        message = f"{len(hit)} critical case(s) regressed" if hit else "no critical case regressed"
        results.append(
            RuleResult(
                f"critical {selector}", not hit, message + (f"; not counted: {note}" if note else ""), hit
            )
        )
    return results


def _check_max_regressions(ctx: Context) -> list[RuleResult]:
    """At most this many cases confirmed to go pass -> fail."""
    limit = ctx.policy.max_regressions
    if limit is None:
        return []
    assert ctx.evidence is not None
    hit = ctx.evidence.regressed
    note = ctx.evidence.note()
    return [
        RuleResult(
            "max_regressions",
            len(hit) <= limit,
            f"{len(hit)} regression(s); max {limit}" + (f"; not counted: {note}" if note else ""),
            hit if len(hit) > limit else (),
        )
    ]


def _check_min_pass_rate(ctx: Context) -> list[RuleResult]:
    """A floor under the candidate's pass rate (the only rule for a prompt with no baseline)."""
    floor = ctx.policy.min_pass_rate
    if floor is None:
        return []
    judged = [r for r in ctx.cand.cases if r.status in ("pass", "fail")]
    rate = sum(r.status == "pass" for r in judged) / len(judged) if judged else 0.0
    failing = tuple(r.case_id for r in judged if r.status == "fail")
    return [
        RuleResult(
            "min_pass_rate",
            rate >= floor,
            f"candidate pass rate {pct(rate)} ({len(judged) - len(failing)}/{len(judged)}); min {pct(floor)}",
            failing if rate < floor else (),
        )
    ]


def _check_score_drops(ctx: Context) -> list[RuleResult]:
    """Limits on the drop of the mean score, overall, per grader and per tag."""
    drops, diff = ctx.policy.max_score_drop, ctx.diff
    if drops is None or diff is None:
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


def _check_noninferiority(ctx: Context) -> list[RuleResult]:
    """Pass only if the candidate is no worse than the margin, with 1 - alpha confidence (one-sided)."""
    from agent_evals import stats

    margin, diff = ctx.policy.noninferiority_margin, ctx.diff
    if margin is None or diff is None or not diff.overall.n:
        return []
    # One-sided (1 - alpha) lower bound = the lower end of a two-sided (1 - 2 alpha) interval.
    result = stats.noninferior(
        diff.overall.base_pass,
        diff.overall.cand_pass,
        margin=margin,
        clusters=shared_clusters(diff.overall),
        confidence=1 - 2 * ctx.policy.alpha,
    )
    regressed = tuple(c.case_id for c in diff.outcome("regressed"))
    return [
        RuleResult(
            "noninferiority",
            result.passed,
            f"pass-rate change {pts(result.interval.estimate)}, lower bound {pts(result.interval.low)} "
            f"vs margin -{100 * margin:.1f} pts ({1 - ctx.policy.alpha:.0%} one-sided)",
            regressed if not result.passed else (),
        )
    ]


def _one_decimal(x: float) -> str:
    """A limit as written: `1.0`, `0.25`."""
    return f"{x:.1f}" if math.isclose(x * 10, round(x * 10), abs_tol=1e-9) else f"{x:g}"


def _usd(x: float) -> str:
    return f"${x:.4f}" if x == 0 or abs(x) >= 0.001 else f"${x:.6f}"


def _signed_pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def _over(increases: Sequence[tuple[str, float]], limit: Callable[[str], float]) -> tuple[str, ...]:
    return tuple(cid for cid, up in increases if up > limit(cid) + 1e-9)


def _check_step_increase(ctx: Context) -> list[RuleResult]:
    """Most extra steps (model calls plus tool calls) per case, on average, over the cases both sides judged.

    Acts on the point estimate, the mean change over these cases: both sides ran the same
    cases, so the change is measured on them, not inferred. The message shows the 95%
    interval beside it (how much of the change noise could account for when outputs vary)
    and, when it fails, names the cases that grew by more than the limit, most first.
    """
    limit, diff = ctx.policy.max_step_increase, ctx.diff
    if limit is None or diff is None:
        return []
    d = diff.deltas.steps
    allowed = f"allowed +{_one_decimal(limit)} on the mean"
    if d is None:
        return [
            RuleResult("max_step_increase", True, f"steps per case: no case judged on both sides; {allowed}")
        ]
    ci = f", 95% CI {d.interval[0]:+.1f}..{d.interval[1]:+.1f}" if d.interval is not None else ""
    passed = d.delta <= limit + 1e-9
    return [
        RuleResult(
            "max_step_increase",
            passed,
            f"steps per case: {d.base_mean:.1f} -> {d.cand_mean:.1f} ({d.delta:+.1f}{ci}); {allowed}",
            () if passed else _over(d.increases(), lambda _: limit),
        )
    ]


def _check_cost_increase(ctx: Context) -> list[RuleResult]:
    """Most relative increase in the mean cost per case (0.2: 20% more), over the cases both sides judged.

    Acts on the point estimate, the relative change of the mean cost over these cases (the
    same cases on both sides), with its 95% interval (delta method for a ratio of paired
    means) in the message. A cost nobody priced cannot be compared: when no paired case
    has a known cost on both sides the gate cannot judge (an error, exit 3), since passing
    would let a change through unseen. When it fails, it names the cases whose cost grew
    by more than the limit, most first.
    """
    limit, diff = ctx.policy.max_cost_increase, ctx.diff
    if limit is None or diff is None:
        return []
    d = diff.deltas.cost
    allowed = f"allowed {_signed_pct(limit).replace('.0%', '%')} on the mean"
    if d is None:
        if not diff.overall.n:
            return [
                RuleResult(
                    "max_cost_increase", True, f"cost per case: no case judged on both sides; {allowed}"
                )
            ]
        return [
            RuleResult(
                "max_cost_increase",
                False,
                f"cost per case: unknown on the {diff.overall.n:,} cases judged on both sides (the model has no "
                f"price: set it under prices: in agent-evals.yaml); {allowed}",
                severity="error",
            )
        ]
    # Cases whose cost is unknown on a side (an unpriced model) are left out: say how many are in.
    of = f"; {d.n:,} of {diff.overall.n:,} cases priced" if d.n < diff.overall.n else ""
    head = f"cost per case: {_usd(d.base_mean)} -> {_usd(d.cand_mean)}"
    base_cost = dict(zip(d.case_ids, d.base, strict=True))
    rel = d.relative
    if rel is None:
        # The baseline cost nothing: any cost is an unbounded increase, none is no change.
        passed = d.cand_mean == 0
        message = f"{head} (the baseline cost nothing{of}); {allowed}"
    else:
        span = d.relative_interval
        ci = f", 95% CI {_signed_pct(span[0])}..{_signed_pct(span[1])}" if span is not None else ""
        passed = rel <= limit + 1e-9
        message = f"{head} ({_signed_pct(rel)}{ci}{of}); {allowed}"
    return [
        RuleResult(
            "max_cost_increase",
            passed,
            message,
            () if passed else _over(d.increases(), lambda cid: limit * base_cost[cid]),
        )
    ]


def shared_clusters(group: Group) -> tuple[str, ...] | None:
    """The group's cluster keys when some cases share one; None when every case is its own."""
    return group.clusters if len(set(group.clusters)) < len(group.clusters) else None


# The registry: every gate rule, in the order its results are reported. Each `GatePolicy` field
# belongs to exactly one rule (tests/test_rules.py checks it), so `stricter` and `loosened` see them all.
REGISTRY: list[GateRule] = []
for _rule in (
    GateRule(
        "max_error_rate", (PolicyField("max_error_rate", "lower"),), _check_completeness, needs_baseline=False
    ),
    GateRule(
        "significant_regression",
        (
            PolicyField("alpha", "higher"),
            PolicyField("detect_drop", "lower"),
        ),
        _check_significance,
    ),
    GateRule("critical", (PolicyField("critical", "superset"),), _check_critical),
    GateRule(
        "max_regressions", (PolicyField("max_regressions", "lower", optional=True),), _check_max_regressions
    ),
    GateRule(
        "min_pass_rate",
        (PolicyField("min_pass_rate", "higher", optional=True),),
        _check_min_pass_rate,
        needs_baseline=False,
    ),
    GateRule(
        "max_score_drop", (ScoreDropsField("max_score_drop", "lower", optional=True),), _check_score_drops
    ),
    GateRule(
        "noninferiority",
        (PolicyField("noninferiority_margin", "lower", optional=True),),
        _check_noninferiority,
    ),
    GateRule(
        "max_step_increase",
        (PolicyField("max_step_increase", "lower", optional=True),),
        _check_step_increase,
    ),
    GateRule(
        "max_cost_increase",
        (PolicyField("max_cost_increase", "lower", optional=True),),
        _check_cost_increase,
    ),
):
    register(_rule)
