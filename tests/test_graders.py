"""Tests for the built-in graders: one group per grader, one test per option or rule."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent_evals.errors import ConfigError, GraderError
from agent_evals.graders import Grade, GraderBase, Sample, build_grader
from agent_evals.models import Case, GraderSpec
from agent_evals.providers.base import ChatRequest, Completion, Usage

_UNSET: Any = object()


def make(type_: str, **options: Any) -> GraderBase:
    return build_grader(GraderSpec(type=type_, **options))


def sample(
    output: Any,
    *,
    expected: Any = None,
    vars: dict[str, Any] | None = None,
    tags: tuple[str, ...] = (),
    output_schema: dict[str, Any] | None = None,
    call_model: Any = None,
) -> Sample:
    """A sample as the runner builds it for a JSON prompt: dicts and lists are dumped and parsed back."""
    text = output if isinstance(output, str) else json.dumps(output)
    parsed, parse_error = None, None
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        parse_error = str(exc)
    case = Case(id="c1", vars=vars or {}, expected=expected, tags=tags)
    return Sample(
        case=case,
        output=text,
        parsed=parsed,
        parse_error=parse_error,
        output_schema=output_schema,
        call_model=call_model,
    )


def text_sample(output: str, **kwargs: Any) -> Sample:
    """A sample of a text prompt: the runner does not parse the output."""
    base = sample(output, **kwargs)
    return Sample(case=base.case, output=output, call_model=base.call_model, output_schema=base.output_schema)


def grade(grader: GraderBase, s: Sample) -> Grade:
    return asyncio.run(grader.grade(s))


# --- exact_match ---------------------------------------------------------------------


def test_exact_match_default_strips_and_collapses_whitespace() -> None:
    g = make("exact_match")
    assert grade(g, text_sample("  refund\n", expected="refund")).passed
    assert grade(g, text_sample("Jane \t  Doe", expected="Jane Doe")).passed
    assert not grade(g, text_sample("re fund", expected="refund")).passed


def test_exact_match_without_normalisation_is_exact() -> None:
    g = make("exact_match", normalize=[])
    assert not grade(g, text_sample(" refund", expected="refund")).passed
    assert grade(g, text_sample("refund", expected="refund")).passed


def test_exact_match_case_normalisation() -> None:
    assert not grade(make("exact_match"), text_sample("Refund", expected="refund")).passed
    assert grade(make("exact_match", normalize=["case"]), text_sample("REFUND", expected="refund")).passed


def test_exact_match_punctuation_normalisation() -> None:
    assert not grade(make("exact_match"), text_sample("refund.", expected="refund")).passed
    g = make("exact_match", normalize=["punctuation", "whitespace"])
    assert grade(g, text_sample("re-fund !", expected="refund")).passed


def test_exact_match_normalize_takes_a_single_name() -> None:
    assert not grade(make("exact_match", normalize="case"), text_sample(" REFUND", expected="refund")).passed
    assert grade(make("exact_match", normalize="case"), text_sample("REFUND", expected="refund")).passed


def test_exact_match_unknown_normaliser_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="normalize"):
        make("exact_match", normalize=["accents"])


def test_exact_match_reason_and_score() -> None:
    result = grade(make("exact_match"), text_sample("billing", expected="refund"))
    assert (result.score, result.passed) == (0.0, False)
    assert result.reason == "expected 'refund', got 'billing'"
    assert result.details["expected"] == "refund"


def test_exact_match_field_path_into_nested_json() -> None:
    g = make("exact_match", field="a.b[1]")
    assert grade(g, sample({"a": {"b": ["x", "refund"]}}, expected="refund")).passed
    assert not grade(g, sample({"a": {"b": ["refund", "x"]}}, expected="refund")).passed


def test_exact_match_field_reads_the_same_key_of_a_mapping_expected() -> None:
    g = make("exact_match", field="disposition")
    expected = {"disposition": "refund", "priority": 2}
    assert grade(g, sample({"disposition": "refund"}, expected=expected)).passed
    result = grade(g, sample({"disposition": "billing"}, expected=expected))
    assert result.reason == "disposition: expected 'refund', got 'billing'"


def test_exact_match_expected_field() -> None:
    g = make("exact_match", field="disposition", expected_field="label.name")
    assert grade(g, sample({"disposition": "refund"}, expected={"label": {"name": "refund"}})).passed
    assert g.expected_path() == "label.name"


def test_exact_match_one_of_a_list() -> None:
    g = make("exact_match", field="d")
    assert grade(g, sample({"d": "credit"}, expected=["refund", "credit"])).passed
    result = grade(g, sample({"d": "billing"}, expected=["refund", "credit"]))
    assert not result.passed
    assert result.reason == "d: expected one of 'refund', 'credit', got 'billing'"


def test_exact_match_a_list_value_matches_the_whole_list() -> None:
    g = make("exact_match", field="tags")
    assert grade(g, sample({"tags": ["a", "b"]}, expected=["a", "b"])).passed
    assert not grade(g, sample({"tags": ["b", "a"]}, expected=["a", "b"])).passed


def test_exact_match_numbers_compare_by_value_but_bools_are_not_numbers() -> None:
    g = make("exact_match", field="n")
    assert grade(g, sample({"n": 1.0}, expected=1)).passed
    assert not grade(g, sample({"n": True}, expected=1)).passed
    assert not grade(g, sample({"n": 2}, expected=1)).passed


def test_exact_match_objects_ignore_key_order_and_normalise_nested_strings() -> None:
    g = make("exact_match", normalize=["case"])
    assert grade(g, sample('{"b": "YES", "a": 1}', expected={"a": 1, "b": "yes"})).passed
    assert not grade(g, sample('{"b": "no", "a": 1}', expected={"a": 1, "b": "yes"})).passed


def test_exact_match_text_output_against_a_non_string_expected_is_read_as_json() -> None:
    g = make("exact_match")
    assert grade(g, text_sample(" 42\n", expected=42)).passed
    assert not grade(g, text_sample("forty-two", expected=42)).passed


def test_exact_match_missing_field_fails_with_reason() -> None:
    result = grade(make("exact_match", field="disposition"), sample({"other": 1}, expected="refund"))
    assert (result.passed, result.score) == (False, 0.0)
    assert result.reason == "output has no field 'disposition'"


def test_exact_match_non_json_output_with_a_field_fails_not_errors() -> None:
    result = grade(make("exact_match", field="disposition"), sample("I think refund", expected="refund"))
    assert not result.passed
    assert result.reason.startswith("cannot read field 'disposition': Expecting value")


def test_exact_match_without_expected_is_a_grader_error() -> None:
    g = make("exact_match")
    assert g.needs_expected
    with pytest.raises(GraderError, match="case 'c1' has no expected value"):
        grade(g, text_sample("refund"))
    with pytest.raises(GraderError, match="no expected value at 'disposition'"):
        grade(make("exact_match", field="disposition"), sample({"disposition": "x"}, expected={"other": "x"}))


def test_field_paths_are_checked_at_build_time() -> None:
    with pytest.raises(ValidationError, match="not a field path"):
        make("exact_match", field="a..b")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        make("exact_match", feild="a")


# --- contains ------------------------------------------------------------------------


def test_contains_value_ignores_case_by_default() -> None:
    assert grade(make("contains", value="refund"), text_sample("We will REFUND you")).passed
    result = grade(make("contains", value="refund", case_sensitive=True), text_sample("We will REFUND you"))
    assert not result.passed
    assert result.reason == "missing 'refund'"


def test_contains_all_scores_the_fraction_found() -> None:
    result = grade(
        make("contains", values=["refund", "sorry", "policy"]), text_sample("Sorry, a refund is due")
    )
    assert not result.passed
    assert result.score == pytest.approx(2 / 3)
    assert result.reason == "missing 'policy'"


def test_contains_any_needs_one() -> None:
    g = make("contains", values=["refund", "credit"], mode="any")
    hit = grade(g, text_sample("store credit"))
    assert (hit.passed, hit.score) == (True, 1.0)
    miss = grade(g, text_sample("no luck"))
    assert (miss.passed, miss.score) == (False, 0.0)
    assert miss.reason == "contains none of 'refund', 'credit'"


def test_contains_negate_all_means_none_of_them() -> None:
    g = make("contains", values=["As an AI", "I cannot"], negate=True)
    assert grade(g, text_sample("Here is your refund.")).passed
    result = grade(g, text_sample("As an AI, here is your refund."))
    assert not result.passed
    assert result.score == 0.5
    assert result.reason == "contains forbidden 'As an AI'"


def test_contains_negate_any_means_at_least_one_missing() -> None:
    g = make("contains", values=["a", "b"], mode="any", negate=True)
    assert grade(g, text_sample("only a")).passed
    assert not grade(g, text_sample("a and b")).passed


def test_contains_takes_the_expected_value_when_no_values_are_given() -> None:
    g = make("contains")
    assert g.needs_expected
    assert grade(g, text_sample("your refund", expected="Refund")).passed
    assert not grade(make("contains"), text_sample("your refund", expected=["refund", "policy"])).passed
    with pytest.raises(GraderError, match="no expected value"):
        grade(g, text_sample("x"))


def test_contains_expected_field() -> None:
    g = make("contains", expected_field="must_say")
    assert g.expected_path() == "must_say"
    assert grade(g, text_sample("a refund", expected={"must_say": "refund"})).passed
    assert not make("contains", value="x").needs_expected


def test_contains_field_searches_json_text_of_a_non_string() -> None:
    g = make("contains", field="items", value='"sku-1"')
    assert grade(g, sample({"items": ["sku-1", "sku-2"]})).passed


def test_contains_option_conflicts_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="either 'value' or 'values'"):
        make("contains", value="a", values=["b"])
    with pytest.raises(ValidationError, match="'expected_field' is only used"):
        make("contains", value="a", expected_field="x")
    with pytest.raises(ValidationError, match="mode"):
        make("contains", value="a", mode="most")


# --- regex ---------------------------------------------------------------------------


def test_regex_searches_by_default_and_fullmatch_needs_the_whole_text() -> None:
    assert grade(make("regex", pattern=r"\d{3}"), text_sample("order 123 shipped")).passed
    result = grade(make("regex", pattern=r"\d{3}", fullmatch=True), text_sample("order 123 shipped"))
    assert not result.passed
    assert result.reason == r"does not fully match /\d{3}/"
    assert grade(make("regex", pattern=r"\d{3}", fullmatch=True), text_sample("123")).passed


def test_regex_flags() -> None:
    assert not grade(make("regex", pattern="refund"), text_sample("REFUND")).passed
    assert grade(make("regex", pattern="refund", flags=["ignorecase"]), text_sample("REFUND")).passed
    assert not grade(make("regex", pattern="^b$"), text_sample("a\nb")).passed
    assert grade(make("regex", pattern="^b$", flags=["multiline"]), text_sample("a\nb")).passed
    assert not grade(make("regex", pattern="a.b"), text_sample("a\nb")).passed
    assert grade(make("regex", pattern="a.b", flags=["dotall"]), text_sample("a\nb")).passed
    assert grade(make("regex", pattern="A", flags="ignorecase"), text_sample("a")).passed


def test_regex_field_and_match_details() -> None:
    result = grade(make("regex", field="id", pattern=r"T-\d+"), sample({"id": "ticket T-42"}))
    assert result.passed
    assert result.details["match"] == "T-42"


def test_regex_bad_pattern_is_a_validation_error_at_build_time() -> None:
    with pytest.raises(ValidationError, match="invalid regular expression: missing \\)"):
        make("regex", pattern="(refund")
    with pytest.raises(ValidationError, match="flags"):
        make("regex", pattern="a", flags=["verbose"])


# --- json_schema -----------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["disposition", "confidence"],
    "properties": {
        "disposition": {"enum": ["refund", "credit"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "items": {"type": "array", "items": {"type": "string"}},
    },
}


def test_json_schema_valid_output_passes() -> None:
    result = grade(make("json_schema", schema=SCHEMA), sample({"disposition": "refund", "confidence": 0.9}))
    assert (result.passed, result.score) == (True, 1.0)


def test_json_schema_reason_lists_violations_with_paths() -> None:
    result = grade(make("json_schema", schema=SCHEMA), sample({"disposition": "billing", "confidence": 2}))
    assert not result.passed
    assert result.reason.startswith("2 schema violations: ")
    assert "$.disposition: 'billing' is not one of ['refund', 'credit']" in result.reason
    assert "$.confidence: 2 is greater than the maximum of 1" in result.reason
    assert [e["path"] for e in result.details["errors"]] == ["$.disposition", "$.confidence"]


def test_json_schema_reason_caps_the_list() -> None:
    output = {"items": [1, 2, 3, 4, 5]}
    result = grade(make("json_schema", schema=SCHEMA), sample(output))
    assert result.details["error_count"] == 7
    assert len(result.details["errors"]) == 7
    assert result.reason == (
        "7 schema violations: $: 'disposition' is a required property; "
        "$: 'confidence' is a required property; $.items[0]: 1 is not of type 'string' (and 4 more)"
    )


def test_json_schema_non_json_output_fails_with_the_parse_error() -> None:
    result = grade(make("json_schema", schema=SCHEMA), sample("Sure! Here is the JSON"))
    assert not result.passed
    assert result.reason.startswith("output is not JSON: Expecting value")


def test_json_schema_parses_a_text_prompts_output_itself() -> None:
    g = make("json_schema", schema={"type": "array"})
    assert grade(g, text_sample("[1, 2]")).passed
    assert not grade(g, text_sample("{}")).passed
    assert grade(g, text_sample("nope")).reason.startswith("output is not JSON")


def test_json_schema_inline_schema_is_checked_at_build_time() -> None:
    with pytest.raises(ValidationError, match=r"invalid JSON Schema at \$.type"):
        make("json_schema", schema={"type": "objekt"})
    with pytest.raises(ValidationError, match="schema"):
        make("json_schema", schema="not a mapping")


def test_json_schema_defaults_to_the_prompts_output_schema() -> None:
    g = make("json_schema")
    assert grade(g, sample({"disposition": "refund", "confidence": 1}, output_schema=SCHEMA)).passed
    assert not grade(g, sample({"disposition": "refund"}, output_schema=SCHEMA)).passed


def test_json_schema_without_any_schema_is_a_grader_error() -> None:
    with pytest.raises(GraderError, match="has no schema"):
        grade(make("json_schema"), sample({"a": 1}))


def test_json_schema_bad_prompt_schema_is_a_grader_error() -> None:
    with pytest.raises(GraderError, match="prompt's output schema is not usable"):
        grade(make("json_schema"), sample({"a": 1}, output_schema={"type": 12}))


def test_json_schema_checks_formats() -> None:
    g = make("json_schema", schema={"type": "string", "format": "date"})
    assert grade(g, sample('"2026-11-01"')).passed
    assert not grade(g, sample('"yesterday"')).passed


def test_importing_graders_does_not_import_jsonschema() -> None:
    code = "import sys, agent_evals.graders; sys.exit('jsonschema' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


# --- rubric: criteria ---------------------------------------------------------------------


def rubric(*criteria: dict[str, Any], **options: Any) -> GraderBase:
    return make("rubric", criteria=list(criteria), **options)


def test_rubric_word_and_char_limits() -> None:
    assert grade(rubric({"max_words": 3}), text_sample("one two three")).passed
    result = grade(rubric({"max_words": 3}), text_sample("one two three four five"))
    assert result.reason == "too long: 5 words > 3"
    assert grade(rubric({"min_words": 2}), text_sample("hi")).reason == "too short: 1 words < 2"
    assert grade(rubric({"min_words": 2}), text_sample("hi there")).passed
    assert grade(rubric({"max_chars": 5}), text_sample("123456")).reason == "too long: 6 chars > 5"
    assert grade(rubric({"max_chars": 5}), text_sample("12345")).passed


def test_rubric_mentions_var() -> None:
    g = rubric({"mentions_var": "customer.name"})
    assert grade(g, text_sample("Hello JANE  doe!", vars={"customer": {"name": "Jane Doe"}})).passed
    result = grade(g, text_sample("Hello there", vars={"customer": {"name": "Jane Doe"}}))
    assert result.reason == "does not mention customer.name"


def test_rubric_mentions_var_missing_for_a_case_is_a_grader_error() -> None:
    with pytest.raises(GraderError, match="case 'c1' has no var 'customer_name'"):
        grade(rubric({"mentions_var": "customer_name"}), text_sample("Hello", vars={"other": 1}))


def test_rubric_mentions_expected() -> None:
    g = rubric({"mentions_expected": "order_id"})
    assert g.needs_expected
    assert g.expected_path() == "order_id"
    assert grade(g, text_sample("Order A-17 is on its way", expected={"order_id": "a-17"})).passed
    result = grade(g, text_sample("On its way", expected={"order_id": "A-17"}))
    assert result.reason == "does not mention the expected 'A-17'"
    whole = rubric({"mentions_expected": True})
    assert grade(whole, text_sample("order 42 shipped", expected=42)).passed
    with pytest.raises(GraderError, match="no expected value"):
        grade(whole, text_sample("x"))
    assert not rubric({"max_words": 3}).needs_expected


def test_rubric_contains_and_not_contains() -> None:
    g = rubric({"contains": ["refund", "policy"]})
    assert grade(g, text_sample("Our Refund policy")).passed
    assert grade(g, text_sample("A refund")).reason == "missing 'policy'"
    banned = rubric({"not_contains": "As an AI"})
    assert grade(banned, text_sample("Here you go")).passed
    assert grade(banned, text_sample("as an AI model, ...")).reason == "contains 'As an AI'"


def test_rubric_matches_and_not_matches() -> None:
    assert grade(rubric({"matches": r"T-\d+"}), text_sample("ticket T-42")).passed
    assert grade(rubric({"matches": r"T-\d+"}), text_sample("no ticket")).reason == r"does not match /T-\d+/"
    result = grade(rubric({"not_matches": r"\$\d+"}), text_sample("that costs $40"))
    assert not result.passed
    assert result.reason == r"matches /\$\d+/ ('$40')"


def test_rubric_weights_and_default_threshold() -> None:
    criteria = ({"max_words": 3, "weight": 3}, {"contains": "refund"})
    result = grade(rubric(*criteria), text_sample("one two"))
    assert result.score == pytest.approx(0.75)
    assert not result.passed  # default pass_threshold 1.0: every criterion must hold
    assert result.reason == "missing 'refund'"
    assert [c["passed"] for c in result.details["criteria"]] == [True, False]
    assert result.details["criteria"][0]["weight"] == 3


def test_rubric_pass_threshold() -> None:
    criteria = ({"max_words": 3, "weight": 3}, {"contains": "refund"})
    result = grade(rubric(*criteria, pass_threshold=0.7), text_sample("one two"))
    assert result.passed
    assert result.reason == "1/2 criteria hold (score 0.75 >= 0.7); missing 'refund'"
    assert not grade(rubric(*criteria, pass_threshold=0.8), text_sample("one two")).passed


def test_rubric_reason_names_every_failed_criterion() -> None:
    g = rubric({"max_words": 2}, {"mentions_var": "customer_name", "name": "greets"}, {"contains": "hi"})
    result = grade(g, text_sample("hi there you", vars={"customer_name": "Ann"}))
    assert result.reason == "too long: 3 words > 2; greets: does not mention customer_name"
    assert result.score == pytest.approx(1 / 3)
    assert grade(g, text_sample("hi Ann", vars={"customer_name": "Ann"})).reason == "all 3 criteria hold"


def test_rubric_field() -> None:
    g = rubric({"max_words": 2}, field="reply")
    assert grade(g, sample({"reply": "short one", "notes": "a b c d e f"})).passed
    assert grade(g, sample("not json")).reason.startswith("cannot read field 'reply'")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of 'criteria'"),
        (
            {"criteria": [{"max_words": 1}], "judge": {"provider": "p", "model": "m", "rubric": "r"}},
            "exactly one of",
        ),
        ({"criteria": [{"weight": 2}]}, "a criterion needs one check"),
        ({"criteria": [{"max_words": 1, "contains": "x"}]}, "got max_words and contains"),
        ({"criteria": [{"max_words": 1, "weight": 0}]}, "weights add up to 0"),
        ({"criteria": [{"matches": "(x"}]}, "invalid regular expression"),
        ({"criteria": [{"max_word": 1}]}, "Extra inputs"),
        ({"criteria": []}, "'criteria' is empty"),
        ({"criteria": [{"contains": []}]}, "'contains' is empty"),
        ({"criteria": [{"max_words": 1}], "pass_threshold": 1.5}, "less than or equal to 1"),
    ],
)
def test_rubric_option_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make("rubric", **options)


# --- rubric: judge ----------------------------------------------------------------------------


class FakeJudge:
    """A call_model stand-in that answers with a fixed text and records what it was asked."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[tuple[str, ChatRequest]] = []

    async def __call__(self, provider: str, request: ChatRequest) -> Completion:
        self.calls.append((provider, request))
        return Completion(text=self.text, usage=Usage(input_tokens=120, output_tokens=30), model="judge-1")


