"""The Jinja sandbox with resource limits: templates from strangers cannot exhaust us.

Jinja's sandbox keeps templates away from Python internals, but not from our memory
and time: `'x' * 10**9`, `'%999999999s' | format(1)`, `9 ** (9 ** 99)` or a macro that
calls itself twice per level each run in C (or nearly), where no signal handler runs.
So every place a template can make something big is checked *before* it is made:

- binary operators are intercepted (`intercepted_binops`), which also stops Jinja's
  optimizer from folding them while compiling, and the optimizer is off altogether;
- `~`, list/tuple/dict literals and `for` loops go through a code generator of ours;
- filters, globals and calls of str/bytes/int methods are wrapped, with an estimate of
  their result for the ones whose result can outgrow their input (`center`, `format`,
  `join`, `replace`, ...); `str.format` gets a formatter that counts as it goes;
- buffers (macros, `{% set %}` blocks) are joined by a checked `concat`.

Every size is a deep size (`measure`): a list counts what its repr would print, so a
list holding itself a thousand times is as big as a thousand copies. Time is bounded
twice: a step budget (loop iterations, calls, filters, operators, outputs) that makes
the usual bombs fail the same way on every machine, and a wall-clock deadline for the
rest. A violation raises `LimitExceeded`; `render.py` turns it into a located error.
"""

from __future__ import annotations

import math
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import update_wrapper
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.lexer import TOKEN_BLOCK_BEGIN, TOKEN_NAME, TOKEN_OPERATOR, TOKEN_WHITESPACE
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum, pass_environment
from markupsafe import Markup

