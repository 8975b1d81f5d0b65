"""What changed between two outputs, as the PR comment, the terminal and the HTML page show it.

For JSON outputs the comment lists the fields that changed first, one per line
with their path (`disposition`: `refund` → `billing_question`), then the full
outputs indented in a collapsed block; for text, a word diff. Outputs are
untrusted: the comment is rendered with GitHub's own Markdown library
(cmarkgfm) to check that nothing an output says escapes its place.
"""

from __future__ import annotations

import io
import json
import re

import cmarkgfm
import pytest
from rich.console import Console

from agent_evals.diff import diff
from agent_evals.gate import GateReport, PairReport, gate
from agent_evals.models import GatePolicy
from agent_evals.record import RunRecord
from agent_evals.report import html, markdown
from agent_evals.report._common import FieldChange, field_changes, output_change, value_text
from agent_evals.report.terminal import print_gate
from tests.support import make_record
from tests.test_reports import structure


def _with_outputs(record: RunRecord, outputs: dict[str, str]) -> RunRecord:
    cases = tuple(r.model_copy(update={"output": outputs[r.case_id]}) for r in record.cases)
    return record.model_copy(update={"cases": cases})


def _report(base_output: str, cand_output: str) -> GateReport:
    """One case that passed with `base_output` and fails with `cand_output`."""
    base = _with_outputs(make_record([("case-1", "pass")], run_id="base"), {"case-1": base_output})
    cand = _with_outputs(make_record([("case-1", "fail")], run_id="cand"), {"case-1": cand_output})
    d = diff(base, cand)
    pair = PairReport("p", "e", "modified", gate(d, GatePolicy(max_regressions=0)), cand=cand, diff=d)
    return GateReport(pairs=(pair,))


def _html(md: str) -> str:
    return str(cmarkgfm.github_flavored_markdown_to_html(md, options=cmarkgfm.Options.CMARK_OPT_UNSAFE))


def _case_html(md: str) -> tuple[str, str]:
    """(the change shown before the full outputs, the collapsed full outputs) of the one regressed case."""
    page = _html(md)
    case = page.split("<h4>")[1]
    before, full = case.split("<summary>Expected and both outputs in full</summary>")
    return before, full


BASE = {
    "disposition": "refund",
    "priority": "high",
    "customer": {"name": "Ada", "tier": "gold"},
    "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}, {"sku": "C", "qty": 1}],
    "notes": None,
}
CAND = {
    "disposition": "billing_question",
    "customer": {"name": "Ada", "tier": "silver"},
    "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}, {"sku": "C", "qty": 3}, {"sku": "D", "qty": 1}],
    "notes": None,
    "escalate": True,
}


# --- the changes themselves ------------------------------------------------------------------------------


def test_field_changes_name_each_path() -> None:
    assert field_changes(BASE, CAND) == [
        FieldChange("disposition", "changed", "refund", "billing_question"),
        FieldChange("priority", "removed", old="high"),
        FieldChange("customer.tier", "changed", "gold", "silver"),
        FieldChange("items[2].qty", "changed", 1, 3),
        FieldChange("items[3]", "added", new={"sku": "D", "qty": 1}),
        FieldChange("escalate", "added", new=True),
    ]


def test_field_changes_tell_types_apart_and_quote_odd_keys() -> None:
    # Python says True == 1 == 1.0; JSON text does not.
    assert field_changes({"a": 1}, {"a": True}) == [FieldChange("a", "changed", 1, True)]
    assert field_changes({"a": 1}, {"a": 1.0}) == [FieldChange("a", "changed", 1, 1.0)]
    assert field_changes({"a": 1}, {"a": 1}) == []
    assert field_changes({"odd key": {"x.y": 1}}, {"odd key": {"x.y": 2}}) == [
        FieldChange('["odd key"]["x.y"]', "changed", 1, 2)
    ]
    assert field_changes([1, 2], [1, 3]) == [FieldChange("[1]", "changed", 2, 3)]
    assert field_changes({"a": [1]}, {"a": {"b": 1}}) == [FieldChange("a", "changed", [1], {"b": 1})]
    assert field_changes({"a": 1}, [1]) == [FieldChange("$", "changed", {"a": 1}, [1])]