JUDGE = {"provider": "openai", "model": "gpt-judge", "rubric": "The reply is polite and offers a refund."}


def judge_grade(
    verdict: str, *, output: str = "Sorry! Refund issued.", **judge: Any
) -> tuple[Grade, FakeJudge]:
    fake = FakeJudge(verdict)
    g = make("rubric", judge={**JUDGE, **judge})
    s = text_sample(output, vars={"complaint": "late parcel"}, expected="offer a refund", call_model=fake)
    return grade(g, s), fake


def test_judge_good_verdict() -> None:
    result, _ = judge_grade('{"reasoning": "Polite, offers a refund.", "score": 4}')
    assert result.score == pytest.approx(0.75)
    assert not result.passed  # default pass_threshold is scale_max
    assert result.reason == "judge scored 4/5 (pass >= 5): Polite, offers a refund."
    assert result.details["reasoning"] == "Polite, offers a refund."
    assert result.details["verdict"] == '{"reasoning": "Polite, offers a refund.", "score": 4}'
    assert result.details["usage"] == {"input_tokens": 120, "output_tokens": 30}
    assert (result.details["provider"], result.details["model"]) == ("openai", "judge-1")


def test_judge_prompt_carries_rubric_vars_expected_and_output() -> None:
    _, fake = judge_grade('{"reasoning": "ok", "score": 5}')
    [(provider, request)] = fake.calls
    assert provider == "openai"
    assert (request.model.provider, request.model.name) == ("openai", "gpt-judge")
    assert (request.model.temperature, request.model.max_tokens) == (0.0, 512)
    assert request.output.format == "json"
    system, user = (m.content for m in request.messages)
    assert [m.role for m in request.messages] == ["system", "user"]
    assert '"score": <integer from 1 to 5>' in system
    assert "The reply is polite and offers a refund." in user
    assert "<output>\nSorry! Refund issued.\n</output>" in user
    assert "late parcel" in user
    assert "<expected>\noffer a refund\n</expected>" in user