__all__ = ["LimitExceeded", "LimitedEnvironment", "Limits", "too_much_output"]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one render of one message may use. The values live in `render.LIMITS`."""

    output_chars: int
    """Characters in one rendered message."""
    value_chars: int
    """Deep size of any string, list or dict a template builds (or prints, joins, serializes)."""
    number_digits: int
    """Decimal digits of any integer a template computes."""
    range_items: int
    """Items in one `range(...)`, and in one `batch`/`slice` padding."""
    steps: int
    """Loop iterations, calls, filters, operators and outputs in one render."""
    seconds: float
    """Wall-clock time of one render."""
    call_depth: int
    """Nested macro calls, `caller()`s and recursive-loop levels."""
    nesting: int
    """Brackets and block tags nested in the template source."""
    expression_depth: int
    """Depth of the parsed template tree (long chains like `1+1+...` or `x|f|f|...`)."""
    value_depth: int
    """Nesting of lists and dicts inside a value."""

    @property
    def number_bits(self) -> int:
        return math.ceil(self.number_digits * math.log2(10))


class LimitExceeded(Exception):
    """A template went over one of the `Limits`.

    Attributes:
        what: what the template did, to follow "template in messages[i] ".
        hint: how to fix it.
        lineno: the template line, when known without a traceback (compile-time checks).
    """

    def __init__(self, what: str, hint: str, lineno: int | None = None) -> None:
        self.what = what
        self.hint = hint
        self.lineno = lineno
        super().__init__(what)


_SIZE_HINT = "build smaller strings and lists; see 'Template limits' in the README"


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _too_big(how: str, size: float | None, limit: int) -> LimitExceeded:
    amount = f"about {_n(size)}" if size is not None else f"more than {_n(limit)}"
    return LimitExceeded(
        f"builds a value of {amount} characters with {how}, over the limit of {_n(limit)}", _SIZE_HINT
    )


def too_much_output(limits: Limits) -> LimitExceeded:
    """The error of a render longer than `limits.output_chars` (`render.py` also joins plain templates)."""
    return LimitExceeded(
        f"exceeds the output limit of {_n(limits.output_chars)} characters",
        "render less text: shorten long vars with '| truncate(n)' or loop over fewer items",
    )


class _Budget:
    """The steps, deadline and call depth of one render (a render's state, in a ContextVar)."""

    __slots__ = ("deadline", "depth", "limits", "steps")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = limits.steps
        self.depth = 0
        self.deadline = time.monotonic() + limits.seconds

    def tick(self) -> None:
        self.steps -= 1
        # The clock is read every 64 steps: a step is at most one bounded operation.
        if not self.steps & 63:
            if self.steps <= 0:
                raise LimitExceeded(
                    f"takes more than {_n(self.limits.steps)} steps (loop iterations, calls, filters, "
                    "operators and outputs)",
                    "loop over fewer items; a prompt template should not compute",
                )
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(
                f"runs longer than the time limit of {self.limits.seconds:g} s",
                "loop over fewer items and avoid repeated work on long strings",
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("agent_evals_render_budget", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick()


_SEQUENCES = (list, tuple, set, frozenset)


def measure(value: Any, limits: Limits, *, stop: int | None = None) -> tuple[int, int]:
    """The deep size of `value` (about what its repr prints) and its nesting depth.

    Walks iteratively, so depth cannot overflow our stack, and stops once the size passes
    `stop` (default: the value limit), so a shared or cyclic structure costs at most that.
    Undefined values, generators and other objects count 1 and are never touched.

    Raises:
        LimitExceeded: the value nests deeper than `limits.value_depth`.
    """
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value), 0
    stop = limits.value_chars if stop is None else stop
    total = 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack and total <= stop:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str or isinstance(item, (str, bytes, bytearray)):
            total += len(item)
            continue
        if kind is bool or item is None or kind is float:
            total += 1
            continue
        if isinstance(item, int):
            total += item.bit_length() * 3 // 10 + 1
            continue
        if isinstance(item, Namespace):
            item = item._Namespace__attrs
        if isinstance(item, (*_SEQUENCES, dict)):
            if depth >= limits.value_depth:
                raise LimitExceeded(
                    f"builds lists or dicts nested deeper than {limits.value_depth} levels",
                    "flatten the data",
                )
            deepest = max(deepest, depth + 1)
            total += 2 + 2 * len(item)
            if isinstance(item, dict):
                stack.extend((k, depth + 1) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, range):
            total += 8 * len(item)
        else:
            total += 1
    return total, deepest


def _check_size(value: Any, limits: Limits, how: str) -> None:
    size, _ = measure(value, limits)
    if size > limits.value_chars:
        raise _too_big(how, None, limits.value_chars)


def _check_result(value: Any, limits: Limits, how: str) -> None:
    kind = type(value)
    if kind is str:
        if len(value) > limits.value_chars:
            raise _too_big(how, len(value), limits.value_chars)
    elif kind is int:
        if value.bit_length() > limits.number_bits:
            raise _too_many_digits(how, value.bit_length(), limits)
    elif isinstance(value, (str, bytes, bytearray, *_SEQUENCES, dict, Namespace)):
        _check_size(value, limits, how)


def _too_many_digits(how: str, bits: float, limits: Limits) -> LimitExceeded:
    return LimitExceeded(
        f"computes a number of about {_n(bits * math.log10(2) + 1)} digits with {how}, "
        f"over the limit of {_n(limits.number_digits)}",
        "a prompt template should not compute with big numbers",
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _count(value: Any) -> int:
    # Repetition counts as Python does: bools are ints, anything else repeats nothing.
    return max(int(value), 0) if isinstance(value, int) else 0


# A %-conversion: flags, width and precision (numbers or `*`), conversion type.
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)
_NUMBERS = re.compile(r"\d+")


def _printf_size(template: str | bytes, args: Any, limits: Limits) -> float:
    """An upper estimate of `template % args`: each conversion prints at most the widest arg or width."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    values = (
        list(args.values())
        if isinstance(args, Mapping)
        else list(args)
        if isinstance(args, tuple)
        else [args]
    )
    widest = max((measure(v, limits)[0] for v in values), default=0)
    star = max((abs(v) for v in values if _is_int(v)), default=0)
    size = float(len(text))
    for match in _PRINTF.finditer(text):
        width, precision, _ = match.groups()
        numbers = [star if n == "*" else int(n) for n in (width, precision) if n]
        size += max([widest, *numbers])
    return size


def _spec_size(value: Any, spec: str, limits: Limits) -> float:
    """An upper estimate of `format(value, spec)`: the value, or the largest width or precision."""
    numbers = [int(n) for n in _NUMBERS.findall(spec)] if spec else []
    return max([measure(value, limits)[0] + 32, *numbers])


class _LimitedFormatterMixin:
    """`str.format` that checks each field's width before formatting it, and the running total."""

    limits: Limits
    produced: int

    def format_field(self, value: Any, format_spec: str) -> Any:
        _tick()
        size = _spec_size(value, format_spec, self.limits)
        self.produced += int(size)
        if self.produced > self.limits.value_chars:
            raise _too_big("str.format", self.produced, self.limits.value_chars)
        return super().format_field(value, format_spec)  # type: ignore[misc]


class _LimitedFormatter(_LimitedFormatterMixin, SandboxedFormatter):
    def __init__(self, env: LimitedEnvironment, **kwargs: Any) -> None:
        self.limits = env.limits
        self.produced = 0
        super().__init__(env, **kwargs)


class _LimitedEscapeFormatter(_LimitedFormatterMixin, SandboxedEscapeFormatter):
    def __init__(self, env: LimitedEnvironment, **kwargs: Any) -> None:
        self.limits = env.limits
        self.produced = 0
        super().__init__(env, **kwargs)


# Estimates of the results of str/bytes methods that can outgrow their object; each takes
# the method's own arguments and returns the estimated size (or raises TypeError like it).
def _str_method_sizes(limits: Limits) -> dict[str, Callable[..., float]]:
    def width(s: Any, width: Any, *_: Any) -> float:
        return max(len(s), _count(width))

    def expandtabs(s: Any, tabsize: Any = 8) -> float:
        return float(len(s) + s.count("\t" if isinstance(s, str) else b"\t") * _count(tabsize))

    def replace(s: Any, old: Any, new: Any, count: Any = -1) -> float:
        hits = (len(s) + 1) if not old else s.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        return len(s) + hits * max(len(new) - len(old), 0)

    def translate(s: Any, table: Any, *_: Any) -> float:
        longest = 1
        if isinstance(table, Mapping):
            longest = max((measure(v, limits)[0] for v in table.values()), default=1)
        return len(s) * max(longest, 1)

    return {
        "center": width,
        "ljust": width,
        "rjust": width,
        "zfill": width,
        "expandtabs": expandtabs,
        "replace": replace,
        "translate": translate,
    }


def _check_range(limits: Limits, *args: Any) -> range:
    rng = range(*args)
    try:
        items = len(rng)
    except OverflowError:
        items = limits.range_items + 1
    if items > limits.range_items:
        raise LimitExceeded(
            f"makes a range of {_n(items) if items > limits.range_items + 1 else 'too many'} items, "
            f"over the limit of {_n(limits.range_items)}",
            "loop over fewer items",
        )
    return rng


class _LimitedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with checks where the sandbox has no hook."""

    def _guarded(self, visit: Callable[[Any, Frame], None], node: nodes.Expr, frame: Frame) -> None:
        self.write("environment.guard_literal(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._guarded(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._guarded(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target: `{% for a, b in ... %}`
            super().visit_Tuple(node, frame)
        else:
            self._guarded(super().visit_Tuple, node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # As Jinja's, but the parts are measured before they are joined.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.guard_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


_BLOCK_TAGS = frozenset({"for", "if", "macro", "call", "filter", "with", "block", "autoescape"})
_END_TAGS = frozenset(f"end{tag}" for tag in _BLOCK_TAGS)

# Filters that never turn their whole input into one string; the others are refused a
# too-big input before they start (an input from the case's vars, or a generator's items).
_NON_STRINGIFYING = frozenset(
    {
        "abs", "attr", "batch", "count", "d", "default", "dictsort", "first", "float", "groupby", "int",
        "items", "join", "last", "length", "list", "map", "max", "min", "random", "reject", "rejectattr",
        "reverse", "round", "select", "selectattr", "slice", "sort", "sum", "unique",
    }
)  # fmt: skip


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """An immutable sandbox that enforces `Limits` (see the module docstring).

    Render with `render`, which sets up the per-render budget; templates compile with
    `compile` as usual.
    """

    code_generator_class = _LimitedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, limits: Limits, **options: Any) -> None:
        # No constant folding: the optimizer would compute filters and operators of
        # constants while compiling, outside every check (and `9 ** (9 ** 99)` in C).
        super().__init__(optimized=False, finalize=self._finalize, **options)
        self.limits = limits
        self._method_sizes = _str_method_sizes(limits)
        self.globals["range"] = self._range
        self.globals["lipsum"] = self._lipsum
        self.filters = {name: self._limited_filter(name, func) for name, func in FILTERS.items()}
        self.filters["sum"] = self._limited_filter("sum", _sum)

    # -- rendering --------------------------------------------------------------------

    def render(self, template: Any, variables: Mapping[str, Any]) -> str:
        """Render `template` with `variables` within the limits.

        Raises:
            LimitExceeded: the template went over a limit.
            ValueError: the text holds half a surrogate pair (from a string literal's
                `"\\ud800"`), which no writer of it (cache, record, report) could encode.
        """
        limit = self.limits.output_chars
        budget = _Budget(self.limits)
        token = _BUDGET.set(budget)
        try:
            chunks = []
            size = 0
            for chunk in template.generate(variables):
                size += len(chunk)
                if size > limit:
                    raise too_much_output(self.limits)
                chunks.append(chunk)
            budget.check_time()
            text = "".join(chunks)
            if not text.isascii():
                _refuse_surrogates(text)
            return text
        finally:
            _BUDGET.reset(token)

    # -- compiling --------------------------------------------------------------------

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        self._check_nesting(source, name)
        tree = super()._parse(source, name, filename)
        self._check_depth(tree)
        # Every iteration of a `for` loop is a step: `for x in environment.guard_loop(...)`.
        guard = nodes.EnvironmentAttribute("guard_loop")
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(guard, [loop.iter], [], None, None, lineno=loop.iter.lineno)
        return tree

    def _check_nesting(self, source: str, name: str | None) -> None:
        # The parser recurses per bracket, per block and per unary operator; refuse deep
        # nesting from the tokens, before it can exhaust the stack (and Python refuses
        # more than 20 nested loops in the code Jinja generates).
        limit = self.limits.nesting
        depth = 0
        unary_run = 0
        after_block_begin = False
        for lineno, kind, value in self.lexer.tokeniter(source, name):
            if kind == TOKEN_WHITESPACE:
                continue
            if kind == TOKEN_OPERATOR and value in "([{":
                depth += 1
            elif kind == TOKEN_OPERATOR and value in ")]}":
                depth -= 1
            elif after_block_begin and kind == TOKEN_NAME:
                if value in _BLOCK_TAGS:
                    depth += 1
                elif value in _END_TAGS:
                    depth -= 1
            after_block_begin = kind == TOKEN_BLOCK_BEGIN
            unary = (kind == TOKEN_OPERATOR and value in ("-", "+")) or (
                kind == TOKEN_NAME and value == "not"
            )
            unary_run = unary_run + 1 if unary else 0
            if depth > limit or unary_run > limit:
                raise LimitExceeded(
                    f"nests brackets and blocks deeper than {limit} levels",
                    "flatten the template: set intermediate values with {% set %}",
                    lineno=lineno,
                )

    def _check_depth(self, tree: nodes.Node) -> None:
        # Long chains (`1+1+...`, `x|f|f|...`) make a deep tree without brackets; the code
        # generator and Python's compiler would recurse through all of it.
        stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
        while stack:
            node, depth = stack.pop()
            if depth > self.limits.expression_depth:
                raise LimitExceeded(
                    f"has an expression nested deeper than {self.limits.expression_depth} levels",
                    "split long chains of operators or filters with {% set %}",
                    lineno=getattr(node, "lineno", None),
                )
            stack.extend((child, depth + 1) for child in node.iter_child_nodes())

    # -- hooks the generated code calls -------------------------------------------------

    def _finalize(self, value: Any) -> Any:
        # Every `{{ ... }}` passes here before it is turned into a string.
        _tick()
        if type(value) is not str:
            _check_size(value, self.limits, "'{{ }}'")
        return value

    def guard_loop(self, iterable: Any) -> Any:
        """Make every iteration of a `for` loop a step."""
        budget = _BUDGET.get()
        if budget is None:
            return iterable
        return _stepped(iterable, budget)

    def guard_literal(self, value: Any) -> Any:
        """Refuse a list, tuple or dict literal that is too big (`[x, x, x]` of a big `x`)."""
        _tick()
        _check_size(value, self.limits, "a list or dict literal")
        return value

    def guard_concat(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        """`~`: measure the parts before joining them."""
        _tick()
        limit = self.limits.value_chars
        total = 0
        for part in parts:
            total += measure(part, self.limits)[0]
            if total > limit:
                raise _too_big("'~'", None, limit)
        result = join(parts)
        _check_result(result, self.limits, "'~'")
        return result

    def concat(self, parts: Iterable[str]) -> str:
        """Join a buffer (a macro's output, a `{% set %}` block) after counting it."""
        parts = parts if isinstance(parts, list) else list(parts)
        size = sum(map(len, parts))
        if size > self.limits.value_chars:
            raise _too_big("a macro or block", size, self.limits.value_chars)
        return "".join(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        limits = self.limits
        if operator == "**":
            _check_power(left, right, limits)
        elif operator == "*":
            _check_product(left, right, limits)
        elif operator == "+" and not (_is_int(left) and _is_int(right)):
            if isinstance(left, (str, bytes, *_SEQUENCES)) and isinstance(right, (str, bytes, *_SEQUENCES)):
                size = measure(left, limits)[0] + measure(right, limits)[0]
                if size > limits.value_chars:
                    raise _too_big("'+'", None, limits.value_chars)
        elif operator == "%" and isinstance(left, (str, bytes)):
            estimate = _printf_size(left, right, limits)
            if estimate > limits.value_chars:
                raise _too_big("'%'", estimate, limits.value_chars)
        result = self.binop_table[operator](left, right)
        _check_result(result, limits, f"'{operator}'")
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.tick()
        if isinstance(obj, types.BuiltinMethodType):
            args = self._check_method(obj, args, kwargs)
        if budget is None:
            result = super().call(context, obj, *args, **kwargs)
        else:
            if budget.depth >= self.limits.call_depth:
                raise LimitExceeded(
                    f"nests macro calls or recursive loops deeper than {self.limits.call_depth} levels",
                    "stop the recursion earlier",
                )
            budget.depth += 1
            try:
                result = super().call(context, obj, *args, **kwargs)
            finally:
                budget.depth -= 1
        _check_result(result, self.limits, f"'{getattr(obj, '__name__', 'a call')}()'")
        return result

    def _check_method(self, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        owner = method.__self__
        name = method.__name__
        limits = self.limits
        if isinstance(owner, (str, bytes, bytearray)):
            if name == "join" and args:
                items = list(args[0])
                size = sum(measure(item, limits)[0] for item in items) + len(owner) * len(items)
                if size > limits.value_chars:
                    raise _too_big("'join()'", size, limits.value_chars)
                return (items, *args[1:])
            estimate = self._method_sizes.get(name)
            if estimate is not None:
                result_size = estimate(owner, *args, **kwargs)
                if result_size > limits.value_chars:
                    raise _too_big(f"'{name}()'", result_size, limits.value_chars)
        elif isinstance(owner, int) and name == "to_bytes":
            length = args[0] if args else kwargs.get("length", 1)
            if _count(length) > limits.value_chars:
                raise _too_big("'to_bytes()'", _count(length), limits.value_chars)
        return args

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # As the sandbox's, with a formatter that checks widths and counts what it makes.
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        f_self = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type = type(f_self)
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            formatter: SandboxedFormatter
            if isinstance(f_self, Markup):
                formatter = _LimitedEscapeFormatter(self, escape=f_self.escape)
            else:
                formatter = _LimitedFormatter(self)
            return str_type(formatter.vformat(f_self, args, kwargs))

        return update_wrapper(wrapper, value)

    # -- globals and filters ----------------------------------------------------------

    def _range(self, *args: Any) -> range:
        return _check_range(self.limits, *args)

    def _lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        size = _count(n) * _count(max) * 16
        if size > self.limits.value_chars:
            raise _too_big("'lipsum()'", size, self.limits.value_chars)
        return generate_lorem_ipsum(n, html, min, max)

    def _limited_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        limits = self.limits
        pass_arg = _PassArg.from_obj(func)
        first = 0 if pass_arg is None else 1
        estimate = _FILTER_SIZES.get(name)
        stringifies = name not in _NON_STRINGIFYING
        how = f"'| {name}'"

        def limited_with_estimate(*args: Any, **kwargs: Any) -> Any:
            _tick()
            if stringifies and len(args) > first:
                _check_size(args[first], limits, how)
            value = estimate(limits, how, *args[first:], **kwargs)  # type: ignore[misc]
            if value is not None:
                args = (*args[:first], value, *args[first + 1 :])
            result = func(*args, **kwargs)
            _check_result(result, limits, how)
            return result

        def limited_plain(*args: Any, **kwargs: Any) -> Any:
            _tick()
            if stringifies and len(args) > first:
                _check_size(args[first], limits, how)
            result = func(*args, **kwargs)
            _check_result(result, limits, how)
            return result

        wrapper = limited_with_estimate if estimate is not None else limited_plain
        if pass_arg is not None:
            wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
        return wrapper


def _stepped(iterable: Any, budget: _Budget) -> Iterator[Any]:
    for item in iterable:
        budget.tick()
        yield item


def _check_power(left: Any, right: Any, limits: Limits) -> None:
    if not (_is_int(left) and _is_int(right)) or right <= 0 or abs(left) <= 1:
        return  # floats overflow quickly on their own; 0, 1 and -1 stay small
    bits = math.inf if right.bit_length() > 64 else right * math.log2(abs(left))
    if bits > limits.number_bits:
        raise _too_many_digits("'**'", bits, limits)


def _check_product(left: Any, right: Any, limits: Limits) -> None:
    if _is_int(left) and _is_int(right):
        bits = left.bit_length() + right.bit_length()
        if bits > limits.number_bits:
            raise _too_many_digits("'*'", bits, limits)
        return
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, bytes, *_SEQUENCES)) and _is_int(times):
            count = _count(times)
            if count == 0:
                return
            # Measure at most what could still fit `count` times.
            per_copy, _ = measure(seq, limits, stop=limits.value_chars // count + 1)
            if per_copy * count > limits.value_chars:
                exact = isinstance(seq, (str, bytes))
                raise _too_big("'*'", per_copy * count if exact else None, limits.value_chars)
            return


# Estimates for filters whose result can outgrow their input. Each takes the filter's own
# arguments (after Jinja's context/environment argument) and returns None, or the value
# to call the filter with instead (`join` turns a generator into a list it can measure).
def _est_center(limits: Limits, how: str, value: Any, width: Any = 80) -> None:
    if _count(width) > limits.value_chars:
        raise _too_big(how, _count(width), limits.value_chars)


def _est_format(limits: Limits, how: str, value: Any, *args: Any, **kwargs: Any) -> None:
    size = _printf_size(str(value), kwargs or args, limits)
    if size > limits.value_chars:
        raise _too_big(how, size, limits.value_chars)


def _est_indent(
    limits: Limits, how: str, s: Any, width: Any = 4, first: Any = False, blank: Any = False
) -> None:
    text = str(s)
    pad = len(width) if isinstance(width, str) else _count(width)
    size = len(text) + (text.count("\n") + 1) * pad
    if size > limits.value_chars:
        raise _too_big(how, size, limits.value_chars)


def _est_wordwrap(
    limits: Limits,
    how: str,
    s: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    break_on_hyphens: Any = True,
) -> None:
    text = str(s)
    # A line holds at least one character, and every other line at least `width` of them.
    lines = min(len(text), 2 * len(text) // max(_count(width), 1) + text.count("\n")) + 1
    size = len(text) + lines * len(wrapstring if isinstance(wrapstring, str) else "\n")
    if size > limits.value_chars:
        raise _too_big(how, size, limits.value_chars)


def _est_replace(limits: Limits, how: str, s: Any, old: Any, new: Any, count: Any = None) -> None:
    text, old, new = str(s), str(old), str(new)
    hits = (len(text) + 1) if not old else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    size = len(text) + hits * max(len(new) - len(old), 0)
    if size > limits.value_chars:
        raise _too_big(how, size, limits.value_chars)


def _est_join(limits: Limits, how: str, value: Any, d: Any = "", attribute: Any = None) -> list[Any]:
    items = list(value)
    size = sum(measure(item, limits)[0] for item in items) + len(str(d)) * len(items)
    if size > limits.value_chars:
        raise _too_big(how, size, limits.value_chars)
    return items


def _est_fill(limits: Limits, how: str, value: Any, count: Any, fill_with: Any = None) -> None:
    # `batch` pads its last batch, and `slice` makes `count` lists, in loops of their own.
    if (fill_with is not None or how == "'| slice'") and _count(count) > limits.range_items:
        raise LimitExceeded(
            f"makes {_n(_count(count))} items with {how}, over the limit of {_n(limits.range_items)}",
            "use a smaller count",
        )


def _est_tojson(limits: Limits, how: str, value: Any, indent: Any = None) -> None:
    pad = len(indent) if isinstance(indent, str) else _count(indent)
    if pad:
        size, depth = measure(value, limits)
        if size * (1 + pad * depth) > limits.value_chars:
            raise _too_big(how, size * (1 + pad * depth), limits.value_chars)


def _est_urlize(
    limits: Limits,
    how: str,
    value: Any,
    trim_url_limit: Any = None,
    nofollow: Any = False,
    target: Any = None,
    rel: Any = None,
    extra_schemes: Any = None,
) -> None:
    text = str(value)
    extra = 64 + sum(len(x) for x in (target, rel) if isinstance(x, str))
    size = 3 * len(text) + (text.count(" ") + text.count("\n") + 1) * extra
    if size > limits.value_chars:
        raise _too_big(how, size, limits.value_chars)


_FILTER_SIZES: dict[str, Callable[..., Any]] = {
    "center": _est_center,
    "format": _est_format,
    "indent": _est_indent,
    "wordwrap": _est_wordwrap,
    "replace": _est_replace,
    "join": _est_join,
    "batch": _est_fill,
    "slice": _est_fill,
    "tojson": _est_tojson,
    "urlize": _est_urlize,
}


@pass_environment
def _sum(
    environment: LimitedEnvironment, iterable: Iterable[Any], attribute: Any = None, start: Any = 0
) -> Any:
    """`| sum`, one checked `+` at a time: summing lists is quadratic, and in C."""
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    total = start
    for item in iterable:
        total = environment.call_binop(None, "+", total, item)  # type: ignore[arg-type]
    return total


def _refuse_surrogates(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"the text holds half a surrogate pair ({text[exc.start]!r} at character {exc.start}), "
            "which no UTF-8 text can hold"
        ) from None