def test_values_read_bare_unless_that_would_hide_a_type() -> None:
    assert value_text("refund") == "refund"
    assert value_text("1") == '"1"'
    assert value_text("true") == '"true"'
    assert value_text("") == '""'
    assert value_text(" padded") == '" padded"'
    assert value_text("two\nlines") == '"two\\nlines"'
    assert value_text(1) == "1"
    assert value_text(None) == "null"
    assert value_text({"sku": "D"}) == '{"sku": "D"}'
    assert value_text("x" * 50, 10) == "x" * 9 + "…"


def test_output_change_picks_json_text_or_same() -> None:
    assert output_change(None, "x") is None
    assert output_change("same", "same").kind == "same"  # type: ignore[union-attr]
    json_change = output_change(json.dumps(BASE), json.dumps(CAND))
    assert json_change is not None
    assert json_change.kind == "json"
    assert len(json_change.fields) == 6
    # Both JSON but one is a string, not an object or array: compared as text.
    assert output_change('"refund"', '"billing"').kind == "text"  # type: ignore[union-attr]
    # The same document spelled differently: the text diff shows the spelling.
    respaced = output_change('{"a": 1}', '{"a":1}')
    assert respaced is not None
    assert respaced.kind == "text"
    text = output_change("The customer wants a refund.", "The customer wants a billing review.")
    assert text is not None
    assert text.words == (
        ("=", "The customer wants a "),
        ("-", "refund"),
        ("+", "billing review"),
        ("=", "."),
    )
    # Two unrelated answers are one replacement, not a confetti of word marks.
    unrelated = output_change("Refund issued today.", "I cannot help with that request, sorry.")
    assert unrelated is not None
    assert unrelated.words == (
        ("-", "Refund issued today."),
        ("+", "I cannot help with that request, sorry."),
    )


# --- the PR comment -------------------------------------------------------------------------------------


def test_comment_lists_changed_fields_before_the_full_outputs() -> None:
    md = markdown.render(_report(json.dumps(BASE), json.dumps(CAND)))
    structure(md)
    assert (
        "**Changed fields** (baseline → candidate)\n\n"
        "- `disposition`: `refund` → `billing_question`\n"
        "- `priority`: removed (was `high`)\n"
        "- `customer.tier`: `gold` → `silver`\n"
        "- `items[2].qty`: `1` → `3`\n"
        '- `items[3]`: added `{"sku": "D", "qty": 1}`\n'
        "- `escalate`: added `true`\n"
    ) in md
    before, full = _case_html(md)
    assert "<li><code>disposition</code>: <code>refund</code> → <code>billing_question</code></li>" in before
    assert "<pre" not in before
    # The full outputs, indented, one field per line: nothing sits off the right edge.
    blocks = re.findall(r"<pre[^>]*><code[^>]*>(.*?)</code></pre>", full, flags=re.S)
    assert len(blocks) == 3
    assert "  &quot;disposition&quot;: &quot;billing_question&quot;,\n" in blocks[2]
    assert max(len(line) for b in blocks for line in b.splitlines()) < 60
    # Collapsed: the details element is not open.
    assert "<details>\n<summary>Expected and both outputs in full</summary>" in _html(md)


def test_comment_caps_the_changed_fields() -> None:
    base = {f"k{i:02d}": i for i in range(30)}
    cand = {f"k{i:02d}": i + 1 for i in range(30)}
    md = markdown.render(_report(json.dumps(base), json.dumps(cand)))
    assert md.count("\n- `k") == markdown.MAX_FIELDS
    assert "- … and 10 more changed fields" in md


def test_comment_shows_a_word_diff_for_text() -> None:
    preamble = "Thank you for writing to us. " * 20
    md = markdown.render(
        _report(preamble + "We will refund order 1234 today.", preamble + "We will review order 1234 today.")
    )
    structure(md)
    before, _ = _case_html(md)
    assert "<strong>Changed words</strong> (baseline → candidate): … Thank you for writing to us." in before
    assert "to us. We will <del>refund</del> <ins>review</ins> order 1234 today.</p>" in before
    # The long unchanged preamble is cut to a little context.
    assert before.count("Thank you") <= 3


def test_comment_says_when_outputs_are_identical() -> None:
    md = markdown.render(_report("same answer", "same answer"))
    assert "_The baseline and candidate outputs are identical._" in md


