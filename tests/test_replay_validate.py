"""`validate` on tools: recorded calls and replay rules, each problem at its `path:line` with a fix.

All prompts, eval sets and mocks here are synthetic.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agent_evals.cli import main
from tests.support import refused, write_tree

PROMPT = """\
schema_version: 1
id: refund
version: 1
description: Decide a refund (synthetic test prompt).
owner: {name: Test team, oncall: test-pager}
model: {provider: local, name: test-model, temperature: 0}
tools:
  - name: lookup_order
    description: Look an order up.
    parameters:
      type: object
      properties:
        id: {type: integer}
        rush: {type: boolean}
      required: [id]
  - name: lookup_policy
    description: The refund policy.
messages:
  - role: user
    content: "{{ q }}"
"""

HEAD = """\
schema_version: 1
id: refund
prompt: refund
metric: refunds decided
provenance: {source: synthetic, synthetic: true}
graders:
  - {type: contains, name: said}
"""

CASES = """\
cases:
  - id: c1
    vars: {q: refund order 7}
    expected: refund
    tools:
      - name: lookup_order
        arguments: {id: 7}
        result: {status: shipped}
      - name: lookup_policy
        result: 30 days
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_tree(tmp_path, {"prompts/refund.yaml": PROMPT, "evalsets/refund.yaml": HEAD + CASES})
    monkeypatch.chdir(tmp_path)
    return tmp_path


