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
from typing import Any

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
    for attr in (
        "pydantic_ai_agent:agent",
        "langchain_chain:triage_chain",
        "chain_function:triage",
        "pydantic_ai_tools:agent",
    ):
        module = f"triage_agents.{attr.partition(':')[0]}"
        monkeypatch.delitem(sys.modules, module, raising=False)
        assert (
            main(["run", "--provider", f"python:{module}:{attr.partition(':')[2]}", "--output", "r.jsonl"])
            == 0
        )
        record = load_record(example / "r.jsonl")
        assert [c.status for c in record.cases] == ["pass"] * len(record.cases), attr
        assert all(c.cost_usd is not None and c.cost_usd > 0 for c in record.cases), attr
        if attr == "pydantic_ai_tools:agent":
            # The agent's own loop, recorded: model, its tool call, model.
            first = record.cases[0]
            assert [(s.kind, s.name, s.arguments, s.result) for s in first.steps] == [
                ("model", None, None, None),
                ("tool", "lookup_account", {"ticket_subject": "Charged twice"}, {"plan": "pro"}),
                ("model", None, None, None),
            ]


# --- agents that run their own loop: the trajectory they report is recorded --------------------

# Synthetic refund agents, one per framework, each calling two real tools: lookup_order, then
# lookup_policy, then answering. Each framework's own test model drives the loop.
TOOL_AGENTS = """\
import json
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import chain
from langchain_core.tools import tool
from openai.types.responses import (
    ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText, ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

ORDERS = {"refund": {"order_id": 7, "total": 40}, "login": {"order_id": 8, "total": 15}}


def order_of(text):
    return ORDERS["refund" if "money back" in text.lower() else "login"]


# --- pydantic-ai: FunctionModel calling two tools, then a structured answer ---------------------
class Decision(BaseModel):
    refund: bool


def refund_model(messages, info: AgentInfo) -> ModelResponse:
    returns = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
    usage = RequestUsage(input_tokens=500 + 100 * len(returns), output_tokens=10, cache_read_tokens=200)
    if not returns:
        prompt = next(p.content for p in messages[-1].parts if isinstance(p, UserPromptPart))
        call = ToolCallPart("lookup_order", {"order_id": order_of(prompt)["order_id"]}, tool_call_id="o1")
        return ModelResponse(parts=[call], usage=usage, model_name="fake-gpt-1")
    if len(returns) == 1:
        call = ToolCallPart("lookup_policy", json.dumps({"total": returns[0].content["total"]}), tool_call_id="p1")
        return ModelResponse(parts=[TextPart("Checking the policy."), call], usage=usage, model_name="fake-gpt-1")
    answer = ToolCallPart(info.output_tools[0].name, {"refund": returns[1].content["refundable"]})
    return ModelResponse(parts=[answer], usage=usage, model_name="fake-gpt-1")


refund_agent = Agent(FunctionModel(refund_model, model_name="fake-gpt-1"), output_type=Decision)


@refund_agent.tool_plain
def lookup_order(order_id: int) -> dict:
    return {"order_id": order_id, "total": 40 if order_id == 7 else 15}


@refund_agent.tool_plain
def lookup_policy(total: int) -> dict:
    return {"refundable": total >= 20}


# pydantic-ai's TestModel calls every tool once, then answers.
tested_agent = Agent(TestModel(custom_output_text="done"))


@tested_agent.tool_plain
def lookup_status(order_id: int) -> str:
    return "shipped"


# --- LangChain: a loop over a fake chat model and a @tool; returns a LangGraph-style state -------
@tool
def lookup_account(email: str) -> str:
    \"\"\"Find the customer's account.\"\"\"
    return json.dumps({"locked": True, "email": email})


def _fake(messages):
    return FakeMessagesListChatModel(responses=messages)


@chain
def account_graph(text):
    model = _fake([
        AIMessage(content="", tool_calls=[{"name": "lookup_account", "args": {"email": "a@example.com"},
                                           "id": "call_a"}],
                  usage_metadata={"input_tokens": 300, "output_tokens": 8, "total_tokens": 308},
                  response_metadata={"model_name": "fake-chat-1", "finish_reason": "tool_calls"}),
        AIMessage(content=json.dumps({"disposition": "account_access"}),
                  usage_metadata={"input_tokens": 350, "output_tokens": 12, "total_tokens": 362},
                  response_metadata={"model_name": "fake-chat-1", "finish_reason": "stop"}),
    ])
    messages = [HumanMessage(text)]
    reply = model.invoke(messages)
    messages.append(reply)
    for call in reply.tool_calls:
        messages.append(ToolMessage(lookup_account.invoke(call["args"]), tool_call_id=call["id"],
                                    name=call["name"]))
    messages.append(model.invoke(messages))
    return {"messages": messages}


# --- a plain function returning OpenAI-format messages, with its own token counts ---------------
def openai_messages(request):
    return {
        "output": {"disposition": "refund"},
        "messages": [
            *request["messages"],
            {"role": "assistant", "content": None, "model": "fake-gpt-1",
             "usage": {"prompt_tokens": 400, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 100}},
             "tool_calls": [
                 {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id": 7}'}},
                 {"id": "c2", "type": "function", "function": {"name": "lookup_policy", "arguments": '{"total": 40}'}},
             ]},
            {"role": "tool", "tool_call_id": "c2", "content": '{"refundable": true}'},
            {"role": "tool", "tool_call_id": "c1", "content": "order 7: 40 EUR"},
            {"role": "assistant", "content": '{"disposition": "refund"}', "model": "fake-gpt-1",
             "usage": {"prompt_tokens": 500, "completion_tokens": 10}, "finish_reason": "stop"},
        ],
    }


# --- the same, routed through two models: a cheap one plans, a dearer one answers ----------------
def two_model_messages(request):
    out = openai_messages(request)
    out["messages"][-4]["model"] = "fake-chat-1"
    return out


# --- the same with a tool result for a call that was never made: kept out, and said so ----------
def stray_result_messages(request):
    out = openai_messages(request)
    out["messages"].insert(-1, {"role": "tool", "tool_call_id": "nobody-asked", "content": "42"})
    return out


# --- a plain function returning OpenTelemetry GenAI spans (its runtime's export) ----------------
SPANS = [
    {"trace_id": "t1", "span_id": "s3", "name": "execute_tool lookup_policy",
     "start_time": "2026-11-02T10:00:01.500Z", "end_time": "2026-11-02T10:00:01.750Z",
     "attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_policy",
                    "gen_ai.tool.call.id": "p1", "gen_ai.tool.call.arguments": '{"total": 40}'},
     "status": {"code": "ERROR", "message": "policy service timed out"}},
    {"trace_id": "t1", "span_id": "s1", "name": "chat fake-gpt-1",
     "start_time": "2026-11-02T10:00:00Z", "end_time": "2026-11-02T10:00:01.200Z",
     "attributes": {"gen_ai.operation.name": "chat", "gen_ai.response.model": "fake-gpt-1",
                    "gen_ai.usage.input_tokens": 600, "gen_ai.usage.output_tokens": 30,
                    "gen_ai.usage.cache_read.input_tokens": 100,
                    "gen_ai.response.finish_reasons": ["tool_calls"]}},
    {"trace_id": "t1", "span_id": "s2", "name": "execute_tool lookup_order",
     "start_time": "2026-11-02T10:00:01.250Z", "end_time": "2026-11-02T10:00:01.400Z",
     "attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
                    "gen_ai.tool.call.id": "o1", "gen_ai.tool.call.arguments": {"order_id": 7},
                    "gen_ai.tool.call.result": '{"total": 40}'}},
    {"trace_id": "t1", "span_id": "s4", "name": "chat fake-gpt-1",
     "start_time": "2026-11-02T10:00:02Z", "end_time": "2026-11-02T10:00:02.500Z",
     "attributes": {"gen_ai.operation.name": "chat", "gen_ai.response.model": "fake-gpt-1",
                    "gen_ai.usage.input_tokens": 700, "gen_ai.usage.output_tokens": 15,
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                        {"type": "text", "content": '{"disposition": "billing"}'}], "finish_reason": "stop"}])}},
]


def otel_spans(request):
    return {"output": None, "spans": SPANS}


# --- the OpenAI Agents SDK's RunResult shape, made with the openai SDK's own types ----------------
@dataclass
class Item:
    type: str
    raw_item: Any
    output: Any = None


@dataclass
class RawResponse:
    usage: Any


@dataclass
class RunResult:
    new_items: list
    raw_responses: list
    final_output: Any


def _usage(input_tokens, cached, output_tokens):
    return ResponseUsage(input_tokens=input_tokens, output_tokens=output_tokens,
                         total_tokens=input_tokens + output_tokens,
                         input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=0),
                         output_tokens_details=OutputTokensDetails(reasoning_tokens=0))


async def agents_sdk(request):
    call = ResponseFunctionToolCall(type="function_call", name="lookup_order", arguments='{"order_id": 8}',
                                    call_id="call_x", id="fc_1")
    message = ResponseOutputMessage(id="m1", type="message", role="assistant", status="completed",
                                    content=[ResponseOutputText(type="output_text", text="Locked out.",
                                                                annotations=[])])
    return RunResult(
        new_items=[
            Item("tool_call_item", call),
            Item("tool_call_output_item", {"type": "function_call_output", "call_id": "call_x",
                                           "output": '{"total": 15}'}, output={"total": 15}),
            Item("message_output_item", message),
        ],
        raw_responses=[RawResponse(_usage(250, 50, 9)), RawResponse(_usage(300, 0, 11))],
        final_output={"disposition": "account_access"},
    )


# --- trajectories with problems ----------------------------------------------------------------
def not_a_list(request):
    return {"output": "x", "messages": 5}


def nothing_readable(request):
    return {"output": "x", "messages": [1, "two"]}


def unanswered_call(request):
    return {"output": "x", "messages": [
        {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "issue_refund",
                                                                          "arguments": '{"order_id": 7}'}}]},
        {"role": "assistant", "content": "x"},
    ]}
"""


