"""The gate keeps its promises: full power at its alpha, an honest detectable drop, count rules
that do not fire on noise, intervals clustered by case (issue 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from agent_evals import power, stats
from agent_evals.diff import diff
from agent_evals.gate import cases_to_confirm, gate
from agent_evals.models import GatePolicy
from agent_evals.record import CaseResult, GradeRecord, RunEnd, RunHeader, RunRecord
from agent_evals.rules import runs_needed
from tests.support import make_record

ROOT = Path(__file__).resolve().parents[1]


def shipped_policy(path: str) -> GatePolicy:
    return GatePolicy.model_validate(yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))["gate"])


INIT_POLICY = "agent_evals/templates/init/evalsets/ticket-triage.yaml"
EXAMPLE_POLICY = "evalsets/ticket-triage.yaml"


def runs_record(
    outcomes: dict[str, list[bool]],
    *,
    run_id: str,
    repeats: int,
    temperature: float = 0.7,
    tags: dict[str, tuple[str, ...]] | None = None,
    graders: bool = True,
) -> RunRecord:
    """A record of `outcomes[case] = [pass?, ...]` per run; runs past `repeats` are confirmation runs.

    Outputs carry the run's index, so repeats of a stochastic run differ as sampled outputs do.
    """
    results = []
    for index, (case_id, runs) in enumerate(outcomes.items()):
        for repeat, ok in enumerate(runs):
            grade = GradeRecord(
                grader="disposition", type="exact_match", score=float(ok), passed=ok, reason="synthetic"
            )
            results.append(
                CaseResult(
                    index=index,
                    case_id=case_id,
                    repeat=repeat,
                    status="pass" if ok else "fail",
                    score=float(ok),
                    passed=ok,
                    tags=(tags or {}).get(case_id, ()),
                    output=f"{run_id} {case_id} run {repeat}" if temperature else f"{case_id} {ok}",
                    grades=(grade,) if graders else (),
                )
            )
    header = RunHeader(
        run_id=run_id,
        started_at="2026-12-06T00:00:00Z",
        tool_version="0",
        prompt={"id": "triage", "hash": f"sha256:{run_id}"},
        evalset={"id": "triage", "hash": "sha256:cases"},
        provider={"name": "openai", "type": "openai", "params": {"temperature": temperature}},
        options={"repeat": repeats},
    )
    end = RunEnd(status="complete", finished_at="2026-12-06T00:01:00Z")
    return RunRecord(path=f"{run_id}.jsonl", header=header, cases=tuple(results), end=end)


# --- multiplicity: the overall test keeps its alpha --------------------------------------------


@pytest.mark.parametrize("graders", [True, False])
def test_nine_regressed_two_fixed_of_twenty_fails_at_alpha_005_with_or_without_a_grader(
    graders: bool,
) -> None:
    # Acceptance 2: one exact-match grader's test is the overall test; it must not halve alpha.
    base = {f"c{i}": [i < 9 or i >= 11] for i in range(20)}
    cand = {f"c{i}": [9 <= i < 20] for i in range(20)}
    d = diff(
        runs_record(base, run_id="b", repeats=1, temperature=0, graders=graders),
        runs_record(cand, run_id="c", repeats=1, temperature=0, graders=graders),
    )
    assert (len(d.outcome("regressed")), len(d.outcome("fixed"))) == (9, 2)
    verdict = gate(d, GatePolicy(alpha=0.05))
    assert verdict.status == "fail", verdict.headline
    overall = verdict.tests[0]
    assert overall.group == "overall"
    assert overall.pvalue == pytest.approx(stats.mcnemar_exact([1] * 9 + [0] * 2, [0] * 9 + [1] * 2).pvalue)
    assert overall.adjusted == overall.pvalue  # full alpha: no adjustment
    assert overall.pvalue < 0.05
    if graders:
        twin = next(t for t in verdict.tests if t.group == "grader disposition")
        assert twin.same_as == "overall"
        assert (twin.pvalue, twin.adjusted) == (overall.pvalue, overall.adjusted)
    assert f"p={overall.pvalue:.2g}" in verdict.headline


def test_slices_are_tested_behind_the_overall_test_and_report_raw_and_adjusted_p() -> None:
    tags = {f"c{i}": (f"t{i % 3}",) for i in range(60)}
    base = {f"c{i}": [True] for i in range(60)}
    # 12 of the 20 cases tagged t0 break; the others hold.
    cand = {f"c{i}": [not (i % 3 == 0 and i < 36)] for i in range(60)}
    d = diff(
        runs_record(base, run_id="b", repeats=1, temperature=0, tags=tags),
        runs_record(cand, run_id="c", repeats=1, temperature=0, tags=tags),
    )
    verdict = gate(d, GatePolicy())
    by_group = {t.group: t for t in verdict.tests}
    t0, t1 = by_group["tag t0"], by_group["tag t1"]
    # The distinct slices: t0, t1, t2 (the grader's outcomes are the overall's).
    assert t0.family == 3
    assert by_group["grader disposition"].same_as == "overall"
    assert t0.adjusted == pytest.approx(
        max(by_group["overall"].pvalue, stats.holm([t0.pvalue, t1.pvalue, 1.0])[0])
    )
    assert t0.significant
    assert t0.adjusted > t0.pvalue
    failed = next(r for r in verdict.rules if r.rule == "significant_regression")
    assert (
        f"tag t0: 100.0% -> 40.0% (-60.0 pts), p={t0.pvalue:.2g}, {t0.adjusted:.2g} after Holm over 3 tests"
        in failed.message
    )


def test_a_slice_cannot_fail_the_gate_when_the_overall_test_does_not() -> None:
    # Gatekeeping: the slices only get alpha once the overall test is rejected.
    tags = {f"c{i}": ("small",) if i < 5 else ("rest",) for i in range(200)}
    base = {f"c{i}": [True] for i in range(200)}
    cand = {f"c{i}": [i >= 4] for i in range(200)}  # 4 of the 5 "small" cases break
    d = diff(
        runs_record(base, run_id="b", repeats=1, temperature=0, tags=tags),
        runs_record(cand, run_id="c", repeats=1, temperature=0, tags=tags),
    )
    verdict = gate(d, GatePolicy())
    by_group = {t.group: t for t in verdict.tests}
    assert by_group["overall"].pvalue == pytest.approx(1 / 16)
    assert by_group["tag small"].pvalue == pytest.approx(1 / 16)
    assert by_group["tag small"].adjusted >= by_group["overall"].pvalue
    assert verdict.status == "pass"


# --- the stratified exact test ----------------------------------------------------------------


def test_stratified_exact_is_mcnemar_with_one_run_and_uses_every_run_with_repeats() -> None:
    rng = np.random.default_rng(3)
    b, c = rng.random(40) < 0.7, rng.random(40) < 0.6
    ones = np.ones(40, dtype=int)
    assert stats.stratified_exact_pvalue(b, ones, c, ones) == pytest.approx(stats.mcnemar_exact(b, c).pvalue)
    # 3 of 3 before, 0 of 3 after: 1 in C(6, 3) = 20.
    assert stats.stratified_exact_pvalue([3], [3], [0], [3]) == pytest.approx(1 / 20)
    assert stats.stratified_exact_pvalue([0], [3], [3], [3], alternative="greater") == pytest.approx(1 / 20)
    # A case with all runs passing says nothing; 2 of 3 on each side: P(X <= 2), X ~ Hypergeom(6, 4, 3).
    assert stats.stratified_exact_pvalue([3, 2], [3, 3], [3, 2], [3, 3]) == pytest.approx(1 - 4 / 20)
    with pytest.raises(ValueError, match="passes <= runs"):
        stats.stratified_exact_pvalue([4], [3], [0], [3])


def test_stratified_exact_holds_its_size_under_the_null() -> None:
    rng = np.random.default_rng(11)
    rejections = 0
    sims = 400
    for _ in range(sims):
        p = rng.beta(1.7, 0.3, 100)
        b, c = rng.binomial(3, p), rng.binomial(3, p)
        rejections += stats.stratified_exact_pvalue(b, np.full(100, 3), c, np.full(100, 3)) <= 0.05
    assert rejections / sims <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / sims)


def test_identical_repeats_count_once() -> None:
    # Temperature 0, three repeats: every repeat is a copy. One case flipping is one discordant pair,
    # not three runs of evidence (which would make it p = 1/20 and fail the gate on one case).
    base = {f"c{i}": [True] * 3 for i in range(30)}
    cand = {f"c{i}": [i != 0] * 3 for i in range(30)}
    d = diff(
        runs_record(base, run_id="b", repeats=3, temperature=0),
        runs_record(cand, run_id="c", repeats=3, temperature=0),
    )
    assert not d.varies
    assert d.effective_repeats == 1
    assert set(d.overall.base_runs) == {1}
    verdict = gate(d, GatePolicy())
    assert verdict.tests[0].pvalue == pytest.approx(0.5)
    assert verdict.status == "pass"
    assert verdict.power is not None
    assert "3 repeats that are identical, so count once" in verdict.power.sentence()


# --- the power statement -------------------------------------------------------------------------


@pytest.mark.parametrize("repeats", [1, 3])
def test_the_stated_detectable_drop_is_the_drop_the_gate_catches_80_percent_of_the_time(repeats: int) -> None:
    rng = np.random.default_rng(21)
    n = 200
    p = rng.beta(1.7, 0.3, n)
    runs = power.Runs(
        rng.binomial(repeats, p), np.full(n, repeats), rng.binomial(repeats, p), np.full(n, repeats)
    )
    stated = power.detectable_drop(runs, alpha=0.05, deterministic=False)
    assert stated is not None
    # The truth: fresh worlds from the same probabilities, the real test (exact), the break model.
    caught = 0
    sims = 300
    for _ in range(sims):
        q = p.copy()
        rest = stated * n
        for i in rng.permutation(n):
            if q[i] <= rest:
                rest -= q[i]
                q[i] = 0.0
            else:
                q[i] -= rest
                break
        b, c = rng.binomial(repeats, p), rng.binomial(repeats, q)
        caught += stats.stratified_exact_pvalue(b, np.full(n, repeats), c, np.full(n, repeats)) <= 0.05
    assert 0.70 <= caught / sims <= 0.90, (stated, caught / sims)


def test_power_is_simulated_for_the_cluster_test_when_cases_share_clusters() -> None:
    # Two conversations of 100 cases: a sign-flip over 2 clusters can never reach p <= 0.05, so no
    # drop is detectable, though the same cases as independent ones would show a modest one.
    rng = np.random.default_rng(5)
    n = 200
    p = rng.beta(1.7, 0.3, n)
    b, c = rng.binomial(1, p), rng.binomial(1, p)
    ones = np.ones(n, dtype=np.int64)
    flat = power.detectable_drop(power.Runs(b, ones, c, ones), alpha=0.05, deterministic=False)
    two = tuple(f"conv{i // 100}" for i in range(n))
    clustered = power.detectable_drop(power.Runs(b, ones, c, ones, two), alpha=0.05, deterministic=False)
    assert flat is not None
    assert 0.05 < flat < 0.15
    assert clustered is None


def test_deterministic_outputs_need_only_enough_flips_for_mcnemar() -> None:
    # No noise: the McNemar test rejects at 5 regressions and no fixes (0.5^5 < 0.05).
    runs = power.Runs(
        np.ones(200, dtype=np.int64),
        np.ones(200, dtype=np.int64),
        np.ones(200, dtype=np.int64),
        np.ones(200, dtype=np.int64),
    )
    drop = power.detectable_drop(runs, alpha=0.05, deterministic=True)
    assert drop == pytest.approx(5 / 200, abs=1 / 200)


def test_empirical_bayes_probabilities_shrink_only_as_far_as_the_runs_allow() -> None:
    # Every case's runs agree: the rates are the probabilities (deterministic-looking data).
    assert list(power.pass_probabilities([0, 4, 4], [4, 4, 4])) == [0.0, 1.0, 1.0]
    # No spread between cases beyond binomial noise: everyone gets the pooled rate.
    rng = np.random.default_rng(1)
    passes = rng.binomial(4, 0.5, 500)
    probs = power.pass_probabilities(passes, np.full(500, 4))
    assert np.ptp(probs) < 0.5


# --- count rules and per-case evidence ---------------------------------------------------------


def _noop(n: int, repeats: int, seed: int) -> tuple[RunRecord, RunRecord, dict[str, tuple[str, ...]]]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.7, 0.3, n)
    tags = {f"c{i}": (("refund", "billing", "access", "tech", "other")[i % 5],) for i in range(n)}
    base = {f"c{i}": list(rng.random(repeats) < p[i]) for i in range(n)}
    cand = {f"c{i}": list(rng.random(repeats) < p[i]) for i in range(n)}
    return (
        runs_record(base, run_id="b", repeats=repeats, tags=tags),
        runs_record(cand, run_id="c", repeats=repeats, tags=tags),
        tags,
    )


@pytest.mark.parametrize("path", [INIT_POLICY, EXAMPLE_POLICY])
def test_shipped_policy_passes_a_noop_on_stochastic_outputs(path: str) -> None:
    # Acceptance 3: ~17 cases go pass -> fail by chance at n=200; they are noise, not regressions.
    policy = shipped_policy(path)
    assert policy.critical == ("refund",)
    assert policy.max_regressions is not None
    base, cand, _ = _noop(200, 1, seed=4)
    d = diff(base, cand)
    assert len(d.outcome("regressed")) > policy.max_regressions
    assert any("refund" in c.tags for c in d.outcome("regressed"))
    verdict = gate(d, policy)
    assert verdict.status == "pass", [r.message for r in verdict.failed]
    counted = next(r for r in verdict.rules if r.rule == "max_regressions")
    assert counted.message.startswith("0 regression(s); max ")
    assert "not confirmed (outputs vary" in counted.message


@pytest.mark.parametrize("path", [INIT_POLICY, EXAMPLE_POLICY])
def test_shipped_policy_fails_a_consistent_regression_of_a_critical_case(path: str) -> None:
    policy = shipped_policy(path)
    base, cand, tags = _noop(200, 1, seed=4)
    d = diff(base, cand)
    broken = next(
        c
        for c, t in tags.items()
        if "refund" in t
        and d.outcome("still_passing")
        and c in {x.case_id for x in d.outcome("still_passing")}
    )
    # The case breaks for real: every candidate run fails. `ci` confirms it with more runs.
    cand = _with_case(cand, broken, [False])
    needed = cases_to_confirm(diff(base, cand), policy)
    assert broken in needed
    extra = needed[broken]
    base = _with_case(base, broken, [True] * (1 + extra))
    cand = _with_case(cand, broken, [False] * (1 + extra))
    verdict = gate(diff(base, cand), policy)
    assert verdict.status == "fail"
    rule = next(r for r in verdict.rules if r.rule == "critical refund")
    assert not rule.passed
    assert rule.cases == (broken,)


def _with_case(record: RunRecord, case_id: str, runs: list[bool]) -> RunRecord:
    outcomes: dict[str, list[bool]] = {}
    tags: dict[str, tuple[str, ...]] = {}
    for r in record.cases:
        outcomes.setdefault(r.case_id, []).append(r.status == "pass")
        tags[r.case_id] = r.tags
    outcomes[case_id] = runs
    return runs_record(
        outcomes, run_id=record.header.run_id, repeats=record.header.options["repeat"], tags=tags
    )


def test_with_repeats_a_case_counts_only_when_every_run_agrees_and_there_are_enough() -> None:
    base = {
        "steady": [True] * 5,
        "flaky": [True] * 5,
        "short": [True] * 5,
        **{f"ok{i}": [True] * 5 for i in range(20)},
    }
    cand = {
        "steady": [False] * 5,
        "flaky": [False, False, True, False, False],
        "short": [False] * 5,
        **{f"ok{i}": [True] * 5 for i in range(20)},
    }
    d = diff(runs_record(base, run_id="b", repeats=5), runs_record(cand, run_id="c", repeats=5))
    verdict = gate(d, GatePolicy(max_regressions=0, critical=("flaky",)))
    rules = {r.rule: r for r in verdict.rules}
    # Two consistent cases of a family of 2 (flaky's rate 0.2 < 0.5 makes it pass -> fail too: 3).
    assert runs_needed(3, 0.05) == 1 + int(np.ceil(np.log(3 / 0.025) / np.log(4)))
    assert rules["max_regressions"].cases == ("steady", "short")
    assert "1 flaky (their runs disagree)" in rules["max_regressions"].message
    assert rules["critical flaky"].passed
    assert "not counted: 1 flaky" in rules["critical flaky"].message


def test_deterministic_outputs_keep_todays_rule_every_critical_pass_to_fail_counts() -> None:
    base = make_record([("r1", "pass", ("refund",)), ("r2", "pass", ("refund",))])
    cand = make_record([("r1", "fail", ("refund",)), ("r2", "pass", ("refund",))], run_id="c")
    verdict = gate(diff(base, cand), GatePolicy(critical=("refund",)))
    assert verdict.status == "fail"
    assert next(r for r in verdict.rules if r.rule == "critical refund").cases == ("r1",)
    assert cases_to_confirm(diff(base, cand), GatePolicy(critical=("refund",))) == {}


def test_cases_to_confirm_asks_only_for_what_a_count_rule_would_count() -> None:
    base, cand, tags = _noop(100, 1, seed=9)
    d = diff(base, cand)
    regressed = {c.case_id for c in d.outcome("regressed")}
    assert regressed
    assert cases_to_confirm(d, GatePolicy()) == {}  # no count rule: nothing to confirm
    critical_only = cases_to_confirm(d, GatePolicy(critical=("refund",)))
    assert set(critical_only) == {c for c in regressed if "refund" in tags[c]}
    everything = cases_to_confirm(d, GatePolicy(max_regressions=3))
    assert set(everything) == regressed
    needed = runs_needed(len(regressed), 0.05)
    assert set(everything.values()) == {needed - 1}


# --- intervals ------------------------------------------------------------------------------------


def test_candidate_pass_rate_interval_clusters_repeats_by_case() -> None:
    # Five repeats that mostly agree are not five independent trials: the interval is wider than
    # Clopper-Pearson on all runs, and covers the truth about 95% of the time.
    rng = np.random.default_rng(8)
    covered = 0
    sims = 300
    widths = []
    for _ in range(sims):
        p = rng.beta(1.7, 0.3, 50)
        passes = rng.binomial(5, p)
        ci = stats.clustered_rate_interval(passes, np.full(50, 5))
        covered += ci.low <= 0.85 <= ci.high
        naive = stats.pass_rate_interval(int(passes.sum()), 250)
        widths.append((ci.high - ci.low) - (naive.high - naive.low))
    assert covered / sims >= 0.92
    assert np.mean(widths) > 0


def test_a_large_eval_set_is_simulated_on_a_subsample_and_its_drop_scaled_down() -> None:
    rng = np.random.default_rng(2)

    def stated(n: int) -> float:
        p = rng.beta(1.7, 0.3, n)
        ones = np.ones(n, dtype=np.int64)
        drop = power.detectable_drop(
            power.Runs(rng.binomial(1, p), ones, rng.binomial(1, p), ones), alpha=0.05, deterministic=False
        )
        assert drop is not None
        return drop

    assert power.MAX_CASES == 2_000
    # Four times the cases, half the detectable drop (the test's noise shrinks as 1 / sqrt(n)).
    assert stated(8_000) / stated(2_000) == pytest.approx(0.5, abs=0.08)


def test_gatekeeping_adjusts_the_family_with_holm_and_never_below_the_gatekeeper() -> None:
    assert stats.gatekeeping(0.03, [0.01, 0.2, 0.04]) == pytest.approx([0.03, 0.2, 0.08])
    assert stats.gatekeeping(0.5, [0.001]) == [0.5]
    assert stats.gatekeeping(0.01, []) == []


def test_runs_needed_keeps_expected_false_confirmations_under_half_alpha() -> None:
    assert runs_needed(0, 0.05) == 1
    assert runs_needed(1, 0.05) == 4  # 4^-3 = 1/64 <= 0.025 < 4^-2
    # At a power of 4 exactly: 16 cases, budget 0.25, 16 / 0.25 = 4^3: r - 1 = 3.
    assert runs_needed(16, 0.5) == 4
    assert runs_needed(1, 0.5) == 2
    assert runs_needed(17, 0.05) == 6


def test_cases_to_confirm_skips_flaky_cases_and_asks_for_a_single_missing_run() -> None:
    # Four design runs; a consistent case needs five (family of 2, rules.runs_needed): one more each side.
    base = {"flaky": [True] * 4, "steady": [True] * 4, **{f"ok{i}": [True] * 4 for i in range(10)}}
    cand = {
        "flaky": [False, True, False, False],
        "steady": [False] * 4,
        **{f"ok{i}": [True] * 4 for i in range(10)},
    }
    d = diff(runs_record(base, run_id="b", repeats=4), runs_record(cand, run_id="c", repeats=4))
    assert [c.case_id for c in d.outcome("regressed")] == ["flaky", "steady"]
    assert runs_needed(2, 0.05) == 5
    assert cases_to_confirm(d, GatePolicy(max_regressions=0)) == {"steady": 1}


def test_whether_outputs_vary_comes_from_the_runs_or_else_from_how_the_record_was_made() -> None:
    from agent_evals.diff import pass_counts, sampling_varies

    local = make_record([("a", "pass")]).model_copy()
    local = local.model_copy(
        update={"header": local.header.model_copy(update={"provider": {"name": "x", "type": "local"}})}
    )
    assert not sampling_varies(local)  # the offline model: no sampling, whatever the temperature
    judged = runs_record({"a": [True]}, run_id="j", repeats=1, temperature=0)
    assert not sampling_varies(judged)
    grade = judged.cases[0].grades[0].model_copy(update={"details": {"judge_score": 4}})
    judged = judged.model_copy(update={"cases": (judged.cases[0].model_copy(update={"grades": (grade,)}),)})
    assert sampling_varies(judged)  # an LLM judge samples too
    # Identical repeats count once; repeats that differ count each; clusters are kept.
    copies = runs_record({"a": [True] * 3, "b": [False] * 3}, run_id="k", repeats=3, temperature=0)
    assert pass_counts(copies) == ((1, 0), (1, 1), ("a", "b"))
    varied = runs_record({"a": [True, False, True], "b": [False] * 3}, run_id="v", repeats=3)
    assert pass_counts(varied) == ((2, 0), (3, 3), ("a", "b"))
    single = runs_record({"a": [True], "b": [False]}, run_id="s", repeats=1)
    assert pass_counts(single) == ((1, 0), (1, 1), ("a", "b"))


def test_the_policy_layers_without_an_eval_set() -> None:
    from agent_evals.integrity import effective_policy
    from agent_evals.models import ProjectConfig

    policy = effective_policy(ProjectConfig(gate=GatePolicy(max_regressions=2)), None, {"alpha": 0.1})
    assert (policy.max_regressions, policy.alpha) == (2, 0.1)
