"""The gate report as JSON: the full diff and verdict, for artifacts and other tools.

Unlike the Markdown comment this keeps everything: every case with its
expected value, every repeat's output and grader reasons, every group test,
per pair the candidate grades that still wait for a person (`needs_review`),
and per LLM-judge grader its agreement with people (`calibration`, by grader).
Outputs cut off at `max_tokens` are marked on each result (`truncated`,
`finish_reason`, `max_tokens`), counted per run and limit (`truncations`), and
a pass -> fail on a cut-off output has the case `label` `truncated` (its
`outcome` stays `regressed`: the gate counts it; `counts.truncated` is a
subset of `counts.regressed`).
Agents: when either run recorded a trajectory, a pair has `trajectory` (the
paired per-case figures: steps, model calls, tool calls, tokens, cost, each with
its means, mean change and 95% interval; cost also relative), a case whose runs
recorded one has `trajectory` (the change's sentences, its parts, and the calls of
the two repeats shown), and each result its `steps`, `tool_calls` and `replay`.
These keys are left out for runs without tools, so their documents are unchanged.
The document carries `schema_version`; a consumer must refuse a version it
does not know. Keys come out in a fixed order and non-finite numbers
(a p-value of NaN) as null, so the output is valid, stable JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from agent_evals.calibrate import LABELS, Calibration
from agent_evals.diff import (
    OUTCOMES,
    CaseDiff,
    Diff,
    Group,
    PairedDelta,
    Side,
    Totals,
    max_tokens,
    totals,
    truncations,
)
from agent_evals.gate import GateReport, GroupTest, PairReport, PowerNote, RuleResult, Verdict
from agent_evals.integrity import Finding
from agent_evals.record import CaseResult, RunRecord
from agent_evals.report._common import (
    case_diffs,
    delta_phrases,
    needs_review,
    rule_labels,
    shown,
    side_verdict,
    trajectory,
    trajectory_sentences,
)
from agent_evals.summary import call_sequence

__all__ = ["KIND", "SCHEMA_VERSION", "render", "to_dict"]

SCHEMA_VERSION = 1
KIND = "agent-evals-gate"


def render(report: GateReport) -> str:
    """The report as a JSON document (indented, keys in a fixed order).

    Args:
        report: the gate's outcome for every prompt/eval set pair.

    Returns:
        The JSON text, ending in a newline.
    """
    return json.dumps(to_dict(report), indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"


def to_dict(report: GateReport) -> dict[str, Any]:
    """The report as plain JSON-ready data (what `render` serialises)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "status": report.status,
        "exit_code": report.exit_code,
        "headline": report.headline(),
        "base_ref": report.base_ref,
        "merge_base": report.merge_base,
        "message": report.message,
        "pairs": [_pair(p) for p in report.pairs],
    }


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _jsonable(value: Any) -> Any:
    # Expected values come from YAML or JSONL and are JSON already; a stray date or set becomes text.
    return json.loads(
        json.dumps(value, ensure_ascii=False, default=str, allow_nan=True), parse_constant=lambda _: None
    )


def _pair(pair: PairReport) -> dict[str, Any]:
    d = pair.diff
    cand = pair.cand or (d.cand if d else None)
    return {
        "prompt_id": pair.prompt_id,
        "evalset_id": pair.evalset_id,
        "evalset_path": pair.evalset_path,
        "change": pair.change,
        "note": pair.note,
        "verdict": _verdict(pair.verdict),
        "runs": {"base": _run(d.base) if d else None, "cand": _run(cand) if cand else None},
        "totals": {
            "base": _totals(d.base_totals) if d else None,
            "cand": _totals(d.cand_totals if d else totals(cand)) if cand else None,
        },
        "repeats": d.repeats if d else None,
        "groups": _groups(d, pair.verdict.tests) if d else None,
        "calibration": {c.grader: _calibration(c) for c in pair.calibrations},
        "counts": _counts(case_diffs(pair)),
        "truncations": {
            "base": _truncations(d.base) if d else None,
            "cand": _truncations(cand) if cand else None,
        },
        **({"trajectory": _trajectory(d)} if d is not None and d.trajectories else {}),
        "cases": [_case(c) for c in case_diffs(pair)],
        "needs_review": [
            {
                "case_id": r.case_id,
                "grader": r.grader,
                "why": r.why,
                "reason": r.reason,
                "repeats": list(r.repeats),
            }
            for r in needs_review(pair)
        ],
    }


