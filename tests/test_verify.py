"""`agent-evals verify`: a live version's before and after, on SQLite and a real PostgreSQL.

A synthetic history: version 1 deployed, version 2 deployed two weeks later (its gate verdict
predicted +2 points on the eval set, PR #7), production windows graded by `monitor` on both
sides, and a daily business metric. The figures are checked against scipy and the stats module
directly; a change that hurt production is a drop, one that did nothing is not, and a side with
no data is `cannot tell`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent_evals.checks import store_check
from agent_evals.errors import ConfigError
from agent_evals.history import ingest
from agent_evals.history.metrics import Point, add_deploy, add_points
from agent_evals.history.store import ENV_VAR, checks, open_store, resolve_url
from agent_evals.models import ProjectConfig
from agent_evals.record import CaseResult, RunEnd, RunHeader
from agent_evals.stats import detectable_drop, drop_pvalue, mean_shift, newcombe_interval
from agent_evals.verify import as_json, verify
from tests.pg import pg_cluster
from tests.test_history_import import history_url

__all__ = ["history_url", "pg_cluster"]

T0 = dt.datetime(2026, 9, 1)
LIVE = T0 + dt.timedelta(days=14)
METRIC = "synthetic resolution rate"


def _store(url: str) -> Any:
    return open_store(resolve_url(Path("."), ProjectConfig(), {ENV_VAR: url}))


def _window(store: Any, run_id: str, version: str, start: dt.datetime, passed: int, failed: int) -> None:
    """A production window of 7 days graded by monitor: `passed` + `failed` rows."""
    header = RunHeader(
        run_id=run_id,
        started_at=(start + dt.timedelta(days=7)).isoformat() + "Z",
        tool_version="0",
        prompt={"id": "triage", "version": version, "hash": f"sha256:{version * 8}"},
        evalset={"id": "triage-set"},
        provider={"name": "production"},
    )
    rows = [
        CaseResult(index=i, case_id=f"row-{i}", status="pass" if i < passed else "fail", passed=i < passed)
        for i in range(passed + failed)
    ]
    end = RunEnd(status="complete", finished_at=header.started_at)
    ingest.add_run(
        store,
        header,
        ((None, r) for r in rows),
        end,
        kind="production",
        window=(start, start + dt.timedelta(days=7)),
    )


def _fill(url: str, *, after_rate: float, metric_after: float) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(7)
    before_metric = list(0.75 + rng.normal(0, 0.01, 14))
    after_metric = list(metric_after + rng.normal(0, 0.01, 14))
    with _store(url) as store:
        _window(store, "p1", "1", T0, 180, 20)
        _window(store, "p2", "1", T0 + dt.timedelta(days=7), 182, 18)
        after = round(200 * after_rate)
        _window(store, "p3", "2", LIVE, after, 200 - after)
        _window(store, "p4", "2", LIVE + dt.timedelta(days=7), after, 200 - after)
        # After the runs: a deploy takes the content hash of its version's latest run.
        add_deploy(store, "triage", "1", T0, commit=None)
        add_deploy(store, "triage", "2", LIVE, commit="c0ffee2")
        add_points(
            store,
            [Point(METRIC, T0 + dt.timedelta(days=d), v) for d, v in enumerate(before_metric)]
            + [Point(METRIC, LIVE + dt.timedelta(days=d), v) for d, v in enumerate(after_metric)],
        )
        ingest.add_verdicts(
            store,
            {
                "kind": "agent-evals-gate",
                "schema_version": 1,
                "pairs": [
                    {
                        "prompt_id": "triage",
                        "evalset_id": "triage-set",
                        "verdict": {
                            "status": "pass",
                            "exit_code": 0,
                            "tests": [
                                {
                                    "group": "overall",
                                    "base_rate": 0.80,
                                    "cand_rate": 0.82,
                                    "delta": 0.02,
                                    "pvalue": 0.4,
                                }
                            ],
                        },
                        "runs": {
                            "base": {"run_id": "e1", "prompt": {"version": "1", "hash": "sha256:11111111"}},
                            "cand": {
                                "run_id": "e2",
                                "started_at": (LIVE - dt.timedelta(days=1)).isoformat() + "Z",
                                "prompt": {"version": "2", "hash": "sha256:22222222"},
                            },
                        },
                    }
                ],
            },
            pr=7,
        )
    return before_metric, after_metric


def _verify_drop(url: str) -> Any:
    """verify of version 2, a day after both sides' fortnight, the metric higher-is-better."""
    with _store(url) as store:
        return verify(
            store,
            "triage",
            root=None,
            prompt_path=None,
            metrics={METRIC: "higher"},
            now=LIVE + dt.timedelta(days=15),
        )


