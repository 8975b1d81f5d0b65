"""The agent loop end to end: `agent-evals run` on a prompt with tools, against a model on 127.0.0.1.

The model is a ScriptedServer answering in OpenAI's and in Anthropic's format; every
response it sends is parsed by the official SDK's response type, and every request it
receives is checked against the SDK's request type (tests/test_sdk_contract.py). The
tools are answered from the case's recorded calls (and the eval set's mocks), so each
test knows the whole trajectory it must produce. All data here is synthetic.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_evals import _jobclock
from agent_evals.cli import main
from agent_evals.record import CaseResult, RunRecord, load_record
from tests.http_server import Handler, Request, Response, ScriptedServer, anthropic_messages, openai_chat
from tests.pty_run import CLI, run_pty
from tests.support import write_tree
from tests.test_sdk_contract import (
    ANTHROPIC_REQUEST,
    OPENAI_REQUEST,
    parse_anthropic,
    parse_openai,
    request_problems,
)

Calls = list[tuple[str, dict[str, Any]]]
Turn = str | Calls | tuple[str, Calls]
"""What the model answers at one step: its final text, the tool calls it makes, or text and calls."""


@dataclass(frozen=True)
class Kind:
    """One wire format: how the scripted model answers, and what its requests must look like."""

    name: str
    provider_type: str
    base_path: str
    answer: Callable[..., Handler]
    parse: Callable[[dict[str, Any]], Any]
    validator: Any
    usage: dict[str, int]
    cost: float
    """Per model call, at the synthetic prices of `project` (one dollar a token in, two out)."""
    tool_finish: str
    final_finish: str


OPENAI = Kind(
    "openai", "openai", "/v1", openai_chat, parse_openai, OPENAI_REQUEST,
    {"input_tokens": 11, "output_tokens": 7}, 11 + 2 * 7, "tool_calls", "stop",
)  # fmt: skip
ANTHROPIC = Kind(
    "anthropic", "anthropic", "", anthropic_messages, parse_anthropic, ANTHROPIC_REQUEST,
    {"input_tokens": 13, "output_tokens": 5}, 13 + 2 * 5, "tool_use", "end_turn",
)  # fmt: skip


def scripted_model(kind: Kind, turns: Sequence[Turn]) -> Handler:
    """A model that answers a conversation by its step (the assistant turns it already holds).

    The last turn repeats past the end of the script. Tool calls get ids `call_<step>_<i>`,
    fixed, so the same conversation gets the same answer run after run. Each response is
    parsed by the SDK's type before it is sent.
    """

    def handle(request: Request) -> Response:
        messages = request.json["messages"]
        step = sum(m["role"] == "assistant" for m in messages)
        turn = turns[min(step, len(turns) - 1)]
        if isinstance(turn, str):
            handler = kind.answer(turn)
        else:
            text, calls = turn if isinstance(turn, tuple) else (None, turn)
            ids = [f"call_{step + 1}_{i}" for i in range(len(calls))]
            handler = kind.answer(text, tool_calls=calls, ids=ids)
        response = handler(request)
        assert isinstance(response, Response)
        kind.parse(response.json)
        return response

    return handle


@pytest.fixture(autouse=True)
def _in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=[OPENAI, ANTHROPIC], ids=lambda k: k.name)
def kind(request: pytest.FixtureRequest) -> Kind:
    k: Kind = request.param
    return k


@pytest.fixture
def server(kind: Kind) -> Any:
    with ScriptedServer() as server:
        yield server
        assert not server.errors, "\n".join(server.errors)
    # Every request the loop sent is one the real API accepts.
    for received in server.requests:
        assert request_problems(kind.validator, received.json) == [], received.json


TOOLS = """\
tools:
  - name: lookup_order
    description: Look an order up by id (synthetic).
    parameters:
      type: object
      properties: {order_id: {type: string}}
      required: [order_id]
  - name: lookup_policy
    description: The refund policy for a kind of problem (synthetic).
    parameters:
      type: object
      properties: {topic: {type: string}}
  - name: issue_refund
    description: Refund an order (synthetic).
    parameters:
      type: object
      properties: {order_id: {type: string}, amount: {type: number}}