@pytest.fixture
def tools_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_tree(project, {"tool_agents.py": TOOL_AGENTS})
    monkeypatch.delitem(sys.modules, "tool_agents", raising=False)
    return project


def run_tool_agent(project: Path, attr: str, capsys: pytest.CaptureFixture[str]) -> tuple[CaseResult, ...]:
    write_tree(
        project, {"prompts/triage.yaml": PROMPT.replace("python:agent:answer", f"python:tool_agents:{attr}")}
    )
    code = main(["run", "--output", "out.jsonl"])
    out = capsys.readouterr()
    assert code in (0, 1, 3), out.out + out.err  # 3: every case an error (the bad-trajectory tests)
    return load_record(project / "out.jsonl").cases


def step_view(case: CaseResult) -> list[tuple[Any, ...]]:
    """Each step in a line: a model step's model, text, calls and tokens; a tool step's call and answer."""
    out: list[tuple[Any, ...]] = []
    for s in case.steps:
        if s.kind == "model":
            usage = s.usage.model_dump() if s.usage is not None else None
            out.append(("model", s.model, s.text, [(c.name, c.arguments, c.id) for c in s.tool_calls], usage))
        else:
            out.append(("tool", s.name, s.arguments, s.call_id, s.result, s.error, s.source))
    return out