def test_a_change_that_hurt_production_and_the_metric_is_a_drop_with_exact_figures(history_url: str) -> None:
    before_metric, after_metric = _fill(history_url, after_rate=0.80, metric_after=0.70)
    v = _verify_drop(history_url)
    assert v.live.version == "2"
    assert v.live.start == LIVE
    p = v.production
    assert p is not None
    assert (p.before_n, p.before_passed, p.after_n, p.after_passed, p.windows) == (400, 362, 400, 320, (2, 2))
    expected = newcombe_interval(320, 400, 362, 400, confidence=0.95)
    assert p.delta == pytest.approx(320 / 400 - 362 / 400)
    assert p.interval == pytest.approx((expected.low, expected.high))
    assert p.pvalue == pytest.approx(drop_pvalue(362, 400, 320, 400))
    assert p.detectable == pytest.approx(detectable_drop(362 / 400, 400, 400, 0.05))
    (m,) = v.metrics
    shift = mean_shift(before_metric, after_metric)
    assert (m.before_n, m.after_n) == (14, 14)
    assert m.delta == pytest.approx(shift.delta)
    assert m.interval == pytest.approx(shift.interval)
    assert m.pvalue == pytest.approx(shift.p_lower)  # higher is better: a fall is the bad way
    assert v.gate is not None
    assert (v.gate["pr"], v.gate["status"], v.gate["delta"]) == (7, "pass", 0.02)
    assert v.check.status == "drop"
    assert v.check.pr == 7
    assert v.check.headline.startswith(
        "DROP: verify triage 2 (live 2026-09-15); production pass rate -10.5 pts ["
    )
    assert "gate #7 pass predicted +2.0 pts on the eval set" in v.check.headline


def test_a_change_that_did_nothing_is_ok_and_a_lower_is_better_metric_reads_the_other_way(
    history_url: str,
) -> None:
    _fill(history_url, after_rate=0.905, metric_after=0.75)
    with _store(history_url) as store:
        v = verify(
            store,
            "triage",
            root=None,
            prompt_path=None,
            metrics={METRIC: "lower"},
            now=LIVE + dt.timedelta(days=15),
        )
    assert v.check.status == "ok"
    (m,) = v.metrics
    assert m.direction == "lower"
    assert m.pvalue == pytest.approx(mean_shift(*_fill_metric()).p_higher)


def _fill_metric() -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(7)
    return list(0.75 + rng.normal(0, 0.01, 14)), list(0.75 + rng.normal(0, 0.01, 14))


def test_no_windows_or_points_on_a_side_cannot_tell_and_is_stored(history_url: str) -> None:
    with _store(history_url) as store:
        add_deploy(store, "triage", "2", LIVE, commit=None)
        v = verify(store, "triage", root=None, prompt_path=None, metrics={METRIC: "higher"}, now=LIVE)
        assert v.check.status == "cannot_tell"
        assert v.production is None
        assert v.check.headline == (
            "cannot tell: verify triage 2 (live 2026-09-15); production: no monitored windows on both sides; "
            f"{METRIC}: too few points (0 before, 0 after)"
        )
        store_check(store, v.check)
        store_check(store, v.check)  # the same check again replaces it
        with store.connect() as conn:
            from sqlalchemy import func, select

            assert conn.execute(select(func.count()).select_from(checks)).scalar() == 1


def test_an_unknown_version_or_no_live_period_is_one_clear_error(history_url: str) -> None:
    with _store(history_url) as store:
        with pytest.raises(ConfigError) as caught:
            verify(store, "triage", root=None, prompt_path=None, metrics={})
        assert caught.value.render() == (
            "no live period is known for prompt 'triage' (merge it on the deploy branch "
            "(the history reads the merges), or record the deploy: agent-evals history deploy triage VERSION --at TIME)"
        )
        add_deploy(store, "triage", "2", LIVE, commit=None)
        add_deploy(store, "triage", "3", LIVE + dt.timedelta(days=1), commit=None)
        with pytest.raises(ConfigError) as caught:
            verify(store, "triage", version="9", root=None, prompt_path=None, metrics={})
        assert caught.value.render() == "version '9' of 'triage' was never live (live versions: 2, 3)"


