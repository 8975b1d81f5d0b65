"""The gate report as JUnit XML, for CI systems that show test results.

One `<testsuite>` per prompt/eval set pair, named `prompt_id/evalset_id`:

- one `<testcase>` per gate rule, named `gate: <rule>`: `<failure>` when the
  rule failed, `<error>` when it could not judge (too many errors, a run cut
  short);
- one `<testcase>` per case (classname the eval set id, name the case id,
  time the candidate's latency): `<failure>` only for a case that regressed,
  `<error>` for one that could not be evaluated, `<skipped>` for one skipped
  or removed. A case that failed in the baseline too is not a failure of this
  change; it passes with a `<system-out>` note. So does every failing case of
  a pair with no baseline, which only the absolute rules gate. A case whose
  grades wait for a person gets a `<system-out>` note naming the graders and
  why (its outcome is judged on the provisional grades meanwhile).

A case that regressed on a cut-off output (`max_tokens`) is still a `<failure>`
(the gate counts it) but of type `truncated`, its message saying so; any other
case with a cut-off output gets a `<system-out>` note, and the suite a
`truncated` property ("candidate run: 3 outputs truncated at max_tokens=300").

Agents: a regressed case's failure says how its trajectory changed ("trajectory:
no longer calls lookup_policy before issue_refund"), any other case whose
trajectory changed gets a `<system-out>` note saying how, and a pair whose runs
recorded trajectories has a `trajectory` property with the paired per-case
figures ("steps per case 3.0 -> 4.1 (+1.1, 95% CI +0.8..+1.4); ...").

The output is deterministic: attributes in a fixed order, no timestamps or
host names, so it can be compared as a golden file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Literal

from agent_evals.diff import CaseDiff
from agent_evals.gate import GateReport, PairReport, RuleResult
from agent_evals.report._common import (
    TRUNCATION_HINT,
    ReviewNeed,
    case_diffs,
    clip,
    delta_phrases,
    expected_text,
    failing_grades,
    latency_s,
    needs_review,
    one_line,
    pair_name,
    rule_labels,
    shown,
    side_status,
    side_verdict,
    trajectory_text,
    truncated_note,
    truncation_lines,
)

__all__ = ["render"]

# Outputs can be megabytes; CI UIs show the first screenful anyway and the JSON report keeps them all.
OUTPUT_CHARS = 20_000
MESSAGE_CHARS = 1_000

# Characters XML 1.0 cannot carry at all, not even as references (NUL, most C0 controls, lone surrogates).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _message(value: str) -> str:
    return _x(one_line(value, MESSAGE_CHARS))


@dataclass
class _Counts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time: float = 0.0

    def add(self, other: _Counts) -> None:
        self.tests += other.tests
        self.failures += other.failures
        self.errors += other.errors
        self.skipped += other.skipped
        self.time += other.time


@dataclass(frozen=True)
class _Result:
    tag: Literal["failure", "error", "skipped"]
    message: str
    type: str | None = None
    body: str = ""


@dataclass
class _Case:
    """A testcase before it becomes XML: its outcome and any notes."""

    name: str
    classname: str
    time: float = 0.0
    result: _Result | None = None
    out: list[str] = field(default_factory=list)

    def is_(self, tag: str) -> bool:
        return self.result is not None and self.result.tag == tag

    def element(self) -> ET.Element:
        el = ET.Element(
            "testcase", {"classname": _x(self.classname), "name": _x(self.name), "time": _t(self.time)}
        )
        if self.result is not None:
            r = self.result
            attrs = {"message": _message(r.message)}
            if r.type:
                attrs["type"] = r.type
            child = ET.SubElement(el, r.tag, attrs)
            if r.body:
                child.text = _x(r.body)
        if self.out:
            ET.SubElement(el, "system-out").text = _x("\n".join(self.out))
        return el


def _t(seconds: float) -> str:
    return f"{seconds:.3f}"


def render(report: GateReport) -> str:
    """The report as JUnit XML.

    Args:
        report: the gate's outcome for every prompt/eval set pair.

    Returns:
        The XML document, with its declaration, ending in a newline.
    """
    root = ET.Element("testsuites", {"name": "agent-evals"})
    total = _Counts()
    for pair in report.pairs:
        suite, counts = _suite(pair, report)
        root.append(suite)
        total.add(counts)
    _set_counts(root, total)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _set_counts(el: ET.Element, counts: _Counts) -> None:
    for key in ("tests", "failures", "errors", "skipped"):
        el.set(key, str(getattr(counts, key)))
    el.set("time", _t(counts.time))


def _suite(pair: PairReport, report: GateReport) -> tuple[ET.Element, _Counts]:
    review: dict[str, list[ReviewNeed]] = {}
    for need in needs_review(pair):
        review.setdefault(need.case_id, []).append(need)
    cases = _rule_cases(pair) + [_case(pair, c, review.get(c.case_id, [])) for c in case_diffs(pair)]
    counts = _Counts(
        tests=len(cases),
        failures=sum(c.is_("failure") for c in cases),
        errors=sum(c.is_("error") for c in cases),
        skipped=sum(c.is_("skipped") for c in cases),
        time=sum(c.time for c in cases),
    )
    suite = ET.Element("testsuite", {"name": _x(pair_name(pair))})
    _set_counts(suite, counts)
    props = ET.SubElement(suite, "properties")
    for name, value in _properties(pair, report):
        ET.SubElement(props, "property", {"name": name, "value": _message(value)})
    for case in cases:
        suite.append(case.element())
    if pair.note:
        ET.SubElement(suite, "system-out").text = _x(pair.note)
    return suite, counts


def _properties(pair: PairReport, report: GateReport) -> list[tuple[str, str]]:
    props = [
        ("prompt", pair.prompt_id),
        ("evalset", pair.evalset_id),
        ("change", pair.change),
        ("verdict", pair.verdict.status),
        ("headline", pair.verdict.headline),
    ]
    if pair.evalset_path:
        props.append(("evalset_path", pair.evalset_path))
    if pair.diff is not None:
        props.append(("baseline_run", pair.diff.base.header.run_id))
    cand = pair.cand or (pair.diff.cand if pair.diff else None)
    if cand is not None:
        props.append(("candidate_run", cand.header.run_id))
    if report.base_ref:
        props.append(("base_ref", report.base_ref))
    if report.merge_base:
        props.append(("merge_base", report.merge_base))
    cut = truncation_lines(pair)
    if cut:
        props.append(("truncated", "; ".join(cut)))
    per_case = delta_phrases(pair.diff) if pair.diff is not None else []
    if per_case:
        props.append(("trajectory", "; ".join(per_case)))
    return props


def _rule_cases(pair: PairReport) -> list[_Case]:
    rules = pair.verdict.rules
    return [_rule_case(pair, rule, label) for rule, label in zip(rules, rule_labels(rules), strict=True)]


def _rule_case(pair: PairReport, rule: RuleResult, label: str) -> _Case:
    case = _Case(name=f"gate: {label}", classname=pair.evalset_id)
    if rule.passed:
        case.out.append(rule.message)
        return case
    body = f"{rule.message}\ncases: {', '.join(rule.cases)}" if rule.cases else rule.message
    case.result = _Result("error" if rule.severity == "error" else "failure", rule.message, "gate", body)
    return case


def _case(pair: PairReport, c: CaseDiff, review: list[ReviewNeed]) -> _Case:
    case = _Case(name=c.case_id, classname=pair.evalset_id, time=latency_s(c.cand))
    baseline = pair.diff is not None
    cand_note = truncated_note(shown(c.cand, failing=True))
    moved = trajectory_text(c)
    if c.outcome == "regressed":
        reasons = "; ".join(f"{g}: {r}" for g, r in failing_grades(shown(c.cand, failing=True)))
        path = f"; trajectory: {moved}" if moved else ""
        if c.label == "truncated":
            message = f"truncated: the candidate's {cand_note or 'output was cut off'}" + (
                f"; {reasons}" if reasons else ""
            )
            case.result = _Result(
                "failure", message + path, "truncated", f"{TRUNCATION_HINT}\n{_evidence(c)}"
            )
        else:
            message = "regressed: " + (reasons or "fails in the candidate")
            case.result = _Result("failure", message + path, "regression", _evidence(c))
    elif c.outcome == "removed":
        case.result = _Result("skipped", "removed: in the baseline run only")
    elif c.cand is not None and c.cand.passed is None:
        if side_verdict(c.cand) == "skipped":
            case.result = _Result("skipped", "skipped in the candidate run (budget)")
        else:
            message = f"could not evaluate the candidate: {c.cand.error or 'error'}"
            case.result = _Result("error", message, "error", _evidence(c))
    elif c.base is not None and c.base.passed is None:
        # The candidate was judged but there is nothing to compare it with.
        message = f"could not evaluate the baseline: {c.base.error or side_status(c.base)}"
        if side_verdict(c.base) == "skipped":
            case.result = _Result("skipped", message)
        else:
            case.result = _Result("error", message, "error", _evidence(c))
    elif c.outcome == "still_failing":
        case.out.append("still failing: failed in the baseline too, so not a regression of this change")
        case.out += _reason_lines(c)
    elif c.outcome == "fixed":
        case.out.append("fixed: failed in the baseline, passes in the candidate")
    elif c.outcome == "new" and c.cand is not None and c.cand.passed is False:
        case.out.append(
            "fails; a new case with no baseline, gated by the absolute rules only"
            if baseline
            else "fails; this pair has no baseline, so only the absolute rules (gate: ...) gate it"
        )
        case.out += _reason_lines(c)
    if moved and c.outcome != "regressed":
        case.out.append(f"trajectory changed: {moved}")
    if cand_note and c.label != "truncated":
        case.out.append(f"candidate {cand_note}")
    if c.flaky:
        case.out.append(
            f"flaky: repeats disagree (baseline {side_status(c.base)}, candidate {side_status(c.cand)})"
        )
    if review:
        case.out.append(
            "needs human review (provisional until decided; "
            f"run 'agent-evals review --evalset {pair.evalset_id}'):"
        )
        case.out += [f"- {r.grader}: {r.why}" for r in review]
    return case


def _reason_lines(c: CaseDiff) -> list[str]:
    return [f"- {g}: {r}" for g, r in failing_grades(shown(c.cand, failing=True))]


def _evidence(c: CaseDiff) -> str:
    """Expected, both outputs and the graders' reasons, as plain text for the failure body."""
    base, cand = shown(c.base, failing=False), shown(c.cand, failing=True)
    parts = [f"outcome: {c.label} (baseline {side_status(c.base)}, candidate {side_status(c.cand)})"]
    if c.tags:
        parts.append(f"tags: {', '.join(c.tags)}")
    moved = trajectory_text(c, limit=None)
    if moved:
        parts.append(f"trajectory: {moved}")
    for side, result in (("baseline", base), ("candidate", cand)):
        note = truncated_note(result)
        if note:
            parts.append(f"{side} {note}")
    for label, value in (
        ("expected", expected_text(c.expected)),
        ("baseline output", base.output if base else None),
        ("candidate output", cand.output if cand else None),
    ):
        if value is None:
            continue
        body, cut = clip(value, OUTPUT_CHARS)
        parts.append(
            f"--- {label}{f' (first {len(body):,} of {len(value):,} characters)' if cut else ''}\n{body}"
        )
    for label, run in (("baseline error", c.base), ("candidate error", c.cand)):
        if run is not None and run.error:
            parts.append(f"--- {label}\n{run.error}")
    reasons = failing_grades(cand)
    if reasons:
        parts.append("--- graders\n" + "\n".join(f"- {g}: {r}" for g, r in reasons))
    return "\n".join(parts)
