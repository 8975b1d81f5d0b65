"""The plain-template path of `render`: text and `{{ name }}` outputs joined without the sandbox.

It must give what the sandbox gives, error for error, so every test here compares with a
render through the sandbox, and checks which path ran by counting the sandbox's renders.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from jinja2 import nodes
from markupsafe import Markup

from agent_evals.errors import TemplateError
from agent_evals.load import load_evalset
from agent_evals.models import Case, EvalSet, Message, Prompt
from agent_evals.render import (
    LIMITS,
    _compile,
    _Literal,
    _Plain,
    _plain,
    _render_compiled,
    _with_content,
    environment,
    render,
    render_turns,
)


def _prompt(*contents: str) -> Prompt:
    return Prompt.model_validate(
        {
            "schema_version": 1,
            "id": "fast",
            "version": 1,
            "description": "plain templates",
            "owner": {"name": "team", "oncall": "pager"},
            "model": {"provider": "openai", "name": "m"},
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                *({"role": "user", "content": content} for content in contents),
            ],
        }
    )


@pytest.fixture
def sandbox_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates the sandbox rendered during the test."""
    env = environment()
    real = env.render
    calls: list[str] = []

    def counting(template: Any, variables: Any) -> str:
        calls.append(template.name)
        return real(template, variables)

    monkeypatch.setattr(env, "render", counting)
    return calls


def _outcome(render_it: Any) -> tuple[str, str]:
    try:
        return "text", render_it()
    except Exception as exc:
        return type(exc).__name__, str(exc)


# -- which path runs ------------------------------------------------------------------


def test_a_plain_template_with_str_vars_is_joined_without_the_sandbox(sandbox_renders: list[str]) -> None:
    prompt = _prompt("Question for {{ ref }}: {{ question }}")
    case = Case(id="c1", vars={"ref": "case-1", "question": "what is 6 x 7?"})

    request = render(prompt, case)

    assert request.messages[1] == Message(role="user", content="Question for case-1: what is 6 x 7?")
    assert request.messages[0] is prompt.messages[0]
    assert sandbox_renders == []


@pytest.mark.parametrize(
    ("value", "text"),
    [(7, "7"), (0.5, "0.5"), (None, "None"), (["a"], "['a']"), ({"k": 1}, "{'k': 1}"), (True, "True")],
)
def test_a_var_that_is_not_a_str_goes_to_the_sandbox(
    sandbox_renders: list[str], value: object, text: str
) -> None:
    request = render(
        _prompt("Question for {{ ref }}: {{ question }}"), Case(id="c1", vars={"ref": value, "question": "q"})
    )

    assert request.messages[1].content == f"Question for {text}: q"
    assert sandbox_renders == ["fast#messages[1]"]


def test_a_str_subclass_goes_to_the_sandbox(sandbox_renders: list[str]) -> None:
    request = render(_prompt("<{{ ref }}>"), Case(id="c1", vars={"ref": Markup("<b>")}))

    assert request.messages[1].content == "<<b>>"
    assert sandbox_renders == ["fast#messages[1]"]


def test_a_missing_var_goes_to_the_sandbox_and_fails_as_before(sandbox_renders: list[str]) -> None:
    with pytest.raises(TemplateError) as raised:
        render(_prompt("Question for {{ ref }}:\n{{ question }}"), Case(id="c1", vars={"ref": "r"}))

    assert raised.value.message == "undefined variable in messages[1] for case 'c1': 'question' is undefined"
    assert raised.value.hint == "add it to the vars of case 'c1', or use '| default(...)'"
    assert sandbox_renders == ["fast#messages[1]"]


@pytest.mark.parametrize(
    "source",
    [
        "{{ a | upper }}",
        "{{ a.b }}",
        "{{ a['b'] }}",
        "{{ a is defined }}",
        "{{ a ~ b }}",
        "{{ a + b }}",
        "{{ 'text' }}",
        "{{ a() }}",
        "{{ self }}",
        "{% if a %}{{ a }}{% endif %}",
        "{% set b = a %}{{ b }}",
        "{% for x in a %}{{ x }}{% endfor %}",
        "{% autoescape true %}{{ a }}{% endautoescape %}",
    ],
)
def test_other_templates_are_not_plain(sandbox_renders: list[str], source: str) -> None:
    assert not isinstance(_compile(source, "t"), _Plain)
    with contextlib.suppress(TemplateError):  # some need other vars: the sandbox said so
        render(_prompt(source), Case(id="c1", vars={"a": "x", "b": "y"}))
    assert sandbox_renders == ["fast#messages[1]"]