def test_judge_include_expected_false_hides_the_expected_value() -> None:
    _, fake = judge_grade('{"reasoning": "ok", "score": 5}', include_expected=False)
    assert "offer a refund" not in fake.calls[0][1].messages[1].content


def test_judge_pass_threshold_and_scale() -> None:
    result, _ = judge_grade('{"reasoning": "fine", "score": 7}', scale_min=0, scale_max=10, pass_threshold=7)
    assert result.passed
    assert result.score == pytest.approx(0.7)
    _, fake = judge_grade('{"score": 7}', scale_min=0, scale_max=10)
    assert "from 0 to 10" in fake.calls[0][1].messages[0].content


def test_judge_accepts_a_fenced_verdict() -> None:
    verdict = 'Here is my verdict:\n```json\n{"reasoning": "Good.", "score": 5}\n```\n'
    result, _ = judge_grade(verdict)
    assert (result.passed, result.score) == (True, 1.0)


def test_judge_fence_wins_over_objects_in_the_prose() -> None:
    verdict = 'Format: {"reasoning": "...", "score": 1}\n```json\n{"reasoning": "Good.", "score": 5}\n```'
    result, _ = judge_grade(verdict)
    assert result.details["judge_score"] == 5


def test_judge_accepts_one_object_amid_prose() -> None:
    result, _ = judge_grade('I weighed {tone} and facts. {"reasoning": "Mostly good.", "score": 3} Done.')
    assert result.score == pytest.approx(0.5)
    assert result.details["reasoning"] == "Mostly good."


