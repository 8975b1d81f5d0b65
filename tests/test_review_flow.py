"""The escape hatch end to end: needs_review in a run, `agent-evals review`, the verdict used later."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.record import load_record
from tests.support import EVALSET, GitRepo, basic_project

HUMAN = EVALSET.replace(
    "    field: disposition\n",
    "    field: disposition\n  - type: rubric\n    name: tone\n    human: true\n",
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    basic_project(tmp_path)
    (tmp_path / "evalsets/triage.yaml").write_text(HUMAN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    return tmp_path


def test_a_human_rubric_waits_for_a_person_and_the_verdict_is_used_next_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--output", "first.jsonl"]) == 0
    first = load_record(project / "first.jsonl")
    waiting = {c.case_id for c in first.cases if any(g.needs_review for g in c.grades)}
    assert waiting == {"c1", "c2", "c3"}
    assert first.cases[0].status == "fail"  # provisional until reviewed
    # A person reviews: pass c1 with a note, fail c2, skip c3.
    answers = "p\nclear and polite\nf\n\ns\n"
    done = subprocess.run(
        [sys.executable, "-m", "agent_evals.cli", "review", "first.jsonl"],
        input=answers, text=True, capture_output=True, cwd=project, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = re.findall(r"\d+ verdict\(s\) [a-z ]+", done.stdout + done.stderr)
    assert said == ["2 verdict(s) saved to evalsets"]  # once, not also "2 verdict(s) stored"
    lines = [
        json.loads(line) for line in (project / "evalsets/triage.reviews.jsonl").read_text().splitlines()
    ]
    assert [(v["case_id"], v["verdict"], v.get("note")) for v in lines] == [
        ("c1", "pass", "clear and polite"),
        ("c2", "fail", None),
    ]
    assert main(["run", "--output", "second.jsonl"]) == 0
    second = {c.case_id: c for c in load_record(project / "second.jsonl").cases}
    assert second["c1"].status == "pass"
    assert not any(g.needs_review for g in second["c1"].grades)
    assert second["c2"].status == "fail"
    assert any(g.needs_review for g in second["c3"].grades)


def test_graders_that_disagree_send_the_case_to_review(project: Path) -> None:
    text = HUMAN.replace("    human: true\n", "    criteria: [{max_words: 1}]\n") + (
        "review: {disagree: [[disposition, tone]]}\n"
    )
    (project / "evalsets/triage.yaml").write_text(text)
    assert main(["run", "--output", "d.jsonl"]) == 0
    flagged = {
        c.case_id for c in load_record(project / "d.jsonl").cases if any(g.needs_review for g in c.grades)
    }
    # c1, c2: disposition passes, the one-word limit fails -> they disagree; c3 fails both.
    assert flagged == {"c1", "c2"}


def test_review_pairs_must_name_graders(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "evalsets/triage.yaml").write_text(HUMAN + "review: {disagree: [[disposition, tnoe]]}\n")
    assert main(["validate"]) == 2
    assert "review.disagree names grader 'tnoe', which this eval set does not have" in capsys.readouterr().out


def test_a_change_that_adds_its_own_verdicts_is_called_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = GitRepo(tmp_path / "repo")
    basic_project(repo.root)
    (repo.root / "evalsets/triage.yaml").write_text(HUMAN)
    repo.commit({".gitignore": ".agent-evals/\n"})
    repo.branch()
    monkeypatch.chdir(repo.root)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    verdict = {"schema_version": 1, "case_id": "c3", "grader": "tone", "output_sha256": "0" * 64,
               "verdict": "pass", "reviewer": "me", "at": "2026-01-01T00:00:00Z"}  # fmt: skip
    # The branch edits the prompt (so the pair is gated) and adds a verdict on its own output.
    edited = (
        (repo.root / "prompts/triage.yaml").read_text().replace("Classify the ticket", "Classify this ticket")
    )
    repo.commit({"evalsets/triage.reviews.jsonl": json.dumps(verdict) + "\n", "prompts/triage.yaml": edited})
    assert main(["ci", "--base", "main", "--json", "g.json"]) == 1
    pair = json.loads((repo.root / "g.json").read_text())["pairs"][0]
    findings = pair["verdict"]["findings"]
    assert [(f["kind"], f["cases"]) for f in findings] == [("reviews_added", ["c3"])]
    assert main(["ci", "--base", "main", "--accept-policy-change"]) == 0
