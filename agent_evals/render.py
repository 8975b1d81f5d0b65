"""Render a prompt's message templates for one case, in a Jinja sandbox.

Prompt files arrive in pull requests, so they are untrusted: templates run in
an immutable sandbox (no attribute access to Python internals, no mutation), an
undefined variable is an error, never an empty string, and a render has limits
(`LIMITS`, enforced by `_sandbox.py`) on its output, the values it builds, its time,
and its nesting, so a template cannot exhaust memory, hang, or crash us.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError

from agent_evals import _jobclock
from agent_evals._sandbox import LimitedEnvironment, LimitExceeded, Limits, too_much_output
from agent_evals.errors import AgentEvalsError, TemplateError, one_line
from agent_evals.models import Case, EvalSet, Message, Prompt
from agent_evals.providers.base import ChatRequest

LIMITS = Limits(
    # Far above any real prompt (a long context is ~100k characters), far below trouble.
    output_chars=1_000_000,
    # The same bound for anything built on the way, so nothing bigger than a message is made.
    value_chars=1_000_000,
    # Python's own int/str conversion limit: a bigger number could not be printed anyway.
    number_digits=4_300,
    # Jinja's own sandbox bound for range().
    range_items=100_000,
    # Deterministic: the same template fails the same way on a fast laptop and a slow CI box.
    steps=1_000_000,
    # The backstop for slow steps (each is bounded in size); renders take microseconds.
    seconds=2.0,
    # Recursion needs stack: 32 levels of macros stay far from Python's recursion limit.
    call_depth=32,
    # Jinja's parser recurses per level, and Python refuses 20 nested loops.
    nesting=16,
    # Chains like 1+1+...+1 nest without brackets; Python refuses 200 nested parentheses.
    expression_depth=100,
    # Lists in lists: serializers and comparisons recurse in C.
    value_depth=100,
)
"""What one render of one message may use; README 'Template limits' says why each."""

_FORECAST_AFTER_S = 5.0
"""After this long rendering a job, one on course for twice `_jobclock.JOB_SECONDS` stops at once
(it would stop anyway, later): a slow template is reported in seconds, not after the full minute.
The prompt's templates are bounded over the job as its patterns and schemas are: each render by
`LIMITS`, but a template just under them on every case would keep a 10,000-case run rendering for
hours before its first request (real prompts render in well under a millisecond a case)."""


@lru_cache(maxsize=1)
def environment() -> LimitedEnvironment:
    return LimitedEnvironment(
        LIMITS,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


def _template_name(prompt: Prompt, index: int) -> str:
    return f"{prompt.source_path or prompt.id}#messages[{index}]"


class _Literal:
    """A message with no Jinja markup: rendering it is the identity, so skip compiling it.

    Few-shot examples are most of a prompt's messages and rarely hold any markup.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self, variables: object = None) -> str:
        return self.text


class _Plain:
    """A template of only literal text and `{{ name }}` outputs: with str vars, rendering is joining.

    Most message templates are a sentence with a few vars in it, and the sandbox spends
    ten times longer setting up a render than joining the text. When every name is a
    `str` in the vars, what the sandbox yields is exactly the texts and the values in
    turn: the texts are as Jinja parsed them (newlines normalised, whitespace control and
    the trailing newline applied), its `finalize` passes a str through and its `str()`
    of a str is the str. Any other vars (a missing name, a number, a list, a str subclass
    such as `Markup`) go to the sandbox, so its errors and limits stay the ones users see.
    """

    __slots__ = ("_format", "names", "template")

    def __init__(self, template: jinja2.Template, texts: list[str], names: list[str]) -> None:
        self.template = template
        self.names = tuple(names)
        # One `{}` between consecutive texts: str.format joins them with the values in one call.
        self._format = "{}".join(text.replace("{", "{{").replace("}", "}}") for text in texts)

    def join(self, variables: Mapping[str, Any]) -> str | None:
        """The rendered text, or None when a name is missing or not a str (the sandbox renders then).

        Raises:
            LimitExceeded: the text is longer than `LIMITS.output_chars`, as the sandbox says it.
        """
        values = []
        for name in self.names:
            value = variables.get(name)
            if type(value) is not str:
                return None
            values.append(value)
        text = self._format.format(*values)
        if len(text) > LIMITS.output_chars:
            raise too_much_output(LIMITS)
        return text


