"""Judge calibration: LLM-judge verdicts against the human verdicts stored by `review`."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from scipy import stats as sps

from agent_evals.calibrate import (
    Calibration,
    calibrate,
    calibration_policy,
    calibrations_for,
    is_judge,
    judge_verdict,
    print_calibration,
    run_calibrate,
)
from agent_evals.diff import diff
from agent_evals.errors import ConfigError
from agent_evals.gate import GateReport, PairReport, gate, gate_absolute
from agent_evals.load import load_evalset
from agent_evals.models import CalibrationPolicy, EvalSet, GatePolicy, ProjectConfig
from agent_evals.record import CaseResult, GradeRecord, RunEnd, RunHeader, RunRecord, write
from agent_evals.report import json_report, markdown
from agent_evals.report.terminal import print_gate
from agent_evals.review import HumanVerdict, Reviews, apply_to_record, output_sha256, reviews_path
from tests.support import PROMPT, write_tree
from tests.test_reports import check_golden, structure

AT = "2026-01-02T03:04:05Z"

# --- building records and verdicts --------------------------------------------------------------


def judge(passed: bool, *, grader: str = "tone", **details: Any) -> GradeRecord:
    """A rubric judge's grade as `rubric._judge` records it."""
    return GradeRecord(
        grader=grader,
        type="rubric",
        score=1.0 if passed else 0.25,
        passed=passed,
        reason=f"judge scored {5 if passed else 2}/5 (pass >= 4)",
        details={
            "verdict": "{}",
            "provider": "openai",
            "model": "gpt-judge",
            "judge_score": 5 if passed else 2,
            "scale": [1, 5],
            "pass_threshold": 4,
            "reasoning": "",
            **details,
        },
    )


def label_grade(passed: bool) -> GradeRecord:
    return GradeRecord(grader="label", type="exact_match", score=float(passed), passed=passed, reason="-")


def case(index: int, case_id: str, output: str | None, *grades: GradeRecord, repeat: int = 0) -> CaseResult:
    passed = all(g.passed for g in grades) if grades else None
    return CaseResult(
        index=index,
        case_id=case_id,
        repeat=repeat,
        status="pass" if passed else "fail",
        score=1.0 if passed else 0.0,
        passed=passed,
        output=output,
        grades=grades,
    )


def record(
    cases: Sequence[CaseResult], *, run_id: str = "run", started: str = "2026-01-01T00:00:00.000Z"
) -> RunRecord:
    header = RunHeader(
        run_id=run_id,
        started_at=started,
        tool_version="0.1.0",
        prompt={"id": "triage", "version": "1", "hash": "sha256:p"},
        evalset={"id": "triage", "hash": "sha256:e", "cases": len(cases)},
        provider={"name": "openai", "model": "gpt-test"},
    )
    end = RunEnd(status="complete", finished_at=started)
    return RunRecord(path=f"runs/{run_id}.jsonl", header=header, cases=tuple(cases), end=end)


def verdict(case_id: str, output: str, passed: bool, *, grader: str = "tone") -> HumanVerdict:
    return HumanVerdict(
        case_id=case_id,
        grader=grader,
        output_sha256=output_sha256(output),
        verdict="pass" if passed else "fail",
        reviewer="Ada",
        at=AT,
    )


def reviews(*verdicts: HumanVerdict) -> Reviews:
    return Reviews(verdicts={v.key: v for v in verdicts})


def scenario(
    pairs: Sequence[tuple[bool, bool]], unreviewed: Sequence[bool] = (), *, grader: str = "tone"
) -> tuple[RunRecord, Reviews]:
    """One record: a case per (human, judge) pair with a stored human verdict, then unreviewed judge grades."""
    cases, verdicts = [], []
    for i, (human, judged) in enumerate(pairs):
        output = f"reviewed output {i}"
        cases.append(case(i, f"r{i}", output, judge(judged, grader=grader)))
        verdicts.append(verdict(f"r{i}", output, human, grader=grader))
    for j, judged in enumerate(unreviewed):
        cases.append(case(len(pairs) + j, f"u{j}", f"unreviewed output {j}", judge(judged, grader=grader)))
    return record(cases), reviews(*verdicts)


