"""Where an agent's tool results come from: the case's recorded calls, else a mock.

When the model calls a tool, the agent loop (`agent_evals.agent_loop`) asks a case's
`Replayer` for the answer. A call is answered, in order, by:

1. **a recorded call** of the case (`tools:` on the case): the first one not used yet
   whose tool name is the call's and whose arguments match under the eval set's rule
   for that tool. Each recorded call answers at most one call; its `error`, when set,
   is the tool's failure as production saw it.
2. **the tool's mock** (`tools.<name>.mock` on the eval set): a static `value`; a
   `template` rendered in the project's Jinja sandbox (`render.environment()`, with
   its limits) with `args` (the call's arguments) and `vars` (the case's), its text
   read as JSON when it is JSON; or `python: module:function` inside the project,
   loaded as `python:` providers load their targets and called with
   `(arguments, case)`, sync (in a worker thread) or async.
3. else the call is **unanswered**: `Unanswered`, whose message is the case's error.

Matching (`tools.<name>.match`, default `exact`) compares JSON values: numbers by
value (`1` and `1.0` are the same JSON number, as every JSON parser reads them),
a boolean only with a boolean (`true` is not `1`), NaN with NaN (so a call always
matches a record of its own arguments), objects by keys and lists by position.

- `exact`: the call's arguments equal the recorded ones.
- `subset`: every recorded argument is in the call with an equal value; objects
  nested in the arguments (lists' items included) are compared the same way, so a
  recorded `{"order": {"id": 7}}` matches `{"order": {"id": 7, "rush": true}}`.
  Lists must have the same length.
- `paths`: at each of `paths` (the dotted paths graders use for `expected` fields:
  `order.id`, `items[0].sku`), the values are equal, or both are absent.

Arguments the model sent as text that is not JSON never match a record (a mock still
answers them). Replay is deterministic: the same calls, in the same order, get the
same answers; records are consumed in the order `answer` is called, so a loop answers
a parallel call's tool calls in the model's order.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent_evals import _json
from agent_evals._jobclock import JobClock
from agent_evals.errors import AgentEvalsError, ConfigError, one_line
from agent_evals.models import Case, EvalSet, RecordedCall, ToolReplay
from agent_evals.record import ReplayRecord

if TYPE_CHECKING:
    import jinja2

    from agent_evals.providers.base import ToolCall

__all__ = [
    "MOCK_TIMEOUT_S",
    "Replayer",
    "ToolAnswer",
    "ToolFailure",
    "Unanswered",
    "arguments_match",
    "call_text",
    "compile_mock_template",
    "mock_target_problem",
    "result_text",
]

MOCK_TIMEOUT_S = 60.0
"""How long a `python:` mock may take to answer one call."""

_CALL_TEXT_LIMIT = 1_000
"""Characters of arguments `call_text` shows: a huge argument must not flood an error line."""


@dataclass(frozen=True)
class ToolAnswer:
    """What answered one tool call.

    Attributes:
        result: what the tool returned (any JSON value).
        error: the tool failed with this (a recorded `error`, or a mock raising `ToolFailure`);
            the loop sends it to the model as an error result.
        source: `recorded` (a call the case recorded) or `mock` (the eval set's mock).
    """

    result: Any
    error: str | None
    source: Literal["recorded", "mock"]


class Unanswered(AgentEvalsError):
    """Nothing could answer a tool call: `str(exc)` is the case's error message."""


class ToolFailure(Exception):
    """Raised by a `python:` mock to answer with a tool error rather than a result.

    `raise ToolFailure("order 7 not found")` gives the model an error result with that
    text, as a recorded call with `error:` does. Any other exception a mock raises is a
    bug in the mock: the call is unanswered and the case an error.
    """


def call_text(name: str, arguments: Any) -> str:
    """A call as people read it: `lookup_order({"id": 7})`.

    The arguments are canonical JSON (keys sorted), cut at 1,000 characters; arguments
    the model sent as text that is not JSON are shown as that text.
    """
    if isinstance(arguments, str):
        shown = arguments
    else:
        try:
            shown = json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=repr)
        except (TypeError, ValueError, RecursionError):
            shown = repr(arguments) if _shallow(arguments) else "<arguments nested too deeply to show>"
    if len(shown) > _CALL_TEXT_LIMIT:
        shown = f"{shown[:_CALL_TEXT_LIMIT]}…({len(shown) - _CALL_TEXT_LIMIT:,} more characters)"
    return f"{name}({shown})"


