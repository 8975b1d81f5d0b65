"""`sample` records the tool calls of production logs as the cases' recorded tool results.

Acceptance 4 of issue 14: a synthetic OpenAI-format log and a synthetic OpenTelemetry
spans log (tests/data/trajectories, invented data) become cases with recorded tool results
that validate and run: `sample`, then `validate`, then `run` of a prompt with tools on the
offline `local` model, whose tool calls are answered from the recorded results.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent_evals import _yaml
from agent_evals.cli import main
from agent_evals.record import load_record
from tests.support import write_tree

DATA = Path(__file__).resolve().parent / "data" / "trajectories"

PROMPT = """\
schema_version: 1
id: refund-agent
version: 1
description: Decide a refund request (synthetic test prompt).
owner:
  name: Payments team
  oncall: pagerduty:payments
model:
  provider: local
  name: local-tfidf-knn
  temperature: 0
tools:
  - name: lookup_order
    description: The order by its id, with its category.
    parameters:
      type: object
      required: [order_id]
      properties:
        order_id: {type: string, pattern: "^HP-[0-9]{6}$"}
  - name: lookup_policy
    description: The refund decision for an order's category.
    parameters:
      type: object
      required: [category]
      properties:
        category: {type: string}
messages:
  - role: system
    content: |
      You decide refund requests.
      1. Call lookup_order with the order id.
      2. Call lookup_policy with the category from lookup_order.
      3. Answer with the decision.
  - role: user
    content: "{{ message }}"
