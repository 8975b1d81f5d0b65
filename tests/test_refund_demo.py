"""The bundled refund agent (synthetic): the local model's tool mode on it, its eval set, and its gate.

The example is prompts/refund-agent.yaml, evalsets/refund-agent.yaml (cases and recorded tool
results sampled from the synthetic log examples/logs/refund-agent-production.jsonl) and the
candidate examples/candidate/refund-agent.yaml, which drops the instruction to check the refund
policy. Every test copies the files it needs into a temporary project, so nothing here writes
into the work tree.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agent_evals.cli import main
from agent_evals.load import load_project, load_prompt
from agent_evals.record import CaseResult, RunRecord, load_record
from agent_evals.redact import Redactor
from tests.support import feature_branch, load_script

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "prompts/refund-agent.yaml"
EVALSET = "evalsets/refund-agent.yaml"
CANDIDATE = "examples/candidate/refund-agent.yaml"
LOG = "examples/logs/refund-agent-production.jsonl"
MAP = "examples/logs/refund-agent.map.yaml"
TOOLS = ("lookup_order", "lookup_policy", "issue_refund", "escalate_to_human")
POLICY_STEP = (
    "      2. Check the refund policy: call lookup_policy with the order's category, "
    "days_since_delivery and final_sale.\n"
)


def example_files(*extra: str) -> dict[str, str]:
    return {rel: (ROOT / rel).read_text(encoding="utf-8") for rel in (PROMPT, EVALSET, *extra)}


def copy_example(dest: Path, *extra: str) -> Path:
    for rel, text in example_files(*extra).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text, encoding="utf-8")
    return dest


def log_module() -> ModuleType:
    return load_script(ROOT / "examples/logs/make_refund_log.py")


def by_id(record: RunRecord) -> dict[str, CaseResult]:
    return {case.case_id: case for case in record.cases}


def names(case: CaseResult) -> list[str]:
    return [call.name for call in case.tool_calls]


@dataclass(frozen=True)
class Demo:
    """The demo's commands run once in a copy of the example: both runs, the diff and its report."""

    root: Path
    baseline: RunRecord
    candidate: RunRecord
    diff_exit: int
    report: str


# The demo's commands, as the Makefile's `demo` target runs them for the refund agent.
RUN_BASE = ["run", "--evalset", "refund-agent", "--output", "demo/baseline.jsonl", "--no-cache"]
RUN_CANDIDATE = [*RUN_BASE[:-3], "--prompt-file", CANDIDATE, "--output", "demo/candidate.jsonl", "--no-cache"]
DIFF = ["diff", "demo/baseline.jsonl", "demo/candidate.jsonl", "--report-md", "demo/report.md"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    root = copy_example(tmp_path_factory.mktemp("refund-demo"), CANDIDATE)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["validate"]) == 0
        assert main(RUN_BASE) == 0
        assert main(RUN_CANDIDATE) == 0
        diff_exit = main(DIFF)
    return Demo(
        root=root,
        baseline=load_record(root / "demo/baseline.jsonl"),
        candidate=load_record(root / "demo/candidate.jsonl"),
        diff_exit=diff_exit,
        report=(root / "demo/report.md").read_text(encoding="utf-8"),
    )


# --- the example's files ---------------------------------------------------------------