@pytest.mark.parametrize(
    ("verdict", "problem"),
    [
        ('{"reasoning": "no score here"}', "no 'score'"),
        ('{"reasoning": "too generous", "score": 9}', "score 9 is off the scale 1..5"),
        ('{"reasoning": "zero", "score": 0}', "off the scale"),
        ('{"reasoning": "words", "score": "4"}', "score '4' is not a number"),
        ('{"reasoning": "bool", "score": true}', "is not a number"),
        ("The output is great, 5 out of 5.", "no JSON object"),
        ('{"score": 4} and also {"score": 2}', "2 JSON objects"),
        ("[4]", "expected a JSON object"),
    ],
)
def test_judge_malformed_verdict_is_a_grader_error(verdict: str, problem: str) -> None:
    with pytest.raises(GraderError, match="malformed judge verdict: .*" + problem.replace(".", r"\.")):
        judge_grade(verdict)


def test_judge_without_call_model_is_a_grader_error() -> None:
    g = make("rubric", judge=JUDGE)
    with pytest.raises(GraderError, match="no call_model"):
        grade(g, text_sample("hi"))


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"scale_min": 5, "scale_max": 5}, "scale_max \\(5\\) must be greater than scale_min"),
        ({"pass_threshold": 6}, "must be on the scale 1..5"),
        ({"rubric": ""}, "at least 1 character"),
        ({"temperature": 3}, "less than or equal to 2"),
        ({"grading": "strict"}, "Extra inputs"),
    ],
)
def test_judge_option_errors(judge: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make("rubric", judge={**JUDGE, **judge})


def test_judge_pass_threshold_belongs_inside_judge() -> None:
    with pytest.raises(ValidationError, match="inside 'judge'"):
        make("rubric", judge=JUDGE, pass_threshold=0.5)


# --- python graders ---------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_module(root: Path, body: str) -> str:
    """Write a grader module with a fresh name (imports are cached per name) and return the name."""
    name = f"grader_{uuid.uuid4().hex[:10]}"
    (root / f"{name}.py").write_text(textwrap.dedent(body))
    return name


def test_python_grader_bool_result(project: Path) -> None:
    mod = write_module(project, "def check(output, parsed, case):\n    return 'refund' in output\n")
    g = make(f"python:{mod}:check")
    assert grade(g, text_sample("a refund")) == Grade(score=1.0, passed=True, reason="check returned True")
    assert not grade(g, text_sample("nothing")).passed


def test_python_grader_number_result_and_threshold(project: Path) -> None:
    mod = write_module(project, "def check(output, parsed, case):\n    return len(output) / 10\n")
    result = grade(make(f"python:{mod}:check"), text_sample("abcdef"))
    assert (result.score, result.passed) == (0.6, True)
    assert result.reason == "check scored 0.60 (pass >= 0.5)"
    assert not grade(make(f"python:{mod}:check", threshold=0.7), text_sample("abcdef")).passed


def test_python_grader_dict_result(project: Path) -> None:
    mod = write_module(
        project,
        """
        def check(output, parsed, case):
            return {"score": 0.2, "passed": True, "reason": "lenient", "details": {"k": 1}}
        """,
    )
    assert grade(make(f"python:{mod}:check"), text_sample("x")) == Grade(
        score=0.2, passed=True, reason="lenient", details={"k": 1}
    )


def test_python_grader_grade_result_and_async_function(project: Path) -> None:
    mod = write_module(
        project,
        """
        from agent_evals.graders import Grade

        async def check(output, parsed, case):
            return Grade(score=0.9, passed=True, reason="async ok")
        """,
    )
    assert grade(make(f"python:{mod}:check"), text_sample("x")).reason == "async ok"


def test_python_grader_gets_parsed_case_and_args(project: Path) -> None:
    mod = write_module(
        project,
        """
        def check(output, parsed, case, want, bonus=0):
            assert case == {"id": "c1", "vars": {"q": "hi"}, "expected": "refund", "tags": ["smoke"]}
            return parsed["d"] == want and bonus == 2
        """,
    )
    g = make(f"python:{mod}:check", args={"want": "refund", "bonus": 2})
    assert grade(g, sample({"d": "refund"}, vars={"q": "hi"}, expected="refund", tags=("smoke",))).passed


def test_python_grader_cannot_change_the_case_for_other_graders(project: Path) -> None:
    mod = write_module(
        project, "def check(output, parsed, case):\n    case['vars']['q'] = 'changed'\n    return True\n"
    )
    s = sample("x", vars={"q": "hi"})
    grade(make(f"python:{mod}:check"), s)
    assert s.case.vars == {"q": "hi"}


def test_python_grader_exception_is_a_one_line_grader_error(project: Path) -> None:
    mod = write_module(project, "def check(output, parsed, case):\n    raise KeyError('disposition')\n")
    with pytest.raises(GraderError, match=rf"^python grader '{mod}:check' raised KeyError: 'disposition'$"):
        grade(make(f"python:{mod}:check"), text_sample("x"))


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ("None", "NoneType; expected a bool, a number in \\[0, 1\\]"),
        ("'yes'", "str; expected"),
        ("1.5", "score of 1.5, outside \\[0, 1\\]"),
        ("{'passed': True}", "dict without 'score'"),
        ("{'score': 1, 'pass': True}", "unknown keys pass"),
        ("{'score': 1, 'passed': 'yes'}", "'passed' must be a bool"),
    ],
)
def test_python_grader_bad_results_are_grader_errors(project: Path, returned: str, problem: str) -> None:
    mod = write_module(project, f"def check(output, parsed, case):\n    return {returned}\n")
    with pytest.raises(GraderError, match=f"python grader '{mod}:check' returned .*" + problem):
        grade(make(f"python:{mod}:check"), text_sample("x"))