output:
  format: json
  schema:
    type: object
    required: [decision]
    properties:
      decision: {type: string, enum: [refund, deny]}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_tree(tmp_path, {"prompts/refund-agent.yaml": PROMPT})
    (tmp_path / "evalsets").mkdir()
    for name in ("openai-messages.jsonl", "otel-spans.jsonl"):
        shutil.copy(DATA / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sample_args(log: str, *extra: str) -> list[str]:
    return ["sample", log, "--prompt", "refund-agent", "--n", "50", "--seed", "1", *extra]


OPENAI_MAP = (
    "--map",
    "vars.message=messages.1.content",
    "--map",
    "tools=messages",
    "--map",
    "label=review.decision",
)
OTEL_MAP = (
    "--format",
    "otel",
    "--map",
    "vars.message=input",
    "--map",
    "label=attributes.app.review.decision",
)


def cases_of(path: Path) -> list[dict[str, Any]]:
    data = _yaml.load_mapping(path)
    return json.loads(json.dumps(data["cases"]))


def run_record(project: Path, capsys: pytest.CaptureFixture[str]) -> list[Any]:
    code = main(["run", "--output", "run.jsonl"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return list(load_record(project / "run.jsonl").cases)


@pytest.mark.parametrize(
    ("log", "mapping", "count"),
    [("openai-messages.jsonl", OPENAI_MAP, 12), ("otel-spans.jsonl", OTEL_MAP, 8)],
)
def test_sampled_cases_with_recorded_tools_validate_and_run(
    project: Path, capsys: pytest.CaptureFixture[str], log: str, mapping: tuple[str, ...], count: int
) -> None:
    assert main(sample_args(log, *mapping)) == 0
    summary = capsys.readouterr().out
    assert f"tool calls recorded {2 * count}" in " ".join(summary.split())  # two calls a case

    cases = cases_of(project / "evalsets" / "refund-agent.yaml")
    assert len(cases) == count
    for case in cases:
        assert [t["name"] for t in case["tools"]] == ["lookup_order", "lookup_policy"]
        order, policy = case["tools"]
        assert order["arguments"]["order_id"] in case["vars"]["message"]
        assert policy["arguments"] == {"category": order["result"]["category"]}
        assert policy["result"]["decision"] == case["expected"]["decision"]

    assert main(["validate"]) == 0, capsys.readouterr().err
    capsys.readouterr()

    results = run_record(project, capsys)
    assert [r.status for r in results] == ["pass"] * count
    for result in results:
        # The model's calls were answered from the recorded results: none left over, none missing.
        assert [(s.kind, s.name, s.source) for s in result.steps] == [
            ("model", None, None),
            ("tool", "lookup_order", "recorded"),
            ("model", None, None),
            ("tool", "lookup_policy", "recorded"),
            ("model", None, None),
        ]
        assert result.replay is not None
        assert (result.replay.unmatched, result.replay.unconsumed) == ((), ())


def test_openai_log_cases_are_redacted_inside_tool_calls(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(sample_args("openai-messages.jsonl", *OPENAI_MAP)) == 0
    summary = capsys.readouterr().out
    text = (project / "evalsets" / "refund-agent.yaml").read_text(encoding="utf-8")

    assert "@example.com" not in text
    cases = cases_of(project / "evalsets" / "refund-agent.yaml")
    first = next(c for c in cases if "HP-100101" in c["vars"]["message"])
    assert first == {
        "id": first["id"],
        "vars": {
            "message": "Hi, I'm Ana Silva (<EMAIL>). Please refund order HP-100101, it arrived 3 days ago."
        },
        "expected": {"decision": "refund"},
        "tools": [
            {
                "name": "lookup_order",
                "arguments": {"order_id": "HP-100101"},
                "result": {
                    "order_id": "HP-100101",
                    "category": "apparel",
                    "amount": 20,
                    "customer_email": "<EMAIL>",
                },
            },
            {
                "name": "lookup_policy",
                "arguments": {"category": "apparel"},
                "result": {"category": "apparel", "decision": "refund"},
            },
        ],
    }
    # 12 emails in the messages and 12 in the order records: counted with the rest.
    assert " ".join(summary.split()).count("email 24") == 1


def test_otel_traces_become_rows_whatever_lines_their_spans_are_on(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(sample_args("otel-spans.jsonl", *OTEL_MAP, "--map", "cluster=trace_id")) == 0
    summary = " ".join(capsys.readouterr().out.split())
    assert "rows read 8" in summary

    cases = {c["cluster"]: c for c in cases_of(project / "evalsets" / "refund-agent.yaml")}
    # The OTLP export line (trace 8) and the line holding a list of spans (trace 7) read like the rest.
    assert sorted(cases) == [f"{k:032x}" for k in range(1, 9)]
    otlp = cases[f"{8:032x}"]
    assert otlp["vars"] == {
        "message": "Order HP-200279 please refund. Call me on <PHONE> if needed. - Hana Sato"
    }
    assert otlp["tools"] == [
        {
            "name": "lookup_order",
            "arguments": {"order_id": "HP-200279"},
            "result": {"order_id": "HP-200279", "category": "apparel", "amount": 37},
        },
        {
            "name": "lookup_policy",
            "arguments": {"category": "apparel"},
            "result": {"category": "apparel", "decision": "refund"},
        },
    ]


def test_tool_calls_that_cannot_be_recorded_are_counted_and_named(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {
            "q": f"refund HP-30000{k}",
            "label": "refund",
            "messages": [
                {"role": "user", "content": f"refund HP-30000{k}"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "a",
                            "function": {
                                "name": "lookup_order",
                                "arguments": f'{{"order_id": "HP-30000{k}"}}',
                            },
                        },
                        {"id": "b", "function": {"name": "lookup_policy", "arguments": "category=apparel"}},
                        {
                            "id": "c",
                            "function": {"name": "lookup_policy", "arguments": '{"category": "home"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": "order found"},
                {"role": "tool", "tool_call_id": "b", "content": "{}"},
                {"role": "tool", "tool_call_id": "zz", "content": "stray"},
            ],
        }
        for k in range(3)
    ]
    (project / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    args = sample_args(
        "log.jsonl", "--map", "vars.message=q", "--map", "tools=messages", "--map", "label=label"
    )
    assert main(args) == 0
    summary = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]

    assert [line for line in summary if "tool calls" in line or "left out" in line] == [
        "tool calls recorded 3",
        "left out: a tool result for no call and no tool name (left out) 3",
        "left out: arguments are not JSON 3",
        "left out: arguments are not a JSON object 3",
        "left out: no result recorded 3",
    ]
    cases = cases_of(project / "evalsets" / "refund-agent.yaml")
    assert next(c["tools"] for c in cases if c["vars"]["message"] == "refund HP-300000") == [
        {"name": "lookup_order", "arguments": {"order_id": "HP-300000"}, "result": "order found"}
    ]


def test_a_tools_field_that_is_not_a_trajectory_names_the_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{"q": "refund HP-400001", "label": "refund", "messages": 7}]
    (project / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    args = sample_args(
        "log.jsonl", "--map", "vars.message=q", "--map", "tools=messages", "--map", "label=label"
    )
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        "log.jsonl:1: tools is not a trajectory (messages: expected OpenAI-format messages (objects with "
        "'role') or OpenTelemetry spans, got a number) (map tools to OpenAI-format messages or OpenTelemetry "
        "spans, fix the line, or pass --skip-bad-lines)"
    )


def test_an_otel_line_without_spans_is_a_bad_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (project / "otel-spans.jsonl").read_text(encoding="utf-8")
    (project / "otel-spans.jsonl").write_text('{"metric": "cpu", "value": 3}\n' + text, encoding="utf-8")

    assert main(sample_args("otel-spans.jsonl", *OTEL_MAP)) == 2
    assert capsys.readouterr().err.strip() == (
        "otel-spans.jsonl:1: not OpenTelemetry spans (no span with a trace id in the line) (write a span, a "
        "list of spans or OTLP JSON per line, fix the line, or pass --skip-bad-lines)"
    )
    assert main(sample_args("otel-spans.jsonl", *OTEL_MAP, "--skip-bad-lines")) == 0
    assert "bad lines skipped: not OpenTelemetry spans 1" in " ".join(capsys.readouterr().out.split())
