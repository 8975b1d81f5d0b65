"""`run --resume` refuses to finish a run on other code than it started with."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.record import load_record
from tests.support import write_tree

FILES = {
    "prompts/triage.yaml": (
        "schema_version: 1\nid: triage\nversion: 1\n"
        "owner: {name: Support AI team, oncall: pagerduty:support-ai}\n"
        'model: {provider: "python:agent.main:answer", name: rules}\n'
        "messages:\n  - role: user\n    content: '{{ body }}'\n"
    ),
    "evalsets/triage.yaml": (
        "schema_version: 1\nid: triage\nprompt: triage\n"
        "provenance: {source: synthetic test cases, synthetic: true}\n"
        "graders: [{type: contains, value: ok}]\n"
        "cases:\n  - {id: c1, vars: {body: one}}\n  - {id: c2, vars: {body: two}}\n"
    ),
    "agent/__init__.py": "",
    "agent/main.py": "def answer(request):\n    return 'ok'\n",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_tree(tmp_path, FILES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("agent", "agent.main"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def test_resume_refuses_changed_agent_code(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--output", "r.jsonl"]) == 0
    run_id = load_record(project / "r.jsonl").header.run_id
    (project / "agent/main.py").write_text("def answer(request):\n    return 'ok, changed'\n")
    capsys.readouterr()
    assert main(["run", "--resume", "r.jsonl"]) == 2
    assert capsys.readouterr().err == (
        f"r.jsonl: the code of 'triage' changed since run {run_id} started (agent/main.py) "
        "(half a run on the old code and half on the new would be neither; start a new run instead)\n"
    )


def test_resume_on_the_same_code_goes_on(project: Path) -> None:
    assert main(["run", "--output", "r.jsonl"]) == 0
    (project / "notes.txt").write_text("not code the run executes\n")
    assert main(["run", "--resume", "r.jsonl"]) == 0
