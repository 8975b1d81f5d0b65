"""Multi-turn cases: a conversation of scripted user turns, graded per turn and as a whole.

The model is a ScriptedServer on 127.0.0.1 answering in OpenAI's format; every response
is parsed by the SDK's response type and every request checked against the SDK's request
type (tests/test_agent_loop.py). The model's answer depends on how many assistant
messages the conversation already holds, so each test knows every request it must see.
All data here is synthetic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_evals.cli import main
from agent_evals.diff import diff
from agent_evals.load import load_project
from agent_evals.models import Case, GraderSpec
from agent_evals.record import CaseResult, load_record
from tests.http_server import ScriptedServer
from tests.test_agent_loop import OPENAI, Turn, scripted_model, steps_of
from tests.test_sdk_contract import request_problems

SYSTEM = "Answer with one word (synthetic support agent)."
FIRST = "I was charged twice for order A-17."
SECOND = "Ada here: can you refund it?"
THIRD = "Thanks, close the ticket."

TOOLS = """\
tools:
  - name: lookup_order
    description: Look an order up by id (synthetic).
    parameters:
      type: object
      properties: {order_id: {type: string}}
      required: [order_id]
"""

CASE = """\
  - id: convo
    vars: {ticket: "I was charged twice for order A-17.", name: Ada}
    expected: billing
    tools:
      - {name: lookup_order, arguments: {order_id: A-17}, result: {status: paid, charges: 2}}
    turns:
      - user: "{{ name }} here: can you refund it?"
        expected: refund
      - user: Thanks, close the ticket.
        expected: closed
"""

GRADERS = """\
graders:
  - {type: exact_match, name: per_turn, turns: each}
  - {type: tool_called, name: looked_up, tool: lookup_order}
