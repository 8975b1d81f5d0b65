"""What the trajectory graders share: the calls of a case, argument matching, readable labels.

Private: the graders (`tool_called`, `tool_not_called`, `tool_sequence`, `tool_args`,
`budget`) and the rubric judge read a case's trajectory through this module only.

**Calls and their steps.** Steps are numbered from 1 in `Sample.steps` order, model and
tool steps alike, and a call is named by its step in every reason. A call the model asked
for (in a model step's `tool_calls`) is joined to the tool step that answered it, by call
id, else by name; its step is the tool step's. A call no tool step answered keeps its
model step's number; a tool step no model step asked for (an agent runtime that records
only its tools) is a call of its own. With no steps (one model call), the calls are
`Sample.tool_calls`, numbered from 1.

**Parallel calls.** The calls of one model step were issued together: they form a
*batch*, and the order the model listed them in says nothing about the order they ran in.
Sequence checks (`tool_sequence` modes `exact` and `in_order`) treat the calls of one
batch as unordered among themselves, as agentevals' strict mode does within a message;
`parallel: ordered` makes the listed order count. A case with no steps is one model call,
so all its calls form one batch; a tool step no model step asked for is a batch of one.

**Argument matching** (`match`):

* `exact`: the arguments are exactly these, as JSON values: `1` equals `1.0` (JSON has one
  number type), `true` never equals `1`, key order does not matter.
* `subset` (the default): every argument given is present with an equal value; objects
  nest (`{order: {id: 7}}` ignores the order's other keys), lists compare whole.
* `path`: keys are paths into the arguments (`order.id`, `items[0].sku`), values compare
  as in `exact`.
* `regex`: keys are paths, values regular expressions that must match the whole value's
  text (a string as it is, anything else as compact JSON).

Arguments the model sent as a non-JSON string never match.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from agent_evals._regex import PatternError, compile_pattern
from agent_evals.errors import GraderError
from agent_evals.graders import base
from agent_evals.graders._common import FieldPath, as_text, expected_value, one_line, quote
from agent_evals.graders.base import Sample, get_path
from agent_evals.models import TOOL_NAME_PATTERN, Case
from agent_evals.replay import call_text

if TYPE_CHECKING:
    from agent_evals.record import StepRecord

ArgsMatch = Literal["exact", "subset", "path", "regex"]
ToolName = Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]

_MISSING = object()
_NAMES_SHOWN = 8
_PROBLEMS_SHOWN = 3
_ARGS_SHOWN = 80


# --- the calls of a case -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call of a case, with the step that names it in reasons."""

    name: str
    arguments: dict[str, Any] | str | None
    step: int
    batch: int
    """Calls with the same batch were issued by one model step (a parallel call)."""
    error: str | None = None
    result: Any = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(slots=True, eq=False)  # compared by identity: two calls can look alike
class _Slot:
    name: str
    arguments: dict[str, Any] | str | None
    id: str | None
    step: int
    batch: int
    error: str | None = None
    result: Any = None


def calls_of(sample: Sample) -> tuple[Call, ...]:
    """Every tool call of the sample, in order, each with its step and batch (see the module docstring)."""
    if not sample.steps:
        return tuple(
            Call(name=c.name, arguments=c.arguments, step=i, batch=0)
            for i, c in enumerate(sample.tool_calls, 1)
        )
    slots: list[_Slot] = []
    pending: list[_Slot] = []
    for number, step in enumerate(sample.steps, 1):
        if step.kind == "model":
            pending = [
                _Slot(name=c.name, arguments=c.arguments, id=c.id, step=number, batch=number)
                for c in step.tool_calls
            ]
            slots.extend(pending)
            continue
        slot = _answered_slot(step.call_id, step.name, pending)
        if slot is None:
            slot = _Slot(
                name=step.name or "(unnamed)", arguments=None, id=step.call_id, step=number, batch=number
            )
            slots.append(slot)
        else:
            pending.remove(slot)
        slot.step = number
        slot.error = step.error
        slot.result = step.result
        if step.arguments is not None:
            slot.arguments = step.arguments
    return tuple(
        Call(name=s.name, arguments=s.arguments, step=s.step, batch=s.batch, error=s.error, result=s.result)
        for s in slots
    )


