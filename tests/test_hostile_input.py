"""Malformed and hostile data files end in one located line and exit 2, quickly.

YAML prompts and eval sets, JSON Lines cases files and run records: each way a file can be
broken or built to exhaust the machine names `path:line`, never `internal error`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.load import load_evalset
from agent_evals.record import load_record, write
from tests.pty_run import CLI
from tests.support import EVALSET, PROMPT, basic_project, make_record

DIGITS = "9" * 5000


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def validate(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Exit code and the problem lines `validate` prints (stdout, as pre-commit shows them)."""
    code = main(["validate"])
    captured = capsys.readouterr()
    assert "internal error" not in captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out.splitlines()


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stderr of a command expected to fail on its input."""
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err.strip()


# --- YAML -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "kind"),
    [(DIGITS, "decimal"), ("0x" + "f" * 4000, "hex"), ("1" + ":59" * 2000, "base 60")],
    ids=["decimal", "hex", "sexagesimal"],
)
def test_yaml_integer_past_the_digit_limit_names_its_line(
    project: Path, capsys: pytest.CaptureFixture[str], literal: str, kind: str
) -> None:
    # Line 3 of the prompt; Python refuses to convert (or print) an int this long.
    (project / "prompts/triage.yaml").write_text(PROMPT.replace("\nversion: 1\n", f"\nversion: {literal}\n"))
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [
        "prompts/triage.yaml:3: integer with more than 4300 digits (quote it to keep it as text)"
    ]


def test_yaml_integer_in_an_eval_set_case(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EVALSET.replace("expected: {disposition: refund}", f"expected: {{n: {DIGITS}}}")
    (project / "evalsets/triage.yaml").write_text(text)
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [
        "evalsets/triage.yaml:15: integer with more than 4300 digits (quote it to keep it as text)"
    ]


@pytest.mark.parametrize(("char", "escape"), [("\x00", "\\x00"), ("\x07", "\\x07"), ("\x1b", "\\x1b")])
def test_yaml_control_character_names_its_line_not_a_position(
    project: Path, capsys: pytest.CaptureFixture[str], char: str, escape: str
) -> None:
    # Multi-byte text before it: libyaml counts bytes, the line must still be right.
    text = PROMPT.replace("description: Classify", "description: Clässify ünd 🎫").replace(
        "Classify the ticket", f"Classify{char} the ticket"
    )
    (project / "prompts/triage.yaml").write_text(text, encoding="utf-8")
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [
        f"prompts/triage.yaml:14: not valid YAML: unacceptable character #x{ord(char):04x}: control characters "
        f'are not allowed (remove it, or write it as "{escape}" in a double-quoted string)'
    ]


def test_yaml_file_over_the_size_cap_is_refused_before_parsing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 50 MB (sparse: the cap is checked on the size, before a byte is read or parsed;
    # parsing 50 MB took 35 s and 2.2 GB before the cap).
    with (project / "evalsets/big.yaml").open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [
        "evalsets/big.yaml: file is 50.0 MB; YAML files are limited to 8 MB "
        "(move the cases to a JSON Lines file and name it with 'cases_file:')"
    ]


def test_yaml_text_over_the_size_cap_is_refused_too(tmp_path: Path) -> None:
    # Text that does not come from disk (a file at the merge-base, read from git) is capped the same.
    text = EVALSET + "# " + "x" * (9 * 1024 * 1024) + "\n"
    with pytest.raises(ConfigError) as info:
        load_evalset(tmp_path / "triage.yaml", text=text, shown="evalsets/triage.yaml@1a2b3c4d")
    assert info.value.render() == (
        "evalsets/triage.yaml@1a2b3c4d: file is 9.0 MB; YAML files are limited to 8 MB "
        "(move the cases to a JSON Lines file and name it with 'cases_file:')"
    )


def billion_laughs(levels: int) -> str:
    lines = ["      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines)


def test_yaml_billion_laughs_is_refused_before_it_expands(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 10^9 "lol"s by aliases, in the vars of the first case (l0 on line 17).
    text = EVALSET.replace(
        "    vars: {subject: Refund, body: I want my money back}",
        "    vars:\n      subject: Refund\n      body: b\n" + billion_laughs(9),
    )
    (project / "evalsets/triage.yaml").write_text(text)
    code, lines = validate(capsys)
    assert code == 2
    # l6 (ten copies of l5: 10^6 lols, 4 MB) is the first to copy more than 8 MB.
    assert lines == [
        "evalsets/triage.yaml:23: aliases repeat more than 8 MB of data "
        "(each '*alias' copies its anchored value: write the data out, or alias less of it)"
    ]


@pytest.mark.parametrize(
    ("file", "line_of"),
    [("agent-evals.yaml", "x: &a [*a]"), ("prompts/triage.yaml", "x: &a {b: *a}"),
     ("evalsets/triage.yaml", "x: &a {b: [c, {d: *a}]}")],
)  # fmt: skip
def test_yaml_alias_inside_the_collection_it_names_is_refused(project: Path, file: str, line_of: str) -> None:
    """It walked forever, growing by 100 MB a second; a child process with a deadline, so that
    losing the check fails this test instead of hanging the suite."""
    path = project / file
    text = path.read_text() if path.exists() else "schema_version: 1\n"
    path.write_text(text + line_of + "\n")
    line = len(path.read_text().splitlines())
    done = subprocess.run([*CLI, "validate"], cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines() == [
        f"{file}:{line}: an alias refers to a collection that contains it (a structure with no end) "
        "(an '*alias' may repeat a value, not the collection it sits in: write the data out)"
    ]


@pytest.mark.parametrize(
    ("expression", "raised"),
    [
        ("body | truncate(0)", "AssertionError: expected length >= 3, got 0"),
        ("'{a}'.format()", "KeyError: 'a'"),
        ("'{0}'.format()", "IndexError: tuple index out of range"),
        ("'%(a)s' % {}", "KeyError: 'a'"),
        ("'a'.encode('nope')", "LookupError: unknown encoding: nope"),
        ("'x' | wordwrap(10, wrapstring=10)", "AttributeError: 'int' object has no attribute 'join'"),
    ],
)
def test_whatever_a_template_raises_is_its_located_failure(
    project: Path, capsys: pytest.CaptureFixture[str], expression: str, raised: str
) -> None:
    """Each ended `validate` and `run` in `internal error` (exit 3): only some types were caught."""
    (project / "prompts/triage.yaml").write_text(PROMPT.replace("{{ body }}", "{{ " + expression + " }}"))
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [
        f"prompts/triage.yaml:18: template failed in messages[1] for case 'c1': {raised} "
        "(check the template's expressions and the types of the case's vars; 2 more case(s) fail the same way)"
    ]


@pytest.mark.parametrize("number", [".inf", "-.inf", "1e999", ".nan"])
@pytest.mark.parametrize(
    "grader",
    [
        "    field: disposition\n    weight: {n}\n",
        "    field: disposition\n  - type: rubric\n    criteria:\n      - {{max_words: 40, weight: {n}}}\n",
    ],
    ids=["grader", "criterion"],
)
def test_a_number_that_is_not_finite_is_refused_at_its_line(
    project: Path, capsys: pytest.CaptureFixture[str], number: str, grader: str
) -> None:
    """An infinite weight passed `validate`, then made every score NaN: pass rate 0%, exit 0."""
    text = EVALSET.replace("    field: disposition\n", grader.format(n=number))
    (project / "evalsets/triage.yaml").write_text(text)
    code, lines = validate(capsys)
    assert code == 2
    assert len(lines) == 1
    line = next(i for i, row in enumerate(text.splitlines(), 1) if number in row)
    assert lines[0].startswith(f"evalsets/triage.yaml:{line}: 'graders["), lines
    assert "Input should be a finite number" in lines[0]


@pytest.mark.parametrize(
    ("config", "line"),
    [
        ("schema_version: 1\ndefaults:\n  concurrency: 1025\n", 3),
        ("schema_version: 1\nproviders:\n  gpu:\n    type: openai\n    max_concurrency: 1025\n", 5),
    ],
    ids=["defaults", "provider"],
)
def test_concurrency_in_the_config_has_the_command_line_s_bound(
    project: Path, capsys: pytest.CaptureFixture[str], config: str, line: int
) -> None:
    (project / "agent-evals.yaml").write_text(config)
    code, lines = validate(capsys)
    assert code == 2
    assert lines[0].startswith(f"agent-evals.yaml:{line}: "), lines
    assert "1024" in lines[0], lines
    (project / "agent-evals.yaml").write_text(config.replace("1025", "1024"))
    assert validate(capsys)[0] == 0


def test_an_empty_grader_list_is_still_said(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The length error is left out only when the list's own items failed (they say why)."""
    text = EVALSET.replace("  - type: exact_match\n    name: disposition\n    field: disposition\n", "  []\n")
    (project / "evalsets/triage.yaml").write_text(text)
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [
        "evalsets/triage.yaml:8: 'graders': Tuple should have at least 1 item after validation, not 0 "
        "(fix the value)"
    ]


