"""SYNTHETIC EXAMPLE: a pydantic-ai Agent with a structured output.

    model: {provider: "python:triage_agents.pydantic_ai_agent:agent"}

agent-evals awaits `agent.run(<the prompt's user message>)`, writes `result.output` as JSON,
and reads the tokens and the model's name from the run result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic_ai import Agent

from triage_agents.synthetic_models import PYDANTIC_AI_MODEL


class Triage(BaseModel):
    disposition: Literal["refund", "billing_question", "technical_issue", "account_access", "cancellation"]


agent = Agent(
    PYDANTIC_AI_MODEL,  # a real agent: "openai:gpt-4o-mini"
    output_type=Triage,
    instructions="Route the support ticket to one disposition.",
)