def _plain(template: jinja2.Template, tree: nodes.Template) -> _Plain | None:
    """`template` as a `_Plain`, when its parsed `tree` is only text and `{{ name }}` outputs."""
    texts, names = [""], []
    for output in tree.body:
        if type(output) is not nodes.Output:
            return None
        for node in output.nodes:
            if type(node) is nodes.TemplateData:
                texts[-1] += node.data
            # `self` is Jinja's reference to the template, whatever the vars say.
            elif type(node) is nodes.Name and node.ctx == "load" and node.name != "self":
                names.append(node.name)
                texts.append("")
            else:
                return None
    # Each output is a step: so many outputs fail in the sandbox, even when the text is empty.
    if len(names) >= LIMITS.steps:
        return None
    return _Plain(template, texts, names)


_MARKUP = ("{{", "{%", "{#")


@lru_cache(maxsize=4096)
def _compile(source: str, name: str) -> jinja2.Template | _Literal | _Plain:
    if not any(marker in source for marker in _MARKUP):
        return _Literal(source)
    env = environment()
    # Compile under our own name so Jinja's rewritten tracebacks carry it, and runtime errors their line.
    # Parsed apart from compiling (as `compile(source)` does inside) to see the template's shape.
    tree = env.parse(source, name=name, filename=name)
    code = env.compile(tree, name=name, filename=name)
    template = env.template_class.from_code(env, code, env.make_globals(None))
    return _plain(template, tree) or template


def _render_compiled(template: jinja2.Template | _Plain, variables: Mapping[str, Any]) -> str:
    """Render a compiled template: a plain one by joining when it can, else in the sandbox."""
    if isinstance(template, _Plain):
        text = template.join(variables)
        if text is not None:
            return text
        template = template.template
    return environment().render(template, variables)


_ROLE_AND_CONTENT = frozenset({"role", "content"})


def _with_content(message: Message, content: str) -> Message:
    """`message` with its content rendered; what is not templated is kept (tool calls, a tool message's id)."""
    if message.model_fields_set <= _ROLE_AND_CONTENT:
        # Most messages: building one afresh takes two thirds of `model_copy`'s generic copy.
        return Message(role=message.role, content=content)
    return message.model_copy(update={"content": content})


def _template_line(exc: BaseException, name: str) -> int | None:
    """The template line an exception was raised on (Jinja rewrites tracebacks for this)."""
    lineno = getattr(exc, "lineno", None)
    if isinstance(exc, jinja2.TemplateSyntaxError) and lineno:
        return int(lineno)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == name:
            return frame.lineno
    return None


def _file_line(prompt: Prompt, index: int, template_line: int | None) -> int | None:
    start = prompt.line_of("messages", index, "content", value=True)
    if start is None:
        return None
    return start + (template_line - 1 if template_line else 0)


def compile_prompt(prompt: Prompt) -> list[jinja2.Template | _Literal | _Plain]:
    """Compile every message template; a syntax error names its file line.

    Raises:
        TemplateError: a template does not parse, or nests deeper than `LIMITS` allow.
    """
    return list(_templates(prompt))


# The last prompt's templates: a job renders one prompt for every case, and looking each
# message up in the compile cache again (hashing its name) was most of a render's time.
_last: tuple[Prompt, tuple[jinja2.Template | _Literal | _Plain, ...]] | None = None


def _templates(prompt: Prompt) -> tuple[jinja2.Template | _Literal | _Plain, ...]:
    global _last
    last = _last
    if last is not None and last[0] is prompt:
        return last[1]
    templates = []
    for index, message in enumerate(prompt.messages):
        name = _template_name(prompt, index)
        try:
            templates.append(_compile(message.content, name))
        except _COMPILE_ERRORS as exc:
            raise _compile_error(prompt, index, exc) from None
    result = tuple(templates)
    _last = (prompt, result)
    return result