"""

# Turn 1 answers; turn 2 looks the order up (answered from the case's record), then answers;
# turn 3 answers. Indexed by the assistant messages the request already holds.
SCRIPT: list[Turn] = ["billing", [("lookup_order", {"order_id": "A-17"})], "refund", "closed"]


@pytest.fixture(autouse=True)
def _in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def server() -> Any:
    with ScriptedServer() as server:
        yield server
        assert not server.errors, "\n".join(server.errors)
    for received in server.requests:
        assert request_problems(OPENAI.validator, received.json) == [], received.json


def write_project(root: Path, server: ScriptedServer, *, case: str = CASE, graders: str = GRADERS) -> None:
    files = {
        "agent-evals.yaml": (
            "schema_version: 1\n"
            f"providers:\n  model: {{type: openai, base_url: '{server.url}/v1', api_key_env: null}}\n"
            "prices:\n  agent-model: {input_per_mtok: 1000000, output_per_mtok: 2000000}\n"
        ),
        "prompts/support.yaml": (
            "schema_version: 1\nid: support\nversion: 1\ndescription: Route a ticket (synthetic).\n"
            "owner: {name: Test team, oncall: test-pager}\n"
            "model: {provider: model, name: agent-model, max_tokens: 50}\n"
            f"messages:\n  - role: system\n    content: {SYSTEM}\n"
            '  - role: user\n    content: "{{ ticket }}"\n' + TOOLS
        ),
        "evalsets/support.yaml": (
            "schema_version: 1\nid: support\nprompt: support\nmetric: tickets handled right\n"
            "provenance: {source: synthetic, synthetic: true}\n" + graders + "cases:\n" + case
        ),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def run(root: Path, *args: str, code: int = 0, out: str = "out.jsonl") -> CaseResult:
    assert main(["run", "--output", str(root / out), *args]) == code
    [case] = load_record(root / out).cases
    return case


def messages(*turns: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": FIRST}, *turns]


LOOKUP_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "call_2_0",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"order_id":"A-17"}'},
        }
    ],
}
LOOKUP_RESULT = {"role": "tool", "tool_call_id": "call_2_0", "content": '{"status":"paid","charges":2}'}


def test_a_three_turn_conversation_sends_each_turn_after_the_last_answer(
    tmp_path: Path, server: ScriptedServer
) -> None:
    server.default = scripted_model(OPENAI, SCRIPT)
    write_project(tmp_path, server)
    case = run(tmp_path, "--no-cache")

    # Each request holds the conversation so far: earlier answers, tool calls and results included.
    sent = [r.json["messages"] for r in server.requests]
    assert sent == [
        messages(),
        messages({"role": "assistant", "content": "billing"}, {"role": "user", "content": SECOND}),
        messages(
            {"role": "assistant", "content": "billing"},
            {"role": "user", "content": SECOND},
            LOOKUP_CALL,
            LOOKUP_RESULT,
        ),
        messages(
            {"role": "assistant", "content": "billing"},
            {"role": "user", "content": SECOND},
            LOOKUP_CALL,
            LOOKUP_RESULT,
            {"role": "assistant", "content": "refund"},
            {"role": "user", "content": THIRD},
        ),
    ]
    # The tools go with every turn's requests.
    assert all([t["function"]["name"] for t in r.json["tools"]] == ["lookup_order"] for r in server.requests)

    # Steps accumulate over the conversation, each with its turn.
    assert [(s["kind"], s["turn"]) for s in steps_of(case)] == [
        ("model", 1),
        ("model", 2),
        ("tool", 2),
        ("model", 2),
        ("model", 3),
    ]
    assert steps_of(case)[2] == {
        "kind": "tool",
        "name": "lookup_order",
        "arguments": {"order_id": "A-17"},
        "call_id": "call_2_0",
        "result": {"status": "paid", "charges": 2},
        "source": "recorded",
        "turn": 2,
    }
    assert case.replay is not None
    assert (case.replay.unmatched, case.replay.unconsumed) == ((), ())

    assert [t.model_dump(mode="json", exclude={"grades"}) for t in case.turns] == [
        {"turn": 1, "user": FIRST, "output": "billing", "finish_reason": "stop", "expected": "billing"},
        {"turn": 2, "user": SECOND, "output": "refund", "finish_reason": "stop", "expected": "refund"},
        {"turn": 3, "user": THIRD, "output": "closed", "finish_reason": "stop", "expected": "closed"},
    ]
    assert [[(g.grader, g.passed, g.reason) for g in t.grades] for t in case.turns] == [
        [("per_turn", True, "matches 'billing'")],
        [("per_turn", True, "matches 'refund'")],
        [("per_turn", True, "matches 'closed'")],
    ]
    # The output is the final answer; the totals are the whole conversation's (four model calls).
    assert (case.status, case.output, case.finish_reason) == ("pass", "closed", "stop")
    assert case.usage is not None
    assert case.usage.input_tokens == 4 * OPENAI.usage["input_tokens"]
    assert case.cost_usd == 4 * OPENAI.cost
    grades = {g.grader: (g.passed, g.score, g.reason) for g in case.grades}
    assert grades["per_turn"] == (True, 1.0, "passed on turns 1, 2, 3")
    # A trajectory grader with turns: last sees every step of the conversation (the call is in turn 2).
    assert grades["looked_up"] == (True, 1.0, "lookup_order called once (step 3)")


def test_each_names_the_first_failing_turn_and_scores_the_mean(
    tmp_path: Path, server: ScriptedServer
) -> None:
    server.default = scripted_model(
        OPENAI, ["billing", [("lookup_order", {"order_id": "A-17"})], "billing", "open"]
    )
    write_project(tmp_path, server)
    case = run(tmp_path, "--no-cache", code=0)

    [per_turn] = [g for g in case.grades if g.grader == "per_turn"]
    assert (per_turn.passed, per_turn.score) == (False, pytest.approx(1 / 3))
    assert per_turn.reason == "turn 2: expected 'refund', got 'billing'"
    assert per_turn.details["turns"] == {
        "1": {"passed": True, "score": 1.0, "reason": "matches 'billing'"},
        "2": {"passed": False, "score": 0.0, "reason": "expected 'refund', got 'billing'"},
        "3": {"passed": False, "score": 0.0, "reason": "expected 'closed', got 'open'"},
    }
    assert case.status == "fail"


def test_a_turn_without_expected_is_skipped_by_graders_that_need_one(
    tmp_path: Path, server: ScriptedServer
) -> None:
    server.default = scripted_model(OPENAI, SCRIPT)
    case_yaml = CASE.replace("        expected: refund\n", "")
    write_project(tmp_path, server, case=case_yaml)
    case = run(tmp_path, "--no-cache")

    [per_turn] = [g for g in case.grades if g.grader == "per_turn"]
    assert (per_turn.passed, per_turn.reason) == (True, "passed on turns 1, 3")
    assert [len(t.grades) for t in case.turns] == [1, 0, 1]


def test_a_failing_turn_ends_the_case_as_an_error_naming_the_turn(
    tmp_path: Path, server: ScriptedServer
) -> None:
    # Turn 2 asks for an order the case never recorded, and no mock answers it.
    server.default = scripted_model(OPENAI, ["billing", [("lookup_order", {"order_id": "B-9"})], "refund"])
    write_project(tmp_path, server)
    case = run(tmp_path, "--no-cache", code=3)

    assert case.status == "error"
    assert case.error == (
        'turn 2: unrecorded call lookup_order({"order_id": "B-9"}): the case\'s one recorded lookup_order call '
        "has other arguments (match: exact); record it in the case's tools or add a mock under the eval set's "
        "tools.lookup_order"
    )
    assert len(server.requests) == 2
    assert [(t.turn, t.output) for t in case.turns] == [(1, "billing"), (2, None)]
    assert [(s.kind, s.turn) for s in case.steps] == [("model", 1), ("model", 2), ("tool", 2)]


def test_max_steps_applies_per_turn_and_names_the_turn(tmp_path: Path, server: ScriptedServer) -> None:
    # Every answer after the first asks for the tool again: turn 2 never ends.
    server.default = scripted_model(OPENAI, ["billing", [("lookup_order", {"order_id": "A-17"})]])
    write_project(tmp_path, server)
    (tmp_path / "prompts/support.yaml").write_text(
        (tmp_path / "prompts/support.yaml").read_text() + "max_steps: 2\n", encoding="utf-8"
    )
    (tmp_path / "evalsets/support.yaml").write_text(
        (tmp_path / "evalsets/support.yaml")
        .read_text()
        .replace(
            "    tools:\n",
            "    tools:\n      - {name: lookup_order, arguments: {order_id: A-17}, result: {status: paid}}\n",
        ),
        encoding="utf-8",
    )
    case = run(tmp_path, "--no-cache", code=3)
    # Turn 1 took one model call; turn 2 gets its own two.
    assert (
        case.error
        == "turn 2: stopped after 2 model calls without a final answer (raise max_steps or fix the loop)"
    )
    assert len(server.requests) == 3


def test_a_rerun_comes_from_the_cache_with_no_request(tmp_path: Path, server: ScriptedServer) -> None:
    server.default = scripted_model(OPENAI, SCRIPT)
    write_project(tmp_path, server)
    first = run(tmp_path, out="first.jsonl")
    assert len(server.requests) == 4
    again = run(tmp_path, out="again.jsonl")
    assert len(server.requests) == 4
    assert again.cached is True
    assert all(s.cached for s in again.steps if s.kind == "model")
    # A cached answer costs nothing and sends nothing; all else is the first run's.
    assert (again.cost_usd, again.attempts) == (0.0, 0)
    drop = {"cached", "latency_ms", "steps", "cost_usd", "attempts"}
    assert again.model_dump(exclude=drop) == first.model_dump(exclude=drop)
    assert steps_of(again) == [
        {**s, "cached": True, "cost_usd": 0.0} if s["kind"] == "model" else s for s in steps_of(first)
    ]


def test_a_conversation_is_one_cluster_in_the_diff(tmp_path: Path, server: ScriptedServer) -> None:
    # diff.py clusters by `cluster`, else the case id: one record line, one unit, however many turns.
    server.default = scripted_model(OPENAI, SCRIPT)
    second = CASE.replace("id: convo", "id: convo-2")
    write_project(tmp_path, server, case=CASE + second)
    assert main(["run", "--output", str(tmp_path / "a.jsonl")]) == 0
    assert main(["run", "--output", str(tmp_path / "b.jsonl")]) == 0
    result = diff(load_record(tmp_path / "a.jsonl"), load_record(tmp_path / "b.jsonl"))
    assert result.overall.case_ids == ("convo", "convo-2")
    assert result.overall.clusters == ("convo", "convo-2")
    per_turn = next(g for g in result.graders if g.name == "per_turn")
    assert per_turn.n == 2


def test_validate_names_the_line_of_a_broken_turn_template(
    tmp_path: Path, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, server, case=CASE.replace("{{ name }} here", "{{ nme }} here"))
    assert main(["validate"]) == 2
    captured = capsys.readouterr()
    err = captured.out + captured.err
    line = 1 + (tmp_path / "evalsets/support.yaml").read_text().splitlines().index(
        '      - user: "{{ nme }} here: can you refund it?"'
    )
    assert (
        f"evalsets/support.yaml:{line}: undefined variable in turns[0] for case 'convo': 'nme' is undefined"
        in err
    )
    # run stops at the same line before anything is sent.
    assert main(["run", "--no-cache"]) == 2
    assert server.requests == []


def test_validate_refuses_an_each_grader_with_no_expected_in_any_turn(
    tmp_path: Path, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    case_yaml = (
        CASE.replace("    expected: billing\n", "")
        .replace("        expected: refund\n", "")
        .replace("        expected: closed\n", "")
    )
    write_project(tmp_path, server, case=case_yaml)
    assert main(["validate"]) == 2
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert (
        "evalsets/support.yaml:10: no turn of case 'convo' has an 'expected', which grader 'per_turn' "
        "(turns: each) needs (add 'expected' to the case (its first turn) or to one of its turns, or grade "
        "it with turns: last)"
    ) in err


def test_cases_and_graders_without_turns_keep_their_form() -> None:
    # Hashes and records of eval sets written before turns existed do not change.
    case = Case.model_validate({"id": "a", "vars": {"x": 1}, "expected": "y"})
    assert case.model_dump(mode="json") == {
        "id": "a",
        "vars": {"x": 1},
        "expected": "y",
        "tags": [],
        "cluster": None,
    }
    assert GraderSpec.model_validate({"type": "exact_match"}).model_dump(mode="json") == {
        "type": "exact_match",
        "name": None,
        "weight": 1.0,
        "required": True,
    }
    spec = GraderSpec.model_validate({"type": "exact_match", "turns": "each"})
    assert spec.turns == "each"
    assert spec.options == {}
    assert "turns" not in CaseResult(index=0, case_id="a", status="pass").model_dump_json()


def test_the_project_loads_turns_with_their_lines(tmp_path: Path, server: ScriptedServer) -> None:
    write_project(tmp_path, server)
    project = load_project(tmp_path)
    [case] = project.evalsets["support"].cases
    assert [(t.user, t.expected) for t in case.turns] == [
        ("{{ name }} here: can you refund it?", "refund"),
        ("Thanks, close the ticket.", "closed"),
    ]
    assert json.loads(json.dumps(case.model_dump(mode="json")))["turns"][1] == {
        "user": "Thanks, close the ticket.",
        "expected": "closed",
    }


# --- the PR comment shows a regressed conversation turn by turn ----------------------------------


def test_the_comment_shows_a_regressed_conversation_turn_by_turn() -> None:
    from agent_evals.gate import GateReport
    from agent_evals.models import GatePolicy
    from agent_evals.record import GradeRecord, TurnRecord
    from agent_evals.report import markdown
    from tests.test_reports import pair, record, structure

    def turns(second: str, passed: bool) -> tuple[TurnRecord, ...]:
        grade = GradeRecord(
            grader="per_turn",
            type="exact_match",
            passed=passed,
            score=1.0 if passed else 0.0,
            reason="matches" if passed else "expected 'refund', got 'billing'",
        )
        return (
            TurnRecord(turn=1, user="Where is my refund?", output='{"decision": "lookup"}'),
            TurnRecord(turn=2, user="Refund it now <b>please</b>", output=second, grades=(grade,)),
        )

    base = record([("convo", "pass", {"turns": turns('{"decision": "refund"}', True)})], run_id="base")
    cand = record(
        [("convo", "fail", {"turns": turns('{"decision": "billing"}', False)})], run_id="cand", version="2"
    )
    md = markdown.render(GateReport(pairs=(pair(base, cand, GatePolicy()),)))
    structure(md)  # well-formed, nothing escaped out of its block
    assert "<summary>Conversation (2 turns)</summary>" in md
    assert "**Turn 1**: Where is my refund?" in md
    assert (
        "**Turn 2**: Refund it now &lt;b>please&lt;/b>\n- ❌ **per\\_turn**: expected 'refund', got 'billing'"
        in md
    )
    turn_two = md[md.index("**Turn 2**") :]
    assert turn_two.index('"decision": "refund"') < turn_two.index('"decision": "billing"')  # baseline first
