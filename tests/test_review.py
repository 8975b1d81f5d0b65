"""Human review: when a grade needs a person, the stored verdicts, the session, the reports."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from rich.console import Console

from agent_evals.errors import ConfigError, GraderError
from agent_evals.graders.base import case_outcome
from agent_evals.record import CaseResult, GradeRecord, RecordWriter, RunEnd, RunHeader, RunRecord
from agent_evals.report import json_report, junit, markdown
from agent_evals.report.terminal import print_gate, print_run
from agent_evals.review import (
    HumanVerdict,
    ReviewItem,
    Reviews,
    append_verdict,
    apply_reviews,
    apply_to_record,
    load_reviews,
    mark_disagreements,
    output_sha256,
    pending,
    review_session,
    reviews_path,
    run_review,
)
from agent_evals.summary import summarize
from tests.support import EVALSET, write_tree
from tests.test_graders import JUDGE, FakeJudge, grade, make, text_sample
from tests.test_reports import fail_report

AT = "2026-01-02T03:04:05Z"
OUTPUT = '{"disposition": "refund"}'


# --- when a grade needs review: the judge's confidence floor -----------------------------


def judged(verdict: str, **judge: Any) -> Any:
    fake = FakeJudge(verdict)
    g = make("rubric", judge={**JUDGE, **judge})
    return grade(g, text_sample("Sorry! Refund issued.", call_model=fake)), fake


def test_confidence_below_the_floor_needs_review_and_the_score_stands() -> None:
    result, _ = judged('{"reasoning": "Polite.", "score": 4, "confidence": 0.4}', min_confidence=0.7)
    assert result.needs_review
    assert result.score == pytest.approx(0.75)
    assert not result.passed
    assert result.reason == "judge scored 4/5 (pass >= 5, confidence 0.4): Polite."
    assert result.details["confidence"] == 0.4
    assert result.details["min_confidence"] == 0.7
    assert result.details["review_reason"] == "judge confidence 0.4 is below min_confidence 0.7"


def test_missing_confidence_needs_review_when_there_is_a_floor() -> None:
    result, _ = judged('{"reasoning": "Polite.", "score": 5}', min_confidence=0.7)
    assert result.needs_review
    assert (result.passed, result.score) == (True, 1.0)
    assert result.details["review_reason"] == "the judge gave no confidence (min_confidence 0.7)"


@pytest.mark.parametrize("confidence", [0.7, 0.95, 1])
def test_confidence_at_or_above_the_floor_needs_no_review(confidence: float) -> None:
    result, _ = judged(f'{{"reasoning": "ok", "score": 5, "confidence": {confidence}}}', min_confidence=0.7)
    assert not result.needs_review
    assert "review_reason" not in result.details


def test_without_a_floor_the_prompt_is_unchanged_and_confidence_never_needs_review() -> None:
    result, fake = judged('{"reasoning": "ok", "score": 5}')
    assert not result.needs_review
    system, user = (m.content for m in fake.calls[0][1].messages)
    assert "confidence" not in system + user
    # A confidence the judge volunteers is kept when it is readable, ignored when not.
    result, _ = judged('{"reasoning": "ok", "score": 5, "confidence": 0.2}')
    assert (result.needs_review, result.details["confidence"]) == (False, 0.2)
    result, _ = judged('{"reasoning": "ok", "score": 5, "confidence": "high"}')
    assert not result.needs_review
    assert "confidence" not in result.details


def test_with_a_floor_the_judge_is_asked_for_its_confidence() -> None:
    _, fake = judged('{"reasoning": "ok", "score": 5, "confidence": 0.9}', min_confidence=0.5)
    system, user = (m.content for m in fake.calls[0][1].messages)
    assert '"confidence": <number from 0 to 1' in system
    assert user.endswith(
        'Reply with the JSON object {"reasoning": ..., "score": 1-5, "confidence": 0-1} only.'
    )


@pytest.mark.parametrize(
    ("verdict", "problem"),
    [
        (
            '{"reasoning": "x", "score": 4, "confidence": "high"}',
            "confidence 'high' is not a number from 0 to 1",
        ),
        ('{"reasoning": "x", "score": 4, "confidence": 1.5}', "confidence 1.5 is not a number from 0 to 1"),
        ('{"reasoning": "x", "score": 4, "confidence": true}', "confidence true is not a number from 0 to 1"),
        ('{"reasoning": "no score", "confidence": 0.9}', "no 'score'"),
    ],
)
def test_a_malformed_verdict_with_a_floor_is_still_a_grader_error(verdict: str, problem: str) -> None:
    with pytest.raises(GraderError) as info:
        judged(verdict, min_confidence=0.5)
    assert str(info.value).startswith("malformed judge verdict: " + problem)


# --- when a grade needs review: human rubrics ------------------------------------------------


def test_a_human_rubric_is_a_provisional_fail_that_needs_review() -> None:
    result = grade(make("rubric", human=True), text_sample("anything"))
    assert (result.score, result.passed, result.reason, result.needs_review) == (
        0.0,
        False,
        "awaiting human review",
        True,
    )
    assert result.details == {"human": True, "review_reason": "a person grades this rubric (human: true)"}


def test_a_human_rubric_runs_criteria_as_advice_only() -> None:
    result = grade(make("rubric", human=True, criteria=[{"max_words": 3}]), text_sample("one two"))
    assert (result.passed, result.score, result.needs_review) == (False, 0.0, True)
    advice = result.details["advice"]
    assert (advice["passed"], advice["score"], advice["reason"]) == (True, 1.0, "2 words <= 3")


def test_a_human_rubric_survives_a_judge_that_cannot_judge() -> None:
    fake = FakeJudge("no verdict at all")
    result = grade(make("rubric", human=True, judge=JUDGE), text_sample("hi", call_model=fake))
    assert result.needs_review
    assert result.details["advice"]["error"].startswith("malformed judge verdict: no JSON object")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "or 'human: true'"),
        ({"human": True, "pass_threshold": 0.5}, "'pass_threshold' applies to criteria"),
        ({"human": "sometimes"}, "valid boolean"),
    ],
)
def test_human_rubric_option_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make("rubric", **options)


# --- when a grade needs review: graders that disagree --------------------------------------


def g(name: str, passed: bool | None, **kw: Any) -> GradeRecord:
    fields: dict[str, Any] = {
        "grader": name,
        "type": kw.pop("type", "exact_match"),
        "score": None if passed is None else float(passed),
        "passed": passed,
        "reason": "ok" if passed else "wrong",
    }
    fields.update(kw)
    return GradeRecord(**fields)


def test_disagreeing_graders_both_need_review() -> None:
    grades = (g("disposition", True), g("tone", True), g("judge", False, type="rubric"))
    marked = mark_disagreements(grades, [["disposition", "judge"]])
    assert [m.grader for m in marked] == ["disposition", "tone", "judge"]
    assert [m.needs_review for m in marked] == [True, False, True]
    why = "(disposition passed, judge failed)"
    assert marked[0].details == {
        "review_reason": f"disagrees with grader 'judge' {why}",
        "disagrees_with": ["judge"],
    }
    assert marked[2].details["review_reason"] == f"disagrees with grader 'disposition' {why}"
    assert marked[1] is grades[1]
    # The input is not changed: records are frozen and the function is pure.
    assert not grades[0].needs_review


def test_agreeing_erroring_human_and_unknown_graders_are_left_alone() -> None:
    grades = (
        g("a", True),
        g("b", True),
        g("c", None, error="could not grade", reason="could not grade"),
        g("h", False, type="rubric", details={"human": True}, needs_review=True),
    )
    assert mark_disagreements(grades, [("a", "b"), ("a", "c"), ("a", "h"), ("a", "nope")]) == grades


def test_a_disagreement_adds_to_an_existing_reason() -> None:
    unsure = g("judge", False, type="rubric", needs_review=True, details={"review_reason": "judge unsure"})
    marked = mark_disagreements((g("label", True), unsure), [("label", "judge")])
    assert marked[1].details["review_reason"] == (
        "judge unsure; disagrees with grader 'label' (label passed, judge failed)"
    )


# --- storage --------------------------------------------------------------------------------


def verdict(**kw: Any) -> HumanVerdict:
    fields: dict[str, Any] = {
        "case_id": "c1",
        "grader": "tone",
        "output_sha256": output_sha256(OUTPUT),
        "verdict": "pass",
        "reviewer": "Ada",
        "at": AT,
    }
    fields.update(kw)
    return HumanVerdict(**fields)


@pytest.fixture
def evalset(tmp_path: Path) -> Path:
    return write_tree(tmp_path, {"evalsets/triage.yaml": EVALSET}) / "evalsets" / "triage.yaml"


def test_reviews_live_beside_the_eval_set(evalset: Path) -> None:
    assert reviews_path(evalset) == evalset.parent / "triage.reviews.jsonl"
    assert reviews_path(Path("evalsets/x.yml")) == Path("evalsets/x.reviews.jsonl")
    empty = load_reviews(evalset)
    assert (len(empty), empty.lookup("c1", "tone", OUTPUT)) == (0, None)


def test_storage_round_trip(evalset: Path) -> None:
    path = reviews_path(evalset)
    first = verdict(note="polite", score=0.8)
    append_verdict(path, first)
    append_verdict(path, verdict(case_id="c2", verdict="fail"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {
        "schema_version": 1,
        "case_id": "c1",
        "grader": "tone",
        "output_sha256": output_sha256(OUTPUT),
        "verdict": "pass",
        "score": 0.8,
        "note": "polite",
        "reviewer": "Ada",
        "at": AT,
    }
    reviews = load_reviews(evalset)
    assert len(reviews) == 2
    assert reviews.lookup("c1", "tone", OUTPUT) == first
    assert reviews.lookup("c2", "tone", OUTPUT) == verdict(case_id="c2", verdict="fail")


def test_a_later_line_supersedes_an_earlier_one(evalset: Path) -> None:
    path = reviews_path(evalset)
    append_verdict(path, verdict(verdict="fail", note="first look"))
    append_verdict(path, verdict(verdict="pass", note="on reflection", at="2026-01-03T00:00:00Z"))
    found = load_reviews(evalset).lookup("c1", "tone", OUTPUT)
    assert found is not None
    assert (found.verdict, found.note) == ("pass", "on reflection")
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # append-only


def test_a_verdict_applies_to_its_output_only(evalset: Path) -> None:
    append_verdict(reviews_path(evalset), verdict())
    reviews = load_reviews(evalset)
    assert reviews.lookup("c1", "tone", OUTPUT + " ") is None
    assert reviews.lookup("c1", "tone", None) is None
    assert reviews.lookup("c1", "judge", OUTPUT) is None
    assert reviews.lookup("c2", "tone", OUTPUT) is None


def test_appending_after_a_hand_edit_without_a_final_newline(evalset: Path) -> None:
    path = reviews_path(evalset)
    path.write_text(verdict().model_dump_json(), encoding="utf-8")
    append_verdict(path, verdict(case_id="c2"))
    assert len(load_reviews(evalset)) == 2


GOOD = verdict().model_dump_json()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "not json",
            "not valid JSON: Expecting value at column 1 (each line is one JSON object: one human verdict)",
        ),
        ("[1, 2]", "expected a JSON object, got list (each line is one JSON object: one human verdict)"),
        (
            GOOD.replace('"pass"', '"maybe"'),
            "'verdict': Input should be 'pass' or 'fail' (got 'maybe') (use one of the listed values)",
        ),
        (
            json.dumps({k: v for k, v in json.loads(GOOD).items() if k != "verdict"}),
            "missing required key 'verdict' (add 'verdict')",
        ),
        (
            GOOD.replace(AT, "2026-01-02 03:04"),
            "'at': the time has no UTC offset: end it with Z (got '2026-01-02 03:04') (fix the value)",
        ),
        (
            GOOD.replace('"schema_version":1', '"schema_version":2'),
            "reviews schema_version 2 is newer than this tool's (upgrade agent-evals)",
        ),
        (
            "<<<<<<< HEAD",
            "a git merge conflict marker (keep both sides' lines and delete the markers; "
            "`*.reviews.jsonl merge=union` in .gitattributes avoids this)",
        ),
    ],
)
def test_a_bad_line_is_a_config_error_naming_its_line(evalset: Path, line: str, message: str) -> None:
    path = reviews_path(evalset)
    path.write_text(f"{GOOD}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_reviews(evalset)
    assert str(info.value) == f"{path}:3: {message}"


def test_an_unknown_key_suggests_the_right_one(evalset: Path) -> None:
    path = reviews_path(evalset)
    path.write_text(json.dumps({**json.loads(GOOD), "nots": "hi"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_reviews(evalset)
    assert str(info.value) == f"{path}:1: unknown key 'nots' (did you mean 'note'?)"


def test_every_bad_line_is_reported(evalset: Path) -> None:
    path = reviews_path(evalset)
    path.write_text("oops\n" + GOOD + "\n{}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_reviews(evalset)
    lines = str(info.value).splitlines()
    assert (
        lines[0]
        == f"{path}:1: not valid JSON: Expecting value at column 1 (each line is one JSON object: one human verdict)"
    )
    # `{}` is not a verdict at all: one line for it, not one per missing key.
    assert lines[1:] == [
        f"{path}:3: missing required keys 'case_id', 'grader', 'output_sha256', 'verdict', 'reviewer', 'at' "
        "(a verdict has them all; see 'agent-evals review')"
    ]


# --- applying verdicts ------------------------------------------------------------------------


def case(
    *grades: GradeRecord, output: str | None = OUTPUT, repeat: int = 0, case_id: str = "c1"
) -> CaseResult:
    status, score, passed = case_outcome(grades)
    return CaseResult(
        index=0,
        case_id=case_id,
        repeat=repeat,
        status=status,
        score=score,
        passed=passed,
        expected={"disposition": "refund"},
        request={
            "messages": [
                {"role": "system", "content": "Classify."},
                {"role": "user", "content": f"ticket of {case_id}"},
            ]
        },
        output=output,
        grades=grades,
    )


def human(**kw: Any) -> GradeRecord:
    fields: dict[str, Any] = {
        "grader": "tone",
        "type": "rubric",
        "score": 0.0,
        "passed": False,
        "reason": "awaiting human review",
        "needs_review": True,
        "weight": 3.0,
        "details": {"human": True, "review_reason": "a person grades this rubric (human: true)"},
    }
    fields.update(kw)
    return GradeRecord(**fields)


def reviews_of(*verdicts: HumanVerdict) -> Reviews:
    return Reviews(verdicts={v.key: v for v in verdicts})


def test_case_outcome_is_the_runner_rule() -> None:
    assert case_outcome([g("a", True, weight=1.0), human()]) == ("fail", 0.25, False)
    assert case_outcome([g("a", True), g("b", False, required=False)]) == ("pass", 0.5, True)
    assert case_outcome([g("a", True), g("b", None, error="boom")]) == ("error", None, None)
    assert case_outcome([g("a", True, weight=0.0)]) == ("pass", None, True)
    assert case_outcome([]) == ("pass", None, True)


def test_a_human_pass_turns_a_provisional_fail_into_a_pass() -> None:
    before = case(g("disposition", True), human())
    assert (before.status, before.score, before.passed) == ("fail", 0.25, False)
    after = apply_reviews(before, reviews_of(verdict(score=0.8, note="warm,\n  and on point")))
    assert (after.status, after.passed) == ("pass", True)
    assert after.score == pytest.approx((1.0 * 1 + 0.8 * 3) / 4)  # the weighted mean of the graders
    tone = after.grades[1]
    assert (tone.score, tone.passed, tone.needs_review) == (0.8, True, False)
    assert tone.reason == "human review by Ada: pass — warm, and on point"
    assert tone.details["review"] == {
        "verdict": "pass",
        "score": 0.8,
        "reviewer": "Ada",
        "at": AT,
        "note": "warm, and on point",
        "machine": {"score": 0.0, "passed": False, "reason": "awaiting human review"},
    }
    assert after.grades[0] is before.grades[0]
    assert (before.status, before.grades[1].needs_review) == ("fail", True)  # pure


def test_a_human_fail_without_a_score_scores_zero() -> None:
    judge = g("judge", True, type="rubric", needs_review=True, details={"review_reason": "unsure"})
    after = apply_reviews(
        case(g("disposition", True), judge), reviews_of(verdict(grader="judge", verdict="fail"))
    )
    assert (after.status, after.score, after.passed) == ("fail", 0.5, False)
    assert after.grades[1].reason == "human review by Ada: fail"


def test_a_newer_verdict_replaces_an_applied_one_and_keeps_the_machine_grade() -> None:
    once = apply_reviews(case(human()), reviews_of(verdict(verdict="fail")))
    twice = apply_reviews(once, reviews_of(verdict(verdict="pass", at="2026-02-01T00:00:00Z")))
    assert (twice.status, twice.grades[0].reason) == ("pass", "human review by Ada: pass")
    assert twice.grades[0].details["review"]["machine"]["reason"] == "awaiting human review"
    assert apply_reviews(twice, reviews_of(verdict(verdict="pass", at="2026-02-01T00:00:00Z"))) == twice


def test_no_matching_verdict_leaves_the_case_as_it_was() -> None:
    result = case(g("disposition", True), human())
    assert apply_reviews(result, reviews_of(verdict(output_sha256=output_sha256("other")))) is result
    assert apply_reviews(result, Reviews()) is result
    # Grades that do not need review are not overridden, even with a verdict for them.
    assert apply_reviews(result, reviews_of(verdict(grader="disposition", verdict="fail"))) is result
    errored = case(g("disposition", None, error="boom", reason="could not grade"), human())
    reviewed = apply_reviews(errored, reviews_of(verdict()))
    assert (reviewed.status, reviewed.score, reviewed.passed) == ("error", None, None)
    no_output = case(human(), output=None)
    assert apply_reviews(no_output, reviews_of(verdict())) is no_output


def header(evalset_id: str = "triage") -> RunHeader:
    return RunHeader(
        run_id="20260101T000000Z-abc123",
        started_at="2026-01-01T00:00:00.000Z",
        tool_version="0.1.0",
        prompt={"id": "triage", "version": "1"},
        evalset={"id": evalset_id},
        provider={"name": "python:agent:answer"},
    )


def record_of(*results: CaseResult) -> RunRecord:
    return RunRecord(path="runs/x.jsonl", header=header(), cases=results, end=None)


def test_apply_to_record() -> None:
    rec = record_of(case(human()), case(g("disposition", True), case_id="c2"))
    assert apply_to_record(rec, Reviews()) is rec
    applied = apply_to_record(rec, reviews_of(verdict()))
    assert [c.status for c in applied.cases] == ["pass", "pass"]
    assert applied.cases[1] is rec.cases[1]


# --- pending ------------------------------------------------------------------------------------


def test_pending_lists_each_grade_waiting_for_a_person() -> None:
    unsure = g("judge", True, type="rubric", needs_review=True, details={"review_reason": "judge unsure"})
    rec = record_of(
        case(g("disposition", True), human()),
        case(g("disposition", True), case_id="c2"),
        case(g("disposition", True), unsure, case_id="c3"),
        case(g("disposition", True), unsure, case_id="c3", repeat=1),
        case(g("disposition", True), unsure, case_id="c3", repeat=2, output="another output"),
        case(g("x", None, error="boom", reason="could not grade", needs_review=True), case_id="c4"),
        case(human(), case_id="c5", output=None),
    )
    items = pending(rec)
    assert [(i.case_id, i.grader, i.repeats) for i in items] == [
        ("c1", "tone", (0,)),
        ("c3", "judge", (0, 1)),
        ("c3", "judge", (2,)),
    ]
    first = items[0]
    assert first == ReviewItem(
        evalset_id="triage",
        case_id="c1",
        grader="tone",
        why="a person grades this rubric (human: true)",
        input="ticket of c1",
        output=OUTPUT,
        expected={"disposition": "refund"},
        reason="awaiting human review",
        details=human().details,
        score=0.0,
        passed=False,
        repeats=(0,),
    )
    assert items[1].why == "judge unsure"
    assert items[2].output == "another output"
    assert pending(apply_to_record(rec, reviews_of(verdict()))) == items[1:]


# --- the session ---------------------------------------------------------------------------


def scripted(*answers: str) -> tuple[Any, list[str]]:
    """An `ask` that gives `answers` in turn and records the questions."""
    asked: list[str] = []
    it: Iterator[str] = iter(answers)

    def ask(prompt: str, *, default: str) -> str:
        asked.append(prompt)
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return ask, asked


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120, force_terminal=False, record=True)


def items_for(*case_ids: str) -> list[ReviewItem]:
    return pending(record_of(*(case(human(), case_id=c, output=f"output of {c}") for c in case_ids)))


def test_review_session_writes_exactly_the_verdicts_given(evalset: Path) -> None:
    path = reviews_path(evalset)
    ask, asked = scripted("p", "", "FAIL", "too curt [red]really[/red]", "s", "maybe", "q")
    console = quiet()
    given = review_session(
        items_for("c1", "c2", "c3", "c4", "c5"),
        path=path,
        console=console,
        ask=ask,
        reviewer="Ada",
        clock=lambda: AT,
    )
    assert [(v.case_id, v.verdict, v.note) for v in given] == [
        ("c1", "pass", None),
        ("c2", "fail", "too curt [red]really[/red]"),
    ]
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [v.model_dump(mode="json", exclude_none=True) for v in given]
    assert lines[0]["output_sha256"] == output_sha256("output of c1")
    assert asked.count("note (optional)") == 2
    shown = console.export_text()
    assert "1/5  triage · case c1 · grader tone" in shown
    assert "ticket of c1" in shown
    assert "output of c1" in shown
    assert '"disposition": "refund"' in shown
    assert "answer p, f, s or q" in shown  # "maybe" was asked again
    assert "4/5" in shown
    assert "5/5" not in shown
    again = load_reviews(evalset)
    assert again.lookup("c1", "tone", "output of c1") == given[0]
    assert again.lookup("c2", "tone", "output of c2") == given[1]
    assert again.lookup("c3", "tone", "output of c3") is None


def test_control_characters_typed_or_written_into_a_verdict_are_not_kept(evalset: Path) -> None:
    # An arrow key at the note prompt is ESC [ A; a hand-edited file can hold anything.
    path = reviews_path(evalset)
    ask, _ = scripted("f", "too \x1b[31mcurt\x1b[0m\x1b]0;pwned\x07\tok\x1b[A")
    [given] = review_session(
        items_for("c1"), path=path, console=quiet(), ask=ask, reviewer="Ada\x1b[2J", clock=lambda: AT
    )
    assert (given.note, given.reviewer) == ("too [31mcurt[0m]0;pwned ok[A", "Ada[2J")
    raw = path.read_text(encoding="utf-8")
    assert "\\u001b" not in raw
    assert "\\u0007" not in raw
    by_hand = json.loads(raw) | {"case_id": "c2", "note": "x\u001b[1mbold\u0000", "reviewer": "\u001b\u0007"}
    path.write_text(raw + json.dumps(by_hand) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="reviewer"):
        load_reviews(evalset)  # a reviewer of control characters only is no reviewer
    path.write_text(raw + json.dumps(by_hand | {"reviewer": "Bo"}) + "\n", encoding="utf-8")
    loaded = load_reviews(evalset).lookup("c2", "tone", "output of c1")
    assert loaded is not None
    assert loaded.note == "x[1mbold"


def test_end_of_input_quits_and_keeps_what_was_given(evalset: Path) -> None:
    path = reviews_path(evalset)
    ask, _ = scripted("f")  # then the note question meets end of input, then the next verdict
    given = review_session(items_for("c1", "c2"), path=path, console=quiet(), ask=ask, reviewer="Ada")
    assert [(v.case_id, v.verdict, v.note) for v in given] == [("c1", "fail", None)]
    assert len(load_reviews(evalset)) == 1


# --- the review command ---------------------------------------------------------------------------


def write_run(root: Path, run_id: str, *results: CaseResult, evalset_id: str = "triage") -> Path:
    path = root / ".agent-evals" / "runs" / run_id / f"{evalset_id}.jsonl"
    writer = RecordWriter(path, header(evalset_id))
    for result in results:
        writer.add(result)
    writer.close(RunEnd(status="complete", finished_at="2026-01-01T00:01:00.000Z"))
    return path


def test_run_review_reviews_the_newest_record_and_asks_nothing_twice(evalset: Path) -> None:
    root = evalset.parent.parent
    old = write_run(root, "20260101T000000Z-aaaaaa", case(human(), case_id="old"))
    write_run(root, "20260102T000000Z-bbbbbb", case(human()), case(g("disposition", True), case_id="c2"))
    ask, _ = scripted("p", "fine")
    assert run_review(root, None, "triage", console=quiet(), ask=ask, reviewer="Ada") == 1
    found = load_reviews(evalset).lookup("c1", "tone", OUTPUT)
    assert found is not None
    assert (found.verdict, found.note, found.reviewer) == ("pass", "fine", "Ada")
    console = quiet()
    ask, asked = scripted()
    assert run_review(root, None, None, console=console, ask=ask) == 0
    assert asked == []
    assert "nothing to review" in console.export_text()
    # An older record, named: its own case still waits.
    ask, _ = scripted("s")
    assert run_review(root, old, None, console=quiet(), ask=ask) == 0


def test_run_review_errors(evalset: Path) -> None:
    root = evalset.parent.parent
    with pytest.raises(ConfigError, match="no run record of eval set 'triage' under"):
        run_review(root, None, "triage", console=quiet(), ask=scripted()[0])
    other = write_run(root, "r1", case(human()), evalset_id="other")
    with pytest.raises(ConfigError) as info:
        run_review(root, other, "triage", console=quiet(), ask=scripted()[0])
    assert str(info.value).startswith(f"{other}: the record is of eval set 'other', not 'triage'")
    with pytest.raises(ConfigError, match="no eval set 'other' in"):
        run_review(root, other, None, console=quiet(), ask=scripted()[0])
    write_tree(root, {"evalsets/second.yaml": EVALSET.replace("id: triage", "id: second", 1)})
    with pytest.raises(ConfigError, match=r"which eval set\? .*known eval sets: second, triage"):
        run_review(root, None, None, console=quiet(), ask=scripted()[0])


# --- the reports ---------------------------------------------------------------------------------


def test_markdown_lists_cases_that_need_review() -> None:
    md = markdown.render(fail_report())
    section = md.split("<summary>1 case needs human review</summary>")[1].split("</details>")[0]
    assert "`agent-evals review --evalset triage`" in section
    assert "- `access-2` — `tone`: judge confidence 0.4 is below min\\_confidence 0.7" in section


def test_json_lists_needs_review_per_pair() -> None:
    (p,) = json.loads(json_report.render(fail_report()))["pairs"]
    assert p["needs_review"] == [
        {
            "case_id": "access-2",
            "grader": "tone",
            "why": "judge confidence 0.4 is below min_confidence 0.7",
            "reason": "all 2 criteria hold",
            "repeats": [0],
        }
    ]


def test_junit_notes_needs_review_in_system_out() -> None:
    xml = junit.render(fail_report())
    assert (
        '<testcase classname="triage" name="access-2" time="0.150">\n'
        "      <system-out>needs human review (provisional until decided; "
        "run 'agent-evals review --evalset triage'):\n"
        "- tone: judge confidence 0.4 is below min_confidence 0.7</system-out>"
    ) in xml


def test_terminal_gate_and_run_summary_show_needs_review() -> None:
    console = quiet()
    print_gate(console, fail_report())
    assert (
        "1 case(s) need human review (provisional grades): access-2 (agent-evals review --evalset triage)"
        in console.export_text()
    )
    cand = fail_report().pairs[0].cand
    assert cand is not None
    s = summarize(cand.cases)
    assert s.needs_review == 1
    console = quiet()
    print_run(console, [("triage", "triage", s, "runs/cand.jsonl")])
    out = console.export_text()
    assert "needs review" in out
    assert "1 case(s) of triage need human review: agent-evals review --evalset triage" in out
    console = quiet()
    print_run(console, [("triage", "triage", summarize(cand.cases[:1]), "runs/cand.jsonl")])
    assert "review" not in console.export_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe{\x00}\x00\n", "1: not UTF-8 text (each line is one JSON object: one human verdict)"),
        (b"[" * 100_000 + b"\n", "1: collections nested more than 100 deep (flatten the data)"),
        (b'{"score": ' + b"9" * 5000 + b"}\n", "1: integer with more than 4300 digits (quote it to keep it as text)"),
        (GOOD.encode() + b'\n{"score": 1e999}\n', "2: number 1e999 is too large (a number is at most 1.8e308) "
         "(write the number as a string)"),
    ],
    ids=["utf-16", "deep", "huge-int", "infinite"],
)  # fmt: skip
def test_a_hostile_line_is_a_config_error_naming_its_line(
    evalset: Path, content: bytes, message: str
) -> None:
    """Each was an internal error (UnicodeDecodeError, RecursionError, ValueError) in diff, review
    and calibrate: the reviews file is read by the same JSON Lines reader as every other."""
    path = reviews_path(evalset)
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_reviews(evalset)
    assert str(info.value) == f"{path}:{message}"


@pytest.mark.parametrize("kind", ["fifo", "folder", "loop", "device"])
def test_a_reviews_path_that_is_not_a_regular_file_is_refused_not_ignored(evalset: Path, kind: str) -> None:
    """Each was read as no verdicts at all (exit 0), or hung on the FIFO."""
    path = reviews_path(evalset)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(path.name)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(ConfigError) as info:
        load_reviews(evalset)
    said = str(info.value)
    assert said.startswith(f"{path}: ")
    assert {"fifo": "(a FIFO;", "folder": "is a folder", "loop": "symbolic links", "device": "(a device"}[
        kind
    ] in said
