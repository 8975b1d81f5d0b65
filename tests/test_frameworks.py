"""Agent frameworks as the system under test in one line: `python:module:attr` (synthetic test data).

Each framework object runs through the real CLI on a small project, with the frameworks' own test
models (pydantic-ai's `FunctionModel`/`TestModel`, LangChain's fake chat models): no network. The
record is checked for the output, the tokens the framework reported, the model that answered, and
the cost priced from `prices:` in agent-evals.yaml for that model.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.record import CaseResult, load_record
from agent_evals.record import Usage as RecordUsage
from tests.support import PROMPT, basic_project, write_tree

REPO = Path(__file__).resolve().parent.parent

# Prices for the fake models' names, USD per million tokens: the cost of each case is checkable.
CONFIG = """\
schema_version: 1
prices:
  fake-gpt-1: {input_per_mtok: 2.0, output_per_mtok: 8.0, cache_read_per_mtok: 0.5, cache_write_per_mtok: 2.5}
  fake-chat-1: {input_per_mtok: 1.0, output_per_mtok: 4.0}
"""

# The system under test: the same ticket triage (tests/support.py) written with each framework.
AGENT = """\
import json
from dataclasses import dataclass

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import JsonOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import chain
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, ToolCallPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage


def disposition(text):
    text = text.lower()
    if "money back" in text:
        return "refund"
    if "log in" in text:
        return "account_access"
    return "billing"


# --- pydantic-ai: an Agent whose output is a pydantic model -----------------------------------
class Triage(BaseModel):
    disposition: str
    urgent: bool = False


def classify(messages, info: AgentInfo) -> ModelResponse:
    prompt = next(p.content for p in messages[-1].parts if isinstance(p, UserPromptPart))
    return ModelResponse(
        parts=[ToolCallPart(info.output_tools[0].name, {"disposition": disposition(prompt)})],
        usage=RequestUsage(input_tokens=1200, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=100),
    )


triage_agent = Agent(FunctionModel(classify, model_name="fake-gpt-1"), output_type=Triage,
                     instructions="Classify the ticket.")

# pydantic-ai's TestModel names itself `test`: a model no price knows.
unpriced_agent = Agent(TestModel(custom_output_text="refund"))


# --- LangChain: a chain, prompt | model | parser, that takes the case's vars ------------------
def fake_chat(answer, input_tokens, output_tokens, model_name="fake-chat-1", **message):
    reply = AIMessage(
        content=json.dumps({"disposition": answer}),
        usage_metadata={"input_tokens": input_tokens, "output_tokens": output_tokens,
                        "total_tokens": input_tokens + output_tokens},
        response_metadata={"model_name": model_name, "finish_reason": "stop"},
        **message,
    )
    return FakeMessagesListChatModel(responses=[reply])


triage_chain = (
    ChatPromptTemplate.from_messages([("system", "Classify the ticket."), ("user", "{subject}: {body}")])
    | fake_chat("refund", 300, 12)
    | JsonOutputParser()
)


# --- LangChain: a @chain function that takes the text and returns the model's message ----------
_access_model = fake_chat(
    "account_access", 200, 10,
    tool_calls=[{"name": "lookup_account", "args": {"email": "a@example.com"}, "id": "call_1"}],
)


@chain
def routed(text):
    return _access_model.invoke([("user", text)])


# --- a plain async function that calls a LangChain model and returns a dataclass --------------
@dataclass
class Verdict:
    disposition: str
    reason: str


_billing_model = fake_chat("billing", 100, 5)


async def answer_dataclass(request):
    reply = await _billing_model.ainvoke(request["messages"][-1]["content"])
    return Verdict(disposition=json.loads(reply.content)["disposition"], reason=request["vars"]["subject"])


# --- objects with the protocols but no framework: a sync-only agent and Runnable -------------
class SyncAgent:
    def run_sync(self, text):
        return {"disposition": disposition(text)}


class SyncRunnable:
    def invoke(self, text):
        return Triage(disposition=disposition(text), urgent="urgent" in text)