"""

RECORDED = """\
    tools:
      - {name: lookup_order, arguments: {order_id: A-17}, result: {status: paid, charges: 2}}
      - {name: lookup_policy, arguments: {topic: duplicate}, result: {refund: true}}
      - {name: issue_refund, arguments: {order_id: A-17, amount: 20}, result: {refund_id: R-1}}
"""


def project(
    root: Path,
    kind: Kind,
    server: ScriptedServer,
    *,
    prompt_extra: str = "",
    evalset_extra: str = "",
    recorded: str = RECORDED,
) -> Path:
    """A refund agent (synthetic) on the scripted model: a prompt with three tools, one case."""
    write_tree(
        root,
        {
            "agent-evals.yaml": (
                "schema_version: 1\n"
                f"providers:\n  model: {{type: {kind.provider_type}, base_url: '{server.url}{kind.base_path}', "
                "api_key_env: null}\n"
                # Synthetic prices: a dollar a token in, two out, so costs are exact sums.
                "prices:\n  agent-model: {input_per_mtok: 1000000, output_per_mtok: 2000000}\n"
            ),
            "prompts/refund.yaml": (
                "schema_version: 1\nid: refund\nversion: 1\ndescription: Decide a refund (synthetic).\n"
                "owner: {name: Test team, oncall: test-pager}\n"
                "model: {provider: model, name: agent-model, max_tokens: 50}\n"
                "messages:\n  - role: system\n    content: Check the order and the policy before refunding.\n"
                '  - role: user\n    content: "{{ ticket }}"\n' + TOOLS + prompt_extra
            ),
            "evalsets/refund.yaml": (
                "schema_version: 1\nid: refund\nprompt: refund\nmetric: refunds decided right\n"
                "provenance: {source: synthetic, synthetic: true}\n"
                "graders:\n  - {type: contains, name: answered}\n" + evalset_extra + "cases:\n"
                "  - id: dup\n    vars: {ticket: I was charged twice for order A-17.}\n    expected: R-1\n"
                + recorded
            ),
        },
    )
    return root


def run(root: Path, *args: str) -> RunRecord:
    code = main(["run", "--output", str(root / "out.jsonl"), *args])
    record = load_record(root / "out.jsonl")
    assert code == (0 if all(c.status != "error" for c in record.cases) else 3), [
        c.error for c in record.cases
    ]
    return record


def steps_of(case: CaseResult) -> list[dict[str, Any]]:
    """The steps without latency (measured, so never the same twice) and without unset fields."""
    return [s.model_dump(mode="json", exclude={"latency_ms"}, exclude_defaults=True) for s in case.steps]


def model_step(
    kind: Kind, calls: Sequence[tuple[str, dict[str, Any], str]] = (), text: str | None = None
) -> dict[str, Any]:
    step: dict[str, Any] = {
        "kind": "model",
        "model": "agent-model",
        "finish_reason": kind.tool_finish if calls else kind.final_finish,
        "usage": kind.usage,
        "cost_usd": kind.cost,
    }
    if text is not None:
        step["text"] = text
    if calls:
        step["tool_calls"] = [{"name": n, "arguments": a, "id": i} for n, a, i in calls]
    return step


def tool_step(
    name: str, arguments: dict[str, Any], call_id: str, result: Any = None, **extra: Any
) -> dict[str, Any]:
    step = {"kind": "tool", "name": name, "arguments": arguments, "call_id": call_id, "source": "recorded"}
    if result is not None:
        step["result"] = result
    return {**step, **extra}


FINAL = "Refunded the duplicate charge: R-1."
THREE_STEPS: list[Turn] = [
    [("lookup_order", {"order_id": "A-17"})],
    [("lookup_policy", {"topic": "duplicate"})],
    [("issue_refund", {"order_id": "A-17", "amount": 20})],
    FINAL,
]


def native_tool_turn(
    kind: Kind, calls: Sequence[tuple[str, dict[str, Any], str]], results: Sequence[tuple[str, str, bool]]
) -> list[dict[str, Any]]:
    """The messages an assistant's tool calls and their answers are on the wire, in `kind`'s format."""
    if kind is OPENAI:
        return [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": i,
                        "type": "function",
                        "function": {"name": n, "arguments": json.dumps(a, separators=(",", ":"))},
                    }
                    for n, a, i in calls
                ],
            },
            *({"role": "tool", "tool_call_id": i, "content": c} for i, c, _ in results),
        ]
    return [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": i, "name": n, "input": a} for n, a, i in calls],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": i, "content": c, **({"is_error": True} if e else {})}
                for i, c, e in results
            ],
        },
    ]


# --- acceptance 1: a multi-step loop replays the recorded trajectory --------------------------


def test_a_multi_step_loop_produces_the_recorded_trajectory(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = scripted_model(kind, THREE_STEPS)
    project(tmp_path, kind, server, prompt_extra="tool_choice: required\n")
    [case] = run(tmp_path, "--no-cache").cases

    order = ("lookup_order", {"order_id": "A-17"}, "call_1_0")
    policy = ("lookup_policy", {"topic": "duplicate"}, "call_2_0")
    refund = ("issue_refund", {"order_id": "A-17", "amount": 20}, "call_3_0")
    assert steps_of(case) == [
        model_step(kind, [order]),
        tool_step(*order, {"status": "paid", "charges": 2}),
        model_step(kind, [policy]),
        tool_step(*policy, {"refund": True}),
        model_step(kind, [refund]),
        tool_step(*refund, {"refund_id": "R-1"}),
        model_step(kind, text=FINAL),
    ]
    assert all(step.latency_ms is not None for step in case.steps)
    assert (case.status, case.output, case.finish_reason, case.model) == (
        "pass",
        FINAL,
        kind.final_finish,
        "agent-model",
    )
    assert [(c.name, c.arguments, c.id) for c in case.tool_calls] == [order, policy, refund]
    assert case.usage is not None
    assert (case.usage.input_tokens, case.usage.output_tokens) == (
        4 * kind.usage["input_tokens"],
        4 * kind.usage["output_tokens"],
    )
    assert case.cost_usd == 4 * kind.cost
    assert case.latency_ms == sum(s.latency_ms or 0 for s in case.steps)
    assert (case.attempts, case.cached) == (4, False)
    assert case.replay is not None
    assert (case.replay.unmatched, case.replay.unconsumed) == ((), ())
    # The record keeps the case's first request, tools and all.
    assert case.request is not None
    assert [t["name"] for t in case.request["tools"]] == ["lookup_order", "lookup_policy", "issue_refund"]

    first, second, third, fourth = (r.json for r in server.requests)
    # Tools in the native format; a forced choice holds for the first call only.
    if kind is OPENAI:
        assert first["tools"][0] == {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Look an order up by id (synthetic).",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            },
        }
        assert [r["tool_choice"] for r in (first, second, third, fourth)] == [
            "required",
            "auto",
            "auto",
            "auto",
        ]
        head = 2  # system, user
    else:
        assert first["tools"][0] == {
            "name": "lookup_order",
            "description": "Look an order up by id (synthetic).",
            "input_schema": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        }
        assert [r["tool_choice"] for r in (first, second, third, fourth)] == [{"type": "any"}] + [
            {"type": "auto"}
        ] * 3
        head = 1  # user; the system text goes apart
    # Step 2's request: the conversation so far, and the tool's answer, in the native format.
    assert second["messages"][head:] == native_tool_turn(
        kind, [order], [("call_1_0", '{"status":"paid","charges":2}', False)]
    )
    assert fourth["messages"][head:] == [
        *native_tool_turn(kind, [order], [("call_1_0", '{"status":"paid","charges":2}', False)]),
        *native_tool_turn(kind, [policy], [("call_2_0", '{"refund":true}', False)]),
        *native_tool_turn(kind, [refund], [("call_3_0", '{"refund_id":"R-1"}', False)]),
    ]


def test_a_parallel_call_is_answered_in_full_before_the_next_model_call(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = scripted_model(
        kind, [[("lookup_order", {"order_id": "A-17"}), ("lookup_policy", {"topic": "fraud"})], FINAL]
    )
    recorded = (
        "    tools:\n"
        "      - {name: lookup_policy, arguments: {topic: fraud}, error: policy service unavailable}\n"
        "      - {name: lookup_order, arguments: {order_id: A-17}, result: {status: paid}}\n"
    )
    project(tmp_path, kind, server, recorded=recorded)
    [case] = run(tmp_path, "--no-cache").cases

    order = ("lookup_order", {"order_id": "A-17"}, "call_1_0")
    policy = ("lookup_policy", {"topic": "fraud"}, "call_1_1")
    assert steps_of(case) == [
        model_step(kind, [order, policy]),
        tool_step(*order, {"status": "paid"}),
        tool_step(*policy, error="policy service unavailable"),
        model_step(kind, text=FINAL),
    ]
    assert server.request_count == 2
    head = 2 if kind is OPENAI else 1
    # Both answers go back at once: OpenAI two tool messages, Anthropic one user turn of two
    # tool_result blocks, the failure flagged (OpenAI has no flag: the text says it).
    assert server.requests[1].json["messages"][head:] == native_tool_turn(
        kind,
        [order, policy],
        [("call_1_0", '{"status":"paid"}', False), ("call_1_1", "policy service unavailable", True)],
    )


def test_text_beside_tool_calls_goes_back_with_them(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = scripted_model(
        kind, [("Let me check the order.", [("lookup_order", {"order_id": "A-17"})]), FINAL]
    )
    project(tmp_path, kind, server)
    [case] = run(tmp_path, "--no-cache").cases

    order = ("lookup_order", {"order_id": "A-17"}, "call_1_0")
    assert steps_of(case)[0] == model_step(kind, [order], text="Let me check the order.")
    assistant = server.requests[1].json["messages"][-2]
    if kind is OPENAI:
        assert assistant["content"] == "Let me check the order."
        assert [c["id"] for c in assistant["tool_calls"]] == ["call_1_0"]
    else:
        assert assistant["content"] == [
            {"type": "text", "text": "Let me check the order."},
            {"type": "tool_use", "id": "call_1_0", "name": "lookup_order", "input": {"order_id": "A-17"}},
        ]


def test_max_steps_stops_a_model_that_never_answers(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = scripted_model(kind, [[("lookup_order", {"order_id": "A-17"})]])
    project(
        tmp_path,
        kind,
        server,
        prompt_extra="max_steps: 2\n",
        evalset_extra="tools:\n  lookup_order: {mock: {value: {status: paid}}}\n",
        recorded="",
    )
    [case] = run(tmp_path, "--no-cache").cases

    assert case.status == "error"
    assert (
        case.error == "stopped after 2 model calls without a final answer (raise max_steps or fix the loop)"
    )
    assert server.request_count == 2
    # The last call's tool calls are kept, never answered.
    assert steps_of(case) == [
        model_step(kind, [("lookup_order", {"order_id": "A-17"}, "call_1_0")]),
        tool_step("lookup_order", {"order_id": "A-17"}, "call_1_0", {"status": "paid"}, source="mock"),
        model_step(kind, [("lookup_order", {"order_id": "A-17"}, "call_2_0")]),
    ]
    assert [c.id for c in case.tool_calls] == ["call_1_0", "call_2_0"]
    assert case.grades == ()
    assert case.cost_usd == 2 * kind.cost
    assert case.replay is not None
    assert case.replay.unmatched == ('step 2: lookup_order({"order_id": "A-17"})',)


def test_an_unrecorded_call_ends_the_case_as_an_error(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = scripted_model(kind, [[("lookup_order", {"order_id": "Z-9"})], FINAL])
    project(tmp_path, kind, server)
    [case] = run(tmp_path, "--no-cache").cases

    # The replayer's own words (tests/test_replay.py pins them): the call, and how to fix it.
    reason = case.error
    assert case.status == "error"
    assert reason is not None
    assert reason.startswith('unrecorded call lookup_order({"order_id": "Z-9"})')
    assert reason.endswith("add a mock under the eval set's tools.lookup_order")
    assert server.request_count == 1
    assert steps_of(case) == [
        model_step(kind, [("lookup_order", {"order_id": "Z-9"}, "call_1_0")]),
        {
            "kind": "tool",
            "name": "lookup_order",
            "arguments": {"order_id": "Z-9"},
            "call_id": "call_1_0",
            "error": reason,
        },
    ]
    assert case.replay is not None
    assert case.replay.unmatched == ('step 2: lookup_order({"order_id": "Z-9"})',)
    assert case.replay.unconsumed == (
        'lookup_order({"order_id": "A-17"})',
        'lookup_policy({"topic": "duplicate"})',
        'issue_refund({"amount": 20, "order_id": "A-17"})',
    )


def test_the_mock_templates_of_a_job_share_one_time_limit(
    tmp_path: Path,
    kind: Kind,
    server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Each render is within the limits (100,000 steps, about 10 ms); the job's together are not
    # (_jobclock.JOB_SECONDS, lowered here): the cases past it end at once as errors, not in hours.
    monkeypatch.setattr(_jobclock, "JOB_SECONDS", 0.2)
    server.default = scripted_model(kind, [[("lookup_order", {"order_id": "A-17"})], FINAL])
    slow = '{% for i in range(100000) %}{% endfor %}{"status": "paid"}'
    project(
        tmp_path, kind, server, evalset_extra=f"tools:\n  lookup_order: {{mock: {{template: '{slow}'}}}}\n"
    )
    evalset = tmp_path / "evalsets/refund.yaml"
    more = "".join(
        f"  - id: c{i}\n    vars: {{ticket: order A-17, case {i}}}\n    expected: R-1\n" for i in range(60)
    )
    evalset.write_text(evalset.read_text() + more)
    record = run(tmp_path, "--no-cache", "-j", "1")

    answered = [c for c in record.cases if c.status == "pass"]
    refused = [c for c in record.cases if c.status == "error"]
    assert answered
    assert refused
    assert len(answered) + len(refused) == 61
    assert record.cases[: len(answered)] == tuple(answered)  # in order, with -j 1: the limit came, then held
    reason = refused[0].error
    assert reason is not None
    assert reason.startswith(
        'the mock template of tools.lookup_order was not rendered for lookup_order({"order_id": "A-17"}): '
        "the eval set's mock templates have taken "
    )
    assert reason.endswith(
        " s in this run, over the limit of 0.2 s (make them do less work: a mock renders in well under a "
        "millisecond)"
    )


def test_unconsumed_records_are_reported_and_a_direct_answer_has_no_steps(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = scripted_model(kind, [FINAL])
    project(tmp_path, kind, server)
    [case] = run(tmp_path, "--no-cache").cases

    # One model call, no tool call: recorded as a single call is, the replay report beside it.
    assert (case.status, case.output, case.steps, case.tool_calls) == ("pass", FINAL, (), ())
    assert case.cost_usd == kind.cost
    assert case.replay is not None
    assert case.replay.unmatched == ()
    assert case.replay.unconsumed == (
        'lookup_order({"order_id": "A-17"})',
        'lookup_policy({"topic": "duplicate"})',
        'issue_refund({"amount": 20, "order_id": "A-17"})',
    )


def test_some_records_unconsumed_after_a_loop(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The candidate skips the policy lookup: its record is left over.
    server.default = scripted_model(kind, [THREE_STEPS[0], THREE_STEPS[2], FINAL])
    project(tmp_path, kind, server)
    [case] = run(tmp_path, "--no-cache").cases

    assert [(s.kind, s.name) for s in case.steps] == [
        ("model", None), ("tool", "lookup_order"), ("model", None), ("tool", "issue_refund"), ("model", None),
    ]  # fmt: skip
    assert case.replay is not None
    assert (case.replay.unmatched, case.replay.unconsumed) == ((), ('lookup_policy({"topic": "duplicate"})',))


# --- acceptance 3: determinism, and the cache -----------------------------------------------------


def _trajectory_bytes(path: Path) -> list[str]:
    """Each case line's steps as written, latency fields taken out."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        if data.get("kind") == "case":
            for step in data["steps"]:
                step.pop("latency_ms", None)
            out.append(json.dumps(data["steps"]))
    return out


