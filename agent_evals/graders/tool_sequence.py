"""`tool_sequence`: the tools the agent called, compared with a list, in one of five modes.

```yaml
- type: tool_sequence
  tools: [lookup_order, lookup_policy, issue_refund]
  mode: in_order            # exact | in_order (default) | any_order | subset | superset
- type: tool_sequence
  tools: [lookup_order, {tool: issue_refund, args: {amount: 20}}]   # an entry may state arguments
  mode: exact
- type: tool_sequence
  tools_from_expected: tools   # the list from the case's expected.tools (recorded production cases)
  mode: superset
```

Modes (the list is `tools`; the calls are the case's tool calls, in order):

* `exact`: the calls are exactly the list, in its order.
* `in_order`: the list's entries are called in this order; other calls may come between.
* `any_order`: the calls are the list in some order (the same multiset: counts matter).
* `subset`: every call fits some entry of the list (an allow list; a tool may repeat).
* `superset`: every entry is called (to ask for a tool twice, list it twice); other calls may come too.

An entry is a tool name or `{tool, args, match}` (`match` as in `tool_called`: subset by
default), so a sequence can pin the arguments of the calls that matter, as agentevals'
trajectory match modes with argument matching do. Matching of entries to calls is a largest
bipartite matching, so an entry with arguments never loses a call to a looser one.

Parallel calls (several calls of one model step) are unordered among themselves in `exact`
and `in_order` (they were issued together); `parallel: ordered` makes the order the model
listed them in count. Failed calls (a tool error) count unless `include_failed: false`.
Each failing reason names the first step where the run leaves the list
("step 4: issue_refund called before lookup_policy (step 6)"). Step numbers and argument
matching: see `agent_evals.graders._trajectory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from agent_evals.graders import base
from agent_evals.graders._common import FieldPath
from agent_evals.graders._trajectory import (
    Call,
    ToolEntry,
    ToolPattern,
    assign,
    batches,
    calls_of,
    count_problem,
    dropped_note,
    join_problems,
    mismatch,
    never_called,
    only,
    pattern,
    patterns_from_expected,
    steps_text,
    unfitted_problems,
)
from agent_evals.graders.base import Grade, GraderBase, Sample
from agent_evals.models import GraderSpec

Mode = Literal["exact", "in_order", "any_order", "subset", "superset"]


class ToolSequenceOptions(base.Options):
    """Options of `tool_sequence`."""

    tools: tuple[ToolEntry, ...] | None = Field(
        default=None, description="Tool names, or {tool, args, match} entries, in the order expected."
    )
    tools_from_expected: FieldPath | None = Field(
        default=None, description="Read the list from this path in the case's expected value instead."
    )
    mode: Mode = Field(
        default="in_order",
        description="exact: exactly these calls in order; in_order: these in order, others between; "
        "any_order: exactly these in any order; subset: every call is one of these; superset: all of these are called.",
    )
    parallel: Literal["unordered", "ordered"] = Field(
        default="unordered",
        description="unordered: calls of one model step may match the list in any order; ordered: as the model listed them.",
    )
    include_failed: bool = Field(default=True, description="Count calls the tool answered with an error.")

    @model_validator(mode="after")
    def _one_list(self) -> ToolSequenceOptions:
        if (self.tools is None) == (self.tools_from_expected is None):
            raise ValueError(
                "set exactly one of 'tools' (the list) or 'tools_from_expected' (a path in expected)"
            )
        if self.tools == () and self.mode in ("in_order", "superset"):
            raise ValueError(f"'tools' is empty: with mode {self.mode} it would pass every case")
        return self


class ToolSequence(GraderBase):
    """Pass when the case's tool calls fit the list in the chosen mode."""

    Options: ClassVar[type[base.Options]] = ToolSequenceOptions
    options: ToolSequenceOptions

    def __init__(self, spec: GraderSpec, options: Any) -> None:
        super().__init__(spec, options)
        self.needs_expected = self.options.tools_from_expected is not None

    def expected_path(self) -> str | None:
        return self.options.tools_from_expected

    async def grade(self, sample: Sample) -> Grade:
        """Compare the calls with the list.

        Raises:
            GraderError: the list comes from the case's expected value and it has none usable.
        """
        opts = self.options
        if opts.tools_from_expected is not None:
            patterns = patterns_from_expected(sample.case, opts.tools_from_expected)
        else:
            patterns = tuple(pattern(e) for e in opts.tools or ())
        calls, dropped = only(calls_of(sample), opts.include_failed)
        check = _MODES[opts.mode]
        problems, passed_reason = check(patterns, calls, opts.parallel == "ordered")
        details: dict[str, Any] = {
            "mode": opts.mode,
            "expected": [p.label for p in patterns],
            "calls": [{"step": c.step, "tool": c.name} for c in calls],
        }
        if not problems:
            return Grade(score=1.0, passed=True, reason=passed_reason, details=details)
        return Grade(
            score=0.0, passed=False, reason=join_problems(problems) + dropped_note(dropped), details=details
        )


Check = tuple[list[str], str]