def _calibration(c: Calibration) -> dict[str, Any]:
    return {
        "grader": c.grader,
        "status": c.status,
        "judges": list(c.judges),
        "n": c.n,
        "confusion": {
            "labels": list(LABELS),
            "rows": "people",
            "columns": "judge",
            "matrix": [list(row) for row in c.confusion],
        },
        "agreement": _num(c.agreement),
        "agreement_ci": [_num(x) for x in c.agreement_ci] if c.agreement_ci else None,
        "kappa": _num(c.kappa),
        "sensitivity": _num(c.sensitivity),
        "specificity": _num(c.specificity),
        "judged": c.judged,
        "observed_pass_rate": _num(c.observed_pass_rate),
        "corrected_pass_rate": _num(c.corrected_pass_rate),
        "corrected_note": c.corrected_note,
        "below_floor": c.below_floor,
        "too_few": c.too_few,
        "policy": c.policy.model_dump(mode="json"),
        "warnings": list(c.warnings),
    }


def _verdict(v: Verdict) -> dict[str, Any]:
    return {
        "status": v.status,
        "exit_code": v.exit_code,
        "headline": v.headline,
        "rules": [_rule(r, label) for r, label in zip(v.rules, rule_labels(v.rules), strict=True)],
        "tests": [_test(t) for t in v.tests],
        "power": _power(v.power) if v.power else None,
        "findings": [_finding(f) for f in v.findings],
        "policy": v.policy.model_dump(mode="json"),
        "score_delta_ci": [_num(x) for x in v.score_delta_ci] if v.score_delta_ci else None,
        "cand_pass_ci": [_num(x) for x in v.cand_pass_ci] if v.cand_pass_ci else None,
    }


def _rule(r: RuleResult, label: str) -> dict[str, Any]:
    return {
        "rule": r.rule,
        "label": label,
        "passed": r.passed,
        "severity": r.severity,
        "message": r.message,
        "cases": list(r.cases),
    }


def _test(t: GroupTest) -> dict[str, Any]:
    return {
        "group": t.group,
        "n": t.n,
        "base_rate": _num(t.base_rate),
        "cand_rate": _num(t.cand_rate),
        "delta": _num(t.delta),
        "method": t.method,
        "pvalue": _num(t.pvalue),
        "adjusted": _num(t.adjusted),
        "adjustment": t.adjustment,
        "family": t.family,
        "same_as": t.same_as,
        "significant": t.significant,
    }


def _power(p: PowerNote) -> dict[str, Any]:
    return {
        "n": p.n,
        "repeats": p.repeats,
        "varies": p.varies,
        "clusters": p.clusters,
        "method": "simulated from the records' per-case pass rates (agent_evals.power)",
        "alpha": p.alpha,
        "power": p.power,
        "detectable_drop": _num(p.detectable_drop),
        "target_drop": p.target_drop,
        "sufficient": p.sufficient,
        "repeats_needed": p.repeats_needed,
        "cases_needed": p.cases_needed,
        "sentence": p.sentence(),
    }


def _finding(f: Finding) -> dict[str, Any]:
    return {"kind": f.kind, "rule": f.rule, "old": f.old, "new": f.new, "cases": list(f.cases)}


def _run(r: RunRecord) -> dict[str, Any]:
    h = r.header
    return {
        "run_id": h.run_id,
        "path": r.path,
        "status": r.status,
        "started_at": h.started_at,
        "tool_version": h.tool_version,
        "prompt": _jsonable(h.prompt),
        "evalset": _jsonable(h.evalset),
        "provider": _jsonable(h.provider),
        "git": _jsonable(h.git),
    }


def _totals(t: Totals) -> dict[str, Any]:
    return {
        "cases": t.cases,
        "errors": t.errors,
        "skipped": t.skipped,
        "error_rate": _num(t.error_rate),
        "cost_usd": _num(t.cost_usd),
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "latency_p50_ms": _num(t.latency_p50_ms),
        "latency_p95_ms": _num(t.latency_p95_ms),
    }


def _groups(d: Diff, tests: tuple[GroupTest, ...]) -> dict[str, Any]:
    by_label = {t.group: t for t in tests}

    def group(g: Group, label: str) -> dict[str, Any]:
        t = by_label.get(label)
        return {
            "kind": g.kind,
            "name": g.name,
            "n": g.n,
            "base_pass_rate": _num(g.base_pass_rate),
            "cand_pass_rate": _num(g.cand_pass_rate),
            "pass_delta": _num(g.pass_delta),
            "base_mean_score": _num(g.base_mean_score),
            "cand_mean_score": _num(g.cand_mean_score),
            "score_delta": _num(g.score_delta),
            "regressions": g.regressions,
            "fixes": g.fixes,
            "test": _test(t) if t else None,
        }

    return {
        "overall": group(d.overall, "overall"),
        "graders": [group(g, f"grader {g.name}") for g in d.graders],
        "tags": [group(g, f"tag {g.name}") for g in d.tags],
    }


