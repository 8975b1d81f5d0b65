"""`sample` on hostile logs: every malformed or oversized row is named or counted, never a crash.

Each test runs the CLI in-process. The project has no prompt, so the sampled
rows are not rendered (a note says so), and the mapping is two fields:
`vars.text=text` and `label=label`.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import stat
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_evals.cli import main
from agent_evals.sampling._read import MAX_FIELD_CHARS, MAX_ROW_BYTES

MAP = ["--map", "vars.text=text", "--map", "label=label"]
SKIP = "fix the line, or pass --skip-bad-lines"


def sample_cli(log: str, *extra: str) -> int:
    return main(["sample", log, "--prompt", "triage", "--n", "3", *MAP, *extra])


def good_rows(n: int = 5) -> list[dict[str, Any]]:
    return [
        {"text": f"ticket number {i} about topic {'abcde'[i % 5]}", "label": "ab"[i % 2]} for i in range(n)
    ]


def jsonl_log(path: Path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path.name


def good_lines(n: int = 5) -> list[str]:
    return [json.dumps(row) for row in good_rows(n)]


def csv_text(records: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records)
    return out.getvalue()


def csv_log(path: Path, body: str) -> str:
    """A CSV log: a header, a row whose text spans three lines (so rows and lines differ), then `body`."""
    head = csv_text([["ts", "text", "label"], ["1", "first ticket\nspans\nthree lines", "a"]])
    path.write_text(head + body, encoding="utf-8")
    return path.name


def rows_csv(n: int = 4) -> str:
    return csv_text([[str(i + 2), row["text"], row["label"]] for i, row in enumerate(good_rows(n))])


def summary_count(out: str, label: str) -> int:
    """The number a summary line shows for `label` (e.g. 'bad lines skipped: unclosed quote')."""
    for line in out.splitlines():
        if line.strip().startswith(label):
            return int(line.split()[-1].replace(",", ""))
    raise AssertionError(f"no summary line {label!r} in:\n{out}")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# --- JSON Lines: values Python's json reads but no case can hold ------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "1" * 5000,
            "number out of range (an integer of more than 4300 digits) "
            "(write the number as a string, fix the line, or pass --skip-bad-lines)",
        ),
        (
            "NaN",
            "not valid JSON (NaN is not a JSON value) "
            "(write null or a string instead, fix the line, or pass --skip-bad-lines)",
        ),
        (
            "-Infinity",
            "not valid JSON (-Infinity is not a JSON value) "
            "(write null or a string instead, fix the line, or pass --skip-bad-lines)",
        ),
        (
            "[" * 100_000 + "]" * 100_000,
            "nested too deeply (more than 100 levels) (flatten the line, or pass --skip-bad-lines)",
        ),
        (
            "[" * 100 + "]" * 100,
            "nested too deeply (more than 100 levels) (flatten the line, or pass --skip-bad-lines)",
        ),
        ('"\\udc00"', f"not valid JSON (a \\u escape of half a surrogate pair) ({SKIP})"),
    ],
    ids=["huge-int", "nan", "infinity", "deep-recursion", "deep-101", "lone-surrogate"],
)
def test_jsonl_value_no_case_can_hold_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    lines = good_lines()
    lines[2] = '{"text": "x", "label": "a", "extra": ' + value + "}"
    log = jsonl_log(tmp_path / "log.jsonl", lines)

    assert sample_cli(log) == 2
    assert capsys.readouterr().err == f"log.jsonl:3: {message}\n"

    assert sample_cli(log, "--skip-bad-lines") == 0
    reason = message.split(" (")[0]
    out = capsys.readouterr().out
    assert summary_count(out, f"bad lines skipped: {reason}") == 1
    assert summary_count(out, "eligible rows") == 4


def test_nesting_up_to_the_limit_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep: Any = "leaf"
    for _ in range(99):  # 99 lists inside the row object: 100 levels
        deep = [deep]
    lines = [json.dumps({"text": deep, "label": "a"})]
    assert sample_cli(jsonl_log(tmp_path / "log.jsonl", lines)) == 0
    assert "wrote 1 case(s)" in capsys.readouterr().out


def test_an_infinite_number_in_a_mapped_field_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = good_lines()
    lines[1] = '{"text": 1e400, "label": "a"}'
    log = jsonl_log(tmp_path / "log.jsonl", lines)
    assert sample_cli(log) == 2
    assert capsys.readouterr().err == (
        "log.jsonl:2: number out of range (a mapped field holds inf, which JSON and YAML cannot) "
        "(write the number as a string, fix the line, or pass --skip-bad-lines)\n"
    )
    assert sample_cli(log, "--skip-bad-lines") == 0
    assert summary_count(capsys.readouterr().out, "bad lines skipped: number out of range") == 1


# --- CSV: ragged rows and unclosed quotes, named by their physical line --------------------


@pytest.mark.parametrize(
    ("row", "saw"), [("5,short", 2), ("5,one too,many,fields", 4)], ids=["short", "long"]
)
def test_csv_ragged_row_names_its_physical_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, saw: int
) -> None:
    # Lines: 1 header, 2-4 the three-line row, 5-6 good rows, 7 the ragged one, 8-9 good rows.
    rows = rows_csv(4).splitlines(keepends=True)
    log = csv_log(tmp_path / "log.csv", "".join([*rows[:2], row + "\n", *rows[2:]]))

    assert sample_cli(log) == 2
    assert capsys.readouterr().err == (
        f"log.csv:7: expected 3 fields, saw {saw} (fix the line, or pass --skip-bad-lines)\n"
    )
    assert sample_cli(log, "--skip-bad-lines") == 0
    out = capsys.readouterr().out
    assert summary_count(out, "bad lines skipped: wrong number of fields") == 1
    assert summary_count(out, "rows read") == 5


def test_csv_unclosed_quote_names_where_it_opens_and_skipping_reads_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_csv(4).splitlines(keepends=True)
    # Line 7 opens a quote that never closes: to the csv module the rest of the file is one field.
    log = csv_log(tmp_path / "log.csv", "".join([*rows[:2], '6,"never closed,a\n', *rows[2:]]))

    assert sample_cli(log) == 2
    assert capsys.readouterr().err == (
        "log.csv:7: unclosed quote: a quoted field opens here and never closes "
        "(close the quote, or pass --skip-bad-lines to skip this row and read on from the next line)\n"
    )
    assert sample_cli(log, "--skip-bad-lines") == 0
    out = capsys.readouterr().out
    assert summary_count(out, "bad lines skipped: unclosed quote") == 1
    assert summary_count(out, "rows read") == 5  # the rows after the quote were read too


def test_csv_bad_row_after_an_unclosed_quote_is_named_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_csv(4).splitlines(keepends=True)
    log = csv_log(tmp_path / "log.csv", "".join([rows[0], '6,"never closed,a\n', rows[1], "x\n", *rows[2:]]))
    assert sample_cli(log, "--skip-bad-lines") == 0
    out = capsys.readouterr().out
    assert summary_count(out, "bad lines skipped: unclosed quote") == 1
    assert summary_count(out, "bad lines skipped: wrong number of fields") == 1
    assert summary_count(out, "rows read") == 5


# --- rows too large to be a case: skipped, counted, never read whole ----------------------------


def test_a_64_mb_jsonl_line_is_skipped_without_reading_it_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = good_lines()
    lines[2] = json.dumps({"text": "x" * (64 << 20), "label": "a"})
    log = jsonl_log(tmp_path / "log.jsonl", lines)
    del lines
    assert sample_cli(log) == 0  # a first run imports what sample needs, outside the measurement
    capsys.readouterr()
    gc.collect()
    tracemalloc.start()
    try:
        assert sample_cli(log, "--overwrite") == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = capsys.readouterr().out
    assert summary_count(out, "filtered: row over 4 MiB") == 1
    assert summary_count(out, "rows read") == 5
    assert summary_count(out, "eligible rows") == 4
    assert peak < 3 * MAX_ROW_BYTES  # the line is 16 times that
    assert "x" * 100 not in (tmp_path / "evalsets" / "triage.yaml").read_text(encoding="utf-8")


def test_a_field_over_the_limit_is_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = good_lines()
    lines[1] = json.dumps({"text": "y" * (MAX_FIELD_CHARS + 1), "label": "a"})
    lines[3] = json.dumps({"text": "z" * MAX_FIELD_CHARS, "label": "b"})  # at the limit: kept
    assert sample_cli(jsonl_log(tmp_path / "log.jsonl", lines), "--n", "5") == 0
    out = capsys.readouterr().out
    assert summary_count(out, "filtered: a field over 1 Mi characters") == 1
    assert summary_count(out, "eligible rows") == 4


def test_csv_field_and_row_over_the_limits_are_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge_field = csv_text([["6", "f" * (MAX_FIELD_CHARS + 1), "a"]])
    # A record of many lines, each field under the field limit, but over the row limit in all.
    huge_row = csv_text([["7", "r" * (MAX_FIELD_CHARS - 10), "a", *(["s" * (MAX_FIELD_CHARS - 10)] * 4)]])
    long_line = "8," + "l" * (MAX_ROW_BYTES + 10) + ",b\n"
    rows = rows_csv(4).splitlines(keepends=True)
    log = csv_log(
        tmp_path / "log.csv", "".join([rows[0], huge_field, rows[1], huge_row, long_line, *rows[2:]])
    )
    assert sample_cli(log) == 0
    out = capsys.readouterr().out
    assert summary_count(out, "filtered: a field over 1 Mi characters") == 1
    assert summary_count(out, "filtered: row over 4 MiB") == 2
    assert summary_count(out, "rows read") == 8
    assert summary_count(out, "eligible rows") == 5


# --- file modes -------------------------------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_written_files_get_the_umask_mode_and_keep_an_existing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*good_rows(4), {"text": "no label here", "label": None}]
    log = jsonl_log(tmp_path / "log.jsonl", [json.dumps(r) for r in rows])
    evalsets = tmp_path / "evalsets"
    assert sample_cli(log, "--n", "5", "--cases-file") == 0
    files = [evalsets / "triage.yaml", evalsets / "triage.cases.jsonl", evalsets / "triage.to-label.jsonl"]
    assert [_mode(f) for f in files] == [0o644, 0o644, 0o644]

    for f in files:
        f.chmod(0o640)
    assert sample_cli(log, "--n", "5", "--cases-file", "--overwrite") == 0
    assert [_mode(f) for f in files] == [0o640, 0o640, 0o640]

    more = jsonl_log(tmp_path / "more.jsonl", [json.dumps({"text": "a brand new ticket", "label": "a"})])
    assert sample_cli(more, "--append") == 0
    assert [_mode(f) for f in files] == [0o640, 0o640, 0o640]
    assert capsys.readouterr().err == ""


# --- properties: whatever the bytes, exit 0 or 2 and never an internal error -------------------


def _check(log: str, capsys: pytest.CaptureFixture[str], *extra: str) -> None:
    code = sample_cli(log, "--overwrite", *extra)
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "internal error" not in err
    if code == 2:
        assert len(err.splitlines()) == 1, err


PROPERTY = settings(
    derandomize=True,
    max_examples=40,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(data=st.binary(max_size=400), skip=st.booleans())
def test_random_bytes_as_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, skip: bool
) -> None:
    (tmp_path / "log.jsonl").write_bytes(data)
    _check("log.jsonl", capsys, *(["--skip-bad-lines"] if skip else []))


_CSV_BYTES = st.lists(
    st.sampled_from(
        [b"text,label\n", b"a,b\n", b'"', b",", b"\n", b"\r\n", b"\r", b"x", b"\x00", b"\xff", b'""']
    ),
    max_size=40,
).map(b"".join)


@PROPERTY
@given(data=st.one_of(st.binary(max_size=400), _CSV_BYTES), skip=st.booleans())
def test_random_bytes_as_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, skip: bool
) -> None:
    (tmp_path / "log.csv").write_bytes(data)
    _check("log.csv", capsys, *(["--skip-bad-lines"] if skip else []))


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_ROW = st.one_of(
    _JSON,
    st.fixed_dictionaries({"text": _JSON, "label": _JSON}, optional={"ts": _JSON}),
)


@PROPERTY
@given(rows=st.lists(_ROW, min_size=1, max_size=8), skip=st.booleans(), with_ts=st.booleans())
def test_random_json_structures_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[Any], skip: bool, with_ts: bool
) -> None:
    log = jsonl_log(tmp_path / "log.jsonl", [json.dumps(r) for r in rows])
    extra = ["--skip-bad-lines"] if skip else []
    if with_ts:
        extra += ["--map", "timestamp=ts", "--stratify-by", "label"]
    _check(log, capsys, *extra)


def test_a_field_name_with_a_line_break_stays_on_the_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by the property test above: U+0085 is a line break to str.splitlines and to some terminals.
    log = jsonl_log(tmp_path / "log.jsonl", [json.dumps({"\x85": None})])
    assert sample_cli(log) == 2
    assert capsys.readouterr().err == (
        "log.jsonl: no row of the log has 'text' (mapped to vars.text) (fields: \\x85)\n"
    )
