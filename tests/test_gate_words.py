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
