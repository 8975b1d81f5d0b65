"""What every gate reporter needs to say the same thing the same way. Pure.

Markdown, JUnit, JSON and the terminal all show a case as "expected, the
baseline's output, the candidate's output, why the graders failed it"; the
choices of which repeat to show and how to name a rule live here so the four
views never disagree.

What changed between two outputs is worked out here once (`output_change`):
for two JSON documents, the fields that differ, each by its path
(`items[2].qty: 1 -> 3`); for text, a word-level diff. The Markdown comment,
the terminal and the HTML page each draw that one result. So is the sentence
about outputs cut off at `max_tokens` (`truncation_lines`).

So are the sentences about a case's trajectory (`trajectory_sentences`: "no longer
calls lookup_policy before issue_refund", "lookup_order: id 7 -> 8", "2 more model
calls"), from the repeats each report shows (`shown`), and the pair's paired
per-case figures (`delta_phrases`: "steps per case 3.0 -> 4.1 (+1.1, 95% CI ...)").
A sentence keeps its tool names and values apart from its prose (`Sentence.parts`),
so the Markdown comment can set them in code spans and the others print them as text.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any, Literal

from agent_evals.errors import one_line
from agent_evals.graders.base import review_reason
from agent_evals.record import CaseResult, RunRecord
from agent_evals.summary import Summary

if TYPE_CHECKING:
    # The diff and the gate are imported where they are used: `run` prints its summary and errors
    # from here and loads neither (a tenth of its start-up).
    from agent_evals.calibrate import Calibration
    from agent_evals.diff import CaseDiff, Diff, PairedDelta, Side, TrajectoryChange
    from agent_evals.gate import PairReport, RuleResult

__all__ = [
    "DIFF_TOKENS",
    "TRUNCATION_HINT",
    "DiffOp",
    "ErrorGroup",
    "FieldChange",
    "OutputChange",
    "ReviewNeed",
    "Sentence",
    "calibrations_by_grader",
    "case_diffs",
    "change_line",
    "clip",
    "condense",
    "delta_phrases",
    "error_groups",
    "error_key",
    "expected_text",
    "failing_grades",
    "field_changes",
    "is_json",
    "latency_s",
    "money",
    "ms",
    "needs_review",
    "not_evaluated_lines",
    "one_line",
    "output_change",
    "pair_name",
    "pretty_output",
    "review_cases",
    "rule_labels",
    "run_phrase",
    "score",
    "score_delta",
    "shown",
    "side_status",
    "side_verdict",
    "sides",
    "trajectory",
    "trajectory_changed",
    "trajectory_sentences",
    "trajectory_text",
    "truncated_note",
    "truncation_lines",
    "value_text",
    "word_diff",
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
    from agent_evals.diff import Side

    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for result in record.cases:
        grouped[result.case_id].append(result)
    return [(case_id, Side(tuple(results))) for case_id, results in grouped.items()]


def case_diffs(pair: PairReport) -> Sequence[CaseDiff]:
    """The pair's cases as diffs; a pair with no baseline gets `new` diffs of its candidate."""
    from agent_evals.diff import CaseDiff

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


def error_groups(errors: Iterable[tuple[str, str]]) -> list[ErrorGroup]:
    """The distinct errors of the cases that could not be evaluated, most frequent first.

    A provider that is down fails every case with the same words; a report says
    them once, with a count, instead of once per case.

    Args:
        errors: (case id, error) of each case that could not be evaluated (`summary.Tally.errors`).
    """
    grouped: dict[str, list[str]] = defaultdict(list)
    for case_id, error in errors:
        grouped[error_key(error)].append(case_id)
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


# --- what changed between two outputs -----------------------------------------------------------

DiffOp = tuple[Literal["=", "-", "+"], str]

DIFF_TOKENS = 5_000
"""Above this many word tokens on a side, outputs are diffed line by line (difflib is quadratic)."""

# Words, line ends, runs of other whitespace, and single punctuation marks: `{"label": "refund"}`
# differs in `refund` alone, and a line end matches a line end whatever indentation follows it.
_TOKEN = re.compile(r"\w+|\n|[^\S\n]+|[^\w\s]")


