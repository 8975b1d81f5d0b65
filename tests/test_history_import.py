"""`history import` and the writes of `run`, `diff` and `ci`, on SQLite and a real PostgreSQL:
idempotent by run id and verdict id, a resumed run's judged cases replacing its errors, bad
files located with nothing half-written, two processes importing the same records at once
leaving one row per run and case, and random files giving exit 2 or success, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select

from agent_evals import record
from agent_evals.cli import main
from agent_evals.history.store import ENV_VAR, cases, grades, resolve_url, runs, verdicts
from agent_evals.models import ProjectConfig
from agent_evals.record import CaseResult, RunEnd, RunRecord
from tests.pg import Cluster, pg_cluster
from tests.support import basic_project, make_record

__all__ = ["pg_cluster"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty store, named by AGENT_EVALS_HISTORY_URL for the CLI."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    else:
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        url = cluster.url(cluster.create_database())
    monkeypatch.setenv(ENV_VAR, url)
    return url


def rows(url: str, table: object, *columns: object) -> list[tuple[object, ...]]:
    engine = create_engine(resolve_url(Path("."), ProjectConfig(), {ENV_VAR: url}).url)
    try:
        with engine.connect() as conn:
            query = select(*columns) if columns else select(func.count()).select_from(table)  # type: ignore[arg-type]
            return [tuple(r) for r in conn.execute(query.order_by(columns[0]) if columns else query)]
    finally:
        engine.dispose()


def write(folder: Path, rec: RunRecord, name: str | None = None) -> Path:
    path = folder / (name or rec.path)
    record.write(path, rec.header, list(rec.cases), rec.end)  # type: ignore[arg-type]
    return path


def test_import_adds_runs_cases_and_grades_then_skips_them(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "ci", make_record([("a", "pass"), ("b", "fail"), ("c", "error")], run_id="r1"))
    write(tmp_path / "ci" / "shard", make_record([("a", "pass"), ("b", "pass")], run_id="r2"))

    assert main(["history", "import", "ci"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"added run r1: 3 case result(s) ({Path('ci/r1.jsonl')})",
        f"added run r2: 2 case result(s) ({Path('ci/shard/r2.jsonl')})",
    ]
    assert err.endswith(": 2 run(s) added, 0 run(s) skipped, 0 verdict(s) added, 0 verdict(s) skipped\n")
    assert rows(
        history_url,
        runs,
        runs.c.run_id,
        runs.c.status,
        runs.c.results,
        runs.c.passed,
        runs.c.failed,
        runs.c.errors,
    ) == [
        ("r1", "complete", 3, 1, 1, 1),
        ("r2", "complete", 2, 2, 0, 0),
    ]
    assert rows(history_url, grades) == [(4,)]  # the error case has no grade
    assert rows(
        history_url, cases, cases.c.run_id, cases.c.case_id, cases.c.status, cases.c.passed, cases.c.cost_usd
    )[:3] == [
        ("r1", "a", "pass", True, 0.001),
        ("r1", "b", "fail", False, 0.001),
        ("r1", "c", "error", None, 0.001),
    ]

    assert main(["history", "import", "ci", "ci/r1.jsonl"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"skipped run r1: already in the store ({Path('ci/r1.jsonl')})",
        f"skipped run r2: already in the store ({Path('ci/shard/r2.jsonl')})",
        f"skipped run r1: already in the store ({Path('ci/r1.jsonl')})",
    ]
    assert rows(history_url, cases) == [(5,)]


def test_a_resumed_run_replaces_its_errors_with_judged_results(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    first = make_record([("a", "pass"), ("b", "error")], run_id="r", status="interrupted")
    path = write(tmp_path, first)
    assert main(["history", "import", path.name]) == 0
    # The resume appends b's new result and a new end line, as `run --resume` does.
    redone = CaseResult(index=1, case_id="b", status="fail", score=0.0, passed=False, latency_ms=5.0)
    end = RunEnd(status="complete", finished_at="2026-01-01T00:05:00Z")
    with path.open("a") as fh:
        fh.write(redone.model_dump_json(exclude_none=True) + "\n" + end.model_dump_json() + "\n")
    capsys.readouterr()

    assert main(["history", "import", path.name]) == 0

    assert capsys.readouterr().out.splitlines() == ["updated run r: 1 case result(s) (r.jsonl)"]
    assert rows(
        history_url, runs, runs.c.status, runs.c.results, runs.c.passed, runs.c.failed, runs.c.errors
    ) == [("complete", 2, 1, 1, 0)]
    assert rows(history_url, cases, cases.c.case_id, cases.c.status, cases.c.latency_ms) == [
        ("a", "pass", 10.0),
        ("b", "fail", 5.0),
    ]


def test_a_new_run_whose_record_redoes_a_case_batches_later_keeps_the_judged_result(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new run's rows go in by plain inserts; a (case, repeat) its record repeats after an earlier
    batch was written (a resumed record read for the first time) takes the upsert, grades and all."""
    from agent_evals.history import ingest

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ingest, "BATCH", 2)
    first = make_record([("a", "error"), ("b", "pass"), ("c", "fail")], run_id="r", status="interrupted")
    redone = make_record([("a", "pass")], run_id="r").cases[0]
    record.write(tmp_path / "r.jsonl", first.header, [*first.cases, redone], first.end)  # type: ignore[arg-type]

    assert main(["history", "import", "r.jsonl"]) == 0

    assert rows(history_url, cases, cases.c.case_id, cases.c.status) == [
        ("a", "pass"),
        ("b", "pass"),
        ("c", "fail"),
    ]
    assert rows(history_url, grades, grades.c.case_id, grades.c.passed) == [
        ("a", True),
        ("b", True),
        ("c", False),
    ]
    assert rows(history_url, runs, runs.c.results, runs.c.passed, runs.c.errors) == [(3, 2, 0)]


