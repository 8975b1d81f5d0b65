"""Patterns from prompt and eval set files run within a time limit: a catastrophic pattern is an error, not a hang.

`(a|aa)+$` against sixty `a`s and a `b` backtracks for hours under Python's `re`; every pattern a
file supplies goes through agent_evals._regex, which stops the match after TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent_evals import _jobclock, _regex
from agent_evals._regex import PatternError, PatternTimeout, compile_pattern
from agent_evals.cli import main
from agent_evals.errors import GraderError
from agent_evals.graders import Grade, Sample, build_grader
from agent_evals.models import Case, GraderSpec
from agent_evals.record import ToolCallRecord, load_record
from tests.support import run_past_the_job_limit, write_tree

EVIL = r"(a|aa)+$"
VICTIM = "a" * 60 + "b"


@pytest.fixture(autouse=True)
def short_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_regex, "TIMEOUT_S", 0.2)
    # Compiled patterns count their timeouts (STRIKES) for the process: each test starts with none.
    monkeypatch.setattr(_regex, "_CACHE", {})


def grade(spec: dict[str, Any], sample: Sample) -> Grade:
    return asyncio.run(build_grader(GraderSpec(**spec)).grade(sample))


def test_a_catastrophic_pattern_stops_at_the_limit_with_a_clear_error() -> None:
    started = time.monotonic()
    with pytest.raises(PatternTimeout) as caught:
        compile_pattern(EVIL).search(VICTIM)
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        "the pattern /(a|aa)+$/ took more than 0.2 s on this text "
        "(repetition of overlapping alternatives, such as (a|aa)+, backtracks without end; simplify it)"
    )
    assert isinstance(caught.value, GraderError)  # a grader's case is an error, never a pass


def test_a_pattern_that_timed_out_on_strikes_texts_is_not_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_regex, "STRIKES", 2)
    pattern = compile_pattern(EVIL)
    for _ in range(2):
        with pytest.raises(PatternTimeout, match=r"took more than 0\.2 s on this text"):
            pattern.search(VICTIM)
    for method in (pattern.search, pattern.fullmatch):
        with pytest.raises(PatternTimeout) as caught:
            method("a")  # even on a text it would match at once
        assert str(caught.value) == (
            "the pattern /(a|aa)+$/ took more than 0.2 s on 2 texts already, so it is not run again "
            "(repetition of overlapping alternatives, such as (a|aa)+, backtracks without end; simplify it)"
        )
    assert compile_pattern(EVIL) is pattern  # the same compiled pattern wherever the files name it
    assert compile_pattern(r"(a|aa)+b").search("a" * 60 + "b") is not None  # other patterns run on


def test_ordinary_patterns_keep_pythons_syntax() -> None:
    assert compile_pattern(r"(?P<id>A-\d{2})\b").search("order A-17 please").group("id") == "A-17"
    assert compile_pattern("refund", _regex.FLAGS["ignorecase"]).fullmatch("REFUND") is not None
    with pytest.raises(PatternError, match="invalid regular expression"):
        compile_pattern("(unclosed")


def test_the_flag_names_mean_the_regex_packages_flags() -> None:
    # _regex writes them with re's values, so the package loads only with the first pattern.
    import regex

    assert _regex.FLAGS == {
        "ignorecase": regex.IGNORECASE,
        "multiline": regex.MULTILINE,
        "dotall": regex.DOTALL,
    }
    assert (
        compile_pattern("^b.c$", _regex.FLAGS["multiline"] | _regex.FLAGS["dotall"]).search("a\nb\nc")
        is not None
    )


@pytest.mark.parametrize(
    ("spec", "sample"),
    [
        ({"type": "regex", "pattern": EVIL}, Sample(case=Case(id="c"), output=VICTIM)),
        (
            {"type": "rubric", "criteria": [{"matches": EVIL}]},
            Sample(case=Case(id="c"), output=VICTIM),
        ),
        (
            {"type": "json_schema", "schema": {"type": "object", "properties": {"x": {"pattern": EVIL}}}},
            Sample(case=Case(id="c"), output=json.dumps({"x": VICTIM}), parsed={"x": VICTIM}),
        ),
        (
            {
                "type": "json_schema",
                "schema": {"type": "object", "patternProperties": {EVIL: {"type": "string"}}},
            },
            Sample(case=Case(id="c"), output=json.dumps({VICTIM: "v"}), parsed={VICTIM: "v"}),
        ),
        (
            {"type": "tool_called", "tool": "lookup", "args": {"id": EVIL}, "match": "regex"},
            Sample(
                case=Case(id="c"),
                output="done",
                tool_calls=(ToolCallRecord(name="lookup", arguments={"id": VICTIM}),),
            ),
        ),
    ],
    ids=[
        "regex",
        "rubric-matches",
        "json-schema-pattern",
        "json-schema-pattern-properties",
        "tool-called-regex",
    ],
)
def test_every_grader_pattern_is_time_limited(spec: dict[str, Any], sample: Sample) -> None:
    started = time.monotonic()
    with pytest.raises(PatternTimeout):
        grade(spec, sample)
    assert time.monotonic() - started < 5


def _echo_project(root: Path, cases: int, victim: str = VICTIM) -> None:
    """An echo model graded by the catastrophic pattern, on `cases` cases that each trip it (synthetic)."""
    write_tree(
        root,
        {
            "prompts/p.yaml": (
                "schema_version: 1\nid: p\nversion: 1\n"
                "owner: {name: Support AI team, oncall: pagerduty:support-ai}\n"
                "model: {provider: local, name: echo}\n"
                "messages:\n  - role: user\n    content: '{{ text }}'\n"
            ),
            "evalsets/e.yaml": (
                "schema_version: 1\nid: e\nprompt: p\n"
                "provenance: {source: synthetic test cases, synthetic: true}\n"
                f"graders:\n  - type: regex\n    pattern: '{EVIL}'\ncases:\n"
                + "".join(f"  - id: c{i}\n    vars: {{text: {victim}}}\n" for i in range(1, cases + 1))
            ),
        },
    )


def test_a_run_makes_the_case_an_error_and_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _echo_project(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    code = main(["run", "--output", "out.jsonl"])
    assert time.monotonic() - started < 30
    assert code == 3  # could not evaluate: the grader could not judge
    (case,) = load_record(tmp_path / "out.jsonl").cases
    assert case.status == "error"
    assert case.grades[0].error is not None
    assert "took more than 0.2 s" in case.grades[0].error


def test_a_run_stops_matching_a_pattern_after_strikes_timeouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each of 30 cases would take the full limit; after STRIKES of them the rest are errors at once.
    _echo_project(tmp_path, 30)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--output", "out.jsonl", "-j", "1"]) == 3
    errors = [c.grades[0].error or "" for c in load_record(tmp_path / "out.jsonl").cases]
    assert sum("took more than 0.2 s on this text" in e for e in errors) == _regex.STRIKES
    assert sum("took more than 0.2 s on 5 texts already, so it is not run again" in e for e in errors) == 25


def test_a_pattern_under_the_limit_on_every_text_stops_at_the_jobs_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Twenty-three a's and a b: each match backtracks for milliseconds, far under TIMEOUT_S, so no
    # strike is counted; all the cases together are over the job's limit (lowered here).
    monkeypatch.setattr(_jobclock, "JOB_SECONDS", 0.05)
    _echo_project(tmp_path, 40, victim="a" * 23 + "b")
    monkeypatch.chdir(tmp_path)
    for error in run_past_the_job_limit(tmp_path):
        assert error.startswith(f"the pattern /{EVIL}/ has taken ")
        assert error.endswith(
            " s on this run's texts already, over the limit of 0.05 s for a prompt on an eval set, so "
            "it is not run again (repetition of overlapping alternatives, such as (a|aa)+, backtracks "
            "without end; simplify it)"
        )
    assert compile_pattern(EVIL).timeouts == 0


def test_the_monitor_grades_a_window_within_the_jobs_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # A window of live traffic is graded as a run's job is: the pattern has the job's limit in all.
    from agent_evals import monitor
    from agent_evals.checks import WindowRow

    monkeypatch.setattr(_jobclock, "JOB_SECONDS", 0.05)
    rows = [WindowRow(line=i, at=None, version=None, vars={}, output="a" * 23 + "b") for i in range(1, 41)]
    window = monitor.Window(
        log="prod.jsonl",
        since=dt.datetime(2026, 12, 1),
        until=dt.datetime(2026, 12, 2),
        version=None,
        rows=rows,
    )
    grader = build_grader(GraderSpec(type="regex", pattern=EVIL))
    prompt: Any = SimpleNamespace(output=SimpleNamespace(format="text", json_schema=None), tools=())
    for _ in range(2):  # each window has a clock of its own
        _, results = monitor.grade(window, [grader], prompt)
        statuses = [r.status for r in results]
        graded = statuses.index("error")
        assert graded > 0
        assert statuses == ["fail"] * graded + ["error"] * (40 - graded)
        assert "s on this run's texts already, over the limit of 0.05 s" in (
            results[-1].grades[0].error or ""
        )


def test_the_local_models_parameter_pattern_gives_up_instead_of_hanging() -> None:
    from agent_evals.providers.local import _MISSING, _pattern_match

    started = time.monotonic()
    assert _pattern_match(r"(a|aa)+c", [VICTIM]) is _MISSING
    assert _pattern_match(r"^A-\d+$", ["order A-17 today"]) == "A-17"
    assert time.monotonic() - started < 5