def word_diff(a: str, b: str) -> list[DiffOp]:
    """The word-level difference of two texts, line by line first.

    Lines are matched first, as `git diff` does, and words only inside the lines that
    changed: in an indented JSON document a removed field is a removed line and an
    edited value is a word change on its own line, however far apart the two are.

    Args:
        a: the old text (the baseline's output).
        b: the new text (the candidate's).

    Returns:
        Segments in reading order: `("=", text)` in both, `("-", text)` only in
        `a`, `("+", text)` only in `b`. The `=` and `-` segments joined give `a`;
        the `=` and `+` segments give `b`. A deletion comes before the insertion
        that replaces it, and a change that spans several words separated by
        spaces is one segment on each side, as `git diff --word-diff` shows it.
    """
    if a == b:
        # Most cases of a prompt change answer the same on both sides: no need to match anything.
        return [("=", a)] if a else []
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    hunks: list[list[str]] = []  # ["=", text] or ["~", deleted, inserted]
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        if tag == "equal":
            _keep(hunks, "".join(la[i1:i2]))
        else:
            _words(hunks, "".join(la[i1:i2]), "".join(lb[j1:j2]))
    ops: list[DiffOp] = []
    for hunk in hunks:
        if hunk[0] == "=":
            ops.append(("=", hunk[1]))
            continue
        if hunk[1]:
            ops.append(("-", hunk[1]))
        if hunk[2]:
            ops.append(("+", hunk[2]))
    return ops


def _keep(hunks: list[list[str]], text: str) -> None:
    if hunks and hunks[-1][0] == "=":
        hunks[-1][1] += text
    elif text:
        hunks.append(["=", text])


def _change(hunks: list[list[str]], gone: str, added: str) -> None:
    if len(hunks) >= 2 and hunks[-1][0] == "=" and hunks[-1][1].isspace() and hunks[-2][0] == "~":
        # "a b c" -> "x y z": one change "a b c" -> "x y z", not three with kept spaces between.
        space = hunks.pop()[1]
        hunks[-1][1] += space + gone
        hunks[-1][2] += space + added
    elif hunks and hunks[-1][0] == "~":
        hunks[-1][1] += gone
        hunks[-1][2] += added
    else:
        hunks.append(["~", gone, added])


def _words(hunks: list[list[str]], a: str, b: str) -> None:
    """The word-level difference of two blocks of changed lines, appended to `hunks`."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    if not ta or not tb or max(len(ta), len(tb)) > DIFF_TOKENS:
        _change(hunks, a, b)  # lines only added or removed, or too long to match word by word
        return
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if tag == "equal":
            _keep(hunks, "".join(ta[i1:i2]))
        else:
            _change(hunks, "".join(ta[i1:i2]), "".join(tb[j1:j2]))


def condense(ops: Sequence[DiffOp], context: int = 60) -> list[DiffOp]:
    """A word diff with long unchanged stretches cut to `context` characters around each change.

    What was cut becomes `…` (in an `=` segment), at a word boundary where there is one,
    so a one-word change in a long answer reads as the change and a few words either side.
    """
    out: list[DiffOp] = []
    for i, (kind, segment) in enumerate(ops):
        if kind != "=":
            out.append((kind, segment))
            continue
        first, last = i == 0, i == len(ops) - 1
        keep_head = 0 if first else context  # after a change
        keep_tail = 0 if last else context  # before a change
        if len(segment) <= keep_head + keep_tail + 3 or (first and last):
            out.append(("=", segment))
            continue
        head = _cut_after(segment[:keep_head]) if keep_head else ""
        tail = _cut_before(segment[len(segment) - keep_tail :]) if keep_tail else ""
        out.append(("=", f"{head}…{tail}"))
    return out


_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


def _cut_after(text: str) -> str:
    """`text` up to its last sentence end, else its last whitespace (no word cut in half), else whole."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() > len(text) // 2]
    if ends:
        return text[: ends[-1]]
    space = max(text.rfind(" "), text.rfind("\n"))
    return text[: space + 1] if space > 0 else text


