"""What every gate reporter needs to say the same thing the same way. Pure.

Markdown, JUnit, JSON and the terminal all show a case as "expected, the
baseline's output, the candidate's output, why the graders failed it"; the
choices of which repeat to show and how to name a rule live here so the four
views never disagree.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent_evals.calibrate import Calibration
from agent_evals.diff import CaseDiff, Side
from agent_evals.gate import PairReport, RuleResult
from agent_evals.graders.base import review_reason
from agent_evals.record import CaseResult, RunRecord

__all__ = [
    "ErrorGroup",
    "ReviewNeed",
    "calibrations_by_grader",
    "case_diffs",
    "clip",
    "error_groups",
    "error_key",
    "expected_text",
    "failing_grades",
    "latency_s",
    "money",
    "ms",
    "needs_review",
    "not_evaluated_lines",
    "one_line",
    "pair_name",
    "review_cases",
    "rule_labels",
    "score",
    "score_delta",
    "shown",
    "side_status",
    "side_verdict",
    "sides",
]


def pair_name(pair: PairReport) -> str:
    return f"{pair.prompt_id}/{pair.evalset_id}"


def score(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def score_delta(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def money(x: float | None) -> str:
    return "n/a" if x is None else f"${x:.4f}"


def ms(x: float | None) -> str:
    if x is None:
        return "n/a"
    # Local and cached providers answer in well under a millisecond; keep a digit so 0.4 is not "0 ms".
    return f"{x:.1f} ms" if x < 10 else f"{x:,.0f} ms"


def one_line(text: str, width: int | None = None) -> str:
    """Collapse whitespace (newlines included) and clip to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    if width is not None and len(flat) > width:
        return flat[: max(width - 1, 0)] + "…"
    return flat


def clip(text: str, limit: int) -> tuple[str, int]:
    """The first `limit` characters of `text` and how many were cut."""
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def expected_text(value: Any) -> str | None:
    """The expected value as its author wrote it: strings verbatim, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def shown(side: Side | None, *, failing: bool | None = None) -> CaseResult | None:
    """The repeat to show for a side: the first one that agrees with the side's verdict.

    With repeats, the first result of a case that regressed may well be a pass;
    showing it would hide the failure the reader is looking for.
    """
    if side is None:
        return None
    want = failing if failing is not None else (side.passed is False)
    status = "fail" if want else "pass"
    return next((r for r in side.results if r.status == status), side.first)


def side_verdict(side: Side | None) -> Literal["pass", "fail", "error", "skipped", "absent"]:
    """What a side amounts to: its repeats folded as the diff folds them."""
    if side is None:
        return "absent"
    if side.passed is None:
        return "error" if any(r.status == "error" for r in side.results) else "skipped"
    return "pass" if side.passed else "fail"


def side_status(side: Side | None) -> str:
    """`side_verdict`, and with repeats how many passed: `fail (1/3 repeats passed)`."""
    word = side_verdict(side)
    if side is None or side.passed is None or len(side.results) == 1:
        return word
    judged = side.judged
    passed = sum(r.status == "pass" for r in judged)
    return f"{word} ({passed}/{len(judged)} repeats passed)"


def failing_grades(result: CaseResult | None) -> list[tuple[str, str]]:
    """(grader, reason) for every grader that failed or could not grade `result`.

    A reason that already starts with the grader's name (an exact_match grader
    named after its field says `field: expected ...`) loses that prefix, so
    `grader: reason` does not say the name twice.
    """
    if result is None:
        return []
    out = []
    for g in result.grades:
        if g.error is not None:
            out.append((g.grader, f"grader error: {g.error}"))
        elif g.passed is False:
            out.append((g.grader, g.reason.removeprefix(f"{g.grader}: ")))
    if not out and result.status == "error" and result.error:
        out.append(("error", result.error))
    return out


def latency_s(side: Side | None) -> float:
    """Mean latency of a side's results, in seconds (JUnit's unit)."""
    if side is None:
        return 0.0
    values = [r.latency_ms for r in side.results if r.latency_ms is not None]
    return sum(values) / len(values) / 1000 if values else 0.0


def sides(record: RunRecord) -> list[tuple[str, Side]]:
    """A record's cases with repeats folded, in record order (for pairs with no baseline)."""
    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for result in record.cases:
        grouped[result.case_id].append(result)
    return [(case_id, Side(tuple(results))) for case_id, results in grouped.items()]


