"""`diff` compares only records that belong together, and a candidate cannot pass by running less."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agent_evals.cli import main
from tests.support import EVALSET, basic_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    return tmp_path


def _hash(record: Path) -> str:
    return str(json.loads(record.read_text().splitlines()[0])["evalset"]["hash"])


def test_records_of_different_eval_sets_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "evalsets/other.yaml").write_text(EVALSET.replace("id: triage\n", "id: other\n", 1))
    assert main(["run", "--evalset", "triage", "--output", "a.jsonl"]) == 0
    assert main(["run", "--evalset", "other", "--output", "b.jsonl"]) == 0
    capsys.readouterr()

    assert main(["diff", "a.jsonl", "b.jsonl"]) == 2

    assert capsys.readouterr().err == (
        "the records are of different eval sets: 'triage' (a.jsonl) and 'other' (b.jsonl) "
        "(compare two runs of the same eval set)\n"
    )


def test_records_of_different_versions_of_an_eval_set_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--output", "a.jsonl"]) == 0
    (project / "evalsets/triage.yaml").write_text(
        EVALSET.replace("{disposition: billing}", "{disposition: other}")
    )
    assert main(["run", "--output", "b.jsonl"]) == 0
    capsys.readouterr()

    assert main(["diff", "a.jsonl", "b.jsonl"]) == 2

    a, b = _hash(project / "a.jsonl")[:19], _hash(project / "b.jsonl")[:19]
    assert capsys.readouterr().err == (
        f"the records ran different versions of eval set 'triage': {a} (a.jsonl) and {b} (b.jsonl) "
        "(run the baseline prompt on the candidate's eval set (agent-evals ci --base REF does), then diff)\n"
    )


def test_a_candidate_that_ran_part_of_the_eval_set_fails_until_accepted(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--output", "base.jsonl"]) == 0
    assert main(["run", "--filter", "c1", "--output", "cand.jsonl"]) == 0
    capsys.readouterr()

    assert main(["diff", "base.jsonl", "cand.jsonl", "--json", "gate.json"]) == 1

    out = capsys.readouterr().out
    assert (
        "gate_integrity: the change moves the bar: cases run: 3 in the baseline run -> 2 missing from the candidate run: c2, c3"
        in " ".join(out.split())
    )
    verdict = json.loads((project / "gate.json").read_text())["pairs"][0]["verdict"]
    assert [f["kind"] for f in verdict["findings"]] == ["cases_missing"]
    assert main(["diff", "base.jsonl", "cand.jsonl", "--accept-policy-change"]) == 0


def test_cases_only_the_candidate_ran_are_new_and_do_not_fail(project: Path) -> None:
    assert main(["run", "--filter", "c1", "--output", "base.jsonl"]) == 0
    assert main(["run", "--output", "cand.jsonl"]) == 0
    assert main(["diff", "base.jsonl", "cand.jsonl", "--json", "gate.json"]) == 0
    cases = json.loads((project / "gate.json").read_text())["pairs"][0]["cases"]
    assert sorted(c["case_id"] for c in cases if c["outcome"] == "new") == ["c2", "c3"]


def test_a_filter_that_matches_nothing_is_a_usage_error_and_writes_no_record(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--filter", "refnud-*", "--output", "r.jsonl"]) == 2
    assert capsys.readouterr().err == (
        "--filter refnud-* matches no case of triage (filters are globs on case ids and tags, e.g. --filter 'refund-*')\n"
    )
    assert not (project / "r.jsonl").exists()


def test_a_grade_without_a_verdict_reads_back(tmp_path: Path) -> None:
    # A judge that could not answer leaves score and passed unset; the writer omits None fields,
    # so the reader must not require them.
    from agent_evals.record import CaseResult, GradeRecord, RecordWriter, RunEnd, RunHeader, load_record

    header = RunHeader(
        run_id="r", started_at="2026-12-06T00:00:00Z", tool_version="0",
        prompt={"id": "p"}, evalset={"id": "e"}, provider={"name": "openai"},
    )  # fmt: skip
    grade = GradeRecord(
        grader="tone",
        type="rubric",
        score=None,
        passed=None,
        reason="judge reply unreadable",
        error="bad JSON",
    )
    writer = RecordWriter(tmp_path / "r.jsonl", header)
    writer.add(CaseResult(index=0, case_id="c1", status="error", grades=(grade,), error="judge failed"))
    writer.close(RunEnd(status="complete", finished_at="2026-12-06T00:00:01Z"))
    assert '"score"' not in (tmp_path / "r.jsonl").read_text().splitlines()[1]
    (back,) = load_record(tmp_path / "r.jsonl").cases[0].grades
    assert (back.score, back.passed, back.error) == (None, None, "bad JSON")
