"""JSON from outside nested past what the code can walk is unreadable text, not an internal error.

A server's body, a model's output or its tool-call arguments nested thousands of brackets deep made
`json.loads` raise RecursionError, and `run` ended in `internal error`. Every reading of JSON from
elsewhere goes through `agent_evals._json.loads`, which refuses nesting past `MAX_DEPTH` as a
`JSONDecodeError`: the case is an error or a failed parse, the run goes on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_evals import _json
from agent_evals.cli import main
from agent_evals.record import load_record
from tests.http_server import Response, ScriptedServer, openai_chat
from tests.support import echo_evalset, echo_prompt, write_tree


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [101, 3_000, 100_000])
def test_nesting_past_the_limit_is_a_decode_error(depth: int) -> None:
    for text in (nested(depth), nested(depth).encode()):
        with pytest.raises(json.JSONDecodeError) as caught:
            _json.loads(text)
        assert caught.value.msg == "nested more than 100 deep"


def test_nesting_up_to_the_limit_reads_as_json_loads_does() -> None:
    assert _json.loads(nested(100)) == json.loads(nested(100))
    assert _json.loads(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    # Many brackets side by side are not depth: the walk decides.
    wide = "[" + ",".join(["[]"] * 500) + "]"
    assert _json.loads(wide) == [[]] * 500
    with pytest.raises(ValueError, match="NaN"):
        _json.loads("[NaN]", parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet='[]{}":,1a ', max_size=3_000),
        st.integers(0, 20_000).map(nested),
        st.integers(0, 20_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    )
)
def test_any_text_is_a_value_within_the_limit_or_a_value_error(text: str) -> None:
    try:
        value = _json.loads(text)
    except ValueError:  # JSONDecodeError included
        return
    assert not _json.nested_deeper(value, _json.MAX_DEPTH)
    json.dumps(value)  # what every writer does with it next


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_tree(
        tmp_path,
        {
            "agent-evals.yaml": "schema_version: 1\nprices:\n  test-model: {input_per_mtok: 1, output_per_mtok: 1}\n",
            "prompts/echo.yaml": echo_prompt("openai") + "output:\n  format: json\n",
            "evalsets/echo.yaml": echo_evalset(2, "  - {type: json_schema, schema: {type: array}}\n"),
        },
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return tmp_path


def run(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> int:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    code = main(["run", "--no-cache", "--output", "out.jsonl"])
    out, err = capsys.readouterr()
    assert "internal error" not in out + err
    assert "Traceback" not in out + err
    return code


def test_a_response_body_nested_too_deeply_is_a_provider_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer(
        default=Response(body=nested(50_000), headers={"content-type": "application/json"})
    ) as server:
        assert run(server, monkeypatch, capsys) == 3  # could not evaluate
    cases = load_record(project / "out.jsonl").cases
    assert [c.status for c in cases] == ["error", "error"]
    assert all("not JSON" in (c.error or "") for c in cases), [c.error for c in cases]


def test_an_output_nested_too_deeply_is_a_parse_error_the_graders_read(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer(default=openai_chat(nested(3_000))) as server:
        assert run(server, monkeypatch, capsys) == 0
    cases = load_record(project / "out.jsonl").cases
    assert [c.status for c in cases] == ["fail", "fail"]
    assert cases[0].grades[0].reason == (
        "output is not JSON: output is not valid JSON (nested more than 100 deep at line 1 column 1)"
    )


def test_tool_call_arguments_nested_too_deeply_are_kept_as_text(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = '{"q": ' + nested(3_000) + "}"
    answer = openai_chat(None, tool_calls=[("lookup", arguments)])
    with ScriptedServer(default=answer) as server:
        code = run(server, monkeypatch, capsys)
    cases = load_record(project / "out.jsonl").cases
    assert code in (0, 1, 3)
    for case in cases:
        (call,) = case.tool_calls
        assert call.arguments == arguments
