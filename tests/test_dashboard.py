"""The dashboard page: pure rendering checks, then the page itself in headless Chromium.

The document is built by hand from the history document's shape (`history.query.document`), so
these tests pin the page, not the store. The browser tests load the page from a `file://` URL in
Debian's `chromium` driven by Playwright, and skip only when no `chromium` is on PATH (as
tests/test_html_report.py). Every request is routed: anything but the page's own file (or a
`data:` URL) is recorded and aborted, and the test fails on it. The screenshot is saved under the
test's tmp_path and copied to `reports/dashboard.png` (git-ignored; CI keeps it).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_evals.report import dashboard
from agent_evals.report._page import Chart, Dot, Rect
from tests.chromium import Collect as _Collect
from tests.chromium import LoadedPage, browser

__all__ = ["browser"]

REPO = Path(__file__).resolve().parents[1]
LEAK = "http://127.0.0.1:9/leak"
EVIL_PROMPT = "refund-</script><img src=x onerror=alert(1)>"
EVIL_CASE = f"case-</script><img src=x onerror=\"fetch('{LEAK}')\">"
EVIL_BRANCH = "fix/</option><script>alert(3)</script>"
EVIL_HEADLINE = "</script><script>alert(4)</script><svg onload=alert(5)>"


def _version(key: str, first: str, last: str, **kw: Any) -> dict[str, Any]:
    version, digest = key.split("@")
    out: dict[str, Any] = {
        "key": key,
        "version": version,
        "hash": digest * 8,
        "first_run": first,
        "last_run": last,
        "runs": 2,
        "evalsets": ["ticket-triage"],
        "models": ["local-tfidf-knn"],
        "branches": ["main"],
        "commits": ["1a2b3c4d5e6f7a8b9c0d"],
        "cases": 40,
        "judged": 80,
        "passed": 64,
        "errors": 0,
        "pass_rate": 0.8,
        "pass_rate_ci": [0.7, 0.88],
        "confidence": 0.95,
        "cost_per_case_usd": 0.0012,
        "latency_p50_ms": 812.0,
        "latency_p95_ms": 2150.0,
        "steps_per_case": None,
        "tool_calls_per_case": None,
        "flaky": [],
        "flaky_count": 0,
        "live": [],
    }
    out.update(kw)
    return out


def _run(i: int, at: str, key: str, evalset: str, branch: str | None, rate: float) -> dict[str, Any]:
    return {
        "run_id": f"run-{i}",
        "started_at": at,
        "version_key": key,
        "evalset_id": evalset,
        "branch": branch,
        "commit": f"{i}" * 40,
        "dirty": False,
        "model": "local-tfidf-knn",
        "status": "complete",
        "shard": None,
        "judged": 40,
        "passed": round(40 * rate),
        "errors": 0,
        "pass_rate": rate,
        "pass_rate_ci": [rate - 0.1, rate + 0.05],
        "cost_usd": 0.05,
    }


def _verdict(
    at: str, status: str, pr: int | None, branch: str, base: str, cand: str, key: str, **kw: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "decided_at": at,
        "status": status,
        "exit_code": {"pass": 0, "fail": 1, "error": 3}[status],
        "headline": f"gate {status}",
        "pr": pr,
        "commit": "feedc0de" * 5,
        "branch": branch,
        "evalset_id": "ticket-triage",
        "change": "modified",
        "base_version": base,
        "cand_version": cand,
        "cand_key": key,
        "failed_rules": [],
        "calibration": {"tone_judge": "ok"},
    }
    out.update(kw)
    return out


V1, V2, V3, R1 = "1@aaaa1111", "2@bbbb2222", "3@cccc3333", "1@dddd4444"


def _document() -> dict[str, Any]:
    """Synthetic history: 2 prompts, 4 versions, 3 verdicts (one failed, with a PR), a metric series."""
    triage = {
        "prompt_id": "ticket-triage",
        "owner": {"name": "support-automation team (synthetic)", "oncall": "pagerduty:triage-synthetic"},
        "evalsets": ["ticket-triage", "ticket-triage-hard"],
        "metrics": ["ticket_reopen_rate"],
        "live_from": "merges",
        "versions": [
            _version(
                V1,
                "2026-10-01T09:00:00Z",
                "2026-10-10T09:00:00Z",
                pass_rate=0.8,
                flaky=["case-3"],
                flaky_count=1,
                live=[
                    {
                        "from": "2026-10-02T12:00:00Z",
                        "to": "2026-10-15T12:00:00Z",
                        "commit": "a" * 40,
                        "source": "merge",
                    }
                ],
            ),
            _version(
                V2,
                "2026-10-12T09:00:00Z",
                "2026-10-20T09:00:00Z",
                pass_rate=0.85,
                pass_rate_ci=[0.78, 0.9],
                evalsets=["ticket-triage", "ticket-triage-hard"],
                branches=["shorter-prompt", "main"],
                flaky=["case-7", "case-12"],
                flaky_count=3,
                cost_per_case_usd=0.0009,
                live=[
                    {
                        "from": "2026-10-15T12:00:00Z",
                        "to": "2026-11-01T12:00:00Z",
                        "commit": "b" * 40,
                        "source": "merge",
                    }
                ],
            ),
            _version(
                V3,
                "2026-10-28T09:00:00Z",
                "2026-11-05T09:00:00Z",
                pass_rate=0.875,
                pass_rate_ci=[0.81, 0.92],
                branches=["tone-tweak", "main"],
                live=[{"from": "2026-11-01T12:00:00Z", "to": None, "commit": "c" * 40, "source": "merge"}],
            ),
        ],
        "runs": [
            _run(0, "2026-10-01T09:00:00Z", V1, "ticket-triage", "main", 0.775),
            _run(1, "2026-10-10T09:00:00Z", V1, "ticket-triage", "main", 0.825),
            _run(2, "2026-10-12T09:00:00Z", V2, "ticket-triage", "shorter-prompt", 0.85),
            _run(3, "2026-10-20T09:00:00Z", V2, "ticket-triage-hard", "main", 0.85),
            _run(4, "2026-10-28T09:00:00Z", V3, "ticket-triage", "tone-tweak", 0.8),
            _run(5, "2026-11-05T09:00:00Z", V3, "ticket-triage", "main", 0.9),
        ],
        "verdicts": [
            _verdict("2026-10-12T10:00:00Z", "pass", 41, "shorter-prompt", "1", "2", V2),
            _verdict(
                "2026-10-28T10:00:00Z",
                "fail",
                42,
                "tone-tweak",
                "2",
                "3",
                V3,
                headline="2 regressions: refund-1, refund-2 (pass -> fail)",
                failed_rules=["no_regressions", "critical_cases"],
                calibration={"tone_judge": "below_floor"},
            ),
            _verdict("2026-10-30T10:00:00Z", "pass", 42, "tone-tweak", "2", "3", V3),
        ],
        "calibration": [
            {
                "grader": "tone_judge",
                "status": "ok",
                "agreement": 0.86,
                "kappa": 0.61,
                "n": 40,
                "decided_at": "2026-10-30T10:00:00Z",
            },
            {
                "grader": "style_judge",
                "status": "below_floor",
                "agreement": 0.6,
                "kappa": 0.2,
                "n": 30,
                "decided_at": "2026-10-30T10:00:00Z",
            },
        ],
        "metric_series": [
            {
                "name": "ticket_reopen_rate",
                "points": [
                    {"at": f"2026-{day}T00:00:00Z", "value": value}
                    for day, value in (
                        ("09-28", 0.081),
                        ("10-05", 0.079),
                        ("10-12", 0.074),
                        ("10-19", 0.071),
                        ("10-26", 0.07),
                        ("11-02", 0.066),
                    )
                ],
            }
        ],
    }
    # The second prompt is an agent with hostile strings everywhere a person or a model writes text.
    refund = {
        "prompt_id": EVIL_PROMPT,
        "owner": None,
        "evalsets": ["refund-agent"],
        "metrics": [],
        "live_from": None,
        "versions": [
            _version(
                R1,
                "2026-11-03T09:00:00Z",
                "2026-11-03T09:00:00Z",
                runs=1,
                evalsets=["refund-agent"],
                branches=[EVIL_BRANCH],
                cost_per_case_usd=None,
                steps_per_case=3.2,
                tool_calls_per_case=1.6,
                flaky=[EVIL_CASE],
                flaky_count=1,
            )
        ],
        "runs": [_run(6, "2026-11-03T09:00:00Z", R1, "refund-agent", EVIL_BRANCH, 0.9) | {"cost_usd": None}],
        "verdicts": [
            _verdict(
                "2026-11-03T10:00:00Z",
                "error",
                None,
                EVIL_BRANCH,
                "-",
                "1",
                R1,
                headline=EVIL_HEADLINE,
                evalset_id="refund-agent",
            )
        ],
        "calibration": [],
        "metric_series": [],
    }
    return {
        "kind": "agent-evals-history",
        "schema_version": 1,
        "generated_at": "2026-11-06T12:00:00Z",
        "store": "/synthetic/.agent-evals/history.sqlite3",
        "prompts": [triage, refund],
    }


def _parse(text: str) -> _Collect:
    parser = _Collect()
    parser.feed(text)
    return parser


# --- pure: the page as text ------------------------------------------------------------------------


def test_page_is_self_contained_and_escapes_hostile_strings() -> None:
    text = dashboard.render(_document())
    parser = _parse(text)
    # Nothing loads from anywhere: no src, one data: icon, no URL but the hostile one (as text).
    assert not [t for t in parser.tags if "src" in t[1]]
    assert [t[1] for t in parser.tags if t[0] == "link"] == [{"rel": "icon", "href": "data:,"}]
    assert not re.search(r"https?://", text.replace(LEAK, ""))
    assert [t[1] for t in parser.tags if t[0] == "script"] == [
        {"type": "application/json", "id": "dashboard-data"},
        {},
    ]
    csp = next(
        t[1]["content"]
        for t in parser.tags
        if t[0] == "meta" and t[1].get("http-equiv") == "Content-Security-Policy"
    )
    assert csp is not None
    assert "default-src 'none'" in csp
    digest = base64.b64encode(hashlib.sha256(parser.scripts[-1].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    # Hostile strings are text: no element they name was made, and each is there escaped.
    assert "<img" not in text
    assert "<script>alert" not in text
    assert "<svg onload" not in text
    assert not [t for t in parser.tags if t[0] in ("img", "iframe", "object", "embed")]
    assert not [t for t in parser.tags if any(k.startswith("on") for k in t[1])]
    for hostile in (EVIL_PROMPT, EVIL_CASE, EVIL_HEADLINE):
        escaped = (
            hostile.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
        )
        escaped = escaped.replace("'", "&#39;")
        assert escaped in text, hostile
    assert '<option value="fix/&lt;/option&gt;&lt;script&gt;alert(3)&lt;/script&gt;">' in text
    # The embedded index cannot close its element, and reads back as the index of both prompts.
    index = json.loads(parser.scripts[0])
    assert [len(p["runs"]) for p in index["prompts"]] == [6, 1]
    assert index["prompts"][1]["runs"][0]["branch"] == EVIL_BRANCH


def test_the_data_is_on_the_page() -> None:
    view = dashboard.page(_document())
    triage, refund = view.prompts
    assert view.title == f"agent-evals dashboard: ticket-triage, {EVIL_PROMPT}"
    assert (triage.owner, triage.oncall) == (
        "support-automation team (synthetic)",
        "pagerduty:triage-synthetic",
    )
    assert triage.branches == ("main", "shorter-prompt", "tone-tweak")
    assert triage.windows == (
        ("v:1", "last 1 version"),
        ("v:2", "last 2 versions"),
        ("d:7", "last 7 days"),
        ("d:30", "last 30 days"),
        ("d:90", "last 90 days"),
    )
    assert [(v.key, v.runs, v.cases, v.pass_rate, v.cost, v.latency, v.flaky) for v in triage.versions] == [
        (V1, "2", "40", "80.0% [70.0%, 88.0%]", "$0.0012", "812 ms / 2,150 ms", "1"),
        (V2, "2", "40", "85.0% [78.0%, 90.0%]", "$0.0009", "812 ms / 2,150 ms", "3"),
        (V3, "2", "40", "87.5% [81.0%, 92.0%]", "$0.0012", "812 ms / 2,150 ms", "0"),
    ]
    # Steps and tool calls are for agents: the triage prompt has none, the refund agent does.
    assert (triage.show_steps, triage.show_tool_calls) == (False, False)
    assert (refund.show_steps, refund.show_tool_calls) == (True, True)
    text = dashboard.render(_document())
    first, second = text.split('id="prompt-1"')
    assert "steps / case" not in first
    assert "tool calls / case" not in first
    assert '<th class="num steps">steps / case</th>' in second
    assert "tool calls / case" in second
    assert (refund.versions[0].steps, refund.versions[0].tool_calls, refund.versions[0].cost) == (
        "3.2",
        "1.6",
        "n/a",
    )
    assert [
        (v.at, v.status, v.pr, v.commit, v.branch, v.versions, v.failed_rules, v.headline)
        for v in triage.verdicts
    ] == [
        ("2026-10-12 10:00", "pass", "#41", "feedc0de", "shorter-prompt", "1 → 2", "—", "gate pass"),
        (
            "2026-10-28 10:00",
            "fail",
            "#42",
            "feedc0de",
            "tone-tweak",
            "2 → 3",
            "no_regressions, critical_cases",
            "2 regressions: refund-1, refund-2 (pass -> fail)",
        ),
        ("2026-10-30 10:00", "pass", "#42", "feedc0de", "tone-tweak", "2 → 3", "—", "gate pass"),
    ]
    assert refund.verdicts[0].pr == "—"
    assert [(f.key, f.ids, f.more) for f in triage.flaky] == [
        (V1, ("case-3",), 0),
        (V2, ("case-7", "case-12"), 1),
    ]
    assert [(j.grader, j.word, j.warn, j.agreement, j.kappa, j.n) for j in triage.judges] == [
        ("tone_judge", "agrees with people", False, "86.0%", "0.61", "40"),
        ("style_judge", "below its agreement floor", True, "60.0%", "0.20", "30"),
    ]
    assert triage.counts == (("version", 3), ("run", 6), ("verdict", 3), ("metric value", 6))
    # No version says what the metric averaged while it was live: no column for it.
    assert triage.live_metrics == ()


def test_the_metric_while_each_version_was_live_is_a_column() -> None:
    doc = _document()
    for v, mean in zip(doc["prompts"][0]["versions"], (0.078, 0.0712, None), strict=True):
        v["metric_live"] = {"ticket_reopen_rate": mean}
    triage = dashboard.page(doc).prompts[0]
    assert triage.live_metrics == ("ticket_reopen_rate",)
    assert [v.while_live for v in triage.versions] == [("0.078",), ("0.0712",), ("n/a",)]
    text = dashboard.render(doc)
    assert '<th class="num live-metric">ticket_reopen_rate while live</th>' in text
    assert '<td class="num live-metric">0.0712</td>' in text


def _refs(chart: Chart | None, kind: str, cls: str) -> list[str]:
    assert chart is not None
    return [s.ref for s in chart.shapes if s.kind == kind and cls in s.cls.split()]


def test_charts_draw_bands_runs_verdicts_and_live_periods() -> None:
    triage = dashboard.page(_document()).prompts[0]
    chart = triage.pass_chart
    assert _refs(chart, "rect", "band") == ["version-0", "version-1", "version-2"]
    assert _refs(chart, "circle", "run") == [f"run-{i}" for i in range(6)]
    assert _refs(chart, "circle", "vmark") == ["verdict-0", "verdict-1", "verdict-2"]
    assert chart is not None
    labels = [s.text for s in chart.shapes if s.kind == "text" and "vpr" in s.cls]
    assert labels == ["#41", "#42", "#42"]
    failed = next(s for s in chart.shapes if s.kind == "circle" and s.ref == "verdict-1")
    assert failed.cls == "vmark fail"
    assert "PR #42 · commit feedc0de · 2 → 3 · 2 regressions" in failed.title
    # A band spans the version's first to last run, between its interval's ends (0.70..0.88).
    band = next(s for s in chart.shapes if s.kind == "rect" and s.ref == "version-0")
    first = next(s for s in chart.shapes if s.kind == "circle" and s.ref == "run-0")
    last = next(s for s in chart.shapes if s.kind == "circle" and s.ref == "run-1")
    assert isinstance(band, Rect)
    assert isinstance(first, Dot)
    assert isinstance(last, Dot)
    assert (band.x, round(band.x + band.w, 1)) == (first.cx, last.cx)
    assert (band.y, round(band.y + band.h, 1)) == (round(264 - 220 * 0.88, 1), round(264 - 220 * 0.7, 1))
    (metric,) = triage.metrics
    assert metric.name == "ticket_reopen_rate"
    assert _refs(metric.chart, "circle", "point") == [f"point-{i}" for i in range(6)]
    assert _refs(metric.chart, "line", "series") == [f"seg-{i}" for i in range(5)]
    assert _refs(metric.chart, "rect", "live") == ["version-0", "version-1", "version-2"]
    assert metric.chart is not None
    live_labels = [s.text for s in metric.chart.shapes if s.kind == "text" and "livelabel" in s.cls]
    # Each live period says which version it was and the gate's last verdict on it.
    assert live_labels == [V1, f"{V2} · gate pass #41", f"{V3} · gate pass #42"]
    # The same time axis: the third live period starts where November 1st noon falls on the pass chart.
    now_live = next(s for s in metric.chart.shapes if s.kind == "rect" and s.ref == "version-2")
    assert isinstance(now_live, Rect)
    width = dashboard.RIGHT - dashboard.LEFT
    assert now_live.x + now_live.w == pytest.approx(dashboard.LEFT + width * 1.02 / 1.04, abs=0.15)


def test_empty_states_still_render() -> None:
    doc = _document()
    bare = {
        "prompt_id": "new-prompt",
        "owner": None,
        "evalsets": [],
        "metrics": ["csat"],
        "live_from": None,
        "versions": [],
        "runs": [],
        "verdicts": [],
        "calibration": [],
        "metric_series": [],
    }
    doc["prompts"] = [doc["prompts"][1], bare]
    text = dashboard.render(doc)
    assert "No gate verdicts recorded" not in text.split('id="prompt-0"')[1].split('id="prompt-1"')[0]
    section = text.split('id="prompt-1"')[1]
    for line in (
        "No runs recorded for this prompt.",
        "Business metric <code>csat</code>: no values recorded",
        "No versions recorded.",
        "No gate verdicts recorded for this prompt.",
        "No flaky cases",
        "No LLM judge in the latest gate verdict.",
        "owner not recorded",
    ):
        assert line in section, line
    # The agent prompt with one version, no cost and no metric.
    first = text.split('id="prompt-0"')[1].split('id="prompt-1"')[0]
    assert "No business metric: none of this prompt's eval sets names one." in first
    assert '<td class="num">n/a</td>' in first
    empty = dashboard.render(
        {"kind": "agent-evals-history", "schema_version": 1, "generated_at": None, "store": "", "prompts": []}
    )
    assert "No history yet" in empty
    assert 'id="prompt-picker"' not in empty


def test_a_metric_series_with_one_value_and_a_version_run_once() -> None:
    doc = _document()
    triage = doc["prompts"][0]
    triage["versions"] = triage["versions"][:1]
    triage["versions"][0]["last_run"] = triage["versions"][0]["first_run"]
    triage["runs"] = triage["runs"][:1]
    triage["verdicts"] = []
    triage["metric_series"][0]["points"] = triage["metric_series"][0]["points"][:1]
    view = dashboard.page(doc).prompts[0]
    assert _refs(view.pass_chart, "rect", "band") == ["version-0"]
    assert _refs(view.metrics[0].chart, "circle", "point") == ["point-0"]
    assert _refs(view.metrics[0].chart, "line", "series") == []
    assert view.windows[0] == ("d:7", "last 7 days")


# --- in the browser ------------------------------------------------------------------------------------


class Page(LoadedPage):
    """One loaded dashboard, with what it logged; every request is routed, and only the file passes."""

    def shown(self, selector: str) -> int:
        """How many elements match and are rendered (checkVisibility: not display:none, nor inside one)."""
        n: int = self.page.eval_on_selector_all(
            selector, "els => els.filter(e => e.checkVisibility()).length"
        )
        return n

    def pick(self, section: int, name: str, value: str) -> None:
        self.page.select_option(f'#prompt-{section} form.filters select[name="{name}"]', value)

    def status(self, section: int = 0) -> str:
        return str(self.page.text_content(f"#prompt-{section} output.shown"))


@pytest.fixture
def board(browser: Any, tmp_path: Path) -> Iterator[Page]:
    path = tmp_path / "dashboard.html"
    path.write_text(dashboard.render(_document()), encoding="utf-8")
    page = Page(browser, path)
    yield page
    page.close()


def test_no_console_errors_no_requests_and_hostile_text_stays_text(board: Page) -> None:
    p = board
    p.page.select_option("#prompt-picker", "all")
    p.page.click("#prompt-1 details.runs summary")
    p.page.hover("#prompt-1 circle.vmark")
    p.page.wait_for_timeout(200)
    assert p.errors == []
    assert [m for m in p.console if m[0] in ("error", "warning")] == []
    assert p.blocked == []
    assert p.requests == [p.url]
    assert p.dialogs == []
    assert p.page.query_selector_all("img") == []
    assert p.page.eval_on_selector_all("script", "s => s.length") == 2
    assert p.page.text_content("#prompt-1 h2") == EVIL_PROMPT
    assert p.page.text_content("#prompt-1 ul.flaky .chip") == EVIL_CASE
    assert p.page.text_content("#prompt-1 table.verdicts tbody td:last-child") == EVIL_HEADLINE
    branches = p.page.eval_on_selector_all(
        '#prompt-1 select[name="branch"] option', "os => os.map(o => o.value)"
    )
    assert branches == ["", EVIL_BRANCH]
    p.pick(1, "branch", EVIL_BRANCH)
    assert p.status(1) == "1 of 1 version · 1 of 1 run · 1 of 1 verdict · 0 of 0 metric values"


def test_the_prompt_picker_switches_sections(board: Page) -> None:
    p = board
    assert p.page.is_visible("#prompt-0")
    assert p.page.is_hidden("#prompt-1")
    p.page.select_option("#prompt-picker", "1")
    assert p.page.is_hidden("#prompt-0")
    assert p.page.is_visible("#prompt-1")
    assert p.shown("section.prompt") == 1
    p.page.select_option("#prompt-picker", "all")
    assert p.shown("section.prompt") == 2
    p.page.click('section.overview button.pick[data-pick="0"]')
    assert p.page.input_value("#prompt-picker") == "0"
    assert p.shown("section.prompt") == 1
    assert p.page.is_visible("#prompt-0")


def _counts(p: Page) -> dict[str, int]:
    s = "#prompt-0"
    return {
        "version rows": p.shown(f"{s} table.versions tbody tr"),
        "bands": p.shown(f"{s} rect.band"),
        "run rows": p.shown(f"{s} table.runs tbody tr"),
        "run dots": p.shown(f"{s} circle.run"),
        "verdict rows": p.shown(f"{s} table.verdicts tbody tr"),
        "verdict marks": p.shown(f"{s} circle.vmark"),
        "live periods": p.shown(f"{s} rect.live"),
        "points": p.shown(f"{s} circle.point"),
        "segments": p.shown(f"{s} line.series"),
        "flaky": p.shown(f"{s} ul.flaky li"),
    }


def _expect(
    versions: int, runs: int, verdicts: int, points: int, segments: int, flaky: int
) -> dict[str, int]:
    return {
        "version rows": versions,
        "bands": versions,
        "run rows": runs,
        "run dots": runs,
        "verdict rows": verdicts,
        "verdict marks": verdicts,
        "live periods": versions,
        "points": points,
        "segments": segments,
        "flaky": flaky,
    }


def test_filters_change_what_is_shown(board: Page) -> None:
    p = board
    p.page.click("#prompt-0 details.runs summary")
    assert _counts(p) == _expect(3, 6, 3, 6, 5, 2)
    assert p.status() == "3 of 3 versions · 6 of 6 runs · 3 of 3 verdicts · 6 of 6 metric values"

    p.pick(0, "branch", "main")
    # Runs on main; every version ran on main; no gate verdict is decided on main.
    assert _counts(p) == _expect(3, 4, 0, 6, 5, 2)
    assert p.status() == "3 of 3 versions · 4 of 6 runs · 0 of 3 verdicts · 6 of 6 metric values"
    p.pick(0, "branch", "")

    p.pick(0, "evalset", "ticket-triage-hard")
    assert _counts(p) == _expect(1, 1, 0, 6, 5, 1)
    p.pick(0, "evalset", "")

    p.pick(0, "status", "fail")
    assert _counts(p) == _expect(3, 6, 1, 6, 5, 2)
    failed = p.page.eval_on_selector_all(
        "#prompt-0 table.verdicts tbody tr",
        "rs => rs.filter(r => r.checkVisibility()).map(r => r.cells[2].textContent)",
    )
    assert failed == ["#42"]
    p.pick(0, "status", "")

    # The last version: its runs and the verdicts on it, and metric values from its first run on.
    p.pick(0, "range", "v:1")
    assert _counts(p) == _expect(1, 2, 2, 1, 0, 0)
    assert p.status() == "1 of 3 versions · 2 of 6 runs · 2 of 3 verdicts · 1 of 6 metric values"
    p.pick(0, "range", "v:2")
    assert _counts(p) == _expect(2, 4, 3, 3, 2, 1)

    # Days count back from the document's generated_at (2026-11-06 12:00), not the browser's clock.
    p.pick(0, "range", "d:30")
    assert _counts(p) == _expect(3, 5, 3, 4, 3, 2)
    p.pick(0, "range", "d:7")
    assert _counts(p) == _expect(1, 1, 0, 1, 0, 0)

    p.pick(0, "range", "")
    assert _counts(p) == _expect(3, 6, 3, 6, 5, 2)
    assert p.errors == []


def test_screenshot(board: Page, tmp_path: Path) -> None:
    p = board
    shot = tmp_path / "dashboard.png"
    p.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    keep = REPO / "reports" / "dashboard.png"
    keep.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, keep)


def test_unknown_fields_do_not_break_the_page(browser: Any, tmp_path: Path) -> None:
    # A newer document may carry more than schema_version 1 names; nulls where numbers usually are.
    doc = copy.deepcopy(_document())
    doc["extra"] = {"anything": [1, 2]}
    version = doc["prompts"][0]["versions"][1]
    for key in ("pass_rate_ci", "cost_per_case_usd", "latency_p50_ms", "latency_p95_ms", "cases"):
        version[key] = None
    doc["prompts"][0]["runs"][2]["pass_rate"] = None
    path = tmp_path / "nulls.html"
    path.write_text(dashboard.render(doc), encoding="utf-8")
    p = Page(browser, path)
    try:
        assert p.errors == []
        assert p.blocked == []
        assert p.shown("#prompt-0 rect.band") == 2
        assert p.shown("#prompt-0 circle.run") == 5
        row = p.page.eval_on_selector(
            "#prompt-0 table.versions tbody tr:nth-child(2)", "r => [...r.cells].map(c => c.textContent)"
        )
        assert row[3:8] == ["2", "n/a", "85.0%", "n/a", "n/a / n/a"]
    finally:
        p.close()


def test_two_metric_series_number_their_marks_across_the_prompt() -> None:
    doc = _document()
    triage = doc["prompts"][0]
    triage["metrics"] = ["ticket_reopen_rate", "csat"]
    triage["metric_series"][0]["points"] = triage["metric_series"][0]["points"][:2]
    # Out of time order on purpose: a series is drawn oldest first.
    triage["metric_series"].append(
        {
            "name": "csat",
            "points": [
                {"at": "2026-10-20T00:00:00Z", "value": 4.4},
                {"at": "2026-10-06T00:00:00Z", "value": 4.1},
                {"at": "2026-11-03T00:00:00Z", "value": 4.6},
            ],
        }
    )
    view = dashboard.page(doc)
    reopen, csat = view.prompts[0].metrics
    assert _refs(reopen.chart, "circle", "point") == ["point-0", "point-1"]
    assert _refs(reopen.chart, "line", "series") == ["seg-0"]
    assert _refs(csat.chart, "circle", "point") == ["point-2", "point-3", "point-4"]
    assert _refs(csat.chart, "line", "series") == ["seg-1", "seg-2"]
    assert csat.chart is not None
    titles = [s.title for s in csat.chart.shapes if s.kind == "circle"]
    assert titles == [
        "csat: 4.1 at 2026-10-06 00:00",
        "csat: 4.4 at 2026-10-20 00:00",
        "csat: 4.6 at 2026-11-03 00:00",
    ]
    index = json.loads(str(view.data))["prompts"][0]
    assert index["segments"] == [[0, 1], [2, 3], [3, 4]]


def test_checks_after_the_merge_sit_beside_their_prs_verdict_and_production_windows_are_drawn() -> None:
    doc = _document()
    triage = doc["prompts"][0]
    pr = next(v["pr"] for v in triage["verdicts"] if v.get("pr") is not None)
    key = triage["versions"][-1]["key"]
    triage["checks"] = [
        {
            "kind": "verify",
            "at": "2026-11-20T09:00:00Z",
            "status": "drop",
            "headline": "DROP: verify ticket-triage (synthetic) production pass rate -6.0 pts",
            "version": triage["versions"][-1]["version"],
            "pr": pr,
            "window": ["2026-11-01T00:00:00Z", "2026-11-29T00:00:00Z"],
        },
        {
            "kind": "monitor",
            "at": "2026-11-21T09:00:00Z",
            "status": "cannot_tell",
            "headline": "cannot tell (n=12; needs about 180 to see a 5-point drop)",
            "version": None,
            "pr": None,
            "window": ["2026-11-14T00:00:00Z", "2026-11-21T00:00:00Z"],
        },
    ]
    triage["production"] = [
        {
            "run_id": "prod-1",
            "window_start": "2026-11-14T00:00:00Z",
            "window_end": "2026-11-21T00:00:00Z",
            "version_key": key,
            "judged": 400,
            "passed": 352,
            "pass_rate": 0.88,
            "pass_rate_ci": [0.845, 0.91],
        }
    ]
    view = dashboard.page(doc)
    p = view.prompts[0]
    assert [(c.kind, c.status, c.status_word, c.pr) for c in p.checks] == [
        ("verify", "drop", "drop", f"#{pr}"),
        ("monitor", "cannot_tell", "cannot tell", "—"),
    ]
    shipped = [v for v in p.verdicts if v.pr == f"#{pr}"]
    assert [(v.after, v.after_status) for v in shipped] == [("drop", "drop")] * len(shipped)
    assert all(v.after == "" for v in p.verdicts if v.pr != f"#{pr}")
    assert p.pass_chart is not None
    squares = [s for s in p.pass_chart.shapes if isinstance(s, Rect) and s.cls.startswith("prod ")]
    assert len(squares) == 1
    assert "production window to 2026-11-21 00:00 · version" in squares[0].title
    page = dashboard.render(doc)
    assert "verify: drop" in page
    assert "cannot tell (n=12; needs about 180 to see a 5-point drop)" in page