_COMPILE_ERRORS = (
    jinja2.TemplateSyntaxError, LimitExceeded, RecursionError, MemoryError, SyntaxError, ValueError, OverflowError
)  # fmt: skip


def _compile_error(prompt: Prompt, index: int, exc: BaseException) -> TemplateError:
    """One located TemplateError for whatever stopped a message template from compiling."""
    line: int | None = None
    if isinstance(exc, jinja2.TemplateSyntaxError):
        message, line = f"template syntax error in messages[{index}]: {exc.message}", exc.lineno
        hint = "fix the Jinja syntax; use {% raw %}...{% endraw %} for literal braces"
    elif isinstance(exc, LimitExceeded):
        message, hint, line = f"template in messages[{index}] {exc.what}", exc.hint, exc.lineno
    elif isinstance(exc, RecursionError | MemoryError | SyntaxError):
        # The checks in _sandbox.py come first; this is the last line of defence.
        message = f"template in messages[{index}] is nested too deeply to compile ({type(exc).__name__})"
        hint = "flatten the template: set intermediate values with {% set %}"
    else:  # a number literal longer than Python converts (4,300 digits)
        message, hint = f"template syntax error in messages[{index}]: {exc}", "write shorter numbers"
    return TemplateError(message, path=prompt.source_path, line=_file_line(prompt, index, line), hint=hint)


# A template is untrusted code, and what a filter or a method of a value raises is its failure,
# whatever the type: str.format's KeyError and IndexError, truncate's AssertionError, encode's
# LookupError, wordwrap's AttributeError. Each of those ended in `internal error`. (Each `except`
# lets an AgentEvalsError through first: Interrupted, raised by a signal handler mid-render.)
_RENDER_ERRORS = (Exception,)


def _render_error(
    prompt: Prompt,
    index: int,
    case: Case,
    exc: BaseException,
    name: str,
    case_where: Callable[[], str] | None,
) -> TemplateError:
    """One located TemplateError for whatever stopped a message from rendering for `case`."""
    at = f"in messages[{index}]"
    line: int | None = _template_line(exc, name)
    if isinstance(exc, LimitExceeded):
        message, hint = f"template {at} {exc.what} for case '{case.id}'", exc.hint
    elif isinstance(exc, RecursionError):
        # _sandbox.py bounds recursion first; this is the last line of defence.
        message, hint, line = (
            f"template {at} recurses too deeply for case '{case.id}'",
            "stop the recursion earlier",
            None,
        )
    elif isinstance(exc, MemoryError):
        message, line = f"template {at} runs out of memory for case '{case.id}'", None
        hint = "build smaller strings and lists; see 'Template limits' in the README"
    elif isinstance(exc, jinja2.UndefinedError):
        where = f" at {case_where()}" if case_where else ""
        message = f"undefined variable {at} for case '{case.id}': {exc.message}"
        hint = f"add it to the vars of case '{case.id}'{where}, or use '| default(...)'"
    elif isinstance(exc, SecurityError):
        message, hint = (
            f"template refused by the sandbox {at}: {exc}",
            "templates may only use the case's vars and Jinja filters",
        )
    elif isinstance(exc, jinja2.TemplateError):
        message, hint = f"template error {at} for case '{case.id}': {exc}", "fix the template expression"
    else:
        message, hint = (
            f"template failed {at} for case '{case.id}': {type(exc).__name__}: {one_line(str(exc), 300)}",
            "check the template's expressions and the types of the case's vars",
        )
    return TemplateError(message, path=prompt.source_path, line=_file_line(prompt, index, line), hint=hint)


