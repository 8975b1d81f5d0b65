"""`ci` confirms a pass -> fail case before a count rule counts it, when outputs vary (issue 12, item 3).

The agent (a `python:` provider, sampling at temperature 0.7) answers most tickets
right every time, but a few "noisy" tickets come out right or wrong call by
call, in a fixed pattern per ticket, so the test is deterministic. With the
shipped `init` policy (`max_regressions: 3`, `critical: [refund]`) a change
that does nothing must pass although noisy cases go pass -> fail, and a change
that really breaks a refund case must fail once `ci` has re-run it.
Everything runs in a real temporary git repository; nothing leaves the machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agent_evals.cli import main
from agent_evals.record import load_record
from tests.support import GitRepo, feature_branch

ROOT = Path(__file__).resolve().parents[1]
INIT_GATE = yaml.safe_load((ROOT / "agent_evals/templates/init/evalsets/ticket-triage.yaml").read_text())[
    "gate"
]

PROMPT = """\
schema_version: 1
id: triage
version: 1
description: Route a ticket (synthetic test prompt).
owner: {name: Support AI team, oncall: pagerduty:support-ai}
model: {provider: "python:agent:answer", name: sampled, temperature: 0.7}
output: {format: json}
messages:
  - role: system
    content: "Route the ticket. {{ '' }}"
  - role: user
    content: "{{ body }}"
"""

# The same behaviour, reworded: a no-op for the agent.
REWORDED = PROMPT.replace("Route the ticket.", "Route this ticket.")
# The new wording breaks the agent on one refund ticket, every time.
BREAKING = PROMPT.replace("Route the ticket.", "Route the ticket, briefly.")

# Noisy tickets follow their pattern call by call (1 = right); the others are always right.
AGENT = """\
import threading

PATTERNS = {"noisy-a": "10", "noisy-b": "1101", "refund-noisy": "1011"}
_calls = {}
_lock = threading.Lock()


def answer(request):
    body = request["vars"]["body"]
    label = request["vars"]["label"]
    with _lock:
        n = _calls[body] = _calls.get(body, -1) + 1
    if "briefly" in request["messages"][0]["content"] and body == "ticket refund-3":
        return {"disposition": "billing"}
    pattern = PATTERNS.get(body.removeprefix("ticket "))
    right = pattern is None or pattern[n % len(pattern)] == "1"
    return {"disposition": label if right else "other"}
"""


def case(case_id: str, label: str) -> str:
    body = json.dumps(f"ticket {case_id}")
    return (
        f"  - id: {case_id}\n    vars: {{body: {body}, label: {label}}}\n"
        f"    expected: {{disposition: {label}}}\n    tags: [{label}]\n"
    )


CASES = (
    "".join(case(f"refund-{i}", "refund") for i in range(6))
    + "".join(case(f"billing-{i}", "billing") for i in range(6))
    + case("noisy-a", "billing")
    + case("noisy-b", "billing")
    + case("refund-noisy", "refund")
)

EVALSET = (
    "schema_version: 1\nid: triage\nprompt: triage\nmetric: tickets routed right first time\n"
    "provenance: {source: synthetic test cases, synthetic: true}\n"
    f"gate: {json.dumps(INIT_GATE)}\n"
    "graders:\n  - {type: exact_match, name: disposition, field: disposition}\n"
    f"cases:\n{CASES}"
)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    files = {
        "prompts/triage.yaml": PROMPT,
        "evalsets/triage.yaml": EVALSET,
        "agent.py": AGENT,
        ".gitignore": ".agent-evals/\nout/\n*.json\n",
    }
    return feature_branch(tmp_path / "repo", monkeypatch, files)


def rules(path: str) -> dict[str, dict[str, object]]:
    (pair,) = json.loads(Path(path).read_text())["pairs"]
    return {r["rule"]: r for r in pair["verdict"]["rules"]}


def runs(path: str, case_id: str) -> list[tuple[int, str]]:
    return [(r.repeat, r.status) for r in load_record(Path(path)).cases if r.case_id == case_id]


def test_a_noop_with_noisy_cases_passes_the_shipped_policy(repo: GitRepo) -> None:
    repo.commit({"prompts/triage.yaml": REWORDED})
    assert main(["ci", "--base", "main", "--output", "out", "--no-cache", "--json", "a.json"]) == 0
    found = rules("a.json")
    # Two noisy cases went pass -> fail (their first call right, their second wrong) ...
    assert found["max_regressions"]["passed"]
    assert (
        found["max_regressions"]["message"]
        == "0 regression(s); max 3; not counted: 2 flaky (their runs disagree)"
    )
    assert found["critical refund"]["passed"]
    # ... and were re-run on both sides past the one design run, up to the 5 runs that would confirm
    # one of 2 (rules.runs_needed); nothing else was.
    assert runs("out/base/triage.jsonl", "noisy-a")[0] == (0, "pass")
    assert [r for r, _ in runs("out/base/triage.jsonl", "noisy-a")][1:] == [1, 2, 3, 4]
    assert [r for r, _ in runs("out/cand/triage.jsonl", "refund-noisy")] == [0, 1, 2, 3, 4]
    assert runs("out/base/triage.jsonl", "refund-0") == [(0, "pass")]
    assert load_record(Path("out/base/triage.jsonl")).header.options["repeat"] == 1


def test_a_consistent_regression_of_a_critical_case_fails_once_confirmed(repo: GitRepo) -> None:
    repo.commit({"prompts/triage.yaml": BREAKING})
    assert main(["ci", "--base", "main", "--output", "out", "--no-cache", "--json", "a.json"]) == 1
    found = rules("a.json")
    critical = found["critical refund"]
    assert not critical["passed"]
    assert critical["cases"] == ["refund-3"]
    assert "not counted: 1 flaky" in str(critical["message"])  # refund-noisy: noise, reported as such
    # Three cases went pass -> fail: 5 consistent runs per side confirm one (rules.runs_needed).
    assert runs("out/cand/triage.jsonl", "refund-3") == [(r, "fail") for r in range(5)]
    assert runs("out/base/triage.jsonl", "refund-3") == [(r, "pass") for r in range(5)]
    # `diff` on the same records reaches the same verdict: confirmation runs are part of the record.
    assert main(["diff", "out/base/triage.jsonl", "out/cand/triage.jsonl", "--json", "b.json"]) == 1
    assert rules("b.json") == found
