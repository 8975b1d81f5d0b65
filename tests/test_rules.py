"""The gate's rules as a registry: every policy field has one owner and one direction, and
`stricter` and `loosened` follow from it (issue 12, item 6)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_evals.models import GatePolicy, ScoreDrops
from agent_evals.rules import REGISTRY, PolicyField, loosened, policy_fields, stricter

keys = st.sampled_from(["disposition", "summary", "refund", "vip"])
limits = st.none() | st.floats(0, 1, allow_nan=False)
unit_open = st.floats(0.001, 0.999, allow_nan=False)

policies = st.builds(
    GatePolicy,
    max_regressions=st.none() | st.integers(0, 50),
    min_pass_rate=limits,
    max_score_drop=st.none()
    | st.builds(
        ScoreDrops,
        overall=limits,
        graders=st.dictionaries(keys, st.floats(0, 1, allow_nan=False), max_size=3),
        tags=st.dictionaries(keys, st.floats(0, 1, allow_nan=False), max_size=3),
    ),
    alpha=unit_open,
    noninferiority_margin=st.none() | st.floats(0.001, 1, allow_nan=False),
    critical=st.lists(keys, max_size=3, unique=True).map(lambda xs: tuple(sorted(xs))),
    max_error_rate=st.floats(0, 1, allow_nan=False),
    detect_drop=st.floats(0.001, 1, allow_nan=False),
    max_step_increase=st.none() | st.floats(0, 10, allow_nan=False),
    max_cost_increase=st.none() | st.floats(0, 2, allow_nan=False),
)


def test_every_policy_field_belongs_to_exactly_one_rule() -> None:
    owned = [f.name for f in policy_fields()]
    assert sorted(owned) == sorted(GatePolicy.model_fields)
    assert len(owned) == len(set(owned))
    assert len({r.name for r in REGISTRY}) == len(REGISTRY)


def _field(name: str) -> PolicyField:
    return next(f for f in policy_fields() if f.name == name)


@settings(max_examples=300, deadline=None)
@given(policies, policies)
def test_stricter_is_never_looser_than_either_policy_in_any_field(a: GatePolicy, b: GatePolicy) -> None:
    s = stricter(a, b)
    assert loosened(a, s) == []
    assert loosened(b, s) == []
    for f in policy_fields():
        assert not f.looser(getattr(a, f.name), getattr(s, f.name)), f.name
        assert not f.looser(getattr(b, f.name), getattr(s, f.name)), f.name
    # And it is one of the two, field by field (no invented value): the same pair either way round.
    assert stricter(b, a) == s
    assert stricter(s, s) == s


@settings(max_examples=300, deadline=None)
@given(policies, policies)
def test_loosened_flags_exactly_the_fields_that_became_looser(a: GatePolicy, b: GatePolicy) -> None:
    flagged = {finding.rule.split(".")[0] for finding in loosened(a, b)}
    looser = {f.name for f in policy_fields() if f.looser(getattr(a, f.name), getattr(b, f.name))}
    assert flagged == looser


def _looser_values(name: str) -> tuple[Any, Any]:
    """(old, new) with `new` looser than `old`, for each field."""
    return {
        "max_regressions": (1, 3),
        "min_pass_rate": (0.9, 0.8),
        "max_score_drop": (ScoreDrops(overall=0.05), ScoreDrops(overall=0.1)),
        "alpha": (0.05, 0.01),
        "noninferiority_margin": (0.02, 0.05),
        "critical": (("refund", "vip"), ("vip",)),
        "max_error_rate": (0.02, 0.1),
        "detect_drop": (0.03, 0.1),
        "max_step_increase": (1.0, 2.0),
        "max_cost_increase": (0.1, 0.25),
    }[name]


def test_each_field_loosened_alone_is_flagged_and_tightened_back_by_stricter() -> None:
    for f in policy_fields():
        old, new = _looser_values(f.name)
        base, cand = GatePolicy(**{f.name: old}), GatePolicy(**{f.name: new})
        assert [x.rule.split(".")[0] for x in loosened(base, cand)] == [f.name]
        assert getattr(stricter(base, cand), f.name) == old
        assert getattr(stricter(cand, base), f.name) == old
        assert loosened(cand, base) == []


def test_unset_optional_limits_are_the_loosest_value() -> None:
    assert [x.line() for x in loosened(GatePolicy(noninferiority_margin=0.02), GatePolicy())] == [
        "noninferiority_margin: 0.02 -> unset"
    ]
    assert stricter(GatePolicy(), GatePolicy(noninferiority_margin=0.05)).noninferiority_margin == 0.05
    assert (
        stricter(
            GatePolicy(noninferiority_margin=0.02), GatePolicy(noninferiority_margin=0.05)
        ).noninferiority_margin
        == 0.02
    )
    assert [
        x.line() for x in loosened(GatePolicy(max_score_drop=ScoreDrops(graders={"g": 0.1})), GatePolicy())
    ] == ["max_score_drop.graders.g: 0.1 -> unset"]
