"""SYNTHETIC stand-ins for hosted models, so the example runs offline and costs nothing.

Each answers by keyword rules and reports token usage and a model name the way a hosted
model does. In a real agent, replace them with one line each, e.g.
`OpenAIChatModel("gpt-4o-mini")` (pydantic-ai) or `ChatOpenAI(model="gpt-4o-mini")` (LangChain).
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, ToolReturnPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

RULES = (
    ("money back", "refund"),
    ("log in", "account_access"),
    ("cancel", "cancellation"),
    ("error", "technical_issue"),
)


def disposition(ticket: str) -> str:
    """The first rule whose words appear in the ticket; billing questions otherwise."""
    text = ticket.lower()
    return next((label for words, label in RULES if words in text), "billing_question")


def _answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    ticket = next(str(p.content) for p in messages[-1].parts if isinstance(p, UserPromptPart))
    # Structured output arrives as a call to the agent's output tool, as with a hosted model.
    return ModelResponse(
        parts=[ToolCallPart(info.output_tools[0].name, {"disposition": disposition(ticket)})]
    )


# pydantic-ai: FunctionModel counts tokens itself; the name is what agent-evals prices.
PYDANTIC_AI_MODEL = FunctionModel(_answer, model_name="synthetic-gpt-1")


def _answer_after_lookup(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """First call the agent's `lookup_account` tool with the ticket's first line, then answer."""
    ticket = next(str(p.content) for m in messages for p in m.parts if isinstance(p, UserPromptPart))
    if not any(isinstance(p, ToolReturnPart) for m in messages for p in m.parts):
        subject = ticket.strip().splitlines()[0].removeprefix("Subject: ")
        return ModelResponse(parts=[ToolCallPart("lookup_account", {"ticket_subject": subject})])
    return _answer(messages[:1], info)


PYDANTIC_AI_TOOL_MODEL = FunctionModel(_answer_after_lookup, model_name="synthetic-gpt-1")


class KeywordChatModel(BaseChatModel):
    """LangChain: a chat model that answers by the same rules and reports `usage_metadata`."""

    model_name: str = "synthetic-chat-1"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        content = json.dumps({"disposition": disposition(str(messages[-1].content))})
        input_tokens = sum(len(str(m.content).split()) for m in messages)
        output_tokens = len(content.split())
        reply = AIMessage(
            content=content,
            usage_metadata={
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=reply)])

    @property
    def _llm_type(self) -> str:
        return "synthetic-keyword"