def test_pydantic_ai_agent_calling_tools_records_its_trajectory(
    tools_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = run_tool_agent(tools_project, "refund_agent", capsys)

    refund = cases[0]
    assert refund.status == "fail"  # graded on disposition; the trajectory is what this test reads
    assert json.loads(refund.output or "") == {"refund": True}
    tokens = [{"input_tokens": 300 + 100 * k, "output_tokens": 10, "cache_read_tokens": 200,
               "cache_write_tokens": 0} for k in range(3)]  # fmt: skip
    assert step_view(refund) == [
        ("model", "fake-gpt-1", None, [("lookup_order", {"order_id": 7}, "o1")], tokens[0]),
        ("tool", "lookup_order", {"order_id": 7}, "o1", {"order_id": 7, "total": 40}, None, "agent"),
        ("model", "fake-gpt-1", "Checking the policy.", [("lookup_policy", {"total": 40}, "p1")], tokens[1]),
        ("tool", "lookup_policy", {"total": 40}, "p1", {"refundable": True}, None, "agent"),
        # The structured answer came through pydantic-ai's output tool: an answer, not a tool call.
        ("model", "fake-gpt-1", None, [], tokens[2]),
    ]
    assert [(t.name, t.arguments, t.id) for t in refund.tool_calls] == [
        ("lookup_order", {"order_id": 7}, "o1"),
        ("lookup_policy", {"total": 40}, "p1"),
    ]
    assert refund.usage == RecordUsage(input_tokens=1200, output_tokens=30, cache_read_tokens=600)
    assert refund.model == "fake-gpt-1"
    assert cases[1].steps[1].result == {"order_id": 8, "total": 15}


def test_pydantic_ai_test_model_calls_its_tools(
    tools_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = run_tool_agent(tools_project, "tested_agent", capsys)

    assert [s.kind for s in cases[0].steps] == ["model", "tool", "model"]
    tool = cases[0].steps[1]
    assert (tool.name, tool.arguments, tool.result, tool.source) == (
        "lookup_status",
        {"order_id": 0},
        "shipped",
        "agent",
    )
    assert cases[0].output == "done"


def test_langchain_loop_returning_its_messages(
    tools_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = run_tool_agent(tools_project, "account_graph", capsys)

    assert [c.status for c in cases] == ["fail", "pass", "fail"]
    assert cases[1].output == '{"disposition": "account_access"}'
    assert step_view(cases[1]) == [
        ("model", "fake-chat-1", None, [("lookup_account", {"email": "a@example.com"}, "call_a")],
         {"input_tokens": 300, "output_tokens": 8, "cache_read_tokens": 0, "cache_write_tokens": 0}),
        ("tool", "lookup_account", {"email": "a@example.com"}, "call_a", {"locked": True, "email": "a@example.com"},
         None, "agent"),
        ("model", "fake-chat-1", '{"disposition": "account_access"}', [],
         {"input_tokens": 350, "output_tokens": 12, "cache_read_tokens": 0, "cache_write_tokens": 0}),
    ]  # fmt: skip
    # The callback counted both model calls once each; the answer's finish reason is the last call's.
    assert cases[1].usage == RecordUsage(input_tokens=650, output_tokens=20)
    assert cases[1].finish_reason == "stop"
    assert cases[1].cost_usd == pytest.approx((650 * 1.0 + 20 * 4.0) / 1e6)


def test_function_returning_openai_messages(tools_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = run_tool_agent(tools_project, "openai_messages", capsys)

    assert cases[0].status == "pass"
    assert cases[0].output == '{"disposition": "refund"}'
    assert step_view(cases[0]) == [
        ("model", "fake-gpt-1", None,
         [("lookup_order", {"order_id": 7}, "c1"), ("lookup_policy", {"total": 40}, "c2")],
         {"input_tokens": 300, "output_tokens": 20, "cache_read_tokens": 100, "cache_write_tokens": 0}),
        # Results in the order they came back; text that is not JSON stays text.
        ("tool", "lookup_policy", {"total": 40}, "c2", {"refundable": True}, None, "agent"),
        ("tool", "lookup_order", {"order_id": 7}, "c1", "order 7: 40 EUR", None, "agent"),
        ("model", "fake-gpt-1", '{"disposition": "refund"}', [],
         {"input_tokens": 500, "output_tokens": 10, "cache_read_tokens": 0, "cache_write_tokens": 0}),
    ]  # fmt: skip
    # No framework reported tokens: the messages' own counts, priced by the model they name.
    assert cases[0].usage == RecordUsage(input_tokens=800, output_tokens=30, cache_read_tokens=100)
    assert cases[0].cost_usd == pytest.approx((800 * 2.0 + 30 * 8.0 + 100 * 0.5) / 1e6)
    assert cases[0].finish_reason == "stop"


def test_what_an_agents_trajectory_leaves_unreadable_is_noted_in_the_record(
    tools_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (case,) = run_tool_agent(tools_project, "stray_result_messages", capsys)[:1]
    assert [s.kind for s in case.steps] == ["model", "tool", "tool", "model"]
    assert len(case.notes) == 1
    assert "nobody-asked" in case.notes[0]
    # A trajectory read whole has no notes, and its record line no `notes` key.
    (clean,) = run_tool_agent(tools_project, "openai_messages", capsys)[:1]
    assert clean.notes == ()
    assert "notes" not in clean.model_dump(exclude_none=True)


def test_each_model_step_is_priced_by_its_own_model(
    tools_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = run_tool_agent(tools_project, "two_model_messages", capsys)

    plan, answer = (s for s in cases[0].steps if s.kind == "model")
    assert (plan.model, answer.model) == ("fake-chat-1", "fake-gpt-1")
    # fake-chat-1 has no cache price: its 100 cached tokens go at its input price.
    assert plan.cost_usd == pytest.approx(((300 + 100) * 1.0 + 20 * 4.0) / 1e6)
    assert answer.cost_usd == pytest.approx((500 * 2.0 + 10 * 8.0) / 1e6)
    # Two models, no single price: the case costs what its steps cost, not nothing.
    assert cases[0].cost_usd == pytest.approx(plan.cost_usd + answer.cost_usd)


def test_function_returning_otel_spans(tools_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = run_tool_agent(tools_project, "otel_spans", capsys)

    # `output: null`: the answer is the last model span's output message.
    assert cases[0].output == '{"disposition": "billing"}'
    assert step_view(cases[0]) == [
        # The chat span did not list its calls: the tool spans after it are them (by start time).
        ("model", "fake-gpt-1", None,
         [("lookup_order", {"order_id": 7}, "o1"), ("lookup_policy", {"total": 40}, "p1")],
         {"input_tokens": 500, "output_tokens": 30, "cache_read_tokens": 100, "cache_write_tokens": 0}),
        ("tool", "lookup_order", {"order_id": 7}, "o1", {"total": 40}, None, "agent"),
        ("tool", "lookup_policy", {"total": 40}, "p1", None, "policy service timed out", "agent"),
        ("model", "fake-gpt-1", '{"disposition": "billing"}', [],
         {"input_tokens": 700, "output_tokens": 15, "cache_read_tokens": 0, "cache_write_tokens": 0}),
    ]  # fmt: skip
    assert [s.latency_ms for s in cases[0].steps] == [1200.0, 150.0, 250.0, 500.0]


def test_openai_agents_sdk_run_result(tools_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = run_tool_agent(tools_project, "agents_sdk", capsys)

    assert cases[1].status == "pass"
    assert cases[1].output == '{"disposition": "account_access"}'
    assert step_view(cases[1]) == [
        ("model", None, None, [("lookup_order", {"order_id": 8}, "call_x")],
         {"input_tokens": 200, "output_tokens": 9, "cache_read_tokens": 50, "cache_write_tokens": 0}),
        ("tool", "lookup_order", {"order_id": 8}, "call_x", {"total": 15}, None, "agent"),
        ("model", None, "Locked out.", [],
         {"input_tokens": 300, "output_tokens": 11, "cache_read_tokens": 0, "cache_write_tokens": 0}),
    ]  # fmt: skip
    assert cases[1].usage == RecordUsage(input_tokens=500, output_tokens=20, cache_read_tokens=50)


@pytest.mark.parametrize(
    ("attr", "error"),
    [
        (
            "not_a_list",
            "python:tool_agents:not_a_list returned a trajectory that cannot be read: "
            "expected a list of messages, got a number",
        ),
        (
            "nothing_readable",
            "python:tool_agents:nothing_readable returned a trajectory with nothing readable in it: "
            "message 1: not a message object (a number; left out); "
            "message 2: not a message object (a string; left out)",
        ),
    ],
)
def test_an_unreadable_trajectory_fails_the_case_and_says_why(
    tools_project: Path, capsys: pytest.CaptureFixture[str], attr: str, error: str
) -> None:
    cases = run_tool_agent(tools_project, attr, capsys)

    assert [(c.status, c.error) for c in cases] == [("error", f"python:tool_agents:{attr}: {error}")] * 3


def test_a_call_without_a_result_is_a_step_that_says_so(
    tools_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = run_tool_agent(tools_project, "unanswered_call", capsys)

    assert step_view(cases[0]) == [
        ("model", None, None, [("issue_refund", {"order_id": 7}, "c1")], None),
        ("tool", "issue_refund", {"order_id": 7}, "c1", None, "no result recorded", "agent"),
        ("model", None, "x", [], None),
    ]
