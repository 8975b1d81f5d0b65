"""`validate`: each kind of problem, with its exact one-line message, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_evals.cli import main
from tests.support import EVALSET, PROMPT, basic_project, write_tree


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out.splitlines(), captured.err


def test_clean_project_passes(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = problems(capsys)
    assert (code, lines) == (0, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "id: triage\nversion: [1, 2\n",
            "prompts/triage.yaml:3: not valid YAML: did not find expected ',' or ']'"
            " (check indentation and quoting near this line)",
        ),
        ("", "prompts/triage.yaml:1: file is empty (add a mapping with at least an 'id' key)"),
        (
            "- id: triage\n- version: 1\n",
            "prompts/triage.yaml:1: top level is a list, expected a mapping (write 'key: value' pairs at the top level)",
        ),
        (
            "just a string\n",
            "prompts/triage.yaml:1: top level is a str, expected a mapping (write 'key: value' pairs at the top level)",
        ),
    ],
    ids=["not-yaml", "empty", "list", "scalar"],
)
def test_unparseable_files(
    project: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    (project / "prompts/triage.yaml").write_text(text)
    code, lines, _ = problems(capsys)
    assert code == 2
    assert lines[0] == expected


def test_an_empty_config_says_what_a_config_needs(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It said to add an 'id' key, which a config does not have."""
    (project / "agent-evals.yaml").write_text("# nothing yet\n")
    code, lines, _ = problems(capsys)
    assert code == 2
    assert lines == ["agent-evals.yaml:1: file is empty (write 'schema_version: 1', or remove the file)"]


def test_binary_file_is_one_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "prompts/triage.yaml").write_bytes(b"\xff\xfe\x00garbage")
    code, lines, _ = problems(capsys)
    assert code == 2
    assert lines[0] == "prompts/triage.yaml:1: not UTF-8 text (save the file as UTF-8)"


def test_unknown_key_suggests_the_right_one(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "prompts/triage.yaml").write_text(PROMPT.replace("  temperature: 0", "  temprature: 0"))
    code, lines, _ = problems(capsys)
    assert code == 2
    assert lines == [
        "prompts/triage.yaml:11: unknown key 'temprature' in 'model' (did you mean 'temperature'?)"
    ]


def test_unowned_prompt_is_invalid(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "prompts/triage.yaml").write_text(PROMPT.replace("  oncall: pagerduty:support-ai\n", ""))
    code, lines, _ = problems(capsys)
    assert code == 2
    assert lines == [
        "prompts/triage.yaml:5: missing required key 'owner.oncall' "
        "(say who gets paged when it breaks, e.g. 'oncall: pagerduty:support-ai')"
    ]


def test_duplicate_yaml_key(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "prompts/triage.yaml").write_text(
        PROMPT.replace("\nversion: 1\n", "\nversion: 1\nversion: 2\n")
    )
    _, lines, _ = problems(capsys)
    assert lines == [
        "prompts/triage.yaml:4: duplicate key 'version' ('version' is already set on line 3; keep one)"
    ]


def test_id_must_match_file_name(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "prompts/triage.yaml").write_text(PROMPT.replace("id: triage", "id: triage-v2"))
    _, lines, _ = problems(capsys)
    assert lines[0] == (
        "prompts/triage.yaml:2: id 'triage-v2' does not match the file name 'triage.yaml'"
        " (rename the file to 'triage-v2.yaml' or set 'id: triage')"
    )


def test_unknown_grader_type(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "evalsets/triage.yaml").write_text(EVALSET.replace("type: exact_match", "type: exact"))
    code, lines, _ = problems(capsys)
    assert code == 2
    assert lines == [
        "evalsets/triage.yaml:9: unknown grader type 'exact' "
        "(known types: budget, contains, exact_match, json_schema, regex, rubric, tool_args, tool_called, "
        "tool_not_called, tool_sequence, python:module:function)"
    ]


def test_unknown_grader_option(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "evalsets/triage.yaml").write_text(
        EVALSET.replace("    field: disposition", "    feild: disposition")
    )
    _, lines, _ = problems(capsys)
    assert lines[0] == "evalsets/triage.yaml:11: unknown key 'feild' in 'graders[0]' (did you mean 'field'?)"


def test_unknown_provider(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "prompts/triage.yaml").write_text(
        PROMPT.replace("provider: python:agent:answer", "provider: opnai")
    )
    code, lines, _ = problems(capsys)
    assert code == 2
    assert lines == [
        "prompts/triage.yaml:9: unknown provider 'opnai' (use openai, anthropic, local, python:module:function, "
        "or one defined in agent-evals.yaml (none))"
    ]


def test_duplicate_case_ids(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "evalsets/triage.yaml").write_text(EVALSET.replace("id: c2", "id: c1"))
    _, lines, _ = problems(capsys)
    assert lines == [
        "evalsets/triage.yaml:17: duplicate case id 'c1' (first used on line 13; case ids must be unique)"
    ]


def test_case_without_expected_for_a_grader_that_needs_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "evalsets/triage.yaml").write_text(
        EVALSET.replace("    expected: {disposition: billing}\n", "")
    )
    _, lines, _ = problems(capsys)
    assert lines == [
        "evalsets/triage.yaml:21: case 'c3' has no 'expected.disposition', which grader 'disposition' needs "
        "(add 'expected.disposition' to the case, or give the case a different grader)"
    ]