def _shallow(value: Any) -> bool:
    try:
        repr(value)
    except RecursionError:
        return False
    return True


def result_text(answer: ToolAnswer) -> str:
    """The content of the tool message the model receives for `answer`.

    The error text for a failed tool; a string result as it is; any other result as
    compact JSON (keys in the order the tool gave them).
    """
    if answer.error is not None:
        return answer.error
    if isinstance(answer.result, str):
        return answer.result
    return json.dumps(answer.result, ensure_ascii=False, separators=(",", ":"), default=str)


# --- matching ------------------------------------------------------------------------

_ABSENT = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_scalar(recorded: Any, called: Any) -> bool:
    if _is_number(recorded) and _is_number(called):
        return bool(recorded == called) or (
            isinstance(recorded, float)
            and isinstance(called, float)
            and math.isnan(recorded)
            and math.isnan(called)
        )
    if isinstance(recorded, bool) or isinstance(called, bool):
        return type(recorded) is type(called) and recorded == called
    if _is_number(recorded) or _is_number(called):
        return False
    try:
        return type(recorded) is type(called) and bool(recorded == called)
    except Exception:  # an exotic value from agent code: it matches nothing rather than failing
        return False


def _matches(recorded: Any, called: Any, *, subset: bool) -> bool:
    """`called` equals `recorded` as JSON (or holds it, with `subset`); iterative, so depth cannot overflow."""
    stack = [(recorded, called)]
    while stack:
        want, got = stack.pop()
        if isinstance(want, dict):
            if not isinstance(got, dict):
                return False
            if not subset and len(want) != len(got):
                return False
            for key, value in want.items():
                if key not in got:
                    return False
                stack.append((value, got[key]))
        elif isinstance(want, list | tuple):
            if not isinstance(got, list | tuple) or len(want) != len(got):
                return False
            stack.extend(zip(want, got, strict=True))
        elif isinstance(got, dict | list | tuple) or not _same_scalar(want, got):
            return False
    return True


def arguments_match(rule: ToolReplay | None, recorded: Mapping[str, Any], called: Any) -> bool:
    """Whether a call's arguments match a recorded call's under `rule` (None: exact).

    Arguments that are not a JSON object (text the model sent that was not JSON) match nothing.
    """
    if not isinstance(called, dict):
        return False
    match = rule.match if rule is not None else "exact"
    if match == "exact":
        return _matches(recorded, called, subset=False)
    if match == "subset":
        return _matches(recorded, called, subset=True)
    from agent_evals.graders.base import get_path

    assert rule is not None  # paths needs a rule
    for path in rule.paths:
        want = get_path(recorded, path, default=_ABSENT)
        got = get_path(called, path, default=_ABSENT)
        if (want is _ABSENT) != (got is _ABSENT):
            return False
        if want is not _ABSENT and not _matches(want, got, subset=False):
            return False
    return True


# --- mocks ---------------------------------------------------------------------------


def _template_name(tool: str) -> str:
    return f"tools.{tool}.mock.template"


@lru_cache(maxsize=256)
def compile_mock_template(source: str, tool: str) -> jinja2.Template:
    """Compile a mock template in the project's sandbox (`render.environment()`).

    Raises:
        jinja2.TemplateSyntaxError: the template does not parse.
        agent_evals._sandbox.LimitExceeded: it nests deeper than the render limits allow.
        RecursionError, MemoryError, SyntaxError, ValueError, OverflowError: the compiler gave up
            (`render` turns the same into located errors for prompts).
    """
    from agent_evals.render import environment

    env = environment()
    name = _template_name(tool)
    code = env.compile(source, name=name, filename=name)
    template: jinja2.Template = env.template_class.from_code(env, code, env.make_globals(None))
    return template