def _answered_slot(call_id: str | None, name: str | None, pending: list[_Slot]) -> _Slot | None:
    if call_id is not None:
        for slot in pending:
            if slot.id == call_id:
                return slot
    for slot in pending:
        if slot.name == name:
            return slot
    return None


def model_calls(sample: Sample) -> int:
    """How many model calls the case made: its model steps, or 1 for a case with no steps."""
    if not sample.steps:
        return 1
    return sum(1 for s in sample.steps if s.kind == "model")


def batches(calls: Sequence[Call], ordered: bool) -> list[list[Call]]:
    """The calls grouped by the model step that issued them (each call alone when `ordered`)."""
    groups: list[list[Call]] = []
    for call in calls:
        if groups and not ordered and groups[-1][0].batch == call.batch:
            groups[-1].append(call)
        else:
            groups.append([call])
    return groups


# --- readable text -----------------------------------------------------------------------


def args_text(value: Any, limit: int = _ARGS_SHOWN) -> str:
    """A value as key-sorted JSON on one line (a string quoted), cut at `limit`."""
    if isinstance(value, str):
        return quote(value, limit)
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = "<nested too deeply to show>"
    return one_line(text, limit)


def call_label(name: str, arguments: Any, limit: int = _ARGS_SHOWN + 20) -> str:
    """`lookup_order({"id": 7})`, as the replay report writes calls, on one line and cut at `limit`."""
    return one_line(call_text(name, arguments if arguments is not None else {}), limit)


def names(calls: Sequence[Call]) -> str:
    """`calls: lookup_order, issue_refund`, or `no tool calls`; long lists cut with a count."""
    if not calls:
        return "no tool calls"
    shown = ", ".join(c.name for c in calls[:_NAMES_SHOWN])
    more = f", … ({len(calls)} in all)" if len(calls) > _NAMES_SHOWN else ""
    return f"calls: {shown}{more}"


def steps_text(calls: Sequence[Call]) -> str:
    """`step 3` or `steps 3, 5`."""
    numbers = ", ".join(str(c.step) for c in calls)
    return f"step {numbers}" if len(calls) == 1 else f"steps {numbers}"


def times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def join_problems(problems: Sequence[str]) -> str:
    """The first few problems, `; `-joined, with a count of the rest."""
    unique = list(dict.fromkeys(problems))
    shown = "; ".join(unique[:_PROBLEMS_SHOWN])
    rest = len(unique) - _PROBLEMS_SHOWN
    return shown + (f" (and {rest} more)" if rest > 0 else "")


# --- argument matching -------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    # bool is an int subclass, never a float, so `true` stays apart from `1`.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: 1 == 1.0, true != 1, key order ignored."""
    return json.dumps(_canonical(a), sort_keys=True, default=str) == json.dumps(
        _canonical(b), sort_keys=True, default=str
    )


@cache
def _path_adapter() -> TypeAdapter[str]:
    return TypeAdapter(FieldPath)


def check_wanted(args: dict[str, Any], match: ArgsMatch) -> None:
    """Raise ValueError when `args` cannot be used with `match` (a bad path or regex)."""
    if match not in ("path", "regex"):
        return
    for key, value in args.items():
        try:
            _path_adapter().validate_python(key)
        except ValidationError:
            raise ValueError(
                f"with match: {match}, '{key}' must be a path into the arguments, e.g. 'order.id' or 'items[0].sku'"
            ) from None
        if match == "regex":
            if not isinstance(value, str):
                raise ValueError(
                    f"with match: regex, the value of '{key}' must be a regular expression (a string)"
                )
            try:
                compile_pattern(value)
            except PatternError as exc:
                raise ValueError(f"'{key}': {exc}") from None