def test_a_bad_line_is_located_and_nothing_of_the_file_is_written(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, make_record([(f"c{i}", "pass") for i in range(700)], run_id="big"))
    lines = path.read_text().splitlines()
    lines[650] = lines[650].replace('"status":"pass"', '"status":"great"')
    path.write_text("\n".join(lines) + "\n")

    assert main(["history", "import", "big.jsonl"]) == 2

    assert capsys.readouterr().err.splitlines() == [
        "big.jsonl:651: invalid case line: 'status': Input should be 'pass', 'fail', 'error' or 'skipped' "
        "(is this a run record?)"
    ]
    assert rows(history_url, runs) == [(0,)]
    assert rows(history_url, cases) == [(0,)]  # the first batch of 500 was rolled back with the rest


def test_diff_writes_both_runs_and_its_verdict_and_its_json_imports_as_the_same_verdict(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    assert main(["run", "--output", "base.jsonl"]) == 0
    assert main(["run", "--output", "cand.jsonl"]) == 0
    assert rows(history_url, runs) == [(2,)]

    assert main(["-v", "diff", "base.jsonl", "cand.jsonl", "--json", "gate.json"]) == 0
    err = capsys.readouterr().err
    base_id = record.load_record(tmp_path / "base.jsonl").header.run_id
    assert f"history: skipped run {base_id}: already in the store (base.jsonl)" in err
    [(verdict_id, status, cand_run, rules_count, exit_code)] = [
        (r[0], r[1], r[2], len(r[3]), r[4])  # type: ignore[arg-type]
        for r in rows(
            history_url,
            verdicts,
            verdicts.c.verdict_id,
            verdicts.c.status,
            verdicts.c.cand_run_id,
            verdicts.c.rules,
            verdicts.c.exit_code,
        )
    ]
    document = json.loads((tmp_path / "gate.json").read_text())
    assert (status, exit_code) == ("pass", 0)
    assert cand_run == document["pairs"][0]["runs"]["cand"]["run_id"]
    assert rules_count == len(document["pairs"][0]["verdict"]["rules"])

    assert main(["history", "import", "gate.json", "--pr", "12"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"skipped verdict {verdict_id}: already in the store (gate.json)"
    ]
    assert rows(history_url, verdicts) == [(1,)]


def test_a_verdict_imported_from_a_report_carries_its_pr_and_commit(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent_evals.compare import compare_records
    from agent_evals.report import json_report

    monkeypatch.chdir(tmp_path)
    base = make_record([("a", "pass"), ("b", "pass")], run_id="b1")
    cand = make_record([("a", "pass"), ("b", "fail")], run_id="c1")
    cand = cand.model_copy(
        update={"header": cand.header.model_copy(update={"git": {"commit": "abc123", "branch": "feat"}})}
    )
    write(tmp_path, base)
    write(tmp_path, cand)
    report = compare_records(tmp_path / "b1.jsonl", tmp_path / "c1.jsonl", tmp_path)
    (tmp_path / "g.json").write_text(json_report.render(report))
    monkeypatch.setenv(ENV_VAR, history_url)

    assert main(["history", "import", "g.json", "--pr", "42"]) == 0

    assert rows(
        history_url,
        verdicts,
        verdicts.c.prompt_id,
        verdicts.c.base_run_id,
        verdicts.c.cand_run_id,
        verdicts.c.pr,
        verdicts.c.git_commit,
        verdicts.c.git_branch,
    ) == [("p", "b1", "c1", 42, "abc123", "feat")]
    assert rows(history_url, runs) == [(0,)]  # a report holds verdicts; the records hold the runs


def test_files_in_a_folder_that_are_not_ours_are_passed_over_but_named_ones_are_errors(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "art", make_record([("a", "pass")], run_id="r1"))
    (tmp_path / "art" / "trace.jsonl").write_text('{"event": "request"}\n')
    (tmp_path / "art" / "package.json").write_text('{"name": "x"}\n')

    assert main(["history", "import", "art"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"added run r1: 1 case result(s) ({Path('art/r1.jsonl')})"
    ]

    assert main(["history", "import", "art/trace.jsonl"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{Path('art/trace.jsonl')}:1: the first line is not a run header (is this a run record?)"
    ]
    assert main(["history", "import", "art/package.json"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f'{Path("art/package.json")}: not a gate report (no "kind": "agent-evals-gate") '
        "(pass a file written by 'agent-evals diff --json' or 'agent-evals ci --json')"
    ]


CONCURRENT_RUNS = 6
CASES_PER_RUN = 1200


def test_two_processes_importing_the_same_records_at_once_leave_one_row_per_run_and_case(
    history_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "records"
    for n in range(CONCURRENT_RUNS):
        write(
            folder,
            make_record(
                [(f"c{i}", "pass" if i % 3 else "fail") for i in range(CASES_PER_RUN)], run_id=f"run{n}"
            ),
        )
    # Overlapping, in opposite orders: one process walks the folder, the other the files backwards.
    files = sorted(str(p) for p in folder.glob("*.jsonl"))
    commands = [[str(folder)], list(reversed(files))]
    env = {**os.environ, ENV_VAR: history_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "agent_evals.cli", "history", "import", *paths],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for paths in commands
    ]
    results = [p.communicate(timeout=300) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], results
    outcomes = [line.split()[0] for out, _ in results for line in out.splitlines()]
    assert sorted(set(outcomes)) <= ["added", "skipped"]
    assert outcomes.count("added") == CONCURRENT_RUNS  # each run added by exactly one of them
    assert rows(history_url, runs) == [(CONCURRENT_RUNS,)]
    assert rows(history_url, cases) == [(CONCURRENT_RUNS * CASES_PER_RUN,)]
    assert rows(history_url, grades) == [(CONCURRENT_RUNS * CASES_PER_RUN,)]
    assert rows(history_url, runs, runs.c.results, runs.c.failed)[0] == (CASES_PER_RUN, CASES_PER_RUN // 3)


# --- random files -------------------------------------------------------------------------------

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_HEADER = make_record([("a", "pass")], run_id="h").header.model_dump(mode="json")
_CASE = make_record([("a", "pass")], run_id="h").cases[0].model_dump(mode="json")


def _mutated(base: dict[str, object]) -> st.SearchStrategy[dict[str, object]]:
    return st.dictionaries(st.sampled_from(sorted(base)), _VALUES, max_size=3).map(
        lambda over: {**base, **over}
    )


_LINES = st.lists(
    st.one_of(
        _mutated(_HEADER).map(json.dumps),
        _mutated(_CASE).map(json.dumps),
        _VALUES.map(json.dumps),
        st.text(max_size=40),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(st.binary(max_size=300), _LINES.map(lambda ls: "\n".join(ls).encode())),
    suffix=st.sampled_from([".jsonl", ".json"]),
)
def test_random_files_give_exit_2_or_an_import_never_a_crash(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: bytes,
    suffix: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, f"sqlite:///{tmp_path / 'fuzz.sqlite3'}")
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)

    code = main(["history", "import", path.name])

    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "internal error" not in err
    if code == 2:
        assert len(err.splitlines()) == 1, err
        assert err.startswith("random"), err


def _shards() -> list[RunRecord]:
    """Three shards of one CI matrix run: their own run ids, one eval set's cases split between them."""
    found = []
    for i, (run_id, cases_) in enumerate(
        [("s1", [("a", "pass"), ("b", "fail")]), ("s2", [("c", "pass")]), ("s3", [("d", "error")])]
    ):
        rec = make_record(cases_, run_id=run_id)
        header = rec.header.model_copy(
            update={"prompt": {"id": "p", "hash": "sha256:p"}, "options": {"shard": f"{i + 1}/3"}}
        )
        indexed = tuple(c.model_copy(update={"index": ord(c.case_id) - ord("a")}) for c in rec.cases)
        found.append(rec.model_copy(update={"header": header, "cases": indexed}))
    return found


@pytest.mark.parametrize("merged_first", [False, True])
def test_a_merged_record_replaces_its_shards_runs_so_each_case_is_stored_once(
    history_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    merged_first: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    shards = _shards()
    for rec in shards:
        write(tmp_path / "shards", rec)
    header, merged_cases, end = record.merge(shards)
    assert header.run_id == "s1"
    assert header.options["shard_runs"] == ["s1", "s2", "s3"]
    record.write(tmp_path / "merged" / "s1.jsonl", header, merged_cases, end)

    order = ["merged", "shards"] if merged_first else ["shards", "merged"]
    for folder in order:
        assert main(["history", "import", folder]) == 0
    assert main(["history", "import", "shards"]) == 0  # again: still nothing doubled
    out = capsys.readouterr().out
    assert "skipped run s2: a shard of run s1, stored merged (" in out
    assert rows(history_url, runs, runs.c.run_id, runs.c.shard, runs.c.results) == [("s1", None, 4)]
    assert rows(history_url, cases, cases.c.run_id, cases.c.case_id) == [
        ("s1", "a"),
        ("s1", "b"),
        ("s1", "c"),
        ("s1", "d"),
    ]
