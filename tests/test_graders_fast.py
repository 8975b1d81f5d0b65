"""`contains` and `exact_match` after their speed-ups give the grades they gave before.

Each property compares with the code as it was (kept here as the reference): the
same score, verdict, reason text and details, for any options, output and expected.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Coroutine
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent_evals.graders import GraderBase, Sample, build_grader
from agent_evals.graders._common import as_text, quote_all
from agent_evals.graders.base import Grade
from agent_evals.graders.exact_match import matches, normalize_text
from agent_evals.models import Case, GraderSpec


def _result(coroutine: Coroutine[Any, Any, Grade]) -> Grade:
    # The graders never await: run the coroutine to its end without an event loop.
    try:
        coroutine.send(None)
    except StopIteration as stop:
        grade: Grade = stop.value
        return grade
    raise AssertionError("the grader awaited something")


def _make(type_: str, **options: Any) -> GraderBase:
    return build_grader(GraderSpec(type=type_, **options))


# -- exact_match ------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")


def _normalize_before(text: str, steps: tuple[str, ...]) -> str:
    if "case" in steps:
        text = text.casefold()
    if "punctuation" in steps:
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    if "whitespace" in steps:
        text = _SPACES.sub(" ", text).strip()
    return text


def _canonical_before(value: Any, steps: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _normalize_before(value, steps)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical_before(v, steps) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_before(v, steps) for v in value]
    return value


def _same_before(actual: Any, expected: Any, steps: tuple[str, ...]) -> bool:
    if isinstance(actual, str) != isinstance(expected, str):
        try:
            if isinstance(actual, str):
                actual = json.loads(actual)
            else:
                expected = json.loads(expected)
        except ValueError:
            return False
    if isinstance(actual, str):
        return _normalize_before(actual, steps) == _normalize_before(expected, steps)
    dump = json.dumps
    return dump(_canonical_before(actual, steps), sort_keys=True, default=str) == dump(
        _canonical_before(expected, steps), sort_keys=True, default=str
    )


def _matches_before(actual: Any, expected: Any, steps: tuple[str, ...]) -> bool:
    if _same_before(actual, expected, steps):
        return True
    return isinstance(expected, list) and any(_same_before(actual, option, steps) for option in expected)


# Text rich in what normalisation touches: every kind of Unicode space, punctuation, case.
WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()]
TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(WHITESPACE), st.sampled_from("aAßẞ.,!-'\"1"), st.characters()),
    max_size=12,
)
STEPS = st.lists(st.sampled_from(["case", "whitespace", "punctuation"]), unique=True).map(tuple)
SCALAR = st.one_of(TEXT, st.integers(-3, 3), st.sampled_from([1.0, 2.5, True, False, None]))
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=2)),
    max_leaves=6,
)
JSONISH_TEXT = st.one_of(TEXT, VALUE.map(json.dumps))


@settings(max_examples=500, deadline=None)
@given(text=TEXT, steps=STEPS)
@example(text="\x1c a\u3000\u2028b \x85", steps=("whitespace",))
def test_normalize_text_is_as_before(text: str, steps: tuple[str, ...]) -> None:
    assert normalize_text(text, steps) == _normalize_before(text, steps)


@settings(max_examples=500, deadline=None)
@given(actual=st.one_of(JSONISH_TEXT, VALUE), expected=st.one_of(JSONISH_TEXT, VALUE), steps=STEPS)
@example(actual="answer 7", expected="answer 7", steps=())
@example(actual="1", expected=True, steps=())
@example(actual="true", expected=1, steps=())
def test_matches_is_as_before(actual: Any, expected: Any, steps: tuple[str, ...]) -> None:
    try:
        before = _matches_before(actual, expected, steps)
    except AttributeError:
        # The one input the code before crashed on (found by this test): an output that parses to
        # a JSON string, against a list or an object. It equals neither.
        assert isinstance(actual, str)
        before = False
    assert matches(actual, expected, steps) == before


def test_a_quoted_output_against_a_list_of_answers_is_graded_not_a_crash() -> None:
    grader = _make("exact_match", normalize=["case"])
    for expected in (["refund", "billing"], {"disposition": "refund"}, []):
        grade = _result(grader.grade(Sample(case=Case(id="c1", expected=expected), output='"refund"')))
        assert grade.passed is False
    grade = _result(grader.grade(Sample(case=Case(id="c1", expected=["Refund"]), output="refund")))
    assert grade.passed is True


@settings(max_examples=300, deadline=None)
@given(output=st.one_of(JSONISH_TEXT, st.sampled_from(["answer 7", " Answer  7 ", "answer 8"])), steps=STEPS)
def test_exact_match_grades_a_text_output_as_before(output: str, steps: tuple[str, ...]) -> None:
    grader = _make("exact_match", normalize=list(steps))
    case = Case(id="c1", expected="answer 7")
    grade = _result(grader.grade(Sample(case=case, output=output)))

    assert grade.passed == _matches_before(output, "answer 7", steps)
    assert grade.details == {"expected": "answer 7", "actual": output, "normalize": list(steps)}


# -- contains ---------------------------------------------------------------------------


def _contains_before(opts: dict[str, Any], case: Case, output: str) -> Grade:
    """The grade `contains` gave before (text output, no `field`)."""
    case_sensitive = opts.get("case_sensitive", False)
    negate = opts.get("negate", False)
    mode = opts.get("mode", "all")
    if "value" in opts:
        needles = [opts["value"]]
    elif "values" in opts:
        needles = list(opts["values"])
    else:
        wanted = case.expected
        needles = [as_text(v) for v in (wanted if isinstance(wanted, list) else [wanted])]
    haystack = output if case_sensitive else output.casefold()
    present = [(n if case_sensitive else n.casefold()) in haystack for n in needles]
    holds = [p != negate for p in present]
    if mode == "all":
        score, passed = sum(holds) / len(holds), all(holds)
    else:
        passed = any(holds)
        score = 1.0 if passed else 0.0
    found = [n for n, p in zip(needles, present, strict=True) if p]
    missing = [n for n, p in zip(needles, present, strict=True) if not p]
    if negate and passed:
        what = f"does not contain {quote_all(missing)}"
    elif negate:
        what = (
            f"contains forbidden {quote_all(found)}"
            if mode == "all"
            else f"contains all of {quote_all(found)}"
        )
    elif passed:
        what = f"contains {quote_all(found)}"
    elif mode == "any":
        what = f"contains none of {quote_all(needles)}"
    else:
        what = f"missing {quote_all(missing)}"
    details = {"values": needles, "present": found, "mode": mode, "negate": negate}
    return Grade(score=score, passed=passed, reason=what, details=details)


NEEDLE = st.one_of(
    st.sampled_from(["answer", "Answer", "ß", "SS", "x\ny", "a\tb", "7", "long " * 15]),
    st.text(min_size=1, max_size=6),
)
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.sampled_from(["all", "any"]),
        "negate": st.booleans(),
        "case_sensitive": st.booleans(),
    },
).flatmap(
    lambda common: st.one_of(
        st.builds(lambda v: {**common, "value": v}, NEEDLE),
        st.builds(lambda vs: {**common, "values": vs}, st.lists(NEEDLE, min_size=1, max_size=4)),
        st.just(common),  # the case's expected value
    )
)
OUTPUT = st.builds(
    lambda parts: " ".join(parts),
    st.lists(st.one_of(NEEDLE, st.sampled_from(["ANSWER 7", "none"])), max_size=4),
)


@settings(max_examples=500, deadline=None)
@given(opts=OPTIONS, output=OUTPUT, expected=st.one_of(NEEDLE, st.lists(NEEDLE, min_size=1, max_size=3)))
def test_contains_grades_as_before(opts: dict[str, Any], output: str, expected: Any) -> None:
    grader = _make("contains", **opts)
    case = Case(id="c1", expected=expected)

    assert _result(grader.grade(Sample(case=case, output=output))) == _contains_before(opts, case, output)


def test_contains_prepares_values_from_its_options_once() -> None:
    grader = _make("contains", values=["Refund", "ORDER"])
    samples = Sample(case=Case(id="c1"), output="a refund"), Sample(case=Case(id="c2"), output="your order")
    assert grader._needles(samples[0]) is grader._needles(samples[1])  # type: ignore[attr-defined]

    first, second = (_result(grader.grade(s)) for s in samples)

    assert (first.reason, second.reason) == ("missing 'ORDER'", "missing 'Refund'")
    # Each grade owns its details: a reporter that edits one cannot change another.
    assert first.details["values"] == second.details["values"] == ["Refund", "ORDER"]
    assert first.details["values"] is not second.details["values"]


def test_contains_with_the_expected_value_reads_each_case() -> None:
    grader = _make("contains")
    one = _result(grader.grade(Sample(case=Case(id="c1", expected="refund"), output="A REFUND")))
    two = _result(grader.grade(Sample(case=Case(id="c2", expected=["order", 42]), output="order 41")))

    assert (one.passed, one.reason) == (True, "contains 'refund'")
    assert (two.score, two.reason, two.details["values"]) == (0.5, "missing '42'", ["order", "42"])
