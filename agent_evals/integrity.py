"""Gate integrity: a change must not pass by moving the bar.

Compares the eval set (and its gate policy) at the base with the candidate's:
a looser policy, removed cases, edited `expected` values and removed graders
are findings that every report shows first. The policy in force is the
stricter of the two, field by field (`rules.stricter`; which way each field
tightens is declared once, with its rule, in the registry).
"""

from __future__ import annotations

from typing import Any

from agent_evals.models import EvalSet, GatePolicy, ProjectConfig
from agent_evals.rules import Finding, FindingKind, loosened, show, stricter

__all__ = ["Finding", "FindingKind", "check", "effective_policy", "loosened", "stricter"]


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
                show(tuple(g.label for g in base.graders)),
                show(tuple(cand_graders)),
                gone,
            )
        )
    return findings