def _listing(patterns: Sequence[ToolPattern]) -> str:
    return ", ".join(p.label for p in patterns) if patterns else "no calls"


def _exact(patterns: Sequence[ToolPattern], calls: Sequence[Call], ordered: bool) -> Check:
    position = 0
    for group in batches(calls, ordered):
        segment = patterns[position : position + len(group)]
        matched = assign(segment, group)
        if len(matched) < len(group):
            used = set(matched.values())
            call = next(c for j, c in enumerate(group) if j not in used)
            free = [p for i, p in enumerate(segment) if i not in matched]
            if free:
                return [mismatch(call, free[0])], ""
            return [
                f"step {call.step}: {call.name} called after the list ended "
                f"({len(patterns)} call{'s' if len(patterns) != 1 else ''} expected, {len(calls)} made)"
            ], ""
        position += len(group)
    if position < len(patterns):
        missing = patterns[position]
        if not calls:
            return [f"no tool calls; expected {_listing(patterns)}"], ""
        return [
            f"{missing.label} never called after step {max(c.step for c in calls)} "
            f"({len(patterns)} calls expected, {len(calls)} made)"
        ], ""
    return [], f"calls are exactly {_listing(patterns)}" if patterns else "no tool calls, as expected"


def _in_order(patterns: Sequence[ToolPattern], calls: Sequence[Call], ordered: bool) -> Check:
    # Greedy over model steps: an entry goes to the earliest step (at or after the previous
    # entry's) whose calls can take it together with the entries already placed there. Putting
    # an entry as early as it fits never hurts the entries after it, so greedy is exact.
    groups = batches(calls, ordered)
    done: list[Call] = []  # the calls of entries placed in earlier groups, in the list's order
    at = 0
    placed: list[ToolPattern] = []  # entries placed in groups[at]
    for i, p in enumerate(patterns):
        found = next(
            (g for g in range(at, len(groups)) if _takes(groups[g], [*placed, p] if g == at else [p])),
            None,
        )
        if found is None:
            return [_out_of_order(patterns, i, calls, groups, at, [*done, *_placed(placed, groups, at)])], ""
        if found != at:
            done.extend(_placed(placed, groups, at))
            at, placed = found, []
        placed.append(p)
    used = [*done, *_placed(placed, groups, at)]
    return [], f"{_listing(patterns)} called in order ({steps_text(used)})"


def _takes(group: list[Call], entries: list[ToolPattern]) -> bool:
    return len(assign(entries, group)) == len(entries)


def _placed(placed: list[ToolPattern], groups: list[list[Call]], at: int) -> list[Call]:
    if not placed:
        return []
    matched = assign(placed, groups[at])
    return [groups[at][matched[k]] for k in range(len(placed))]


def _out_of_order(
    patterns: Sequence[ToolPattern],
    i: int,
    calls: Sequence[Call],
    groups: list[list[Call]],
    at: int,
    used: list[Call],
) -> str:
    """Why entry `i` has no call at or after the model step of the entry before it."""
    p = patterns[i]
    if not any(p.fits(c) for c in calls):
        return never_called(p, calls)
    taken = {id(c) for c in used}
    earlier = [c for g in groups[:at] for c in g if p.fits(c) and id(c) not in taken]
    if not earlier or i == 0:
        return count_problem(p.tool, calls, sum(1 for q in patterns if q.tool == p.tool))
    return f"step {earlier[0].step}: {p.tool} called before {patterns[i - 1].tool} (step {used[-1].step})"


def _any_order(patterns: Sequence[ToolPattern], calls: Sequence[Call], ordered: bool) -> Check:
    matched = assign(patterns, calls)
    if len(matched) == len(patterns) == len(calls):
        return (
            [],
            f"calls are {_listing(patterns)}, in any order" if patterns else "no tool calls, as expected",
        )
    return unfitted_problems(patterns, calls, matched, extras=True), ""


def _subset(patterns: Sequence[ToolPattern], calls: Sequence[Call], ordered: bool) -> Check:
    problems = []
    for call in calls:
        if any(p.fits(call) for p in patterns):
            continue
        same = [p for p in patterns if p.tool == call.name]
        if same:
            problems.append(f"step {call.step}: {call.name} arguments: {same[0].problems(call)[0]}")
        else:
            problems.append(f"step {call.step}: {call.name} called, not one of {_listing(patterns)}")
    if problems:
        return problems, ""
    if not calls:
        return [], "no tool calls"
    return [], f"{len(calls)} call{'s' if len(calls) > 1 else ''}, each one of {_listing(patterns)}"


def _superset(patterns: Sequence[ToolPattern], calls: Sequence[Call], ordered: bool) -> Check:
    matched = assign(patterns, calls)
    if len(matched) == len(patterns):
        steps = sorted(calls[j].step for j in matched.values())
        return (
            [],
            f"{_listing(patterns)} called (step{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))})",
        )
    return unfitted_problems(patterns, calls, matched, extras=False), ""


_MODES = {
    "exact": _exact,
    "in_order": _in_order,
    "any_order": _any_order,
    "subset": _subset,
    "superset": _superset,
}