HOSTILE: list[tuple[str, str]] = [
    ("backticks", "ok ``` ```` `x` `` done"),
    (
        "html",
        "</details></summary><details open><summary>pwned</summary><script>alert(1)</script><img src=x>",
    ),
    ("mention", "ping @octocat and @github/security now"),
    ("markdown", "# Heading\n\n> quote\n- item\n| a | b |\n|---|---|\n**bold** [link](http://127.0.0.1:9/x)"),
    ("entities", "&lt;script&gt; &amp; &#64;octocat"),
    ("tags", "<del>not ours</del> <ins>nor this</ins>"),
]


@pytest.mark.parametrize(("name", "evil"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_text_outputs_stay_inside_their_place(name: str, evil: str) -> None:
    md = markdown.render(_report("A harmless answer about refunds.", evil))
    s = structure(md)  # details and summary balanced, nothing left open, no <script>
    page = _html(md)
    before, _ = _case_html(md)
    assert s.counts.get("img", 0) == 0
    assert s.counts.get("a", 0) == 0
    assert s.counts.get("h1", 0) == 0
    assert s.counts.get("blockquote", 0) == 0
    assert "<strong>bold</strong>" not in page
    # Only our own <del>/<ins> marks: the output's tags are text.
    assert before.count("<del>") == 1
    assert before.count("<ins>") == 1
    assert page.count("<details open>") == 1  # the list of regressed cases, ours
    # No @-mention reaches GitHub: a zero-width space follows every @ outside code.
    assert not re.search(
        r"@(?!\u200b)[A-Za-z]", re.sub(r"<pre.*?</pre>|<code>.*?</code>", "", page, flags=re.S)
    )


@pytest.mark.parametrize(("name", "evil"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_json_values_stay_inside_their_code_spans(name: str, evil: str) -> None:
    base = json.dumps({"answer": "fine", evil: 1})
    cand = json.dumps({"answer": evil, evil: 2})
    md = markdown.render(_report(base, cand))
    s = structure(md)
    before, _ = _case_html(md)
    assert s.counts.get("img", 0) == 0
    assert s.counts.get("a", 0) == 0
    items = re.findall(r"<li>(.*?)</li>", before, flags=re.S)
    changes = [i for i in items if i.startswith("<code>")]
    assert len(changes) == 2
    for item in changes:
        # path, old, new: each whole in one code span, the rest only our own words.
        outside = re.sub(r"<code>.*?</code>", "", item, flags=re.S)
        assert outside in (": ", ":  → "), outside


# --- the terminal and the HTML page show the same changes ------------------------------------------------


def _terminal(report: GateReport) -> str:
    console = Console(record=True, width=160, force_terminal=False, file=io.StringIO())
    print_gate(console, report)
    return console.export_text()


def test_terminal_prints_the_changed_fields() -> None:
    out = _terminal(_report(json.dumps(BASE), json.dumps(CAND)))
    assert "      Δ disposition: refund -> billing_question\n" in out
    assert "      Δ priority: high  (removed)\n" in out
    assert "      Δ customer.tier: gold -> silver\n" in out
    assert "      Δ items[2].qty: 1 -> 3\n" in out
    assert '      Δ items[3]: {"sku": "D", "qty": 1}  (added)\n' in out
    assert "      Δ ... and 1 more changed fields\n" in out


def test_terminal_prints_markup_in_outputs_literally() -> None:
    out = _terminal(_report("fine", "[red]boom[/red] [link=http://x]y[/link]"))
    assert "[red]boom[/red] [link=http://x]y[/link]" in out


def test_html_page_lists_the_changed_fields_and_diffs_indented_json() -> None:
    page = html.page(_report(json.dumps(BASE), json.dumps(CAND)))
    (case,) = json.loads(str(page.data))["pairs"][0]["cases"]
    assert case["changes"][:4] == [
        ["changed", "disposition", "refund", "billing_question"],
        ["removed", "priority", "high", ""],
        ["changed", "customer.tier", "gold", "silver"],
        ["changed", "items[2].qty", "1", "3"],
    ]
    assert case["more_changes"] == 0
    # The side-by-side diff runs on the indented documents: one field per line.
    assert ["-", "refund"] in case["diff"]
    assert ["+", "billing_question"] in case["diff"]
    assert '\n  "disposition": ' in "".join(op[1] for op in case["diff"])
    text_case = json.loads(str(html.page(_report("a refund", "a review")).data))["pairs"][0]["cases"][0]
    assert text_case["changes"] is None