def test_the_same_case_twice_gives_byte_identical_trajectories(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = scripted_model(kind, THREE_STEPS)
    project(tmp_path, kind, server)
    assert main(["run", "--no-cache", "--repeat", "2", "--output", "one.jsonl"]) == 0
    assert main(["run", "--no-cache", "--output", "two.jsonl"]) == 0

    one, two = _trajectory_bytes(tmp_path / "one.jsonl"), _trajectory_bytes(tmp_path / "two.jsonl")
    assert len(one) == 2
    assert one[0] == one[1] == two[0]
    assert len(json.loads(one[0])) == 7
    assert server.request_count == 12


def test_with_the_cache_the_second_run_calls_no_model(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = scripted_model(kind, THREE_STEPS)
    project(tmp_path, kind, server)
    first = run(tmp_path).cases[0]  # the project's own cache, under tmp_path
    assert server.request_count == 4
    second = run(tmp_path).cases[0]

    assert server.request_count == 4  # every step's request was its own cache entry
    assert second.cached
    assert not first.cached
    # Each model step came from the cache and cost nothing this time; the rest is as it was.
    assert [(s.cached, s.cost_usd) for s in second.steps if s.kind == "model"] == [(True, 0.0)] * 4

    def strip(case: CaseResult) -> list[dict[str, Any]]:
        return [s.model_dump(mode="json", exclude={"latency_ms", "cached", "cost_usd"}) for s in case.steps]

    assert strip(second) == strip(first)
    assert (second.output, second.status, second.tool_calls) == (first.output, first.status, first.tool_calls)
    assert (first.cost_usd, second.cost_usd) == (4 * kind.cost, 0.0)


def test_the_budget_ceiling_holds_across_steps(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent_evals.budget import estimate
    from agent_evals.load import load_project
    from agent_evals.pricing import Prices
    from agent_evals.runner import plan

    server.default = scripted_model(kind, THREE_STEPS)
    project(tmp_path, kind, server)
    loaded = load_project(tmp_path)
    [job] = plan(loaded)
    rate = Prices(loaded.config.prices).rate(kind.provider_type, "agent-model")
    first = estimate(job.request(0), rate).cost_usd
    assert first is not None
    # Room for the first call's estimate, not for the second on top of what the first spent.
    ceiling = first + kind.cost / 2
    code = main(["run", "--no-cache", "--max-cost", str(ceiling), "--output", "out.jsonl"])
    record = load_record(tmp_path / "out.jsonl")

    [case] = record.cases
    assert server.request_count == 1
    assert case.status == "skipped"
    assert case.error is not None
    assert case.error.startswith("skipped (budget, after 1 model call): the next call (up to $")
    assert case.error.endswith(
        f"could cross the ${ceiling:g} ceiling (spent ${kind.cost:.4f}, in flight $0.0000)"
    )
    # What was done is kept, and what it cost counts.
    assert [(s.kind, s.name) for s in case.steps] == [("model", None), ("tool", "lookup_order")]
    assert case.cost_usd == kind.cost
    assert record.end is not None
    assert (record.end.cost_usd, record.end.reason) == (
        kind.cost,
        f"cost ceiling ${ceiling:g} reached; 1 case(s) not sent",
    )
    assert code == 3


# --- traces -------------------------------------------------------------------------------------


def test_trace_tool_steps_are_execute_tool_spans(
    tmp_path: Path, kind: Kind, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.default = scripted_model(
        kind, [[("lookup_order", {"order_id": "A-17"}), ("lookup_policy", {"topic": "duplicate"})], FINAL]
    )
    project(tmp_path, kind, server)
    run(tmp_path, "--no-cache", "--trace", str(tmp_path / "trace.jsonl"))

    lines = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    spans = [
        (
            line["step"],
            line.get("gen_ai.operation.name"),
            line.get("gen_ai.tool.name"),
            line.get("gen_ai.tool.call.id"),
        )
        for line in lines
        if line["step"] in ("request", "response", "tool")
    ]
    assert spans == [
        ("request", "chat", None, None),
        ("response", "chat", None, None),
        ("tool", "execute_tool", "lookup_order", "call_1_0"),
        ("tool", "execute_tool", "lookup_policy", "call_1_1"),
        ("request", "chat", None, None),
        ("response", "chat", None, None),
    ]
    # Each names its step in the case's trajectory: model, tool, tool, model.
    assert [line["agent_step"] for line in lines if line["step"] in ("response", "tool")] == [1, 2, 3, 4]
    tool = next(line for line in lines if line["step"] == "tool")
    assert tool["gen_ai.tool.type"] == "function"
    assert tool["source"] == "recorded"
    assert "A-17" not in json.dumps(tool)  # the case's data stays in the record


# --- a terminal ---------------------------------------------------------------------------------


def test_a_tool_using_prompt_runs_under_a_terminal(
    tmp_path: Path, kind: Kind, server: ScriptedServer
) -> None:
    server.default = scripted_model(kind, THREE_STEPS)
    project(tmp_path, kind, server)
    done = run_pty([*CLI, "run", "--no-cache", "--output", "out.jsonl"], tmp_path)

    assert done.code == 0, done.text
    assert "internal error" not in done.text
    assert "100.0% (1/1)" in done.text
    [case] = load_record(tmp_path / "out.jsonl").cases
    assert len(case.steps) == 7
    assert server.request_count == 4


# --- an agent that runs its own loop --------------------------------------------------------------

OWN_LOOP_AGENT = """\
def run(request):
    return {
        "output": "Refunded the duplicate charge: R-1.",
        "messages": [
            {"role": "user", "content": request["messages"][-1]["content"]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "lookup_order", "arguments": '{"order_id": "A-17"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"status": "paid"}'},
            {"role": "assistant", "content": "Refunded the duplicate charge: R-1."},
        ],
    }
"""


@pytest.mark.parametrize("tools", [True, False], ids=["prompt-with-tools", "prompt-without-tools"])
def test_an_agent_that_runs_its_own_loop_keeps_its_steps(
    tmp_path: Path, tools: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "own_loop", raising=False)
    with ScriptedServer() as server:
        project(tmp_path, OPENAI, server)
    prompt = tmp_path / "prompts/refund.yaml"
    text = prompt.read_text().replace("provider: model", "provider: python:own_loop:run")
    prompt.write_text(text if tools else text[: text.index("tools:\n")])
    write_tree(tmp_path, {"own_loop.py": OWN_LOOP_AGENT})
    [case] = run(tmp_path, "--no-cache").cases

    # Its steps as it reported them: the loop answers none of its calls (they ran already).
    assert [(s.kind, s.name, s.call_id, s.source) for s in case.steps] == [
        ("model", None, None, None),
        ("tool", "lookup_order", "c1", "agent"),
        ("model", None, None, None),
    ]
    assert [(c.name, c.arguments, c.id) for c in case.tool_calls] == [
        ("lookup_order", {"order_id": "A-17"}, "c1")
    ]
    assert (case.status, case.output, case.replay) == ("pass", FINAL, None)
