"""References in JSON Schemas from files resolve inside the schema, and nothing is ever fetched.

jsonschema's default registry retrieves a `$ref` to a URL with `urlopen` (no timeout): a pull
request's prompt schema could make `validate` or `run` fetch any address the CI machine reaches, or
hang on one that never answers. A reference that does not resolve, or a `$schema` that is not a
string, ended both in an internal error. Each is now one located line, exit 2 (all schemas here
are synthetic).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_evals.errors import GraderError
from agent_evals.graders.json_schema import BoundedSchema, schema_problem
from tests.http_server import Response, ScriptedServer
from tests.support import refused
from tests.test_schema_limits import echo_project

NO_FETCH = "point it inside the schema, such as '#/$defs/name': agent-evals never fetches a schema from a URL or a file"
DRAFT_04 = "http://json-schema.org/draft-04/schema#"


@pytest.mark.parametrize(
    "schema",
    [
        {"$schema": DRAFT_04, "definitions": {"a": {"type": "string"}}, "$ref": "#/definitions/a"},
        {"$defs": {"n": {"$dynamicAnchor": "meta", "type": "object"}}, "$dynamicRef": "#meta"},
        {"$ref": "https://json-schema.org/draft/2020-12/schema"},  # a draft's metaschema, bundled
        {
            "$id": "https://example.com/root.json",
            "$defs": {"a": {"$id": "a.json", "type": "string"}},
            "properties": {"x": {"$ref": "a.json"}},
        },
        {"enum": [{"$ref": "nowhere"}]},  # data, not a reference
        {"properties": {"$ref": {"type": "string"}}},  # a property named $ref
    ],
    ids=["draft-04", "dynamic-anchor", "metaschema", "relative-id", "in-enum", "property-name"],
)
def test_references_that_resolve_inside_the_schema(schema: dict[str, Any]) -> None:
    bounded, problem = schema_problem(schema)
    assert problem is None
    assert bounded is not None


@pytest.mark.parametrize(
    ("schema", "text"),
    [
        (
            {"type": "object", "properties": {"a": {"$ref": "other.json"}}},
            f"invalid JSON Schema: $ref 'other.json' at $.properties.a does not resolve ({NO_FETCH})",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"$ref": "#/definitions/gone"}]},
            f"invalid JSON Schema: $ref '#/definitions/gone' at $.items[0] does not resolve ({NO_FETCH})",
        ),
        (
            {"$dynamicRef": "#meta"},
            f"invalid JSON Schema: $dynamicRef '#meta' at $ does not resolve ({NO_FETCH})",
        ),
        (
            {"$schema": 12},
            "invalid JSON Schema: $schema is 12, not a string (give a dialect URI, such as "
            "https://json-schema.org/draft/2020-12/schema, or leave it out)",
        ),
        (
            {"$schema": None},
            "invalid JSON Schema: $schema is null, not a string (give a dialect URI, such as "
            "https://json-schema.org/draft/2020-12/schema, or leave it out)",
        ),
        (
            {"$schema": "https://example.com/my-dialect"},
            "invalid JSON Schema: $schema 'https://example.com/my-dialect' is not a draft of JSON Schema (give a "
            "dialect URI, such as https://json-schema.org/draft/2020-12/schema, or leave it out)",
        ),
    ],
    ids=["file", "missing-pointer", "dynamic", "schema-not-a-string", "schema-null", "unknown-draft"],
)
def test_what_cannot_resolve_is_named_where_it_is(schema: dict[str, Any], text: str) -> None:
    bounded, problem = schema_problem(schema)
    assert bounded is None
    assert problem is not None
    assert problem.text() == text


@pytest.mark.parametrize(
    "dialect", ["http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft-07/schema#"]
)
def test_a_draft_is_known_by_either_scheme(dialect: str) -> None:
    # Draft 7's tuple form of `items`, which 2020-12's metaschema refuses: the schema is read as draft 7.
    bounded, problem = schema_problem({"$schema": dialect, "items": [{"type": "string"}]})
    assert problem is None
    assert bounded is not None
    assert bounded.errors(["a"]) == []
    (error,) = bounded.errors([1])
    assert error.message == "1 is not of type 'string'"


def test_a_reference_to_a_url_is_never_fetched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    http_server: ScriptedServer,
) -> None:
    http_server.route("GET", "/schema.json", Response(json={"type": "string"}))
    url = http_server.url_for("/schema.json")
    echo_project(
        tmp_path,
        prompt=f"output:\n  format: json\n  schema: {{$ref: '{url}'}}\n",
        evalset="graders:\n  - type: json_schema\ncases:\n  - id: c1\n    vars: {text: '\"a\"'}\n",
    )
    monkeypatch.chdir(tmp_path)
    expected = (
        f"prompts/p.yaml:11: output schema is not a valid JSON Schema: $ref '{url}' at $ does not resolve "
        f"({NO_FETCH})"
    )
    for command in ("validate", "run"):
        assert refused(command, tmp_path, capsys) == (2, [expected])
    # Where a schema reaches the checks unchecked, the reference is a grader error: not fetched either.
    with pytest.raises(GraderError, match="the JSON Schema has a reference that does not resolve"):
        BoundedSchema({"properties": {"a": {"$ref": url}}}).errors({"a": 1})
    assert http_server.request_count == 0


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_graders_schema_that_does_not_resolve_is_a_load_error(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    echo_project(
        tmp_path,
        prompt="",
        evalset=(
            "graders:\n  - type: json_schema\n    schema: {properties: {a: {$ref: 'other.json'}}}\n"
            "cases:\n  - id: c1\n    vars: {text: '{}'}\n"
        ),
    )
    monkeypatch.chdir(tmp_path)
    assert refused(command, tmp_path, capsys) == (
        2,
        [
            "evalsets/e.yaml:7: 'graders[0].schema': invalid JSON Schema: $ref 'other.json' at "
            f"$.properties.a does not resolve ({NO_FETCH}) (fix the value)"
        ],
    )


# --- any schema a file can hold: a problem or a schema that checks, never an internal error ----------

_KEYWORDS = [
    "$ref", "$schema", "$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$defs", "definitions", "type",
    "properties", "items", "prefixItems", "anyOf", "oneOf", "allOf", "not", "enum", "const", "pattern",
    "uniqueItems", "minimum", "maxLength", "required", "additionalProperties", "format", "if", "then",
]  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "#", "#/$defs/a", "#meta", "a.json", "string", "object", "^a+$", "date", "a"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from([*_KEYWORDS, "a"]), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


_LEAVES = st.sampled_from(
    [
        {}, {"type": "string"}, {"type": ["integer", "null"]}, {"$ref": "#"}, {"$ref": "#/$defs/a"},
        {"$dynamicRef": "#meta"}, {"pattern": "^(a|aa)+$"}, {"format": "date"}, {"uniqueItems": True},
        {"enum": [1, "a", None, {"$ref": "x"}]}, {"const": {"a": [1.0]}}, {"minimum": 1}, {"not": {}},
    ]
)  # fmt: skip
_SCHEMAS = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.builds(lambda k, xs: {k: xs}, st.sampled_from(["anyOf", "oneOf", "allOf", "prefixItems"]),
                  st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda k, x: {k: x}, st.sampled_from(["items", "not", "if", "then", "additionalProperties"]), inner),
        st.builds(lambda ps: {"type": "object", "properties": ps}, st.dictionaries(st.sampled_from(["a", "$ref"]), inner)),
        st.builds(lambda d, x: {"$defs": {"a": d}, **x}, inner, inner),
        st.builds(lambda x: {"$defs": {"n": {"$dynamicAnchor": "meta", **x}}, "$dynamicRef": "#meta"}, inner),
    ),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(schema=st.dictionaries(st.sampled_from(_KEYWORDS), _JSON, max_size=5) | _SCHEMAS, value=_JSON)
def test_any_schema_is_a_problem_or_checks_values(schema: dict[str, Any], value: Any) -> None:
    bounded, problem = schema_problem(schema)
    if problem is not None:
        assert problem.text()
        return
    assert bounded is not None
    with contextlib.suppress(GraderError):  # a limit, a pattern's timeout: the case's error, in one line
        bounded.errors(value)