def test_python_grader_module_in_a_package_under_the_root(project: Path) -> None:
    pkg = f"checks_{uuid.uuid4().hex[:8]}"
    (project / pkg).mkdir()
    (project / pkg / "__init__.py").write_text("")
    (project / pkg / "tone.py").write_text(
        f"from {pkg}.util import ok\n\ndef grade(output, parsed, case):\n    return ok\n"
    )
    (project / pkg / "util.py").write_text("ok = True\n")
    before = list(sys.path)
    assert grade(make(f"python:{pkg}.tone:grade"), text_sample("x")).passed
    assert sys.path == before  # the root is on sys.path only while importing


def test_python_grader_target_outside_the_root_is_refused(project: Path) -> None:
    with pytest.raises(
        ConfigError, match="python grader 'os:getcwd': module 'os' is not a file under the project root"
    ):
        make("python:os:getcwd")
    with pytest.raises(ConfigError, match="not a file under the project root"):
        make("python:pydantic.main:BaseModel")


def test_python_grader_refuses_a_root_file_that_shadows_an_imported_module(project: Path) -> None:
    (project / "json.py").write_text("def loads(**kwargs):\n    return True\n")
    g = make("python:json:loads")  # the file exists under the root, but 'json' is the stdlib's
    with pytest.raises(ConfigError, match="module name 'json' is already taken by"):
        grade(g, text_sample("x"))


