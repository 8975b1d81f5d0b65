"""Rendering keeps what is not templated: a few-shot assistant message's tool calls, a tool message's id."""

from __future__ import annotations

from agent_evals.models import Case, Prompt
from agent_evals.providers.base import message_json
from agent_evals.render import render

PROMPT = {
    "id": "refunds",
    "version": 1,
    "owner": {"name": "Support AI team", "oncall": "pagerduty:support-ai"},
    "model": {"provider": "local"},
    "tools": [{"name": "lookup_order", "description": "Find an order (synthetic)."}],
    "tool_choice": "auto",
    "messages": [
        {"role": "system", "content": "Check the order first."},
        {"role": "user", "content": "Order 1 please"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "ex1", "name": "lookup_order", "arguments": {"id": 1}}],
        },
        {"role": "tool", "tool_call_id": "ex1", "name": "lookup_order", "content": '{"status": "shipped"}'},
        {"role": "user", "content": "{{ ticket }}"},
    ],
}


def test_few_shot_tool_messages_and_the_tools_reach_the_request() -> None:
    request = render(Prompt.model_validate(PROMPT), Case(id="c1", vars={"ticket": "Order 7?"}))
    assert [message_json(m) for m in request.messages] == [
        {"role": "system", "content": "Check the order first."},
        {"role": "user", "content": "Order 1 please"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "ex1", "name": "lookup_order", "arguments": {"id": 1}}],
        },
        {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "ex1", "name": "lookup_order"},
        {"role": "user", "content": "Order 7?"},
    ]
    assert [t.name for t in request.tools] == ["lookup_order"]
    assert request.tool_choice == "auto"