def _cut_before(text: str) -> str:
    """`text` from its first sentence start, else its first whitespace, else whole: what a reader picks up."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() < len(text) // 2]
    if ends:
        return text[ends[0] :]
    space = min((i for i in (text.find(" "), text.find("\n")) if i >= 0), default=-1)
    return text[space:] if 0 <= space < len(text) - 1 else text


_MISSING: Any = object()


@dataclass(frozen=True)
class FieldChange:
    """One field that differs between two JSON documents.

    Attributes:
        path: where it is (`disposition`, `items[2].qty`, `["odd key"]`; `$` for the whole document).
        kind: `changed` (both have it), `added` (only the candidate), `removed` (only the baseline).
        old: the baseline's value (None when added).
        new: the candidate's value (None when removed).
    """

    path: str
    kind: Literal["changed", "added", "removed"]
    old: Any = None
    new: Any = None


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def _key_path(parent: str, key: str) -> str:
    if _KEY.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


def _same(a: Any, b: Any) -> bool:
    # JSON's true is not 1 and 1 is not 1.0 as text, though Python calls them equal.
    return type(a) is type(b) and a == b


def field_changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """The fields that differ between two parsed JSON values, in document order.

    Objects are compared key by key (the baseline's keys first, then keys only the
    candidate has); arrays item by item, extra items being added or removed.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for key in [*old, *(k for k in new if k not in old)]:
            child = _key_path(path, str(key))
            if key not in new:
                out.append(FieldChange(child, "removed", old=old[key]))
            elif key not in old:
                out.append(FieldChange(child, "added", new=new[key]))
            else:
                out += field_changes(old[key], new[key], child)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            child = f"{path}[{i}]"
            if i >= len(new):
                out.append(FieldChange(child, "removed", old=old[i]))
            elif i >= len(old):
                out.append(FieldChange(child, "added", new=new[i]))
            else:
                out += field_changes(old[i], new[i], child)
        return out
    if isinstance(old, (dict, list)) or isinstance(new, (dict, list)) or not _same(old, new):
        return [FieldChange(path or "$", "changed", old=old, new=new)]
    return []


def _json_value(text: str | None) -> Any:
    """`text` parsed when it is a JSON object or array, else `_MISSING` (plain text, or nothing)."""
    if text is None:
        return _MISSING
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return _MISSING
    try:
        return json.loads(stripped)
    except ValueError:
        return _MISSING


def value_text(value: Any, width: int | None = None) -> str:
    """A JSON value on one line as a reader wants it: a plain string bare (`refund`), anything else as JSON.

    A string that would read as another value (`1`, `true`, `null`, empty, padded, quoted,
    several lines) keeps its quotes, so `"1" -> 1` still shows the change of type.
    """
    if isinstance(value, str) and value and value == value.strip() and "\n" not in value:
        try:
            json.loads(value)
        except ValueError:
            return one_line(value, width)
    return one_line(json.dumps(value, ensure_ascii=False), width)


def is_json(text: str) -> bool:
    """Whether `text` is a JSON object or array (what `pretty_output` indents)."""
    return _json_value(text) is not _MISSING


def pretty_output(text: str) -> str:
    """A JSON object or array indented for reading; any other text as it is."""
    value = _json_value(text)
    return text if value is _MISSING else json.dumps(value, ensure_ascii=False, indent=2)


SIMILAR = 0.3
"""Below this share of characters in common, two texts are shown as replaced rather than word-diffed."""


@dataclass(frozen=True)
class OutputChange:
    """What changed from the baseline's output to the candidate's.

    `kind` is `json` when both are JSON objects or arrays (`fields` lists what differs),
    `text` otherwise (`words` is the word diff), `same` when the two are identical.
    """

    kind: Literal["json", "text", "same"]
    fields: tuple[FieldChange, ...] = ()
    words: tuple[DiffOp, ...] = ()


def output_change(old: str | None, new: str | None) -> OutputChange | None:
    """How the candidate's output differs from the baseline's; None when either has no output."""
    if old is None or new is None:
        return None
    if old == new:
        return OutputChange("same")
    a, b = _json_value(old), _json_value(new)
    if a is not _MISSING and b is not _MISSING:
        changes = field_changes(a, b)
        # Same document, other spelling (spacing, key order): the text diff shows what differs.
        if changes:
            return OutputChange("json", fields=tuple(changes))
    words = word_diff(old, new)
    kept = sum(len(segment) for kind, segment in words if kind == "=")
    if kept < SIMILAR * max(len(old), len(new)):
        # Two different answers, not an edit of one: word-level marks would be noise.
        words = [("-", old), ("+", new)]
    return OutputChange("text", words=tuple(words))


