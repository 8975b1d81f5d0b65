"""The HTML report: pure rendering checks, then the page itself in headless Chromium.

The browser tests load the page from a `file://` URL in Debian's `chromium`,
driven by Playwright (never a browser Playwright downloads). They skip only
when no `chromium` binary is on PATH; `.ci/run` installs it, so CI runs them.
The regressed-case view is saved as a screenshot under the test's tmp_path
and copied to `reports/html-regressed.png` (git-ignored; CI keeps it).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_evals.gate import GateReport, PairReport, gate_unchanged
from agent_evals.integrity import Finding
from agent_evals.models import GatePolicy
from agent_evals.report import html
from agent_evals.report._common import DIFF_TOKENS, word_diff
from agent_evals.report.html import script_json
from tests.chromium import Collect as _Collect
from tests.chromium import LoadedPage, browser
from tests.test_reports import new_pair, pair, record

REPO = Path(__file__).resolve().parents[1]
__all__ = ["browser"]
ADVERSARIAL = "</script><script>alert(1)</script><img src=x onerror=\"fetch('http://127.0.0.1:9/leak')\">"
EVIL_ID = "evil-</script><img src=x onerror=alert(2)>"
EVIL_TAG = "</option><script>alert(3)</script>"
POLICY = GatePolicy(critical=("refund",), max_regressions=1, max_error_rate=0.5)


def _request(system: str, user: str) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}


BASE_SYSTEM = "You triage support tickets. Answer with one label."
CAND_SYSTEM = "You triage support tickets quickly. Answer with exactly one label."


def _scenario() -> GateReport:
    """Regressed, fixed, failing, errored and needs-review cases, and adversarial text."""

    def case(cid: str, status: str, system: str, **kw: Any) -> tuple[str, str, dict[str, Any]]:
        kw.setdefault("request", _request(system, f"ticket {cid}"))
        return (cid, status, kw)

    base = [
        case(
            "refund-1",
            "pass",
            BASE_SYSTEM,
            tags=("refund", "email"),
            output="The customer wants a refund for order 1234.",
        ),
        case("refund-2", "pass", BASE_SYSTEM, tags=("refund", "chat")),
        case(EVIL_ID, "pass", BASE_SYSTEM, tags=("billing", EVIL_TAG), output="a plain answer"),
        case("billing-2", "fail", BASE_SYSTEM),
        case("access-1", "pass", BASE_SYSTEM),
        case("access-2", "pass", BASE_SYSTEM),
        case("access-3", "fail", BASE_SYSTEM),
        case("tech-1", "pass", BASE_SYSTEM),
        case("tech-2", "pass", BASE_SYSTEM),
    ]
    cand = [
        case(
            "refund-1",
            "fail",
            CAND_SYSTEM,
            tags=("refund", "email"),
            got="billing",
            output="The customer wants a billing review for order 1234.",
        ),
        case("refund-2", "fail", CAND_SYSTEM, tags=("refund", "chat"), got="account_access"),
        case(
            EVIL_ID, "fail", CAND_SYSTEM, tags=("billing", EVIL_TAG), output=ADVERSARIAL, reason=ADVERSARIAL
        ),
        case("billing-2", "pass", CAND_SYSTEM),
        case("access-1", "pass", CAND_SYSTEM),
        case("access-2", "pass", CAND_SYSTEM, review="judge confidence 0.4 is below min_confidence 0.7"),
        case("access-3", "fail", CAND_SYSTEM),
        case("tech-1", "error", CAND_SYSTEM),
        case("tech-2", "pass", CAND_SYSTEM),
    ]
    return GateReport(
        pairs=(pair(record(base, run_id="base"), record(cand, run_id="cand", version="2"), POLICY),),
        base_ref="origin/main",
        merge_base="0123456789abcdef0123456789abcdef01234567",
    )


REGRESSED = {"refund-1", "refund-2", EVIL_ID}
FIXED = {"billing-2"}
FAILING = {"refund-1", "refund-2", EVIL_ID, "access-3"}
ERRORS = {"tech-1"}
REVIEW = {"access-2"}


def _big_report(n: int = 2_000) -> GateReport:
    system = "You are a careful support triage assistant. " * 10
    base = [
        (
            f"case-{i:04d}",
            "pass" if i % 7 else "fail",
            {
                "tags": (f"t{i % 12}",),
                "output": f"Case {i}: the answer is alpha beta gamma.",
                "request": _request(system, f"ticket {i}"),
            },
        )
        for i in range(n)
    ]
    cand = [
        (
            f"case-{i:04d}",
            "pass" if i % 9 else "fail",
            {
                "tags": (f"t{i % 12}",),
                "output": f"Case {i}: the answer is alpha delta gamma.",
                "request": _request(system, f"ticket {i}"),
            },
        )
        for i in range(n)
    ]
    return GateReport(pairs=(pair(record(base, run_id="b"), record(cand, run_id="c"), GatePolicy()),))


def _many_pairs() -> GateReport:
    """What `ci` gates on a branch: a modified pair, a new one, and a deleted eval set."""
    modified = _scenario().pairs[0]
    new = new_pair(
        record(
            [("faq-1", "pass"), ("faq-2", "fail"), ("faq-3", "pass")],
            run_id="faq",
            prompt_id="faq",
            evalset_id="faq",
        ),
        GatePolicy(min_pass_rate=0.9),
    )
    note = "eval set 'legacy' is deleted in this change"
    finding = Finding("evalset_deleted", "evalset", "legacy", "deleted")
    deleted = PairReport(
        prompt_id="-",
        evalset_id="legacy",
        change="deleted",
        verdict=gate_unchanged(note, GatePolicy(), [finding], False),
        note=note,
    )
    return GateReport(pairs=(modified, new, deleted), base_ref="origin/main")


# --- pure: the diff, the JSON, the document ------------------------------------------------------


def _side_text(ops: list[tuple[str, str]], keep: str) -> str:
    return "".join(text for op, text in ops if op in ("=", keep))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The customer wants a refund.", "The customer wants a billing review."),
        ('{"label": "refund"}', '{"label": "billing"}'),
        ("", "new text"),
        ("old text", ""),
        ("same", "same"),
        ("line one\nline two\n", "line one\nline 2\nline three\n"),
    ],
)
def test_word_diff_rebuilds_both_texts(a: str, b: str) -> None:
    ops = word_diff(a, b)
    assert _side_text(ops, "-") == a
    assert _side_text(ops, "+") == b


def test_word_diff_marks_changed_words_only() -> None:
    ops = word_diff(
        "The customer wants a refund for order 1234.", "The customer wants a billing review for order 1234."
    )
    assert ops == [
        ("=", "The customer wants a "),
        ("-", "refund"),
        ("+", "billing review"),
        ("=", " for order 1234."),
    ]


def test_word_diff_joins_a_run_of_changed_words() -> None:
    # Three changed words with kept spaces between read as one change, as git --word-diff shows it.
    assert word_diff("say a b c now", "say x y z now") == [
        ("=", "say "),
        ("-", "a b c"),
        ("+", "x y z"),
        ("=", " now"),
    ]


def test_word_diff_matches_lines_first_in_long_texts() -> None:
    a = "\n".join(f"line {i} stays" for i in range(3_000))
    b = a.replace("line 1500 stays", "line 1500 changed")
    ops = word_diff(a, b)
    assert [op for op in ops if op[0] != "="] == [("-", "stays"), ("+", "changed")]
    assert _side_text(ops, "-") == a
    assert _side_text(ops, "+") == b


def test_word_diff_falls_back_to_the_lines_when_changed_lines_are_too_long() -> None:
    # One changed line of more than DIFF_TOKENS words: matched whole, not word by word (quadratic).
    a = "keep\n" + " ".join(f"w{i}" for i in range(DIFF_TOKENS)) + "\nend"
    b = "keep\n" + " ".join(f"w{i}" for i in range(DIFF_TOKENS, 0, -1)) + "\nend"
    ops = word_diff(a, b)
    assert ops[0] == ("=", "keep\n")
    assert ops[1] == ("-", a.splitlines(keepends=True)[1])
    assert ops[2] == ("+", b.splitlines(keepends=True)[1])
    assert ops[3] == ("=", "end")


def test_script_json_cannot_close_its_script_element() -> None:
    data = {"output": ADVERSARIAL, "amp": "a & b", "ls": "\u2028"}
    text = str(script_json(data))
    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert "\u2028" not in text
    assert json.loads(text) == data


def test_page_is_self_contained_and_escapes_untrusted_text() -> None:
    import base64
    import hashlib

    page = html.render(_scenario())
    parser = _Collect()
    parser.feed(page)
    tags = parser.tags
    # Nothing loads from anywhere: no src, no stylesheet link, no URL at all outside the CSP text.
    assert not [t for t in tags if "src" in t[1]]
    assert [t[1] for t in tags if t[0] == "link"] == [{"rel": "icon", "href": "data:,"}]
    assert not re.search(r"https?://", page.replace("http://127.0.0.1:9/leak", ""))
    # Exactly the two scripts of the page: the data (not executed) and the explorer, pinned by hash.
    scripts = [t[1] for t in tags if t[0] == "script"]
    assert scripts == [{"type": "application/json", "id": "report-data"}, {}]
    csp = next(
        t[1]["content"]
        for t in tags
        if t[0] == "meta" and t[1].get("http-equiv") == "Content-Security-Policy"
    )
    assert csp is not None
    assert "default-src 'none'" in csp
    explorer = parser.scripts[-1]
    digest = base64.b64encode(hashlib.sha256(explorer.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    # The adversarial output, id and tag never appear as markup.
    assert "<img" not in page
    assert "<script>alert" not in page
    assert "</option><script>" not in page
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page  # the id in a rule chip, as text
    data = json.loads(parser.scripts[0])
    ids = [c["id"] for c in data["pairs"][0]["cases"]]
    assert EVIL_ID in ids


def test_case_data_carries_flags_diff_and_prompt_changes() -> None:
    page = html.page(_scenario())
    data = json.loads(str(page.data))
    cases = {c["id"]: c for c in data["pairs"][0]["cases"]}

    def flagged(flag: str) -> set[str]:
        return {cid for cid, c in cases.items() if flag in c["flags"]}

    assert flagged("regressed") == REGRESSED
    assert flagged("fixed") == FIXED
    assert flagged("failing") == FAILING
    assert flagged("errors") == ERRORS
    assert flagged("review") == REVIEW
    refund = cases["refund-1"]
    assert ["-", "refund"] in refund["diff"]
    assert ["+", "billing review"] in refund["diff"]
    # The system prompt changed: its word diff is stored once for every case that shares it.
    strings = data["pairs"][0]["strings"]
    assert strings.count(CAND_SYSTEM) == 1
    (ops,) = data["pairs"][0]["promptDiffs"].values()
    assert [op for op in ops if op[0] != "="] == [["+", " quickly"], ["+", "exactly "]]


def test_single_run_view_has_no_baseline_filters() -> None:
    cand = record([("a-1", "pass"), ("a-2", "fail"), ("a-3", "error")], run_id="solo")
    page = html.page(html.run_report(cand, GatePolicy(max_error_rate=0.5)))
    (view,) = page.pairs
    assert [f for f, _ in view.filters] == ["all", "failing", "errors", "review"]
    assert not view.paired
    assert page.status == "pass"
    assert page.headline == "single run: pass rate 50.0% (1 of 2 judged cases), 1 error"
    # Under the default policy a third of the cases erroring means the run cannot be judged.
    strict = html.page(html.run_report(cand))
    assert strict.status == "error"
    assert strict.headline.startswith("could not evaluate: candidate: 1/3 cases could not be evaluated")
    text = html.render_run(cand)
    assert "no baseline" in text
    assert "Pass rate per grader" in text


def test_two_thousand_cases_render_quickly_and_compactly() -> None:
    report = _big_report()
    start = time.perf_counter()
    page = html.render(report)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"render took {elapsed:.1f}s"
    assert len(page) < 4_000_000
    # The shared system prompt is stored once, not 4,000 times.
    assert page.count("You are a careful support triage assistant.") == 10


def test_many_pairs_each_get_a_section() -> None:
    page = html.page(_many_pairs())
    assert [(v.name, v.change, v.status, v.case_count) for v in page.pairs] == [
        ("triage/triage", "modified", "fail", 9),
        ("faq/faq", "new: no baseline", "fail", 3),
        ("-/legacy", "deleted", "fail", 0),
    ]
    assert page.headline == "agent-evals gate FAILED: 3 failed of 3 prompt/eval set pair(s)"
    text = html.render(_many_pairs())
    # A pair with no cases has no case list; the others one each.
    assert text.count('<section class="explorer"') == 2
    assert "eval set &#39;legacy&#39; is deleted in this change" in text


def test_judge_agreement_is_shown_like_the_pr_comment() -> None:
    from dataclasses import replace

    from agent_evals.calibrate import Calibration

    def judge(name: str, agreement: float, warnings: tuple[str, ...] = ()) -> Calibration:
        return Calibration(
            grader=name,
            n=25,
            tn=5,
            fp=2,
            fn=1,
            tp=17,
            agreement=agreement,
            agreement_ci=None,
            kappa=0.41,
            sensitivity=None,
            specificity=None,
            judged=40,
            judge_passed=30,
            corrected_pass_rate=0.7,
            corrected_note=None,
            warnings=warnings,
        )

    scenario = _scenario()
    calibrated = replace(
        scenario.pairs[0],
        calibrations=(judge("tone", 0.88), judge("<b>style</b>", 0.6, ("judge agrees on only 60% <b>",))),
    )
    (view,) = html.page(GateReport(pairs=(calibrated,))).pairs
    assert [(j.grader, j.warn, j.lines) for j in view.judges] == [
        (
            "tone",
            False,
            (
                "judge tone agrees with people on 88% of 25 cases, kappa 0.41",
                "pass rate corrected for the judge's errors: 70.0% (the judge passed 75.0%)",
            ),
        ),
        (
            "<b>style</b>",
            True,
            (
                "judge agrees on only 60% <b>",
                "pass rate corrected for the judge's errors: 70.0% (the judge passed 75.0%)",
            ),
        ),
    ]
    text = html.render(GateReport(pairs=(calibrated,)))
    assert "Judge agreement with people" in text
    assert "<code>&lt;b&gt;style&lt;/b&gt;</code>: judge agrees on only 60% &lt;b&gt;" in text


# --- in the browser --------------------------------------------------------------------------------


class Page(LoadedPage):
    """One loaded report page, with everything it logged and asked for."""

    def rows(self) -> list[str]:
        ids: list[str] = self.page.eval_on_selector_all(
            "section.explorer tbody tr.case-row", "rows => rows.map(r => r.dataset.caseId)"
        )
        return ids

    def status(self) -> str:
        return str(self.page.text_content("section.explorer .case-status"))

    def click_filter(self, name: str) -> None:
        self.page.click(f'section.explorer button[data-filter="{name}"]')


@pytest.fixture
def report_page(browser: Any, tmp_path: Path) -> Iterator[Page]:
    path = tmp_path / "report.html"
    path.write_text(html.render(_scenario()), encoding="utf-8")
    page = Page(browser, path)
    yield page
    page.close()


def test_page_loads_with_no_console_errors_and_no_requests(report_page: Page) -> None:
    p = report_page
    p.click_filter("regressed")
    # Open every regressed case: the adversarial output is now on screen, and still loads nothing.
    for row in p.page.query_selector_all("tr.case-row"):
        row.click()
    p.page.wait_for_timeout(200)
    assert p.errors == []
    assert [m for m in p.console if m[0] in ("error", "warning")] == []
    assert p.requests == [p.url]
    assert p.dialogs == []
    assert p.page.query_selector_all("img") == []
    assert p.page.eval_on_selector_all("script", "s => s.length") == 2
    cand_output = p.page.text_content(f'tr.detail[data-detail-of="{EVIL_ID}"] pre.out-cand')
    assert cand_output == ADVERSARIAL


def test_filters_change_the_visible_rows(report_page: Page) -> None:
    p = report_page
    assert len(p.rows()) == 9
    assert p.status() == "9 of 9 cases"
    for name, expected in (
        ("regressed", REGRESSED),
        ("fixed", FIXED),
        ("failing", FAILING),
        ("errors", ERRORS),
        ("review", REVIEW),
    ):
        p.click_filter(name)
        assert set(p.rows()) == expected, name
        assert len(p.rows()) == len(expected)
        assert p.status() == f"{len(expected)} of 9 cases"
        pressed = p.page.get_attribute(f'button[data-filter="{name}"]', "aria-pressed")
        assert pressed == "true"
        count = p.page.text_content(f'button[data-filter="{name}"] .count')
        assert count == str(len(expected))
    p.click_filter("all")
    p.page.select_option("select.tag-filter", "refund")
    assert set(p.rows()) == {"refund-1", "refund-2"}
    assert p.page.text_content('button[data-filter="regressed"] .count') == "2"
    p.page.select_option("select.tag-filter", EVIL_TAG)
    assert p.rows() == [EVIL_ID]
    p.page.select_option("select.tag-filter", "")
    assert len(p.rows()) == 9


def test_search_filters_by_id_tag_and_output(report_page: Page) -> None:
    p = report_page
    p.page.fill("input.search", "refund-2")
    assert p.rows() == ["refund-2"]
    assert p.status() == "1 of 9 cases"
    p.page.fill("input.search", "chat")  # a tag
    assert p.rows() == ["refund-2"]
    p.page.fill("input.search", "billing review")  # words of an output
    assert p.rows() == ["refund-1"]
    p.page.fill("input.search", "onerror")
    assert p.rows() == [EVIL_ID]
    p.page.fill("input.search", "no such thing")
    assert p.rows() == []
    assert p.page.text_content("section.explorer tbody") == "No case matches."
    p.page.fill("input.search", "")
    assert len(p.rows()) == 9


def test_an_opened_case_shows_the_word_diff_reasons_and_prompt(report_page: Page) -> None:
    p = report_page
    p.page.fill("input.search", "refund-1")
    p.page.click('tr.case-row[data-case-id="refund-1"]')
    detail = 'tr.detail[data-detail-of="refund-1"]'
    assert (
        p.page.get_attribute('tr.case-row[data-case-id="refund-1"] button.toggle', "aria-expanded") == "true"
    )
    assert p.page.eval_on_selector_all(
        f"{detail} pre.out-base del", "els => els.map(e => e.textContent)"
    ) == ["refund"]
    assert p.page.eval_on_selector_all(
        f"{detail} pre.out-cand ins", "els => els.map(e => e.textContent)"
    ) == ["billing review"]
    assert p.page.text_content(f"{detail} pre.out-base") == "The customer wants a refund for order 1234."
    assert (
        p.page.text_content(f"{detail} pre.out-cand") == "The customer wants a billing review for order 1234."
    )
    grades = str(p.page.text_content(f"{detail} table.grades"))
    assert "label: expected 'refund', got 'billing'" in grades
    assert "label matches" in grades
    p.page.click(f"{detail} details.prompt summary")
    prompt_ins = p.page.eval_on_selector_all(
        f"{detail} details.prompt ins", "els => els.map(e => e.textContent)"
    )
    assert any("quickly" in t for t in prompt_ins)
    # Clicking the row again closes it.
    p.page.click('tr.case-row[data-case-id="refund-1"]')
    assert p.page.query_selector(detail) is None


def test_a_case_named_by_a_failed_rule_opens_in_the_list(report_page: Page) -> None:
    p = report_page
    p.page.click('.callout.fail button.case-link[data-case="refund-2"] >> nth=0')
    assert p.rows() == ["refund-2"]
    assert p.page.query_selector('tr.detail[data-detail-of="refund-2"]') is not None


def test_screenshot_of_the_regressed_view(report_page: Page, tmp_path: Path) -> None:
    p = report_page
    p.click_filter("regressed")
    p.page.click('tr.case-row[data-case-id="refund-1"]')
    shot = tmp_path / "html-regressed.png"
    p.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep = REPO / "reports" / "html-regressed.png"
    keep.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, keep)


def test_two_thousand_cases_stay_usable(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "big.html"
    path.write_text(html.render(_big_report()), encoding="utf-8")
    start = time.perf_counter()
    p = Page(browser, path)
    try:
        loaded = time.perf_counter() - start
        assert loaded < 10, f"load took {loaded:.1f}s"
        assert p.errors == []
        assert p.requests == [p.url]
        # Only a page of rows is drawn; "show more" draws the next.
        assert len(p.rows()) == html.PAGE_ROWS
        assert p.status() == f"2,000 of 2,000 cases · showing the first {html.PAGE_ROWS}"
        p.page.click("section.explorer button.more")
        assert len(p.rows()) == 2 * html.PAGE_ROWS
        start = time.perf_counter()
        p.page.fill("input.search", "case-1999")
        assert p.rows() == ["case-1999"]
        assert time.perf_counter() - start < 2
        p.page.fill("input.search", "")
        p.click_filter("regressed")
        regressed = {f"case-{i:04d}" for i in range(2_000) if i % 7 and not i % 9}
        assert p.status() == f"{len(regressed):,} of 2,000 cases · showing the first {html.PAGE_ROWS}"
        assert len(p.rows()) == html.PAGE_ROWS
        p.page.click("section.explorer button.more")
        assert set(p.rows()) == regressed
        assert p.page.is_hidden("section.explorer button.more")
    finally:
        p.close()


def test_each_pair_has_its_own_case_list(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "pairs.html"
    path.write_text(html.render(_many_pairs()), encoding="utf-8")
    p = Page(browser, path)
    try:
        assert p.errors == []
        assert p.requests == [p.url]
        assert [m for m in p.console if m[0] in ("error", "warning")] == []
        first, second = "#pair-0 section.explorer", "#pair-1 section.explorer"
        p.page.click(f'{second} button[data-filter="failing"]')
        rows = p.page.eval_on_selector_all(f"{second} tr.case-row", "rs => rs.map(r => r.dataset.caseId)")
        assert rows == ["faq-2"]
        assert p.page.query_selector(f'{second} button[data-filter="regressed"]') is None
        assert len(p.page.query_selector_all(f"{first} tr.case-row")) == 9
        assert p.page.query_selector("#pair-2 section.explorer") is None
    finally:
        p.close()