def case_diffs(pair: PairReport) -> Sequence[CaseDiff]:
    """The pair's cases as diffs; a pair with no baseline gets `new` diffs of its candidate."""
    if pair.diff is not None:
        return pair.diff.cases
    if pair.cand is None:
        return ()
    return tuple(
        CaseDiff(
            case_id=case_id,
            outcome="new",
            tags=side.first.tags,
            cluster=side.first.cluster,
            expected=side.first.expected,
            base=None,
            cand=side,
        )
        for case_id, side in sides(pair.cand)
    )


@dataclass(frozen=True)
class ReviewNeed:
    """A grader's grade of one candidate case that waits for a person (`agent-evals review`)."""

    case_id: str
    grader: str
    why: str
    reason: str
    repeats: tuple[int, ...]


def needs_review(pair: PairReport) -> list[ReviewNeed]:
    """The candidate's grades that still need human review, one per (case, grader), in record order.

    Only the candidate counts: it is the change under review, and its
    provisional grades are what the gate judged.
    """
    cand = pair.cand or (pair.diff.cand if pair.diff else None)
    if cand is None:
        return []
    found: dict[tuple[str, str], ReviewNeed] = {}
    for result in cand.cases:
        for g in result.grades:
            if not g.needs_review:
                continue
            key = (result.case_id, g.grader)
            seen = found.get(key)
            found[key] = (
                ReviewNeed(result.case_id, g.grader, review_reason(g.details), g.reason, (result.repeat,))
                if seen is None
                else ReviewNeed(
                    seen.case_id, seen.grader, seen.why, seen.reason, (*seen.repeats, result.repeat)
                )
            )
    return list(found.values())


def review_cases(needs: Sequence[ReviewNeed]) -> list[str]:
    """The distinct case ids among `needs`, in order."""
    return list(dict.fromkeys(n.case_id for n in needs))


_SIDE = re.compile(r"\b(baseline|candidate)\b")


def rule_labels(rules: Iterable[RuleResult]) -> list[str]:
    """A unique name per rule result.

    The completeness rules (`max_error_rate`, `complete_run`) are checked once
    per side under the same name; the side is only in the message, so read it
    from there, and number any duplicate left over.
    """
    rules = list(rules)
    counts: dict[str, int] = defaultdict(int)
    for r in rules:
        counts[r.rule] += 1
    labels: list[str] = []
    for r in rules:
        label = r.rule
        if counts[r.rule] > 1 and (m := _SIDE.search(r.message)):
            label = f"{r.rule} ({m.group(1)})"
        n, base = 2, label
        while label in labels:
            label, n = f"{base} #{n}", n + 1
        labels.append(label)
    return labels


def calibrations_by_grader(pair: PairReport) -> dict[str, Calibration]:
    """The pair's judge calibrations by grader name (empty when none were computed)."""
    return {c.grader: c for c in pair.calibrations}


# --- errors, each once ------------------------------------------------------------------------

_AFTER_ATTEMPTS = re.compile(r" \(after \d+ attempts\)")
MAX_ERROR_GROUPS = 10


@dataclass(frozen=True)
class ErrorGroup:
    """One distinct error and the cases (repeats counted) it stopped."""

    error: str
    case_ids: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.case_ids)


def error_key(error: str) -> str:
    """An error as it is grouped: one line, without the retry loop's `(after N attempts)`,
    which differs between calls that met the same failure."""
    return one_line(_AFTER_ATTEMPTS.sub("", error))


def error_groups(results: Iterable[CaseResult]) -> list[ErrorGroup]:
    """The distinct errors of the cases that could not be evaluated, most frequent first.

    A provider that is down fails every case with the same words; a report says
    them once, with a count, instead of once per case.
    """
    grouped: dict[str, list[str]] = defaultdict(list)
    for r in results:
        if r.status == "error":
            grouped[error_key(r.error or "unknown error")].append(r.case_id)
    groups = [ErrorGroup(error, tuple(ids)) for error, ids in grouped.items()]
    return sorted(groups, key=lambda g: -g.count)  # stable: ties keep the order first seen


def not_evaluated_lines(groups: Sequence[ErrorGroup], limit: int = MAX_ERROR_GROUPS) -> list[str]:
    """`500 case(s) not evaluated: <error> ×500`, or a head line and one line per distinct error.

    Args:
        groups: from `error_groups`.
        limit: most distinct errors listed; the rest are counted.
    """
    if not groups:
        return []
    total = sum(g.count for g in groups)
    head = f"{total:,} case(s) not evaluated"
    if len(groups) == 1:
        return [f"{head}: {groups[0].error} ×{groups[0].count:,}"]
    lines = [f"{head}:"] + [f"  {g.error} ×{g.count:,}" for g in groups[:limit]]
    rest = groups[limit:]
    if rest:
        lines.append(f"  … and {len(rest):,} more distinct errors ×{sum(g.count for g in rest):,}")
    return lines
