"""`agent-evals history`, `metric add/import` and `history deploy`, on SQLite and a real PostgreSQL.

The figures of a known history are checked exactly: pass rates and their clustered intervals
(against `stats.clustered_rate_interval` on the per-case counts), latency percentiles (against
numpy), cost and steps per case, flaky cases, verdicts with their PRs and failed rules, the
judges' calibration, the business metric, and live periods from merges in a real git
repository or from recorded deploys. All data here is synthetic.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_evals.cli import main
from agent_evals.history import ingest
from agent_evals.history.query import prompt_history, version_key
from agent_evals.history.store import ENV_VAR, open_store, resolve_url
from agent_evals.models import ProjectConfig
from agent_evals.record import CaseResult, RunEnd, RunHeader, StepRecord
from agent_evals.stats import clustered_rate_interval, pass_rate_interval
from tests.pg import pg_cluster
from tests.pty_run import CLI, run_pty
from tests.support import GitRepo
from tests.test_history_import import history_url

__all__ = ["history_url", "pg_cluster"]

T0 = dt.datetime(2026, 10, 1, 9, 0)
PROMPT = """\
schema_version: 1
id: triage
version: {version}
owner: {{name: synthetic team, oncall: pagerduty:synthetic-primary}}
model: {{provider: local, name: local-tfidf-knn}}
messages:
  - {{role: system, content: "{system}"}}
  - {{role: user, content: "{{{{ text }}}}"}}
"""


def _iso(at: dt.datetime) -> str:
    return at.isoformat() + "Z"


def _run(
    run_id: str,
    version: str,
    at: dt.datetime,
    outcomes: dict[str, list[str]],
    *,
    latencies: list[float],
    steps: int = 0,
    branch: str = "main",
    metric: str | None = "synthetic resolution rate",
) -> tuple[RunHeader, list[CaseResult], RunEnd]:
    header = RunHeader(
        run_id=run_id,
        started_at=_iso(at),
        tool_version="0",
        git={"commit": f"c0ffee{run_id}", "branch": branch, "dirty": False},
        prompt={"id": "triage", "version": version, "hash": f"sha256:{version * 8}"},
        evalset={"id": "triage-set", "hash": "sha256:e", **({"metric": metric} if metric else {})},
        provider={"name": "local", "model": "m"},
        options={"repeat": max(len(v) for v in outcomes.values())},
    )
    results = []
    lat = iter(latencies)
    for index, (case_id, statuses) in enumerate(outcomes.items()):
        for repeat, status in enumerate(statuses):
            judged = status in ("pass", "fail")
            results.append(
                CaseResult(
                    index=index,
                    case_id=case_id,
                    repeat=repeat,
                    status=status,  # type: ignore[arg-type]
                    passed=(status == "pass") if judged else None,
                    score=(1.0 if status == "pass" else 0.0) if judged else None,
                    latency_ms=next(lat),
                    cost_usd=0.002,
                    steps=tuple(StepRecord(kind="model") for _ in range(steps)),
                    attempts=1,
                    error="boom" if status == "error" else None,
                )
            )
    return header, results, RunEnd(status="complete", finished_at=_iso(at + dt.timedelta(minutes=1)))


def _fill(url: str) -> None:
    """Version 1: two runs, `b` flaky across them; version 2: one run of an agent (3 steps per case)."""
    with open_store(resolve_url(Path("."), ProjectConfig(), {ENV_VAR: url})) as store:
        for header, results, end in (
            _run("r1", "1", T0, {"a": ["pass"], "b": ["pass"], "c": ["fail"]}, latencies=[10, 20, 30]),
            _run(
                "r2",
                "1",
                T0 + dt.timedelta(days=1),
                {"a": ["pass"], "b": ["fail"], "c": ["fail"]},
                latencies=[40, 50, 60],
            ),
            _run(
                "r3",
                "2",
                T0 + dt.timedelta(days=3),
                {"a": ["pass", "pass"], "b": ["pass", "pass"], "c": ["pass", "error"]},
                latencies=[5, 6, 7, 8, 9, 100],
                steps=3,
                branch="faster",
            ),
        ):
            ingest.add_run(store, header, ((None, r) for r in results), end)
        ingest.add_verdicts(store, _gate_document(), pr=42)
        from agent_evals.history.metrics import Point, add_points

        add_points(
            store,
            [Point("synthetic resolution rate", T0 + dt.timedelta(days=d), 0.5 + d / 100) for d in range(6)],
        )


def _gate_document() -> dict[str, Any]:
    """A gate report's JSON (the parts the store reads): version 1 -> 2 failed, with a judge."""
    run = {"prompt": {"id": "triage"}}
    return {
        "kind": "agent-evals-gate",
        "schema_version": 1,
        "base_ref": "origin/main",
        "pairs": [
            {
                "prompt_id": "triage",
                "evalset_id": "triage-set",
                "change": "modified",
                "verdict": {
                    "status": "fail",
                    "exit_code": 1,
                    "headline": "1 case regressed",
                    "rules": [
                        {"rule": "max_regressions", "passed": False},
                        {"rule": "max_error_rate", "passed": True},
                    ],
                },
                "runs": {
                    "base": {**run, "run_id": "r2", "prompt": {"version": "1", "hash": "sha256:11111111"}},
                    "cand": {
                        "run_id": "r3",
                        "started_at": _iso(T0 + dt.timedelta(days=3)),
                        "prompt": {"version": "2", "hash": "sha256:22222222"},
                        "git": {"commit": "c0ffeer3", "branch": "faster"},
                    },
                },
                "calibration": {"tone": {"status": "below_floor", "agreement": 0.6, "kappa": 0.2, "n": 30}},
            }
        ],
    }