def mock_errors(evalset: EvalSet, root: Path) -> list[ConfigError]:
    """The eval set's mocks that could answer no call, one located error each: a template that does
    not compile in the sandbox, a `python:` target that is malformed or outside the project (found
    without importing it). `validate` reports them; `run` and `ci` refuse the eval set with them
    before anything is sent, where each call to the tool would be unanswered (every case an error)."""
    errors = []
    for name, rule in evalset.tools.items():
        mock = rule.mock
        if mock is None:
            continue
        if mock.template is not None:
            problem = _template_problem(mock.template, name)
            if problem is not None:
                message, hint, template_line = problem
                start = evalset.line_of("tools", name, "mock", "template", value=True)
                errors.append(
                    ConfigError(
                        f"tools.{name}.mock.template {message}",
                        path=evalset.source_path,
                        line=start + template_line - 1 if start and template_line else start,
                        hint=hint,
                    )
                )
        if mock.python is not None:
            found = mock_target_problem(mock.python, root)
            if found is not None:
                errors.append(
                    ConfigError(
                        f"tools.{name}.mock.python: {found.message}",
                        path=evalset.source_path,
                        line=evalset.line_of("tools", name, "mock", "python", value=True),
                        hint=found.hint,
                    )
                )
    return errors


def _template_problem(source: str, name: str) -> tuple[str, str, int | None] | None:
    """Why a mock template does not compile in the sandbox: (what, how to fix, template line), or None."""
    import jinja2

    from agent_evals._sandbox import LimitExceeded

    try:
        compile_mock_template(source, name)
    except jinja2.TemplateSyntaxError as exc:
        return (
            f"does not compile: {exc.message}",
            "fix the Jinja syntax; use {% raw %}...{% endraw %} for literal braces",
            exc.lineno,
        )
    except LimitExceeded as exc:
        return exc.what, exc.hint, exc.lineno
    except (RecursionError, MemoryError, SyntaxError) as exc:
        return (
            f"is nested too deeply to compile ({type(exc).__name__})",
            "flatten the template: set intermediate values with {% set %}",
            None,
        )
    except (ValueError, OverflowError) as exc:  # a number literal longer than Python converts
        return f"does not compile: {exc}", "write shorter numbers", None
    return None


def mock_target_problem(target: str, root: Path) -> ConfigError | None:
    """Why a mock's `python:` target cannot be called, found without importing anything.

    The same checks `python:` providers make before they import: the shape
    `module:function`, and a module file inside the project root (not the standard
    library, not an installed package).
    """
    from agent_evals.providers import python_fn

    module_name, colon, attr = target.partition(":")
    if not colon or not python_fn._MODULE_NAME.fullmatch(module_name) or not attr.isidentifier():
        return ConfigError(
            f"mock target 'python:{target}' is not module:function",
            hint="write python: module:function, e.g. python: tools.mocks:lookup_order, with the module "
            "a file inside the project",
        )
    try:
        python_fn._check_before_import(target, module_name, root.resolve())
    except ConfigError as exc:
        return exc
    return None


_targets: dict[tuple[str, Path], Callable[..., Any]] = {}


def _load_mock_function(target: str, root: Path) -> Callable[..., Any]:
    """The mock's function, imported once per process (on the event loop's thread, as providers do)."""
    key = (target, root.resolve())
    function = _targets.get(key)
    if function is None:
        from agent_evals.providers.python_fn import load_target, target_kind

        problem = mock_target_problem(target, root)
        if problem is not None:
            raise problem
        loaded = load_target(target, root)
        if target_kind(loaded) != "function":
            raise ConfigError(
                f"mock target 'python:{target}' is not a function",
                hint="point it at def name(arguments, case) returning the tool's result",
            )
        function = _targets[key] = loaded
    return function


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