def test_a_template_that_renders_half_a_surrogate_pair_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate passed it and `run` crashed writing the cache: no UTF-8 text can hold it."""
    (project / "prompts/triage.yaml").write_text(PROMPT.replace("{{ body }}", "{{ body ~ '\\ud800' }}"))
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [
        "prompts/triage.yaml:17: template failed in messages[1] for case 'c1': ValueError: the text holds "
        "half a surrogate pair ('\\ud800' at character 36), which no UTF-8 text can hold (check the "
        "template's expressions and the types of the case's vars; 2 more case(s) fail the same way)"
    ]


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
def test_a_yaml_escape_of_half_a_surrogate_pair_names_its_line(project: Path, libyaml: bool) -> None:
    """libyaml refuses it; PyYAML's own parser (used where libyaml is not installed) reads it."""
    text = EVALSET.replace(
        "vars: {subject: Login, body: cannot log in}", 'vars: {subject: Login, body: "\\ud800"}'
    )
    (project / "evalsets/triage.yaml").write_text(text)
    hide = "" if libyaml else "import sys; sys.modules['yaml._yaml'] = None; "
    code = (
        hide
        + "import sys, yaml; from agent_evals.cli import main; print(yaml.__with_libyaml__); sys.exit(main(['validate']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    with_libyaml, line = done.stdout.splitlines()
    assert with_libyaml == str(libyaml)
    problem = (
        "not valid YAML: found invalid Unicode character escape code (check indentation and quoting near this line)"
        if libyaml
        else "a \\u escape of half a surrogate pair, which no UTF-8 text can hold "
        "(write the character itself, or both halves of its \\u escape pair)"
    )
    assert line == f"evalsets/triage.yaml:18: {problem}"


def test_yaml_aliases_and_merge_keys_in_reason_still_load(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EVALSET.replace(
        "    vars: {subject: Refund, body: I want my money back}",
        "    vars: &refund {subject: Refund, body: I want my money back}",
    ).replace(
        "    vars: {subject: Login, body: cannot log in}", "    vars: {<<: *refund, body: cannot log in}"
    )
    (project / "evalsets/triage.yaml").write_text(text)
    assert validate(capsys) == (0, [])
    evalset = load_evalset(project / "evalsets/triage.yaml")
    # The case's own key overrides the merged one, as YAML says (it was a "duplicate key").
    assert evalset.cases[1].vars == {"subject": "Refund", "body": "cannot log in"}


def test_yaml_nesting_past_the_limit_names_the_deepest_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Block style, one level per line: the 101st nested collection is the line shown.
    nested = "".join(f"{'  ' * (3 + i)}k:\n" for i in range(110)) + "  " * 113 + "k: leaf\n"
    text = EVALSET.replace("    expected: {disposition: refund}\n", "    expected:\n" + nested)
    (project / "evalsets/triage.yaml").write_text(text)
    code, lines = validate(capsys)
    assert code == 2
    # The file's own mapping, `cases`, a case and `expected` (line 16) are 4 levels: the 101st is 97 lines on.
    assert lines == ["evalsets/triage.yaml:113: collections nested more than 100 deep (flatten the data)"]


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (150, "collections nested more than 100 deep (flatten the data)"),
        (
            100_000,
            "not valid YAML: exceeded maximum nesting depth (check indentation and quoting near this line)",
        ),
    ],
)
def test_yaml_flow_nesting_is_located(
    project: Path, capsys: pytest.CaptureFixture[str], depth: int, expected: str
) -> None:
    # 150 deep overflowed Python's stack while the values were built (RecursionError);
    # 100,000 deep, libyaml stops by itself at 1,000.
    (project / "evalsets/triage.yaml").write_text(
        EVALSET.replace("expected: {disposition: refund}", "expected: " + "[" * depth + "]" * depth)
    )
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [f"evalsets/triage.yaml:15: {expected}"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-02-30", "cannot read '2020-02-30' as a date: day is out of range for month"),
        ("!!timestamp soon", "cannot read 'soon' as a date"),
        ("!!bool maybe", "cannot read 'maybe' as a boolean"),
        ("!!float x", "cannot read 'x' as a number: could not convert string to float: 'x'"),
    ],
)
def test_yaml_value_its_tag_cannot_hold_names_its_line(
    project: Path, capsys: pytest.CaptureFixture[str], value: str, expected: str
) -> None:
    (project / "evalsets/triage.yaml").write_text(
        EVALSET.replace("expected: {disposition: refund}", f"expected: {{when: {value}}}")
    )
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [f"evalsets/triage.yaml:15: {expected} (fix the value, or quote it to keep it as text)"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("!!set [a]", "set must be a mapping"),
        ("!!map x", "map must be a mapping"),
        ("!!seq x", "seq must be a list"),
    ],
)
def test_yaml_tag_on_the_wrong_kind_names_its_line(
    project: Path, capsys: pytest.CaptureFixture[str], value: str, expected: str
) -> None:
    (project / "evalsets/triage.yaml").write_text(
        EVALSET.replace("expected: {disposition: refund}", f"expected: {{x: {value}}}")
    )
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [f"evalsets/triage.yaml:15: {expected} (fix the value, or drop the '!!' tag)"]