@pytest.mark.parametrize(
    ("source", "names", "text"),
    [
        ("{{ a }}", ("a",), "A"),
        ("x{{a}}y{{ b }}z{{ a }}", ("a", "b", "a"), "xAyBzA"),
        ("line\r\n{{ a }}\n", ("a",), "line\nA\n"),
        ("  {{- a -}}  \n{# note #}{{ b }}", ("a", "b"), "AB"),
        ("{% raw %}{{ a }} {}{% endraw %}{{ b }}", ("b",), "{{ a }} {}B"),
        ("{# only a comment #}", (), ""),
        ("{{ range }}{{ loop }}", ("range", "loop"), "RL"),
    ],
)
def test_plain_templates_and_what_they_join_to(
    sandbox_renders: list[str], source: str, names: tuple[str, ...], text: str
) -> None:
    compiled = _compile(source, "t")
    variables = {"a": "A", "b": "B", "range": "R", "loop": "L"}

    assert isinstance(compiled, _Plain)
    assert compiled.names == names
    assert _render_compiled(compiled, variables) == text == environment().render(compiled.template, variables)
    assert sandbox_renders == ["t"]  # only the comparison's


def test_render_turns_joins_plain_turns(sandbox_renders: list[str]) -> None:
    evalset = EvalSet.model_validate(
        {
            "schema_version": 1,
            "id": "turns",
            "prompt": "fast",
            "graders": [{"type": "contains", "value": "x"}],
            "cases": [
                {
                    "id": "c1",
                    "vars": {"order": "A-1", "n": 2},
                    "turns": [{"user": "And {{ order }}?"}, {"user": "{{ n }} of them"}, {"user": "thanks"}],
                }
            ],
        }
    )

    assert render_turns(evalset, 0) == ("And A-1?", "2 of them", "thanks")
    assert sandbox_renders == ["turns#turns"]


# -- limits ---------------------------------------------------------------------------


def test_a_too_long_str_var_fails_with_the_output_limit_as_in_the_sandbox(sandbox_renders: list[str]) -> None:
    case = Case(id="big", vars={"text": "x" * 2_000_000})
    errors = []
    for source in ("Read: {{ text }}", "Read: {% if true %}{{ text }}{% endif %}"):
        with pytest.raises(TemplateError) as raised:
            render(_prompt(source), case)
        errors.append(raised.value)

    plain, sandboxed = errors
    assert (
        plain.message
        == "template in messages[1] exceeds the output limit of 1,000,000 characters for case 'big'"
    )
    assert plain.hint == "render less text: shorten long vars with '| truncate(n)' or loop over fewer items"
    assert (str(plain), plain.line, plain.hint) == (str(sandboxed), sandboxed.line, sandboxed.hint)
    assert sandbox_renders == ["fast#messages[1]"]  # the second template only


def test_a_too_big_list_var_fails_in_the_sandbox(sandbox_renders: list[str]) -> None:
    with pytest.raises(TemplateError) as raised:
        render(_prompt("Read: {{ items }}"), Case(id="big", vars={"items": ["x" * 1000] * 1001}))

    assert raised.value.message == (
        "template in messages[1] builds a value of more than 1,000,000 characters with '{{ }}', "
        "over the limit of 1,000,000 for case 'big'"
    )
    assert sandbox_renders == ["fast#messages[1]"]


def test_exactly_the_output_limit_renders() -> None:
    text = "x" * (LIMITS.output_chars - 2)
    assert render(_prompt("<{{ t }}>"), Case(id="c", vars={"t": text})).messages[1].content == f"<{text}>"


def test_a_template_with_as_many_outputs_as_the_step_limit_is_left_to_the_sandbox() -> None:
    # Each output is a step even when its text is empty; the sandbox stops at the limit.
    template = environment().from_string("{{ a }}")
    name = nodes.Name("a", "load")
    assert _plain(template, nodes.Template([nodes.Output([name] * (LIMITS.steps - 1))])) is not None
    assert _plain(template, nodes.Template([nodes.Output([name] * LIMITS.steps)])) is None


# -- equivalence with the sandbox -----------------------------------------------------