def render(prompt: Prompt, case: Case, *, case_where: Callable[[], str] | None = None) -> ChatRequest:
    """Render `prompt` for `case`.

    Args:
        prompt: the prompt whose messages are Jinja templates.
        case: supplies the template variables (`case.vars`).
        case_where: gives `path:line` of the case, named in the hint when a variable is missing;
            called only then (finding the line costs more than most renders).

    Raises:
        TemplateError: a template fails to parse, uses an undefined variable,
            tries to reach something the sandbox forbids, or goes over `LIMITS`.
    """
    messages = []
    for index, (source, template) in enumerate(zip(prompt.messages, _templates(prompt), strict=True)):
        if isinstance(template, _Literal):
            messages.append(source)  # frozen, and rendering a literal is the identity
            continue
        try:
            content = _render_compiled(template, case.vars)
        except AgentEvalsError:
            raise  # Interrupted: a signal handler raises it wherever the render is
        except _RENDER_ERRORS as exc:
            name = _template_name(prompt, index)
            raise _render_error(prompt, index, case, exc, name, case_where) from None
        messages.append(_with_content(source, content))
    return ChatRequest(
        model=prompt.model,
        messages=tuple(messages),
        output=prompt.output,
        vars=dict(case.vars),
        tools=prompt.tools,
        tool_choice=prompt.tool_choice,
    )


def _turn_line(
    evalset: EvalSet, index: int, turn: int, template_line: int | None
) -> tuple[str | None, int | None]:
    """The file and line of a turn's template (the case's own line when it comes from a JSONL file)."""
    path, line = evalset.case_source(index)
    if path == evalset.source_path:
        start = evalset.line_of("cases", index, "turns", turn, "user", value=True)
        if start is not None:
            return path, start + (template_line - 1 if template_line else 0)
    return path, line


def render_turns(evalset: EvalSet, index: int) -> tuple[str, ...]:
    """Render the scripted user turns of case `index` with its vars, in the prompt's sandbox.

    Args:
        evalset: the eval set holding the case.
        index: the case's position in `evalset.cases`.

    Returns:
        Each turn's user message, in order (empty for a case without turns).

    Raises:
        TemplateError: a turn's template does not parse, uses an undefined variable, is
            refused by the sandbox or goes over `LIMITS`; located at the turn's line.
    """
    case = evalset.cases[index]
    texts = []
    # One name for all the eval set's turns, so a turn that many cases share compiles once
    # (the name only finds the template's line in a traceback; the turn is located by index).
    name = f"{evalset.source_path or evalset.id}#turns"
    for turn, spec in enumerate(case.turns):
        at = f"in turns[{turn}]"
        template_line: int | None = None
        try:
            template = _compile(spec.user, name)
            texts.append(
                template.render() if isinstance(template, _Literal) else _render_compiled(template, case.vars)
            )
            continue
        except jinja2.TemplateSyntaxError as exc:
            message = f"template syntax error {at} of case '{case.id}': {exc.message}"
            hint, template_line = (
                "fix the Jinja syntax; use {% raw %}...{% endraw %} for literal braces",
                exc.lineno,
            )
        except LimitExceeded as exc:
            message, hint, template_line = (
                f"template {at} of case '{case.id}' {exc.what}",
                exc.hint,
                exc.lineno,
            )
        except jinja2.UndefinedError as exc:
            message = f"undefined variable {at} for case '{case.id}': {exc.message}"
            hint, template_line = (
                f"add it to the vars of case '{case.id}', or use '| default(...)'",
                _template_line(exc, name),
            )
        except SecurityError as exc:
            message = f"template refused by the sandbox {at} of case '{case.id}': {exc}"
            hint = "templates may only use the case's vars and Jinja filters"
        except AgentEvalsError:
            raise  # Interrupted: a signal handler raises it wherever the render is
        except (*_COMPILE_ERRORS, *_RENDER_ERRORS) as exc:
            message = (
                f"template failed {at} of case '{case.id}': {type(exc).__name__}: {one_line(str(exc), 300)}"
            )
            hint, template_line = "fix the template expression", _template_line(exc, name)
        path, line = _turn_line(evalset, index, turn, template_line)
        raise TemplateError(message, path=path, line=line, hint=hint) from None
    return tuple(texts)


