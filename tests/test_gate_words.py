"""The gate's words, exactly: what a reviewer reads in the integrity rule, an unchanged pair's
verdict, a finding's line, a refused comparison. Each would let a broken message through otherwise."""

from __future__ import annotations

import pytest

from agent_evals.diff import check_comparable
from agent_evals.errors import ConfigError
from agent_evals.gate import gate_unchanged, integrity_rule
from agent_evals.models import GatePolicy
from agent_evals.rules import Finding, GateRule, PolicyField, register
from tests.support import make_record

LOOSER = Finding("policy_loosened", "max_regressions", "0", "5")
REMOVED = Finding("cases_removed", "cases", "3 cases", "2 cases", ("c",))


def test_the_integrity_rule_fails_until_accepted_and_names_every_case() -> None:
    rule = integrity_rule([LOOSER, REMOVED], accepted=False)
    assert (rule.rule, rule.passed, rule.severity, rule.cases) == ("gate_integrity", False, "fail", ("c",))
    assert rule.message == (
        "the change moves the bar: max_regressions: 0 -> 5; cases: 3 cases -> 2 cases: c "
        "(review it, then re-run with --accept-policy-change)"
    )
    accepted = integrity_rule([LOOSER, REMOVED], accepted=True)
    assert accepted.passed
    assert accepted.message == (
        "accepted with --accept-policy-change: max_regressions: 0 -> 5; cases: 3 cases -> 2 cases: c"
    )


def test_an_unchanged_pair_passes_unless_the_bar_moved() -> None:
    policy = GatePolicy(max_regressions=1)
    quiet = gate_unchanged("no behavioural change", policy, [], accepted=False)
    assert (quiet.status, quiet.headline, quiet.rules, quiet.findings) == (
        "pass",
        "no behavioural change",
        (),
        (),
    )
    assert quiet.policy == policy
    moved = gate_unchanged("no behavioural change", policy, [LOOSER], accepted=False)
    assert (moved.status, moved.exit_code) == ("fail", 1)
    assert moved.headline == "no behavioural change; gate integrity: review needed"
    assert [r.rule for r in moved.rules] == ["gate_integrity"]
    assert moved.findings == (LOOSER,)
    ok = gate_unchanged("no behavioural change", policy, [LOOSER], accepted=True)
    assert (ok.status, ok.headline) == ("pass", "no behavioural change; gate integrity: accepted")


def test_a_finding_lists_twenty_cases_then_says_there_are_more() -> None:
    twenty = Finding("cases_removed", "cases", "30 cases", "10 cases", tuple(f"c{i}" for i in range(20)))
    assert twenty.line() == "cases: 30 cases -> 10 cases: " + ", ".join(f"c{i}" for i in range(20))
    more = Finding("cases_removed", "cases", "31 cases", "10 cases", tuple(f"c{i}" for i in range(21)))
    assert more.line() == "cases: 31 cases -> 10 cases: " + ", ".join(f"c{i}" for i in range(20)) + " ..."
    assert LOOSER.line() == "max_regressions: 0 -> 5"


def test_a_rule_or_a_policy_field_cannot_be_registered_twice() -> None:
    def check(ctx: object) -> list:  # type: ignore[type-arg]
        return []

    with pytest.raises(ValueError, match="gate rule 'critical' is registered twice"):
        register(GateRule("critical", (), check))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a policy field of gate rule 'again' belongs to another rule"):
        register(GateRule("again", (PolicyField("alpha", "higher"),), check))  # type: ignore[arg-type]


def test_records_of_different_eval_set_versions_are_refused_with_short_hashes() -> None:
    base = make_record([("a", "pass")])
    cand = make_record([("a", "pass")], run_id="c")
    long_hash = "sha256:" + "0123456789abcdef" * 4
    other = "sha256:" + "fedcba9876543210" * 4
    base = base.model_copy(
        update={"header": base.header.model_copy(update={"evalset": {"id": "e", "hash": long_hash}})}
    )
    cand = cand.model_copy(
        update={"header": cand.header.model_copy(update={"evalset": {"id": "e", "hash": other}})}
    )
    with pytest.raises(ConfigError) as error:
        check_comparable(base, cand)
    assert "sha256:0123456789ab (run.jsonl) and sha256:fedcba987654 (c.jsonl)" in str(error.value)


def test_the_power_sentence_names_the_design_and_both_remedies() -> None:
    from agent_evals.gate import PowerNote

    note = PowerNote(
        n=200, repeats=3, alpha=0.05, power=0.8, detectable_drop=0.081, target_drop=0.0449,
        repeats_needed=6, cases_needed=651, varies=True, clusters=40,
    )  # fmt: skip
    assert note.sentence() == (
        "this eval set can detect a drop of 8.1 points (n=200, 40 clusters, 3 repeats, alpha=0.05, power 80%); "
        "to detect 4 points use about 651 cases or --repeat 6"
    )
    hopeless = PowerNote(
        n=5, repeats=1, alpha=0.05, power=0.8, detectable_drop=None, target_drop=0.05,
        repeats_needed=None, cases_needed=None,
    )  # fmt: skip
    assert hopeless.sentence() == (
        "this eval set cannot detect even a total collapse of its pass rate (n=5, alpha=0.05, power 80%); "
        "to detect 5 points use many more cases"
    )
    assert not hopeless.sufficient


