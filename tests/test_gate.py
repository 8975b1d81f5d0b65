"""The diff and the gate on synthetic paired outcomes; gate integrity; policy layering."""

from __future__ import annotations

import numpy as np
import pytest

from agent_evals.diff import diff
from agent_evals.gate import gate, gate_absolute
from agent_evals.integrity import check, effective_policy, loosened, stricter
from agent_evals.models import Case, EvalSet, GatePolicy, GraderSpec, ProjectConfig, ScoreDrops
from tests.support import make_record


def pair(base: list[str], cand: list[str], tags: tuple[str, ...] = ()) -> tuple[list, list]:  # type: ignore[type-arg]
    ids = [f"c{i}" for i in range(len(base))]
    return (
        [(i, s, tags) for i, s in zip(ids, base, strict=True)],
        [(i, s, tags) for i, s in zip(ids, cand, strict=True)],
    )


def test_cases_are_classified_by_id() -> None:
    base = make_record(
        [("a", "pass"), ("b", "fail"), ("c", "pass"), ("d", "fail"), ("e", "pass"), ("g", "error")]
    )
    cand = make_record(
        [("a", "fail"), ("b", "pass"), ("c", "pass"), ("d", "fail"), ("f", "pass"), ("g", "pass")],
        run_id="cand",
    )
    d = diff(base, cand)
    assert {c.case_id: c.outcome for c in d.cases} == {
        "a": "regressed",
        "b": "fixed",
        "c": "still_passing",
        "d": "still_failing",
        "f": "new",
        "g": "errored",
        "e": "removed",
    }
    # Only cases judged on both sides are paired.
    assert d.overall.case_ids == ("a", "b", "c", "d")
    assert (d.overall.regressions, d.overall.fixes) == (1, 1)


def test_new_cases_are_not_regressions_and_errors_are_not_counted() -> None:
    base = make_record([("a", "pass")])
    cand = make_record([("a", "pass"), ("new1", "fail"), ("new2", "fail")], run_id="cand")
    verdict = gate(diff(base, cand), GatePolicy(max_regressions=0))
    assert verdict.status == "pass"
    assert [c.case_id for c in diff(base, cand).outcome("new")] == ["new1", "new2"]


def test_repeats_are_averaged_and_flaky_cases_flagged() -> None:
    base = make_record(
        [("a", "pass"), ("b", "pass")],
        repeat_of={"a": ["pass", "pass", "pass"], "b": ["pass", "fail", "pass"]},
    )
    cand = make_record(
        [("a", "pass"), ("b", "pass")],
        run_id="c",
        repeat_of={"a": ["pass", "fail", "fail"], "b": ["pass"] * 3},
    )
    d = diff(base, cand)
    assert d.repeats == 3
    assert d.overall.base_pass == pytest.approx((1.0, 2 / 3))
    assert d.overall.cand_pass == pytest.approx((1 / 3, 1.0))
    assert [c.case_id for c in d.flaky] == ["a", "b"]
    assert {c.case_id: c.outcome for c in d.cases} == {"a": "regressed", "b": "still_passing"}


def _stochastic(n: int, seed: int, drop: float) -> tuple[list[str], list[str]]:
    # Per-case difficulty, outputs drawn independently on each side: a realistic noisy eval.
    rng = np.random.default_rng(seed)
    p = rng.beta(2.0, 0.6, size=n)
    base = rng.random(n) < p
    cand = rng.random(n) < np.clip(p - drop, 0, 1)
    return ["pass" if x else "fail" for x in base], ["pass" if x else "fail" for x in cand]


def test_gate_passes_a_noop_change_at_n200() -> None:
    base, cand = pair(*_stochastic(200, seed=1, drop=0.0))
    verdict = gate(diff(make_record(base), make_record(cand, run_id="c")), GatePolicy())
    assert verdict.status == "pass", verdict.headline
    assert verdict.exit_code == 0


def test_gate_fails_a_clear_regression_at_n200() -> None:
    base, cand = pair(*_stochastic(200, seed=2, drop=0.25))
    verdict = gate(diff(make_record(base), make_record(cand, run_id="c")), GatePolicy())
    assert verdict.status == "fail"
    assert verdict.exit_code == 1
    assert [r.rule for r in verdict.failed] == ["significant_regression"]
    assert verdict.headline.startswith("gate failed: significant_regression; pass rate")


