"""Every gate rule at its edges: the numbers, cases and words it reports, with clusters and without."""

from __future__ import annotations

import numpy as np
import pytest

from agent_evals import power, stats
from agent_evals.diff import diff
from agent_evals.gate import gate
from agent_evals.models import GatePolicy, ScoreDrops
from agent_evals.record import RunRecord
from agent_evals.rules import GroupTest, pts
from tests.support import make_record
from tests.test_gate_promises import runs_record


def clustered(record: RunRecord, size: int) -> RunRecord:
    """The record with cases grouped into conversations of `size` turns, in order."""
    order = {cid: i for i, cid in enumerate(dict.fromkeys(r.case_id for r in record.cases))}
    cases = tuple(r.model_copy(update={"cluster": f"conv{order[r.case_id] // size}"}) for r in record.cases)
    return record.model_copy(update={"cases": cases})


def outcomes(n: int, broken: set[int], seed: int = 0) -> tuple[dict[str, list[bool]], dict[str, list[bool]]]:
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.85
    base = {f"c{i:03d}": [bool(truth[i])] for i in range(n)}
    cand = {f"c{i:03d}": [bool(truth[i]) and i not in broken] for i in range(n)}
    return base, cand


def test_with_clusters_the_overall_test_the_intervals_and_the_power_use_them() -> None:
    base, cand = outcomes(60, {1, 2, 3, 10, 11, 30, 31, 32})
    b = clustered(runs_record(base, run_id="b", repeats=1, temperature=0), 3)
    c = clustered(runs_record(cand, run_id="c", repeats=1, temperature=0), 3)
    d = diff(b, c)
    keys = d.overall.clusters
    assert len(set(keys)) == 20
    policy = GatePolicy(noninferiority_margin=0.05)
    verdict = gate(d, policy)
    overall = verdict.tests[0]
    expected = stats.paired_test(d.overall.base_pass, d.overall.cand_pass, clusters=keys, alternative="less")
    assert (overall.method, overall.pvalue) == ("cluster-permutation", expected.pvalue)
    ci = stats.paired_bootstrap_ci(d.overall.base_score, d.overall.cand_score, clusters=keys)
    assert verdict.score_delta_ci == (ci.low, ci.high)
    lower = stats.noninferior(
        d.overall.base_pass, d.overall.cand_pass, margin=0.05, clusters=keys, confidence=0.9
    )
    rule = next(r for r in verdict.rules if r.rule == "noninferiority")
    assert rule.message == (
        f"pass-rate change {pts(lower.interval.estimate)}, lower bound {pts(lower.interval.low)} "
        "vs margin -5.0 pts (95% one-sided)"
    )
    assert rule.passed == lower.passed
    note = verdict.power
    assert note is not None
    assert note.clusters == 20
    runs = power.Runs(
        np.asarray(d.overall.base_passes), np.asarray(d.overall.base_runs),
        np.asarray(d.overall.cand_passes), np.asarray(d.overall.cand_runs), keys,
    )  # fmt: skip
    assert note.detectable_drop == power.detectable_drop(runs, alpha=0.05, deterministic=True)
    assert "20 clusters" in note.sentence()


def test_noninferiority_fails_with_the_regressed_cases_and_its_exact_words() -> None:
    base, cand = outcomes(100, set(range(0, 30)), seed=1)
    d = diff(
        runs_record(base, run_id="b", repeats=1, temperature=0),
        runs_record(cand, run_id="c", repeats=1, temperature=0),
    )
    verdict = gate(d, GatePolicy(noninferiority_margin=0.02, alpha=0.1))
    rule = next(r for r in verdict.rules if r.rule == "noninferiority")
    lower = stats.noninferior(d.overall.base_pass, d.overall.cand_pass, margin=0.02, confidence=0.8)
    assert not rule.passed
    assert rule.cases == tuple(c.case_id for c in d.outcome("regressed"))
    assert rule.message == (
        f"pass-rate change {pts(lower.interval.estimate)}, lower bound {pts(lower.interval.low)} "
        "vs margin -2.0 pts (90% one-sided)"
    )
    assert gate(d, GatePolicy()).rules[-1].rule != "noninferiority"  # off unless set