def arg_problems(arguments: Any, wanted: dict[str, Any], match: ArgsMatch) -> list[str]:
    """Why `arguments` do not match `wanted` under `match` (empty: they match)."""
    try:
        return _arg_problems(arguments, wanted, match)
    except RecursionError:
        # A model can send arguments nested deeper than Python recurses: they match nothing.
        return ["arguments nested too deeply to compare"]


def _arg_problems(arguments: Any, wanted: dict[str, Any], match: ArgsMatch) -> list[str]:
    if not isinstance(arguments, dict):
        return [f"arguments are not a JSON object: {args_text(arguments, 60)}"]
    if match in ("exact", "subset"):
        return _diff(arguments, wanted, "", exact=match == "exact")
    problems = []
    for path, want in wanted.items():
        value = get_path(arguments, path, default=_MISSING)
        if value is _MISSING:
            problems.append(f"{path} missing")
        elif match == "path" and not json_equal(value, want):
            problems.append(f"{path}: expected {quote(want, 40)}, got {quote(value, 40)}")
        elif match == "regex" and compile_pattern(want).fullmatch(as_text(value)) is None:
            problems.append(f"{path}: {quote(value, 40)} does not match /{one_line(want, 40)}/")
    return problems


def _diff(actual: Any, wanted: Any, at: str, *, exact: bool) -> list[str]:
    if isinstance(wanted, dict) and isinstance(actual, dict):
        problems = []
        for key, want in wanted.items():
            path = f"{at}.{key}" if at else str(key)
            if key not in actual:
                problems.append(f"{path} missing")
            else:
                problems.extend(_diff(actual[key], want, path, exact=exact))
        if exact:
            for key in actual:
                if key not in wanted:
                    path = f"{at}.{key}" if at else str(key)
                    problems.append(f"{path} not expected (got {quote(actual[key], 40)})")
        return problems
    if json_equal(actual, wanted):
        return []
    return [f"{at or 'arguments'}: expected {quote(wanted, 40)}, got {quote(actual, 40)}"]


def wanted_label(args: dict[str, Any] | None, match: ArgsMatch) -> str:
    """How wanted arguments read in a reason: JSON, or `path=value` pairs for path and regex."""
    if args is None:
        return ""
    if match == "path":
        return ", ".join(f"{k}={args_text(v, 40)}" for k, v in args.items())
    if match == "regex":
        return ", ".join(f"{k}=/{one_line(str(v), 40)}/" for k, v in args.items())
    return args_text(args)


class ArgsOptions(base.Options):
    """Options for the arguments a call should have: `args` + `match`, or `args_from_expected`."""

    args: dict[str, Any] | None = Field(
        default=None, description="The arguments a call should have (see `match`)."
    )
    match: ArgsMatch = Field(
        default="subset",
        description="exact: exactly these arguments; subset: these among others (objects nest); "
        "path: keys are paths (`order.id`); regex: keys are paths, values regexes the whole value matches.",
    )
    args_from_expected: FieldPath | None = Field(
        default=None,
        description="Read the wanted arguments from this path in the case's expected value instead of `args`.",
    )

    @model_validator(mode="after")
    def _args_fit(self) -> ArgsOptions:
        if self.args is not None and self.args_from_expected is not None:
            raise ValueError("set either 'args' or 'args_from_expected', not both")
        if "match" in self.model_fields_set and self.args is None and self.args_from_expected is None:
            raise ValueError("'match' applies to arguments: add 'args' or 'args_from_expected'")
        if self.args is not None:
            check_wanted(self.args, self.match)
        return self

    @property
    def checks_args(self) -> bool:
        return self.args is not None or self.args_from_expected is not None

    def wanted(self, case: Case) -> dict[str, Any] | None:
        """The wanted arguments: `args`, or the case's expected value at `args_from_expected`.

        Raises:
            GraderError: the case has no expected value there, or it is not usable arguments.
        """
        if self.args_from_expected is None:
            return self.args
        found = expected_value(case, self.args_from_expected, None)
        if not isinstance(found, dict):
            raise GraderError(
                f"case '{case.id}' expected.{self.args_from_expected} is a {type(found).__name__}, "
                "not the arguments object the grader compares with"
            )
        try:
            check_wanted(found, self.match)
        except ValueError as exc:
            raise GraderError(f"case '{case.id}' expected.{self.args_from_expected}: {exc}") from None
        return found


