"""The command line's wiring: each option reaches the library (the libraries are tested on their own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.record import load_record
from agent_evals.validate import validate
from tests.support import AGENT, GitRepo, basic_project, copy_ticket_triage_example, write_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    return tmp_path


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy_ticket_triage_example(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_directory_option(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert main(["-C", str(project), "run", "--output", "r.jsonl"]) == 0
    assert (project / "r.jsonl").is_file()


def test_provider_and_model_overrides_reach_the_record(project: Path) -> None:
    write_tree(project, {"agent2.py": AGENT.replace('"other"', '"billing"')})
    assert main(["run", "--provider", "python:agent2:answer", "--model", "m2", "--output", "r.jsonl"]) == 0
    record = load_record(project / "r.jsonl")
    assert (record.header.provider["name"], record.header.provider["model"]) == ("python:agent2:answer", "m2")
    assert [c.status for c in record.cases] == ["pass", "pass", "pass"]  # agent2 answers c3 right


def test_gate_overrides_on_the_command_line(example: Path) -> None:
    assert main(["run", "--output", "base.jsonl"]) == 0
    assert main(["diff", "base.jsonl", "base.jsonl"]) == 0
    assert main(["diff", "base.jsonl", "base.jsonl", "--min-pass-rate", "0.9"]) == 1  # 80.6% < 90%
    # An edit that regresses one case: within max_regressions 3 and not significant, until overridden.
    record = (example / "base.jsonl").read_text().splitlines()
    line = next(i for i, text in enumerate(record) if '"status":"pass"' in text)
    record[line] = (
        record[line].replace('"status":"pass"', '"status":"fail"').replace('"passed":true', '"passed":false')
    )
    (example / "one-worse.jsonl").write_text("\n".join(record) + "\n")
    assert main(["diff", "base.jsonl", "one-worse.jsonl", "--json", "g.json"]) == 1  # a critical refund case
    rules = {r["rule"] for r in json.loads((example / "g.json").read_text())["pairs"][0]["verdict"]["rules"]}
    assert "max_regressions" in rules
    assert main(["diff", "base.jsonl", "one-worse.jsonl", "--max-regressions", "0", "--json", "g.json"]) == 1
    failed = [
        r
        for r in json.loads((example / "g.json").read_text())["pairs"][0]["verdict"]["rules"]
        if not r["passed"]
    ]
    assert "max_regressions" in {r["rule"] for r in failed}
    assert main(["diff", "base.jsonl", "base.jsonl", "--max-error-rate", "0", "--alpha", "0.2"]) == 0


def test_cache_stats_and_clear(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 0
    capsys.readouterr()
    assert main(["cache", "stats"]) == 0
    assert "response cache: 72 entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--older-than-days", "1"]) == 0
    assert capsys.readouterr().out.strip() == "removed 0 cached response(s)"
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == "removed 72 cached response(s)"


def test_ci_readiness_adds_the_scorecard(example: Path) -> None:
    from tests.support import GitRepo

    repo = GitRepo(example)
    repo.commit({".gitignore": ".agent-evals/\n"})
    repo.branch()
    edited = (example / "prompts/ticket-triage.yaml").read_text().replace("\nversion: 1", "\nversion: 2", 1)
    repo.commit({"prompts/ticket-triage.yaml": edited.replace("You triage", "You carefully triage")})
    assert main(["ci", "--base", "main", "--readiness", "--report-md", "r.md"]) == 0
    md = (example / "r.md").read_text()
    assert "### Production readiness" in md
    assert "**`ticket-triage`**: ready" in md


def test_calibrate_without_a_judge_says_so(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 0
    capsys.readouterr()
    assert main(["calibrate", "ticket-triage"]) == 0
    assert "nothing to calibrate" in capsys.readouterr().out


def test_sample_from_a_log(project: Path) -> None:
    rows = [
        {"subject": f"Refund {i}", "body": f"I want my money back for order {i}", "label": "refund",
         "email": f"user{i}@example.com"} for i in range(20)
    ] + [{"subject": f"Login {i}", "body": "I cannot log in", "label": "account_access"} for i in range(20)]  # fmt: skip
    (project / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main([
        "sample", "log.jsonl", "--prompt", "triage", "--n", "10", "--stratify-by", "label", "--min-per-stratum", "3",
        "--map", "vars.subject=subject", "--map", "vars.body=body", "--map", "expected.disposition=label",
        "--map", "label=label", "-o", "evalsets/sampled.yaml",
    ])  # fmt: skip
    assert code == 0
    text = (project / "evalsets/sampled.yaml").read_text()
    assert "provenance:" in text
    assert validate(project) == []
    assert main(["run", "--evalset", "sampled", "--output", "s.jsonl"]) == 0
    assert len(load_record(project / "s.jsonl").cases) == 10


def test_a_missing_directory_for_dash_c_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(tmp_path / "nope"), "validate"]) == 2
    assert capsys.readouterr().err == (
        f"{tmp_path / 'nope'}: cannot change to this directory (No such file or directory) (check the -C path)\n"
    )


def test_ci_writes_its_reports_before_a_closed_pipe_ends_it(tmp_path: Path) -> None:
    """`agent-evals ci ... | head -c 1`: the reader goes away, SIGPIPE ends us, the reports are there."""
    repo = GitRepo(tmp_path)
    basic_project(tmp_path)
    repo.commit(message="base")
    repo.branch()
    prompt = (tmp_path / "prompts/triage.yaml").read_text()
    repo.commit({"prompts/triage.yaml": prompt.replace("Classify the ticket", "Classify this ticket")})
    done = subprocess.run(
        f"{sys.executable} -m agent_evals.cli ci --base main --annotations --report-md r.md --json r.json"
        " --junit r.xml | head -c 1",
        shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "internal error" not in done.stderr
    assert {p.name for p in tmp_path.glob("r.*")} == {"r.md", "r.json", "r.xml"}