def counts(tp: int, fn: int, fp: int, tn: int) -> list[tuple[bool, bool]]:
    """(human, judge) pairs: TP both pass, FN person passes judge fails, FP judge passes person fails."""
    return [(True, True)] * tp + [(True, False)] * fn + [(False, True)] * fp + [(False, False)] * tn


# --- the hand-computed example ---------------------------------------------------------------------


def test_figures_match_a_hand_computed_two_by_two() -> None:
    # 20 reviewed cases: TP=8, FN=2, FP=3, TN=7. People pass 10, fail 10; the judge passes 11, fails 9.
    # 30 more cases only the judge graded, 20 passed: the judge passes 31 of 50 in the record.
    rec, rev = scenario(counts(tp=8, fn=2, fp=3, tn=7), unreviewed=[True] * 20 + [False] * 10)

    [c] = calibrate([rec], rev)

    n = 20
    p_o = (8 + 7) / n  # 0.75
    p_e = (10 / n) * (11 / n) + (10 / n) * (9 / n)  # P(both pass by chance) + P(both fail by chance) = 0.5
    kappa = (p_o - p_e) / (1 - p_e)  # 0.5
    sens, spec = 8 / (8 + 2), 7 / (7 + 3)  # 0.8, 0.7
    p_obs = 31 / 50  # 0.62
    corrected = (p_obs + spec - 1) / (sens + spec - 1)  # (0.62 + 0.7 - 1) / (0.8 + 0.7 - 1) = 0.64
    assert (p_o, p_e, kappa, corrected) == pytest.approx((0.75, 0.5, 0.5, 0.64), abs=1e-12)

    assert c.grader == "tone"
    assert c.n == n
    assert c.confusion == ((7, 3), (2, 8))  # rows people [fail, pass], columns the judge [fail, pass]
    assert (c.tn, c.fp, c.fn, c.tp) == (7, 3, 2, 8)
    assert c.agreement == pytest.approx(p_o, abs=1e-12)
    assert c.kappa == pytest.approx(kappa, abs=1e-12)
    assert c.sensitivity == pytest.approx(sens, abs=1e-12)
    assert c.specificity == pytest.approx(spec, abs=1e-12)
    assert (c.judged, c.judge_passed) == (50, 31)
    assert c.observed_pass_rate == pytest.approx(p_obs, abs=1e-12)
    assert c.corrected_pass_rate == pytest.approx(corrected, abs=1e-12)
    assert c.corrected_note is None
    # Clopper–Pearson for 15 of 20, from the beta quantiles.
    assert c.agreement_ci is not None
    assert c.agreement_ci == pytest.approx((sps.beta.ppf(0.025, 15, 6), sps.beta.ppf(0.975, 16, 5)), abs=1e-9)
    assert c.judges == ("openai/gpt-judge",)
    assert c.status == "below_floor"
    assert c.below_floor
    assert not c.too_few
    assert c.warnings == ("judge 'tone' agrees with people on 75% of 20 cases (floor 80%)",)
    assert c.summary() == "75% of 20 cases, kappa 0.50"


def test_corrected_pass_rate_is_clipped_to_zero_and_one() -> None:
    # sens 0.8, spec 0.7: an observed 0.2 gives (0.2 - 0.3) / 0.5 < 0, an observed 1.0 gives 1.4 > 1.
    low, rev = scenario(counts(tp=8, fn=2, fp=3, tn=7), unreviewed=[False] * 80)  # 11 of 100 = 0.11
    [c] = calibrate([low], rev)
    assert c.corrected_pass_rate == 0.0
    high, rev = scenario(counts(tp=8, fn=2, fp=3, tn=7), unreviewed=[True] * 80)  # 91 of 100
    [c] = calibrate([high], rev)
    assert c.corrected_pass_rate == 1.0


def test_a_judge_no_better_than_chance_has_no_corrected_pass_rate() -> None:
    rec, rev = scenario(counts(tp=3, fn=3, fp=6, tn=6), unreviewed=[True] * 5)  # sens 0.5, spec 0.5
    [c] = calibrate([rec], rev)
    assert (c.sensitivity, c.specificity) == pytest.approx((0.5, 0.5))
    assert c.kappa == pytest.approx(0.0)
    assert c.corrected_pass_rate is None
    assert c.corrected_note == (
        "undefined: sensitivity + specificity = 1.00 <= 1, the judge does no better than chance against people"
    )
    worse, rev = scenario(counts(tp=1, fn=3, fp=3, tn=1))  # sens 0.25, spec 0.25
    [c] = calibrate([worse], rev)
    assert c.corrected_pass_rate is None
    assert c.corrected_note is not None
    assert "= 0.50 <= 1" in c.corrected_note


