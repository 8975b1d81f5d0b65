"""Large eval sets: a cases file read line by line into cases, and the eval set's content hash.

The loader reads a `cases_file` a line at a time and validates each row as it is read;
it must load, and fail, exactly as reading the whole text first did. The content hash is
fed to sha256 a slice of cases at a time; it must stay the value `canonical_hash` gives
over the whole eval set, which every stored record and the history hold.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_evals._json import lone_surrogate
from agent_evals.errors import ConfigError, ConfigErrors
from agent_evals.load import (
    CasesReader,
    _finite_float,
    _loads,
    _refuse_constant,
    _TooLarge,
    iter_jsonl,
    load_evalset,
)
from agent_evals.models import CaseSources, EvalSet, canonical_hash
from tests.support import EVALSET, basic_project

SETTINGS = settings(
    max_examples=80,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEAD = EVALSET.split("cases:")[0] + "cases_file: triage.cases.jsonl\n"
CASES = "evalsets/triage.cases.jsonl"


def row(case_id: str, **fields: Any) -> str:
    data = {"id": case_id, "vars": {"subject": "s", "body": "b"}, "expected": {"disposition": "x"}}
    return json.dumps({**data, **fields}, ensure_ascii=False)


@contextlib.contextmanager
def project(cases: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        root = basic_project(Path(folder), evalsets__triage_yaml=HEAD)
        (root / CASES).write_bytes(cases)
        yield root


def old_content_hash(evalset: EvalSet) -> str:
    """The content hash as it was defined: `canonical_hash` over the whole eval set at once."""
    return canonical_hash_as_defined(
        {
            "prompt": evalset.prompt,
            "graders": [g.model_dump(mode="json") for g in evalset.graders],
            "cases": [c.model_dump(mode="json") for c in evalset.cases],
            **(
                {"tools": {k: v.model_dump(mode="json") for k, v in evalset.tools.items()}}
                if evalset.tools
                else {}
            ),
        }
    )


def canonical_hash_as_defined(data: Any) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def whole_text(ref: str) -> tuple[str, str]:
    """How the loader read a cases file before reading it line by line: the whole text, decoded
    at once (naming the line of the first byte that is not UTF-8), line endings read as \\n."""
    data = (Path("evalsets") / ref).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError("not UTF-8 text", path=CASES, line=line, hint="save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n"), CASES


def outcome(read_cases: CasesReader | None) -> Any:
    """What loading the eval set gives: its cases, their lines and its hash, or the errors."""
    try:
        evalset = load_evalset(Path("evalsets/triage.yaml"), read_cases=read_cases)
    except ConfigError as exc:
        errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
        return [e.render() for e in errors]
    sources = [evalset.case_source(i) for i in range(len(evalset.cases))]
    return [c.model_dump() for c in evalset.cases], sources, evalset.content_hash


# --- the cases file, line by line ------------------------------------------------------------

# Lines that load, lines that do not (as JSON, as a case, as UTF-8), and long ones that cross
# the reader's buffers.
good_lines = st.builds(
    row,
    st.sampled_from(["a", "b", "c", "d"]),
    tags=st.lists(st.sampled_from(["refund", "billing", "é"]), max_size=2),
)
bad_lines = st.sampled_from(
    [
        '{"id": "e", "vars": {"subject": "s"}, "expected": NaN}',
        '{"id": "e", "vars": "not a mapping"}',
        '{"id": "e", "tags": "refund"}',
        '{"id": ""}',
        '{"vars": {}}',
        '{"id": "e", "unknown": 1}',
        "[1, 2]",
        '{"id": "e",',
        "\ufeff" + row("e"),
        '{"id": "e", "expected": ' + "[" * 101 + "]" * 101 + "}",
        "",
        "   ",
    ]
)
long_lines = st.integers(3000, 9000).map(lambda n: row("f", expected="x" * n))
lines_as_bytes = st.one_of(good_lines, bad_lines, long_lines).map(str.encode) | st.sampled_from(
    [b"\xff", b'{"id": "g\xe9"}', b"\xe2\x82", "€".encode()]
)


@st.composite
def cases_files(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(lines_as_bytes, max_size=8))
    ends = [draw(st.sampled_from([b"\n", b"\r\n", b"\r"])) for _ in lines[1:]]
    ends.append(draw(st.sampled_from([b"", b"\n", b"\r\n", b"\r"])))  # the last line's, if any
    return b"".join(line + end for line, end in zip(lines, ends, strict=False))


@SETTINGS
@given(data=cases_files())
def test_a_cases_file_loads_line_by_line_as_its_whole_text_did(data: bytes) -> None:
    with project(data):
        assert outcome(None) == outcome(whole_text)


def test_a_byte_that_is_not_utf8_wins_over_an_earlier_line_that_is_not_json() -> None:
    # A character across the first megabyte's end, and the bad byte well after it.
    head = b'{not json\n{"id": "a", "expected": "'
    padding = head + b"x" * (2**20 - 1 - len(head)) + '€"}\n'.encode()
    data = padding + row("b").encode() + b"\n\xff\n"
    assert data[2**20 - 1 : 2**20 + 2] == "€".encode()
    with project(data):
        assert outcome(None) == [f"{CASES}:4: not UTF-8 text (save the file as UTF-8)"]
        assert outcome(None) == outcome(whole_text)


def test_a_file_ending_inside_a_character_names_its_last_line() -> None:
    with project(b'{"id": "a"}\n{"id": \n{"id": "c"}\n\xe2\x82'):
        assert outcome(None) == [f"{CASES}:4: not UTF-8 text (save the file as UTF-8)"]


def test_every_invalid_case_is_reported_with_its_line() -> None:
    data = "\n".join([row("a"), '{"id": "b", "vars": 1}', row("c"), '{"id": "d", "tags": [1]}']) + "\n"
    with project(data.encode()):
        assert outcome(None) == [
            f"{CASES}:2: 'vars': Input should be a valid dictionary (got 1) (change the value to the expected type)",
            f"{CASES}:4: 'tags[0]': Input should be a valid string (got 1) "
            "(change the value to the expected type)",
        ]


def test_loaded_cases_share_what_repeats() -> None:
    lines = [row(f"c{i}", tags=["refund", "billing"], cluster="conv-1") for i in range(3)]
    with project(("\n".join(lines) + "\n").encode()):
        evalset = load_evalset(Path("evalsets/triage.yaml"))
    first, *others = evalset.cases
    for case in others:
        assert case.tags[0] is first.tags[0]
        assert case.cluster is first.cluster
        assert [id(k) for k in case.vars] == [id(k) for k in first.vars]
        assert case.__pydantic_fields_set__ is first.__pydantic_fields_set__
    assert first.model_fields_set == {"id", "vars", "expected", "tags", "cluster"}
    # A copy gets its own set: changing it leaves the other cases alone.
    copy = first.model_copy(update={"turns": ()})
    assert copy.model_fields_set == {"id", "vars", "expected", "tags", "cluster", "turns"}
    assert others[0].model_fields_set == {"id", "vars", "expected", "tags", "cluster"}
    assert evalset.case_source(2) == (CASES, 3)
    assert isinstance(evalset._case_sources, CaseSources)


def test_case_sources_equal_the_pairs_they_stand_for() -> None:
    sources = CaseSources("x.jsonl")
    for line in (1, 3, 4):
        sources.append(line)
    pairs = [("x.jsonl", 1), ("x.jsonl", 3), ("x.jsonl", 4)]
    assert sources == pairs
    assert list(sources) == pairs
    assert sources[1] == ("x.jsonl", 3)
    assert sources[1:] == pairs[1:]
    assert sources != pairs[:2]
    assert sources != [("y.jsonl", 1), ("x.jsonl", 3), ("x.jsonl", 4)]


# --- one line of JSON --------------------------------------------------------------------------

json_texts = st.recursive(
    st.one_of(
        st.sampled_from(["1", "-0", "1e999", "NaN", "-Infinity", "null", '"\\ud800"', '"x"', "tru", ""]),
        st.text(max_size=5).map(json.dumps),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(inner, max_size=3).map(lambda items: "{" + ",".join(f'"k":{v}' for v in items) + "}"),
    ),
    max_leaves=10,
)


def result_of(call: Any) -> Any:
    try:
        return "value", json.dumps(call(), default=repr)
    except json.JSONDecodeError as exc:
        return "JSONDecodeError", exc.msg, exc.pos
    except Exception as exc:  # the same exception, whatever it is
        return type(exc).__name__, str(exc)


@SETTINGS
@given(text=json_texts, prefix=st.sampled_from(["", " ", "\ufeff"]), suffix=st.sampled_from(["", " ", "x"]))
def test_one_decoder_reads_a_line_as_json_loads_did(text: str, prefix: str, suffix: str) -> None:
    line = prefix + text + suffix
    assert result_of(lambda: _loads(line)) == result_of(
        lambda: json.loads(line, parse_constant=_refuse_constant, parse_float=_finite_float)
    )


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@SETTINGS
@given(text=json_texts.filter(lambda t: "NaN" not in t and "Infinity" not in t), noise=st.integers(0, 6))
def test_a_line_is_refused_exactly_when_it_nests_too_deep(text: str, noise: int) -> None:
    # Brackets inside strings count towards the quick check but nest nothing.
    line = '{"pad": "' + "[{" * noise + '", "v": ' + text + "}"
    try:
        value = json.loads(line)
    except ValueError:
        return
    try:
        json.loads(line, parse_float=_finite_float)
    except _TooLarge:
        expected: str | None = "number 1e999 is too large (a number is at most 1.8e308)"  # read first
    else:
        expected = (
            "collections nested more than 3 deep"
            if depth(value) > 3
            else "not valid JSON: a \\u escape of half a surrogate pair"
            if lone_surrogate(value)
            else None
        )
    try:
        list(iter_jsonl([line], "x.jsonl", max_depth=3))
    except ConfigError as exc:
        refusal: str | None = exc.message
    else:
        refusal = None
    assert refusal == expected


# --- the content hash --------------------------------------------------------------------------

texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    texts,
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
cases = st.fixed_dictionaries(
    {"id": texts.filter(bool) | st.integers()},
    optional={
        "vars": st.dictionaries(texts, values, max_size=3),
        "expected": values,
        "tags": st.lists(texts, max_size=2),
        "cluster": texts,
        "tools": st.lists(
            st.fixed_dictionaries(
                {"name": texts.filter(bool)},
                optional={
                    "arguments": st.dictionaries(texts, values, max_size=2),
                    "result": values,
                    "error": texts,
                },
            ),
            max_size=2,
        ),
        "turns": st.lists(st.fixed_dictionaries({"user": texts}, optional={"expected": values}), max_size=2),
    },
)
evalsets = st.fixed_dictionaries(
    {
        "id": st.just("set"),
        "prompt": texts.filter(bool),
        "graders": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["exact_match", "contains", "rubric"])},
                optional={
                    "name": texts,
                    "weight": st.floats(0, 5),
                    "value": values,
                    "turns": st.just("each"),
                },
            ),
            min_size=1,
            max_size=3,
        ),
        "cases": st.lists(cases, max_size=6),
    },
    optional={
        "tools": st.dictionaries(
            st.sampled_from(["lookup", "refund"]),
            st.fixed_dictionaries(
                {"match": st.just("exact")}, optional={"mock": st.builds(lambda v: {"value": v}, values)}
            ),
            max_size=2,
        )
    },
)


@SETTINGS
@given(data=evalsets)
def test_the_content_hash_is_the_canonical_hash_of_the_whole_eval_set(data: dict[str, Any]) -> None:
    evalset = EvalSet.model_validate(data)
    assert evalset.content_hash == old_content_hash(evalset)


def test_the_content_hash_of_many_slices_of_cases() -> None:
    many = [
        {
            "id": i,
            "vars": {"n": i, "when": dt.date(2026, 1, 1 + i % 28), "text": "é" * (i % 5)},
            "tags": [str(i % 3)],
        }
        for i in range(2_345)
    ]
    evalset = EvalSet.model_validate(
        {"id": "set", "prompt": "p", "graders": [{"type": "exact_match"}], "cases": many}
    )
    assert evalset.content_hash == old_content_hash(evalset)
    assert (
        EvalSet.model_validate({**evalset.model_dump(), "cases": many[:-1]}).content_hash
        != evalset.content_hash
    )


def test_the_content_hash_of_yaml_with_dates_and_tools(tmp_path: Path) -> None:
    evalset_yaml = EVALSET.replace(
        "cases:\n", "tools:\n  lookup: {match: exact, mock: {value: 2026-11-01}}\ncases:\n", 1
    )
    evalset_yaml += (
        "  - id: dated\n    vars: {when: 2026-11-01, at: 2026-11-01 10:00:00}\n    expected: 2026-11-02\n"
    )
    (tmp_path / "triage.yaml").write_text(evalset_yaml)
    evalset = load_evalset(tmp_path / "triage.yaml")
    assert isinstance(evalset.cases[-1].vars["when"], dt.date)
    assert evalset.content_hash == old_content_hash(evalset)


def test_the_content_hash_is_computed_once() -> None:
    evalset = EvalSet.model_validate({"id": "set", "prompt": "p", "graders": [{"type": "exact_match"}]})
    assert evalset.content_hash is evalset.content_hash
    assert "content_hash" not in evalset.model_dump()
    assert evalset == EvalSet.model_validate(
        {"id": "set", "prompt": "p", "graders": [{"type": "exact_match"}]}
    )


@SETTINGS
@given(value=values)
def test_canonical_hash_is_the_hash_it_was_defined_as(value: Any) -> None:
    assert canonical_hash(value) == canonical_hash_as_defined(value)
