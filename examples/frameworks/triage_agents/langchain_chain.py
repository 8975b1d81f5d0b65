"""SYNTHETIC EXAMPLE: a LangChain chain, prompt | model | parser.

    model: {provider: "python:triage_agents.langchain_chain:triage_chain"}

The chain's input is its prompt template's variables, so agent-evals invokes it with the
case's vars (`subject`, `body`); the tokens are read from the model call inside the chain.
"""

from __future__ import annotations

from langchain_core.output_parsers import JsonOutputParser
from langchain_core.prompts import ChatPromptTemplate

from triage_agents.synthetic_models import KeywordChatModel

prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "Route the support ticket to one disposition. Answer in JSON."),
        ("user", "Subject: {subject}\n\n{body}"),
    ]
)
model = KeywordChatModel()  # a real agent: ChatOpenAI(model="gpt-4o-mini")
triage_chain = prompt | model | JsonOutputParser()