def test_yaml_not_utf8_names_the_line_of_the_bad_byte(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "prompts/triage.yaml").write_bytes(
        PROMPT.replace("Classify the", "Classify \xe9 the").encode("latin-1")
    )
    code, lines = validate(capsys)
    assert code == 2
    assert lines == ["prompts/triage.yaml:14: not UTF-8 text (save the file as UTF-8)"]


def test_prompt_file_that_is_a_fifo_is_refused_unopened(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(project / "fifo.yaml")
    code, err = cli_error(capsys, "run", "--dry-run", "--prompt-file", "fifo.yaml")
    assert (code, err) == (2, "fifo.yaml: is not a regular file (name a file, not a pipe or a device)")


# --- JSON Lines cases files -------------------------------------------------------------

CASE = '{"id": "a", "vars": {"subject": "s", "body": "b"}, "expected": {"disposition": "x"}}\n'
SURROGATE = (
    "not valid JSON: a \\u escape of half a surrogate pair "
    "(write the character itself, or both halves of its \\u escape pair)"
)


def with_cases_file(project: Path, second_line: str | bytes) -> None:
    head = EVALSET.split("cases:")[0] + "cases_file: triage.cases.jsonl\n"
    (project / "evalsets/triage.yaml").write_text(head)
    data = second_line if isinstance(second_line, bytes) else second_line.encode()
    (project / "evalsets/triage.cases.jsonl").write_bytes(
        CASE.encode() + data + b"\n" + CASE.replace('"a"', '"c"').encode()
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            CASE.replace('"x"', DIGITS).strip(),
            "integer with more than 4300 digits (quote it to keep it as text)",
        ),
        *[
            (
                CASE.replace('"x"', constant).strip(),
                f"not valid JSON: {constant} is not a JSON value (write null, or the number as a string)",
            )
            for constant in ("NaN", "Infinity", "-Infinity")
        ],
        (
            CASE.replace('"x"', "[" * 150 + "]" * 150).strip(),
            "collections nested more than 100 deep (flatten the data)",
        ),
        (
            CASE.replace('"x"', "[" * 100_000 + "]" * 100_000).strip(),
            "collections nested more than 100 deep (flatten the data)",
        ),
        (
            '{"id": "b", "vars": {"body": "' + "x" * (16 * 1024 * 1024) + '"}}',
            "line is longer than 16 MB (a line holds one case: keep each under 16 MB)",
        ),
        (CASE.replace('"x"', '"\\ud800"').strip(), SURROGATE),  # validate passed it, run crashed
        (
            CASE.replace('"x"', "1e999").strip(),
            "number 1e999 is too large (a number is at most 1.8e308) (write the number as a string)",
        ),
        (
            CASE.replace('"x"', "1" * 320 + ".5").strip(),
            "number 11111111111111111... is too large (a number is at most 1.8e308) (write the number as a string)",
        ),
    ],
    ids=[
        "huge-int",
        "nan",
        "infinity",
        "minus-infinity",
        "nested-150",
        "nested-100000",
        "over-16mb",
        "surrogate",
        "exponent",
        "digits",
    ],
)
def test_cases_file_hostile_line_names_its_line(
    project: Path, capsys: pytest.CaptureFixture[str], line: str, expected: str
) -> None:
    with_cases_file(project, line)
    code, lines = validate(capsys)
    assert code == 2
    assert lines == [f"evalsets/triage.cases.jsonl:2: {expected}"]