def test_a_new_prompt_is_judged_alone_with_its_own_words() -> None:
    from agent_evals.gate import gate_absolute

    record = make_record([("a", "pass"), ("b", "fail")])
    policy = GatePolicy(max_error_rate=0.5)
    verdict = gate_absolute(record, policy)
    assert verdict.headline == "new, no baseline: pass rate 50.0% (no min_pass_rate set); gate passed"
    assert verdict.policy == policy
    broken = gate_absolute(make_record([("a", "error"), ("b", "error")]), policy)
    assert broken.status == "error"
    assert (
        broken.headline
        == "could not evaluate: candidate: 2/2 cases could not be evaluated (100.0%; max 50.0%)"
    )
    empty = gate_absolute(make_record([]), policy)
    assert (empty.status, empty.headline) == (
        "error",
        "could not evaluate: candidate: no case to evaluate (the eval set has no cases, or none was selected)",
    )
    # Nothing evaluated cannot pass, however many errors the policy allows.
    assert gate_absolute(make_record([]), GatePolicy(max_error_rate=1.0)).status == "error"
    # At the allowed rate exactly, the errors are within it.
    assert gate_absolute(make_record([("a", "pass"), ("b", "error")]), policy).status == "pass"
    all_skipped = gate_absolute(make_record([("a", "skipped")]), policy)
    assert [(r.passed, r.message) for r in all_skipped.rules if r.rule == "max_error_rate"] == [
        (False, "candidate: no case was evaluated, every one was skipped")
    ]
    cut = gate_absolute(make_record([("a", "pass")], status="interrupted"), policy)
    assert cut.headline == "could not evaluate: the candidate run did not finish (interrupted)"


def test_a_report_headline_counts_each_kind_of_verdict() -> None:
    from agent_evals.gate import GateReport, PairReport, gate_absolute

    assert GateReport(pairs=()).headline() == "nothing to gate"
    assert GateReport(pairs=(), message="no prompt changed").headline() == "no prompt changed"
    policy = GatePolicy(min_pass_rate=0.9)
    good = PairReport("p", "e", "new", gate_absolute(make_record([("a", "pass")]), policy))
    bad = PairReport("p", "e", "new", gate_absolute(make_record([("a", "fail")]), policy))
    stuck = PairReport("p", "e", "new", gate_absolute(make_record([("a", "error")]), policy))
    report = GateReport(pairs=(good, bad, stuck))
    assert report.headline() == (
        "agent-evals gate COULD NOT EVALUATE: 1 failed, 1 could not evaluate, 1 passed of 3 prompt/eval set pair(s)"
    )
    assert report.exit_code == 3


def test_evidence_says_why_cases_in_scope_were_not_counted() -> None:
    from agent_evals.rules import Evidence

    found = Evidence(("r1",), flaky=("f1", "f2"), unconfirmed=("u1",), runs_needed=5)
    assert found.note() == (
        "2 flaky (their runs disagree); 1 not confirmed (outputs vary; 5 consistent runs per side "
        "confirm one: agent-evals ci re-runs them, or use --repeat)"
    )
    assert found.note(["f1", "x"]) == "1 flaky (their runs disagree)"
    assert found.note(["u1"]).startswith("1 not confirmed")
    assert found.note(["r1"]) == ""


def test_a_score_drop_limit_raised_is_a_policy_finding_with_both_values() -> None:
    from agent_evals.models import ScoreDrops
    from agent_evals.rules import loosened

    (finding,) = loosened(
        GatePolicy(max_score_drop=ScoreDrops(graders={"g": 0.1})),
        GatePolicy(max_score_drop=ScoreDrops(graders={"g": 0.2})),
    )
    assert (finding.kind, finding.line()) == ("policy_loosened", "max_score_drop.graders.g: 0.1 -> 0.2")


def test_a_new_rule_with_its_own_field_registers_after_the_others() -> None:
    from agent_evals.rules import REGISTRY

    def check(ctx: object) -> list:  # type: ignore[type-arg]
        return []

    rule = GateRule("extra", (PolicyField("not_a_policy_field", "lower"),), check)  # type: ignore[arg-type]
    before = list(REGISTRY)
    try:
        register(rule)
        assert [*before, rule] == REGISTRY
    finally:
        REGISTRY[:] = before


def test_records_of_different_unhashed_versions_name_them_in_full() -> None:
    base = make_record([("a", "pass")])
    cand = make_record([("a", "pass")], run_id="c")
    base = base.model_copy(
        update={"header": base.header.model_copy(update={"evalset": {"id": "e", "hash": "v1"}})}
    )
    cand = cand.model_copy(
        update={"header": cand.header.model_copy(update={"evalset": {"id": "e", "hash": "v2"}})}
    )
    with pytest.raises(ConfigError, match=r"v1 \(run.jsonl\) and v2 \(c.jsonl\)"):
        check_comparable(base, cand)