def test_one_sided_reviews_leave_kappa_or_a_rate_undefined() -> None:
    # People passed everything they reviewed and so did the judge: agreement 100%, kappa 0/0.
    rec, rev = scenario(counts(tp=5, fn=0, fp=0, tn=0), unreviewed=[False])
    [c] = calibrate([rec], rev, policy=CalibrationPolicy(min_cases=5))
    assert c.agreement == 1.0
    assert c.kappa is None
    assert c.specificity is None
    assert c.corrected_pass_rate is None
    assert c.corrected_note == (
        "undefined: people failed none of the reviewed cases, so the judge's specificity is unknown"
    )
    assert c.warnings == ()
    assert c.summary() == "100% of 5 cases, kappa n/a"
    # With a kappa floor, an undefined kappa cannot show the judge beats chance.
    [c] = calibrate([rec], rev, policy=CalibrationPolicy(min_cases=5, min_kappa=0.6))
    assert c.below_floor
    assert c.warnings == (
        "judge 'tone': Cohen's kappa with people is undefined on 5 cases "
        "(people and the judge gave one same verdict throughout) (floor 0.60)",
    )


# --- which pairs -----------------------------------------------------------------------------------------


def test_a_human_verdict_on_another_output_or_grader_is_ignored() -> None:
    rec = record([case(0, "c1", "the output now", judge(True)), case(1, "c2", "other", judge(False))])
    rev = reviews(
        verdict("c1", "the output before", False),  # the same case, a different output
        verdict("c2", "other", True, grader="style"),  # the same output, another grader
        verdict("c9", "other", True),  # another case
    )
    [c] = calibrate([rec], rev)
    assert c.n == 0
    assert c.status == "uncalibrated"
    # ... and on the exact output, it counts.
    [c] = calibrate([rec], reviews(verdict("c1", "the output now", False)))
    assert (c.n, c.fp) == (1, 1)


def test_the_judges_own_verdict_counts_even_after_a_person_replaced_it() -> None:
    # An unsure judge passed; the person failed it. apply_to_record puts the person's verdict in the grade.
    unsure = judge(True).model_copy(update={"needs_review": True})
    rec = record([case(0, "c1", "out", unsure)])
    rev = reviews(verdict("c1", "out", False))
    applied = apply_to_record(rec, rev)
    assert applied.cases[0].grades[0].passed is False  # the record now shows the person's verdict
    assert (
        judge_verdict(applied.cases[0].grades[0]) is True
    )  # the judge's is kept under details.review.machine
    [c] = calibrate([applied], rev)
    assert (c.n, c.fp, c.agreement) == (1, 1, 0.0)
    assert (c.judged, c.judge_passed) == (1, 1)


def test_a_real_rubric_judge_grade_is_recognised() -> None:
    from tests.test_graders import grade, judge_grade, make, text_sample

    graded, _ = judge_grade('{"reasoning": "Polite.", "score": 5}')
    as_recorded = GradeRecord(
        grader="tone",
        type="rubric",
        score=graded.score,
        passed=graded.passed,
        reason=graded.reason,
        details=graded.details,
    )
    assert is_judge(as_recorded)
    assert judge_verdict(as_recorded) is True
    checked = grade(make("rubric", criteria=[{"max_words": 40}]), text_sample("Sorry! Refund issued."))
    assert not is_judge(
        GradeRecord(grader="brief", type="rubric", score=1.0, passed=True, reason="", details=checked.details)
    )