def _store(url: str) -> Any:
    return open_store(resolve_url(Path("."), ProjectConfig(), {ENV_VAR: url}))


def test_a_prompts_versions_verdicts_and_metric_are_read_back_exactly(history_url: str) -> None:
    _fill(history_url)
    with _store(history_url) as store:
        h = prompt_history(store, "triage", live_from="deploys")
    assert [v.key for v in h.versions] == ["1@11111111", "2@22222222"]
    one, two = h.versions
    # Version 1: a passed twice, b once of twice (flaky), c never; pooled over both runs.
    assert (one.runs, one.cases, one.judged, one.passed, one.errors) == (2, 3, 6, 3, 0)
    expected = clustered_rate_interval([2, 1, 0], [2, 2, 2])
    assert one.pass_rate == pytest.approx(0.5)
    assert one.pass_rate_ci == pytest.approx((expected.low, expected.high))
    assert one.flaky == ("b",)
    assert one.flaky_count == 1
    assert one.latency_p50_ms == pytest.approx(float(np.percentile([10, 20, 30, 40, 50, 60], 50)))
    assert one.latency_p95_ms == pytest.approx(float(np.percentile([10, 20, 30, 40, 50, 60], 95)))
    assert one.cost_per_case_usd == pytest.approx(0.002)
    assert one.steps_per_case is None  # not an agent: no step recorded
    assert (one.first_run, one.last_run) == (T0, T0 + dt.timedelta(days=1))
    # Version 2: repeats, one error; an agent of 3 steps per case.
    assert (two.runs, two.cases, two.judged, two.passed, two.errors) == (1, 3, 5, 5, 1)
    expected = clustered_rate_interval([2, 2, 1], [2, 2, 1])
    assert two.pass_rate_ci == pytest.approx((expected.low, expected.high))
    assert two.steps_per_case == pytest.approx(3.0)
    assert two.latency_p95_ms == pytest.approx(float(np.percentile([5, 6, 7, 8, 9, 100], 95)))
    assert two.branches == ("faster",)
    # Runs: one exact interval per run without repeats, none for the run with repeats.
    assert [(r.run_id, r.version_key, r.passed, r.judged) for r in h.runs] == [
        ("r1", "1@11111111", 2, 3),
        ("r2", "1@11111111", 1, 3),
        ("r3", "2@22222222", 5, 5),
    ]
    exact = pass_rate_interval(2, 3)
    assert h.runs[0].pass_rate_ci == pytest.approx((exact.low, exact.high))
    assert h.runs[2].pass_rate_ci is None
    # The verdict, its PR and failed rule; the judge's calibration as that verdict found it.
    (verdict,) = h.verdicts
    assert (verdict.status, verdict.pr, verdict.failed_rules, verdict.cand_key) == (
        "fail",
        42,
        ("max_regressions",),
        "2@22222222",
    )
    assert verdict.calibration == {"tone": "below_floor"}
    assert [(c.grader, c.status, c.agreement, c.n) for c in h.calibration] == [
        ("tone", "below_floor", 0.6, 30)
    ]
    # The metric its eval set names; no deploys recorded, so no live periods.
    assert h.metrics == ("synthetic resolution rate",)
    assert len(h.metric_series["synthetic resolution rate"]) == 6
    assert (h.live_from, one.live, two.live) == ("deploys", (), ())