def _counts(cases: Sequence[CaseDiff]) -> dict[str, int]:
    counts: dict[str, int] = {o: sum(c.outcome == o for c in cases) for o in OUTCOMES}
    counts["truncated"] = sum(c.label == "truncated" for c in cases)
    return counts


def _delta(d: PairedDelta | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "n": d.n,
        "base_mean": _num(d.base_mean),
        "cand_mean": _num(d.cand_mean),
        "delta": _num(d.delta),
        "ci": [_num(x) for x in d.interval] if d.interval is not None else None,
        "relative": _num(d.relative),
        "relative_ci": [_num(x) for x in d.relative_interval] if d.relative_interval is not None else None,
    }


def _trajectory(d: Diff) -> dict[str, Any]:
    return {
        "confidence": 0.95,
        "method": "paired over the cases both sides judged; t interval, standard error clustered when cases "
        "share a cluster (relative: delta method for a ratio of means)",
        "steps": _delta(d.deltas.steps),
        "model_calls": _delta(d.deltas.model_calls),
        "tool_calls": _delta(d.deltas.tool_calls),
        "tokens": _delta(d.deltas.tokens),
        "cost_usd": _delta(d.deltas.cost),
        "sentences": delta_phrases(d),
    }


def _case_trajectory(c: CaseDiff) -> dict[str, Any] | None:
    change = trajectory(c)
    if change is None:
        return None
    sentences = trajectory_sentences(change, limit=None)
    base, cand = shown(c.base), shown(c.cand)
    return {
        "changed": change.changed,
        "sentences": [s.text for s in sentences],
        "parts": [list(s.parts) for s in sentences],
        "model_calls": {"base": change.model_calls[0], "cand": change.model_calls[1]},
        "tool_calls": {"base": change.tool_calls[0], "cand": change.tool_calls[1]},
        "calls": {
            "base": [t.name for t in call_sequence(base)] if base else [],
            "cand": [t.name for t in call_sequence(cand)] if cand else [],
        },
        "repeats": {"base": base.repeat if base else None, "cand": cand.repeat if cand else None},
    }


def _truncations(record: RunRecord) -> list[dict[str, Any]]:
    return [{"max_tokens": limit, "outputs": n} for limit, n in truncations(record)]


def _case(c: CaseDiff) -> dict[str, Any]:
    return {
        "case_id": c.case_id,
        "outcome": c.outcome,
        "label": c.label,
        "truncated": c.truncated,
        "tags": list(c.tags),
        "cluster": c.cluster,
        "flaky": c.flaky,
        "expected": _jsonable(c.expected),
        "base": _side(c.base),
        "cand": _side(c.cand),
        **({"trajectory": moved} if (moved := _case_trajectory(c)) is not None else {}),
    }


def _side(s: Side | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "status": side_verdict(s),
        "pass_rate": _num(s.pass_rate),
        "score": _num(s.score),
        "error": s.error,
        "results": [_result(r) for r in s.results],
    }


def _result(r: CaseResult) -> dict[str, Any]:
    return {
        "repeat": r.repeat,
        "status": r.status,
        "score": _num(r.score),
        "output": r.output,
        "finish_reason": r.finish_reason,
        "truncated": r.truncated,
        "max_tokens": max_tokens(r),
        "error": r.error,
        "grades": [
            {
                "grader": g.grader,
                "type": g.type,
                "passed": g.passed,
                "score": _num(g.score),
                "reason": g.reason,
                "error": g.error,
            }
            for g in r.grades
        ],
        "latency_ms": _num(r.latency_ms),
        "cost_usd": _num(r.cost_usd),
        "input_tokens": r.usage.input_tokens if r.usage else None,
        "output_tokens": r.usage.output_tokens if r.usage else None,
        **(
            {"tool_calls": [_jsonable(t.model_dump(mode="json")) for t in r.tool_calls]}
            if r.tool_calls
            else {}
        ),
        **({"steps": [_jsonable(s.model_dump(mode="json")) for s in r.steps]} if r.steps else {}),
        **({"replay": r.replay.model_dump(mode="json")} if r.replay is not None else {}),
    }
