"""Outputs cut off at max_tokens: their own verdict in every report, never silently a regression.

A candidate whose answers stop at `max_tokens` fails its graders, and the gate
counts those failures (a cut-off answer fails in production too). What changes
is the name: such a pass -> fail is labelled `truncated` (diff.CaseDiff.label),
the reports list it apart from the regressions with the hint to raise
max_tokens, and say how many outputs were cut off at which limit, read from
the request each case recorded.

The end-to-end test runs a real prompt twice against an OpenAI-style server on
127.0.0.1 (the second time it stops three answers with `finish_reason: length`),
then `agent-evals diff` and `agent-evals report --html` on the two records.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
from junitparser import JUnitXml
from rich.console import Console

from agent_evals.cli import main
from agent_evals.diff import diff, max_tokens, truncations
from agent_evals.gate import GateReport, PairReport, gate
from agent_evals.models import GatePolicy
from agent_evals.record import RunRecord, load_record
from agent_evals.report import html, json_report, junit, markdown
from agent_evals.report.terminal import print_gate
from tests.http_server import Request, Response, ScriptedServer, openai_chat
from tests.support import echo_evalset, echo_prompt, make_record, write_tree

CUT = {"q00000", "q00001", "q00002"}


def _cut(record: RunRecord, cut: dict[str, int | None], *, fail: bool = True) -> RunRecord:
    """`record` with the outputs of the cases in `cut` stopped at their max_tokens (None: no limit set)."""
    cases = []
    for r in record.cases:
        params: dict[str, Any] = {"temperature": 0}
        limit = cut.get(r.case_id, 1000)
        if limit is not None:
            params["max_tokens"] = limit
        update: dict[str, Any] = {
            "request": {"provider": "openai", "model": "m", "params": params, "messages": []},
            "finish_reason": "stop",
        }
        if r.case_id in cut:
            update.update(finish_reason="length", truncated=True, output=f"{r.output} and then the ans")
            if fail:
                update.update(status="fail", passed=False, score=0.0)
        cases.append(r.model_copy(update=update))
    return record.model_copy(update={"cases": tuple(cases)})


def _pair(base: RunRecord, cand: RunRecord, policy: GatePolicy | None = None) -> PairReport:
    d = diff(base, cand)
    return PairReport(
        prompt_id="p",
        evalset_id="e",
        change="modified",
        verdict=gate(d, policy or GatePolicy()),
        cand=cand,
        diff=d,
    )


def _scenario() -> GateReport:
    """Five cases pass in the baseline; in the candidate a, b and c fail on outputs cut off at
    max_tokens=300, d fails on a whole answer. One baseline output was cut off too (e, which passed)."""
    ids = ["a", "b", "c", "d", "e"]
    base = _cut(make_record([(i, "pass") for i in ids], run_id="base"), {"e": 300}, fail=False)
    cand = make_record([(i, "fail" if i in "abcd" else "pass") for i in ids], run_id="cand")
    cand = _cut(cand, {"a": 300, "b": 300, "c": 300})
    return GateReport(pairs=(_pair(base, cand, GatePolicy(max_regressions=2)),))


def _clean_report() -> GateReport:
    """A regression with nothing cut off."""
    return GateReport(pairs=(_pair(make_record([("a", "pass")], run_id="b"), make_record([("a", "fail")])),))


def test_the_diff_labels_a_cut_off_regression_truncated_and_keeps_counting_it() -> None:
    (pair,) = _scenario().pairs
    d = pair.diff
    assert d is not None
    by_id = {c.case_id: c for c in d.cases}
    # The outcome stays a regression for every rule; the label names the cause.
    assert [c.case_id for c in d.outcome("regressed")] == ["a", "b", "c", "d"]
    assert [c.case_id for c in d.labelled("truncated")] == ["a", "b", "c"]
    assert [c.case_id for c in d.labelled("regressed")] == ["d"]
    assert by_id["e"].label == "still_passing"
    assert by_id["e"].truncated is False  # the baseline's output was cut off, not the candidate's
    assert d.overall.regressions == 4
    # The gate judges as before: four pass -> fail count against max_regressions.
    rule = next(r for r in pair.verdict.rules if r.rule == "max_regressions")
    assert not rule.passed
    assert rule.cases == ("a", "b", "c", "d")
    assert "1 regressed, 3 truncated at max_tokens, 0 fixed" in pair.verdict.headline
    assert truncations(d.cand) == ((300, 3),)
    assert truncations(d.base) == ((300, 1),)


def test_a_case_that_passes_on_a_cut_off_output_is_not_truncated() -> None:
    base = make_record([("a", "pass")], run_id="base")
    cand = _cut(make_record([("a", "pass")], run_id="cand"), {"a": 50}, fail=False)
    (c,) = diff(base, cand).cases
    assert c.truncated
    assert c.label == "still_passing"


def test_truncations_group_by_limit_and_count_every_repeat() -> None:
    record = make_record([("a", "pass"), ("b", "pass"), ("c", "pass")], repeat_of={"a": ["pass", "fail"]})
    record = _cut(record, {"a": 100, "b": None, "c": 20})
    assert truncations(record) == ((20, 1), (100, 2), (None, 1))
    # By limit, not by count, whatever order the cases ran in (0 included: it sorts before 1).
    record = make_record([("a", "pass"), ("b", "pass"), ("c", "pass")], repeat_of={"b": ["pass", "pass"]})
    assert truncations(_cut(record, {"a": 100, "b": 20, "c": 300})) == ((20, 2), (100, 1), (300, 1))
    assert truncations(_cut(record, {"a": 1, "b": None, "c": 0})) == ((0, 1), (1, 1), (None, 2))


def test_max_tokens_reads_an_integer_limit_only() -> None:
    (plain,) = make_record([("a", "pass")]).cases
    assert max_tokens(plain) is None  # no recorded request
    for limit, read in ((300, 300), ("300", None), (True, None), (300.0, None)):
        request = {"provider": "openai", "model": "m", "params": {"max_tokens": limit}, "messages": []}
        assert max_tokens(plain.model_copy(update={"request": request})) == read
    assert max_tokens(plain.model_copy(update={"request": {"params": "max_tokens=300"}})) is None


def test_markdown_comment_names_the_truncations_and_lists_the_cases_apart() -> None:
    md = markdown.render(_scenario())
    head = md[: md.index("| prompt / eval set |")]
    assert "candidate run: 3 outputs truncated at max\\_tokens=300" in head
    assert "baseline run: 1 output truncated at max\\_tokens=300" in head
    assert "raise max\\_tokens in the prompt" in head
    rendered = str(cmarkgfm.github_flavored_markdown_to_html(md, options=cmarkgfm.Options.CMARK_OPT_UNSAFE))
    assert "candidate run: 3 outputs truncated at max_tokens=300" in rendered
    assert "<summary>1 regressed case</summary>" in rendered
    assert "<summary>✂️ 3 truncated cases</summary>" in rendered
    truncated = rendered.split("<summary>✂️ 3 truncated cases</summary>")[1].split("<sub>")[0]
    assert re.findall(r"<h4><code>([^<]+)</code></h4>", truncated) == ["a", "b", "c"]
    assert "✂️ candidate output truncated at max_tokens=300" in truncated
    regressed = rendered.split("<summary>1 regressed case</summary>")[1].split("3 truncated cases")[0]
    assert re.findall(r"<h4><code>([^<]+)</code></h4>", regressed) == ["d"]
    assert "truncated at" not in regressed


def test_markdown_without_truncation_says_nothing_about_it() -> None:
    md = markdown.render(_clean_report())
    assert "<summary>1 regressed case</summary>" in md
    assert "truncated" not in md
    assert "max\\_tokens" not in md


def test_several_pairs_name_the_pair_of_each_truncation() -> None:
    (cut,) = _scenario().pairs
    base = make_record([("a", "pass")], run_id="b2")
    clean = _pair(base, make_record([("a", "pass")], run_id="c2"))
    clean = PairReport(**{**clean.__dict__, "prompt_id": "other", "evalset_id": "other"})
    md = markdown.render(GateReport(pairs=(cut, clean)))
    assert (
        "> - `p` / `e`: candidate run: 3 outputs truncated at max\\_tokens=300; "
        "baseline run: 1 output truncated at max\\_tokens=300" in md
    )
    assert "`other` / `other`: candidate" not in md


def test_json_report_carries_the_truncation_of_each_result_and_case() -> None:
    data = json.loads(json_report.render(_scenario()))
    (p,) = data["pairs"]
    assert p["truncations"] == {
        "base": [{"max_tokens": 300, "outputs": 1}],
        "cand": [{"max_tokens": 300, "outputs": 3}],
    }
    assert p["counts"]["regressed"] == 4
    assert p["counts"]["truncated"] == 3
    cases = {c["case_id"]: c for c in p["cases"]}
    assert (cases["a"]["outcome"], cases["a"]["label"], cases["a"]["truncated"]) == (
        "regressed",
        "truncated",
        True,
    )
    assert (cases["d"]["outcome"], cases["d"]["label"], cases["d"]["truncated"]) == (
        "regressed",
        "regressed",
        False,
    )
    result = cases["a"]["cand"]["results"][0]
    assert (result["finish_reason"], result["truncated"], result["max_tokens"]) == ("length", True, 300)
    assert cases["d"]["cand"]["results"][0]["truncated"] is False
    assert cases["e"]["base"]["results"][0]["truncated"] is True


def test_junit_fails_a_truncated_case_as_truncated() -> None:
    suite = next(iter(JUnitXml.fromstring(junit.render(_scenario()))))
    by_name = {c.name: c for c in suite}
    failure = by_name["a"].result[0]
    assert failure.type == "truncated"
    assert failure.message.startswith("truncated: the candidate's output truncated at max_tokens=300")
    assert "raise max_tokens" in failure.text
    assert by_name["d"].result[0].type == "regression"
    props = {p.name: p.value for p in suite.properties()}
    assert props["truncated"] == (
        "candidate run: 3 outputs truncated at max_tokens=300; baseline run: 1 output truncated at max_tokens=300"
    )


def test_terminal_lists_truncated_cases_apart() -> None:
    console = Console(record=True, width=140, force_terminal=False, file=io.StringIO())
    print_gate(console, _scenario())
    out = console.export_text()
    assert "✂ candidate run: 3 outputs truncated at max_tokens=300" in out
    assert "✂ baseline run: 1 output truncated at max_tokens=300" in out
    assert "1 regressed:" in out
    assert "3 truncated (pass -> fail on a cut-off output):" in out
    assert "✂ candidate output truncated at max_tokens=300" in out
    assert re.search(r"truncated \(pass -> fail\)\s+│\s+│\s+3", out)


def test_html_report_flags_and_counts_truncation() -> None:
    page = html.page(_scenario())
    (view,) = page.pairs
    assert view.truncation == (
        "candidate run: 3 outputs truncated at max_tokens=300",
        "baseline run: 1 output truncated at max_tokens=300",
    )
    assert ("truncated", "Truncated") in view.filters
    assert next(f for f in view.figures if f.label == "truncated").value == "3"
    data = json.loads(str(page.data))
    cases = {c["id"]: c for c in data["pairs"][0]["cases"]}
    assert (cases["a"]["outcome"], cases["a"]["outcome_word"]) == ("truncated", "truncated")
    assert "truncated" in cases["a"]["flags"]
    assert "regressed" not in cases["a"]["flags"]
    assert cases["d"]["flags"][0] == "regressed"
    assert "truncated" in cases["e"]["flags"]  # its baseline output was cut off
    assert cases["a"]["cand"]["truncated"] == "output truncated at max_tokens=300"
    assert cases["a"]["why"].startswith("output truncated at max_tokens=300; ")
    page_html = html.render(_scenario())
    assert "Outputs cut off at max_tokens" in page_html
    # Without truncation there is no filter, figure or callout for it.
    clean = html.page(_clean_report())
    assert [f[0] for f in clean.pairs[0].filters] == [
        "all",
        "regressed",
        "fixed",
        "failing",
        "errors",
        "review",
    ]
    assert clean.pairs[0].truncation == ()
    assert all(f.label != "truncated" for f in clean.pairs[0].figures)
    assert "Outputs cut off" not in html.render(_clean_report())


# --- end to end: real runs against a server on 127.0.0.1, then the CLI --------------------------------


def _answer(request: Request) -> Response:
    """Echo the question; for questions 0-2 stop early, as a model that hit max_tokens does."""
    body = request.json if isinstance(request.json, dict) else {}
    question = str(body["messages"][-1]["content"])
    if question in {"question 0", "question 1", "question 2"}:
        return openai_chat("echo: quest", finish_reason="length")(request)  # type: ignore[return-value]
    return openai_chat()(request)  # type: ignore[return-value]


@pytest.fixture
def server() -> Any:
    with ScriptedServer(default=openai_chat()) as s:
        yield s
    assert not s.errors


def test_diff_of_real_runs_reports_truncation_everywhere(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write_tree(
        tmp_path,
        {
            "prompts/echo.yaml": echo_prompt("gpt").replace("max_tokens: 20", "max_tokens: 300"),
            "evalsets/echo.yaml": echo_evalset(5),
            "agent-evals.yaml": (
                "schema_version: 1\ngate: {max_regressions: 0}\n"
                f"providers:\n  gpt: {{type: openai, base_url: '{server.url}/v1', api_key_env: null}}\n"
            ),
        },
    )
    assert main(["run", "--no-cache", "--output", "base.jsonl"]) == 0
    server.route("POST", r"/v1/chat/completions", _answer)
    main(["run", "--no-cache", "--output", "cand.jsonl"])
    cand = load_record(tmp_path / "cand.jsonl")
    cut = {r.case_id for r in cand.cases if r.truncated}
    assert cut == CUT
    assert {r.finish_reason for r in cand.cases if r.case_id in CUT} == {"length"}
    capsys.readouterr()

    code = main(
        ["diff", "base.jsonl", "cand.jsonl", "--report-md", "c.md", "--json", "g.json", "--junit", "j.xml"]
    )
    out = capsys.readouterr().out
    # The gate still fails (max_regressions 0): a cut-off answer fails in production too.
    assert code == 1
    assert "0 regressed, 3 truncated at max_tokens, 0 fixed" in " ".join(out.split())  # the headline wraps
    assert "✂ candidate run: 3 outputs truncated at max_tokens=300" in out

    md = (tmp_path / "c.md").read_text()
    assert "candidate run: 3 outputs truncated at max\\_tokens=300" in md
    assert "✂️ 3 truncated cases" in md
    assert "regressed case" not in md

    data = json.loads((tmp_path / "g.json").read_text())
    (p,) = data["pairs"]
    assert p["truncations"]["cand"] == [{"max_tokens": 300, "outputs": 3}]
    assert p["truncations"]["base"] == []
    assert {c["case_id"] for c in p["cases"] if c["label"] == "truncated"} == CUT
    assert all(
        r["truncated"] and r["finish_reason"] == "length" and r["max_tokens"] == 300
        for c in p["cases"]
        if c["case_id"] in CUT
        for r in c["cand"]["results"]
    )

    suite = next(iter(JUnitXml.fromstring((tmp_path / "j.xml").read_text())))
    assert {c.name for c in suite if c.result and c.result[0].type == "truncated"} == CUT

    assert main(["report", "cand.jsonl", "--baseline", "base.jsonl", "--html", "r.html"]) in (0, 1)
    page = (tmp_path / "r.html").read_text()
    assert "candidate run: 3 outputs truncated at max_tokens=300" in page
