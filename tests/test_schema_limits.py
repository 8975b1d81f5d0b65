"""JSON Schemas from prompt and eval set files check values within limits: a schema that recurses
or multiplies is an error on the case (or the recorded call), not a crash or a hung run.

`{"$ref": "#"}` made every check a RecursionError (an internal error of `run`), and thirty small
`$defs` that each refer twice to the next take 2^30 steps: hours for one value.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from agent_evals import _jobclock
from agent_evals.cli import main
from agent_evals.graders import build_grader, json_schema
from agent_evals.graders.base import Sample
from agent_evals.graders.json_schema import BoundedSchema, SchemaTooCostly
from agent_evals.models import Case, GraderSpec
from agent_evals.record import ToolCallRecord, load_record
from tests.support import refused, run_past_the_job_limit, write_tree

SELF = {"$ref": "#"}
FIX = (
    "(anyOf, oneOf, allOf and $ref that branch on the same value multiply, and a $ref to itself never "
    "ends; flatten the schema)"
)


def doubling(levels: int) -> dict[str, Any]:
    """`levels` definitions, each `anyOf` two references to the next: 2^levels steps for a non-string."""
    defs: dict[str, Any] = {
        f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]}
        for i in range(levels)
    }
    defs[f"d{levels}"] = {"type": "string"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs, "$ref": "#/$defs/d0"}


def echo_project(root: Path, *, prompt: str, evalset: str) -> None:
    """A prompt on the local echo model and its eval set, each with `prompt` or `evalset` added (synthetic)."""
    write_tree(
        root,
        {
            "agent-evals.yaml": "schema_version: 1\n",
            "prompts/p.yaml": (
                "schema_version: 1\nid: p\nversion: 1\nowner: {name: synthetic, oncall: synthetic}\n"
                "model: {provider: local, name: echo}\n"
                "messages:\n  - role: user\n    content: '{{ text }}'\n" + prompt
            ),
            "evalsets/e.yaml": (
                "schema_version: 1\nid: e\nprompt: p\nprovenance: {source: synthetic, synthetic: true}\n"
                + evalset
            ),
        },
    )


def test_a_schema_that_refers_to_itself_is_an_error_not_a_crash() -> None:
    with pytest.raises(SchemaTooCostly) as caught:
        BoundedSchema(SELF).errors({"a": 1})
    assert str(caught.value) == f"the JSON Schema refers to itself without end on this value {FIX}"


def test_a_schema_that_multiplies_stops_at_the_step_limit_then_is_not_used_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(json_schema, "SCHEMA_STEPS", 4096)
    monkeypatch.setattr(json_schema, "STRIKES", 2)
    schema = BoundedSchema(doubling(30))
    for _ in range(2):
        with pytest.raises(SchemaTooCostly) as caught:
            schema.errors(5)
        assert str(caught.value) == f"the JSON Schema takes more than 4,096 steps on this value {FIX}"
    with pytest.raises(SchemaTooCostly) as caught:
        schema.errors("a string")  # which it would pass at once
    assert str(caught.value) == (
        f"the JSON Schema went over its limits on 2 values already, so it is not used again {FIX}"
    )


def test_the_same_schema_within_the_limits_checks_as_jsonschema_does() -> None:
    # Ten levels are 1,024 paths: within the limits, and the value fails them all the same way.
    schema = BoundedSchema(doubling(10))
    assert schema.errors("a string") == []
    (error,) = schema.errors(5)
    assert error.message == "5 is not valid under any of the given schemas"
    assert schema.overruns == 0


# A property that refers to itself: the probes (one value of each type) never reach it, a value does.
DEEP_SELF = {"type": "object", "properties": {"id": {"$ref": "#/properties/id"}}}


def test_a_schema_under_the_limits_on_every_value_stops_at_the_jobs_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten doubling levels: each check is 1,024 paths, tens of milliseconds and within the per-check
    # limits, so no overrun is counted; all the cases together are over the job's limit (lowered here).
    monkeypatch.setattr(_jobclock, "JOB_SECONDS", 0.05)
    schema = json.dumps(doubling(10))
    echo_project(
        tmp_path,
        prompt="",
        evalset=f"graders:\n  - type: json_schema\n    schema: {schema}\ncases:\n"
        + "".join(f"  - id: c{i}\n    vars: {{text: '5'}}\n" for i in range(40)),
    )
    monkeypatch.chdir(tmp_path)
    for error in run_past_the_job_limit(tmp_path):
        assert error.startswith("the JSON Schema has taken ")
        assert error.endswith(
            " s on this run's values already, over the limit of 0.05 s for a prompt on an eval set, "
            f"so it is not used again {FIX}"
        )


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (
            "output:\n  format: json\n  schema: {$ref: '#'}\n",
            "prompts/p.yaml:11: output schema is an unusable JSON Schema: it refers to itself without end "
            f"on the value null {FIX}",
        ),
        (
            "output:\n  format: json\n  schema: {type: 12}\n",
            "prompts/p.yaml:11: output schema is not a valid JSON Schema: 12 is not valid under any of the "
            "given schemas (see https://json-schema.org/understanding-json-schema/)",
        ),
        (
            "tools:\n  - name: lookup\n    description: Look it up (synthetic).\n    parameters: {$ref: '#'}\n",
            "prompts/p.yaml:12: the parameters of tool 'lookup' are an unusable JSON Schema: it refers to "
            f"itself without end on the value null {FIX}",
        ),
    ],
    ids=["output-recursive", "output-invalid", "tool-parameters"],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_prompt_whose_schema_cannot_be_used_is_refused_before_anything_is_sent(
    prompt: str,
    expected: str,
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The prompt file's error, at its line, exit 2 in both: in `run`, not a case error of every case (exit 3).
    echo_project(
        tmp_path,
        prompt=prompt,
        evalset="graders:\n  - type: json_schema\ncases:\n  - id: c1\n    vars: {text: '{\"a\": 1}'}\n",
    )
    monkeypatch.chdir(tmp_path)
    assert refused(command, tmp_path, capsys) == (2, [expected])


# Small pools, so that arrays often repeat an item (or one equal to it: 1 and 1.0, reordered keys).
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([0.0, 1.0, 1.5]), st.sampled_from(["", "a"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["k", "l"]), inner, max_size=2)
    ),
    max_leaves=6,
)


@given(st.lists(_VALUES, max_size=6))
@example([True, 1])
@example([[False], [0.0]])
@example([{"k": 1, "l": "a"}, {"l": "a", "k": 1.0}])
@example([[1, 2], [2, 1]])
def test_unique_items_agrees_with_jsonschema(items: list[Any]) -> None:
    from jsonschema import Draft202012Validator

    schema = {"uniqueItems": True}
    expected = Draft202012Validator(schema).is_valid(items)
    assert (BoundedSchema(schema).errors(items) == []) == expected
    assert (BoundedSchema(schema).errors(list(reversed(items))) == []) == expected


def test_unique_items_counts_a_step_per_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # jsonschema compares objects pairwise, in one uncounted step: 2,000 distinct objects are two
    # million comparisons (50,000 in a model's output, about 35 min). Each value is now a step.
    monkeypatch.setattr(json_schema, "SCHEMA_STEPS", 1024)
    schema = BoundedSchema({"type": "array", "uniqueItems": True})
    with pytest.raises(SchemaTooCostly, match="takes more than 1,024 steps on this value"):
        schema.errors([{"id": i} for i in range(2000)])
    assert schema.errors([{"id": 1}, {"id": 2}]) == []
    (error,) = schema.errors([{"id": 1, "n": 1}, {"n": 1.0, "id": 1}])
    assert error.message.endswith("has non-unique elements")


def test_a_run_whose_output_schema_refers_to_itself_below_the_probes_ends_with_the_case_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The probes (one value of each type) never reach the property's self-reference; the output does.
    echo_project(
        tmp_path,
        prompt="output:\n  format: json\n  schema: {type: object, properties: {id: {$ref: '#/properties/id'}}}\n",
        evalset="graders:\n  - type: json_schema\ncases:\n  - id: c1\n    vars: {text: '{\"id\": 1}'}\n",
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--output", "out.jsonl"]) == 3  # could not evaluate, not an internal error
    _, err = capsys.readouterr()
    assert "internal error" not in err
    (case,) = load_record(tmp_path / "out.jsonl").cases
    assert case.status == "error"
    assert case.grades[0].error == f"the JSON Schema refers to itself without end on this value {FIX}"


def test_a_schema_no_value_can_be_checked_against_is_refused_when_it_loads() -> None:
    with pytest.raises(ValidationError) as caught:
        build_grader(GraderSpec(type="tool_args", tool="lookup", schema=SELF))
    assert f"unusable JSON Schema: it refers to itself without end on the value null {FIX}" in str(
        caught.value
    )


def test_tool_args_with_a_schema_that_refers_to_itself_cannot_grade() -> None:
    grader = build_grader(GraderSpec(type="tool_args", tool="lookup", schema=DEEP_SELF))
    sample = Sample(
        case=Case(id="c"), output="done", tool_calls=(ToolCallRecord(name="lookup", arguments={"id": 1}),)
    )
    with pytest.raises(SchemaTooCostly, match="refers to itself without end on this value"):
        asyncio.run(grader.grade(sample))


def test_validate_names_a_recorded_call_a_recursive_parameter_schema_cannot_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The probes (one value of each type) never reach the property's self-reference; the recorded
    # arguments do: one line at the recorded call, not a crash. (A schema the probes reach is refused
    # at the prompt's line: the tool-parameters case above.)
    echo_project(
        tmp_path,
        prompt=(
            "tools:\n  - name: lookup\n    description: Look it up (synthetic).\n"
            "    parameters: {type: object, properties: {id: {$ref: '#/properties/id'}}}\n"
        ),
        evalset=(
            "graders:\n  - type: contains\n    value: x\ncases:\n  - id: c1\n    vars: {text: hi}\n"
            "    tools:\n      - {name: lookup, arguments: {id: 1}, result: ok}\n"
        ),
    )
    monkeypatch.chdir(tmp_path)
    assert refused("validate", tmp_path, capsys) == (
        2,
        [
            "evalsets/e.yaml:12: case 'c1' records lookup arguments that do not fit its parameters: "
            f"the JSON Schema refers to itself without end on this value {FIX} (fix the recorded arguments, "
            "or the parameters of 'lookup' in prompts/p.yaml)"
        ],
    )
