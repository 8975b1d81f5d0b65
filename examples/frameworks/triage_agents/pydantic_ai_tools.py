"""SYNTHETIC EXAMPLE: a pydantic-ai Agent that looks the customer up with a tool before it answers.

    model: {provider: "python:triage_agents.pydantic_ai_tools:agent"}

The agent runs its own loop (model, tool, model). agent-evals records that loop as the
case's trajectory: each model step with its tokens, and the `lookup_account` call with its
arguments and result (`source: agent`), so trajectory graders and the diff see the tool
step. The accounts below are invented.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic_ai import Agent

from triage_agents.synthetic_models import PYDANTIC_AI_TOOL_MODEL

ACCOUNTS = {"refund": "pro", "account_access": "free"}


class Triage(BaseModel):
    disposition: Literal["refund", "billing_question", "technical_issue", "account_access", "cancellation"]


agent = Agent(
    PYDANTIC_AI_TOOL_MODEL,  # a real agent: "openai:gpt-4o-mini"
    output_type=Triage,
    instructions="Look the customer's account up, then route the support ticket to one disposition.",
)


@agent.tool_plain
def lookup_account(ticket_subject: str) -> dict[str, str]:
    """The customer's plan (synthetic: every account is on the free plan but one)."""
    return {"plan": "pro" if "charged" in ticket_subject.lower() else "free"}