# --- call patterns: a tool name, and maybe its arguments -----------------------------------


class ToolPattern(BaseModel):
    """One entry of a tool list: `lookup_order`, or `{tool: issue_refund, args: {amount: 20}}`."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    tool: ToolName
    args: dict[str, Any] | None = None
    match: ArgsMatch = "subset"

    @model_validator(mode="after")
    def _args_fit(self) -> ToolPattern:
        if "match" in self.model_fields_set and self.args is None:
            raise ValueError("'match' applies to 'args': add 'args' or remove 'match'")
        if self.args is not None:
            check_wanted(self.args, self.match)
        return self

    @property
    def label(self) -> str:
        if self.args is None:
            return self.tool
        return f"{self.tool}({wanted_label(self.args, self.match)})"

    def problems(self, call: Call) -> list[str]:
        """Why `call` does not fit (empty: it fits)."""
        if call.name != self.tool:
            return [f"{call.name} is not {self.tool}"]
        if self.args is None:
            return []
        return arg_problems(call.arguments, self.args, self.match)

    def fits(self, call: Call) -> bool:
        return not self.problems(call)


ToolEntry = ToolName | ToolPattern


@cache
def _entries() -> TypeAdapter[tuple[ToolEntry, ...]]:
    return TypeAdapter(tuple[ToolEntry, ...])


def pattern(entry: ToolEntry) -> ToolPattern:
    return ToolPattern(tool=entry) if isinstance(entry, str) else entry


def patterns_from_expected(case: Case, path: str) -> tuple[ToolPattern, ...]:
    """The tool list at `path` in the case's expected value.

    Raises:
        GraderError: there is none, or it is not a list of tool names or `{tool, args, match}` entries.
    """
    found = expected_value(case, path, None)
    try:
        entries = _entries().validate_python(found)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(
            str(p) for p in first["loc"] if not isinstance(p, str) or p not in ("str", "ToolPattern")
        )
        raise GraderError(
            f"case '{case.id}' expected.{path} is not a list of tools"
            + (f" (at [{where}]: {first['msg']})" if where else f": {first['msg']}")
        ) from None
    return tuple(pattern(e) for e in entries)


def assign(patterns: Sequence[ToolPattern], calls: Sequence[Call]) -> dict[int, int]:
    """A largest matching of patterns to distinct calls they fit: {pattern index: call index}.

    Kuhn's augmenting paths, patterns and calls tried in order, so the result is deterministic
    and prefers earlier calls. Lists are short (tens of calls), so the cubic worst case is fine.
    """
    fits = [[j for j, c in enumerate(calls) if p.fits(c)] for p in patterns]
    owner: dict[int, int] = {}  # call index -> pattern index

    def augment(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(patterns)):
        augment(i, set())
    return {i: j for j, i in owner.items()}


def never_called(p: ToolPattern, calls: Sequence[Call]) -> str:
    """Why no call fits `p`: the tool is never called, or never with fitting arguments."""
    same = [c for c in calls if c.name == p.tool]
    if not same:
        return f"{p.label} never called ({names(calls)})"
    first = same[0]
    return f"{p.tool} never called with matching arguments (step {first.step}: {p.problems(first)[0]})"


def mismatch(call: Call, p: ToolPattern) -> str:
    """`step 3: issue_refund called, expected lookup_policy`, or the first argument problem."""
    if call.name != p.tool:
        return f"step {call.step}: {call.name} called, expected {p.label}"
    return f"step {call.step}: {call.name} arguments: {p.problems(call)[0]}"


def count_problem(name: str, calls: Sequence[Call], wanted: int) -> str:
    """`lookup_order called 3 times (steps 1, 3, 5), the list asks for 2`."""
    same = [c for c in calls if c.name == name]
    where = f" ({steps_text(same)})" if same else ""
    return f"{name} called {times(len(same))}{where}, the list asks for {wanted}"


def unfitted_problems(
    patterns: Sequence[ToolPattern], calls: Sequence[Call], matched: dict[int, int], *, extras: bool
) -> list[str]:
    """Reasons for the patterns no call was assigned to, then (with `extras`) the calls left over."""
    problems: list[str] = []
    wanted = Counter(p.tool for p in patterns)
    for i, p in enumerate(patterns):
        if i in matched:
            continue
        if any(p.fits(c) for c in calls):
            problems.append(count_problem(p.tool, calls, wanted[p.tool]))
        else:
            problems.append(never_called(p, calls))
    if extras:
        used = set(matched.values())
        for j, call in enumerate(calls):
            if j in used:
                continue
            if call.name not in wanted:
                problems.append(f"step {call.step}: {call.name} called, not in the list")
            elif any(p.fits(call) for p in patterns):
                problems.append(count_problem(call.name, calls, wanted[call.name]))
            else:
                problems.append(
                    f"step {call.step}: {call_label(call.name, call.arguments)} called; no entry of the list fits its arguments"
                )
    return problems


# --- the trajectory as text, for the LLM judge -------------------------------------------

_TEXT_SHOWN = 500
_RESULT_SHOWN = 500
_ARGS_SHOWN_TO_JUDGE = 300
_STEPS_HEAD = 30
_STEPS_TAIL = 20


def trajectory_text(sample: Sample) -> str:
    """The case's run as lines a judge can read: each step's model text, calls, results and errors.

    Every field is cut (model text and tool results at 500 characters, arguments at 300) and a
    long run shows its first 30 and last 20 steps, so one runaway case cannot flood the judge.
    """
    if not sample.steps:
        if not sample.tool_calls:
            return "one model call, no tool calls"
        calls = "\n".join(
            f"  asks for {call_label(c.name, c.arguments, _ARGS_SHOWN_TO_JUDGE)}" for c in sample.tool_calls
        )
        return f"one model call, which asked for {len(sample.tool_calls)} tool call(s) (not run):\n{calls}"
    lines = [_step_lines(number, step) for number, step in enumerate(sample.steps, 1)]
    if len(lines) > _STEPS_HEAD + _STEPS_TAIL:
        left_out = len(lines) - _STEPS_HEAD - _STEPS_TAIL
        lines = [*lines[:_STEPS_HEAD], f"… {left_out} steps left out …", *lines[-_STEPS_TAIL:]]
    return "\n".join(lines)


def _step_lines(number: int, step: StepRecord) -> str:
    if step.kind == "model":
        text = one_line(step.text or "", _TEXT_SHOWN)
        head = f"step {number} · model" + (f": {text}" if text else "")
        asks = [
            f"\n  asks for {call_label(c.name, c.arguments, _ARGS_SHOWN_TO_JUDGE)}" for c in step.tool_calls
        ]
        return head + "".join(asks)
    call = call_label(step.name or "(unnamed)", step.arguments, _ARGS_SHOWN_TO_JUDGE)
    if step.error is not None:
        answer = f"error: {one_line(step.error, _RESULT_SHOWN)}"
    else:
        answer = (
            args_text(step.result, _RESULT_SHOWN)
            if not isinstance(step.result, str)
            else one_line(step.result, _RESULT_SHOWN)
        )
    return f"step {number} · tool {call} → {answer}"


def only(calls: Iterable[Call], include_failed: bool) -> tuple[tuple[Call, ...], tuple[Call, ...]]:
    """(the calls that count, the failed calls left out when `include_failed` is off)."""
    kept: list[Call] = []
    dropped: list[Call] = []
    for call in calls:
        (dropped if call.failed and not include_failed else kept).append(call)
    return tuple(kept), tuple(dropped)


def dropped_note(dropped: Sequence[Call]) -> str:
    """` (failed calls not counted: step 4)`, or nothing."""
    if not dropped:
        return ""
    return f" (failed calls not counted: {steps_text(dropped)})"