def change_line(change: FieldChange, width: int | None = None) -> tuple[str, str, str]:
    """(path, old, new) as text: `old` is empty for an added field, `new` for a removed one."""
    old = "" if change.kind == "added" else value_text(change.old, width)
    new = "" if change.kind == "removed" else value_text(change.new, width)
    return change.path, old, new


# --- outputs cut off at max_tokens ----------------------------------------------------------------

TRUNCATION_HINT = (
    "a cut-off output fails its graders, as it would in production, so the gate counts it; "
    "if the answers need more room, raise max_tokens in the prompt"
)


def _outputs(n: int) -> str:
    return f"{n:,} output" if n == 1 else f"{n:,} outputs"


def truncated_note(result: CaseResult | None) -> str | None:
    """`output truncated at max_tokens=300` when `result`'s output was cut off, else None."""
    if result is None or not result.truncated:
        return None
    from agent_evals.diff import max_tokens

    limit = max_tokens(result)
    at = f"max_tokens={limit}" if limit is not None else "the provider's output limit"
    return f"output truncated at {at}"


def truncation_lines(pair: PairReport) -> list[str]:
    """`3 outputs truncated at max_tokens=300`, per run of the pair (candidate first) and limit.

    Every run of a case counts (repeats and confirmation runs too); an output cut off
    with no `max_tokens` in its request stopped at the provider's own limit.
    """
    from agent_evals.diff import truncations

    runs = [("candidate", pair.cand or (pair.diff.cand if pair.diff else None))]
    if pair.diff is not None:
        runs.append(("baseline", pair.diff.base))
    lines = []
    for side, record in runs:
        if record is None:
            continue
        parts = [
            f"{_outputs(n)} truncated at max_tokens={limit}"
            if limit is not None
            else f"{_outputs(n)} truncated at the provider's output limit (no max_tokens set)"
            for limit, n in truncations(record)
        ]
        if parts:
            lines.append(f"{side} run: {', '.join(parts)}")
    return lines


# --- trajectories -----------------------------------------------------------------------------------

MAX_SENTENCES = 4
"""Trajectory sentences per case, most important first; the rest are counted."""
MAX_ARGUMENTS = 3
"""Changed arguments named per call; the rest are counted."""
ARGUMENT_CHARS = 40
"""Characters of each argument value in a sentence."""


@dataclass(frozen=True)
class Sentence:
    """A sentence about a trajectory, its prose and its names apart.

    `parts` alternate: prose at even indexes, a tool name, argument path or value at odd
    ones. `text` joins them; the Markdown comment sets the odd ones in code spans.
    """

    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(self.parts)


def trajectory(c: CaseDiff) -> TrajectoryChange | None:
    """How the case's trajectory changed, between the repeats the reports show (`shown`)."""
    from agent_evals.diff import trajectory_change

    return trajectory_change(shown(c.base), shown(c.cand))


def trajectory_changed(c: CaseDiff) -> bool:
    change = trajectory(c)
    return change is not None and change.changed


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n:,} times")


def _more_or_fewer(before: int, after: int, what: str) -> str | None:
    if before == after:
        return None
    n = abs(after - before)
    return f"{n:,} {'more' if after > before else 'fewer'} {what}{'' if n == 1 else 's'}"


def _where(place_before: str | None, place_after: str | None) -> tuple[str, ...]:
    if place_before is not None:
        return (" before ", place_before, "")
    if place_after is not None:
        return (" after ", place_after, "")
    return ("",)


def _arguments(tool: str, call: int, calls: int, old: Any, new: Any) -> Sentence:
    # Every piece starts and ends with prose, so pieces join by merging their prose ends.
    parts = ["", tool, f" (call {call}): " if calls > 1 else ": "]
    changes = field_changes(old, new)
    for i, f in enumerate(changes[:MAX_ARGUMENTS]):
        path, was, now = change_line(f, ARGUMENT_CHARS)
        sep = ", " if i else ""
        path = "arguments" if path == "$" else path
        if f.kind == "added":
            piece = [sep, path, " added (", now, ")"]
        elif f.kind == "removed":
            piece = [sep, path, " removed (was ", was, ")"]
        else:
            piece = [sep, path, " ", was, " -> ", now, ""]
        parts[-1] += piece[0]
        parts += piece[1:]
    more = len(changes) - MAX_ARGUMENTS
    if more > 0:
        parts[-1] += f", and {more:,} more"
    return Sentence(tuple(parts))


