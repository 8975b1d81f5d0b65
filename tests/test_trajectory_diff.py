"""The diff, the gate and the reports carry the trajectory (issue 14, item 6).

Records are built in memory (synthetic data): a refund agent whose baseline calls
lookup_order, lookup_policy and issue_refund, and whose candidate skips the policy
lookup on some cases. Sentences, rule messages and report lines are asserted exactly.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from scipy import stats as sps

from agent_evals import integrity
from agent_evals.diff import CaseDeltas, PairedDelta, diff, trajectory_change
from agent_evals.gate import GateReport, gate
from agent_evals.models import Case, EvalSet, GatePolicy, GraderSpec
from agent_evals.record import CaseResult, GradeRecord, RunRecord, StepRecord, ToolCallRecord, Usage
from agent_evals.report import annotations, html, json_report, junit, markdown
from agent_evals.report._common import delta_phrases, trajectory_sentences
from agent_evals.report.terminal import print_gate
from agent_evals.rules import RuleResult, loosened, stricter
from tests.support import make_record
from tests.test_html_report import Page, browser  # noqa: F401 - `browser` is the module's Chromium fixture
from tests.test_reports import Spec, new_pair, pair, record, structure

ORDER = ("lookup_order", {"order_id": 7})
POLICY = ("lookup_policy", {"kind": "refund"})
REFUND = ("issue_refund", {"order_id": 7, "amount": 30})
ESCALATE = ("escalate_to_human", {"reason": "over limit"})
FULL = (ORDER, POLICY, REFUND)
SKIPS_POLICY = (ORDER, REFUND)

Call = tuple[str, dict[str, Any] | str]


def run(
    calls: Sequence[Call],
    *,
    model_calls: int | None = None,
    tokens: int = 100,
    cost: float | None = 0.001,
) -> dict[str, Any]:
    """The fields of an agent's case result: a model step per call (then its tool step), and a final answer.

    Each model step uses `tokens` tokens and costs `cost` (None: unpriced).
    """
    records = tuple(ToolCallRecord(name=n, arguments=a, id=f"call_{i}") for i, (n, a) in enumerate(calls))
    models = len(calls) + 1 if model_calls is None else model_calls
    steps: list[StepRecord] = []
    for i in range(models):
        asked = records[i : i + 1] if i < len(records) else ()
        steps.append(
            StepRecord(
                kind="model",
                model="synthetic-model",
                tool_calls=asked,
                text=None if asked else '{"decision": "approve"}',
                usage=Usage(input_tokens=tokens - 10, output_tokens=10),
                cost_usd=cost,
            )
        )
        steps += [
            StepRecord(
                kind="tool", name=c.name, arguments=c.arguments, call_id=c.id, result={}, source="recorded"
            )
            for c in asked
        ]
    return {
        "tool_calls": records,
        "steps": tuple(steps),
        "usage": Usage(input_tokens=(tokens - 10) * models, output_tokens=10 * models),
        "cost_usd": None if cost is None else cost * models,
    }


def result(calls: Sequence[Call], status: str = "pass", **kw: Any) -> CaseResult:
    return CaseResult(index=0, case_id="c", status=status, **run(calls, **kw))  # type: ignore[arg-type]


def sentences(base: CaseResult, cand: CaseResult, limit: int | None = 4) -> list[str]:
    return [s.text for s in trajectory_sentences(trajectory_change(base, cand), limit)]


# --- how a case's trajectory changed ------------------------------------------------------------


def test_a_tool_no_longer_called_is_named_with_the_call_it_came_before() -> None:
    assert sentences(result(FULL), result(SKIPS_POLICY)) == [
        "no longer calls lookup_policy before issue_refund",
        "1 fewer model call, 1 fewer tool call",
    ]
    # Dropped last: placed after the last call both sides make.
    assert sentences(result(FULL), result((ORDER, POLICY))) == [
        "no longer calls issue_refund after lookup_policy",
        "1 fewer model call, 1 fewer tool call",
    ]
    # Nothing in common: the tool alone.
    assert sentences(result((POLICY,)), result(())) == [
        "no longer calls lookup_policy",
        "1 fewer model call, 1 fewer tool call",
    ]


def test_a_new_tool_reordered_calls_and_changed_counts() -> None:
    assert sentences(result(FULL), result((*FULL, ESCALATE))) == [
        "now calls escalate_to_human after issue_refund",
        "1 more model call, 1 more tool call",
    ]
    assert sentences(result(FULL), result((ORDER, REFUND, POLICY))) == [
        "calls issue_refund before lookup_policy (was after)"
    ]
    assert sentences(result(FULL), result((ORDER, ORDER, POLICY, REFUND))) == [
        "calls lookup_order twice (was once)",
        "1 more model call, 1 more tool call",
    ]


def test_changed_arguments_name_the_tool_the_field_and_both_values() -> None:
    moved = ("lookup_order", {"order_id": 8})
    assert sentences(result(FULL), result((moved, POLICY, REFUND))) == ["lookup_order: order_id 7 -> 8"]
    # A new tool called first does not hide the changed arguments of the calls after it.
    assert sentences(result(FULL), result((ESCALATE, moved, POLICY, REFUND))) == [
        "now calls escalate_to_human before lookup_order",
        "lookup_order: order_id 7 -> 8",
        "1 more model call, 1 more tool call",
    ]
    # Added and removed arguments; only the k-th call of a tool is compared with the k-th.
    base = result((("lookup_order", {"order_id": 7}), ("lookup_order", {"order_id": 9, "note": "late"})))
    cand = result((("lookup_order", {"order_id": 7}), ("lookup_order", {"order_id": 9, "vip": True})))
    change = trajectory_sentences(trajectory_change(base, cand))
    assert [s.text for s in change] == ["lookup_order (call 2): note removed (was late), vip added (true)"]
    # Names and values are kept apart from the prose, for code spans in the PR comment.
    prose, names = change[0].parts[::2], change[0].parts[1::2]
    assert names == ("lookup_order", "note", "late", "vip", "true")
    assert prose == ("", " (call 2): ", " removed (was ", "), ", " added (", ")")
    # JSON values: 7 is not 7.0, true is not 1; key order does not matter.
    assert sentences(result((("a", {"x": 7}),)), result((("a", {"x": 7.0}),))) == ["a: x 7 -> 7.0"]
    assert sentences(result((("a", {"x": 1, "y": 2}),)), result((("a", {"y": 2, "x": 1}),))) == []
    # Arguments that were not JSON compare as text.
    assert sentences(result((("a", "id=7"),)), result((("a", "id=8"),))) == ["a: arguments id=7 -> id=8"]


def test_sentences_come_most_important_first_and_are_capped() -> None:
    base = result((("a", {}), ("b", {}), ("c", {}), ("d", {}), ("e", {"n": 1})))
    cand = result((("e", {"n": 2}), ("f", {}), ("g", {})))
    assert sentences(base, cand, limit=None) == [
        "no longer calls a before e",
        "no longer calls b before e",
        "no longer calls c before e",
        "no longer calls d before e",
        "now calls f after e",
        "now calls g after e",
        "e: n 1 -> 2",
        "2 fewer model calls, 2 fewer tool calls",
    ]
    assert sentences(base, cand) == [
        "no longer calls a before e",
        "no longer calls b before e",
        "no longer calls c before e",
        "no longer calls d before e",
        "and 4 more changes",
    ]


def test_model_calls_alone_and_no_trajectory_at_all() -> None:
    assert sentences(result(FULL), result(FULL, model_calls=6)) == ["2 more model calls"]
    same = trajectory_change(result(FULL), result(FULL))
    assert same is not None
    assert not same.changed
    assert trajectory_sentences(same) == []
    # A prompt with no tools (no steps, no tool calls) has nothing to say.
    plain = CaseResult(index=0, case_id="c", status="pass", output="x")
    assert trajectory_change(plain, plain) is None
    # A baseline without tools against a candidate with them: one model call became four.
    assert sentences(plain, result(FULL)) == [
        "now calls lookup_order",
        "now calls lookup_policy",
        "now calls issue_refund",
        "3 more model calls, 3 more tool calls",
    ]


# --- paired per-case deltas ----------------------------------------------------------------------


def _agents(specs: Sequence[tuple[str, str, dict[str, Any]]], run_id: str) -> RunRecord:
    return record([(cid, status, kw) for cid, status, kw in specs], run_id=run_id)


def _steps_pair(cand_calls: Sequence[Sequence[Call]], **cand_kw: Any) -> tuple[RunRecord, RunRecord]:
    ids = [f"c{i + 1}" for i in range(len(cand_calls))]
    base = _agents([(cid, "pass", run((POLICY,))) for cid in ids], "base")  # 2 model calls + 1 tool call
    cand = _agents(
        [(cid, "pass", run(calls, **cand_kw)) for cid, calls in zip(ids, cand_calls, strict=True)], "cand"
    )
    return base, cand


def _t_interval(deltas: list[float], units: int) -> tuple[float, float]:
    mean = sum(deltas) / len(deltas)
    sd = math.sqrt(sum((d - mean) ** 2 for d in deltas) / (len(deltas) - 1))
    half = float(sps.t.ppf(0.975, units - 1)) * sd / math.sqrt(len(deltas))
    return mean - half, mean + half


def test_deltas_are_paired_per_case_with_a_t_interval() -> None:
    # Steps 3 on the baseline (1 tool call, 2 model calls); 7, 9, 7, 9 on the candidate.
    two, three = (ORDER, POLICY), (ORDER, POLICY, REFUND)
    base, cand = _steps_pair([(*two, ESCALATE), (*three, ESCALATE), (*two, ESCALATE), (*three, ESCALATE)])
    d = diff(base, cand)
    assert d.trajectories
    steps = d.deltas.steps
    assert steps is not None
    assert (steps.n, steps.base_mean, steps.cand_mean, steps.delta) == (4, 3.0, 8.0, 5.0)
    assert steps.base == (3.0, 3.0, 3.0, 3.0)
    assert steps.cand == (7.0, 9.0, 7.0, 9.0)
    assert steps.clusters == ()  # every case its own cluster: the plain paired interval
    low, high = _t_interval([4.0, 6.0, 4.0, 6.0], 4)
    assert steps.interval == pytest.approx((low, high))
    assert steps.increases() == (("c2", 6.0), ("c4", 6.0), ("c1", 4.0), ("c3", 4.0))
    tools = d.deltas.tool_calls
    assert tools is not None
    assert (tools.base_mean, tools.cand_mean) == (1.0, 3.5)
    assert d.deltas.model_calls is not None
    assert d.deltas.model_calls.delta == 2.5
    tokens = d.deltas.tokens
    assert tokens is not None
    assert (tokens.base_mean, tokens.cand_mean) == (200.0, 450.0)
    cost = d.deltas.cost
    assert cost is not None
    assert cost.relative == pytest.approx(4.5 / 2 - 1)


def test_clustered_cases_widen_the_interval_to_their_clusters() -> None:
    base, cand = _steps_pair([(ORDER,), (ORDER, POLICY), (ORDER,), (ORDER, POLICY, REFUND)])
    clustered = [
        r.model_copy(update={"cluster": "t1" if r.case_id in ("c1", "c2") else "t2"}) for r in cand.cases
    ]
    cand = cand.model_copy(update={"cases": tuple(clustered)})
    steps = diff(base, cand).deltas.steps
    assert steps is not None
    assert steps.clusters == ("t1", "t1", "t2", "t2")
    # Two clusters: one degree of freedom, and the clustered standard error (CR1).
    deltas = [0.0, 2.0, 0.0, 4.0]
    mean = sum(deltas) / 4
    sums = [deltas[0] + deltas[1] - 2 * mean, deltas[2] + deltas[3] - 2 * mean]
    se = math.sqrt(sum(x * x for x in sums) * 2 / 1) / 4
    half = float(sps.t.ppf(0.975, 1)) * se
    assert steps.interval == pytest.approx((mean - half, mean + half))


def test_only_cases_judged_on_both_sides_pair_and_unpriced_cost_is_left_out() -> None:
    base = _agents(
        [
            ("c1", "pass", run(FULL)),
            ("c2", "pass", run(FULL)),
            ("c3", "error", run(FULL)),
            ("c4", "pass", run(FULL)),
        ],
        "base",
    )
    cand = _agents(
        [
            ("c1", "fail", run(SKIPS_POLICY)),
            ("c2", "pass", run(SKIPS_POLICY, cost=None)),
            ("c3", "pass", run(SKIPS_POLICY)),
            ("c5", "pass", run(SKIPS_POLICY)),
        ],
        "cand",
    )
    d = diff(base, cand)
    assert d.deltas.steps is not None
    assert d.deltas.steps.case_ids == ("c1", "c2")
    assert d.deltas.cost is not None
    assert d.deltas.cost.case_ids == ("c1",)
    assert d.deltas.cost.interval is None  # one case: no interval
    rule = next(r for r in gate(d, GatePolicy(max_cost_increase=0.5)).rules if r.rule == "max_cost_increase")
    assert (rule.passed, rule.message) == (
        True,
        "cost per case: $0.0040 -> $0.0030 (-25.0%; 1 of 2 cases priced); allowed +50% on the mean",
    )


def test_runs_without_tools_have_no_trajectory_figures_but_still_pair_cost() -> None:
    d = diff(
        make_record([("a", "pass"), ("b", "fail")]), make_record([("a", "pass"), ("b", "pass")], run_id="c")
    )
    assert not d.trajectories
    assert delta_phrases(d) == []
    assert d.deltas.steps is not None
    assert (d.deltas.steps.delta, d.deltas.steps.interval) == (0.0, (0.0, 0.0))
    assert d.deltas.cost is not None
    assert d.deltas.cost.relative == 0.0
    assert trajectory_sentences(trajectory_change(d.cases[0].base.first, d.cases[0].cand.first)) == []  # type: ignore[union-attr]


def test_relative_cost_interval_is_the_delta_method_for_a_ratio_of_means() -> None:
    delta = PairedDelta("cost_usd", ("a", "b", "c"), (1.0, 2.0, 3.0), (1.5, 2.0, 4.5))
    ratio = 8.0 / 6.0
    residuals = [(c - ratio * b) / 2.0 for b, c in zip(delta.base, delta.cand, strict=True)]
    low, high = _t_interval(residuals, 3)
    assert delta.relative == pytest.approx(ratio - 1)
    assert delta.relative_interval == pytest.approx((low + ratio - 1, high + ratio - 1))
    assert PairedDelta("cost_usd", ("a",), (0.0,), (1.0,)).relative is None
    assert CaseDeltas(None, None, None, None, delta).all() == (delta,)


def test_increases_leave_out_unchanged_cases_and_the_interval_is_exact() -> None:
    delta = PairedDelta("steps", ("a", "b", "c", "d"), (1.0, 2.0, 3.0, 1.0), (2.0, 2.0, 1.0, 3.0))
    assert delta.increases() == (("d", 2.0), ("a", 1.0))  # b stayed at 2, c went down
    # Deltas 1 and 3: standard error exactly 1, so the interval is the mean +- t(0.975, 1).
    t = float(sps.t.ppf(0.975, 1))
    assert PairedDelta("steps", ("a", "b"), (0.0, 0.0), (1.0, 3.0)).interval == (2.0 - t, 2.0 + t)
    # Equal deltas: standard error 0, the interval is the point.
    assert PairedDelta("steps", ("a", "b"), (1.0, 2.0), (3.0, 4.0)).interval == (2.0, 2.0)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_no_interval_when_the_standard_error_is_not_finite() -> None:
    # Two clusters, but the squared deviations overflow: no interval rather than -inf..+inf.
    assert PairedDelta("cost_usd", ("a", "b"), (0.0, 0.0), (1e200, -1e200)).interval is None


def test_a_case_value_is_the_mean_of_its_judged_repeats() -> None:
    # Three design runs: the baseline's c1 took 3 and 5 steps (its error run is not judged);
    # the candidate's took 5 every time.
    base = record(
        [("c1", "pass", run((POLICY,))), ("c1", "fail", run((POLICY, REFUND))), ("c1", "error", run(FULL))],
        run_id="base",
        repeats=3,
    )
    cand = record([("c1", "pass", run((POLICY, REFUND)))] * 3, run_id="cand", repeats=3)
    steps = diff(base, cand).deltas.steps
    assert steps is not None
    assert (steps.base, steps.cand) == ((4.0,), (5.0,))


def test_a_one_sided_or_unpriced_case_first_does_not_stop_the_pairing() -> None:
    # In the candidate's order: a new case, a case the candidate ran unpriced, then two paired cases.
    base = _agents([(cid, "pass", run(FULL)) for cid in ("unpriced", "c1", "c2", "gone")], "base")
    cand = _agents(
        [
            ("new", "pass", run(SKIPS_POLICY)),
            ("unpriced", "pass", run(SKIPS_POLICY, cost=None)),
            ("c1", "pass", run(SKIPS_POLICY)),
            ("c2", "pass", run(FULL)),
        ],
        "cand",
    )
    deltas = diff(base, cand).deltas
    assert deltas.steps is not None
    assert (deltas.steps.case_ids, deltas.steps.cand) == (("unpriced", "c1", "c2"), (5.0, 5.0, 7.0))
    assert deltas.cost is not None
    assert (deltas.cost.case_ids, deltas.cost.base, deltas.cost.cand) == (
        ("c1", "c2"),
        (0.004, 0.004),
        (0.003, 0.004),
    )


# --- the gate rules ----------------------------------------------------------------------------


def _rule(d: Any, policy: GatePolicy, name: str) -> Any:
    verdict = gate(d, policy)
    return next(r for r in verdict.rules if r.rule == name), verdict


STEPPY = [(ORDER, POLICY, ESCALATE), (ORDER, POLICY, REFUND, ESCALATE)] * 2


def test_max_step_increase_fails_on_the_mean_and_names_the_cases_that_grew_most() -> None:
    d = diff(*_steps_pair(STEPPY))
    rule, verdict = _rule(d, GatePolicy(max_step_increase=1.0), "max_step_increase")
    assert not rule.passed
    assert rule.message == "steps per case: 3.0 -> 8.0 (+5.0, 95% CI +3.2..+6.8); allowed +1.0 on the mean"
    assert rule.cases == ("c2", "c4", "c1", "c3")
    assert verdict.status == "fail"
    assert verdict.headline.startswith("gate failed: max_step_increase; pass rate 100.0% -> 100.0%")


def test_max_step_increase_passes_under_the_limit_and_is_off_when_unset() -> None:
    d = diff(*_steps_pair(STEPPY))
    rule, verdict = _rule(d, GatePolicy(max_step_increase=5.0), "max_step_increase")
    assert rule.passed
    assert rule.message == "steps per case: 3.0 -> 8.0 (+5.0, 95% CI +3.2..+6.8); allowed +5.0 on the mean"
    assert rule.cases == ()
    assert verdict.status == "pass"
    assert "max_step_increase" not in {r.rule for r in gate(d, GatePolicy()).rules}
    assert "max_cost_increase" not in {r.rule for r in gate(d, GatePolicy()).rules}


def _grew_by(*ups: int) -> Any:
    """The diff of cases taking 3 steps on the baseline and 3 + up on the candidate (extra model calls)."""
    ids = [f"c{i + 1}" for i in range(len(ups))]
    base = _agents([(cid, "pass", run((POLICY,))) for cid in ids], "base")
    cand = _agents(
        [(cid, "pass", run((POLICY,), model_calls=2 + up)) for cid, up in zip(ids, ups, strict=True)], "cand"
    )
    return diff(base, cand)


def test_max_step_increase_at_the_limit_and_the_cases_it_names() -> None:
    # Cases grew by 1 and 3 steps: the mean, +2.0, is over a limit of 1.0; only c2 grew by more than 1.
    d = _grew_by(1, 3)
    rule, _ = _rule(d, GatePolicy(max_step_increase=1.0), "max_step_increase")
    # Deltas 1 and 3: standard error 1, so the interval is +2.0 +- t(0.975, 1) = 12.7.
    ci = "95% CI -10.7..+14.7"
    assert (rule.passed, rule.message, rule.cases) == (
        False,
        f"steps per case: 3.0 -> 5.0 (+2.0, {ci}); allowed +1.0 on the mean",
        ("c2",),
    )
    # Limits compare with a tolerance of 1e-9: a case 1e-9 over is not named, a mean 1e-9 over passes.
    rule, _ = _rule(d, GatePolicy(max_step_increase=0.999999999), "max_step_increase")
    assert (rule.passed, rule.cases) == (False, ("c2",))
    assert rule.message.endswith("; allowed +1.0 on the mean")
    rule, _ = _rule(_grew_by(1, 1), GatePolicy(max_step_increase=0.999999999), "max_step_increase")
    assert (rule.passed, rule.message) == (
        True,
        "steps per case: 3.0 -> 4.0 (+1.0, 95% CI +1.0..+1.0); allowed +1.0 on the mean",
    )
    # A mean exactly at the limit passes; limits are written as given.
    rule, _ = _rule(d, GatePolicy(max_step_increase=2.0), "max_step_increase")
    assert (rule.passed, rule.cases) == (True, ())
    rule, _ = _rule(d, GatePolicy(max_step_increase=0.25), "max_step_increase")
    assert (rule.passed, rule.cases) == (False, ("c2", "c1"))
    assert rule.message.endswith("; allowed +0.25 on the mean")
    # A limit within 1e-9 of 0 is judged as 0 (the tolerance), and shown so.
    rule, _ = _rule(d, GatePolicy(max_step_increase=1e-11), "max_step_increase")
    assert rule.message.endswith("; allowed +0.0 on the mean")
    # One paired case: no interval to show.
    rule, _ = _rule(_grew_by(2), GatePolicy(max_step_increase=1.0), "max_step_increase")
    assert (rule.passed, rule.message, rule.cases) == (
        False,
        "steps per case: 3.0 -> 5.0 (+2.0); allowed +1.0 on the mean",
        ("c1",),
    )


def test_budget_rules_pass_when_no_case_was_judged_on_both_sides() -> None:
    base = _agents([(cid, "error", run((POLICY,))) for cid in ("c1", "c2")], "base")
    cand = _agents([(cid, "pass", run((POLICY,))) for cid in ("c1", "c2")], "cand")
    verdict = gate(diff(base, cand), GatePolicy(max_step_increase=1.0, max_cost_increase=0.2))
    assert verdict.rules[-2:] == (
        RuleResult(
            "max_step_increase",
            True,
            "steps per case: no case judged on both sides; allowed +1.0 on the mean",
        ),
        RuleResult(
            "max_cost_increase", True, "cost per case: no case judged on both sides; allowed +20% on the mean"
        ),
    )


def test_max_cost_increase_reads_the_relative_change_of_the_mean_cost() -> None:
    d = diff(*_steps_pair([(POLICY, REFUND), (POLICY,), (POLICY, REFUND), (POLICY,)]))
    # Baseline 2 model calls a case ($0.002); candidate 3, 2, 3, 2 ($0.0025 on average): +25%.
    failed, _ = _rule(d, GatePolicy(max_cost_increase=0.2), "max_cost_increase")
    assert not failed.passed
    assert failed.message == (
        "cost per case: $0.0020 -> $0.0025 (+25.0%, 95% CI -20.9%..+70.9%); allowed +20% on the mean"
    )
    assert failed.cases == ("c1", "c3")
    passed, _ = _rule(d, GatePolicy(max_cost_increase=0.25), "max_cost_increase")
    assert (passed.passed, passed.cases) == (True, ())  # c1 and c3 grew 50%, but the mean is within
    assert passed.message.endswith("; allowed +25% on the mean")
    # The relative change is +25% exactly: 1e-9 under that still passes (the tolerance).
    within, _ = _rule(d, GatePolicy(max_cost_increase=0.249999999), "max_cost_increase")
    assert (within.passed, within.cases) == (True, ())


def test_max_cost_increase_shows_small_means_to_six_places() -> None:
    # One model call a case on the candidate: $0.001 exactly, still to four places; $0.0005 to six.
    rule, _ = _rule(diff(*_steps_pair([(), ()])), GatePolicy(max_cost_increase=0.2), "max_cost_increase")
    assert rule.message == (
        "cost per case: $0.0020 -> $0.0010 (-50.0%, 95% CI -50.0%..-50.0%); allowed +20% on the mean"
    )
    rule, _ = _rule(
        diff(*_steps_pair([(), ()], cost=0.0005)), GatePolicy(max_cost_increase=0.2), "max_cost_increase"
    )
    assert rule.message == (
        "cost per case: $0.0020 -> $0.000500 (-75.0%, 95% CI -75.0%..-75.0%); allowed +20% on the mean"
    )


def test_max_cost_increase_cannot_judge_an_unpriced_model_and_a_free_baseline_is_no_ratio() -> None:
    d = diff(*_steps_pair([(POLICY,), (POLICY,)], cost=None))
    base_unpriced = [r.model_copy(update={"cost_usd": None}) for r in d.base.cases]
    d = diff(d.base.model_copy(update={"cases": tuple(base_unpriced)}), d.cand)
    rule, verdict = _rule(d, GatePolicy(max_cost_increase=0.2), "max_cost_increase")
    assert (rule.passed, rule.severity) == (False, "error")
    assert rule.message == (
        "cost per case: unknown on the 2 cases judged on both sides (the model has no price: "
        "set it under prices: in agent-evals.yaml); allowed +20% on the mean"
    )
    assert verdict.status == "error"
    free_base, cand = _steps_pair([(POLICY,), (POLICY,)], cost=0.001)
    free = free_base.model_copy(
        update={"cases": tuple(r.model_copy(update={"cost_usd": 0.0}) for r in free_base.cases)}
    )
    rule, _ = _rule(diff(free, cand), GatePolicy(max_cost_increase=0.2), "max_cost_increase")
    assert (rule.passed, rule.message) == (
        False,
        "cost per case: $0.0000 -> $0.0020 (the baseline cost nothing); allowed +20% on the mean",
    )
    # Free on both sides: no change.
    rule, _ = _rule(diff(free, free), GatePolicy(max_cost_increase=0.2), "max_cost_increase")
    assert (rule.passed, rule.message, rule.cases) == (
        True,
        "cost per case: $0.0000 -> $0.0000 (the baseline cost nothing); allowed +20% on the mean",
        (),
    )


def test_loosening_the_budget_rules_is_a_gate_integrity_finding() -> None:
    base = GatePolicy(max_step_increase=1.0, max_cost_increase=0.2)
    assert [f.line() for f in loosened(base, GatePolicy(max_step_increase=2.0))] == [
        "max_step_increase: 1.0 -> 2.0",
        "max_cost_increase: 0.2 -> unset",
    ]
    assert loosened(base, GatePolicy(max_step_increase=0.5, max_cost_increase=0.1)) == []
    s = stricter(base, GatePolicy(max_step_increase=0.5))
    assert (s.max_step_increase, s.max_cost_increase) == (0.5, 0.2)
    evalset = EvalSet(
        id="e", prompt="p", graders=(GraderSpec(type="exact_match", name="g"),), cases=(Case(id="a"),)
    )
    found = integrity.check(evalset, evalset, base, GatePolicy(max_cost_increase=0.5, max_step_increase=1.0))
    assert [(f.kind, f.line()) for f in found] == [("policy_loosened", "max_cost_increase: 0.2 -> 0.5")]


# --- trajectory graders are graders: per-grader tests and critical cases ------------------------------


def test_a_trajectory_grader_gets_its_own_paired_test_and_trips_critical_cases() -> None:
    # r0-r5 skip the policy lookup (the tool_sequence grader fails them); r6 answers with the wrong label.
    ids = [f"r{i}" for i in range(10)]
    tags = {cid: ("refund",) if i < 3 else () for i, cid in enumerate(ids)}
    base = make_record([(cid, "pass", tags[cid]) for cid in ids])
    cand = make_record(
        [(cid, "pass" if i > 6 else "fail", tags[cid]) for i, cid in enumerate(ids)], run_id="c"
    )

    def graded(rec: RunRecord, skipped: set[str], mislabelled: set[str]) -> RunRecord:
        cases = []
        for r in rec.cases:
            order = GradeRecord(
                grader="policy_first",
                type="tool_sequence",
                score=0.0 if r.case_id in skipped else 1.0,
                passed=r.case_id not in skipped,
                reason="lookup_policy never called (calls: lookup_order, issue_refund)"
                if r.case_id in skipped
                else "ok",
            )
            right = r.case_id not in mislabelled
            label = r.grades[0].model_copy(update={"passed": right, "score": float(right)})
            cases.append(r.model_copy(update={"grades": (label, order)}))
        return rec.model_copy(update={"cases": tuple(cases)})

    d = diff(graded(base, set(), set()), graded(cand, set(ids[:6]), {"r6"}))
    verdict = gate(d, GatePolicy(critical=("refund",), alpha=0.05))
    tests = {t.group: t for t in verdict.tests}
    assert set(tests) == {"overall", "grader label", "grader policy_first", "tag refund"}
    sequence = tests["grader policy_first"]
    assert sequence.same_as is None
    assert (sequence.n, sequence.base_rate, sequence.cand_rate) == (10, 1.0, 0.4)
    assert sequence.pvalue == pytest.approx(0.5**6)
    # Holm over the three distinct groups behind the overall test (p = 0.5**7).
    assert (sequence.family, sequence.adjusted) == (3, pytest.approx(3 * 0.5**6))
    assert sequence.significant
    groups = {g.name: g for g in d.graders}
    assert (groups["policy_first"].regressions, groups["label"].regressions) == (6, 1)
    significance = next(r for r in verdict.rules if r.rule == "significant_regression")
    assert "grader policy_first: 100.0% -> 40.0% (-60.0 pts), p=0.016" in significance.message
    critical = next(r for r in verdict.rules if r.rule == "critical refund")
    assert (critical.passed, critical.message, critical.cases) == (
        False,
        "3 critical case(s) regressed",
        ("r0", "r1", "r2"),
    )
    assert verdict.status == "fail"


# --- the reports -------------------------------------------------------------------------------------


def _refund_report(policy: GatePolicy | None = None) -> GateReport:
    """Synthetic refund agent: the candidate skips lookup_policy on two cases (they regress),
    escalates on one and looks up the wrong order on another (both still pass)."""
    ids = [f"refund-{i}" for i in range(1, 6)]
    base: list[Spec] = [(cid, "pass", {**run(FULL), "tags": ("refund",)}) for cid in ids]
    cand: list[Spec] = [
        ("refund-1", "fail", {**run(SKIPS_POLICY), "tags": ("refund",), "got": "approve"}),
        ("refund-2", "fail", {**run(SKIPS_POLICY), "tags": ("refund",), "got": "approve"}),
        ("refund-3", "pass", {**run(FULL), "tags": ("refund",)}),
        ("refund-4", "pass", {**run((*FULL, ESCALATE)), "tags": ("refund",)}),
        (
            "refund-5",
            "pass",
            {**run((("lookup_order", {"order_id": 8}), POLICY, REFUND)), "tags": ("refund",)},
        ),
    ]
    p = pair(record(base, run_id="base"), record(cand, run_id="cand", version="2"), policy or GatePolicy())
    return GateReport(pairs=(p,), base_ref="origin/main")


REFUND_1 = "no longer calls lookup_policy before issue_refund; 1 fewer model call, 1 fewer tool call"
PER_CASE = (
    "steps per case 7.0 -> 6.6 (-0.4, 95% CI -2.5..+1.7); tool calls per case 3.0 -> 2.8 (-0.2, 95% CI -1.2..+0.8); "
    "tokens per case 400 -> 380 (-20, 95% CI -124..+84); cost per case $0.0040 -> $0.0038 (-5.0%, 95% CI -31.0%..+21.0%)"
)


def test_delta_phrases_of_the_pair() -> None:
    (p,) = _refund_report().pairs
    assert p.diff is not None
    assert "; ".join(delta_phrases(p.diff)) == PER_CASE


def test_markdown_comment_says_per_case_how_the_trajectory_changed() -> None:
    md = markdown.render(_refund_report())
    structure(md)
    assert (
        "**Trajectory**: no longer calls `lookup_policy` before `issue_refund`; 1 fewer model call, 1 fewer tool call"
    ) in md
    assert md.count("**Trajectory**: no longer calls `lookup_policy`") == 2
    assert "🧭 Paired over 5 cases: " + PER_CASE in md
    assert (
        "<summary>2 other cases with a changed trajectory</summary>\n\n"
        "- `refund-4` (still passing) (`refund`) — now calls `escalate_to_human` after `issue_refund`; "
        "1 more model call, 1 more tool call\n"
        "- `refund-5` (still passing) (`refund`) — `lookup_order`: `order_id` `7` -> `8`"
    ) in md


def test_markdown_of_a_run_without_tools_has_no_trajectory() -> None:
    base = record([("a-1", "pass"), ("a-2", "pass")], run_id="base")
    cand = record([("a-1", "fail"), ("a-2", "pass")], run_id="cand")
    md = markdown.render(GateReport(pairs=(pair(base, cand, GatePolicy()),)))
    assert "Trajectory" not in md
    assert "trajectory" not in md
    assert "🧭" not in md
    assert "trajectory" not in json_report.render(GateReport(pairs=(pair(base, cand, GatePolicy()),)))


def test_a_new_pair_with_trajectories_shows_its_steps_per_case() -> None:
    cand = record([("a-1", "pass", run(FULL)), ("a-2", "pass", run(SKIPS_POLICY))], run_id="solo")
    md = markdown.render(GateReport(pairs=(new_pair(cand, GatePolicy()),)))
    assert "🧭 steps per case 6.0 (tool calls 2.5)" in md


def test_json_report_carries_the_deltas_the_sentences_and_the_steps() -> None:
    doc = json.loads(json_report.render(_refund_report()))
    (p,) = doc["pairs"]
    t = p["trajectory"]
    assert t["steps"]["n"] == 5
    assert (t["steps"]["base_mean"], t["steps"]["cand_mean"], t["steps"]["delta"]) == (
        7.0,
        6.6,
        pytest.approx(-0.4),
    )
    assert t["steps"]["ci"] == pytest.approx(list(_t_interval([-2.0, -2.0, 0.0, 2.0, 0.0], 5)))
    assert t["cost_usd"]["relative"] == pytest.approx(-0.05)
    assert t["sentences"] == PER_CASE.split("; ")
    cases = {c["case_id"]: c for c in p["cases"]}
    first = cases["refund-1"]["trajectory"]
    assert first["sentences"] == REFUND_1.split("; ")
    assert first["parts"][0] == ["no longer calls ", "lookup_policy", " before ", "issue_refund", ""]
    assert first["calls"] == {
        "base": ["lookup_order", "lookup_policy", "issue_refund"],
        "cand": ["lookup_order", "issue_refund"],
    }
    assert (first["model_calls"], first["tool_calls"], first["changed"]) == (
        {"base": 4, "cand": 3},
        {"base": 3, "cand": 2},
        True,
    )
    assert cases["refund-3"]["trajectory"]["changed"] is False
    result = cases["refund-1"]["cand"]["results"][0]
    assert [s["kind"] for s in result["steps"]] == ["model", "tool", "model", "tool", "model"]
    assert [c["name"] for c in result["tool_calls"]] == ["lookup_order", "issue_refund"]


def test_junit_names_the_trajectory_change_of_each_case() -> None:
    xml = junit.render(_refund_report())
    assert (
        "message=\"regressed: label: expected 'refund', got 'approve'; trajectory: " + REFUND_1 + '"'
    ) in xml
    assert "trajectory changed: lookup_order: order_id 7 -&gt; 8" in xml
    assert f'<property name="trajectory" value="{PER_CASE.replace(">", "&gt;")}" />' in xml


def test_terminal_shows_the_per_case_rows_and_the_trajectory() -> None:
    out = io.StringIO()
    print_gate(
        Console(file=out, width=200, color_system=None), _refund_report(GatePolicy(max_step_increase=0.0))
    )
    text = out.getvalue()
    assert f"↳ trajectory: {REFUND_1}" in text
    assert "  2 with a changed trajectory:" in text
    assert "refund-4 [refund]  (still passing) now calls escalate_to_human after issue_refund" in text
    rows = [" ".join(line.replace("│", " ").split()) for line in text.splitlines()]
    assert "steps per case 7.0 6.6 -0.4 [-2.5, +1.7]" in rows
    assert "cost per case $0.0040 $0.0038 -5.0% [-31.0%, +21.0%]" in rows


def test_html_page_flags_and_shows_trajectories() -> None:
    page = html.page(_refund_report())
    (view,) = page.pairs
    assert ("trajectory", "Trajectory changed") in view.filters
    figures = {f.label: f for f in view.figures}
    assert (figures["steps per case"].value, figures["steps per case"].detail) == (
        "7.0 → 6.6",
        "-0.4 per case, paired over 5",
    )
    assert view.intervals[-1] == "paired over 5 cases: " + PER_CASE
    data = json.loads(str(page.data))
    cases = {c["id"]: c for c in data["pairs"][0]["cases"]}
    assert {cid for cid, c in cases.items() if "trajectory" in c["flags"]} == {
        "refund-1",
        "refund-2",
        "refund-4",
        "refund-5",
    }
    first = cases["refund-1"]
    assert first["trajectory"]["sentences"][0] == [
        "no longer calls ",
        "lookup_policy",
        " before ",
        "issue_refund",
        "",
    ]
    assert first["trajectory"]["cand"] == [
        ["lookup_order", '{"order_id": 7}'],
        ["issue_refund", '{"amount": 30, "order_id": 7}'],
    ]
    assert first["why"] == f"label: expected 'refund', got 'approve' · trajectory: {REFUND_1}"
    # A run without tools gets no trajectory filter.
    plain = html.page(
        GateReport(
            pairs=(pair(record([("a-1", "pass")]), record([("a-1", "pass")], run_id="c"), GatePolicy()),)
        )
    )
    assert "trajectory" not in {f for f, _ in plain.pairs[0].filters}


def test_annotations_name_the_trajectory_change() -> None:
    lines = annotations.render(_refund_report()).splitlines()
    assert any(
        line.endswith(
            "case 'refund-1' regressed (passed on the baseline, fails now): "
            f"label: expected 'refund', got 'approve'; trajectory: {REFUND_1}"
        )
        for line in lines
    )


def test_the_page_shows_a_case_trajectory_in_the_browser(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "report.html"
    path.write_text(html.render(_refund_report()), encoding="utf-8")
    p = Page(browser, path)
    try:
        p.click_filter("trajectory")
        assert p.rows() == ["refund-1", "refund-2", "refund-4", "refund-5"]
        assert p.page.text_content('button[data-filter="trajectory"] .count') == "4"
        p.page.click('tr.case-row[data-case-id="refund-1"]')
        detail = 'tr.detail[data-detail-of="refund-1"]'
        moves = p.page.eval_on_selector_all(f"{detail} ul.moves li", "els => els.map(e => e.textContent)")
        assert moves == REFUND_1.split("; ")
        names = p.page.eval_on_selector_all(
            f"{detail} ul.moves li:first-child code", "els => els.map(e => e.textContent)"
        )
        assert names == ["lookup_policy", "issue_refund"]
        calls = p.page.eval_on_selector_all(
            f"{detail} ol.calls", "ols => ols.map(o => Array.from(o.children, li => li.textContent))"
        )
        assert calls == [
            [
                'lookup_order {"order_id": 7}',
                'lookup_policy {"kind": "refund"}',
                'issue_refund {"amount": 30, "order_id": 7}',
            ],
            ['lookup_order {"order_id": 7}', 'issue_refund {"amount": 30, "order_id": 7}'],
        ]
        assert p.errors == []
        assert [m for m in p.console if m[0] in ("error", "warning")] == []
        assert p.requests == [p.url]
    finally:
        p.close()
