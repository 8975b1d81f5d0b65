"""Gate integrity: a change must not pass by moving the bar.

Compares the eval set (and its gate policy) at the base with the candidate's:
a looser policy, removed cases, edited `expected` values and removed graders
are findings that every report shows first. The policy in force is the
stricter of the two, field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from agent_evals.models import EvalSet, GatePolicy, ProjectConfig, ScoreDrops

FindingKind = Literal[
    "policy_loosened",
    "cases_removed",
    "cases_missing",
    "expected_changed",
    "graders_removed",
    "evalset_deleted",
    "reviews_added",
]


@dataclass(frozen=True)
class Finding:
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


def effective_policy(
    config: ProjectConfig, evalset: EvalSet | None, overrides: dict[str, Any] | None = None
) -> GatePolicy:
    """The eval set's policy over the project defaults, with CLI overrides on top."""
    merged: dict[str, Any] = {}
    for layer in (config.gate, evalset.gate if evalset else None):
        if layer is not None:
            merged.update({k: getattr(layer, k) for k in layer.model_fields_set})
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return GatePolicy.model_validate(merged)


def _min_opt(a: float | None, b: float | None) -> float | None:
    # For limits where None means "no limit", the stricter is the smaller one that is set.
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _max_opt(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _drops(a: ScoreDrops | None, b: ScoreDrops | None) -> ScoreDrops | None:
    if a is None or b is None:
        return a or b

    def keys(x: dict[str, float], y: dict[str, float]) -> dict[str, float]:
        return {k: v for k in sorted({*x, *y}) if (v := _min_opt(x.get(k), y.get(k))) is not None}

    return ScoreDrops(
        overall=_min_opt(a.overall, b.overall), graders=keys(a.graders, b.graders), tags=keys(a.tags, b.tags)
    )


def stricter(a: GatePolicy, b: GatePolicy) -> GatePolicy:
    """Field by field, the policy more likely to fail a change."""
    return GatePolicy(
        max_regressions=_min_opt(a.max_regressions, b.max_regressions),
        min_pass_rate=_max_opt(a.min_pass_rate, b.min_pass_rate),
        max_score_drop=_drops(a.max_score_drop, b.max_score_drop),
        alpha=max(a.alpha, b.alpha),  # a larger alpha flags more regressions
        noninferiority_margin=_min_opt(a.noninferiority_margin, b.noninferiority_margin),
        critical=tuple(sorted({*a.critical, *b.critical})),
        max_error_rate=min(a.max_error_rate, b.max_error_rate),
        detect_drop=min(a.detect_drop, b.detect_drop),
    )


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    return str(value)


def loosened(base: GatePolicy, cand: GatePolicy) -> list[Finding]:
    """Every rule the candidate policy makes easier to pass."""
    # (rule, looser?) for each scalar field: True when the candidate value is looser.
    checks: list[tuple[str, Any, Any, Callable[[Any, Any], bool]]] = [
        ("max_regressions", base.max_regressions, cand.max_regressions, lambda o, n: n is None or n > o),
        ("min_pass_rate", base.min_pass_rate, cand.min_pass_rate, lambda o, n: n is None or n < o),
        ("alpha", base.alpha, cand.alpha, lambda o, n: n < o),
        ("noninferiority_margin", base.noninferiority_margin, cand.noninferiority_margin,
         lambda o, n: n is None or n > o),
        ("max_error_rate", base.max_error_rate, cand.max_error_rate, lambda o, n: n > o),
    ]  # fmt: skip
    bd, cd = base.max_score_drop or ScoreDrops(), cand.max_score_drop or ScoreDrops()
    checks.append(("max_score_drop.overall", bd.overall, cd.overall, lambda o, n: n is None or n > o))
    for kind, old_map, new_map in (("graders", bd.graders, cd.graders), ("tags", bd.tags, cd.tags)):
        for key, old in old_map.items():
            checks.append(
                (f"max_score_drop.{kind}.{key}", old, new_map.get(key), lambda o, n: n is None or n > o)
            )
    findings = [
        Finding("policy_loosened", rule, _show(old), _show(new))
        for rule, old, new, looser in checks
        if old is not None and looser(old, new)
    ]
    dropped = tuple(sorted(set(base.critical) - set(cand.critical)))
    if dropped:
        findings.append(
            Finding("policy_loosened", "critical", _show(base.critical), _show(cand.critical), dropped)
        )
    return findings


def check(
    base: EvalSet | None, cand: EvalSet, base_policy: GatePolicy, cand_policy: GatePolicy
) -> list[Finding]:
    """What the change does to the bar: looser policy, removed cases, edited expectations, removed graders."""
    findings = loosened(base_policy, cand_policy)
    if base is None:
        return findings
    cand_cases = {c.id: c for c in cand.cases}
    removed = tuple(c.id for c in base.cases if c.id not in cand_cases)
    if removed:
        findings.append(
            Finding("cases_removed", "cases", f"{len(base.cases)} cases", f"{len(cand.cases)} cases", removed)
        )
    edited = tuple(c.id for c in base.cases if c.id in cand_cases and cand_cases[c.id].expected != c.expected)
    if edited:
        findings.append(Finding("expected_changed", "expected", "as at base", "edited", edited))
    cand_graders = {g.label for g in cand.graders}
    gone = tuple(g.label for g in base.graders if g.label not in cand_graders)
    if gone:
        findings.append(
            Finding(
                "graders_removed",
                "graders",
                _show(tuple(g.label for g in base.graders)),
                _show(tuple(cand_graders)),
                gone,
            )
        )
    return findings