def test_noop_changes_pass_far_more_often_than_a_bare_pass_rate_comparison() -> None:
    paired_failures = naive_failures = 0
    for seed in range(40):
        b, c = _stochastic(200, seed=100 + seed, drop=0.0)
        base, cand = pair(b, c)
        verdict = gate(diff(make_record(base), make_record(cand, run_id="c")), GatePolicy())
        paired_failures += verdict.status == "fail"
        naive_failures += c.count("pass") < b.count("pass")
    assert naive_failures >= 12  # "pass rate went down" fails about half of no-op changes
    assert paired_failures <= 4


def test_within_noise_is_said() -> None:
    base, cand = pair(["pass"] * 50 + ["fail"] * 50, ["pass"] * 49 + ["fail"] * 51)
    verdict = gate(diff(make_record(base), make_record(cand, run_id="c")), GatePolicy())
    assert verdict.status == "pass"
    assert "within noise" in verdict.headline


def test_power_note_states_the_detectable_drop_and_a_remedy() -> None:
    base, cand = pair(["pass"] * 40 + ["fail"] * 10, ["pass"] * 40 + ["fail"] * 10)
    verdict = gate(diff(make_record(base), make_record(cand, run_id="c")), GatePolicy(detect_drop=0.05))
    assert verdict.power is not None
    assert not verdict.power.sufficient
    sentence = verdict.power.sentence()
    assert sentence.startswith("this eval set can detect a drop of ")
    assert "(n=50, alpha=0.05, power 80%); to detect 5 points use about " in sentence
    assert "cases" in sentence


def test_too_many_errors_cannot_be_judged() -> None:
    base = make_record([(f"c{i}", "pass") for i in range(10)])
    cand = make_record([(f"c{i}", "error" if i < 6 else "fail") for i in range(10)], run_id="c")
    verdict = gate(diff(base, cand), GatePolicy())
    assert verdict.status == "error"
    assert verdict.exit_code == 3
    assert verdict.headline == (
        "could not evaluate: candidate: 6/10 cases could not be evaluated (60.0%; max 5.0%)"
    )


def test_an_interrupted_run_cannot_pass() -> None:
    base = make_record([("a", "pass")])
    cand = make_record([("a", "pass")], run_id="c", status="interrupted")
    assert gate(diff(base, cand), GatePolicy()).status == "error"


def test_critical_cases_must_never_regress() -> None:
    base, cand = pair(["pass"] * 100, ["fail"] + ["pass"] * 99)
    cand[0] = ("c0", "fail", ("refund",))
    base[0] = ("c0", "pass", ("refund",))
    verdict = gate(diff(make_record(base), make_record(cand, run_id="c")), GatePolicy(critical=("refund",)))
    assert verdict.status == "fail"
    rule = next(r for r in verdict.failed)
    assert (rule.rule, rule.cases) == ("critical refund", ("c0",))


def test_max_regressions_min_pass_rate_and_score_drop_name_rule_number_and_cases() -> None:
    base, cand = pair(["pass"] * 10, ["fail"] * 3 + ["pass"] * 7)
    policy = GatePolicy(
        max_regressions=2, min_pass_rate=0.8, max_score_drop=ScoreDrops(graders={"label": 0.1})
    )
    verdict = gate(diff(make_record(base), make_record(cand, run_id="c")), policy)
    failed = {r.rule: r for r in verdict.failed}
    assert failed["max_regressions"].message == "3 regression(s); max 2"
    assert failed["max_regressions"].cases == ("c0", "c1", "c2")
    assert failed["min_pass_rate"].message == "candidate pass rate 70.0% (7/10); min 80.0%"
    assert failed["max_score_drop.graders.label"].message == "mean score -30.0 (n=10); max drop 0.1"


def test_noninferiority_margin() -> None:
    same = pair(["pass"] * 180 + ["fail"] * 20, ["pass"] * 180 + ["fail"] * 20)
    ok = gate(
        diff(make_record(same[0]), make_record(same[1], run_id="c")), GatePolicy(noninferiority_margin=0.02)
    )
    assert ok.status == "pass"
    worse = pair(["pass"] * 180 + ["fail"] * 20, ["fail"] * 20 + ["pass"] * 160 + ["fail"] * 20)
    bad = gate(
        diff(make_record(worse[0]), make_record(worse[1], run_id="c")), GatePolicy(noninferiority_margin=0.02)
    )
    assert "noninferiority" in [r.rule for r in bad.failed]


