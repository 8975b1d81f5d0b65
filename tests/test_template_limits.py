"""Template bombs: every payload ends in one located error (exit 2), quickly, never a crash or a hang.

Each payload replaces `{{ body }}`, the second line of messages[1] in the test prompt, so
its errors name prompts/triage.yaml:18 (17 when the error is about the whole message).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agent_evals import _jobclock
from agent_evals import render as render_module
from agent_evals.cli import main
from agent_evals.models import Case, Prompt
from agent_evals.record import load_record
from agent_evals.render import LIMITS, render
from tests.support import AGENT, PROMPT, basic_project, write_tree

SIZE = "build smaller strings and lists; see 'Template limits' in the README"
NUMBER = "a prompt template should not compute with big numbers"
LOOP = "loop over fewer items"
STEPS = "loop over fewer items; a prompt template should not compute"
SLOW = "loop over fewer items and avoid repeated work on long strings"
RECURSION = "stop the recursion earlier"
FLATTEN = "flatten the template: set intermediate values with {% set %}"
CHAIN = "split long chains of operators or filters with {% set %}"
OUTPUT = "render less text: shorten long vars with '| truncate(n)' or loop over fewer items"

DOUBLING = "{% set ns = namespace(s=SEED) %}{% for i in range(64) %}{% set ns.s = ns.s OP ns.s %}{% endfor %}{{ ns.s }}"


def _big(how: str, size: str) -> str:
    amount = f"about {size}" if size else "more than 1,000,000"
    return f"builds a value of {amount} characters with {how}, over the limit of 1,000,000"


# (id, template, what the message says, hint, file line, failing at compile time)
PAYLOADS: list[tuple[str, str, str, str, int, bool]] = [
    # size, by each operator and filter that can outgrow its input
    ("str-repeat", "{{ 'x' * 10**9 }}", _big("'*'", "1,000,000,000"), SIZE, 18, False),
    ("list-repeat", "{{ [1] * 10**9 }}", _big("'*'", ""), SIZE, 18, False),
    (
        "format-filter-width",
        "{{ '%999999999s' | format(1) }}",
        _big("'| format'", "1,000,000,010"),
        SIZE,
        18,
        False,
    ),
    (
        "str-format-width",
        "{{ '{:>999999999}'.format(1) }}",
        _big("str.format", "999,999,999"),
        SIZE,
        18,
        False,
    ),
    (
        "percent-operator",
        "{{ '%(a)s%(a)s' % {'a': 'x' * 600000} }}",
        _big("'%'", "1,200,010"),
        SIZE,
        18,
        False,
    ),
    ("center-filter", "{{ 'x' | center(10**9) }}", _big("'| center'", "1,000,000,000"), SIZE, 18, False),
    ("center-method", "{{ 'x'.center(10**9) }}", _big("'center()'", "1,000,000,000"), SIZE, 18, False),
    ("indent-width", "{{ 'a\\nb' | indent(10**9) }}", _big("'| indent'", "2,000,000,003"), SIZE, 18, False),
    (
        "wordwrap-wrapstring",
        "{{ ('a ' * 400000) | wordwrap(1, wrapstring='x' * 1000) }}",
        _big("'| wordwrap'", "800,801,000"),
        SIZE,
        18,
        False,
    ),
    (
        "join-big-range",
        "{{ range(100000) | join('x' * 1000) }}",
        _big("'| join'", "100,525,688"),
        SIZE,
        18,
        False,
    ),
    (
        "namespace-tilde-doubling",
        DOUBLING.replace("SEED", "'x'").replace("OP", "~"),
        _big("'~'", ""),
        SIZE,
        18,
        False,
    ),
    ("plus-doubling", DOUBLING.replace("SEED", "'x'").replace("OP", "+"), _big("'+'", ""), SIZE, 18, False),
    (
        "list-literal",
        "{% set a = 'x' * 500000 %}{{ [a, a, a] | length }}",
        _big("a list or dict literal", ""),
        SIZE,
        18,
        False,
    ),
    (
        "set-block-buffer",
        "{% set b %}{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}{% endset %}{{ b | length }}",
        _big("a macro or block", "10,000,000"),
        SIZE,
        18,
        False,
    ),
    (
        "output",
        "{% for i in range(20000) %}{{ 'x' * 100 }}{% endfor %}",
        "exceeds the output limit of 1,000,000 characters",
        OUTPUT,
        17,
        False,
    ),
    ("lipsum", "{{ lipsum(10**6) }}", _big("'lipsum()'", "1,600,000,000"), SIZE, 18, False),
    ("to-bytes", "{{ (1).to_bytes(10**9, 'big') }}", _big("'to_bytes()'", "1,000,000,000"), SIZE, 18, False),
    (
        "batch-padding",
        "{{ [1] | batch(10**9, 0) | list }}",
        "makes 1,000,000,000 items with '| batch', over the limit of 100,000",
        "use a smaller count",
        18,
        False,
    ),
    # numbers
    (
        "exponent-tower",
        "{{ 9**(9**(9**9)) }}",
        "computes a number of about 369,693,101 digits with '**', over the limit of 4,300",
        NUMBER,
        18,
        False,
    ),
    (
        "int-square-doubling",
        DOUBLING.replace("SEED", "10").replace("OP", "*").replace("{{ ns.s }}", "{{ ns.s > 0 }}"),
        "computes a number of about 8,193 digits with '*', over the limit of 4,300",
        NUMBER,
        18,
        False,
    ),
    (
        "range-product",
        "{{ range(10**6) | list }}",
        "makes a range of 1,000,000 items, over the limit of 100,000",
        LOOP,
        18,
        False,
    ),
    # time
    (
        "nested-loops",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "takes more than 1,000,000 steps (loop iterations, calls, filters, operators and outputs)",
        STEPS,
        18,
        False,
    ),
    (
        "slow-steps",
        "{% set a = 'x ' * 400000 %}{% for i in range(100000) %}{{ a | upper | length }}{% endfor %}",
        "runs longer than the time limit of 2 s",
        SLOW,
        18,
        False,
    ),
    # recursion
    (
        "recursive-macro",
        "{% macro f(n) %}{{ f(n + 1) }}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "nests macro calls or recursive loops deeper than 32 levels",
        RECURSION,
        18,
        False,
    ),
    (
        "recursive-loop",
        "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
        "nests macro calls or recursive loops deeper than 32 levels",
        RECURSION,
        18,
        False,
    ),
    (
        "nested-parentheses",
        "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
        "nests brackets and blocks deeper than 16 levels",
        FLATTEN,
        18,
        True,
    ),
    (
        "nested-brackets",
        "{{ " + "[" * 5000 + "1" + "]" * 5000 + " }}",
        "nests brackets and blocks deeper than 16 levels",
        FLATTEN,
        18,
        True,
    ),
    (
        "unary-chain",
        "{{ " + "-" * 5000 + "1 }}",
        "nests brackets and blocks deeper than 16 levels",
        FLATTEN,
        18,
        True,
    ),
    (
        "nested-for-blocks",
        "{% for i in [1] %}" * 30 + "{% endfor %}" * 30,
        "nests brackets and blocks deeper than 16 levels",
        FLATTEN,
        18,
        True,
    ),
    (
        "operator-chain",
        "{{ 1" + " + 1" * 5000 + " }}",
        "has an expression nested deeper than 100 levels",
        CHAIN,
        18,
        True,
    ),
]
IDS = [p[0] for p in PAYLOADS]


def _message(what: str, hint: str, line: int, compile_time: bool, *, more: bool) -> str:
    case = "" if compile_time else " for case 'c1'"
    suffix = "; 2 more case(s) fail the same way" if more and not compile_time else ""
    return f"prompts/triage.yaml:{line}: template in messages[1] {what}{case} ({hint}{suffix})"


def _project(root: Path, template: str) -> Path:
    basic_project(root, prompts__triage_yaml=PROMPT.replace("{{ body }}", template))
    # The agent leaves a mark if it is ever called: a bad template must stop `run` before that.
    write_tree(root, {"agent.py": AGENT + "\nimport pathlib\npathlib.Path('called').touch()\n"})
    return root


@pytest.mark.parametrize(("name", "template", "what", "hint", "line", "compile_time"), PAYLOADS, ids=IDS)
def test_validate_reports_the_bomb_on_its_line(
    name: str,
    template: str,
    what: str,
    hint: str,
    line: int,
    compile_time: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(_project(tmp_path, template))
    assert main(["validate"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [_message(what, hint, line, compile_time, more=True)]
    assert "internal error" not in out + err


@pytest.mark.parametrize(("name", "template", "what", "hint", "line", "compile_time"), PAYLOADS, ids=IDS)
def test_run_stops_before_any_provider_call(
    name: str,
    template: str,
    what: str,
    hint: str,
    line: int,
    compile_time: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(_project(tmp_path, template))
    assert main(["run"]) == 2
    _, err = capsys.readouterr()
    assert err.splitlines() == [_message(what, hint, line, compile_time, more=False)]
    assert not (tmp_path / "called").exists()


def test_the_payload_table_covers_every_class() -> None:
    # At least 15 payloads, and each class of bomb the limits exist for.
    assert len(PAYLOADS) >= 15
    whats = " ".join(p[2] for p in PAYLOADS)
    for needle in (
        "characters with",
        "digits",
        "steps",
        "time limit",
        "macro calls",
        "brackets",
        "output limit",
    ):
        assert needle in whats


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent_evals.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_exponent_tower_exits_2_quickly_in_a_real_process(tmp_path: Path) -> None:
    # Before the limits, Jinja constant-folded this while compiling, in C: a process
    # that ignored SIGTERM until the CI job's timeout.
    _project(tmp_path, "{{ 9**(9**(9**9)) }}")
    proc = _cli("validate", cwd=tmp_path)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert out.splitlines() == [
        _message(
            "computes a number of about 369,693,101 digits with '**', over the limit of 4,300",
            NUMBER,
            18,
            False,
            more=True,
        )
    ]


def test_sigterm_ends_a_process_rendering_a_slow_template(tmp_path: Path) -> None:
    # Each render is within the limits (200,000 steps) but there are many cases, so `run`
    # is still rendering when the signal comes; it must end as interrupted, promptly.
    _project(tmp_path, "{% for i in range(100000) %}{% endfor %}{% for i in range(100000) %}{% endfor %}")
    cases = "".join(
        f"  - id: s{i}\n    vars: {{subject: s, n: {i}}}\n    expected: {{disposition: refund}}\n"
        for i in range(2000)
    )
    evalset = (tmp_path / "evalsets/triage.yaml").read_text()
    (tmp_path / "evalsets/triage.yaml").write_text(evalset.split("cases:\n")[0] + "cases:\n" + cases)
    # Lifted: the job's render limit would end this run by itself after 5 s (see the tests below).
    lifted = (
        "from agent_evals import _jobclock, render\n"
        "_jobclock.JOB_SECONDS = render._FORECAST_AFTER_S = float('inf')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", lifted + "from agent_evals.cli import entry\nentry()\n", "run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(5)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "interrupted by SIGTERM"
    assert not (tmp_path / "called").exists()


BENIGN: list[tuple[str, dict[str, object], str]] = [
    (
        "{% for x in items %}{{ loop.index }}. {{ x | upper }}\n{% endfor %}",
        {"items": ["a", "b"]},
        "1. A\n2. B\n",
    ),
    ("{{ items | join(', ') }} ({{ items | length }})", {"items": ["a", "b", "c"]}, "a, b, c (3)"),
    ("{{ '%5s|%-4d|%.2f' % ('ab', 7, 3.14159) }}", {}, "   ab|7   |3.14"),
    ("{{ '%08.3f' | format(2.5) }} {{ '{:>6}|{:^5}'.format('r', 'c') }}", {}, "0002.500      r|  c  "),
    ("{{ name ~ '-' ~ n ~ '-' ~ [1, 2] }}", {"name": "x", "n": 3}, "x-3-[1, 2]"),
    (
        "{{ 2 ** 10 }} {{ 7 * 6 }} {{ 7 // 2 }} {{ 7 % 4 }} {{ 1.5 * 2 }} {{ -3 + 1 }}",
        {},
        "1024 42 3 3 3.0 -2",
    ),
    ("{{ 9**9**9**9 }}", {}, str(((9**9) ** 9) ** 9)),  # Jinja's ** is left-associative: 696 digits
    ("{{ 'ab' * 3 }} {{ [0] * 3 }} {{ 'x' | center(5) }}|", {}, "ababab [0, 0, 0]   x  |"),
    (
        "{% macro item(t, depth) %}{{ '  ' * depth }}- {{ t.name }}\n"
        "{% for c in t.children %}{{ item(c, depth + 1) }}{% endfor %}{% endmacro %}{{ item(tree, 0) }}",
        {"tree": {"name": "a", "children": [{"name": "b", "children": [{"name": "c", "children": []}]}]}},
        "- a\n  - b\n    - c\n",
    ),
    (
        "{% set ns = namespace(total=0) %}{% for x in nums %}{% set ns.total = ns.total + x %}{% endfor %}"
        "{{ ns.total }} {{ nums | sum }} {{ [[1], [2]] | sum(start=[]) }} {{ range(3) | list }}",
        {"nums": [1, 2, 3]},
        "6 6 [1, 2] [0, 1, 2]",
    ),
    (
        "{{ doc | truncate(12) }}|{{ doc | wordwrap(10) }}|{{ 'a\nb' | indent(2, first=true) }}",
        {"doc": "the quick brown fox jumps"},
        "the...|the quick\nbrown fox\njumps|  a\n  b",
    ),
    (
        "{{ data | tojson }} {{ data | tojson(indent=1) | length }}",
        {"data": {"a": [1, 2]}},
        '{"a": [1, 2]} 23',
    ),
    (
        "{% set b %}{% for i in range(3) %}{{ i }}{% endfor %}{% endset %}{{ b }}{% filter upper %}x{% endfilter %}",
        {},
        "012X",
    ),
    (
        "{{ 'a,b'.split(',') | join(d='+') }} {{ 'x'.join(['1', '2']) }} {{ 'aXa'.replace('a', 'bb') }}",
        {},
        "a+b 1x2 bbXbb",
    ),
]


@pytest.mark.parametrize(("template", "variables", "expected"), BENIGN)
def test_benign_templates_render_exactly_as_before(
    template: str, variables: dict[str, object], expected: str
) -> None:
    prompt = Prompt.model_validate(
        {
            "id": "p",
            "version": 1,
            "owner": {"name": "team", "oncall": "pagerduty:team"},
            "model": {"provider": "local", "name": "m"},
            "messages": [{"role": "system", "content": "literal"}, {"role": "user", "content": template}],
        }
    )
    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    assert plain.from_string(template).render(variables) == expected  # what Jinja alone renders
    request = render(prompt, Case(id="c", vars=variables))
    assert [m.content for m in request.messages] == ["literal", expected]


def test_limits_are_one_frozen_table() -> None:
    assert (LIMITS.output_chars, LIMITS.value_chars, LIMITS.number_digits, LIMITS.seconds) == (
        1_000_000,
        1_000_000,
        4_300,
        2.0,
    )
    with pytest.raises(AttributeError):
        LIMITS.seconds = 10  # type: ignore[misc]


# A template within every per-render limit (100,000 steps of 1,000,000) but slow: about 10 ms a case.
SLOW = "{% for i in range(100000) %}{% endfor %}"
_RATE = re.compile(
    r"(?P<done>\d+) of (?P<total>[\d,]+) cases of eval set 'triage' took (?P<took>[\d.]+) (?P<unit>ms|s) "
)


@pytest.fixture
def lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job render limit at 0.3 s and no forecast: a job stops when it has taken that long."""
    monkeypatch.setattr(_jobclock, "JOB_SECONDS", 0.3)
    monkeypatch.setattr(render_module, "_FORECAST_AFTER_S", float("inf"))


