"""`agent_evals.trajectory`: an agent's own record of a run, read as steps (synthetic test data).

Each reader is checked on the shape its runtime writes (OpenAI messages, OpenTelemetry spans
in three JSON forms, pydantic-ai, LangChain, the OpenAI Agents SDK's run items), on what it
leaves out and says, and on random JSON: steps or a TrajectoryError, never another exception.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_evals import trajectory
from agent_evals.trajectory import ImportedTrajectory, Note, TrajectoryError


def view(read: ImportedTrajectory) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for s in read.steps:
        if s.kind == "model":
            usage = None if s.usage is None else tuple(s.usage.model_dump().values())
            out.append(("model", s.model, s.text, [(c.name, c.arguments, c.id) for c in s.tool_calls], usage))
        else:
            out.append(("tool", s.name, s.arguments, s.call_id, s.result, s.error))
    return out


# --- OpenAI-format messages ------------------------------------------------------------------

MESSAGES = [
    {"role": "system", "content": "Decide refunds (synthetic)."},
    {"role": "user", "content": "refund order 7"},
    {
        "role": "assistant",
        "content": None,
        "model": "gpt-test",
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 40},
        },
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"id": 7}'}},
            {"id": "c2", "type": "function", "function": {"name": "lookup_policy", "arguments": "id=7"}},
            {"id": "c3", "type": "function", "function": {"arguments": "{}"}},
            "call",
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped", "items": [1, 2]}'},
    {"role": "tool", "tool_call_id": "zz", "content": "orphan"},
    {"role": "tool", "tool_call_id": "yy", "name": "audit_log", "content": "logged"},
    {"role": "moderator", "content": "?"},
    {
        "role": "assistant",
        "content": [{"type": "text", "text": "Refund "}, {"type": "text", "text": "issued."}],
    },
]


def test_openai_messages() -> None:
    read = trajectory.from_messages(MESSAGES)

    assert view(read) == [
        (
            "model",
            "gpt-test",
            None,
            [("lookup_order", {"id": 7}, "c1"), ("lookup_policy", "id=7", "c2")],
            (60, 10, 40, 0),
        ),
        ("tool", "lookup_order", {"id": 7}, "c1", {"status": "shipped", "items": [1, 2]}, None),
        ("tool", "audit_log", {}, "yy", "logged", None),
        # Never answered: a step all the same, placed before the next model step.
        ("tool", "lookup_policy", "id=7", "c2", None, "no result recorded"),
        ("model", None, "Refund issued.", [], None),
    ]
    assert read.text == "Refund issued."
    assert [str(n) for n in read.notes] == [
        "message 3, tool call 2: arguments are not JSON",
        "message 3, tool call 3: a tool call with no name (left out)",
        "message 3, tool call 4: not a tool call object (a string; left out)",
        "message 5: a tool result for no call 'zz' and no tool name (left out)",
        "message 6: a result for a call 'yy' no model step asked for",
        "message 7: unknown role 'moderator' (left out)",
    ]
    assert read.unanswered == frozenset({3})
    assert [(c.name, c.id) for c in read.tool_calls] == [
        ("lookup_order", "c1"),
        ("audit_log", "yy"),
        ("lookup_policy", "c2"),
    ]
    calls, dropped = read.recorded_calls()
    assert calls == [
        {"name": "lookup_order", "arguments": {"id": 7}, "result": {"status": "shipped", "items": [1, 2]}},
        {"name": "audit_log", "arguments": {}, "result": "logged"},
    ]
    assert dropped == [Note("step 4 (lookup_policy)", "no result recorded")]


def test_openai_messages_with_errors_legacy_calls_and_anthropic_blocks() -> None:
    read = trajectory.from_messages(
        {
            "messages": [
                {"role": "assistant", "function_call": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
                {"role": "function", "name": "weather", "content": "rain"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Let me check."},
                        {"type": "tool_use", "id": "tu1", "name": "lookup_order", "input": {"id": 9}},
                    ],
                    "usage": {"input_tokens": 50, "output_tokens": 5, "cache_read_input_tokens": 20},
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "tu1",
                            "content": "not found",
                            "is_error": True,
                        }
                    ],
                },
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "e1", "name": "escalate", "arguments": {"id": 9}}],
                },
                {"role": "tool", "tool_call_id": "e1", "content": "queue full", "is_error": True},
            ]
        }
    )

    assert view(read) == [
        ("model", None, None, [("weather", {"city": "Oslo"}, None)], None),
        ("tool", "weather", {"city": "Oslo"}, None, "rain", None),
        ("model", None, "Let me check.", [("lookup_order", {"id": 9}, "tu1")], (50, 5, 20, 0)),
        ("tool", "lookup_order", {"id": 9}, "tu1", None, "not found"),
        ("model", None, None, [("escalate", {"id": 9}, "e1")], None),
        ("tool", "escalate", {"id": 9}, "e1", None, "queue full"),
    ]
    assert read.text == ""
    calls, _ = read.recorded_calls()
    assert calls[1] == {"name": "lookup_order", "arguments": {"id": 9}, "result": None, "error": "not found"}


# --- OpenTelemetry spans -------------------------------------------------------------------


def otlp(*spans: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}]}]
    }


def test_otlp_json_with_declared_calls_and_a_failed_tool() -> None:
    def attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"key": key, "value": value}

    chat = {
        "traceId": "t",
        "spanId": "a",
        "name": "chat m",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000250000000",
        "attributes": [
            attr("gen_ai.operation.name", {"stringValue": "chat"}),
            attr("gen_ai.request.model", {"stringValue": "m-requested"}),
            attr("gen_ai.usage.input_tokens", {"intValue": "90"}),
            attr("gen_ai.usage.output_tokens", {"intValue": "7"}),
            attr("gen_ai.usage.cache_creation.input_tokens", {"intValue": "30"}),
            attr(
                "gen_ai.response.finish_reasons", {"arrayValue": {"values": [{"stringValue": "tool_calls"}]}}
            ),
            attr(
                "gen_ai.output.messages",
                {
                    "stringValue": json.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [
                                    {"type": "text", "content": "Looking."},
                                    {
                                        "type": "tool_call",
                                        "id": "x1",
                                        "name": "lookup_order",
                                        "arguments": {"id": 1},
                                    },
                                ],
                            }
                        ]
                    )
                },
            ),
        ],
    }
    tool = {
        "traceId": "t",
        "spanId": "b",
        "parentSpanId": "a",
        "name": "execute_tool lookup_order",
        "startTimeUnixNano": "1700000000300000000",
        "endTimeUnixNano": "1700000000320000000",
        "attributes": [
            attr("gen_ai.operation.name", {"stringValue": "execute_tool"}),
            attr("gen_ai.tool.name", {"stringValue": "lookup_order"}),
            attr("gen_ai.tool.call.id", {"stringValue": "x1"}),
            attr("gen_ai.tool.call.arguments", {"stringValue": '{"id": 1}'}),
            attr("error.type", {"stringValue": "TimeoutError"}),
        ],
        "status": {"code": 2, "message": "no answer in 5s"},
    }
    read = trajectory.from_spans(otlp(tool, chat))

    assert view(read) == [
        ("model", "m-requested", "Looking.", [("lookup_order", {"id": 1}, "x1")], (60, 7, 0, 30)),
        ("tool", "lookup_order", {"id": 1}, "x1", None, "TimeoutError: no answer in 5s"),
    ]
    assert [s.latency_ms for s in read.steps] == [250.0, 20.0]
    assert read.steps[0].finish_reason == "tool_calls"
    assert read.text == "Looking."
    assert read.notes == ()


def test_python_sdk_spans_tool_only_and_a_result_not_captured() -> None:
    spans = [
        {
            "name": "execute_tool lookup_policy",
            "context": {"trace_id": "0x01", "span_id": "0x03"},
            "parent_id": "0x02",
            "start_time": "2026-11-02T10:00:02.000000Z",
            "end_time": "2026-11-02T10:00:02.100000Z",
            "status": {"status_code": "UNSET"},
            "attributes": {"gen_ai.tool.name": "lookup_policy", "gen_ai.tool.call.arguments": "{}"},
        },
        {
            "name": "execute_tool lookup_order",
            "context": {"trace_id": "0x01", "span_id": "0x02"},
            "start_time": "2026-11-02T10:00:01.000000Z",
            "end_time": "2026-11-02T10:00:01.500000Z",
            "attributes": {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup_order",
                "gen_ai.tool.call.result": "ok",
            },
        },
        {
            "name": "execute_tool",
            "context": {"trace_id": "0x01"},
            "attributes": {"gen_ai.operation.name": "execute_tool"},
        },
    ]
    read = trajectory.from_spans(spans)

    # Tools without model spans are steps of their own, by start time; no result captured: no error.
    assert view(read) == [
        ("tool", "lookup_order", {}, None, "ok", None),
        ("tool", "lookup_policy", {}, None, None, None),
    ]
    assert read.unanswered == frozenset({1})
    assert [str(n) for n in read.notes] == [
        "span 3 (execute_tool): an execute_tool span with no gen_ai.tool.name (left out)"
    ]
    assert read.recorded_calls() == (
        [{"name": "lookup_order", "arguments": {}, "result": "ok"}],
        [Note("step 2 (lookup_policy)", "no result recorded")],
    )
    spans_out = trajectory.spans_of(spans)
    assert spans_out[1].to_json() == {
        "trace_id": "0x01",
        "span_id": "0x02",
        "name": "execute_tool lookup_order",
        "start_time": "2026-11-02T10:00:01.000000Z",
        "end_time": "2026-11-02T10:00:01.500000Z",
        "attributes": {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup_order",
            "gen_ai.tool.call.result": "ok",
        },
    }


# --- pydantic-ai ---------------------------------------------------------------------------


def test_pydantic_ai_retry_and_failed_tools() -> None:
    from pydantic_ai import Agent, ModelRetry
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        responses = sum(isinstance(m, ModelResponse) for m in messages)
        if responses == 0:
            return ModelResponse(parts=[ToolCallPart("lookup_order", {"id": "x"}, tool_call_id="a")])
        if responses == 1:
            return ModelResponse(parts=[ToolCallPart("lookup_order", {"id": 7}, tool_call_id="b")])
        return ModelResponse(parts=[TextPart("done")], model_name="fn")

    agent = Agent(FunctionModel(model, model_name="fn"), retries=3)

    @agent.tool_plain
    def lookup_order(id: int) -> dict[str, int]:
        if id == 7:
            raise ModelRetry("order 7 is archived")
        return {"id": id}

    result = agent.run_sync("refund")
    read = trajectory.from_pydantic_ai(result)

    assert [(s.kind, s.name, s.call_id, s.result) for s in read.steps] == [
        ("model", None, None, None),
        ("tool", "lookup_order", "a", None),
        ("model", None, None, None),
        ("tool", "lookup_order", "b", None),
        ("model", None, None, None),
    ]
    # Arguments that failed validation, and a tool that asked for a retry: errors, with what the model was told.
    assert "int_parsing" in (read.steps[1].error or "")
    assert "order 7 is archived" in (read.steps[3].error or "")
    assert read.text == "done"
    assert {s.model for s in read.steps if s.kind == "model"} == {"fn"}
    assert trajectory.from_pydantic_ai(list(result.new_messages())).steps == read.steps


# --- LangChain -----------------------------------------------------------------------------


def test_langchain_messages_with_invalid_calls_and_a_failed_tool() -> None:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    messages = [
        HumanMessage("refund 7"),
        AIMessage(
            content="",
            tool_calls=[{"name": "lookup_order", "args": {"id": 7}, "id": "a"}],
            invalid_tool_calls=[{"name": "lookup_policy", "args": "{id: 7", "id": "b", "error": "bad json"}],
            usage_metadata={
                "input_tokens": 120,
                "output_tokens": 9,
                "total_tokens": 129,
                "input_token_details": {"cache_read": 100},
            },
            response_metadata={"model_name": "lc-model", "finish_reason": "tool_calls"},
        ),
        ToolMessage("db down", tool_call_id="a", status="error"),
        ToolMessage('["x"]', tool_call_id="b"),
        AIMessage(content="escalated"),
    ]
    read = trajectory.from_langchain({"messages": messages})

    assert view(read) == [
        (
            "model",
            "lc-model",
            None,
            [("lookup_order", {"id": 7}, "a"), ("lookup_policy", "{id: 7", "b")],
            (20, 9, 100, 0),
        ),
        ("tool", "lookup_order", {"id": 7}, "a", None, "db down"),
        ("tool", "lookup_policy", "{id: 7", "b", ["x"], None),
        ("model", None, "escalated", [], None),
    ]
    assert [str(n) for n in read.notes] == ["message 2, invalid tool call 1: arguments are not JSON"]


# --- OpenAI Agents SDK (duck typed) ----------------------------------------------------------


class Item:
    def __init__(self, type: str, raw_item: Any, output: Any = None) -> None:
        self.type, self.raw_item, self.output = type, raw_item, output


class Run:
    def __init__(self, items: list[Item]) -> None:
        self.new_items = items
        self.raw_responses: list[Any] = []
        self.final_output = "ok"


def test_openai_agents_items_from_dicts_and_handoffs() -> None:
    run = Run(
        [
            Item("reasoning_item", {}),
            Item("tool_call_item", {"type": "function_call", "name": "a", "arguments": "{}", "call_id": "1"}),
            Item(
                "tool_call_item",
                {"type": "function_call", "name": "b", "arguments": '{"x": 1}', "call_id": "2"},
            ),
            Item("tool_call_output_item", {"call_id": "2"}, output={"y": 2}),
            Item("tool_call_output_item", {"call_id": "1"}, output="A"),
            Item("handoff_call_item", {"name": "transfer_to_billing", "arguments": "{}", "call_id": "3"}),
            Item("handoff_output_item", {"call_id": "3", "output": '{"assistant": "Billing"}'}),
            Item("mcp_list_tools_item", {}),
            Item("message_output_item", {"content": [{"type": "output_text", "text": "ok"}]}),
        ]
    )
    read = trajectory.from_openai_agents(run)

    assert view(read) == [
        ("model", None, None, [("a", {}, "1"), ("b", {"x": 1}, "2")], None),
        ("tool", "b", {"x": 1}, "2", {"y": 2}, None),
        ("tool", "a", {}, "1", "A", None),
        ("model", None, None, [("transfer_to_billing", {}, "3")], None),
        ("tool", "transfer_to_billing", {}, "3", {"assistant": "Billing"}, None),
        ("model", None, "ok", [], None),
    ]
    assert [str(n) for n in read.notes] == [
        "item 8: not a run item this reads (mcp_list_tools_item; left out)"
    ]


# --- from_json: which reader ----------------------------------------------------------------


def test_from_json_tells_messages_from_spans() -> None:
    messages = [{"role": "assistant", "content": "hi"}]
    span = {"trace_id": "t", "name": "execute_tool x", "attributes": {"gen_ai.tool.name": "x"}}

    assert trajectory.from_json(messages).text == "hi"
    assert trajectory.from_json(json.dumps(messages)).text == "hi"  # a CSV cell
    assert trajectory.from_json({"messages": messages}).text == "hi"
    assert [s.name for s in trajectory.from_json([span]).steps] == ["x"]
    assert [s.name for s in trajectory.from_json(otlp({"traceId": "t", "attributes": []})).steps] == []
    assert trajectory.from_json([]) == ImportedTrajectory()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (5, "expected OpenAI-format messages (objects with 'role') or OpenTelemetry spans, got a number"),
        ("nope", "expected messages or spans as JSON, got text that is not JSON"),
        ([1, 2], "expected messages or spans, got a list with no object in it"),
        (
            [{"x": 1}],
            "expected OpenAI-format messages (objects with 'role') or OpenTelemetry spans, got a list",
        ),
    ],
)
def test_from_json_refuses_what_is_neither(data: Any, message: str) -> None:
    with pytest.raises(TrajectoryError) as caught:
        trajectory.from_json(data)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("reader", "message"),
    [
        (trajectory.from_messages, "expected a list of messages, got an object"),
        (trajectory.from_spans, "expected OpenTelemetry spans, got an object with none"),
        (trajectory.from_pydantic_ai, "expected a pydantic-ai run result or its messages, got an object"),
        (trajectory.from_langchain, "expected a list of LangChain messages, got an object"),
        (trajectory.from_openai_agents, "expected an OpenAI Agents SDK RunResult (new_items), got an object"),
    ],
)
def test_each_reader_refuses_the_wrong_shape(reader: Any, message: str) -> None:
    with pytest.raises(TrajectoryError) as caught:
        reader({"unrelated": True})
    assert caught.value.message == message


# --- random JSON: steps or a clean error ------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "role", "content", "tool_calls", "function", "name", "arguments", "id", "tool_call_id", "type", "usage",
        "prompt_tokens", "input_tokens", "attributes", "trace_id", "span_id", "start_time", "end_time", "status",
        "code", "message", "gen_ai.operation.name", "gen_ai.tool.name", "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result", "gen_ai.tool.call.id", "gen_ai.usage.input_tokens", "gen_ai.output.messages",
        "gen_ai.response.finish_reasons", "execute_tool", "chat", "invoke_agent", "assistant", "tool", "user",
        "resourceSpans", "scopeSpans", "spans", "key", "value", "stringValue", "intValue", "arrayValue", "values",
        "kind", "parts", "part_kind", "response", "request", "tool-call", "tool-return", "messages", "new_items",
        "raw_item", "output", "call_id", "ai", "tool_use", "tool_result", "input", "is_error", "function_call",
        "context", "startTimeUnixNano", "parentSpanId",
    ]
)  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | _KEYS
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(_KEYS | st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=40,
)
_READERS = [
    trajectory.from_messages,
    trajectory.from_spans,
    trajectory.from_json,
    trajectory.from_pydantic_ai,
    trajectory.from_langchain,
    trajectory.from_openai_agents,
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_JSON, text=st.booleans())
def test_random_json_gives_steps_or_a_clean_error(data: Any, text: bool) -> None:
    value = json.dumps(data) if text else data
    errors: list[str] = []
    for reader in _READERS:
        try:
            read = reader(value)
        except TrajectoryError as exc:
            errors.append(exc.message)
            continue
        calls, dropped = read.recorded_calls()
        assert len(calls) + len(dropped) == len(read.tool_calls)
        assert all(step.kind in ("model", "tool") for step in read.steps)
        json.dumps([s.model_dump(mode="json") for s in read.steps])  # what the record writes
    assert all(errors)