sync_agent = SyncAgent()
sync_runnable = SyncRunnable()


# --- two models in one call: no single price applies ------------------------------------------
_second_model = fake_chat("refund", 50, 5, model_name="fake-gpt-1")


@chain
def two_models(text):
    _billing_model.invoke(text)
    return _second_model.invoke(text)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    basic_project(tmp_path)
    write_tree(tmp_path, {"agent.py": AGENT, "agent-evals.yaml": CONFIG})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    return tmp_path


def run_target(project: Path, attr: str, capsys: pytest.CaptureFixture[str]) -> tuple[CaseResult, ...]:
    """`agent-evals run` with the prompt's provider set to `python:agent:attr`; the record's cases."""
    write_tree(
        project, {"prompts/triage.yaml": PROMPT.replace("python:agent:answer", f"python:agent:{attr}")}
    )
    code = main(["run", "--output", "out.jsonl"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    record = load_record(project / "out.jsonl")
    assert record.status == "complete"
    return record.cases


def test_pydantic_ai_agent_with_a_pydantic_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = run_target(project, "triage_agent", capsys)

    assert [(c.case_id, c.status) for c in cases] == [("c1", "pass"), ("c2", "pass"), ("c3", "pass")]
    assert [json.loads(c.output or "") for c in cases] == [
        {"disposition": "refund", "urgent": False},
        {"disposition": "account_access", "urgent": False},
        {"disposition": "billing", "urgent": False},
    ]
    for case in cases:
        # pydantic-ai counts cache tokens inside input_tokens; the record keeps them apart.
        assert case.usage == RecordUsage(
            input_tokens=100, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=100
        )
        assert case.model == "fake-gpt-1"
        # Cache reads and writes at their own rates.
        assert case.cost_usd == pytest.approx((100 * 2.0 + 20 * 8.0 + 1000 * 0.5 + 100 * 2.5) / 1e6)


def test_langchain_chain_gets_the_vars(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The chain's prompt template has two variables: given the text instead, it would raise.
    cases = run_target(project, "triage_chain", capsys)

    assert [(c.case_id, c.status) for c in cases] == [("c1", "pass"), ("c2", "fail"), ("c3", "fail")]
    assert {c.output for c in cases} == {'{"disposition": "refund"}'}
    for case in cases:
        # Read from the model inside the chain: the parser at its end returns a plain dict.
        assert case.usage == RecordUsage(input_tokens=300, output_tokens=12)
        assert case.model == "fake-chat-1"
        assert case.finish_reason == "stop"
        assert case.cost_usd == pytest.approx((300 * 1.0 + 12 * 4.0) / 1e6)


def test_chain_function_gets_the_text_and_returns_a_message(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = run_target(project, "routed", capsys)

    assert [(c.case_id, c.status) for c in cases] == [("c1", "fail"), ("c2", "pass"), ("c3", "fail")]
    assert cases[1].output == '{"disposition": "account_access"}'
    assert [(t.name, t.arguments, t.id) for t in cases[1].tool_calls] == [
        ("lookup_account", {"email": "a@example.com"}, "call_1")
    ]
    # Counted once: the callback saw the call and the returned message is the same call.
    assert cases[1].usage == RecordUsage(input_tokens=200, output_tokens=10)
    assert cases[1].cost_usd == pytest.approx((200 * 1.0 + 10 * 4.0) / 1e6)


def test_async_function_returning_a_dataclass(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = run_target(project, "answer_dataclass", capsys)

    assert [(c.case_id, c.status) for c in cases] == [("c1", "fail"), ("c2", "fail"), ("c3", "pass")]
    assert json.loads(cases[2].output or "") == {"disposition": "billing", "reason": "Invoice"}
    # The function called LangChain itself: its tokens still count.
    assert cases[2].usage == RecordUsage(input_tokens=100, output_tokens=5)
    assert cases[2].model == "fake-chat-1"
    assert cases[2].cost_usd == pytest.approx((100 * 1.0 + 5 * 4.0) / 1e6)


@pytest.mark.parametrize(
    ("attr", "output"),
    [("sync_agent", '{"disposition": "%s"}'), ("sync_runnable", '{"disposition": "%s", "urgent": false}')],
)
def test_sync_only_protocol_objects_get_the_text(
    project: Path, capsys: pytest.CaptureFixture[str], attr: str, output: str
) -> None:
    cases = run_target(project, attr, capsys)

    assert [c.output for c in cases] == [output % d for d in ("refund", "account_access", "billing")]
    # Nothing reported tokens: unknown, not zero.
    assert [(c.usage, c.cost_usd) for c in cases] == [(None, None)] * 3


def test_a_model_without_a_price_costs_unknown_not_zero(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = run_target(project, "unpriced_agent", capsys)

    assert {c.output for c in cases} == {"refund"}
    assert all(c.model == "test" and c.usage is not None and c.usage.output_tokens > 0 for c in cases)
    assert [c.cost_usd for c in cases] == [None, None, None]


def test_calls_to_two_models_are_not_priced_as_one(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = run_target(project, "two_models", capsys)

    assert all(c.model == "fake-chat-1+fake-gpt-1" for c in cases)
    assert all(c.usage == RecordUsage(input_tokens=150, output_tokens=10) for c in cases)
    assert [c.cost_usd for c in cases] == [None, None, None]


def test_a_text_taking_agent_needs_a_user_message(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompt = PROMPT.replace("python:agent:answer", "python:agent:triage_agent").replace(
        "role: user", "role: system"
    )
    write_tree(project, {"prompts/triage.yaml": prompt})

    assert main(["run"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "python:agent:triage_agent takes the text of the prompt's last user message, and the prompt has none "
            "(add a user message, e.g. content: '{{ question }}')"
        )
    )


def test_a_framework_object_imported_from_outside_the_project_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    library = write_tree(tmp_path / "lib", {"shared_runnables.py": AGENT})
    project = basic_project(tmp_path / "project")
    write_tree(project, {"agent.py": "from shared_runnables import triage_chain\n"})
    monkeypatch.syspath_prepend(str(library))
    monkeypatch.chdir(project)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    monkeypatch.delitem(sys.modules, "shared_runnables", raising=False)
    write_tree(
        project, {"prompts/triage.yaml": PROMPT.replace("python:agent:answer", "python:agent:triage_chain")}
    )

    assert main(["run"]) == 2
    assert (
        "refusing python:agent:triage_chain: 'triage_chain' is imported from shared_runnables, outside the "
        "project" in capsys.readouterr().err
    )


def test_a_module_is_not_an_agent(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `subprocess` has a `run`: a module must never be taken for an agent.
    write_tree(project, {"agent.py": AGENT + "import subprocess\n"})
    write_tree(
        project, {"prompts/triage.yaml": PROMPT.replace("python:agent:answer", "python:agent:subprocess")}
    )

    assert main(["run"]) == 2
    assert "'agent.subprocess' (module) is not callable and has no invoke/ainvoke" in capsys.readouterr().err


def test_the_frameworks_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/frameworks: one eval set, a target per framework, switched with --provider."""
    example = shutil.copytree(REPO / "examples" / "frameworks", tmp_path / "frameworks")
    monkeypatch.chdir(example)
    for attr in ("pydantic_ai_agent:agent", "langchain_chain:triage_chain", "chain_function:triage"):
        module = f"triage_agents.{attr.partition(':')[0]}"
        monkeypatch.delitem(sys.modules, module, raising=False)
        assert (
            main(["run", "--provider", f"python:{module}:{attr.partition(':')[2]}", "--output", "r.jsonl"])
            == 0
        )
        record = load_record(example / "r.jsonl")
        assert [c.status for c in record.cases] == ["pass"] * len(record.cases), attr
        assert all(c.cost_usd is not None and c.cost_usd > 0 for c in record.cases), attr