def test_the_example_validates_and_is_marked_synthetic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_example(tmp_path, CANDIDATE)
    monkeypatch.chdir(tmp_path)

    assert main(["validate"]) == 0
    project = load_project(Path("."))
    assert project.errors == []
    prompt, evalset = project.prompts["refund-agent"], project.evalsets["refund-agent"]
    assert [t.name for t in prompt.tools] == list(TOOLS)
    assert prompt.model.provider == "local"
    assert prompt.output.format == "json"
    assert evalset.provenance is not None
    assert evalset.provenance.synthetic
    assert len(evalset.cases) >= 40
    assert [(g.type, g.label) for g in evalset.graders] == [
        ("exact_match", "decision"),
        ("tool_called", "policy-checked"),
        ("tool_sequence", "trajectory"),
        ("budget", "budget"),
    ]
    assert evalset.gate is not None
    assert evalset.gate.critical == ("refund",)
    assert sorted(evalset.tools) == ["escalate_to_human", "issue_refund"]  # mocks for side effects only
    decisions = Counter(case.expected["decision"] for case in evalset.cases)
    assert set(decisions) == {"refund", "escalate"}
    assert min(decisions.values()) >= 15
    for case in evalset.cases:
        assert case.expected["decision"] in case.tags
        # Every case replays what production did: order, policy, then refund or escalation.
        assert [call.name for call in case.tools] == case.expected["tools"]
        assert case.expected["tools"][:2] == ["lookup_order", "lookup_policy"]
        refunded = case.expected["tools"][2] == "issue_refund"
        assert refunded == (case.expected["decision"] == "refund") == case.tools[1].result["eligible"]
    for text in (PROMPT, EVALSET, CANDIDATE):
        assert "SYNTHETIC EXAMPLE" in (ROOT / text).read_text(encoding="utf-8")


def test_the_candidate_only_drops_the_policy_step() -> None:
    base, candidate = load_prompt(ROOT / PROMPT), load_prompt(ROOT / CANDIDATE)

    assert candidate.id == base.id
    assert candidate.version != base.version
    assert candidate.tools == base.tools
    assert candidate.output == base.output
    base_system, candidate_system = base.messages[0].content, candidate.messages[0].content
    assert "lookup_policy with" in base_system
    assert "lookup_policy with" not in candidate_system
    # The other steps are the same, renumbered.
    without_step = base_system.replace(POLICY_STEP.strip() + "\n", "")
    assert candidate_system == without_step.replace("\n3. If", "\n2. If").replace(
        "\n4. Answer", "\n3. Answer"
    )
    assert candidate.messages[1:] == base.messages[1:]


def test_the_log_is_synthetic_seeded_and_in_openai_format(tmp_path: Path) -> None:
    gen = log_module()

    again = gen.write_log(tmp_path / "again.jsonl", 300, seed=14)

    committed = (ROOT / LOG).read_bytes()
    assert again.read_bytes() == committed
    rows = [json.loads(line) for line in committed.decode("utf-8").splitlines()]
    assert len(rows) == 300
    assert all(row["synthetic"] is True for row in rows)
    assert len({row["conversation_id"] for row in rows}) == 300
    for row in rows:
        messages = row["messages"]
        assert [m["role"] for m in messages[:2]] == ["system", "user"]
        answered = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
        calls = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
        assert {c["id"] for c in calls} == answered
        for call in calls:
            assert call["type"] == "function"
            assert call["function"]["name"] in TOOLS
            assert isinstance(json.loads(call["function"]["arguments"]), dict)  # arguments: a JSON string
        assert messages[-1]["role"] == "assistant"
        assert messages[-1]["content"]
    # A few conversations have no order id: the agent asked for it, and QA did not review them.
    unreviewed = [row for row in rows if row["review"] is None]
    assert 0 < sum(row["meta"].get("outcome") == "asked_for_order_id" for row in unreviewed) < 30


def test_the_cases_replay_the_logs_calls_redacted() -> None:
    rows = {
        row["conversation_id"]: row
        for row in (json.loads(line) for line in (ROOT / LOG).read_text(encoding="utf-8").splitlines())
    }
    redactor = Redactor()
    evalset = load_project(ROOT).evalsets["refund-agent"]

    for case in evalset.cases:
        assert case.cluster is not None
        row = rows[case.cluster]
        answers = {
            m["tool_call_id"]: json.loads(m["content"]) for m in row["messages"] if m["role"] == "tool"
        }
        logged = [
            {
                "name": c["function"]["name"],
                "arguments": redactor.redact_value(json.loads(c["function"]["arguments"]))[0],
                "result": redactor.redact_value(answers[c["id"]])[0],
            }
            for m in row["messages"]
            for c in m.get("tool_calls") or []
        ]
        assert [call.model_dump(mode="json") for call in case.tools] == logged
        assert case.vars["message"] == redactor.redact(row["request"]["message"])[0]
        assert case.expected == {"decision": row["review"]["decision"], "tools": row["review"]["tools"]}
    # Personal data in tool results was redacted too.
    assert all(case.tools[0].result["customer_email"] == "<EMAIL>" for case in evalset.cases)


