"""examples/history/make_history.py: the synthetic history behind the dashboard demo.

The script is run for real at its smallest useful size (three prompt versions: one merged
improvement, one regression the gate stops) into tmp_path, twice, and what it stored is read
back through `agent-evals history --format json`, as the dashboard reads it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import git
import pytest

from agent_evals.cli import main
from tests.chromium import browser
from tests.support import load_script

ROOT = Path(__file__).resolve().parents[1]
METRIC = "first-contact resolution rate"
__all__ = ["browser"]


make_history = load_script(ROOT / "examples/history/make_history.py")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo made twice, into two folders."""
    first, second = tmp_path_factory.mktemp("demo-a"), tmp_path_factory.mktemp("demo-b")
    for out in (first, second):
        assert make_history.main([str(out), "--versions", "3"]) == 0
    return first, second


def _document(out: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AGENT_EVALS_HISTORY_URL", f"sqlite:///{out / 'history.sqlite3'}")
    monkeypatch.chdir(out)
    capsys.readouterr()
    assert main(["-C", str(out / "repo"), "history", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def prompt(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    document = _document(built[0], capsys, monkeypatch)
    assert [p["prompt_id"] for p in document["prompts"]] == ["ticket-triage"]
    return document["prompts"][0]


def test_versions_in_order_with_their_pass_rates(prompt: Any) -> None:
    versions = prompt["versions"]
    assert [v["version"] for v in versions] == ["1", "2", "3"]
    assert [(v["runs"], v["judged"], v["passed"]) for v in versions] == [
        (2, 144, 116),  # the first two nightly runs on main (58/72 each)
        (13, 936, 780),  # its ci run and every nightly run after its merge (60/72)
        (1, 72, 47),  # the trimmed prompt: only its failing ci run
    ]
    assert [v["first_run"] for v in versions] == [
        "2026-09-07T02:00:00Z",
        "2026-09-10T10:02:00Z",
        "2026-11-12T10:02:00Z",
    ]
    # The local model is free and instant: the demo prices its tokens and times its cases (synthetic).
    assert all(v["cost_per_case_usd"] > 0 and v["latency_p50_ms"] > 300 for v in versions)


def test_verdicts_with_their_prs_and_the_failing_one(prompt: Any) -> None:
    verdicts = prompt["verdicts"]
    assert [(v["pr"], v["status"], v["exit_code"], v["branch"]) for v in verdicts] == [
        (41, "pass", 0, "double-charge-is-a-bug"),
        (42, "fail", 1, "trim-refund-examples"),
    ]
    assert [v["decided_at"] for v in verdicts] == ["2026-09-10T10:02:00Z", "2026-11-12T10:02:00Z"]
    assert [(v["base_version"], v["cand_version"]) for v in verdicts] == [("1", "2"), ("2", "3")]
    assert verdicts[1]["failed_rules"] == ["significant_regression", "critical refund", "max_regressions"]
    assert (
        verdicts[0]["headline"]
        == "gate passed: pass rate 80.6% -> 83.3% (+2.8 pts, p=1); 0 regressed, 2 fixed"
    )


def test_live_periods_come_from_the_merges_on_main(prompt: Any, built: tuple[Path, Path]) -> None:
    repo = git.Repo(built[0] / "repo")
    merge = repo.heads.main.commit
    assert merge.message.strip() == "Merge pull request #41 from lumen/double-charge-is-a-bug"
    assert len(merge.parents) == 2
    assert merge.committed_datetime == dt.datetime(2026, 9, 11, 15, 0, tzinfo=dt.UTC)
    assert not repo.is_ancestor(repo.heads["trim-refund-examples"].commit, merge)  # abandoned
    assert prompt["live_from"] == "merges"
    live = [[(p["from"], p["to"], p["commit"], p["source"]) for p in v["live"]] for v in prompt["versions"]]
    first = merge.parents[0].hexsha
    assert live == [
        [("2026-09-04T09:00:00Z", "2026-09-11T15:00:00Z", first, "merge")],
        [("2026-09-11T15:00:00Z", None, merge.hexsha, "merge")],
        [],
    ]


def test_metric_series_is_synthetic_and_moves_after_the_merge(prompt: Any, built: tuple[Path, Path]) -> None:
    csv = (built[0] / "metric.csv").read_text().splitlines()
    assert csv[0].startswith("# SYNTHETIC: a seeded random walk")
    assert csv[1] == "metric,at,value"
    assert prompt["metrics"] == [METRIC]
    [series] = prompt["metric_series"]
    assert series["name"] == METRIC
    points = series["points"]
    assert len(points) == 70
    assert (points[0]["at"], points[-1]["at"]) == ("2026-09-07T12:00:00Z", "2026-11-15T12:00:00Z")
    merged = "2026-09-13T15:00:00Z"  # two days after the merge of version 2 (+2.8 pts)
    before = [p["value"] for p in points if p["at"] < merged]
    after = [p["value"] for p in points if p["at"] > merged]
    assert sum(after) / len(after) - sum(before) / len(before) > 0.01


def test_runs_on_the_synthetic_calendar(prompt: Any) -> None:
    runs = prompt["runs"]
    assert len(runs) == 16  # 12 nightly runs on main, and the base and candidate of 2 ci runs
    starts = [r["started_at"] for r in runs]
    assert starts == sorted(starts)
    assert (starts[0], starts[-1]) == ("2026-09-07T02:00:00Z", "2026-11-16T02:00:00Z")
    assert sorted({r["branch"] for r in runs}) == ["double-charge-is-a-bug", "main", "trim-refund-examples"]
    assert {r["dirty"] for r in runs} == {False}


def test_two_builds_give_the_same_history(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = []
    for out in built:
        document = _document(out, capsys, monkeypatch)
        for key in ("generated_at", "store"):
            document.pop(key)
        documents.append(json.loads(json.dumps(document).replace(str(out), "OUT")))
    assert documents[0] == documents[1]
    assert (built[0] / "dashboard.html").read_text() != ""


def test_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit, match=re.escape(f"{tmp_path}: not empty and not made by make_history.py")):
        make_history.main([str(tmp_path), "--versions", "3"])
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    with pytest.raises(SystemExit, match=re.escape("--versions 9: choose 2 to 8")):
        make_history.main([str(tmp_path / "new"), "--versions", "9"])


def test_the_dashboard_of_the_synthetic_history_renders_in_chromium_with_no_errors_and_no_requests(
    built: tuple[Path, Path], browser: Any, tmp_path: Path
) -> None:
    """Acceptance 2: `agent-evals dashboard` on the bundled example's synthetic history (written by the
    script through the CLI, live periods from the merges) in headless Chromium; a screenshot is kept."""
    from tests.test_dashboard import Page

    page = Page(browser, built[0] / "dashboard.html")
    try:
        assert page.errors == []
        assert [m for m in page.console if m[0] in ("error", "warning")] == []
        assert page.requests == [page.url]
        assert page.shown("#prompt-0 table.versions tbody tr") == 3
        assert page.shown("#prompt-0 table.verdicts tbody tr") == 2
        page.pick(0, "status", "fail")
        assert page.shown("#prompt-0 table.verdicts tbody tr") == 1
        shot = tmp_path / "dashboard-demo.png"
        page.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    finally:
        page.close()
