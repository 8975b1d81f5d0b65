"""Replayed and mocked tools: where a tool call's answer comes from (agent_evals.replay).

Every matching mode, consumption order, each kind of mock, the exact messages of
unanswered calls and the replay report, the sandbox stopping a template bomb, and
properties over random argument structures. All data here is synthetic.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_evals.models import Case, ToolReplay
from agent_evals.providers.base import ToolCall
from agent_evals.record import ReplayRecord
from agent_evals.replay import (
    Replayer,
    ToolAnswer,
    Unanswered,
    arguments_match,
    call_text,
    result_text,
)
from tests.support import write_tree

ORDER_SHIPPED = {"status": "shipped", "eta": "2026-01-05"}  # synthetic


def make_case(*recorded: dict[str, Any], vars: dict[str, Any] | None = None) -> Case:
    return Case.model_validate({"id": "c1", "vars": vars or {}, "tools": list(recorded)})


def rules(**by_tool: dict[str, Any]) -> dict[str, ToolReplay]:
    return {name: ToolReplay.model_validate(rule) for name, rule in by_tool.items()}


def answer(replayer: Replayer, name: str, arguments: Any, **kwargs: Any) -> ToolAnswer:
    return asyncio.run(replayer.answer(ToolCall(name, arguments, id="call_1"), **kwargs))


def unanswered(replayer: Replayer, name: str, arguments: Any) -> str:
    with pytest.raises(Unanswered) as info:
        answer(replayer, name, arguments)
    return str(info.value)


def replayer(case: Case, tool_rules: dict[str, ToolReplay] | None = None, root: Path = Path(".")) -> Replayer:
    return Replayer(case, tool_rules or {}, root=root)


# --- call_text and result_text ----------------------------------------------------------


def test_call_text_is_canonical_json_with_sorted_keys() -> None:
    assert call_text("lookup_order", {"id": 7}) == 'lookup_order({"id": 7})'
    assert call_text("refund", {"reason": "späť", "amount": 10.5, "items": [1, {"b": 1, "a": 2}]}) == (
        'refund({"amount": 10.5, "items": [1, {"a": 2, "b": 1}], "reason": "späť"})'
    )
    assert call_text("ping", {}) == "ping({})"


def test_call_text_shows_text_that_is_not_json_as_it_was_sent() -> None:
    assert call_text("lookup_order", '{"id": 7') == 'lookup_order({"id": 7)'


def test_call_text_cuts_huge_arguments() -> None:
    text = call_text("search", {"q": "x" * 5000})
    assert text == "search(" + '{"q": "' + "x" * 993 + "…(4,009 more characters))"


def test_result_text_is_the_string_or_compact_json_or_the_error() -> None:
    assert result_text(ToolAnswer("plain text", None, "mock")) == "plain text"
    assert result_text(ToolAnswer({"b": [1, 2], "a": "é"}, None, "recorded")) == '{"b":[1,2],"a":"é"}'
    assert result_text(ToolAnswer(None, None, "recorded")) == "null"
    assert result_text(ToolAnswer(7, None, "mock")) == "7"
    assert result_text(ToolAnswer({"x": 1}, "order 7 not found", "recorded")) == "order 7 not found"


# --- matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "called", "matches"),
    [
        ({"id": 7}, {"id": 7}, True),
        ({"id": 7}, {"id": 7.0}, True),  # one JSON number
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),  # key order is not JSON
        ({"flag": True}, {"flag": 1}, False),  # true is not 1
        ({"flag": 1}, {"flag": True}, False),
        ({"flag": False}, {"flag": 0}, False),
        ({"id": 7}, {"id": "7"}, False),
        ({"id": 7}, {"id": 7, "rush": True}, False),  # an extra argument
        ({"id": 7, "rush": True}, {"id": 7}, False),
        ({"o": {"id": 7, "x": [1, 2]}}, {"o": {"id": 7, "x": [1, 2]}}, True),
        ({"x": [1, 2]}, {"x": [2, 1]}, False),
        ({"x": None}, {}, False),
        ({"x": math.nan}, {"x": math.nan}, True),  # NaN is its own value here, so a call matches itself
        ({"n": 2**53 + 1}, {"n": float(2**53)}, False),  # compared exactly, never through a float
    ],
)
def test_exact_match(recorded: dict[str, Any], called: Any, matches: bool) -> None:
    assert arguments_match(None, recorded, called) is matches
    assert arguments_match(ToolReplay(match="exact"), recorded, called) is matches


@pytest.mark.parametrize(
    ("recorded", "called", "matches"),
    [
        ({"id": 7}, {"id": 7, "rush": True}, True),
        ({}, {"anything": [1]}, True),
        ({"id": 7, "rush": True}, {"id": 7}, False),
        ({"o": {"id": 7}}, {"o": {"id": 7, "note": "gift"}, "x": 1}, True),  # recursively for objects
        ({"o": {"id": 7, "note": "gift"}}, {"o": {"id": 7}}, False),
        ({"items": [{"sku": "A"}]}, {"items": [{"sku": "A", "qty": 2}]}, True),  # objects in lists too
        ({"items": [{"sku": "A"}]}, {"items": [{"sku": "A"}, {"sku": "B"}]}, False),  # lists: same length
        ({"id": 1}, {"id": True}, False),
        ({"o": {"id": 7}}, {"o": 7}, False),
    ],
)
def test_subset_match(recorded: dict[str, Any], called: Any, matches: bool) -> None:
    assert arguments_match(ToolReplay(match="subset"), recorded, called) is matches


@pytest.mark.parametrize(
    ("recorded", "called", "matches"),
    [
        ({"order": {"id": 7}, "note": "a"}, {"order": {"id": 7.0}, "note": "b"}, True),
        ({"order": {"id": 7}}, {"order": {"id": 8}}, False),
        ({"items": [{"sku": "A"}], "q": 1}, {"items": [{"sku": "A", "qty": 9}], "q": 2}, True),
        ({"items": [{"sku": "A"}]}, {"items": [{"sku": "B"}]}, False),
        ({"note": "a"}, {"note": "b"}, True),  # absent on both sides agrees
        ({"order": {"id": 7}}, {"note": "b"}, False),  # absent on one side does not
        ({"note": "a"}, {"order": {"id": 7}}, False),
    ],
)
def test_paths_match(recorded: dict[str, Any], called: Any, matches: bool) -> None:
    rule = ToolReplay(match="paths", paths=("order.id", "items[0].sku"))
    assert arguments_match(rule, recorded, called) is matches


@pytest.mark.parametrize("mode", ["exact", "subset", "paths"])
def test_arguments_that_are_not_json_never_match_a_record(mode: str) -> None:
    rule = ToolReplay(match=mode, paths=("id",) if mode == "paths" else ())  # type: ignore[arg-type]
    assert arguments_match(rule, {}, "{}") is False
    assert arguments_match(rule, {}, '{"id": 7') is False


# --- answering from records ---------------------------------------------------------------


def test_a_recorded_call_answers_with_its_result() -> None:
    r = replayer(make_case({"name": "lookup_order", "arguments": {"id": 7}, "result": ORDER_SHIPPED}))
    got = answer(r, "lookup_order", {"id": 7})
    assert got == ToolAnswer(ORDER_SHIPPED, None, "recorded")
    assert r.report() == ReplayRecord(unmatched=(), unconsumed=())


def test_a_recorded_error_is_the_tools_failure() -> None:
    r = replayer(make_case({"name": "lookup_order", "arguments": {"id": 9}, "error": "order 9 not found"}))
    assert answer(r, "lookup_order", {"id": 9}) == ToolAnswer(None, "order 9 not found", "recorded")


def test_the_answer_is_a_copy_the_loop_may_change() -> None:
    r = replayer(make_case({"name": "t", "result": {"list": [1]}}, {"name": "t", "result": {"list": [1]}}))
    first = answer(r, "t", {})
    first.result["list"].append(2)
    assert r.case.tools[0].result == {"list": [1]}


def test_records_are_consumed_in_case_order_each_once() -> None:
    case = make_case(
        {"name": "lookup_order", "arguments": {"id": 7}, "result": "first"},
        {"name": "lookup_policy", "arguments": {}, "result": "policy"},
        {"name": "lookup_order", "arguments": {"id": 7}, "result": "second"},
        {"name": "lookup_order", "arguments": {"id": 8}, "result": "eight"},
    )
    r = replayer(case)
    assert answer(r, "lookup_order", {"id": 8}).result == "eight"
    assert answer(r, "lookup_order", {"id": 7}).result == "first"
    assert answer(r, "lookup_order", {"id": 7}).result == "second"
    assert r.report() == ReplayRecord(unmatched=(), unconsumed=("lookup_policy({})",))


def test_subset_records_are_taken_first_unconsumed_first() -> None:
    case = make_case(
        {"name": "search", "arguments": {"q": "refund"}, "result": 1},
        {"name": "search", "arguments": {}, "result": 2},
    )
    r = replayer(case, rules(search={"match": "subset"}))
    # The first record that matches wins, even when a later one would match more closely.
    assert answer(r, "search", {"q": "refund", "page": 2}).result == 1
    assert answer(r, "search", {"q": "refund"}).result == 2


def test_a_record_used_once_then_the_mock_answers() -> None:
    case = make_case({"name": "lookup_order", "arguments": {"id": 7}, "result": ORDER_SHIPPED})
    r = replayer(case, rules(lookup_order={"mock": {"value": {"status": "unknown"}}}))
    assert answer(r, "lookup_order", {"id": 7}) == ToolAnswer(ORDER_SHIPPED, None, "recorded")
    assert answer(r, "lookup_order", {"id": 7}) == ToolAnswer({"status": "unknown"}, None, "mock")
    assert r.report() == ReplayRecord(unmatched=('lookup_order({"id": 7})',), unconsumed=())


def test_report_lists_unmatched_calls_in_call_order_and_unconsumed_records_in_case_order() -> None:
    case = make_case(
        {"name": "lookup_policy", "arguments": {"region": "EU"}, "result": "30 days"},
        {"name": "lookup_order", "arguments": {"id": 7}, "result": ORDER_SHIPPED},
        {"name": "issue_refund", "arguments": {"id": 7, "amount": 20}, "result": "ok"},
    )
    r = replayer(case, rules(issue_refund={"mock": {"value": "ok"}}))
    answer(r, "lookup_order", {"id": 7})
    answer(r, "issue_refund", {"amount": 25, "id": 7}, step=4)
    with pytest.raises(Unanswered):
        answer(r, "notify", {"to": "customer"})
    assert r.report() == ReplayRecord(
        unmatched=('step 4: issue_refund({"amount": 25, "id": 7})', 'notify({"to": "customer"})'),
        unconsumed=('lookup_policy({"region": "EU"})', 'issue_refund({"amount": 20, "id": 7})'),
    )


def test_text_arguments_are_answered_by_the_mock_never_by_a_record() -> None:
    case = make_case({"name": "lookup_order", "arguments": {}, "result": "recorded"})
    r = replayer(case, rules(lookup_order={"match": "subset", "mock": {"value": "mocked"}}))
    assert answer(r, "lookup_order", "{not json") == ToolAnswer("mocked", None, "mock")
    assert r.report() == ReplayRecord(
        unmatched=("lookup_order({not json)",), unconsumed=("lookup_order({})",)
    )


def test_replay_is_deterministic() -> None:
    case = make_case(
        {"name": "lookup_order", "arguments": {"id": 7}, "result": ORDER_SHIPPED},
        {"name": "lookup_order", "arguments": {"id": 8}, "result": "eight"},
        vars={"region": "EU"},
    )
    tool_rules = rules(
        lookup_order={"mock": {"template": '{"id": {{ args.id }}, "region": "{{ vars.region }}"}'}}
    )
    calls = [{"id": 8}, {"id": 9}, {"id": 7}, {"id": 8}]

    def run() -> tuple[list[ToolAnswer], ReplayRecord]:
        r = replayer(case, tool_rules)
        return [answer(r, "lookup_order", c) for c in calls], r.report()

    first, second = run(), run()
    assert first == second
    assert [a.source for a in first[0]] == ["recorded", "mock", "recorded", "mock"]
    assert first[0][1].result == {"id": 9, "region": "EU"}


# --- unanswered calls: the exact messages --------------------------------------------------


def test_an_unrecorded_call_with_no_records_and_no_mock() -> None:
    assert unanswered(replayer(make_case()), "lookup_order", {"id": 7}) == (
        'unrecorded call lookup_order({"id": 7}); '
        "record it in the case's tools or add a mock under the eval set's tools.lookup_order"
    )


def test_an_unrecorded_call_when_records_of_the_tool_have_other_arguments() -> None:
    case = make_case(
        {"name": "lookup_order", "arguments": {"id": 8}}, {"name": "lookup_order", "arguments": {"id": 9}}
    )
    assert unanswered(replayer(case), "lookup_order", {"id": 7}) == (
        'unrecorded call lookup_order({"id": 7}): the case\'s 2 recorded lookup_order calls have other '
        "arguments (match: exact); "
        "record it in the case's tools or add a mock under the eval set's tools.lookup_order"
    )
    one = make_case({"name": "lookup_order", "arguments": {"id": 8}})
    assert unanswered(replayer(one, rules(lookup_order={"match": "subset"})), "lookup_order", {"id": 7}) == (
        'unrecorded call lookup_order({"id": 7}): the case\'s one recorded lookup_order call has other '
        "arguments (match: subset); "
        "record it in the case's tools or add a mock under the eval set's tools.lookup_order"
    )


def test_an_unrecorded_call_when_its_record_was_already_used() -> None:
    r = replayer(make_case({"name": "lookup_order", "arguments": {"id": 7}, "result": "x"}))
    answer(r, "lookup_order", {"id": 7})
    assert unanswered(r, "lookup_order", {"id": 7}) == (
        'unrecorded call lookup_order({"id": 7}): the recorded call it matches already answered an earlier '
        "call (each answers one); "
        "record it in the case's tools or add a mock under the eval set's tools.lookup_order"
    )


def test_an_unrecorded_call_whose_arguments_are_not_json() -> None:
    r = replayer(make_case({"name": "lookup_order", "arguments": {"id": 7}}))
    assert unanswered(r, "lookup_order", '{"id": 7') == (
        'unrecorded call lookup_order({"id": 7): its arguments are not JSON, so no recorded call can match; '
        "add a mock under the eval set's tools.lookup_order"
    )


def test_arguments_nested_too_deeply_to_show_are_still_answered_or_unanswered_cleanly() -> None:
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    r = replayer(make_case({"name": "t", "arguments": {"a": {}}}), rules(u={"mock": {"value": 1}}))
    assert unanswered(r, "t", deep) == (
        "unrecorded call t(<arguments nested too deeply to show>): the case's one recorded t call has other "
        "arguments (match: exact); record it in the case's tools or add a mock under the eval set's tools.t"
    )
    assert answer(r, "u", deep) == ToolAnswer(1, None, "mock")
    assert r.report() == ReplayRecord(
        unmatched=("t(<arguments nested too deeply to show>)", "u(<arguments nested too deeply to show>)"),
        unconsumed=('t({"a": {}})',),
    )


# --- template mocks ---------------------------------------------------------------------------


def test_a_template_mock_renders_args_and_vars_and_reads_json() -> None:
    tool_rules = rules(
        lookup_order={"mock": {"template": '{"id": {{ args.id }}, "region": {{ vars.region | tojson }}}'}},
        greet={"mock": {"template": "Hello {{ args.name }} from {{ vars.region }}"}},
        count={"mock": {"template": "{{ args.n + 1 }}"}},
    )
    r = replayer(make_case(vars={"region": "EU"}), tool_rules)
    assert answer(r, "lookup_order", {"id": 7}) == ToolAnswer({"id": 7, "region": "EU"}, None, "mock")
    assert answer(r, "greet", {"name": "Ann"}) == ToolAnswer("Hello Ann from EU", None, "mock")
    assert answer(r, "count", {"n": 1}) == ToolAnswer(2, None, "mock")


def test_a_template_that_renders_nan_stays_text() -> None:
    r = replayer(make_case(), rules(t={"mock": {"template": "NaN"}}))
    assert answer(r, "t", {}).result == "NaN"


def test_a_template_mock_with_an_undefined_variable() -> None:
    r = replayer(make_case(), rules(lookup_order={"mock": {"template": "{{ args.order_id }}"}}))
    assert unanswered(r, "lookup_order", {"id": 7}) == (
        'the mock template of tools.lookup_order uses an undefined variable for lookup_order({"id": 7}): '
        "'dict object' has no attribute 'order_id' "
        "(templates see args and vars; use '| default(...)' for optional ones)"
    )


def test_a_template_mock_that_does_not_compile() -> None:
    r = replayer(make_case(), rules(t={"mock": {"template": "{{ args.id "}}))
    assert unanswered(r, "t", {}) == (
        "the mock template of tools.t does not compile: unexpected end of template, expected 'end of print "
        "statement'. (line 1)"
    )


def test_the_sandbox_refuses_what_templates_may_not_reach() -> None:
    r = replayer(make_case(), rules(t={"mock": {"template": "{{ args.__class__.__mro__ }}"}}))
    assert unanswered(r, "t", {}) == (
        "the mock template of tools.t was refused by the sandbox for t({}): access to attribute '__class__' "
        "of 'dict' object is unsafe. (templates may only use args, vars and Jinja filters)"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{{ 'x' * 10**9 }}",
            "the mock template of tools.bomb builds a value of about 1,000,000,000 characters with '*', "
            "over the limit of 1,000,000 for bomb({}) "
            "(build smaller strings and lists; see 'Template limits' in the README)",
        ),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "the mock template of tools.bomb takes more than 1,000,000 steps (loop iterations, calls, "
            "filters, operators and outputs) for bomb({}) (loop over fewer items; a prompt template should "
            "not compute)",
        ),
        (
            "{{ 9 ** (9 ** 99) }}",
            "the mock template of tools.bomb computes a number of about inf digits with '**', over the limit "
            "of 4,300 for bomb({}) (a prompt template should not compute with big numbers)",
        ),
    ],
    ids=["string", "loops", "power"],
)
def test_a_template_bomb_is_stopped_by_the_sandbox_limits(template: str, message: str) -> None:
    r = replayer(make_case(), rules(bomb={"mock": {"template": template}}))
    started = time.monotonic()
    got = unanswered(r, "bomb", {})
    assert time.monotonic() - started < 5
    assert got == message
    assert r.report().unmatched == ("bomb({})",)


# --- value and python mocks -----------------------------------------------------------------


def test_a_value_mock_answers_with_a_copy() -> None:
    tool_rules = rules(t={"mock": {"value": {"items": [1]}}})
    r = replayer(make_case(), tool_rules)
    answer(r, "t", {}).result["items"].append(2)
    assert answer(r, "t", {}) == ToolAnswer({"items": [1]}, None, "mock")


MOCKS = '''\
"""Synthetic tool mocks for tests."""
import asyncio
import time

from agent_evals.replay import ToolFailure

SEEN = []


def lookup_order(arguments, case):
    SEEN.append((arguments, case.id, case.vars))
    arguments["mutated"] = True
    return {"id": arguments["id"], "region": case.vars["region"], "via": "sync"}


async def lookup_order_async(arguments, case):
    await asyncio.sleep(0)
    return {"id": arguments["id"], "via": "async"}


def missing(arguments, case):
    raise ToolFailure(f"order {arguments['id']} not found")


def broken(arguments, case):
    return arguments["nope"]


def not_json(arguments, case):
    return object()


async def slow(arguments, case):
    await asyncio.sleep(30)


def own_timeout(arguments, case):
    raise TimeoutError("upstream timed out")


def returns_text(arguments, case):
    return "plain"

NOT_A_FUNCTION = 3
'''


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    module = f"mocks_{abs(hash(tmp_path)) % 10**8}"
    write_tree(tmp_path, {f"{module}.py": MOCKS})
    yield tmp_path
    sys.modules.pop(module, None)


def python_rules(project: Path, **by_tool: str) -> dict[str, ToolReplay]:
    module = next(project.glob("mocks_*.py")).stem
    return rules(**{tool: {"mock": {"python": f"{module}:{fn}"}} for tool, fn in by_tool.items()})


def test_sync_and_async_python_mocks(project: Path) -> None:
    tool_rules = python_rules(project, lookup_order="lookup_order", lookup_async="lookup_order_async")
    case = make_case(vars={"region": "EU"})
    r = replayer(case, tool_rules, project)
    call_arguments = {"id": 7}
    assert answer(r, "lookup_order", call_arguments) == ToolAnswer(
        {"id": 7, "region": "EU", "via": "sync"}, None, "mock"
    )
    assert answer(r, "lookup_async", {"id": 8}) == ToolAnswer({"id": 8, "via": "async"}, None, "mock")
    # The mock got copies: what it changed is not the call the loop records.
    assert call_arguments == {"id": 7}
    module = sys.modules[next(project.glob("mocks_*.py")).stem]
    assert module.SEEN == [({"id": 7, "mutated": True}, "c1", {"region": "EU"})]


def test_a_python_mock_raising_tool_failure_answers_with_a_tool_error(project: Path) -> None:
    r = replayer(make_case(), python_rules(project, lookup_order="missing"), project)
    assert answer(r, "lookup_order", {"id": 7}) == ToolAnswer(None, "order 7 not found", "mock")


def test_a_python_mock_with_a_bug_leaves_the_call_unanswered(project: Path) -> None:
    tool_rules = python_rules(project, a="broken", b="not_json", c="own_timeout", d="returns_text")
    module = next(project.glob("mocks_*.py")).stem
    r = replayer(make_case(), tool_rules, project)
    assert (
        unanswered(r, "a", {"id": 7})
        == f"mock python:{module}:broken raised KeyError: 'nope' for a({{\"id\": 7}})"
    )
    assert unanswered(r, "b", {}) == (
        f"mock python:{module}:not_json returned a object for b({{}}), which is not JSON "
        "(return a dict, list, str, number, bool or None)"
    )
    assert (
        unanswered(r, "c", {})
        == f"mock python:{module}:own_timeout raised TimeoutError: upstream timed out for c({{}})"
    )
    assert answer(r, "d", {}) == ToolAnswer("plain", None, "mock")


def test_a_python_mock_that_takes_too_long(project: Path) -> None:
    module = next(project.glob("mocks_*.py")).stem
    r = Replayer(make_case(), python_rules(project, t="slow"), root=project, timeout_s=0.05)
    assert unanswered(r, "t", {}) == f"mock python:{module}:slow did not answer t({{}}) within 0.05 s"


def test_a_python_mock_outside_the_project_is_refused_before_import(project: Path) -> None:
    r = replayer(
        make_case(),
        rules(t={"mock": {"python": "subprocess:run"}}, u={"mock": {"python": "nowhere:fn"}}),
        project,
    )
    assert unanswered(r, "t", {}) == (
        "mock python:subprocess:run cannot answer t({}): refusing python:subprocess:run: 'subprocess' is in "
        "the standard library, outside the project (use python:module:function with a module file inside "
        "the project, e.g. python:agent.main:answer)"
    )
    assert unanswered(r, "u", {}) == (
        f"mock python:nowhere:fn cannot answer u({{}}): refusing python:nowhere:fn: no module file for "
        f"'nowhere' under {project.resolve()} (use python:module:function with a module file inside the "
        "project, e.g. python:agent.main:answer)"
    )


def test_a_python_mock_target_that_is_not_a_function(project: Path) -> None:
    module = next(project.glob("mocks_*.py")).stem
    r = replayer(make_case(), python_rules(project, t="NOT_A_FUNCTION", u="absent"), project)
    hint = "(use python:module:function with a module file inside the project, e.g. python:agent.main:answer)"
    assert unanswered(r, "t", {}) == (
        f"mock python:{module}:NOT_A_FUNCTION cannot answer t({{}}): '{module}.NOT_A_FUNCTION' (int) is not "
        "callable and has no invoke/ainvoke (a Runnable) or run/run_sync (an agent) "
        f"(python:{module}:NOT_A_FUNCTION) {hint}"
    )
    assert unanswered(r, "u", {}) == (
        f"mock python:{module}:absent cannot answer u({{}}): module '{module}' has no 'absent' "
        f"(python:{module}:absent) {hint}"
    )


# --- properties -----------------------------------------------------------------------------

PROPERTIES = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=5)
paths = st.lists(
    st.sampled_from(["a", "b", "a.b", "a[0]", "a.0.b", "x[1].y", "[0]", "..", "a[", "0"])
    | st.text(max_size=6),
    min_size=1,
    max_size=3,
)
tool_names = st.sampled_from(["t", "u"])
any_rule = st.one_of(
    st.builds(lambda: ToolReplay(match="exact")),
    st.builds(lambda: ToolReplay(match="subset")),
    paths.map(lambda p: ToolReplay(match="paths", paths=tuple(p))),
)


@PROPERTIES
@given(
    records=st.lists(st.tuples(tool_names, json_objects), max_size=4),
    calls=st.lists(st.tuples(tool_names, json_objects | st.text(max_size=10) | json_values), max_size=5),
    rule=any_rule,
)
def test_random_arguments_raise_nothing_but_unanswered(
    records: list[tuple[str, dict[str, Any]]], calls: list[tuple[str, Any]], rule: ToolReplay
) -> None:
    case = make_case(
        *({"name": name, "arguments": args, "result": i} for i, (name, args) in enumerate(records))
    )
    r = replayer(case, {"t": rule})
    answered = 0
    for name, arguments in calls:
        try:
            got = answer(r, name, arguments)
        except Unanswered as exc:
            message = str(exc)
        else:
            assert got.source == "recorded"
            answered += 1
            continue
        assert message.startswith(f"unrecorded call {call_text(name, arguments)}")
    report = r.report()
    assert len(report.unmatched) == len(calls) - answered
    assert len(report.unconsumed) == len(records) - answered


@PROPERTIES
@given(arguments=json_objects, rule=any_rule)
def test_a_call_matches_a_record_of_its_own_arguments_in_every_mode(
    arguments: dict[str, Any], rule: ToolReplay
) -> None:
    case = make_case({"name": "t", "arguments": arguments, "result": "recorded"})
    assert arguments_match(rule, case.tools[0].arguments, arguments)
    r = replayer(case, {"t": rule})
    assert answer(r, "t", arguments) == ToolAnswer("recorded", None, "recorded")
    assert r.report() == ReplayRecord()


@pytest.mark.parametrize(
    ("template", "raised"),
    [
        ("{{ '{a}'.format() }}", "KeyError: 'a'"),
        ("{{ 'x' | truncate(0) }}", "AssertionError: expected length"),
    ],
)
def test_a_template_mock_whatever_it_raises_leaves_the_call_unanswered(template: str, raised: str) -> None:
    """A KeyError or an AssertionError from a method or a filter ended the run in `internal error`."""
    r = replayer(make_case(), rules(t={"mock": {"template": template}}))
    assert unanswered(r, "t", {}).startswith(f"the mock template of tools.t failed for t({{}}): {raised}")