def _parse_json(text: str) -> Any:
    """`text` read as JSON when it is JSON (standard JSON only: no NaN), else the text."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return _json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError):
        return text


# --- the replayer --------------------------------------------------------------------


@dataclass
class _Record:
    call: RecordedCall
    used: bool = False


_MOCKS = "mock templates"
"""What a job's mock templates charge its clock under: all of them together, every case's."""


class Replayer:
    """Answers one case's tool calls, and remembers which records were used.

    Args:
        case: the case, whose `tools` are the recorded calls and whose `vars` templates read.
        rules: the eval set's `tools:`, per tool name: how records match, and the mock.
        root: the project root, where `python:` mock targets live.
        timeout_s: how long a `python:` mock may take per call.
        clock: the job's clock, shared by its cases' replayers (default: this case's own): past
            `_jobclock.JOB_SECONDS` of mock template rendering, its mock templates are not
            rendered again and their calls go unanswered, so the cases left end at once.
    """

    def __init__(
        self,
        case: Case,
        rules: Mapping[str, ToolReplay],
        *,
        root: Path,
        timeout_s: float = MOCK_TIMEOUT_S,
        clock: JobClock | None = None,
    ) -> None:
        self.case = case
        self.rules = rules
        self.root = root
        self.timeout_s = timeout_s
        self.clock = clock if clock is not None else JobClock()
        self._records = [_Record(call) for call in case.tools]
        self._unmatched: list[str] = []

    async def answer(self, call: ToolCall, *, step: int | None = None) -> ToolAnswer:
        """Answer `call` from the case's records, else the tool's mock.

        Args:
            call: the tool call the model made.
            step: the call's step in the case's trajectory (numbered from 1), named in
                `report().unmatched` when given.

        Returns:
            The answer, with the result (or the tool's error) and where it came from.

        Raises:
            Unanswered: no record matches and the tool has no mock, or the mock failed
                (its template went over the sandbox limits, its function raised or is
                missing, or returned something that is not JSON).
        """
        text = call_text(call.name, call.arguments)
        rule = self.rules.get(call.name)
        record = self._take(call, rule)
        if record is not None:
            return ToolAnswer(copy.deepcopy(record.result), record.error, "recorded")
        self._unmatched.append(f"step {step}: {text}" if step is not None else text)
        if rule is None or rule.mock is None:
            raise Unanswered(self._unrecorded(call, text, rule))
        return await self._mock(call, rule, text)

    def report(self) -> ReplayRecord:
        """The calls no record matched (in call order) and the records no call used (in case order)."""
        return ReplayRecord(
            unmatched=tuple(self._unmatched),
            unconsumed=tuple(call_text(r.call.name, r.call.arguments) for r in self._records if not r.used),
        )

    # -- records ------------------------------------------------------------------

    def _take(self, call: ToolCall, rule: ToolReplay | None) -> RecordedCall | None:
        for record in self._records:
            if record.used or record.call.name != call.name:
                continue
            if arguments_match(rule, record.call.arguments, call.arguments):
                record.used = True
                return record.call
        return None

    def _unrecorded(self, call: ToolCall, text: str, rule: ToolReplay | None) -> str:
        name = call.name
        fix = f"record it in the case's tools or add a mock under the eval set's tools.{name}"
        same_tool = [r for r in self._records if r.call.name == name]
        if isinstance(call.arguments, str):
            return (
                f"unrecorded call {text}: its arguments are not JSON, so no recorded call can match; "
                f"add a mock under the eval set's tools.{name}"
            )
        if not same_tool:
            return f"unrecorded call {text}; {fix}"
        match = rule.match if rule is not None else "exact"
        if any(arguments_match(rule, r.call.arguments, call.arguments) for r in same_tool):
            return (
                f"unrecorded call {text}: the recorded call it matches already answered an earlier call "
                f"(each answers one); {fix}"
            )
        if len(same_tool) == 1:
            others = f"the case's one recorded {name} call has other arguments"
        else:
            others = f"the case's {len(same_tool)} recorded {name} calls have other arguments"
        return f"unrecorded call {text}: {others} (match: {match}); {fix}"

    # -- mocks --------------------------------------------------------------------

    async def _mock(self, call: ToolCall, rule: ToolReplay, text: str) -> ToolAnswer:
        mock = rule.mock
        assert mock is not None
        if mock.template is not None:
            return ToolAnswer(self._render(call, mock.template, text), None, "mock")
        if mock.python is not None:
            return await self._call_python(call, mock.python, text)
        return ToolAnswer(copy.deepcopy(mock.value), None, "mock")

    def _render(self, call: ToolCall, source: str, text: str) -> Any:
        import jinja2
        from jinja2.exceptions import SecurityError

        from agent_evals import _jobclock, render
        from agent_evals._sandbox import LimitExceeded

        where = f"the mock template of tools.{call.name}"
        clock = self.clock
        spent = clock.over(_MOCKS)
        if spent is not None:
            raise Unanswered(
                f"{where} was not rendered for {text}: the eval set's mock templates have taken "
                f"{spent:.3g} s in this run, over the limit of {_jobclock.JOB_SECONDS:g} s "
                "(make them do less work: a mock renders in well under a millisecond)"
            )
        started = time.monotonic()
        try:
            template = compile_mock_template(source, call.name)
            rendered = render.environment().render(template, {"args": call.arguments, "vars": self.case.vars})
        except LimitExceeded as exc:
            raise Unanswered(f"{where} {exc.what} for {text} ({exc.hint})") from None
        except jinja2.UndefinedError as exc:
            raise Unanswered(
                f"{where} uses an undefined variable for {text}: {exc.message} "
                "(templates see args and vars; use '| default(...)' for optional ones)"
            ) from None
        except SecurityError as exc:
            raise Unanswered(
                f"{where} was refused by the sandbox for {text}: {exc} "
                "(templates may only use args, vars and Jinja filters)"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise Unanswered(f"{where} does not compile: {exc.message} (line {exc.lineno})") from None
        except AgentEvalsError:
            raise
        except Exception as exc:  # the template is untrusted: whatever it raises is its failure
            raise Unanswered(
                f"{where} failed for {text}: {type(exc).__name__}: {one_line(str(exc), 300)}"
            ) from None
        finally:
            clock.charge(_MOCKS, time.monotonic() - started)
        return _parse_json(rendered)

    async def _call_python(self, call: ToolCall, target: str, text: str) -> ToolAnswer:
        where = f"mock python:{target}"
        try:
            function = _load_mock_function(target, self.root)
        except ConfigError as exc:
            raise Unanswered(f"{where} cannot answer {text}: {exc.render()}") from None
        # Copies: the mock may mutate what it gets, and the call and the case are recorded.
        try:
            arguments = copy.deepcopy(call.arguments)
            case = self.case.model_copy(deep=True)
        except RecursionError:
            raise Unanswered(f"{where} cannot answer {text}: its arguments are nested too deeply") from None
        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
                    getattr(function, "__call__", None)  # noqa: B004 - an instance with `async def __call__`
                ):
                    result = await function(arguments, case)
                else:
                    result = await asyncio.to_thread(function, arguments, case)
                    if inspect.isawaitable(result):
                        result = await result
        except ToolFailure as exc:
            return ToolAnswer(None, str(exc) or "the tool failed", "mock")
        except TimeoutError as exc:
            if not deadline.expired():
                message = f"TimeoutError: {exc}" if str(exc) else "TimeoutError"
                raise Unanswered(f"{where} raised {one_line(message, 300)} for {text}") from None
            raise Unanswered(f"{where} did not answer {text} within {self.timeout_s:g} s") from None
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise Unanswered(f"{where} raised {one_line(message, 300)} for {text}") from None
        try:
            return ToolAnswer(_jsonable(result), None, "mock")
        except Exception:
            raise Unanswered(
                f"{where} returned a {type(result).__name__} for {text}, which is not JSON "
                "(return a dict, list, str, number, bool or None)"
            ) from None
