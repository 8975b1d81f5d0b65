"""Property tests: random bytes, text and structures into every loader and record reader.

Whatever a file holds, the library raises ConfigError or succeeds, and the CLI exits
0, 1 or 2 (3 only for a gate that could not judge), never with `internal error` and
within a deadline. Derandomized, so the suite is deterministic.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.load import load_config, load_evalset, load_prompt
from agent_evals.record import load_record, write
from tests.support import EVALSET, PROMPT, basic_project, make_record

SETTINGS = settings(
    max_examples=60,
    deadline=timedelta(seconds=2),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies ---------------------------------------------------------------------------

# Strings with the characters that break parsers: controls, NUL, quotes, surrogate-free unicode.
nasty_text = st.text(
    st.characters(blacklist_categories=["Cs"])
    | st.sampled_from("\x00\x07\x1b\x7f\x85\u2028\ufeff\"'\\:-[]{}#&*!|>%@`\n\t"),
    max_size=30,
)
huge_int = st.integers(min_value=4290, max_value=4400).map(lambda n: "9" * n)


def yaml_scalars() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers().map(str),
        huge_int,
        st.sampled_from(
            [".nan", ".inf", "-.inf", "1e999", "0x" + "f" * 4000, "2020-02-30", "1:2:3", "~", "null"]
        ),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        nasty_text.map(json.dumps),  # a double-quoted YAML string, escapes and all
        nasty_text,  # raw: may not parse at all
        st.sampled_from(
            ["!!set [1]", "!!timestamp x", "!!bool x", "!!int x", "!!binary '#'", "*nope", "&a 1"]
        ),
    )


def yaml_values() -> st.SearchStrategy[str]:
    return st.recursive(
        yaml_scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
            st.dictionaries(st.sampled_from(["a", "id", "vars", "<<", "k", "1"]), inner, max_size=4).map(
                lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"
            ),
        ),
        max_leaves=12,
    )


def json_scalars() -> st.SearchStrategy[str]:
    return st.one_of(
        st.none().map(json.dumps),
        st.booleans().map(json.dumps),
        st.integers().map(str),
        huge_int,
        st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-0", "[" * 300 + "]" * 300]),
        nasty_text.map(json.dumps),
    )


def json_values() -> st.SearchStrategy[str]:
    return st.recursive(
        json_scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
            st.dictionaries(nasty_text | st.sampled_from(["kind", "id", "index"]), inner, max_size=4).map(
                lambda d: "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in d.items()) + "}"
            ),
        ),
        max_leaves=12,
    )


# Lines of the known-good files, one of them given a random value; or random text or bytes.
PROMPT_LINES = PROMPT.splitlines(keepends=True)
EVALSET_LINES = EVALSET.splitlines(keepends=True)


# The same files with an output schema (a pattern, $defs), a tool, a mock template, a recorded call,
# and the graders that read them: what `run` checks before sending, and the bounded checks after.
RICH_PROMPT = PROMPT.replace(
    "messages:\n",
    "tools:\n  - name: lookup\n    description: Look it up.\n    parameters:\n      type: object\n"
    "      properties:\n        id: {type: integer}\n      required: [id]\nmessages:\n",
).replace(
    "output:\n  format: json\n",
    "output:\n  format: json\n  schema:\n    type: object\n    properties:\n"
    "      disposition: {type: string, pattern: '^[a-z_]+$'}\n    required: [disposition]\n"
    "    $defs:\n      a: {type: string}\n",
)
RICH_EVALSET = EVALSET.replace(
    "graders:\n",
    'tools:\n  lookup:\n    mock:\n      template: \'{"id": {{ args.id }}, "status": "paid"}\'\n'
    "graders:\n  - type: json_schema\n  - type: tool_args\n    tool: lookup\n    required: false\n"
    "  - type: regex\n    pattern: 'refund|billing'\n    required: false\n",
).replace(
    "    tags: [refund]\n",
    "    tags: [refund]\n    tools:\n      - {name: lookup, arguments: {id: 7}, result: {status: shipped}}\n",
)


@st.composite
def mutated_yaml(draw: st.DrawFn, lines: list[str]) -> str:
    index = draw(st.integers(0, len(lines) - 1))
    line = lines[index]
    key, sep, _ = line.partition(":")
    value = draw(yaml_values())
    replaced = f"{key}: {value}\n" if sep else line[: len(line) - len(line.lstrip())] + f"- {value}\n"
    return "".join([*lines[:index], replaced, *lines[index + 1 :]])


def yaml_files(lines: list[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        mutated_yaml(lines).map(lambda text: text.encode("utf-8", "surrogatepass")),
        yaml_values().map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    )


@st.composite
def cases_files(draw: st.DrawFn) -> bytes:
    good = '{"id": "a", "vars": {"subject": "s", "body": "b"}, "expected": {"disposition": "x"}}'
    lines = draw(
        st.lists(
            st.one_of(
                st.just(good),
                json_values(),
                json_values().map(lambda v: good.replace('"x"', v)),
                st.text(max_size=40),
            ),
            max_size=5,
        )
    )
    tail = draw(st.sampled_from(["\n", "", "\r\n"]))
    data = ("\n".join(lines) + tail).encode("utf-8", "surrogatepass")
    return data if draw(st.booleans()) else data + draw(st.binary(max_size=20))


GOOD = make_record([("c1", "pass"), ("c2", "fail"), ("c3", "error")])
assert GOOD.end is not None


def good_record_lines() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.jsonl"
        write(path, GOOD.header, list(GOOD.cases), GOOD.end)  # type: ignore[arg-type]
        return [json.loads(line) for line in path.read_text().splitlines()]


RECORD_LINES = good_record_lines()


def _set_path(value: Any, path: list[str | int], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict) and head in value:
        return {**value, head: _set_path(value[head], rest, new)}  # type: ignore[index]
    if isinstance(value, list) and isinstance(head, int) and head < len(value):
        return [*value[:head], _set_path(value[head], rest, new), *value[head + 1 :]]
    return value


def _paths(value: Any, prefix: list[str | int]) -> Iterator[list[str | int]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, [*prefix, key])
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, [*prefix, index])


@st.composite
def mutated_record(draw: st.DrawFn) -> bytes:
    """A good record with one value replaced (valid JSON, maybe valid record), then maybe cut."""
    lines = [json.dumps(line) for line in RECORD_LINES]
    index = draw(st.integers(0, len(lines) - 1))
    paths = list(_paths(RECORD_LINES[index], []))
    path = draw(st.sampled_from(paths))
    raw = draw(json_values())
    marker = "\x00MARK\x00"
    mutated = json.dumps(_set_path(RECORD_LINES[index], path, marker)).replace(json.dumps(marker), raw)
    lines[index] = mutated
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(lines)))  # a resumed run's repeated line
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # a killed writer
    return data


def record_files() -> st.SearchStrategy[bytes]:
    return st.one_of(
        mutated_record(),
        st.binary(max_size=300),
        st.lists(json_values(), max_size=4).map(
            lambda ls: ("\n".join(ls) + "\n").encode("utf-8", "surrogatepass")
        ),
    )


# --- helpers --------------------------------------------------------------------------------


@contextlib.contextmanager
def project() -> Iterator[Path]:
    """A fresh small project as the current directory; its agent module (`python:agent:answer`)
    imported afresh from it, as another project's would be refused, and put back as it was after."""
    earlier = sys.modules.pop("agent", None)
    try:
        with tempfile.TemporaryDirectory() as folder:
            root = basic_project(Path(folder))
            with contextlib.chdir(root):
                yield root
    finally:
        sys.modules.pop("agent", None)
        if earlier is not None:
            sys.modules["agent"] = earlier


