"""The gate reporters: Markdown (PR comment), JUnit, JSON and the terminal.

Reports are built from synthetic run records through the real `diff` and
`gate`, never from the bundled example (its data gets re-tuned). Markdown,
JUnit and JSON are compared with golden files under tests/golden/; after an
intended change, regenerate them with `UPDATE_GOLDENS=1 pytest tests/test_reports.py`
and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped
from rich.console import Console

from agent_evals.diff import diff
from agent_evals.gate import GateReport, PairReport, RuleResult, Verdict, gate, gate_absolute
from agent_evals.integrity import Finding
from agent_evals.models import GatePolicy
from agent_evals.record import CaseResult, GradeRecord, RunEnd, RunHeader, RunRecord, Usage
from agent_evals.report import json_report, junit, markdown
from agent_evals.report.terminal import change_lines, print_gate

GOLDEN = Path(__file__).parent / "golden"

# --- building run records -----------------------------------------------------------

Spec = tuple[str, str] | tuple[str, str, dict[str, Any]]


def result(index: int, case_id: str, status: str, **kw: Any) -> CaseResult:
    """One case result with plausible defaults for its status; `kw` overrides any field.

    Extra keys: `label` (the expected label), `got` (the label a failing output gives),
    `reason` (the label grader's reason), `tone` (whether the second grader passes),
    `review` (why the tone grade needs human review, if it does).
    """
    tags = tuple(kw.pop("tags", (case_id.split("-")[0],)))
    label = kw.pop("label", tags[0] if tags else "other")
    got = kw.pop("got", "other")
    tone = kw.pop("tone", True)
    review = kw.pop("review", None)
    reason = kw.pop(
        "reason", "label matches" if status == "pass" else f"label: expected {label!r}, got {got!r}"
    )
    judged = status in ("pass", "fail")
    grades = (
        (
            GradeRecord(
                grader="label",
                type="exact_match",
                score=1.0 if status == "pass" else 0.0,
                passed=status == "pass",
                reason=reason,
            ),
            GradeRecord(
                grader="tone",
                type="rubric",
                score=1.0 if tone else 0.5,
                passed=tone,
                reason="all 2 criteria hold" if tone else "1 of 2 criteria hold: too long",
                needs_review=review is not None,
                details={} if review is None else {"review_reason": review},
            ),
        )
        if judged
        else ()
    )
    fields: dict[str, Any] = {
        "index": index,
        "case_id": case_id,
        "status": status,
        "score": (1.0 if status == "pass" else 0.25) if judged else None,
        "passed": status == "pass" if judged else None,
        "tags": tags,
        "expected": {"label": label},
        "output": json.dumps({"label": label if status == "pass" else got}) if judged else None,
        "grades": grades,
        "latency_ms": 100.0 + 10 * index if status != "skipped" else None,
        "usage": Usage(input_tokens=120, output_tokens=8) if status != "skipped" else None,
        "cost_usd": 0.0012 if status != "skipped" else None,
        "attempts": 1,
        "error": "provider error: timed out after 60s" if status == "error" else None,
    }
    fields.update(kw)
    return CaseResult(**fields)


def record(
    cases: Sequence[Spec],
    *,
    run_id: str = "base",
    prompt_id: str = "triage",
    evalset_id: str = "triage",
    version: str = "1",
    end: str | None = "complete",
    repeats: int = 1,
) -> RunRecord:
    """A run record from `(case_id, status[, overrides])`; repeated ids become repeats.

    Made with `--repeat {repeats}`; runs marked `confirm` are the confirmation runs `ci` adds after them.
    """
    results = []
    seen: dict[str, int] = {}
    order: dict[str, int] = {}
    for spec in cases:
        case_id, status = spec[0], spec[1]
        kw = dict(spec[2]) if len(spec) == 3 else {}
        index = order.setdefault(case_id, len(order))
        repeat = seen[case_id] = seen.get(case_id, -1) + 1
        if repeat == 1 and kw.pop("confirm", False):
            repeat = seen[case_id] = repeats  # the first confirmation run comes after the design runs
        kw.pop("confirm", None)
        results.append(result(index, case_id, status, repeat=repeat, **kw))
    header = RunHeader(
        run_id=f"20260101T000000Z-{run_id}",
        started_at="2026-01-01T00:00:00.000Z",
        tool_version="0.1.0",
        prompt={"id": prompt_id, "version": version, "hash": f"sha256:{run_id}"},
        evalset={"id": evalset_id, "hash": "sha256:cases", "cases": len(order)},
        provider={"name": "openai", "model": "gpt-test", "params": {"temperature": 0}},
        options={"repeat": repeats},
    )
    run_end = (
        RunEnd.model_validate({"status": end, "finished_at": "2026-01-01T00:01:00.000Z"}) if end else None
    )
    return RunRecord(path=f"runs/{run_id}.jsonl", header=header, cases=tuple(results), end=run_end)


def pair(
    base: RunRecord, cand: RunRecord, policy: GatePolicy, findings: Sequence[Finding] = ()
) -> PairReport:
    d = diff(base, cand)
    return PairReport(
        prompt_id=cand.header.prompt["id"],
        evalset_id=cand.header.evalset["id"],
        change="modified",
        verdict=gate(d, policy, findings=findings),
        cand=cand,
        diff=d,
        evalset_path=f"evalsets/{cand.header.evalset['id']}.yaml",
    )


def new_pair(cand: RunRecord, policy: GatePolicy) -> PairReport:
    return PairReport(
        prompt_id=cand.header.prompt["id"],
        evalset_id=cand.header.evalset["id"],
        change="new",
        verdict=gate_absolute(cand, policy),
        cand=cand,
        evalset_path=f"evalsets/{cand.header.evalset['id']}.yaml",
    )


# --- the scenarios ------------------------------------------------------------------------

DESIGN_REPEATS = 2
# general-1's repeats disagree, so outputs vary: a single pass -> fail is not evidence by itself.
# `ci` re-ran the three cases that went pass -> fail four more times on each side (runs 2-5),
# and they held: passing every baseline run, failing every candidate run.
CONFIRMED = ("refund-1", "refund-2", "billing-1")


def _confirmations(side: str) -> list[Spec]:
    status = "pass" if side == "base" else "fail"
    return [(c, status, {"confirm": True}) for c in CONFIRMED for _ in range(4)]


BASE_CASES: list[Spec] = [
    ("refund-1", "pass", {"tags": ("refund", "email")}),
    ("refund-2", "pass", {"tags": ("refund", "chat")}),
    ("billing-1", "pass"),
    ("billing-2", "fail"),
    ("access-1", "pass"),
    ("access-2", "pass"),
    ("access-3", "fail"),
    ("tech-1", "pass"),
    ("tech-2", "pass"),
    ("general-1", "pass"),
    ("general-1", "pass"),
    ("old-1", "pass"),
    *_confirmations("base"),
]
CAND_CASES: list[Spec] = [
    ("refund-1", "fail", {"tags": ("refund", "email"), "got": "billing", "tone": False}),
    ("refund-2", "fail", {"tags": ("refund", "chat"), "got": "account_access"}),
    ("billing-1", "fail", {"got": "refund"}),
    ("billing-2", "pass"),
    ("access-1", "pass"),
    ("access-2", "pass", {"review": "judge confidence 0.4 is below min_confidence 0.7"}),
    ("access-3", "fail"),
    ("tech-1", "error"),
    ("tech-2", "pass"),
    ("general-1", "pass"),
    ("general-1", "fail"),
    ("new-1", "fail"),
    *_confirmations("cand"),
]
FAIL_POLICY = GatePolicy(critical=("refund",), max_regressions=2, max_error_rate=0.2)


def fail_report() -> GateReport:
    base = record(BASE_CASES, run_id="base", repeats=DESIGN_REPEATS)
    cand = record(CAND_CASES, run_id="cand", version="2", repeats=DESIGN_REPEATS)
    return GateReport(
        pairs=(pair(base, cand, FAIL_POLICY),),
        base_ref="origin/main",
        merge_base="0123456789abcdef0123456789abcdef01234567",
    )


PASS_BASE: list[Spec] = [
    ("refund-1", "pass"),
    ("refund-2", "pass"),
    ("billing-1", "fail"),
    ("billing-2", "pass"),
    ("access-1", "fail"),
]
PASS_CAND: list[Spec] = [
    ("refund-1", "pass"),
    ("refund-2", "pass"),
    ("billing-1", "pass"),
    ("billing-2", "pass"),
    ("access-1", "fail"),
]


def pass_report() -> GateReport:
    base = record(PASS_BASE, run_id="base")
    cand = record(PASS_CAND, run_id="cand", version="2")
    summarize = record(
        [
            ("short-1", "pass"),
            ("long-1", "pass"),
            ("long-2", "fail", {"reason": "summary: 52 words > 40"}),
        ],
        run_id="sum",
        prompt_id="summarize",
        evalset_id="summaries",
    )
    return GateReport(
        pairs=(
            pair(base, cand, GatePolicy()),
            new_pair(summarize, GatePolicy(min_pass_rate=0.5)),
        ),
        base_ref="origin/main",
        merge_base="0123456789abcdef0123456789abcdef01234567",
    )


FINDINGS = (
    Finding("policy_loosened", "min_pass_rate", "0.9", "0.8"),
    Finding("cases_removed", "cases", "6 cases", "5 cases", ("refund-3",)),
    Finding("expected_changed", "expected", "as at base", "edited", ("billing-1", "access-1")),
)


def findings_report() -> GateReport:
    base = record(PASS_BASE, run_id="base")
    cand = record(PASS_CAND, run_id="cand", version="2")
    return GateReport(pairs=(pair(base, cand, GatePolicy(), FINDINGS),), base_ref="origin/main")


ADVERSARIAL_OUTPUT = (
    "[red]boom[/red] Sure! ```json\n{}\n```\n"
    "````\n</details>\n</summary>\n<details><summary>pwned</summary>\n"
    "| a | b |\n|---|---|\n<script>alert(1)</script>\n@octocat ~~~\n"
)
WEIRD_ID = "weird|`id`<b>&"


def adversarial_report() -> GateReport:
    nasty: dict[str, Any] = {
        "tags": ("x|y", "<i>"),
        "output": ADVERSARIAL_OUTPUT,
        "reason": "label: </details> <script>x</script> | @admin `tick`",
        "expected": "</summary></details>```",
    }
    base = record([(WEIRD_ID, "pass", {"tags": ("x|y", "<i>")}), ("ok", "pass")], run_id="base")
    cand = record([(WEIRD_ID, "fail", nasty), ("ok", "pass")], run_id="cand")
    return GateReport(pairs=(pair(base, cand, GatePolicy(critical=("x|y",))),))


# --- helpers ----------------------------------------------------------------------------------


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDENS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert path.is_file(), f"no golden file {path}; create it with UPDATE_GOLDENS=1"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} differs from its golden file; if the change is intended, re-run with UPDATE_GOLDENS=1"
    )


def to_html(md: str) -> str:
    return str(cmarkgfm.github_flavored_markdown_to_html(md, options=cmarkgfm.Options.CMARK_OPT_UNSAFE))


class Structure(HTMLParser):
    """Counts the HTML elements that matter and checks `<details>` nests properly."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.counts: dict[str, int] = {}
        self.table_rows: list[int] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "table":
            self.table_rows.append(0)
        if tag == "tr":
            self.table_rows[-1] += 1
        if tag in ("details", "summary", "table", "pre"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("details", "summary", "table", "pre"):
            if not self.open or self.open[-1] != tag:
                self.problems.append(f"</{tag}> closes {self.open[-1] if self.open else 'nothing'}")
            else:
                self.open.pop()


def structure(md: str) -> Structure:
    s = Structure()
    s.feed(to_html(md))
    s.close()
    assert not s.problems, s.problems
    assert not s.open, f"unclosed: {s.open}"
    assert s.counts.get("details", 0) == s.counts.get("summary", 0)
    assert "script" not in s.counts, "raw HTML from an output got through"
    return s


# --- Markdown ----------------------------------------------------------------------------------


def test_markdown_fail_golden() -> None:
    check_golden("gate_fail.md", markdown.render(fail_report()))


def test_markdown_pass_golden() -> None:
    check_golden("gate_pass.md", markdown.render(pass_report()))


def test_markdown_findings_golden() -> None:
    check_golden("gate_findings.md", markdown.render(findings_report()))


def test_markdown_layout_of_a_failed_gate() -> None:
    md = markdown.render(fail_report())
    lines = md.splitlines()
    assert lines[0] == markdown.MARKER
    assert lines[2].startswith("❌ **agent-evals gate FAILED")
    s = structure(md)
    # the summary table (header + 1 pair) and the per-grader/per-tag table (header + overall + 2 graders + 7 paired tags)
    assert s.table_rows == [2, 1 + 1 + 2 + 7]
    # groups, regressed (and the full outputs of each of its 3 cases), errored, fixed, new, removed,
    # still failing, flaky, needs human review
    assert s.counts["details"] == 9 + 3
    html = to_html(md)
    regressed = html.split("<summary>3 regressed cases</summary>")[1].split("<summary>1 errored case")[0]
    assert re.findall(r"<h4><code>([^<]+)</code></h4>", regressed) == ["refund-1", "refund-2", "billing-1"]
    # each regressed case: the changed field first, then expected, baseline output and candidate output
    # in full (JSON indented) behind a summary, and why the graders failed it
    assert regressed.count("<pre") == 9
    assert regressed.count("<summary>Expected and both outputs in full</summary>") == 3
    assert "<li><code>label</code>: <code>refund</code> → <code>billing</code></li>" in regressed
    assert regressed.index("<code>billing</code></li>") < regressed.index("Expected and both outputs")
    assert "{\n  &quot;label&quot;: &quot;billing&quot;\n}" in regressed
    assert "<strong>label</strong>: expected 'refund', got 'billing'" in regressed
    assert "1 of 2 criteria hold: too long" in regressed
    assert "<summary>1 errored case</summary>" in html
    assert "provider error: timed out after 60s" in html
    assert "<summary>1 fixed case</summary>" in html
    assert "<summary>1 flaky case</summary>" in html
    assert "critical refund" in md
    assert "Power:" in md


def test_markdown_new_pair_has_no_baseline_columns() -> None:
    md = markdown.render(pass_report())
    row = next(line for line in md.splitlines() if line.startswith("| `summarize`"))
    assert "new" in row
    assert "— → 66.7%" in row
    s = structure(md)
    assert s.table_rows[0] == 3
    assert "<summary>1 failing case</summary>" in to_html(md)


def test_markdown_findings_come_before_the_summary_table() -> None:
    md = markdown.render(findings_report())
    warning = md.index("> [!WARNING]")
    table = md.index("| prompt / eval set |")
    assert md.index("❌ **agent-evals gate FAILED") < warning < table
    head = md[warning:table]
    assert "`min_pass_rate` `0.9` → `0.8`" in head
    assert "`cases` `6 cases` → `5 cases`; cases: `refund-3`" in head
    assert "`expected` `as at base` → `edited`; cases: `billing-1`, `access-1`" in head
    assert "--accept-policy-change" in head
    structure(md)


def test_markdown_adversarial_output_cannot_break_structure() -> None:
    md = markdown.render(adversarial_report())
    s = structure(md)
    html = to_html(md)
    assert s.table_rows[0] == 2
    assert s.counts["details"] == 3  # groups, regressed, the case's full outputs
    assert s.counts["h4"] == 1
    # The output shows verbatim inside a code block, `</details>` and all.
    blocks = re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", html, flags=re.S)
    assert any("&lt;/details&gt;" in b and "```" in b and "&lt;script&gt;" in b for b in blocks)
    assert any("</summary></details>```" in b.replace("&lt;", "<").replace("&gt;", ">") for b in blocks)
    # A `|` in a tag stays inside its table cell; the case id shows verbatim; the reason is escaped text.
    assert "<td>tag <code>x|y</code></td>" in html
    assert "<code>weird|`id`&lt;b&gt;&amp;</code>" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    # No @-mention of whoever an output or reason names.
    assert "@admin" not in html.replace("@\u200b", "@ ")


def test_markdown_stays_under_the_limit_with_thousands_of_regressions() -> None:
    n = 3_000
    base = record([(f"case-{i:04d}", "pass", {"tags": ("refund",)}) for i in range(n)], run_id="base")
    long = "x" * 900 + " ``` </details> "
    cand = record(
        [(f"case-{i:04d}", "fail", {"tags": ("refund",), "output": long + str(i)}) for i in range(n)],
        run_id="cand",
    )
    removed = tuple(f"gone-{i}" for i in range(2_000))
    findings = (Finding("cases_removed", "cases", "5000 cases", "3000 cases", removed),)
    report = GateReport(pairs=(pair(base, cand, GatePolicy(critical=("refund",)), findings),))
    for limit in (60_000, 20_000):
        md = markdown.render(report, limit=limit)
        assert len(md) <= limit
        assert f"truncated to stay under {limit:,} characters; full report in the JSON/JUnit artifacts" in md
        assert md.startswith(markdown.MARKER + "\n\n❌ **agent-evals gate FAILED")
        assert md.index("> [!WARNING]") < md.index("| prompt / eval set |")
        s = structure(md)
        assert s.table_rows[0] == 2
        html = to_html(md)
        assert "<summary>3,000 regressed cases</summary>" in html
        assert "<h4><code>case-0000</code></h4>" in html
        assert "more regressed cases" in html


def test_markdown_many_pairs_keep_the_verdict_and_table() -> None:
    pairs = []
    for k in range(40):
        base = record([(f"c{i}", "pass") for i in range(30)], run_id=f"b{k}", evalset_id=f"set-{k}")
        cand = record(
            [(f"c{i}", "fail" if i % 2 else "pass") for i in range(30)], run_id=f"c{k}", evalset_id=f"set-{k}"
        )
        pairs.append(pair(base, cand, GatePolicy()))
    report = GateReport(pairs=tuple(pairs))
    md = markdown.render(report, limit=30_000)
    assert len(md) <= 30_000
    s = structure(md)
    assert s.table_rows[0] == 41
    # Too small for even the table: the verdict and the note stay.
    tiny = markdown.render(report, limit=3_000)
    assert len(tiny) <= 3_000
    assert tiny.startswith(markdown.MARKER + "\n\n❌ **agent-evals gate FAILED: 40 failed")
    assert "truncated to stay under 3,000 characters" in tiny
    structure(tiny)
    with pytest.raises(ValueError, match="too small"):
        markdown.render(report, limit=100)


def test_markdown_could_not_evaluate() -> None:
    base = record(PASS_BASE, run_id="base")
    cand = record(PASS_CAND[:2], run_id="cand", end=None)  # the candidate run died
    md = markdown.render(GateReport(pairs=(pair(base, cand, GatePolicy()),)))
    assert md.splitlines()[2].startswith("⛔ **agent-evals gate COULD NOT EVALUATE")
    assert "⛔ `complete_run`" in md
    structure(md)


def test_markdown_nothing_to_gate() -> None:
    md = markdown.render(GateReport(pairs=(), message="no prompt or eval set changed"))
    assert (
        md
        == f"{markdown.MARKER}\n\n✅ **no prompt or eval set changed**\n\n<sub>agent-evals · full detail in the JSON/JUnit artifacts</sub>\n"
    )


def test_a_pair_without_runs_renders_everywhere() -> None:
    """A pair the gate judged without runs (its eval set was deleted) still shows in every report."""
    finding = Finding("evalset_deleted", "evalset", "evalsets/old.yaml", "deleted")
    verdict = Verdict(
        status="fail",
        headline="gate failed: gate_integrity",
        rules=(RuleResult("gate_integrity", False, f"the change moves the bar: {finding.line()}"),),
        findings=(finding,),
    )
    report = GateReport(
        pairs=(PairReport("old", "old", "modified", verdict, note="the eval set was deleted"),)
    )
    md = markdown.render(report)
    assert "`evalset` `evalsets/old.yaml` → `deleted`" in md
    assert "_the eval set was deleted_" in md
    assert structure(md).table_rows == [2]
    assert _results(junit.render(report)) == {"old/old": {"gate: gate_integrity": "failure"}}
    data = json.loads(json_report.render(report))
    assert data["pairs"][0]["cases"] == []
    assert data["pairs"][0]["runs"] == {"base": None, "cand": None}
    assert "evalset: evalsets/old.yaml -> deleted" in _terminal(report)


def test_markdown_escaping_helpers() -> None:
    assert markdown.code("a`b") == "``a`b``"
    assert markdown.code("`x`") == "`` `x` ``"
    assert markdown.code("a|b", table=True) == "`a\\|b`"
    assert markdown.fence("x ```` y").startswith("`````\n")
    assert markdown.text("<b> & *x* @me") == "&lt;b> &amp; \\*x\\* @&#8203;me"


def test_append_step_summary(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    assert markdown.append_step_summary("# one", environ={}) is None
    assert markdown.append_step_summary("# one", environ={"GITHUB_STEP_SUMMARY": str(target)}) == target
    markdown.append_step_summary("# two\n", environ={"GITHUB_STEP_SUMMARY": str(target)})
    assert target.read_text(encoding="utf-8") == "# one\n\n# two\n\n"


# --- JUnit ----------------------------------------------------------------------------------


def test_junit_fail_golden() -> None:
    check_golden("gate_fail.xml", junit.render(fail_report()))


def test_junit_pass_golden() -> None:
    check_golden("gate_pass.xml", junit.render(pass_report()))


def _results(xml: str) -> dict[str, dict[str, str | None]]:
    """suite -> testcase name -> 'failure' | 'error' | 'skipped' | None."""
    parsed = JUnitXml.fromstring(xml)
    out: dict[str, dict[str, str | None]] = {}
    for suite in parsed:
        cases: dict[str, str | None] = {}
        for case in suite:
            kinds = {Failure: "failure", Error: "error", Skipped: "skipped"}
            found = [kinds[type(r)] for r in case.result if type(r) in kinds]
            assert len(found) <= 1
            cases[case.name] = found[0] if found else None
        out[suite.name] = cases
    return out


def test_junit_failures_are_exactly_the_regressions_and_failed_rules() -> None:
    xml = junit.render(fail_report())
    results = _results(xml)
    assert list(results) == ["triage/triage"]
    cases = results["triage/triage"]
    rules = [name for name in cases if name.startswith("gate: ")]
    assert rules == [
        "gate: max_error_rate (baseline)",
        "gate: max_error_rate (candidate)",
        "gate: significant_regression",
        "gate: critical refund",
        "gate: max_regressions",
        "gate: gate_integrity",  # old-1 ran on the baseline and not on the candidate
    ]
    assert len(cases) == len(rules) + 12  # 11 candidate cases (new-1 among them) + removed old-1
    assert sorted(n for n, r in cases.items() if r == "failure") == sorted(
        [
            "refund-1",
            "refund-2",
            "billing-1",
            "gate: critical refund",
            "gate: max_regressions",
            "gate: gate_integrity",
        ]
    )
    assert [n for n, r in cases.items() if r == "error"] == ["tech-1"]
    assert [n for n, r in cases.items() if r == "skipped"] == ["old-1"]
    # Failing before and after is not this change's failure; nor is a failing new case.
    assert cases["access-3"] is None
    assert cases["new-1"] is None
    suite = next(iter(JUnitXml.fromstring(xml)))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (len(cases), 6, 1, 1)
    by_name = {c.name: c for c in suite}
    assert by_name["refund-1"].classname == "triage"
    assert by_name["refund-1"].time == pytest.approx(0.1)
    assert "still failing" in (by_name["access-3"].system_out or "")
    failure = by_name["refund-1"].result[0]
    assert failure.message.startswith("regressed: label: expected 'refund', got 'billing'")
    assert '--- baseline output\n{"label": "refund"}' in failure.text
    assert '--- candidate output\n{"label": "billing"}' in failure.text


def test_junit_new_pair_gates_only_on_absolute_rules() -> None:
    results = _results(junit.render(pass_report()))
    assert list(results) == ["triage/triage", "summarize/summaries"]
    new = results["summarize/summaries"]
    assert new == {
        "gate: max_error_rate": None,
        "gate: min_pass_rate": None,
        "short-1": None,
        "long-1": None,
        "long-2": None,
    }


def test_junit_integrity_finding_is_a_failed_gate_testcase() -> None:
    xml = junit.render(findings_report())
    cases = _results(xml)["triage/triage"]
    assert cases["gate: gate_integrity"] == "failure"
    suite = next(iter(JUnitXml.fromstring(xml)))
    case = next(c for c in suite if c.name == "gate: gate_integrity")
    assert "min_pass_rate: 0.9 -> 0.8" in case.result[0].message
    assert "cases: refund-3, billing-1, access-1" in case.result[0].text


def test_junit_could_not_evaluate_is_an_error() -> None:
    base = record(PASS_BASE, run_id="base")
    cand = record(PASS_CAND[:2], run_id="cand", end=None)
    cases = _results(junit.render(GateReport(pairs=(pair(base, cand, GatePolicy()),))))["triage/triage"]
    assert cases["gate: complete_run"] == "error"


def test_junit_survives_control_characters_and_markup() -> None:
    report = adversarial_report()
    base = record([("c1", "pass")], run_id="base", evalset_id="controls")
    cand = record(
        [("c1", "fail", {"output": "bell\x07 nul\x00 esc\x1b[31m ]]> </testcase>"})],
        run_id="cand",
        evalset_id="controls",
    )
    xml = junit.render(GateReport(pairs=(*report.pairs, pair(base, cand, GatePolicy()))))
    results = _results(xml)
    assert results["triage/triage"][WEIRD_ID] == "failure"
    suites = list(JUnitXml.fromstring(xml))
    text = next(c for c in suites[1] if c.name == "c1").result[0].text
    assert "bell\ufffd nul\ufffd esc\ufffd[31m ]]> </testcase>" in text


def test_junit_is_deterministic() -> None:
    assert junit.render(fail_report()) == junit.render(fail_report())


# --- JSON -------------------------------------------------------------------------------------


def test_json_fail_golden() -> None:
    check_golden("gate_fail.json", json_report.render(fail_report()))


def test_json_round_trips_with_every_case() -> None:
    data = json.loads(json_report.render(fail_report()))
    assert list(data)[:3] == ["schema_version", "kind", "status"]
    assert (data["schema_version"], data["kind"], data["status"], data["exit_code"]) == (
        1,
        "agent-evals-gate",
        "fail",
        1,
    )
    (p,) = data["pairs"]
    assert [c["case_id"] for c in p["cases"]] == [
        "refund-1", "refund-2", "billing-1", "billing-2", "access-1", "access-2", "access-3",
        "tech-1", "tech-2", "general-1", "new-1", "old-1",
    ]  # fmt: skip
    assert p["counts"]["regressed"] == 3
    case = p["cases"][0]
    assert case["outcome"] == "regressed"
    assert case["expected"] == {"label": "refund"}
    assert case["base"]["status"] == "pass"
    assert case["cand"]["results"][0]["output"] == '{"label": "billing"}'
    assert case["cand"]["results"][0]["grades"][0]["reason"] == "label: expected 'refund', got 'billing'"
    flaky = p["cases"][9]
    assert flaky["flaky"] is True
    assert [r["status"] for r in flaky["cand"]["results"]] == ["pass", "fail"]
    overall = p["groups"]["overall"]
    assert overall["test"]["method"] == "stratified-exact"  # two repeats that vary: every run counts
    assert 0 <= overall["test"]["pvalue"] <= 1
    assert [g["name"] for g in p["groups"]["graders"]] == ["label", "tone"]
    assert p["verdict"]["policy"]["critical"] == ["refund"]
    assert p["verdict"]["power"]["sentence"].startswith("this eval set can detect")
    assert p["totals"]["cand"]["errors"] == 1


def test_json_findings_and_new_pairs() -> None:
    data = json.loads(json_report.render(findings_report()))
    assert data["pairs"][0]["verdict"]["findings"][1] == {
        "kind": "cases_removed",
        "rule": "cases",
        "old": "6 cases",
        "new": "5 cases",
        "cases": ["refund-3"],
    }
    new = json.loads(json_report.render(pass_report()))["pairs"][1]
    assert new["change"] == "new"
    assert new["groups"] is None
    assert new["totals"]["base"] is None
    assert new["totals"]["cand"]["cases"] == 3
    assert [c["outcome"] for c in new["cases"]] == ["new", "new", "new"]


# --- terminal ---------------------------------------------------------------------------------


def _terminal(report: GateReport, **kw: Any) -> str:
    console = Console(record=True, width=120, force_terminal=False, file=io.StringIO())
    print_gate(console, report, **kw)
    return console.export_text()


def test_terminal_names_regressions_and_findings() -> None:
    out = _terminal(fail_report())
    assert "FAIL triage/triage (modified)" in out
    assert "3 regressed:" in out
    for case_id in ("refund-1", "refund-2", "billing-1"):
        assert case_id in out
    # The changed field, not two one-line outputs side by side.
    assert "      Δ label: refund -> billing\n" in out
    assert "      Δ label: refund -> account_access\n" in out
    assert "critical refund: 1 critical" not in out  # the rule's own words
    assert "critical refund: 2 critical case(s) regressed" in out
    assert "power:" in out
    assert out.rstrip().endswith("agent-evals gate FAILED: 1 failed of 1 prompt/eval set pair(s)")

    new = _terminal(pass_report())
    assert "PASS summarize/summaries (new)" in new
    assert "1 failing:" in new
    assert "long-2 [long]  label: summary: 52 words > 40" in new

    findings = _terminal(findings_report())
    assert findings.startswith("gate integrity: this change moves the bar")
    assert "triage/triage: min_pass_rate: 0.9 -> 0.8" in findings
    assert "triage/triage: cases: 6 cases -> 5 cases: refund-3" in findings


def test_terminal_caps_cases_and_prints_markup_literally() -> None:
    out = _terminal(fail_report(), max_cases=1)
    assert "... and 2 more (see --report-md/--json)" in out
    assert "[red]boom[/red]" in _terminal(adversarial_report())


def test_terminal_word_diff_shows_where_long_outputs_differ() -> None:
    """A one-word change deep in a long answer shows with its context, not two clipped prefixes."""
    preamble = "Thank you for contacting support. " * 10
    lines = change_lines(
        preamble + "You will get a refund today.", preamble + "You will get a voucher today."
    )
    (line,) = lines
    assert line.plain.startswith("      Δ …")
    assert "You will get a refund voucher today." in line.plain
    assert len(line.plain) < 2 * 96 + 20
    struck = [line.plain[s.start : s.end] for s in line.spans if "strike" in str(s.style)]
    bold = [line.plain[s.start : s.end] for s in line.spans if "bold green" in str(s.style)]
    assert (struck, bold) == (["refund"], ["voucher"])
    assert [x.plain for x in change_lines("same", "same")] == ["      Δ none: the outputs are identical"]
    assert change_lines(None, "x") == []