def test_overlapping_monitor_windows_are_pooled_once(history_url: str) -> None:
    """A daily monitor of the last 7 days grades each row 7 times: verify pools only windows that
    share no time, so a row counts once."""
    _fill(history_url, after_rate=0.80, metric_after=0.70)
    with _store(history_url) as store:
        # Two more after-windows, each overlapping p3 by six days.
        _window(store, "p3b", "2", LIVE + dt.timedelta(days=1), 160, 40)
        _window(store, "p3c", "2", LIVE + dt.timedelta(days=2), 160, 40)
        v = verify(store, "triage", root=None, prompt_path=None, metrics={}, now=LIVE + dt.timedelta(days=15))
    assert v.production is not None
    assert (v.production.after_n, v.production.after_passed, v.production.windows) == (400, 320, (2, 2))


def test_the_json_document_holds_every_figure_the_conclusion_rests_on(history_url: str) -> None:
    before_metric, after_metric = _fill(history_url, after_rate=0.80, metric_after=0.70)
    v = _verify_drop(history_url)
    doc = as_json(v)
    interval = newcombe_interval(320, 400, 362, 400, confidence=0.95)
    shift = mean_shift(before_metric, after_metric)
    assert doc == {
        "kind": "agent-evals-verify",
        "schema_version": 1,
        "prompt_id": "triage",
        "version": "2",
        "status": "drop",
        "headline": v.check.headline,
        "live": {"from": "2026-09-15T00:00:00Z", "to": None, "commit": "c0ffee2", "source": "deploy"},
        "days": 14,
        "alpha": 0.05,
        "production": {
            "before": {"n": 400, "passed": 362, "windows": 2},
            "after": {"n": 400, "passed": 320, "windows": 2},
            "delta": pytest.approx(interval.estimate),
            "interval": pytest.approx([interval.low, interval.high]),
            "pvalue_drop": pytest.approx(drop_pvalue(362, 400, 320, 400)),
            "detectable_drop": pytest.approx(detectable_drop(362 / 400, 400, 400, 0.05)),
        },
        "metrics": [
            {
                "name": METRIC,
                "direction": "higher",
                "before": {"n": 14, "mean": pytest.approx(np.mean(before_metric))},
                "after": {"n": 14, "mean": pytest.approx(np.mean(after_metric))},
                "delta": pytest.approx(shift.delta),
                "interval": pytest.approx(list(shift.interval)),
                "pvalue_worse": pytest.approx(shift.p_lower),
            }
        ],
        "gate": {
            "status": "pass",
            "pr": 7,
            "commit": None,
            "decided_at": "2026-09-14T00:00:00Z",
            "base_version": "1",
            "base_rate": 0.8,
            "cand_rate": 0.82,
            "delta": 0.02,
            "pvalue": 0.4,
        },
    }
    assert v.check.headline == (
        "DROP: verify triage 2 (live 2026-09-15); production pass rate -10.5 pts [-15.4 pts, -5.6 pts]; "
        f"{METRIC} -0.05606 [-0.06256, -0.04956]; gate #7 pass predicted +2.0 pts on the eval set"
    )
    assert v.check.window == (LIVE - dt.timedelta(days=14), LIVE + dt.timedelta(days=14))
    assert (v.check.kind, v.check.prompt_id, v.check.prompt_hash, v.check.at) == (
        "verify",
        "triage",
        "sha256:22222222",
        LIVE + dt.timedelta(days=15),
    )


def test_an_earlier_version_and_a_shorter_span_are_checked_as_asked(history_url: str) -> None:
    """--version picks the period of that version (its latest, when it was live twice); --days
    narrows both sides, so windows and points outside them are left out."""
    _fill(history_url, after_rate=0.80, metric_after=0.70)
    with _store(history_url) as store:
        add_deploy(
            store,
            "triage",
            "1",
            LIVE + dt.timedelta(days=30),
            commit="c0ffee1",
        )
        v1 = verify(
            store,
            "triage",
            version="1",
            root=None,
            prompt_path=None,
            metrics={},
            now=LIVE + dt.timedelta(days=31),
        )
        assert (v1.live.version, v1.live.start, v1.live.commit) == (
            "1",
            LIVE + dt.timedelta(days=30),
            "c0ffee1",
        )
        assert v1.gate is None  # no verdict had version 1 as its candidate
        latest = verify(store, "triage", root=None, prompt_path=None, metrics={}, now=LIVE)
        assert latest.live.version == "1"  # the version live now
        v2 = verify(
            store, "triage", version="2", root=None, prompt_path=None, metrics={METRIC: "lower"}, days=7
        )
    assert v2.live.start == LIVE
    assert v2.production is not None
    assert (v2.production.before_n, v2.production.after_n, v2.production.windows) == (200, 200, (1, 1))
    (m,) = v2.metrics
    assert (m.before_n, m.after_n, m.direction) == (7, 7, "lower")
    assert v2.check.window == (LIVE - dt.timedelta(days=7), LIVE + dt.timedelta(days=7))
    assert v2.check.status == "drop"  # production fell, even though the metric moved the good way for "lower"