def test_deploys_give_live_periods_and_the_metric_while_each_version_was_live(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(history_url)
    monkeypatch.chdir(tmp_path)
    assert main(["history", "deploy", "triage", "1", "--at", _iso(T0)]) == 0
    assert main(["history", "deploy", "triage", "2", "--at", _iso(T0 + dt.timedelta(days=4))]) == 0
    capsys.readouterr()
    assert main(["history", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (prompt,) = doc["prompts"]
    assert prompt["live_from"] == "deploys"
    one, two = prompt["versions"]
    assert one["live"] == [
        {"from": "2026-10-01T09:00:00Z", "to": "2026-10-05T09:00:00Z", "commit": None, "source": "deploy"}
    ]
    assert two["live"] == [{"from": "2026-10-05T09:00:00Z", "to": None, "commit": None, "source": "deploy"}]
    # Points at days 0..5 at 09:00: days 0-3 while 1 was live, 4-5 while 2 was.
    assert one["metric_live"] == {"synthetic resolution rate": pytest.approx((0.50 + 0.51 + 0.52 + 0.53) / 4)}
    assert two["metric_live"] == {"synthetic resolution rate": pytest.approx((0.54 + 0.55) / 2)}
    assert [v["pr"] for v in prompt["verdicts"]] == [42]
    assert doc["kind"] == "agent-evals-history"
    password = urlparse(history_url).password
    assert password is None or password not in json.dumps(doc)  # the store is named, never its password


def test_live_periods_come_from_the_merges_on_the_deploy_branch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 1 committed on main; version 2 written on a branch and merged (--no-ff) days later;
    a comment-only commit after it starts no new period. The period starts at the merge."""
    repo = GitRepo(tmp_path)
    path = "prompts/triage.yaml"

    def commit_at(at: dt.datetime, message: str) -> str:
        env = {"GIT_AUTHOR_DATE": _iso(at), "GIT_COMMITTER_DATE": _iso(at)}
        repo.git.git.add("-A")
        repo.git.git.commit("-m", message, "--no-verify", env={**os.environ, **env})
        return str(repo.git.head.commit.hexsha)

    repo.write({path: PROMPT.format(version=1, system="v1")})
    first = commit_at(T0, "v1")
    repo.branch("v2")
    repo.write({path: PROMPT.format(version=2, system="v2")})
    commit_at(T0 + dt.timedelta(days=1), "v2 written")
    repo.git.git.checkout("main")
    merged_at = T0 + dt.timedelta(days=3)
    env = {**os.environ, "GIT_AUTHOR_DATE": _iso(merged_at), "GIT_COMMITTER_DATE": _iso(merged_at)}
    repo.git.git.merge("--no-ff", "v2", "-m", "merge v2", env=env)
    merge = str(repo.git.head.commit.hexsha)
    repo.write({path: "# a comment only\n" + PROMPT.format(version=2, system="v2")})
    commit_at(T0 + dt.timedelta(days=5), "comment")

    from agent_evals.history.live import from_merges
    from agent_evals.load import load_prompt

    periods = from_merges(tmp_path, path, "main")
    v1 = load_prompt(Path(path), PROMPT.format(version=1, system="v1")).content_hash
    v2 = load_prompt(Path(path), PROMPT.format(version=2, system="v2")).content_hash
    assert [(p.version, p.prompt_hash, p.start, p.end, p.commit) for p in periods] == [
        ("1", v1, T0, merged_at, first),
        ("2", v2, merged_at, None, merge),
    ]


def test_metric_import_reads_a_csv_export_and_replaces_the_times_it_repeats(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    csv = tmp_path / "export.csv"
    csv.write_text(
        "# synthetic: exported from no real warehouse\n"
        "metric,at,value\n"
        "synthetic  resolution rate,2026-10-01,0.5\n"
        '"synthetic resolution rate",2026-10-02T00:00:00+02:00,0.6\n'
        "\n",
        encoding="utf-8",
    )
    assert main(["metric", "import", str(csv)]) == 0
    assert capsys.readouterr().err.endswith(": 2 point(s) added, 0 replaced (synthetic resolution rate)\n")
    csv.write_text("at,value\n2026-10-01,0.7\n2026-10-03,0.8\n", encoding="utf-8")
    assert main(["metric", "import", str(csv), "--metric", "synthetic resolution rate"]) == 0
    assert capsys.readouterr().err.endswith(": 1 point(s) added, 1 replaced (synthetic resolution rate)\n")
    assert main(["metric", "add", "synthetic resolution rate", "0.9", "--at", "2026-10-04T12:00Z"]) == 0
    assert capsys.readouterr().err == "added: synthetic resolution rate = 0.9 at 2026-10-04T12:00:00Z\n"
    from agent_evals.history.query import _metric_points

    with _store(history_url) as store, store.connect() as conn:
        assert _metric_points(conn, "synthetic resolution rate") == (
            (dt.datetime(2026, 10, 1), 0.7),
            (dt.datetime(2026, 10, 1, 22), 0.6),  # +02:00 is stored as UTC
            (dt.datetime(2026, 10, 3), 0.8),
            (dt.datetime(2026, 10, 4, 12), 0.9),
        )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("at,value\n2026-10-01,1\n", "export.csv:1: header row without metric"),
        ("metric,at\nm,2026-10-01\n", "export.csv:1: header row without value"),
        (
            "metric,at,value\nm,2026-10-01,1e999\n",
            "export.csv:2: value '1e999' is not a finite number (e.g. 0.82)",
        ),
        (
            "metric,at,value\nm,2026-10-01,nan\n",
            "export.csv:2: value 'nan' is not a finite number (e.g. 0.82)",
        ),
        (
            "metric,at,value\nm,yesterday,1\n",
            "export.csv:2: time 'yesterday' is not an ISO 8601 date or time",
        ),
        ("metric,at,value\nm,2026-10-01\n", "export.csv:2: 2 fields where the header has 3"),
        ("metric,at,value\n,2026-10-01,1\n", "export.csv:2: metric '': not a metric name"),
        ("", "export.csv: empty: no header row"),
        ("metric,at,value\nm,2026-10-01,1\x00\n", "export.csv:2: binary data (a NUL byte)"),
    ],
)
def test_a_bad_csv_is_one_line_naming_its_line_and_nothing_is_written(
    history_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("export.csv").write_text(content, encoding="utf-8")
    assert main(["metric", "import", "export.csv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1
    with _store(history_url) as store, store.connect() as conn:
        from sqlalchemy import func, select

        from agent_evals.history.store import metric_points

        assert conn.execute(select(func.count()).select_from(metric_points)).scalar() == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_random_csv_files_give_exit_0_or_2_never_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, f"sqlite:///{tmp_path / 'h.sqlite3'}")
    Path("random.csv").write_bytes(b"metric,at,value\n" + data)
    assert main(["metric", "import", "random.csv"]) in (0, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "internal error" not in err


def test_history_refuses_an_unknown_prompt_and_a_bad_deploy_time(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(history_url)
    monkeypatch.chdir(tmp_path)
    assert main(["history", "--prompt", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no runs of prompt 'nope' in the history" in err
    assert "(known: triage;" in err
    assert main(["history", "deploy", "triage", "1", "--at", "soon"]) == 2
    assert capsys.readouterr().err.startswith("--at 'soon' is not an ISO 8601 date or time")


def test_history_in_a_terminal_shows_versions_verdicts_flaky_cases_and_judges(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    _fill(url)
    from agent_evals.checks import Check, store_check

    with _store(url) as store:
        store_check(
            store,
            Check(
                kind="monitor",
                prompt_id="triage",
                status="drop",
                headline="monitor triage v2: synthetic drop",
                at=T0,
            ),
        )
    result = run_pty([*CLI, "history"], tmp_path, env={**os.environ, ENV_VAR: url}, columns=200)
    assert result.code == 0, result.text
    text = result.text
    assert "triage: owner unknown (no prompt file here); eval sets triage-set" in text
    assert "1@11111111" in text
    assert "2@22222222" in text
    assert "50.0% [" in text  # version 1's pass rate with its interval
    assert "FAILED" in text
    assert "#42" in text
    assert "max_regressions" in text
    assert "flaky under 1@11111111: 1 case(s): b" in text
    assert "judge tone: below_floor (agreement 60.0% on 30 case(s))" in text
    assert "after the merge, latest monitor (2026-10-01 09:00): monitor triage v2: synthetic drop" in text
    assert "\x1b[" in result.raw  # a terminal gets colour


def test_version_keys_use_the_digest_not_its_algorithm() -> None:
    assert version_key("3", "sha256:0d71c4358e0b") == "3@0d71c435"
    assert version_key(None, None) == "?@?"


def test_dashboard_writes_the_page_from_the_store_and_a_bad_path_is_one_line(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(history_url)
    monkeypatch.chdir(tmp_path)
    assert main(["dashboard", "--html", "out/board.html"]) == 0
    assert capsys.readouterr().err == f"dashboard: {Path('out/board.html')} (1 prompt(s))\n"
    page = Path("out/board.html").read_text(encoding="utf-8")
    assert "<h2><code>triage</code></h2>" in page
    assert "1@11111111" in page
    assert "#42" in page
    password = urlparse(history_url).password
    assert password is None or password not in page
    Path("taken").mkdir()
    assert main(["dashboard", "--html", "taken"]) == 2
    assert capsys.readouterr().err.startswith(
        "taken: cannot write the dashboard: it is a directory, not a regular file"
    )


def test_metric_and_dashboard_in_a_terminal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    _fill(url)
    env = {**os.environ, ENV_VAR: url}
    added = run_pty(
        [*CLI, "metric", "add", "synthetic resolution rate", "0.7", "--at", "2026-10-09"], tmp_path, env=env
    )
    assert added.code == 0, added.text
    assert "added: synthetic resolution rate = 0.7 at 2026-10-09T00:00:00Z" in added.text
    board = run_pty([*CLI, "dashboard", "--html", "board.html"], tmp_path, env=env)
    assert board.code == 0, board.text
    assert "dashboard: board.html (1 prompt(s))" in board.text
    assert (tmp_path / "board.html").stat().st_size > 10_000


def test_a_versions_figures_are_kept_until_one_of_its_runs_changes(history_url: str) -> None:
    """The costly per-version figures come from `version_stats` while the version's runs are as
    they were; a new run of the version recomputes them (and only them)."""
    from sqlalchemy import select, update

    from agent_evals.history.store import version_stats

    _fill(history_url)
    with _store(history_url) as store:
        first = prompt_history(store, "triage")
        with store.connect() as conn:
            kept = conn.execute(select(version_stats.c.scope, version_stats.c.figures)).all()
        assert len(kept) == 2
        assert {scope for scope, _ in kept} == {""}
        # Mark the kept figures: a second read that uses them shows the mark.
        with store.write() as conn:
            for row in conn.execute(select(version_stats)).all():
                conn.execute(
                    update(version_stats)
                    .where(version_stats.c.version_id == row.version_id)
                    .values(figures={**row.figures, "flaky_count": 99})
                )
        again = prompt_history(store, "triage")
        assert [v.flaky_count for v in again.versions] == [99, 99]
        assert [v.pass_rate_ci for v in again.versions] == [v.pass_rate_ci for v in first.versions]
        # A new run of version 1: its figures are recomputed; version 2's are still the kept ones.
        header, results, end = _run("r4", "1", T0 + dt.timedelta(days=2), {"a": ["fail"]}, latencies=[70])
        ingest.add_run(store, header, ((None, r) for r in results), end)
        third = prompt_history(store, "triage")
        one, two = third.versions
        assert (one.runs, one.judged, one.passed, one.flaky_count) == (3, 7, 3, 2)  # a is flaky now too
        assert two.flaky_count == 99
        assert one.pass_rate_ci == pytest.approx(
            (lambda i: (i.low, i.high))(clustered_rate_interval([2, 1, 0], [3, 2, 2]))
        )