def _many_cases(root: Path, count: int, turn: str | None = None) -> None:
    turns = f"    turns:\n      - {{user: '{turn}'}}\n" if turn else ""
    cases = "".join(
        f"  - id: s{i}\n    vars: {{subject: s, body: b{i}}}\n    expected: {{disposition: refund}}\n{turns}"
        for i in range(count)
    )
    evalset = (root / "evalsets/triage.yaml").read_text()
    (root / "evalsets/triage.yaml").write_text(evalset.split("cases:\n")[0] + "cases:\n" + cases)


def _too_slow(err: str, *, line: str, what: str, total: int, limit: str) -> float:
    """The seconds the one error line says the stopped job took; checks the rest of the line."""
    (only,) = err.splitlines()
    assert only.startswith(f"{line}: {what} renders too slowly: "), only
    assert only.endswith(
        f", over the limit of {limit} s for a prompt on an eval set (make the template do less work: loop "
        "over fewer items and avoid repeated filters on long strings; a prompt renders in well under a "
        "millisecond a case)"
    ), only
    found = _RATE.search(only)
    assert found is not None, only
    assert int(found["done"]) < total == int(found["total"].replace(",", ""))
    return float(found["took"]) / (1000 if found["unit"] == "ms" else 1)


@pytest.mark.usefixtures("lowered")
def test_a_template_slow_on_every_case_stops_the_run_before_it_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each render is within the limits; all the cases together are not (JOB_SECONDS, lowered here).
    monkeypatch.chdir(_project(tmp_path, SLOW))
    _many_cases(tmp_path, 100)
    assert main(["run"]) == 2
    _, err = capsys.readouterr()
    took = _too_slow(
        err, line="prompts/triage.yaml:17", what="the template in messages[1]", total=100, limit="0.3"
    )
    assert took >= 0.3
    assert not (tmp_path / "called").exists()