def test_only_llm_judge_grades_are_calibrated() -> None:
    criteria = GradeRecord(grader="brief", type="rubric", score=1.0, passed=True, reason="all criteria hold")
    human = GradeRecord(
        grader="person",
        type="rubric",
        score=0.0,
        passed=False,
        reason="awaiting human review",
        needs_review=True,
        details={"human": True, "advice": {"passed": True, "details": {"judge_score": 5}}},
    )
    errored = GradeRecord(
        grader="tone", type="rubric", score=None, passed=None, reason="", error="could not read the verdict"
    )
    rec = record(
        [
            case(0, "c1", "a", label_grade(True), criteria, human, judge(True)),
            case(1, "c2", "b", label_grade(True), errored),
        ]
    )
    rev = reviews(*(verdict("c1", "a", True, grader=g) for g in ("label", "brief", "person", "tone")))
    assert [is_judge(g) for g in rec.cases[0].grades] == [False, False, False, True]
    assert judge_verdict(errored) is None
    [c] = calibrate([rec], rev)
    assert (c.grader, c.n, c.judged) == ("tone", 1, 1)  # the grade it could not give is not a verdict
    assert calibrate([record([case(0, "c1", "a", label_grade(True))])], rev) == []


def test_records_newest_first_dedupe_by_case_and_output() -> None:
    newest = record(
        [
            case(0, "c1", "same", judge(True)),
            case(0, "c1", "same", judge(False), repeat=1),  # a repeat with the same output: one pair
            case(1, "c2", "new text", judge(True)),
        ],
        run_id="new",
    )
    older = record(
        [
            case(0, "c1", "same", judge(False)),  # the same output again: the newest verdict wins
            case(1, "c2", "old text", judge(False)),  # another output: a pair of its own
            case(2, "c3", "gone", judge(True)),
        ],
        run_id="old",
    )
    rev = reviews(verdict("c1", "same", True), verdict("c2", "old text", False), verdict("c3", "gone", False))
    [c] = calibrate([newest, older], rev)
    assert c.n == 3
    assert (c.tp, c.fn, c.fp, c.tn) == (1, 0, 1, 1)  # c1 pass/pass (newest), c2 fail/fail, c3 fail/pass
    # p_obs is the newest record's alone: 2 of its 3 judge verdicts passed.
    assert (c.judged, c.judge_passed) == (3, 2)
    # Given the other way round, the older record's verdict on "same" is the one that counts.
    [c] = calibrate([older, newest], rev)
    assert (c.tp, c.fn, c.fp, c.tn) == (0, 1, 1, 1)
    assert (c.judged, c.judge_passed) == (3, 1)
    assert calibrations_for(newest, rev, history=[older]) == (calibrate([newest, older], rev)[0],)


def test_one_calibration_per_judge_grader_and_the_grader_filter() -> None:
    rec = record(
        [
            case(0, "c1", "a", judge(True), judge(False, grader="style")),
            case(1, "c2", "b", judge(False), judge(False, grader="style", model="gpt-other")),
        ]
    )
    rev = reviews(verdict("c1", "a", True), verdict("c2", "b", True, grader="style"))
    both = calibrate([rec], rev)
    assert [(c.grader, c.n) for c in both] == [("tone", 1), ("style", 1)]
    assert both[1].judges == ("openai/gpt-other",)
    assert [c.grader for c in calibrate([rec], rev, grader="style")] == ["style"]
    assert calibrate([rec], rev, grader="nope") == []


# --- warnings -----------------------------------------------------------------------------------------------


def test_too_few_cases_warns_even_when_they_all_agree() -> None:
    rec, rev = scenario(counts(tp=6, fn=0, fp=0, tn=6))
    [c] = calibrate([rec], rev)
    assert c.agreement == 1.0
    assert not c.below_floor
    assert c.status == "too_few"
    assert c.warnings == (
        "judge 'tone': agreement with people measured on only 12 cases (at least 20 wanted)",
    )


def test_agreement_and_kappa_floors_come_from_the_policy() -> None:
    rec, rev = scenario(counts(tp=18, fn=3, fp=4, tn=0))  # 72% of 25, kappa below 0
    [c] = calibrate([rec], rev)
    assert c.warnings == ("judge 'tone' agrees with people on 72% of 25 cases (floor 80%)",)
    [c] = calibrate([rec], rev, policy=CalibrationPolicy(min_agreement=0.7, min_kappa=0.4, min_cases=30))
    assert c.kappa is not None
    assert c.kappa < 0
    assert c.warnings == (
        f"judge 'tone' has Cohen's kappa {c.kappa:.2f} with people on 25 cases (floor 0.40)",
        "judge 'tone': agreement with people measured on only 25 cases (at least 30 wanted)",
    )
    assert c.status == "below_floor"
    [c] = calibrate([rec], rev, policy=CalibrationPolicy(min_agreement=0.7, min_cases=25))
    assert (c.status, c.warnings) == ("ok", ())