def test_live_from_the_merges_and_only_this_prompts_production_windows(
    history_url: str, tmp_path: Path
) -> None:
    """Without deploys, the version went live at its merge on the deploy branch (a real repository,
    a branch named by `branch`); another prompt's windows and an eval run in the span are not
    production for this one; five metric points a side are enough, four are not; alpha is the one given."""
    import os

    from agent_evals.load import load_prompt
    from tests.support import GitRepo
    from tests.test_history_report import PROMPT

    repo = GitRepo(tmp_path)
    path = "prompts/triage.yaml"

    def commit_at(at: dt.datetime, message: str) -> None:
        stamp = at.isoformat() + "Z"
        repo.git.git.add("-A")
        repo.git.git.commit(
            "-m",
            message,
            "--no-verify",
            env={**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
        )

    repo.write({path: PROMPT.format(version=1, system="v1")})
    commit_at(T0, "v1")
    repo.git.git.checkout("-b", "release")
    repo.write({path: PROMPT.format(version=2, system="v2")})
    commit_at(LIVE, "v2")
    repo.git.git.checkout("main")
    v2_hash = load_prompt(Path(path), PROMPT.format(version=2, system="v2")).content_hash
    rng = np.random.default_rng(11)
    with _store(history_url) as store:
        for run_id, start, passed in (("q1", T0 + dt.timedelta(days=7), 190), ("q2", LIVE, 150)):
            _window(store, run_id, "1" if start < LIVE else "2", start, passed, 200 - passed)
        # Another prompt's production window, and an eval run of this prompt: neither is counted.
        other = RunHeader(
            run_id="other", started_at=LIVE.isoformat() + "Z", tool_version="0",
            prompt={"id": "someone-else", "version": "9"}, evalset={"id": "x"}, provider={"name": "production"},
        )  # fmt: skip
        rows = [CaseResult(index=0, case_id="r", status="fail", passed=False)] * 1
        ingest.add_run(
            store,
            other,
            ((None, r) for r in rows),
            None,
            kind="production",
            window=(LIVE, LIVE + dt.timedelta(days=7)),
        )
        evalrun = other.model_copy(update={"run_id": "eval", "prompt": {"id": "triage", "version": "2"}})
        ingest.add_run(
            store, evalrun, ((None, r) for r in rows), None, window=(LIVE, LIVE + dt.timedelta(days=7))
        )
        before = list(0.7 + rng.normal(0, 0.01, 5))
        after = list(0.6 + rng.normal(0, 0.01, 5))
        add_points(
            store,
            [Point("five", LIVE - dt.timedelta(days=5 - i), value) for i, value in enumerate(before)]
            + [Point("five", LIVE + dt.timedelta(days=i), value) for i, value in enumerate(after)]
            + [Point("four", LIVE - dt.timedelta(days=d + 1), 0.7) for d in range(4)]
            + [Point("four", LIVE + dt.timedelta(days=d), 0.6) for d in range(4)],
        )
        v = verify(
            store,
            "triage",
            root=tmp_path,
            prompt_path=path,
            metrics={"five": "higher", "four": "higher"},
            branch="release",
            alpha=0.01,
            now=LIVE + dt.timedelta(days=8),
        )
    assert (v.live.version, v.live.prompt_hash, v.live.start, v.live.source) == ("2", v2_hash, LIVE, "merge")
    assert v.check.figures["live"]["source"] == "merge"
    assert v.check.figures["alpha"] == 0.01
    assert v.production is not None
    assert (v.production.before_n, v.production.after_n) == (200, 200)
    assert v.production.interval == pytest.approx(
        (lambda i: (i.low, i.high))(newcombe_interval(150, 200, 190, 200, confidence=0.99))
    )
    five, four = v.metrics  # sorted by name
    assert (four.name, four.delta, four.interval) == ("four", None, None)
    expected = mean_shift(before, after, alpha=0.01)
    assert (five.name, five.before_n, five.after_n) == ("five", 5, 5)
    assert five.interval == pytest.approx(expected.interval)
    assert five.pvalue == pytest.approx(expected.p_lower)


def test_the_alert_line_is_its_summary_or_the_answer_as_json() -> None:
    # verify printed a dict's Python repr where monitor printed JSON: both print this line now.
    from agent_evals.report.checks import alert_line

    assert alert_line({"action": "trigger", "summary": "paged oncall"}) == "alert: paged oncall"
    assert (
        alert_line({"action": "repeat", "dedup_key": "k"}) == 'alert: {"action": "repeat", "dedup_key": "k"}'
    )