def test_a_job_on_course_for_twice_the_limit_stops_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # 400 slow cases would take seconds: the forecast stops them long before the limit itself.
    monkeypatch.setattr(_jobclock, "JOB_SECONDS", 1.0)
    monkeypatch.setattr(render_module, "_FORECAST_AFTER_S", 0.2)
    monkeypatch.chdir(_project(tmp_path, SLOW))
    _many_cases(tmp_path, 400)
    assert main(["run"]) == 2
    _, err = capsys.readouterr()
    took = _too_slow(
        err, line="prompts/triage.yaml:17", what="the template in messages[1]", total=400, limit="1"
    )
    assert 0.2 <= took < 1.0  # (the line rounds to 3 digits: 0.2003 s is "200 ms")
    assert "; all 400 would take about " in err
    assert not (tmp_path / "called").exists()


@pytest.mark.usefixtures("lowered")
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_slow_turn_is_named_at_its_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # validate renders every case's turns too (pre-commit runs it): the same limit, the same one line.
    monkeypatch.chdir(_project(tmp_path, "{{ body }}"))
    _many_cases(tmp_path, 100, turn=SLOW)
    assert main([command]) == 2
    out, err = capsys.readouterr()
    said = err if command == "run" else out
    stopped = int(_RATE.search(said)["done"])  # type: ignore[index]
    # Each case is three lines, then its turn: the turn of the case it stopped at.
    _too_slow(
        said,
        line=f"evalsets/triage.yaml:{12 + 5 * (stopped - 1) + 5}",
        what=f"the template in turns[0] of case 's{stopped - 1}'",
        total=100,
        limit="0.3",
    )
    assert not (tmp_path / "called").exists()


