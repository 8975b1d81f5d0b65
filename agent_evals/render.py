"""Render a prompt's message templates for one case, in a Jinja sandbox.

Prompt files arrive in pull requests, so they are untrusted: templates run in
an immutable sandbox (no attribute access to Python internals, no mutation) and
an undefined variable is an error, never an empty string.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agent_evals.errors import TemplateError
from agent_evals.models import Case, Message, ModelSpec, OutputSpec, Prompt


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What is sent to a provider for one case: rendered messages and parameters."""

    model: ModelSpec
    messages: tuple[Message, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    vars: dict[str, Any] = field(default_factory=dict)
    """The case's variables: for `python:` providers (agent code takes inputs, not text)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.model.provider,
            "model": self.model.name,
            "params": self.model.params(),
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
        }


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
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


_MARKUP = ("{{", "{%", "{#")


@lru_cache(maxsize=4096)
def _compile(source: str, name: str) -> jinja2.Template | _Literal:
    if not any(marker in source for marker in _MARKUP):
        return _Literal(source)
    env = environment()
    # Compile under our own name so Jinja's rewritten tracebacks carry it, and runtime errors their line.
    code = env.compile(source, name=name, filename=name)
    return env.template_class.from_code(env, code, env.make_globals(None))


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


def compile_prompt(prompt: Prompt) -> list[jinja2.Template | _Literal]:
    """Compile every message template; a syntax error names its file line.

    Raises:
        TemplateError: a template does not parse.
    """
    templates = []
    for index, message in enumerate(prompt.messages):
        name = _template_name(prompt, index)
        try:
            templates.append(_compile(message.content, name))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"template syntax error in messages[{index}]: {exc.message}",
                path=prompt.source_path,
                line=_file_line(prompt, index, exc.lineno),
                hint="fix the Jinja syntax; use {% raw %}...{% endraw %} for literal braces",
            ) from None
    return templates


def render(prompt: Prompt, case: Case, *, case_where: str | None = None) -> ChatRequest:
    """Render `prompt` for `case`.

    Args:
        prompt: the prompt whose messages are Jinja templates.
        case: supplies the template variables (`case.vars`).
        case_where: `path:line` of the case, named in the hint when a variable is missing.

    Raises:
        TemplateError: a template fails to parse, uses an undefined variable, or
            tries to reach something the sandbox forbids.
    """
    messages = []
    for index, (source, template) in enumerate(zip(prompt.messages, compile_prompt(prompt), strict=True)):
        name = _template_name(prompt, index)
        try:
            content = template.render(case.vars)
        except jinja2.UndefinedError as exc:
            where = f" at {case_where}" if case_where else ""
            raise TemplateError(
                f"undefined variable in messages[{index}] for case '{case.id}': {exc.message}",
                path=prompt.source_path,
                line=_file_line(prompt, index, _template_line(exc, name)),
                hint=f"add it to the vars of case '{case.id}'{where}, or use '| default(...)'",
            ) from None
        except SecurityError as exc:
            raise TemplateError(
                f"template refused by the sandbox in messages[{index}]: {exc}",
                path=prompt.source_path,
                line=_file_line(prompt, index, _template_line(exc, name)),
                hint="templates may only use the case's vars and Jinja filters",
            ) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(
                f"template error in messages[{index}] for case '{case.id}': {exc}",
                path=prompt.source_path,
                line=_file_line(prompt, index, _template_line(exc, name)),
                hint="fix the template expression",
            ) from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateError(
                f"template failed in messages[{index}] for case '{case.id}': {exc}",
                path=prompt.source_path,
                line=_file_line(prompt, index, _template_line(exc, name)),
                hint="check the types of the case's vars",
            ) from None
        messages.append(Message(role=source.role, content=content))
    return ChatRequest(
        model=prompt.model, messages=tuple(messages), output=prompt.output, vars=dict(case.vars)
    )
