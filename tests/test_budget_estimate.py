"""The budget's pessimistic estimate counts what an agent step sends: tool calls and the tools offered."""

from __future__ import annotations

import json
import math

from agent_evals.budget import CHARS_PER_TOKEN, MESSAGE_OVERHEAD_TOKENS, estimate
from agent_evals.models import Message, ModelSpec, ToolCallSpec, ToolSpec
from agent_evals.providers.base import ChatRequest

SPEC = ModelSpec(provider="openai", name="gpt-4o-mini", max_tokens=100)
TOOL = ToolSpec(
    name="lookup_order",
    description="Find an order by its id (synthetic).",
    parameters={"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
)


def _tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


def test_a_plain_message_counts_its_text() -> None:
    request = ChatRequest(model=SPEC, messages=(Message(role="user", content="x" * 30),))
    assert estimate(request, None).input_tokens == _tokens(30)


def test_tool_calls_and_the_tools_offered_count_too() -> None:
    call = ToolCallSpec(id="c1", name="lookup_order", arguments={"id": 7})
    messages = (
        Message(role="user", content="x" * 30),
        Message(role="assistant", content="", tool_calls=(call,)),
        Message(role="tool", content='{"status": "shipped"}', tool_call_id="c1", name="lookup_order"),
    )
    bare = estimate(ChatRequest(model=SPEC, messages=messages), None).input_tokens
    arguments = len(json.dumps([["lookup_order", {"id": 7}]], separators=(",", ":")))
    assert bare == _tokens(30) + _tokens(arguments) + _tokens(len('{"status": "shipped"}'))
    offered = estimate(ChatRequest(model=SPEC, messages=messages, tools=(TOOL,)), None).input_tokens
    schema = json.dumps({"tools": [TOOL.model_dump(mode="json")]}, separators=(",", ":"))
    assert offered == bare + math.ceil(len(schema) / CHARS_PER_TOKEN)