def test_quick_templates_stay_far_under_the_job_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same lowered limit, a real prompt's template: 2,000 cases render in a few milliseconds.
    monkeypatch.setattr(_jobclock, "JOB_SECONDS", 0.3)
    monkeypatch.setattr(render_module, "_FORECAST_AFTER_S", 0.05)
    monkeypatch.chdir(_project(tmp_path, "{{ body | upper }} ({{ subject }})"))
    monkeypatch.delitem(sys.modules, "agent", raising=False)  # this project's agent, not an earlier test's
    _many_cases(tmp_path, 2000)
    assert main(["run", "--output", "r.jsonl"]) == 0
    _, err = capsys.readouterr()
    assert "renders too slowly" not in err
    assert len(load_record(tmp_path / "r.jsonl").cases) == 2000


@pytest.mark.usefixtures("lowered")
def test_validate_bounds_a_slow_prompt_over_cases_of_many_shapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # validate renders one case of each shape of vars; 100 shapes are 100 renders.
    monkeypatch.chdir(_project(tmp_path, SLOW))
    _many_cases(tmp_path, 100)
    evalset = tmp_path / "evalsets/triage.yaml"
    text = evalset.read_text()
    for i in range(100):
        text = text.replace(f"body: b{i}}}", f"body: b{i}, k{i}: 1}}")
    evalset.write_text(text)
    assert main(["validate"]) == 2
    out, _ = capsys.readouterr()
    _too_slow(out, line="prompts/triage.yaml:17", what="the template in messages[1]", total=100, limit="0.3")