def test_cases_file_not_utf8_names_the_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_cases_file(project, CASE.replace('"x"', '"caf\xe9"').strip().encode("latin-1"))
    code, lines = validate(capsys)
    assert code == 2
    assert lines == ["evalsets/triage.cases.jsonl:2: not UTF-8 text (save the file as UTF-8)"]


# --- run records ------------------------------------------------------------------------


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A good record at good.jsonl (header, three cases, end: five lines); its text."""
    monkeypatch.chdir(tmp_path)
    record = make_record([("c1", "pass"), ("c2", "fail"), ("c3", "pass")])
    assert record.end is not None
    write(tmp_path / "good.jsonl", record.header, list(record.cases), record.end)
    return (tmp_path / "good.jsonl").read_text()


COMMANDS = {
    "diff": ["diff", "good.jsonl", "bad.jsonl"],
    "report": ["report", "bad.jsonl", "--html", "out.html"],
    "merge": ["merge", "bad.jsonl", "--output", "merged.jsonl"],
}


def corrupt(good: str, lineno: int, old: str, new: str) -> str:
    lines = good.splitlines(keepends=True)
    assert old in lines[lineno - 1]
    lines[lineno - 1] = lines[lineno - 1].replace(old, new, 1)
    return "".join(lines)


@pytest.mark.parametrize("command", COMMANDS)
def test_binary_record_names_its_line(
    records: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    (tmp_path / "bad.jsonl").write_bytes(b"\xff\xfe\x00\x00\x89PNG\r\n\x1a\n" + os.urandom(64))
    code, err = cli_error(capsys, *COMMANDS[command])
    assert (code, err) == (2, "bad.jsonl:1: not UTF-8 text (is this a run record?)")


@pytest.mark.parametrize("command", COMMANDS)
def test_record_not_utf8_on_a_later_line(
    records: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    bad = corrupt(records, 3, "output of c2", "outp\xfct of c2")
    (tmp_path / "bad.jsonl").write_bytes(bad.encode("latin-1"))
    code, err = cli_error(capsys, *COMMANDS[command])
    assert (code, err) == (2, "bad.jsonl:3: not UTF-8 text (is this a run record?)")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda good: corrupt(good, 3, '"index":1', '"index":' + DIGITS),
            "bad.jsonl:3: integer with more than 4300 digits (quote it to keep it as text)",
        ),
        (
            lambda good: corrupt(good, 2, '"latency_ms":10.0', '"latency_ms":NaN'),
            "bad.jsonl:2: not valid JSON: NaN is not a JSON value (write null, or the number as a string)",
        ),
        (
            lambda good: corrupt(good, 4, '"expected":{"label":"x"}', '"expected":' + "[" * 300 + "]" * 300),
            "bad.jsonl:4: collections nested more than 256 deep (flatten the data)",
        ),
        (
            lambda good: good + "[" * 100_000 + "]" * 100_000 + "\n",
            "bad.jsonl:6: collections nested more than 256 deep (flatten the data)",
        ),
        (lambda good: "[1, 2]\n", "bad.jsonl:1: unknown line kind None (is this a run record?)"),
        (
            lambda good: good.split("\n", 1)[1],
            "bad.jsonl:1: no header line (pass a file written by 'agent-evals run')",
        ),
        (
            lambda good: json.dumps({"kind": "run", "run_id": 5}) + "\n",
            "bad.jsonl:1: invalid run line: 'run_id': Input should be a valid string (is this a run record?)",
        ),
        (
            lambda good: good.replace("\n", "", 1),
            "bad.jsonl:1: not valid JSON: Extra data at column 251 (is this a run record?)",
        ),
        (lambda good: corrupt(good, 3, "output of c2", "\\udc00"), f"bad.jsonl:3: {SURROGATE}"),
        (
            lambda good: good + good,
            "bad.jsonl:6: a second header line: two records in one file (keep each run's record in its own "
            "file ('agent-evals merge' joins shards of one run))",
        ),
        (
            lambda good: corrupt(good, 3, '"index":1', '"index":' + str(10**30)),
            "bad.jsonl:3: invalid case line: 'index': Input should be less than or equal to 9223372036854775807 "
            "(is this a run record?)",
        ),
        (
            lambda good: corrupt(good, 3, '"index":1', '"index":-1'),
            "bad.jsonl:3: invalid case line: 'index': Input should be greater than or equal to 0 "
            "(is this a run record?)",
        ),
        (
            lambda good: corrupt(good, 2, '"latency_ms":10.0', '"latency_ms":"NaN"'),
            "bad.jsonl:2: invalid case line: 'latency_ms': Input should be a finite number (is this a run record?)",
        ),
        (
            lambda good: corrupt(good, 2, '"latency_ms":10.0', '"latency_ms":1e999'),
            "bad.jsonl:2: number 1e999 is too large (a number is at most 1.8e308) (write the number as a string)",
        ),
    ],
    ids=[
        "huge-int",
        "nan",
        "nested-300",
        "nested-100000",
        "a-list",
        "no-header",
        "wrong-types",
        "joined-lines",
        "surrogate",
        "two-records",
        "past-int64",
        "negative-index",
        "nan-string",
        "infinite",
    ],
)
def test_record_that_is_not_a_record_names_its_line(
    records: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object, expected: str
) -> None:
    (tmp_path / "bad.jsonl").write_text(edit(records))  # type: ignore[operator]
    for argv in COMMANDS.values():
        code, err = cli_error(capsys, *argv)
        assert (code, err) == (2, expected), argv


def test_record_line_over_the_cap_is_refused_without_reading_it_all(
    records: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 17 MB line with no line break: read 16 MB + 1 byte at most.
    (tmp_path / "bad.jsonl").write_text(records + '{"kind": "case", "output": "' + "x" * (17 * 1024 * 1024))
    code, err = cli_error(capsys, *COMMANDS["diff"])
    assert (code, err) == (
        2,
        "bad.jsonl:6: line is longer than 16 MB (a line holds one case: keep each under 16 MB)",
    )


def test_record_cut_short_mid_line_still_loads(records: str, tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text(records[:-20])  # the end line, half written
    record = load_record(tmp_path / "bad.jsonl")
    assert (record.end, record.status) == (None, "interrupted")
    assert [c.case_id for c in record.cases] == ["c1", "c2", "c3"]


def test_record_cut_short_inside_a_character_still_loads(records: str, tmp_path: Path) -> None:
    # The writer died between the two bytes of an "é" in the last case's output.
    text = corrupt(records, 4, "output of c3", "output of c3 café")
    data = text.encode("utf-8")
    (tmp_path / "bad.jsonl").write_bytes(data[: data.index("é".encode()) + 1])
    record = load_record(tmp_path / "bad.jsonl")
    assert (record.end, record.status) == (None, "interrupted")
    assert [c.case_id for c in record.cases] == ["c1", "c2"]


def test_record_cut_short_gates_as_interrupted(
    records: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.jsonl").write_text(records[:-20])
    assert main(COMMANDS["diff"]) == 3
    assert "could not evaluate: the candidate run did not finish (interrupted)" in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_record_path_that_is_a_fifo_is_refused_unopened(
    records: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    os.mkfifo(tmp_path / "bad.jsonl")
    code, err = cli_error(capsys, *COMMANDS[command])
    assert (code, err) == (
        2,
        "bad.jsonl: not a regular file (a FIFO; pass a file written by 'agent-evals run')",
    )


@pytest.mark.parametrize("command", ["diff", "report"])
def test_record_path_that_is_a_folder(
    records: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    (tmp_path / "bad.jsonl").mkdir()
    code, err = cli_error(capsys, *COMMANDS[command])
    assert (code, err) == (
        2,
        "bad.jsonl: is a folder, not a run record (pass a file written by 'agent-evals run')",
    )


def test_merge_of_a_folder_holding_a_fifo_names_it(
    records: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "shard").mkdir()
    os.mkfifo(tmp_path / "shard/e.jsonl")
    code, err = cli_error(capsys, "merge", "shard", "--output", "merged")
    assert (code, err) == (
        2,
        "shard/e.jsonl: not a regular file (a FIFO; pass a file written by 'agent-evals run')",
    )


def test_deep_but_writable_record_values_still_load(records: str, tmp_path: Path) -> None:
    # What a run can write (pydantic serialises up to ~255 levels) must read back.
    deep = "[" * 250 + "]" * 250
    (tmp_path / "ok.jsonl").write_text(corrupt(records, 2, '"expected":{"label":"x"}', '"expected":' + deep))
    assert load_record(tmp_path / "ok.jsonl").cases[0].expected is not None


def test_two_records_in_one_file_are_refused_the_same_way_by_the_history(
    records: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`history import` said "a second run header (is this a run record?)", diff said nothing:
    one error (record.second_header) for both."""
    monkeypatch.setenv("AGENT_EVALS_HISTORY_URL", f"sqlite:///{tmp_path / 'history.sqlite3'}")
    (tmp_path / "bad.jsonl").write_text(records + records)
    said = (
        "bad.jsonl:6: a second header line: two records in one file (keep each run's record in its own "
        "file ('agent-evals merge' joins shards of one run))"
    )
    assert cli_error(capsys, "history", "import", "bad.jsonl") == (2, said)
    assert cli_error(capsys, "diff", "good.jsonl", "bad.jsonl") == (2, said)