def test_score_drop_limits_overall_per_grader_and_per_tag() -> None:
    tags = {f"c{i}": ("refund",) if i < 4 else ("other",) for i in range(10)}
    base = {f"c{i}": [True] for i in range(10)}
    cand = {f"c{i}": [i not in (0, 5)] for i in range(10)}
    d = diff(
        runs_record(base, run_id="b", repeats=1, temperature=0, tags=tags),
        runs_record(cand, run_id="c", repeats=1, temperature=0, tags=tags),
    )
    policy = GatePolicy(
        max_score_drop=ScoreDrops(
            overall=0.2, graders={"disposition": 0.1, "absent": 0.0}, tags={"refund": 0.25, "other": 0.1}
        )
    )
    rules = {r.rule: r for r in gate(d, policy).rules if r.rule.startswith("max_score_drop")}
    assert [(k, r.passed, r.message, r.cases) for k, r in rules.items()] == [
        ("max_score_drop.overall", True, "mean score -20.0 (n=10); max drop 0.2", ()),
        ("max_score_drop.graders.disposition", False, "mean score -20.0 (n=10); max drop 0.1", ("c0", "c5")),
        ("max_score_drop.graders.absent", True, "mean score n/a (no cases); max drop 0", ()),
        ("max_score_drop.tags.refund", True, "mean score -25.0 (n=4); max drop 0.25", ()),
        ("max_score_drop.tags.other", False, "mean score -16.7 (n=6); max drop 0.1", ("c5",)),
    ]


def test_count_rules_at_their_limits_and_their_words() -> None:
    tags = {f"c{i}": ("refund",) if i < 3 else ("other",) for i in range(10)}
    base = {f"c{i}": [True] for i in range(10)}
    cand = {f"c{i}": [i not in (3, 4)] for i in range(10)}
    d = diff(
        runs_record(base, run_id="b", repeats=1, temperature=0, tags=tags),
        runs_record(cand, run_id="c", repeats=1, temperature=0, tags=tags),
    )
    rules = {r.rule: r for r in gate(d, GatePolicy(max_regressions=2, critical=("refund",))).rules}
    assert (rules["max_regressions"].passed, rules["max_regressions"].cases) == (True, ())
    assert rules["max_regressions"].message == "2 regression(s); max 2"
    assert (rules["critical refund"].passed, rules["critical refund"].message) == (
        True,
        "no critical case regressed",
    )
    over = {r.rule: r for r in gate(d, GatePolicy(max_regressions=1)).rules}
    assert (over["max_regressions"].passed, over["max_regressions"].cases) == (False, ("c3", "c4"))


def test_the_significance_rule_names_the_regressed_cases_only_when_it_fails() -> None:
    base, cand = outcomes(40, set(range(0, 12)), seed=3)
    d = diff(
        runs_record(base, run_id="b", repeats=1, temperature=0, graders=False),
        runs_record(cand, run_id="c", repeats=1, temperature=0, graders=False),
    )
    rule = next(r for r in gate(d, GatePolicy()).rules if r.rule == "significant_regression")
    assert not rule.passed
    assert rule.cases == tuple(c.case_id for c in d.outcome("regressed"))
    assert rule.message.startswith("overall: ")
    fine = diff(
        runs_record(base, run_id="b", repeats=1, temperature=0),
        runs_record(base, run_id="c", repeats=1, temperature=0),
    )
    quiet = next(r for r in gate(fine, GatePolicy()).rules if r.rule == "significant_regression")
    assert (quiet.passed, quiet.cases) == (True, ())
    assert quiet.message == "no significant regression (overall +0.0 pts, p=1; alpha 0.05)"
    # No case ran on both sides: nothing to test, and no interval, power or test to report.
    none = gate(diff(make_record([("a", "pass")]), make_record([("b", "pass")], run_id="c")), GatePolicy())
    sig = next(r for r in none.rules if r.rule == "significant_regression")
    assert (sig.passed, sig.message) == (True, "no paired cases to test")
    assert (none.tests, none.power, none.score_delta_ci) == ((), None, None)
    assert none.cand_pass_ci is not None  # from the candidate's own runs