NAMES = ("a", "b", "ref", "range", "loop", "self", "namespace")
TEXT = st.text(
    alphabet=st.one_of(st.characters(blacklist_characters="{}", codec="utf-8"), st.sampled_from("\n\r \t")),
    max_size=12,
)
OUTPUT = st.builds(
    lambda name, left, right: "{{" + left + name + right + "}}",
    st.sampled_from(NAMES),
    st.sampled_from(["", " ", "- ", "-", "  \n"]),
    st.sampled_from(["", " ", " -", "-", "\n "]),
)
RAW = st.builds(
    lambda body: "{% raw %}" + body + "{% endraw %}", st.sampled_from(["{{ a }}", "{", "}", "{}}{"])
)
COMMENT = st.just("{# note #}")
TEMPLATE = st.lists(st.one_of(TEXT, OUTPUT, RAW, COMMENT), min_size=1, max_size=8).map("".join)
VALUE = st.one_of(
    st.text(max_size=10),
    st.integers(),
    st.floats(),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(max_size=4).map(Markup),
)
VARS = st.dictionaries(st.sampled_from(NAMES), VALUE)


@settings(max_examples=400, deadline=None)
@given(source=TEMPLATE, variables=VARS)
@example(source="{{ self }}", variables={"self": "x"})
@example(source="{% raw %}{}}{{% endraw %}{{ a }}", variables={"a": "x"})
@example(source="a\r\n {{- a -}} \n", variables={"a": "x"})
def test_the_plain_path_renders_what_the_sandbox_renders(source: str, variables: dict[str, Any]) -> None:
    compiled = _compile(source, "prop")
    if isinstance(compiled, _Literal):  # no markup at all: never rendered
        assert compiled.render() == source
        return
    sandboxed = compiled.template if isinstance(compiled, _Plain) else compiled
    assert _outcome(lambda: _render_compiled(compiled, variables)) == _outcome(
        lambda: environment().render(sandboxed, variables)
    )


@settings(max_examples=200, deadline=None)
@given(source=TEMPLATE, variables=VARS)
def test_render_gives_the_same_request_or_error_as_a_sandboxed_template(
    source: str, variables: dict[str, Any]
) -> None:
    # The same template inside an `if` block is never plain, and renders the same text
    # (a message without markup is not a template: it is sent as it is, `\r` and all).
    assume(not isinstance(_compile(source, "prop"), _Literal))
    case = Case(id="c", vars=variables)
    plain, sandboxed = _prompt(source), _prompt("{% if true %}" + source + "{% endif %}")

    def outcome(prompt: Prompt) -> tuple[str, object]:
        try:
            return "request", render(prompt, case).messages
        except TemplateError as exc:
            return "error", (exc.message, exc.hint, exc.line)

    assert outcome(plain) == outcome(sandboxed)


# -- messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        Message(role="user", content="{{ a }}"),
        Message(role="system", content="{{ a }}"),
        Message.model_validate({"role": "user", "content": "{{ a }}", "is_error": False}),
        Message.model_validate(
            {
                "role": "assistant",
                "content": "{{ a }}",
                "tool_calls": [{"id": "t1", "name": "lookup", "arguments": {"q": 1}}],
            }
        ),
        Message(role="tool", content="{{ a }}", tool_call_id="t1", name="lookup"),
    ],
)
def test_a_rendered_message_equals_a_copy_with_the_new_content(message: Message) -> None:
    rendered = _with_content(message, "new text")
    copied = message.model_copy(update={"content": "new text"})

    assert rendered == copied
    assert rendered.model_fields_set == copied.model_fields_set
    assert rendered.model_dump() == copied.model_dump()


# -- turns ----------------------------------------------------------------------------


def test_a_turn_that_cases_share_compiles_once_and_fails_at_its_own_line(tmp_path: Path) -> None:
    # Found by its line: the turn's second template line, in whichever case it fails.
    path = tmp_path / "shared.yaml"
    path.write_text(
        "schema_version: 1\n"
        "id: shared\n"
        "prompt: fast\n"
        "graders: [{type: contains, value: x}]\n"
        "cases:\n"
        "  - id: one\n"
        "    vars: {order: A-1, note: first}\n"
        "    turns:\n"
        "      - user: |-\n"
        "          And {{ order }}, shared-turn-test?\n"
        "          {{ note }}\n"
        "  - id: two\n"
        "    vars: {order: A-2}\n"
        "    turns:\n"
        "      - user: |-\n"
        "          And {{ order }}, shared-turn-test?\n"
        "          {{ note }}\n",
        encoding="utf-8",
    )
    evalset = load_evalset(path)
    misses = _compile.cache_info().misses

    assert render_turns(evalset, 0) == ("And A-1, shared-turn-test?\nfirst",)
    with pytest.raises(TemplateError) as raised:
        render_turns(evalset, 1)

    assert _compile.cache_info().misses == misses + 1
    assert raised.value.message == "undefined variable in turns[0] for case 'two': 'note' is undefined"
    assert (raised.value.path, raised.value.line) == (str(path), 17)