def test_evalset_pointing_at_a_missing_prompt(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "evalsets/triage.yaml").write_text(EVALSET.replace("prompt: triage", "prompt: triage-v9"))
    _, lines, _ = problems(capsys)
    assert lines == [
        "evalsets/triage.yaml:3: eval set targets prompt 'triage-v9', which does not exist "
        "(create prompts/triage-v9.yaml or fix the id; known: triage)"
    ]


def test_undefined_variable_names_the_template_line_and_counts_cases(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "prompts/triage.yaml").write_text(PROMPT.replace("{{ body }}", "{{ body }} {{ customer }}"))
    _, lines, _ = problems(capsys)
    assert lines == [
        "prompts/triage.yaml:18: undefined variable in messages[1] for case 'c1': 'customer' is undefined "
        "(add it to the vars of case 'c1' at evalsets/triage.yaml:13, or use '| default(...)'; "
        "2 more case(s) fail the same way)"
    ]


def test_template_syntax_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "prompts/triage.yaml").write_text(PROMPT.replace("{{ body }}", "{{ body }"))
    _, lines, _ = problems(capsys)
    assert lines == [
        "prompts/triage.yaml:18: template syntax error in messages[1]: unexpected '}' "
        "(fix the Jinja syntax; use {% raw %}...{% endraw %} for literal braces)"
    ]


def test_template_reaching_python_internals_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "prompts/triage.yaml").write_text(
        PROMPT.replace("{{ body }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    )
    code, lines, _ = problems(capsys)
    assert code == 2
    assert lines == [
        "prompts/triage.yaml:18: template refused by the sandbox in messages[1]: access to attribute "
        "'__class__' of 'str' object is unsafe. (templates may only use the case's vars and Jinja filters; "
        "2 more case(s) fail the same way)"
    ]


def test_cases_file_jsonl_errors_name_the_jsonl_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = EVALSET.split("cases:")[0] + "cases_file: triage.cases.jsonl\n"
    write_tree(
        project,
        {
            "evalsets/triage.yaml": head,
            "evalsets/triage.cases.jsonl": (
                '{"id": "a", "vars": {"subject": "s", "body": "b"}, "expected": {"disposition": "x"}}\n'
                '{"id": "b", "vars": {"subject": "s", "body": "b"}, "expected": {"disposition": "x"}\n'
            ),
        },
    )
    _, lines, _ = problems(capsys)
    assert lines == [
        "evalsets/triage.cases.jsonl:2: not valid JSON: Expecting ',' delimiter at column 84 "
        "(each line must be one JSON object)"
    ]


def test_cases_file_loads_and_renders(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = EVALSET.split("cases:")[0] + "cases_file: triage.cases.jsonl\n"
    write_tree(
        project,
        {
            "evalsets/triage.yaml": head,
            "evalsets/triage.cases.jsonl": (
                '{"id": "a", "vars": {"subject": "s", "body": "b"}, "expected": {"disposition": "x"}}\n'
                '{"id": "b", "vars": {"subject": "s"}, "expected": {"disposition": "x"}}\n'
            ),
        },
    )
    _, lines, _ = problems(capsys)
    assert lines == [
        "prompts/triage.yaml:18: undefined variable in messages[1] for case 'b': 'body' is undefined "
        "(add it to the vars of case 'b' at evalsets/triage.cases.jsonl:2, or use '| default(...)')"
    ]


def test_only_named_files_are_checked_but_a_prompt_brings_its_evalsets(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(project, {"prompts/other.yaml": "id: other\n"})
    (project / "prompts/triage.yaml").write_text(PROMPT.replace("{{ body }}", "{{ body }} {{ nope }}"))
    code, lines, _ = problems(capsys, "prompts/triage.yaml")
    assert code == 2
    assert all(
        line.startswith("prompts/triage.yaml:") for line in lines
    )  # other.yaml's problems not reported
    code, lines, _ = problems(capsys, "prompts/other.yaml")
    assert code == 2
    assert all(line.startswith("prompts/other.yaml:") for line in lines)


def test_bad_project_config_is_located(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(project, {"agent-evals.yaml": "defaults:\n  concurrency: 0\n"})
    _, lines, _ = problems(capsys)
    assert lines == [
        "agent-evals.yaml:2: 'defaults.concurrency': Input should be greater than or equal to 1 (got 0) (fix the value)"
    ]


def test_validate_does_not_import_heavy_libraries(project: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from agent_evals.cli import main; rc = main(['validate']); "
        "print(rc, 'pandas' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=project
    )
    assert out.stdout.split() == ["0", "False", "False"]


def test_typos_inside_grader_options_get_suggestions(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = (
        "    field: disposition\n"
        "  - type: json_schema\n"
        "    shema: {}\n"
        "  - type: rubric\n"
        "    criteria:\n"
        "      - max_wordz: 3\n"
    )
    (project / "evalsets/triage.yaml").write_text(EVALSET.replace("    field: disposition\n", extra))
    _, lines, _ = problems(capsys)
    assert lines == [
        "evalsets/triage.yaml:13: unknown key 'shema' in 'graders[1]' (did you mean 'schema'?)",
        "evalsets/triage.yaml:16: unknown key 'max_wordz' in 'graders[2].criteria[0]' (did you mean 'max_words'?)",
    ]