def test_a_rate_just_under_the_floor_does_not_print_as_the_floor() -> None:
    rec, rev = scenario(counts(tp=200, fn=0, fp=51, tn=0))  # 200 of 251 = 79.68%
    [c] = calibrate([rec], rev)
    assert c.warnings == ("judge 'tone' agrees with people on 79.7% of 251 cases (floor 80%)",)


def test_no_human_verdicts_is_nothing_to_calibrate() -> None:
    rec, _ = scenario([], unreviewed=[True, False, True])
    [c] = calibrate([rec], Reviews())
    assert c.n == 0
    assert c.status == "uncalibrated"
    assert (c.agreement, c.kappa, c.agreement_ci, c.corrected_pass_rate) == (None, None, None, None)
    assert c.observed_pass_rate == pytest.approx(2 / 3)
    assert not c.below_floor
    assert c.warnings == (
        "judge 'tone': nothing to calibrate, no person has reviewed an output it graded "
        "(give verdicts with agent-evals review)",
    )
    assert c.summary() == "no human verdicts"


def test_policy_layers_key_by_key() -> None:
    config = ProjectConfig(calibration=CalibrationPolicy(min_agreement=0.9, min_cases=50))
    evalset = EvalSet.model_validate(
        {
            "id": "triage",
            "prompt": "triage",
            "graders": [{"type": "exact_match"}],
            "calibration": {"min_cases": 10, "min_kappa": 0.5},
        }
    )
    assert calibration_policy(config, evalset) == CalibrationPolicy(
        min_agreement=0.9, min_kappa=0.5, min_cases=10
    )
    assert calibration_policy(config, None) == CalibrationPolicy(min_agreement=0.9, min_cases=50)
    assert calibration_policy(ProjectConfig(), None) == CalibrationPolicy()


# --- the terminal ------------------------------------------------------------------------------------------


def _printed(calibrations: Sequence[Calibration]) -> str:
    console = Console(record=True, width=160, force_terminal=False, file=io.StringIO())
    print_calibration(console, calibrations)
    return console.export_text()


def test_print_calibration_shows_the_figures_and_the_warnings() -> None:
    rec, rev = scenario(counts(tp=8, fn=2, fp=3, tn=7), unreviewed=[True] * 20 + [False] * 10)
    out = _printed(calibrate([rec], rev))
    row = next(line for line in out.splitlines() if line.lstrip("│ ").startswith("tone"))
    for figure in ("openai/gpt-judge", "20", "75% (50.9%–91.3%)", "0.50", "80%", "70%", "62% (31/50)", "64%"):
        assert figure in row
    assert "warning: judge 'tone' agrees with people on 75% of 20 cases (floor 80%)" in out

    chance, rev = scenario(counts(tp=1, fn=1, fp=1, tn=1))
    assert "judge 'tone': corrected pass rate undefined: sensitivity + specificity = 1.00 <= 1" in _printed(
        calibrate([chance], rev)
    )
    assert _printed([]).strip() == "nothing to calibrate: the records hold no LLM-judge grade"
    assert "nothing to calibrate, no person has reviewed" in _printed(calibrate([chance], Reviews()))


# --- the reports --------------------------------------------------------------------------------------------


def gated_pair() -> PairReport:
    """A judged eval set, baseline vs candidate, with the judge's calibration attached as `ci` would."""
    outputs = [f"reply {i}" for i in range(25)]
    # People reviewed the baseline's outputs; the judge agrees on 18 of 25.
    human = [True] * 15 + [False] * 10
    base_judge = [True] * 12 + [False] * 3 + [True] * 4 + [False] * 6
    base = record(
        [case(i, f"c{i}", outputs[i], label_grade(True), judge(base_judge[i])) for i in range(25)],
        run_id="base",
    )
    cand = record(
        [
            case(i, f"c{i}", outputs[i] if i < 20 else f"new reply {i}", label_grade(True), judge(i % 4 != 0))
            for i in range(25)
        ],
        run_id="cand",
        started="2026-01-01T01:00:00.000Z",
    )
    rev = reviews(*(verdict(f"c{i}", outputs[i], human[i]) for i in range(25)))
    d = diff(base, cand)
    return PairReport(
        prompt_id="triage",
        evalset_id="triage",
        change="modified",
        verdict=gate(d, GatePolicy()),
        cand=cand,
        diff=d,
        evalset_path="evalsets/triage.yaml",
        calibrations=calibrations_for(cand, rev, history=[base]),
    )