def library_call(call: Callable[[], object]) -> None:
    """`call` succeeds or raises ConfigError; anything else fails the property."""
    with contextlib.suppress(ConfigError):
        call()


def cli_call(capsys: pytest.CaptureFixture[str], argv: list[str], allowed: set[int]) -> None:
    code = main(argv)
    captured = capsys.readouterr()
    assert "internal error" not in captured.err, captured.err
    assert "Traceback" not in captured.err
    assert code in allowed, (code, captured.err[-500:])


# --- loaders --------------------------------------------------------------------------------


@SETTINGS
@given(data=yaml_files(PROMPT_LINES))
def test_load_prompt_raises_only_config_errors(data: bytes) -> None:
    with project() as root:
        (root / "prompts/triage.yaml").write_bytes(data)
        library_call(lambda: load_prompt(Path("prompts/triage.yaml")))


@SETTINGS
@given(data=yaml_files(EVALSET_LINES))
def test_load_evalset_raises_only_config_errors(data: bytes) -> None:
    with project() as root:
        (root / "evalsets/triage.yaml").write_bytes(data)
        library_call(lambda: load_evalset(Path("evalsets/triage.yaml")))


@SETTINGS
@given(data=cases_files())
def test_load_evalset_with_a_cases_file_raises_only_config_errors(data: bytes) -> None:
    with project() as root:
        head = EVALSET.split("cases:")[0] + "cases_file: triage.cases.jsonl\n"
        (root / "evalsets/triage.yaml").write_text(head)
        (root / "evalsets/triage.cases.jsonl").write_bytes(data)
        library_call(lambda: load_evalset(Path("evalsets/triage.yaml")))


@SETTINGS
@given(data=yaml_files(["defaults:\n", "  max_attempts: 3\n", "paths:\n", "  prompts: prompts\n"]))
def test_load_config_raises_only_config_errors(data: bytes) -> None:
    with project() as root:
        (root / "agent-evals.yaml").write_bytes(data)
        library_call(lambda: load_config(root))