def test_python_grader_refuses_a_symlink_out_of_the_root(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "evil.py"
    outside.write_text("def check(**kwargs):\n    return True\n")
    (project / "linked.py").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"is a link to .*outside the project root"):
        make("python:linked:check")


def test_python_grader_missing_function_or_failing_import_is_a_config_error(project: Path) -> None:
    mod = write_module(project, "def other(output, parsed, case):\n    return True\n")
    with pytest.raises(ConfigError, match=f"module '{mod}' has no function 'check'"):
        grade(make(f"python:{mod}:check"), text_sample("x"))
    broken = write_module(project, "import not_a_real_module_xyz\n")
    with pytest.raises(ConfigError, match=r"importing .* failed: ModuleNotFoundError"):
        grade(make(f"python:{broken}:check"), text_sample("x"))


def test_python_grader_option_errors(project: Path) -> None:
    mod = write_module(project, "def check(output, parsed, case):\n    return True\n")
    with pytest.raises(ValidationError, match="may not set 'output'"):
        make(f"python:{mod}:check", args={"output": "x"})
    with pytest.raises(ValidationError, match="target must be 'module:function'"):
        make(f"python:{mod}")
    with pytest.raises(ValidationError, match="threshold"):
        make(f"python:{mod}:check", threshold=2)