def test_two_paired_cases_get_an_interval_and_a_power_note_one_does_not() -> None:
    two = gate(
        diff(
            make_record([("a", "pass"), ("b", "pass")]),
            make_record([("a", "pass"), ("b", "fail")], run_id="c"),
        ),
        GatePolicy(),
    )
    assert two.score_delta_ci is not None
    assert two.power is not None
    assert two.power.n == 2
    one = gate(diff(make_record([("a", "pass")]), make_record([("a", "fail")], run_id="c")), GatePolicy())
    assert (one.score_delta_ci, one.power) == (None, None)


def test_an_unfinished_or_budget_cut_run_cannot_be_judged() -> None:
    base = make_record([("a", "pass"), ("b", "pass")])
    cand = make_record([("a", "pass"), ("b", "skipped")], run_id="c", status="interrupted")
    verdict = gate(diff(base, cand), GatePolicy(max_error_rate=1.0))
    bad = [
        (r.rule, r.passed, r.message, r.cases, r.severity) for r in verdict.rules if r.rule == "complete_run"
    ]
    assert bad == [
        ("complete_run", False, "the candidate run did not finish (interrupted)", (), "error"),
        ("complete_run", False, "1 candidate case(s) were skipped (budget)", ("b",), "error"),
    ]
    assert verdict.status == "error"


def test_power_note_remedies_follow_whether_outputs_vary() -> None:
    rng = np.random.default_rng(4)
    p = rng.beta(1.7, 0.3, 60)
    base = {f"c{i}": [bool(rng.random() < p[i])] for i in range(60)}
    cand = {f"c{i}": [bool(rng.random() < p[i])] for i in range(60)}
    policy = GatePolicy(detect_drop=0.15)
    varied = gate(
        diff(runs_record(base, run_id="b", repeats=1), runs_record(cand, run_id="c", repeats=1)), policy
    )
    assert varied.power is not None
    assert not varied.power.sufficient
    assert varied.power.repeats_needed is not None
    assert varied.power.cases_needed is not None
    assert varied.power.detectable_drop is not None
    assert varied.power.cases_needed == int(np.ceil(60 * (varied.power.detectable_drop / 0.15) ** 2))
    assert varied.power.repeats_needed <= 10
    fixed = gate(
        diff(
            runs_record(base, run_id="b", repeats=1, temperature=0),
            runs_record(base, run_id="c", repeats=1, temperature=0),
        ),
        policy,
    )
    assert fixed.power is not None
    assert fixed.power.repeats_needed is None  # repeats of deterministic outputs add nothing
    assert not fixed.power.varies


def test_p_text_says_when_a_figure_is_adjusted() -> None:
    def t(p: float, adjusted: float, family: int, same: str | None = None) -> GroupTest:
        return GroupTest("tag x", 10, 1.0, 0.5, -0.5, "mcnemar-exact", p, adjusted, True, family, same)

    assert t(0.01, 0.01, 0).p_text() == "p=0.01"
    assert t(0.01, 0.03, 1).p_text() == "p=0.01, 0.03 after Holm over 1 test"
    assert t(0.01, 0.03, 3).p_text() == "p=0.01, 0.03 after Holm over 3 tests"
    assert t(0.02, 0.02, 3).p_text() == "p=0.02"
    assert t(0.01, 0.03, 3, "overall").p_text() == "p=0.01"
    assert t(0.01, 0.03, 3).p_cell(str) == "0.01 → 0.03"
    assert t(0.01, 0.01, 0).p_cell(str) == "0.01"
    assert t(0.01, 0.03, 3, "overall").p_cell(str) == "as overall"
    assert pts(None) == "n/a"
    assert pytest.approx(0.5) == t(0.5, 0.5, 0).pvalue