def test_the_cases_are_what_sample_makes_of_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command in examples/logs/README.md, run again, gives the committed cases."""
    for rel in (PROMPT, LOG, MAP):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    monkeypatch.chdir(tmp_path)
    readme = (ROOT / "examples/logs/README.md").read_text(encoding="utf-8")
    command = shlex.split(readme.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " "))
    assert command[:2] == ["agent-evals", "sample"]

    assert main(command[1:]) == 0

    sampled = load_project(tmp_path).evalsets["refund-agent"]
    committed = load_project(ROOT).evalsets["refund-agent"]
    assert [c.model_dump(mode="json") for c in sampled.cases] == [
        c.model_dump(mode="json") for c in committed.cases
    ]
    assert sum(len(c.tools) for c in sampled.cases) == 3 * len(sampled.cases)


# --- the local model's tool mode on the example ------------------------------------------


def test_baseline_trajectory_of_an_escalated_case_is_exact(demo: Demo) -> None:
    evalset = load_project(demo.root).evalsets["refund-agent"]
    case = next(c for c in evalset.cases if c.expected["decision"] == "escalate")
    order, policy, escalation = case.tools
    result = by_id(demo.baseline)[case.id]

    steps = [
        (
            s.kind,
            s.name,
            s.arguments,
            s.call_id,
            s.source,
            s.finish_reason,
            [(c.name, c.id) for c in s.tool_calls],
        )
        for s in result.steps
    ]
    assert steps == [
        ("model", None, None, None, None, "tool_calls", [("lookup_order", "call_1")]),
        ("tool", "lookup_order", order.arguments, "call_1", "recorded", None, []),
        ("model", None, None, None, None, "tool_calls", [("lookup_policy", "call_2")]),
        ("tool", "lookup_policy", policy.arguments, "call_2", "recorded", None, []),
        ("model", None, None, None, None, "tool_calls", [("escalate_to_human", "call_3")]),
        ("tool", "escalate_to_human", escalation.arguments, "call_3", "recorded", None, []),
        ("model", None, None, None, None, "stop", []),
    ]
    assert [s.result for s in result.steps if s.kind == "tool"] == [
        order.result,
        policy.result,
        escalation.result,
    ]
    assert json.loads(result.output or "") == {
        "decision": "escalate",
        "order_id": order.arguments["order_id"],
        "reason": policy.result["reason"],
    }
    assert result.replay is not None
    assert (result.replay.unmatched, result.replay.unconsumed) == ((), ())
    assert result.status == "pass"


def test_baseline_trajectory_of_a_refunded_case_is_exact(demo: Demo) -> None:
    evalset = load_project(demo.root).evalsets["refund-agent"]
    case = next(c for c in evalset.cases if c.expected["decision"] == "refund")
    order, policy, refund = case.tools
    result = by_id(demo.baseline)[case.id]

    assert [(c.name, c.arguments, c.id) for c in result.tool_calls] == [
        ("lookup_order", {"order_id": order.result["order_id"]}, "call_1"),
        (
            "lookup_policy",
            {
                "category": order.result["category"],
                "days_since_delivery": order.result["days_since_delivery"],
                "final_sale": order.result["final_sale"],
            },
            "call_2",
        ),
        ("issue_refund", {"order_id": order.result["order_id"], "amount": order.result["amount"]}, "call_3"),
    ]
    assert json.loads(result.output or "") == {
        "decision": "refund",
        "order_id": order.result["order_id"],
        "refund_id": refund.result["refund_id"],
        "reason": policy.result["reason"],
    }


def test_the_baseline_passes_its_graders_and_replays_every_call(demo: Demo) -> None:
    cases = demo.baseline.cases

    assert len(cases) >= 40
    assert sum(case.status == "pass" for case in cases) >= 0.9 * len(cases)
    assert all(case.status != "error" for case in cases)
    for case in cases:
        assert names(case) in (
            ["lookup_order", "lookup_policy", "issue_refund"],
            ["lookup_order", "lookup_policy", "escalate_to_human"],
        )
        assert {s.source for s in case.steps if s.kind == "tool"} == {"recorded"}
        assert case.replay is not None
        assert case.replay.unconsumed == ()


def test_the_candidate_skips_lookup_policy_and_refunds_what_the_policy_denies(demo: Demo) -> None:
    baseline = by_id(demo.baseline)
    escalated = [cid for cid, case in baseline.items() if names(case)[-1] == "escalate_to_human"]
    assert len(escalated) >= 15

    for case in demo.candidate.cases:
        assert names(case) == ["lookup_order", "issue_refund"]
        assert json.loads(case.output or "")["decision"] == "refund"
        grades = {g.grader: g for g in case.grades}
        assert grades["policy-checked"].passed is False
        assert (
            grades["policy-checked"].reason
            == "lookup_policy never called (calls: lookup_order, issue_refund)"
        )
    for cid in escalated:
        case = by_id(demo.candidate)[cid]
        # Production never refunded these orders: the refund is answered by the eval set's mock.
        refund_step = [s for s in case.steps if s.kind == "tool"][-1]
        assert (refund_step.name, refund_step.source) == ("issue_refund", "mock")
        assert refund_step.result["refund_id"] == f"RF-MOCK-{refund_step.arguments['order_id']}"
        assert case.replay is not None
        assert [entry.split("(")[0] for entry in case.replay.unconsumed] == [
            "lookup_policy",
            "escalate_to_human",
        ]


# --- the demo's gate -----------------------------------------------------------------------


def test_the_demo_gate_fails_and_the_pr_comment_names_the_skipped_step_per_case(demo: Demo) -> None:
    assert demo.diff_exit == 1
    sections = demo.report.split("\n#### `")[1:]
    # Every case regressed; the comment keeps under GitHub's size limit, so the last few are named only.
    assert len(sections) >= 40
    assert all(f"`{case.case_id}`" in demo.report for case in demo.baseline.cases)
    for section in sections:
        assert "**Trajectory**: no longer calls `lookup_policy`" in section
        assert (
            "❌ **policy-checked**: lookup\\_policy never called (calls: lookup\\_order, issue\\_refund)"
            in section
        )
    assert "`critical refund`" in demo.report


def test_the_makefile_demo_runs_these_commands() -> None:
    """The commands the demo fixture runs are the Makefile's (apart from paths and --no-cache)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(
        [make, "-n", "-o", ".venv/.installed", "demo"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    commands = []
    for line in dry.splitlines():
        words = shlex.split(line.partition(";")[0])
        if words and words[0].endswith("/agent-evals") and "refund-agent" in line:
            commands.append([w.replace(".agent-evals/demo/refund-agent/", "demo/") for w in words[1:]])

    assert commands == [[a for a in args if a != "--no-cache"] for args in (RUN_BASE, RUN_CANDIDATE, DIFF)]


# --- acceptance 6: a branch that only removes the policy-lookup instruction fails ci -----------


def test_ci_fails_a_branch_that_only_removes_the_policy_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {**example_files(), ".gitignore": ".agent-evals/\nout/\n"}
    repo = feature_branch(tmp_path / "repo", monkeypatch, files, modules=())
    prompt = files[PROMPT]
    assert prompt.count(POLICY_STEP) == 1
    repo.commit({PROMPT: prompt.replace(POLICY_STEP, "")}, message="shorter refund steps")
    numstat = repo.git.git.diff("--numstat", "main", "HEAD")
    assert numstat == f"0\t1\t{PROMPT}"  # one line removed, nothing else

    code = main(["ci", "--base", "main", "--report-md", "out/report.md", "--json", "out/report.json"])

    assert code == 1, capsys.readouterr().out
    md = (repo.root / "out/report.md").read_text(encoding="utf-8")
    cases = load_project(repo.root).evalsets["refund-agent"].cases
    assert md.count("**Trajectory**: no longer calls `lookup_policy`") == md.count("\n#### `") >= 40
    assert all(f"`{case.id}`" in md for case in cases)
    verdict: dict[str, Any] = json.loads((repo.root / "out/report.json").read_text(encoding="utf-8"))
    assert verdict["status"] == "fail"