def test_the_gated_pair_calibration() -> None:
    [c] = gated_pair().calibrations
    # The candidate kept 20 of the reviewed outputs: its verdicts on those count, the baseline's on the other 5.
    assert c.n == 25
    assert c.judged == 25
    assert c.status == "below_floor"


def test_markdown_shows_agreement_beside_the_judge_and_warns() -> None:
    p = gated_pair()
    md = markdown.render(GateReport(pairs=(p,)))
    check_golden("gate_calibration.md", md)
    [c] = p.calibrations
    assert c.agreement is not None
    warning = f"- ⚠️ judge 'tone' agrees with people on {c.agreement:.0%} of 25 cases (floor 80%)"
    assert warning in md
    assert "⚖️ **Judge agreement with people**" in md
    header = next(line for line in md.splitlines() if line.startswith("| group |"))
    assert header.endswith("| p | agreement with people |")
    tone = next(line for line in md.splitlines() if line.startswith("| grader `tone`"))
    assert tone.endswith(f"| {c.summary()} ⚠️ |")
    label = next(line for line in md.splitlines() if line.startswith("| grader `label`"))
    assert label.endswith("| — |")
    s = structure(md)  # details nest, no raw HTML
    assert s.counts["table"] == 2  # the summary table and the per-grader table, one column more


def test_markdown_without_calibrations_has_no_agreement_column() -> None:
    p = replace(gated_pair(), calibrations=())
    md = markdown.render(GateReport(pairs=(p,)))
    assert "agreement with people" not in md.lower()


def test_markdown_new_pair_and_a_calibrated_judge() -> None:
    rec, rev = scenario(counts(tp=15, fn=1, fp=1, tn=8), unreviewed=[True, True, False])
    pair = PairReport(
        prompt_id="triage",
        evalset_id="triage",
        change="new",
        verdict=gate_absolute(rec, GatePolicy()),
        cand=rec,
        calibrations=calibrations_for(rec, rev),
    )
    md = markdown.render(GateReport(pairs=(pair,)))
    assert "- ✅ judge `tone` agrees with people on 92% of 25 cases, kappa 0.83" in md
    assert "  - pass rate corrected for the judge's errors: " in md
    assert "| grader | pass rate | mean score | errors | agreement with people |" in md


def test_json_has_a_calibration_object_per_judge_grader() -> None:
    p = gated_pair()
    data = json.loads(json_report.render(GateReport(pairs=(p,))))
    [pair] = data["pairs"]
    assert list(pair["calibration"]) == ["tone"]
    tone = pair["calibration"]["tone"]
    [c] = p.calibrations
    assert tone["status"] == "below_floor"
    assert tone["n"] == 25
    assert tone["confusion"] == {
        "labels": ["fail", "pass"],
        "rows": "people",
        "columns": "judge",
        "matrix": [[c.tn, c.fp], [c.fn, c.tp]],
    }
    assert tone["agreement"] == pytest.approx(c.agreement)
    assert tone["kappa"] == pytest.approx(c.kappa)
    assert tone["policy"] == {"min_agreement": 0.8, "min_kappa": None, "min_cases": 20}
    assert tone["warnings"] == list(c.warnings)
    assert set(tone) >= {
        "sensitivity",
        "specificity",
        "observed_pass_rate",
        "corrected_pass_rate",
        "agreement_ci",
    }
    # No calibration: an empty object, so the key is always there.
    bare = json.loads(json_report.render(GateReport(pairs=(replace(p, calibrations=()),))))
    assert bare["pairs"][0]["calibration"] == {}


def test_terminal_gate_view_prints_a_warning_line() -> None:
    p = gated_pair()
    console = Console(record=True, width=160, force_terminal=False, file=io.StringIO())
    print_gate(console, GateReport(pairs=(p,)))
    out = console.export_text()
    [c] = p.calibrations
    assert f"  ⚠ {c.warnings[0]}" in out
    rec, rev = scenario(counts(tp=15, fn=1, fp=1, tn=8))
    fine = replace(p, calibrations=calibrations_for(rec, rev))
    console = Console(record=True, width=160, force_terminal=False, file=io.StringIO())
    print_gate(console, GateReport(pairs=(fine,)))
    assert "  judge 'tone' agrees with people on 92% of 25 cases, kappa 0.83" in console.export_text()