def test_gate_absolute_for_a_new_prompt() -> None:
    record = make_record([("a", "pass"), ("b", "fail"), ("c", "pass"), ("d", "pass")])
    assert gate_absolute(record, GatePolicy(min_pass_rate=0.7)).status == "pass"
    failed = gate_absolute(record, GatePolicy(min_pass_rate=0.8))
    assert failed.status == "fail"
    assert failed.headline == "new, no baseline: pass rate 75.0% (min_pass_rate 80.0%); gate failed"


# --- integrity and policy -------------------------------------------------------------


def evalset(
    cases: dict[str, str], gate_policy: GatePolicy | None = None, graders: tuple[str, ...] = ("g",)
) -> EvalSet:
    return EvalSet(
        id="e",
        prompt="p",
        graders=tuple(GraderSpec(type="exact_match", name=g) for g in graders),
        cases=tuple(Case(id=k, expected=v) for k, v in cases.items()),
        gate=gate_policy,
    )


def test_loosened_policy_removed_cases_and_edited_expectations_are_found() -> None:
    base_policy = GatePolicy(max_regressions=0, min_pass_rate=0.9, critical=("refund", "vip"), alpha=0.05)
    cand_policy = GatePolicy(max_regressions=5, min_pass_rate=0.9, critical=("vip",), alpha=0.01)
    base = evalset({"a": "x", "b": "y", "c": "z"}, base_policy, graders=("g", "h"))
    cand = evalset({"a": "x", "b": "EDITED"}, cand_policy)
    found = check(base, cand, base_policy, cand_policy)
    assert [f.kind for f in found] == ["policy_loosened"] * 3 + [
        "cases_removed",
        "expected_changed",
        "graders_removed",
    ]
    lines = [f.line() for f in found]
    assert lines == [  # policy findings in the registry's order of rules
        "alpha: 0.05 -> 0.01",
        "critical: [refund, vip] -> [vip]: refund",
        "max_regressions: 0 -> 5",
        "cases: 3 cases -> 2 cases: c",
        "expected: as at base -> edited: b",
        "graders: [g, h] -> [g]: h",
    ]


def test_tightening_is_not_a_finding() -> None:
    assert loosened(GatePolicy(max_regressions=3), GatePolicy(max_regressions=1, min_pass_rate=0.5)) == []


def test_stricter_takes_the_harder_value_per_field() -> None:
    a = GatePolicy(max_regressions=5, min_pass_rate=0.8, alpha=0.01, critical=("x",), max_error_rate=0.1)
    b = GatePolicy(max_regressions=2, alpha=0.05, critical=("y",), max_score_drop=ScoreDrops(overall=0.05))
    s = stricter(a, b)
    assert (s.max_regressions, s.min_pass_rate, s.alpha, s.critical, s.max_error_rate) == (
        2, 0.8, 0.05, ("x", "y"), 0.05
    )  # fmt: skip
    assert s.max_score_drop == ScoreDrops(overall=0.05)


def test_policy_layers_project_defaults_then_evalset_then_cli() -> None:
    config = ProjectConfig(gate=GatePolicy(max_regressions=3, alpha=0.1))
    es = evalset({"a": "x"}, GatePolicy(max_regressions=1))
    assert effective_policy(config, es).max_regressions == 1
    assert effective_policy(config, es).alpha == 0.1
    assert effective_policy(config, es, {"max_regressions": 7, "alpha": None}).max_regressions == 7


def test_integrity_findings_fail_the_gate_unless_accepted() -> None:
    base, cand = pair(["pass"] * 5, ["pass"] * 5)
    d = diff(make_record(base), make_record(cand, run_id="c"))
    findings = loosened(GatePolicy(max_regressions=0), GatePolicy(max_regressions=9))
    assert gate(d, GatePolicy(), findings=findings).status == "fail"
    accepted = gate(d, GatePolicy(), findings=findings, accept_policy_change=True)
    assert accepted.status == "pass"
    assert accepted.findings == tuple(findings)