class RenderClock:
    """How long the renders of one prompt on one eval set have taken, against `_jobclock.JOB_SECONDS`."""

    __slots__ = ("started", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        """The eval set's cases to render."""
        self.started = time.monotonic()

    def over(self, done: int) -> float | None:
        """The seconds taken, when `done` cases have rendered and that is over the job limit or on
        course for twice it; else None."""
        elapsed = time.monotonic() - self.started
        limit = _jobclock.JOB_SECONDS
        if elapsed > limit or (elapsed > _FORECAST_AFTER_S and elapsed / done * self.total > 2 * limit):
            return elapsed
        return None

    def error(
        self, prompt: Prompt | None, evalset: EvalSet, index: int, done: int, elapsed: float
    ) -> TemplateError:
        """The error of a job stopped at case `index`, at the template slowest for that case."""
        path, line, what = _slowest(prompt, evalset, index)
        rate = elapsed / done
        return TemplateError(
            f"{what} renders too slowly: {done:,} of {self.total:,} cases of eval set '{evalset.id}' took "
            f"{_time_text(elapsed)} ({_time_text(rate)} a case); all {self.total:,} would take about "
            f"{_time_text(rate * self.total)}, over the limit of {_jobclock.JOB_SECONDS:g} s for a prompt on an eval set",
            path=path,
            line=line,
            hint="make the template do less work: loop over fewer items and avoid repeated filters on "
            "long strings; a prompt renders in well under a millisecond a case",
        )


def render_all(
    prompt: Prompt,
    evalset: EvalSet,
    indexes: Sequence[int],
    *,
    case_where: Callable[[int], str] | None = None,
) -> None:
    """Render `prompt` and the turns of each case at `indexes` once, and drop what they give:
    a template that fails for one case, or that renders so slowly the cases together would
    take more than `_jobclock.JOB_SECONDS`, stops the run before anything is sent.

    Args:
        prompt: the prompt to render.
        evalset: whose cases to render it for.
        indexes: the positions of the cases in `evalset.cases`.
        case_where: gives `path:line` of the case at an index, for a missing variable's hint.

    Raises:
        TemplateError: a template does not render for a case, or renders too slowly.
    """
    clock = RenderClock(len(indexes))
    for done, index in enumerate(indexes, 1):
        case = evalset.cases[index]
        render(prompt, case, case_where=partial(case_where, index) if case_where is not None else None)
        if case.turns:
            render_turns(evalset, index)
        elapsed = clock.over(done)
        if elapsed is not None:
            raise clock.error(prompt, evalset, index, done, elapsed)


def _time_text(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:,.3g} h"


def _slowest(prompt: Prompt | None, evalset: EvalSet, index: int) -> tuple[str | None, int | None, str]:
    """The file, line and name of the template that takes longest to render for case `index`
    (its turns', and `prompt`'s messages' when given)."""
    case = evalset.cases[index]
    timings: list[tuple[float, str | None, int | None, str]] = []

    def timed(template: jinja2.Template | _Plain) -> float:
        start = time.monotonic()
        try:
            _render_compiled(template, case.vars)
        except AgentEvalsError:
            raise  # Interrupted
        except Exception:
            pass  # it rendered a moment ago; a limit it hits now still took the time measured
        return time.monotonic() - start

    for i, template in enumerate(_templates(prompt) if prompt is not None else ()):
        if prompt is not None and not isinstance(template, _Literal):
            where = _file_line(prompt, i, None)
            timings.append((timed(template), prompt.source_path, where, f"the template in messages[{i}]"))
    name = f"{evalset.source_path or evalset.id}#turns"
    for turn, spec in enumerate(case.turns):
        template = _compile(spec.user, name)
        if not isinstance(template, _Literal):
            path, line = _turn_line(evalset, index, turn, None)
            timings.append(
                (timed(template), path, line, f"the template in turns[{turn}] of case '{case.id}'")
            )
    if not timings:  # this case's templates are literal text: the time went to the cases before it
        path, line = evalset.case_source(index)
        return path, line, f"case '{case.id}'"
    _, path, line, what = max(timings, key=lambda t: t[0])
    return path, line, what
