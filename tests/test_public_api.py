"""The public API: the bundled example, end to end, through `agent_evals.*` names only."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import agent_evals
from tests.support import copy_ticket_triage_example

REPO = Path(__file__).resolve().parent.parent


def test_the_example_runs_diffs_gates_and_reports_from_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_ticket_triage_example(tmp_path)
    monkeypatch.chdir(tmp_path)

    root = agent_evals.find_root(tmp_path)
    project = agent_evals.load_project(root)
    assert agent_evals.validate_project(root) == []
    assert isinstance(project.prompts["ticket-triage"], agent_evals.Prompt)
    assert isinstance(project.evalsets["ticket-triage"], agent_evals.EvalSet)

    def run(project: agent_evals.Project, output: str) -> agent_evals.RunRecord:
        options = agent_evals.RunOptions(output=tmp_path / output, cache=False)
        (result,) = agent_evals.run_sync(agent_evals.execute(project, agent_evals.plan(project), options))
        assert isinstance(result, agent_evals.JobResult)
        return agent_evals.load_record(result.path)

    base = run(project, "base.jsonl")
    # The demo candidate: the prompt with its refund examples removed.
    candidate = agent_evals.with_prompt_file(project, tmp_path / "examples/candidate/ticket-triage.yaml")
    cand = run(candidate, "cand.jsonl")
    assert all(isinstance(c, agent_evals.CaseResult) for c in cand.cases)

    # diff and gate, one step at a time and as every command assembles them.
    diff = agent_evals.diff_runs(base, cand)
    assert isinstance(diff, agent_evals.Diff)
    assert diff.outcome("regressed")
    policy = project.evalsets["ticket-triage"].gate
    assert isinstance(policy, agent_evals.GatePolicy)
    verdict = agent_evals.gate_diff(diff, policy)
    assert isinstance(verdict, agent_evals.Verdict)
    assert verdict.status == "fail"
    report = agent_evals.compare_records(tmp_path / "base.jsonl", tmp_path / "cand.jsonl", root)
    assert isinstance(report, agent_evals.GateReport)
    assert (report.status, report.exit_code) == ("fail", 1)
    assert [p.verdict.status for p in report.pairs] == ["fail"]

    # Every reporter, from the same report.
    assert "ticket-triage" in agent_evals.render_markdown(report)
    assert json.loads(agent_evals.render_json(report))["pairs"][0]["verdict"]["status"] == "fail"
    suites = ET.fromstring(agent_evals.render_junit(report))
    assert int(suites.get("failures") or suites[0].get("failures") or 0) > 0
    assert agent_evals.render_html(report).lstrip().lower().startswith("<!doctype html>")
    assert "::error" in agent_evals.render_annotations(report)


def test_every_public_name_resolves_to_what_its_module_defines() -> None:
    for name in agent_evals.__all__:
        assert getattr(agent_evals, name) is not None, name
    exports = agent_evals._EXPORTS
    assert sorted(agent_evals.__all__) == sorted([*exports, "__version__"])
    for name, target in exports.items():
        module, _, attribute = target.partition(":")
        assert getattr(agent_evals, name) is getattr(importlib.import_module(module), attribute), name
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        agent_evals.nonesuch  # noqa: B018


def test_type_checkers_see_the_same_names_as_the_lazy_table() -> None:
    # The TYPE_CHECKING imports are what mypy and editors read; they must name what __getattr__ gives.
    tree = ast.parse(Path(agent_evals.__file__).read_text(encoding="utf-8"))
    seen: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names:
                    seen[alias.asname or alias.name] = f"{stmt.module}:{alias.name}"
    assert seen == agent_evals._EXPORTS


def test_importing_the_package_imports_nothing_else() -> None:
    code = "import sys, agent_evals; print(sorted(m for m in sys.modules if m.startswith(('agent_evals', 'pydantic'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "['agent_evals']"