# --- the `calibrate` command ----------------------------------------------------------------------------------

JUDGED_EVALSET = """\
schema_version: 1
id: triage
prompt: triage
graders:
  - type: exact_match
    name: label
    field: disposition
  - type: rubric
    name: tone
    judge:
      provider: openai
      model: gpt-judge
      rubric: The reply is polite.
calibration:
  min_cases: 4
cases:
  - id: r0
    vars: {subject: a, body: b}
"""


def project(tmp_path: Path, pairs: Sequence[tuple[bool, bool]]) -> Path:
    root = write_tree(tmp_path, {"prompts/triage.yaml": PROMPT, "evalsets/triage.yaml": JUDGED_EVALSET})
    rec, rev = scenario(pairs)
    write(
        root / ".agent-evals/runs/r1/triage.jsonl",
        rec.header,
        rec.cases,
        rec.end or RunEnd(status="complete", finished_at=AT),
    )
    lines = [json.dumps(v.model_dump(mode="json", exclude_none=True)) for v in rev.verdicts.values()]
    reviews_path(root / "evalsets/triage.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _run(root: Path, *args: Any, **kw: Any) -> tuple[int, str]:
    console = Console(record=True, width=160, force_terminal=False, file=io.StringIO())
    code = run_calibrate(root, *args, console=console, **kw)
    return code, console.export_text()


def test_run_calibrate_reads_the_project_and_strict_fails_below_the_floor(tmp_path: Path) -> None:
    root = project(tmp_path, counts(tp=2, fn=1, fp=1, tn=1))  # 60% of 5
    assert load_evalset(root / "evalsets/triage.yaml").calibration == CalibrationPolicy(min_cases=4)
    code, out = _run(root, "triage")
    assert code == 0
    assert "warning: judge 'tone' agrees with people on 60% of 5 cases (floor 80%)" in out
    assert "at least" not in out  # the eval set's min_cases is 4
    assert _run(root, "triage", strict=True)[0] == 1
    assert _run(root, "evalsets/triage.yaml", strict=True)[0] == 1
    assert _run(root, "triage", grader="label", strict=True) == (
        0,
        "grader 'label' gave no LLM-judge grade in these records: nothing to calibrate\n",
    )


def test_run_calibrate_passes_strict_above_the_floor_with_named_records(tmp_path: Path) -> None:
    root = project(tmp_path, counts(tp=3, fn=0, fp=0, tn=2))
    code, out = _run(root, "triage", [root / ".agent-evals/runs/r1/triage.jsonl"], strict=True)
    assert code == 0
    assert "warning" not in out


def test_run_calibrate_usage_errors(tmp_path: Path) -> None:
    root = project(tmp_path, counts(tp=1, fn=0, fp=0, tn=1))
    with pytest.raises(
        ConfigError, match=r"eval set 'triage' has no grader 'nope' \(its graders: label, tone\)"
    ):
        _run(root, "triage", grader="nope")
    with pytest.raises(ConfigError, match="no eval set 'other'"):
        _run(root, "other")
    other = record([case(0, "c1", "x", judge(True))], run_id="other")
    other = other.model_copy(
        update={"header": other.header.model_copy(update={"evalset": {"id": "summaries"}})}
    )
    path = root / "elsewhere.jsonl"
    write(path, other.header, other.cases, RunEnd(status="complete", finished_at=AT))
    with pytest.raises(ConfigError, match="the record is of eval set 'summaries', not 'triage'"):
        _run(root, "triage", [path])
    empty = write_tree(
        tmp_path / "empty", {"prompts/triage.yaml": PROMPT, "evalsets/triage.yaml": JUDGED_EVALSET}
    )
    with pytest.raises(ConfigError, match="no run record of eval set 'triage'"):
        _run(empty, "triage")


def test_calibration_keys_are_checked_in_the_eval_set(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {"evalsets/triage.yaml": JUDGED_EVALSET.replace("  min_cases: 4\n", "  min_cases: 4\n  floor: 1\n")},
    )
    with pytest.raises(ConfigError, match="floor"):
        load_evalset(root / "evalsets/triage.yaml")
