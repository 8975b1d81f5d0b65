"""`compare.compare_pair`, called directly: what it puts in a pair's report, with and without a baseline
or the project's eval set (the CLI paths are in tests/test_compare_paths.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_evals.compare import case_locations, compare_pair
from agent_evals.integrity import Finding
from agent_evals.load import load_evalset
from agent_evals.models import EvalSet, GatePolicy, ProjectConfig
from tests.support import basic_project, make_record

FINDING = Finding("cases_removed", "cases", "3 cases", "2 cases", ("gone",))


def project_evalset(tmp_path: Path) -> EvalSet:
    root = basic_project(tmp_path)
    return load_evalset(root / "evalsets" / "triage.yaml")


def test_a_candidate_without_a_baseline_is_new_and_judged_on_absolute_rules(tmp_path: Path) -> None:
    evalset = project_evalset(tmp_path)
    cand = make_record([("c1", "pass"), ("c2", "fail")])
    pair = compare_pair(
        None,
        cand,
        config=ProjectConfig(),
        evalset=evalset,
        policy=GatePolicy(min_pass_rate=0.9),
        note="first run",
    )
    assert (pair.prompt_id, pair.evalset_id, pair.change, pair.note) == ("p", "triage", "new", "first run")
    assert pair.evalset_path == evalset.source_path
    assert pair.evalset_path is not None
    assert pair.case_locations == case_locations(evalset)
    assert pair.case_locations
    assert pair.diff is None
    assert pair.cand is cand
    assert pair.verdict.status == "fail"
    assert [r.rule for r in pair.verdict.failed] == ["min_pass_rate"]
    assert pair.verdict.headline.startswith("new, no baseline: pass rate 50.0%")


def test_without_the_projects_eval_set_the_record_names_it(tmp_path: Path) -> None:
    base = make_record([("c1", "pass"), ("c2", "pass")])
    cand = make_record([("c1", "pass"), ("c2", "fail")], run_id="c")
    pair = compare_pair(base, cand, config=ProjectConfig(), evalset=None)
    assert (pair.evalset_id, pair.evalset_path, pair.case_locations, pair.calibrations) == ("e", None, {}, ())
    assert pair.change == "modified"
    assert pair.diff is not None
    assert [c.case_id for c in pair.diff.outcome("regressed")] == ["c2"]
    assert pair.verdict.policy == GatePolicy()


def test_findings_reach_the_gate_and_fail_it_unless_accepted(tmp_path: Path) -> None:
    evalset = project_evalset(tmp_path)
    base = make_record([("c1", "pass"), ("c2", "pass")])
    cand = make_record([("c1", "pass"), ("c2", "pass")], run_id="c")
    held = compare_pair(base, cand, config=ProjectConfig(), evalset=evalset, findings=[FINDING])
    assert held.verdict.status == "fail"
    assert held.verdict.findings == (FINDING,)
    assert [r.rule for r in held.verdict.failed] == ["gate_integrity"]
    accepted = compare_pair(
        base, cand, config=ProjectConfig(), evalset=evalset, findings=[FINDING], accept_policy_change=True
    )
    assert accepted.verdict.status == "pass"


def test_the_policy_given_wins_over_the_layers_and_overrides_apply_otherwise(tmp_path: Path) -> None:
    evalset = project_evalset(tmp_path)
    base = make_record([("c1", "pass"), ("c2", "pass")])
    cand = make_record([("c1", "pass"), ("c2", "fail")], run_id="c")
    given = compare_pair(
        base, cand, config=ProjectConfig(), evalset=evalset, policy=GatePolicy(max_regressions=5)
    )
    assert given.verdict.policy.max_regressions == 5
    assert given.verdict.status == "pass"
    layered = compare_pair(
        base, cand, config=ProjectConfig(), evalset=evalset, overrides={"max_regressions": 0}
    )
    assert layered.verdict.policy.max_regressions == 0
    assert layered.verdict.status == "fail"
    assert [r.rule for r in layered.verdict.failed] == ["max_regressions"]


def test_a_single_run_is_reported_on_its_eval_sets_absolute_rules(tmp_path: Path) -> None:
    from agent_evals.compare import single_run_report
    from agent_evals.diff import Side
    from agent_evals.record import RecordWriter

    root = basic_project(tmp_path)
    (root / "agent-evals.yaml").write_text("schema_version: 1\ngate: {min_pass_rate: 0.9}\n")
    record = make_record([("c1", "pass"), ("c2", "fail")])
    header = record.header.model_copy(update={"evalset": {"id": "triage", "hash": "sha256:x"}})
    writer = RecordWriter(root / "r.jsonl", header)
    for case in record.cases:
        writer.add(case)
    assert record.end is not None
    writer.close(record.end)
    report = single_run_report(root / "r.jsonl", root)
    (pair,) = report.pairs
    # Shown as one run (not as a pair new in a change), judged on the project's policy.
    assert (pair.evalset_id, pair.change) == ("triage", "unchanged")
    assert pair.verdict.headline.startswith("single run: pass rate 50.0% (1 of 2 judged cases)")
    assert pair.verdict.policy.min_pass_rate == 0.9
    assert pair.verdict.status == "fail"
    assert pair.case_locations
    assert Side(record.cases).cost() == pytest.approx(0.002)