def trajectory_sentences(
    change: TrajectoryChange | None, limit: int | None = MAX_SENTENCES
) -> list[Sentence]:
    """The change as sentences a reviewer reads at a glance, most important first.

    Tools no longer called, then calls reordered, tools newly called, tools called a
    different number of times, changed arguments, and last the counts of model and tool
    calls. With more than `limit`, the rest are counted in a last sentence.
    """
    if change is None or not change.changed:
        return []
    out: list[Sentence] = []
    for place in change.removed:
        out.append(Sentence(("no longer calls ", place.tool, *_where(place.before, place.after))))
    for move in change.reordered:
        out.append(Sentence(("calls ", move.tool, " before ", move.other, " (was after)")))
    for place in change.added:
        out.append(Sentence(("now calls ", place.tool, *_where(place.before, place.after))))
    for count in change.recounted:
        out.append(Sentence(("calls ", count.tool, f" {_times(count.cand)} (was {_times(count.base)})")))
    for arg in change.arguments:
        out.append(_arguments(arg.tool, arg.call, arg.calls, arg.base, arg.cand))
    counts = [
        phrase
        for phrase in (
            _more_or_fewer(*change.model_calls, "model call"),
            _more_or_fewer(*change.tool_calls, "tool call"),
        )
        if phrase is not None
    ]
    if counts:
        out.append(Sentence((", ".join(counts),)))
    if limit is not None and len(out) > limit:
        rest = len(out) - limit
        out = [*out[:limit], Sentence((f"and {rest:,} more change{'' if rest == 1 else 's'}",))]
    return out


def trajectory_text(c: CaseDiff, limit: int | None = MAX_SENTENCES) -> str:
    """The case's trajectory sentences as one line (`; ` between them); empty when nothing changed."""
    return "; ".join(s.text for s in trajectory_sentences(trajectory(c), limit))


def _per_case(d: PairedDelta, what: str, value: Callable[[float], str], delta: Callable[[float], str]) -> str:
    ci = f", 95% CI {delta(d.interval[0])}..{delta(d.interval[1])}" if d.interval is not None else ""
    return f"{what} per case {value(d.base_mean)} -> {value(d.cand_mean)} ({delta(d.delta)}{ci})"


def _cost_phrase(d: PairedDelta) -> str:
    head = f"cost per case {money(d.base_mean)} -> {money(d.cand_mean)}"
    if d.relative is None:
        return head + (" (the baseline cost nothing)" if d.cand_mean else "")
    span = d.relative_interval
    ci = f", 95% CI {100 * span[0]:+.1f}%..{100 * span[1]:+.1f}%" if span is not None else ""
    return f"{head} ({100 * d.relative:+.1f}%{ci})"


def delta_phrases(d: Diff) -> list[str]:
    """The pair's paired per-case figures, one phrase each; empty when neither run has a trajectory.

    `steps per case 3.0 -> 4.1 (+1.1, 95% CI +0.8..+1.4)`, then tool calls, tokens and cost
    (its change relative: `+25.0%`), each over the cases both sides judged.
    """
    if not d.trajectories:
        return []
    one, whole = (lambda x: f"{x:.1f}"), (lambda x: f"{x:,.0f}")
    out = []
    if d.deltas.steps is not None:
        out.append(_per_case(d.deltas.steps, "steps", one, lambda x: f"{x:+.1f}"))
    if d.deltas.tool_calls is not None:
        out.append(_per_case(d.deltas.tool_calls, "tool calls", one, lambda x: f"{x:+.1f}"))
    if d.deltas.tokens is not None:
        out.append(_per_case(d.deltas.tokens, "tokens", whole, lambda x: f"{x:+,.0f}"))
    if d.deltas.cost is not None:
        out.append(_cost_phrase(d.deltas.cost))
    return out


def run_phrase(s: Summary) -> str | None:
    """`steps per case 4.0 (tool calls 3.0)` for a run with no baseline that recorded trajectories."""
    steps, tools = s.steps_per_case, s.tool_calls_per_case
    if not s.trajectories or steps is None or tools is None:
        return None
    return f"steps per case {steps:.1f} (tool calls {tools:.1f})"