def validate(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["validate"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out.splitlines()


def write_evalset(project: Path, text: str) -> None:
    (project / "evalsets/refund.yaml").write_text(text)


def test_recorded_calls_and_mocks_that_fit_pass(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(project, {"tools/mocks.py": "def lookup_order(arguments, case):\n    return {}\n"})
    (project / "tools/__init__.py").write_text("")
    rules = (
        "tools:\n"
        "  lookup_order:\n"
        "    match: subset\n"
        "    mock: {python: 'tools.mocks:lookup_order'}\n"
        "  lookup_policy:\n"
        "    mock:\n"
        "      template: |\n"
        '        {"days": {{ vars.days | default(30) }}}\n'
    )
    write_evalset(project, HEAD + rules + CASES)
    assert validate(capsys) == (0, [])


def test_a_tools_entry_naming_a_tool_the_prompt_does_not_declare(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = "tools:\n  lookup_polcy:\n    mock: {value: 30 days}\n  notify:\n    mock: {value: sent}\n"
    write_evalset(project, HEAD + rules + CASES)
    assert validate(capsys) == (
        2,
        [
            "evalsets/refund.yaml:9: tools.lookup_polcy: prompt 'refund' declares no tool 'lookup_polcy' "
            "(did you mean 'lookup_policy'?)",
            "evalsets/refund.yaml:11: tools.notify: prompt 'refund' declares no tool 'notify' "
            "(declare it under tools: in prompts/refund.yaml or fix the name; it declares lookup_order, "
            "lookup_policy)",
        ],
    )


def test_a_recorded_call_naming_a_tool_the_prompt_does_not_declare(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    more = (
        "  - id: c2\n    vars: {q: x}\n    expected: x\n    tools:\n      - {name: lookup_ordr, arguments: {id: 8}}\n"
        "  - id: c3\n    vars: {q: x}\n    expected: x\n    tools:\n      - {name: lookup_ordr, arguments: {id: 9}}\n"
        "      - {name: send_mail}\n"
    )
    write_evalset(project, HEAD + CASES + more)
    assert validate(capsys) == (
        2,
        [
            "evalsets/refund.yaml:22: case 'c2' records a call to 'lookup_ordr', a tool prompt 'refund' does "
            "not declare (did you mean 'lookup_order'?; 1 more recorded call(s) fail the same way)",
            "evalsets/refund.yaml:28: case 'c3' records a call to 'send_mail', a tool prompt 'refund' does "
            "not declare (declare it under tools: in prompts/refund.yaml or fix the name; it declares "
            "lookup_order, lookup_policy)",
        ],
    )


def test_a_prompt_without_tools_declares_none(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "prompts/refund.yaml").write_text(
        PROMPT.split("tools:")[0] + "messages:" + PROMPT.split("messages:")[1]
    )
    code, lines = validate(capsys)
    assert code == 2
    assert lines[0] == (
        "evalsets/refund.yaml:13: case 'c1' records a call to 'lookup_order', a tool prompt 'refund' does not "
        "declare (declare it under tools: in prompts/refund.yaml or fix the name; it declares none)"
    )


def test_a_python_agent_that_runs_its_own_tools_may_record_calls(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Its loop is its own: the recorded calls are for graders, not answered by agent-evals.
    write_tree(project, {"agent.py": "def answer(request):\n    return 'refund'\n"})
    prompt = PROMPT.split("tools:")[0] + "messages:" + PROMPT.split("messages:")[1]
    (project / "prompts/refund.yaml").write_text(
        prompt.replace("provider: local", "provider: python:agent:answer")
    )
    assert validate(capsys) == (0, [])


def test_recorded_arguments_that_do_not_fit_the_tools_parameters(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = CASES.replace("arguments: {id: 7}", "arguments: {id: '7', rush: 1}") + (
        "  - id: c2\n    vars: {q: x}\n    expected: x\n    tools:\n      - name: lookup_order\n"
        "        arguments: {rush: true}\n"
    )
    write_evalset(project, HEAD + cases)
    assert validate(capsys) == (
        2,
        [
            "evalsets/refund.yaml:14: case 'c1' records lookup_order arguments that do not fit its parameters: "
            "$.id: '7' is not of type 'integer' (and 1 more) (fix the recorded arguments, or the parameters "
            "of 'lookup_order' in prompts/refund.yaml)",
            "evalsets/refund.yaml:23: case 'c2' records lookup_order arguments that do not fit its parameters: "
            "$: 'id' is a required property (fix the recorded arguments, or the parameters of 'lookup_order' "
            "in prompts/refund.yaml)",
        ],
    )


def test_recorded_calls_in_a_jsonl_cases_file_name_the_case_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"id": "c1", "vars": {"q": "x"}, "expected": "x"},
        {
            "id": "c2",
            "vars": {"q": "x"},
            "expected": "x",
            "tools": [{"name": "lookup_order", "arguments": {}}],
        },
    ]
    write_tree(
        project,
        {
            "evalsets/refund.yaml": HEAD + "cases_file: refund.cases.jsonl\n",
            "evalsets/refund.cases.jsonl": "".join(json.dumps(r) + "\n" for r in rows),
        },
    )
    assert validate(capsys) == (
        2,
        [
            "evalsets/refund.cases.jsonl:2: case 'c2' records lookup_order arguments that do not fit its "
            "parameters: $: 'id' is a required property (fix the recorded arguments, or the parameters of "
            "'lookup_order' in prompts/refund.yaml)"
        ],
    )


def test_tool_parameters_that_are_not_a_json_schema(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "prompts/refund.yaml").write_text(PROMPT.replace("id: {type: integer}", "id: {type: integr}"))
    code, lines = validate(capsys)
    assert code == 2
    assert lines[0].startswith(
        "prompts/refund.yaml:10: the parameters of tool 'lookup_order' are not a valid JSON Schema: 'integr' is "
        "not valid under any of the given schemas (see https://json-schema.org/understanding-json-schema/)"
    )
    assert len(lines) == 1  # the recorded arguments are not checked against a broken schema


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            '      template: |\n        {"id": {{ args.id }},\n         "status": "{{ args.status }"}\n',
            "evalsets/refund.yaml:13: tools.lookup_order.mock.template does not compile: unexpected '}' "
            "(fix the Jinja syntax; use {% raw %}...{% endraw %} for literal braces)",
        ),
        (
            "      template: '{{ args.id'\n",
            "evalsets/refund.yaml:11: tools.lookup_order.mock.template does not compile: unexpected end of "
            "template, expected 'end of print statement'. "
            "(fix the Jinja syntax; use {% raw %}...{% endraw %} for literal braces)",
        ),
        (
            "      template: '{{ " + "(" * 20 + "1" + ")" * 20 + " }}'\n",
            "evalsets/refund.yaml:11: tools.lookup_order.mock.template nests brackets and blocks deeper than 16 "
            "levels (flatten the template: set intermediate values with {% set %})",
        ),
    ],
    ids=["syntax-on-line-2", "unclosed", "nesting-bomb"],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_mock_template_that_does_not_compile_in_the_sandbox(
    project: Path, capsys: pytest.CaptureFixture[str], template: str, expected: str, command: str
) -> None:
    rules = "tools:\n  lookup_order:\n    mock:\n" + template
    write_evalset(project, HEAD + rules + CASES)
    assert refused(command, project, capsys) == (2, [expected])


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_mock_python_target_malformed_or_outside_the_project(
    project: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    rules = (
        "tools:\n"
        "  lookup_order:\n    mock: {python: 'os:system'}\n"
        "  lookup_policy:\n    mock: {python: 'policy lookup'}\n"
    )
    write_evalset(project, HEAD + rules + CASES)
    hint = "use python:module:function with a module file inside the project, e.g. python:agent.main:answer"
    assert refused(command, project, capsys) == (
        2,
        [
            "evalsets/refund.yaml:10: tools.lookup_order.mock.python: refusing python:os:system: 'os' is in "
            f"the standard library, outside the project ({hint})",
            "evalsets/refund.yaml:12: tools.lookup_policy.mock.python: mock target 'python:policy lookup' is "
            "not module:function (write python: module:function, e.g. python: tools.mocks:lookup_order, with "
            "the module a file inside the project)",
        ],
    )
    write_evalset(project, HEAD + "tools:\n  lookup_order:\n    mock: {python: 'mocks:lookup'}\n" + CASES)
    assert refused(command, project, capsys) == (
        2,
        [
            "evalsets/refund.yaml:10: tools.lookup_order.mock.python: refusing python:mocks:lookup: no module "
            f"file for 'mocks' under {project.resolve()} ({hint})"
        ],
    )


def test_validate_never_imports_a_mock(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = project / "imported"
    write_tree(
        project,
        {
            "sideeffect_mock.py": f"open({str(marker)!r}, 'w').close()\ndef lookup(arguments, case):\n    return 1\n"
        },
    )
    write_evalset(
        project, HEAD + "tools:\n  lookup_order:\n    mock: {python: 'sideeffect_mock:lookup'}\n" + CASES
    )
    assert validate(capsys) == (0, [])
    assert not marker.exists()
    assert "sideeffect_mock" not in sys.modules