def _resumable(project: Path) -> Path:
    """The record of a run stopped before its cases ran (no model is reachable), to resume."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env |= {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    subprocess.run(
        [*CLI, "run", "--output", "run.jsonl"], cwd=project, env=env, capture_output=True, timeout=120
    )
    return project / "run.jsonl"


@pytest.mark.parametrize(
    ("key", "value", "should"),
    [
        ("repeat", 10**23, "a whole number from 1 to 1,000"),  # planned every repeat before sending: a hang
        ("repeat", "3", "a whole number from 1 to 1,000"),  # int("x") was an internal error
        ("repeat", True, "a whole number from 1 to 1,000"),
        ("repeat", 0, "a whole number from 1 to 1,000"),
        ("max_cost_usd", "lots", "a finite number of USD, 0 or more"),
        ("max_cost_usd", -1, "a finite number of USD, 0 or more"),
        ("filters", "case-*", "a list of patterns"),
        ("model", 7, "a string"),
    ],
)
def test_a_resumed_record_s_options_are_held_to_the_command_line_s_bounds(
    project: Path, capsys: pytest.CaptureFixture[str], key: str, value: object, should: str
) -> None:
    path = _resumable(project)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["options"]["repeat"] == 1
    header["options"][key] = value
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    code, err = cli_error(capsys, "run", "--resume", str(path))
    shown = json.dumps(value)
    assert (code, err) == (
        2,
        f"{path}:1: the record's option {key} is {shown}, not {should} "
        "(the record was edited, or is not agent-evals'; start a new run instead)",
    )


# --- numbers on the command line ----------------------------------------------------------


def _number_options() -> list[tuple[tuple[str, ...], str, type]]:
    """Every option of every command that takes an int or a float: (command path, flag, type)."""
    import typing

    import typer.main

    from agent_evals.cli import app

    def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    found = []
    for path, command in walk(typer.main.get_command(app)):
        if command.callback is None or hasattr(command, "commands"):
            continue
        hints = typing.get_type_hints(command.callback, include_extras=True)
        for name, hint in hints.items():
            if typing.get_origin(hint) is not typing.Annotated:
                continue
            base, *marks = typing.get_args(hint)
            kinds = [k for k in (typing.get_args(base) or (base,)) if k is not type(None)]
            info = next((m for m in marks if isinstance(m, typer.models.OptionInfo)), None)
            if info is None or kinds not in ([int], [float]):
                continue
            flags = [d for d in (info.param_decls or ()) if d.startswith("--")] or [
                "--" + name.replace("_", "-")
            ]
            found.append((path, flags[0], kinds[0]))
    return found


NUMBER_OPTIONS = _number_options()


def test_the_number_options_are_found() -> None:
    assert {(("run",), "--repeat", int), (("sample",), "--seed", int), (("run",), "--max-cost", float),
            (("cache", "clear"), "--older-than-days", float), (("ci",), "--concurrency", int)} <= set(NUMBER_OPTIONS)  # fmt: skip
    assert len(NUMBER_OPTIONS) >= 20


@pytest.mark.parametrize(
    ("path", "flag", "kind"), NUMBER_OPTIONS, ids=[" ".join((*p, f)) for p, f, _ in NUMBER_OPTIONS]
)
def test_every_number_option_refuses_what_is_past_any_bound(
    project: Path, capsys: pytest.CaptureFixture[str], path: tuple[str, ...], flag: str, kind: type
) -> None:
    # --repeat 10**23 planned every repeat before sending anything (a hang SIGTERM could not stop),
    # --seed 10**23 overflowed inside the sampler and --max-cost 1e400 stopped a run at once.
    hostile = [str(10**23), str(-(10**23))] if kind is int else ["1e400", "inf", "-inf", "nan"]
    for value in hostile:
        code, err = cli_error(capsys, *path, flag, value)
        assert code == 2, (path, flag, value, err)
        assert f"Invalid value for '{flag}'" in err or f"/ '{flag}'" in err, err