@SETTINGS
@given(data=record_files())
def test_load_record_raises_only_config_errors(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.jsonl"
        path.write_bytes(data)
        library_call(lambda: load_record(path))


# --- the CLI --------------------------------------------------------------------------------

# capsys is shared by the examples on purpose: each call reads (and so clears) what it captured.
# The deadline guards against a hang, not a speed: a whole command (diff, two reports and a merge)
# took over 2 s for one example on this 2-core machine while it was loaded, and speed is the
# benchmarks' business (bench/), never a test's.
CLI_SETTINGS = settings(
    SETTINGS,
    deadline=timedelta(seconds=20),
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@CLI_SETTINGS
@given(prompt=yaml_files(PROMPT_LINES), evalset=yaml_files(EVALSET_LINES))
def test_validate_exits_0_or_2(capsys: pytest.CaptureFixture[str], prompt: bytes, evalset: bytes) -> None:
    with project() as root:
        (root / "prompts/triage.yaml").write_bytes(prompt)
        (root / "evalsets/triage.yaml").write_bytes(evalset)
        cli_call(capsys, ["validate"], {0, 2})


def test_the_rich_files_are_valid_and_run(capsys: pytest.CaptureFixture[str]) -> None:
    # The property below mutates files that are good to begin with: every check passes on them.
    with project() as root:
        (root / "prompts/triage.yaml").write_text(RICH_PROMPT)
        (root / "evalsets/triage.yaml").write_text(RICH_EVALSET)
        cli_call(capsys, ["validate"], {0})
        cli_call(capsys, ["run", "--no-cache", "--output", "out.jsonl"], {0, 1})
        record = load_record(root / "out.jsonl")
        assert [c.status for c in record.cases] == ["pass", "pass", "fail"]
        assert {g.grader for g in record.cases[0].grades} == {
            "json_schema",
            "tool_args",
            "regex",
            "disposition",
        }


# Values that keep a file loadable more often than the hostile ones above, so more examples reach
# the checks before sending and the graders: schema-like, template-like, patterns, small structures.
_SEMANTIC = st.one_of(
    json_values(),
    st.sampled_from(
        [
            {"$ref": "#"}, {"$ref": "other.json"}, {"$schema": 12}, {"type": "nope"}, {"uniqueItems": True},
            {"pattern": "(a|aa)+$"}, {"anyOf": [{"$ref": "#"}, {}]}, "{{ args.missing }}", "{{ args.id",
            "{% for i in range(10**9) %}{% endfor %}", "(a|aa)+$", "[", "python:os:system", {}, [], "", -1,
        ]
    ).map(json.dumps),
)  # fmt: skip


@st.composite
def mutated_document(draw: st.DrawFn, text: str) -> str:
    """`text` (YAML) with one value replaced, as JSON (which YAML reads): loadable far more often
    than a line given a hostile value, so the checks after loading and the run itself are reached."""
    document = yaml.safe_load(text)
    path = draw(st.sampled_from(list(_paths(document, []))[1:]))
    marker = "\x00MARK\x00"
    return json.dumps(_set_path(document, path, marker)).replace(json.dumps(marker), draw(_SEMANTIC))


@CLI_SETTINGS
@given(
    mutated=st.one_of(
        mutated_document(RICH_PROMPT).map(lambda text: ("prompts", text)),
        mutated_document(RICH_EVALSET).map(lambda text: ("evalsets", text)),
    )
)
def test_run_exits_cleanly(capsys: pytest.CaptureFixture[str], mutated: tuple[str, str]) -> None:
    # One value of one file replaced. The agent is the project's own code (offline); a problem found
    # before sending is exit 2, a case that could not be judged exit 3, a failing case 1.
    folder, text = mutated
    with project() as root:
        (root / "prompts/triage.yaml").write_text(RICH_PROMPT)
        (root / "evalsets/triage.yaml").write_text(RICH_EVALSET)
        (root / folder / "triage.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        cli_call(capsys, ["run", "--no-cache", "--output", "out.jsonl"], {0, 1, 2, 3})


@settings(CLI_SETTINGS, max_examples=40)
@given(base=record_files(), cand=record_files())
def test_diff_report_and_merge_exit_cleanly(
    capsys: pytest.CaptureFixture[str], base: bytes, cand: bytes
) -> None:
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        Path("base.jsonl").write_bytes(base)
        Path("cand.jsonl").write_bytes(cand)
        # 3: the gate could not judge (an interrupted run, too many errors): a verdict, not a crash.
        cli_call(capsys, ["diff", "base.jsonl", "cand.jsonl"], {0, 1, 2, 3})
        cli_call(capsys, ["report", "cand.jsonl", "--html", "one.html"], {0, 2})
        cli_call(capsys, ["report", "cand.jsonl", "--baseline", "base.jsonl", "--html", "two.html"], {0, 2})
        cli_call(capsys, ["merge", "base.jsonl", "cand.jsonl", "--output", "merged.jsonl"], {0, 2})
