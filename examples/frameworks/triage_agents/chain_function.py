"""SYNTHETIC EXAMPLE: a LangChain `@chain` function.

    model: {provider: "python:triage_agents.chain_function:triage"}

Its argument is not declared a dict, so agent-evals invokes it with the text of the prompt's
user message; it returns the model's message, whose text becomes the output.
"""

from __future__ import annotations

from langchain_core.messages import BaseMessage
from langchain_core.runnables import chain

from triage_agents.synthetic_models import KeywordChatModel

model = KeywordChatModel()  # a real agent: ChatOpenAI(model="gpt-4o-mini")


@chain
def triage(ticket: str) -> BaseMessage:
    return model.invoke([("system", "Route the support ticket to one disposition."), ("user", ticket)])
