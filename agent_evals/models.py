"""The file formats, as frozen strict models: unknown keys are errors.

Every file carries a `schema_version`. Prompts and eval sets have a content
hash over what changes behaviour, so two runs can tell whether they used the
same prompt or the same cases.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Iterator, Sequence
from functools import cache, cached_property
from os import PathLike
from typing import Annotated, Any, Literal, Self, overload

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from agent_evals.limits import MAX_CONCURRENCY

SCHEMA_VERSION = 1
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
DEFAULT_MAX_STEPS = 10
"""Model calls per case at most, when the model calls tools and the prompt sets no `max_steps`."""


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
"""Writes the canonical JSON form (sorted keys, no spaces); one for every call, as `json.dumps`
with these options would build a new one each time."""


def canonical_hash(data: Any) -> str:
    """sha256 of the canonical JSON form of `data` (sorted keys, no spaces)."""
    return "sha256:" + hashlib.sha256(_CANONICAL.encode(data).encode("utf-8")).hexdigest()


class _Model(BaseModel):
    # No inf or NaN in any number of a file (`.inf`, `1e999`): an infinite weight passed `validate`
    # and made every score NaN. The same in every model a YAML file is read into.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)


class _Sourced(_Model):
    """A model loaded from a file; remembers where, so later errors can say so.

    Build one with `located` (the loader does); `model_validate` gives one that knows no file.
    """

    _path: str | None = PrivateAttr(default=None)
    _marks: Any = PrivateAttr(default=None)

    @classmethod
    def located(cls, data: Any, *, path: str | PathLike[str], marks: Any = None) -> Self:
        """Validate `data` read from `path`, keeping where it came from.

        Args:
            data: the file's parsed content.
            path: how errors and `source_path` name the file.
            marks: the line marks of `data` (`agent_evals._yaml` keeps them while loading);
                default: `data` itself, when it carries them.

        Raises:
            pydantic.ValidationError: `data` is not a valid instance.
        """
        obj = cls.model_validate(data)
        obj._path = str(path)
        obj._marks = data if marks is None else marks
        return obj

    @property
    def source_path(self) -> str | None:
        # Read from pydantic's private store directly: `self._path` goes through
        # BaseModel.__getattr__, 30x slower, and rendering asks once per message per case.
        path: str | None = (self.__pydantic_private__ or {}).get("_path")
        return path

    def line_of(self, *loc: int | str, value: bool = False) -> int | None:
        """The line of the key (or, with value=True, the value) at `loc` in the source file."""
        from agent_evals import _yaml

        if self._marks is None:
            return None
        return _yaml.value_line(self._marks, loc) if value else _yaml.line_of(self._marks, loc)


# --- prompts -----------------------------------------------------------------


class Owner(_Model):
    name: str = Field(min_length=1, description="The person or team accountable for this prompt.")
    oncall: str = Field(min_length=1, description="Who gets paged: a rotation, channel or address.")


class ModelSpec(_Model):
    provider: str = Field(
        min_length=1, description="A provider type or a provider named in agent-evals.yaml."
    )
    name: str = Field(default="", description="The model name sent to the provider.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    # The values of the OpenAI SDK's `ReasoningEffort`; Anthropic's `output_config.effort` takes the
    # last five. Left out of dumps while unset, so the content hash of a prompt without it stays what
    # it was before the field existed (a stored baseline must not read as a changed prompt).
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="How hard a reasoning model thinks: OpenAI's `reasoning_effort`, Anthropic's "
        "`output_config.effort` (low, medium, high, xhigh, max).",
    )
    extra: dict[str, Any] = Field(default_factory=dict, description="Sent verbatim in the request body.")

    def params(self) -> dict[str, Any]:
        """The sampling parameters that are set, in a stable order."""
        out: dict[str, Any] = {}
        # Only set parameters are listed, so a new one changes no cache key of a prompt without it.
        for key in ("temperature", "max_tokens", "top_p", "seed", "stop", "reasoning_effort"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""A tool name both OpenAI and Anthropic accept."""

_EMPTY: Any = lambda value: not value  # noqa: E731 - a field left out of dumps (and hashes) while unset


class ToolSpec(_Model):
    """A tool the agent may call: sent to the model in the provider's native format."""

    name: str = Field(pattern=TOOL_NAME_PATTERN, description="What the model calls it.")
    description: str = Field(default="", description="What the tool does, for the model.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="The JSON Schema of the tool's arguments (an object).",
    )

    @field_validator("parameters")
    @classmethod
    def _an_object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type", "object") != "object":
            raise ValueError("a tool's parameters must be a JSON Schema of type 'object'")
        return value


class ToolCallSpec(_Model):
    """A tool call an assistant message made: in a conversation the runner builds, or a few-shot example."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(
        default_factory=dict, description="The parsed arguments, or the raw text when it was not JSON."
    )


class Message(_Model):
    """One message. `tool` messages answer the assistant's `tool_calls` by `tool_call_id`."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCallSpec, ...] = Field(default=(), exclude_if=_EMPTY)
    tool_call_id: str | None = Field(default=None, exclude_if=_EMPTY)
    name: str | None = Field(default=None, exclude_if=_EMPTY, description="A tool message's tool name.")
    is_error: bool = Field(
        default=False, exclude_if=_EMPTY, description="A tool message reporting a failure."
    )

    @model_validator(mode="after")
    def _tool_fields_fit_the_role(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message has tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool message, and only a tool message, has a tool_call_id")
        return self


class OutputSpec(_Model):
    format: Literal["text", "json"] = "text"
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")

    @model_validator(mode="after")
    def _schema_needs_json(self) -> OutputSpec:
        if self.json_schema is not None and self.format != "json":
            raise ValueError("a schema needs 'format: json'")
        return self


class Litmus(_Model):
    """The three questions a production agent must answer (see `readiness`)."""

    if_wrong_1pct: str | None = None
    who_gets_paged: str | None = None
    business_number: str | None = None


class RuntimePolicy(_Model):
    """How the production agent behind this prompt runs: recorded with it, checked by `readiness`.

    This describes the agent in production, not the eval run (see agent-evals.yaml for that).
    """

    timeout_s: float | None = Field(default=None, gt=0, description="Per-call timeout in production.")
    max_attempts: int | None = Field(default=None, ge=1, description="Attempts per call, retries included.")
    max_cost_usd: float | None = Field(default=None, gt=0, description="Cost ceiling per request or task.")
    escape_hatch: str | None = Field(
        default=None, description="How a human takes over when the agent cannot."
    )


def _watch_glob(glob: str) -> str:
    from agent_evals.sources import check_glob

    return check_glob(glob)


class Prompt(_Sourced):
    schema_version: Literal[1] = 1
    id: str = Field(pattern=ID_PATTERN)
    version: str | int
    description: str = ""
    owner: Owner
    model: ModelSpec
    messages: tuple[Message, ...] = Field(min_length=1)
    output: OutputSpec = Field(default_factory=OutputSpec)
    litmus: Litmus | None = None
    runtime: RuntimePolicy | None = None
    # Not in the content hash: the files it names are fingerprinted themselves (agent_evals.sources).
    watch: tuple[Annotated[str, AfterValidator(_watch_glob)], ...] = Field(
        default=(),
        description="Files the agent's behaviour depends on beyond its python: package, as globs relative "
        "to the project root (`agent/**.py`, `tools/*.yaml`): `ci` gates the prompt when they change.",
    )
    tools: tuple[ToolSpec, ...] = Field(
        default=(), exclude_if=_EMPTY, description="Tools the model may call; the runner answers each call."
    )
    tool_choice: str | None = Field(
        default=None,
        exclude_if=_EMPTY,
        description="auto (the default), required, none, or the name of the one tool the model must call.",
    )
    max_steps: int | None = Field(
        default=None,
        ge=1,
        le=100,
        exclude_if=_EMPTY,
        description=f"Model calls per case at most when the model calls tools (default {DEFAULT_MAX_STEPS}).",
    )

    @model_validator(mode="after")
    def _tools_fit(self) -> Prompt:
        names = [t.name for t in self.tools]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise ValueError(f"tool '{duplicate}' is declared twice")
        choice = self.tool_choice
        if choice is not None and choice not in ("auto", "required", "none") and choice not in names:
            raise ValueError(
                f"tool_choice '{choice}' is neither auto, required, none nor a declared tool"
                + (f" ({', '.join(names)})" if names else "")
            )
        if choice in ("required",) and not names:
            raise ValueError("tool_choice 'required' needs tools")
        return self

    @property
    def steps_limit(self) -> int:
        """The most model calls one case may make."""
        return self.max_steps or DEFAULT_MAX_STEPS

    @property
    def content_hash(self) -> str:
        """Hash of everything that changes what is sent or how output is read."""
        return canonical_hash(
            self.model_dump(
                mode="json",
                include={"model", "messages", "output", "tools", "tool_choice", "max_steps"},
                by_alias=True,
            )
        )


# --- eval sets -----------------------------------------------------------------


class Provenance(_Model):
    source: str = Field(min_length=1, description="Where the cases come from, e.g. a log and its window.")
    sampled_at: str | None = None
    method: str | None = None
    synthetic: bool = False
    source_hash: str | None = None
    time_window: str | None = None
    filters: tuple[str, ...] = ()
    seed: int | None = None
    notes: str | None = None

    @field_validator("sampled_at", mode="before")
    @classmethod
    def _date_to_str(cls, value: Any) -> Any:
        # YAML turns 2026-11-01 into a date; keep it as the text the file says.
        return value.isoformat() if hasattr(value, "isoformat") else value


class GraderSpec(BaseModel):
    """A grader entry: the common keys here, the type's own options in `options`.

    The type's options model (see `agent_evals.graders`) checks the rest, so an
    unknown option is an error that names its line.
    """

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)

    type: str = Field(min_length=1)
    name: str | None = None
    weight: float = Field(default=1.0, ge=0)
    required: bool = True
    turns: Literal["last", "each"] = Field(
        default="last",
        exclude_if=lambda value: value == "last",
        description="For cases with turns: 'last' grades the final answer (trajectory graders see every "
        "step of the conversation); 'each' grades every turn's answer against that turn's expected "
        "(the first turn's is the case's) and passes when every graded turn passes.",
    )

    @property
    def label(self) -> str:
        return self.name or self.type

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ScoreDrops(_Model):
    """Largest allowed drop in mean score (0-1 scale), overall and per grader or tag."""

    overall: float | None = Field(default=None, ge=0, le=1)
    graders: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, float] = Field(default_factory=dict)


class GatePolicy(_Model):
    """When a candidate fails the gate. Eval sets set it; agent-evals.yaml sets defaults.

    A significant paired regression always fails (at `alpha`); the other rules
    are off until set.
    """

    max_regressions: int | None = Field(
        default=None, ge=0, description="Most cases allowed to go pass -> fail."
    )
    min_pass_rate: float | None = Field(default=None, ge=0, le=1, description="Candidate pass rate floor.")
    max_score_drop: ScoreDrops | None = None
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of the paired test.")
    noninferiority_margin: float | None = Field(
        default=None, gt=0, le=1, description="Pass if no worse than this, with 1 - alpha confidence."
    )
    critical: tuple[str, ...] = Field(default=(), description="Tags or case ids that must never regress.")
    max_error_rate: float = Field(
        default=0.05, ge=0, le=1, description="Above this the gate cannot judge: exit 3."
    )
    detect_drop: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="The smallest drop the team wants to see; drives the power note.",
    )
    max_step_increase: float | None = Field(
        default=None,
        ge=0,
        description="Most extra steps (model calls plus tool calls) per case, on average, candidate vs "
        "baseline on the same cases.",
    )
    max_cost_increase: float | None = Field(
        default=None,
        ge=0,
        description="Most relative increase in cost per case, candidate vs baseline on the same cases "
        "(0.2: 20% more).",
    )

    @field_validator("max_score_drop", mode="before", json_schema_input_type=ScoreDrops | float | None)
    @classmethod
    def _number_means_overall(cls, value: Any) -> Any:
        return {"overall": value} if isinstance(value, int | float) and not isinstance(value, bool) else value


class CalibrationPolicy(_Model):
    """How well an LLM judge must agree with people before its scores are trusted (`agent-evals calibrate`).

    Eval sets set it; agent-evals.yaml sets defaults. Below a floor, reports
    warn (and `calibrate --strict` exits 1); the gate itself does not change.
    """

    min_agreement: float = Field(
        default=0.8, ge=0, le=1, description="Lowest share of human-reviewed cases the judge must agree on."
    )
    min_kappa: float | None = Field(
        default=None, ge=-1, le=1, description="Lowest Cohen's kappa with people; off unless set."
    )
    min_cases: int = Field(
        default=20, ge=1, description="Fewer human-reviewed cases than this are too few to trust."
    )


class RecordedCall(_Model):
    """A tool call as production made it, and what the tool answered: replayed in place of the tool."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: Any = Field(default=None, description="What the tool returned (any JSON value).")
    error: str | None = Field(default=None, exclude_if=_EMPTY, description="The tool failed with this.")


class ToolMock(_Model):
    """What a tool answers when no recorded call matches: exactly one of value, template, python."""

    value: Any = Field(default=None, exclude_if=lambda v: v is None, description="A static result.")
    template: str | None = Field(
        default=None,
        exclude_if=_EMPTY,
        description="A Jinja template rendered with `args` (the call's arguments) and `vars` (the case's).",
    )
    python: str | None = Field(
        default=None,
        exclude_if=_EMPTY,
        description="module:function inside the project, called with (arguments, case); returns the result.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ToolMock:
        given = [k for k in ("value", "template", "python") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a mock has exactly one of value, template or python")
        return self


class ToolReplay(_Model):
    """How one tool is answered in this eval set: how recorded calls match, and its mock."""

    match: Literal["exact", "subset", "paths"] = Field(
        default="exact",
        description="exact: the same arguments; subset: the recorded arguments are a subset of the call's; "
        "paths: the values at `paths` agree.",
    )
    paths: tuple[str, ...] = Field(
        default=(), exclude_if=_EMPTY, description="JSON paths compared when match is 'paths' (`order.id`)."
    )
    mock: ToolMock | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _paths_with_paths(self) -> ToolReplay:
        if (self.match == "paths") != bool(self.paths):
            raise ValueError("'paths' goes with match: paths, and match: paths needs paths")
        return self


class Turn(_Model):
    """One scripted user message of a conversation after the prompt's own, and what its answer should be."""

    user: str = Field(
        description="The user's next message: a Jinja template rendered with the case's vars, as prompt "
        "messages are."
    )
    expected: Any = Field(
        default=None,
        description="This turn's expectation, read by graders with `turns: each` (none: they skip the turn).",
    )


class Case(_Model):
    id: str = Field(min_length=1)
    vars: dict[str, Any] = Field(default_factory=dict)
    expected: Any = None
    tags: tuple[str, ...] = ()
    cluster: str | None = Field(
        default=None,
        description="Cases sharing a conversation or source trace (default: the case is its own; a case "
        "with turns is one conversation, one cluster).",
    )
    tools: tuple[RecordedCall, ...] = Field(
        default=(),
        exclude_if=_EMPTY,
        description="Tool calls recorded in production with their results, replayed in order of match.",
    )
    turns: tuple[Turn, ...] = Field(
        default=(),
        exclude_if=_EMPTY,
        description="A conversation: the user's next messages, each sent after the previous final answer. "
        "The prompt's own messages are the first turn, graded against the case's `expected`.",
    )

    @field_validator("id", mode="before", json_schema_input_type=str | int)
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class ReviewPolicy(_Model):
    """When cases go to a person: pairs of graders whose disagreement means a human should look."""

    disagree: tuple[tuple[str, str], ...] = Field(
        default=(),
        description="Pairs of grader names; when they disagree on pass/fail, the case needs review.",
    )


class MonitorPolicy(_Model):
    """How `monitor` reads this eval set's production traffic and when it speaks up (after the merge)."""

    map: dict[str, str] = Field(
        default_factory=dict,
        description="Log fields for the cases' parts, as `sample --map` takes them (vars.<name>, output, "
        "feedback, timestamp, version, tags.<name>, tools): target -> dotted log field.",
    )
    map_file: str | None = Field(
        default=None, description="A YAML mapping file (like `sample --map-file`), relative to this eval set."
    )
    stratify_by: str | None = Field(
        default=None,
        description="The stratum of a row (a mapped target or a tag): shifts and freshness per stratum.",
    )
    window_days: int = Field(default=7, ge=1, le=366, description="The production window monitor grades.")
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="The false-alarm rate of a drop.")
    min_drop: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="The drop in pass rate worth paging for: what a window must be able to see.",
    )
    max_uncovered_share: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="Freshness: the eval set is stale when more than this share of the window's traffic "
        "is in strata it lacks or under-represents.",
    )


_HASH_SLICE = 100
"""Cases dumped and encoded at a time for `EvalSet.content_hash`: bounds the memory it takes. Small
enough that a slice's dicts seldom live through a garbage collection: with 1,000 they did, and
the collections that followed walked every loaded case again (half as much time again)."""


@cache
def _cases_adapter() -> TypeAdapter[tuple[Case, ...]]:
    return TypeAdapter(tuple[Case, ...])


class CaseSources(Sequence[tuple[str, int | None]]):
    """Where each case read from one JSON Lines file starts: (file, line), in file order.

    One path and an array of line numbers: a (path, line) tuple per case took 90 bytes,
    an array entry takes 8. Equal to any sequence of the same pairs.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines = array("q")

    def append(self, line: int) -> None:
        self.lines.append(line)

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, index: int) -> tuple[str, int | None]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, int | None]]: ...

    def __getitem__(self, index: int | slice) -> tuple[str, int | None] | list[tuple[str, int | None]]:
        if isinstance(index, slice):
            return [(self.path, line) for line in self.lines[index]]
        return self.path, self.lines[index]

    def __iter__(self) -> Iterator[tuple[str, int | None]]:
        return ((self.path, line) for line in self.lines)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CaseSources):
            return self.path == other.path and self.lines == other.lines
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as the list it stands for

    def __repr__(self) -> str:
        return f"CaseSources({self.path!r}, {len(self)} lines)"


class EvalSet(_Sourced):
    schema_version: Literal[1] = 1
    id: str = Field(pattern=ID_PATTERN)
    prompt: str = Field(min_length=1, description="The id of the prompt these cases exercise.")
    description: str = ""
    metric: str | None = Field(
        default=None,
        description="The business metric this eval set protects: the name its values are recorded under "
        "(`agent-evals metric add NAME VALUE`), shown beside the prompt's versions by `history` and `dashboard`.",
    )
    metric_direction: Literal["higher", "lower"] = Field(
        default="higher",
        description="Which way the business metric is better: `verify` and `monitor` call a move the other way a drop.",
    )
    provenance: Provenance | None = None
    graders: tuple[GraderSpec, ...] = Field(min_length=1)
    cases: tuple[Case, ...] = ()
    cases_file: str | None = Field(default=None, description="A JSONL file of cases beside this file.")
    gate: GatePolicy | None = None
    review: ReviewPolicy | None = None
    calibration: CalibrationPolicy | None = None
    monitor: MonitorPolicy | None = Field(
        default=None, description="After the merge: how `monitor` reads production logs for this eval set."
    )
    tools: dict[str, ToolReplay] = Field(
        default_factory=dict,
        exclude_if=_EMPTY,
        description="Per tool name: how recorded calls match, and the mock that answers the rest.",
    )

    # Where each case starts: (path, line), when cases come from elsewhere than this file (JSONL).
    _case_sources: Sequence[tuple[str, int | None]] | None = PrivateAttr(default=None)

    @classmethod
    def located(
        cls,
        data: Any,
        *,
        path: str | PathLike[str],
        marks: Any = None,
        case_sources: Sequence[tuple[str, int | None]] | None = None,
    ) -> Self:
        """Validate `data` read from `path`, keeping where it and each of its cases came from.

        Args:
            data: the file's parsed content.
            path: how errors and `source_path` name the file.
            marks: the line marks of `data`; default: `data` itself, when it carries them.
            case_sources: (file, line) of each case, when the cases were read from another
                file (a `cases_file`); default: their lines in `path`.

        Raises:
            pydantic.ValidationError: `data` is not a valid eval set.
        """
        obj = super().located(data, path=path, marks=marks)
        if case_sources is not None:
            obj._case_sources = case_sources if isinstance(case_sources, CaseSources) else list(case_sources)
        return obj

    @cached_property
    def content_hash(self) -> str:
        """Hash of the cases and graders: what decides the scores.

        The value of `canonical_hash` over {prompt, graders, cases, tools (when set)}, fed to
        sha256 a slice of cases at a time rather than built as one string: 100,000 cases
        make 15 MB of JSON. Computed once: the eval set is frozen.
        """
        digest = hashlib.sha256()
        # The keys in sorted order, as `canonical_hash` writes them: cases, graders, prompt, tools.
        digest.update(b'{"cases":[')
        for start in range(0, len(self.cases), _HASH_SLICE):
            # Each case as its model_dump(mode="json"), in one call per slice: a call per case took 40% longer.
            dumped = _cases_adapter().dump_python(self.cases[start : start + _HASH_SLICE], mode="json")
            text = _CANONICAL.encode(dumped)[1:-1]  # the cases without the list's brackets
            digest.update((text if start == 0 else "," + text).encode("utf-8"))
        rest: list[tuple[str, Any]] = [
            ("graders", [g.model_dump(mode="json") for g in self.graders]),
            ("prompt", self.prompt),
        ]
        if self.tools:
            rest.append(("tools", {k: v.model_dump(mode="json") for k, v in self.tools.items()}))
        digest.update(b"]")
        for key, value in rest:
            digest.update(f",{_CANONICAL.encode(key)}:{_CANONICAL.encode(value)}".encode())
        digest.update(b"}")
        return "sha256:" + digest.hexdigest()

    @model_validator(mode="after")
    def _review_names_graders(self) -> EvalSet:
        if self.review is not None:
            labels = {g.label for g in self.graders}
            for pair in self.review.disagree:
                unknown = [name for name in pair if name not in labels]
                if unknown:
                    raise ValueError(
                        f"review.disagree names grader '{unknown[0]}', which this eval set does not have "
                        f"(graders: {', '.join(sorted(labels))})"
                    )
        return self

    def case_source(self, index: int) -> tuple[str | None, int | None]:
        """The file and line where case `index` is written (the YAML or its JSONL file)."""
        if self._case_sources is not None and index < len(self._case_sources):
            return self._case_sources[index]
        return self.source_path, self.line_of("cases", index)


# --- project config --------------------------------------------------------------


class Paths(_Model):
    prompts: str = "prompts"
    evalsets: str = "evalsets"
    runs: str = ".agent-evals/runs"


class RunDefaults(_Model):
    provider: str | None = None
    concurrency: int = Field(default=8, ge=1, le=MAX_CONCURRENCY)
    timeout_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(
        default=10,
        ge=1,
        le=20,
        description="Attempts per call on 5xx, timeouts and connection errors (429/529 are bounded by retry_deadline_s).",
    )
    initial_backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    retry_deadline_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a rate-limited (429/529) call keeps being retried, from its first attempt.",
    )
    max_cost_usd: float | None = Field(
        default=None, gt=0, description="Cost ceiling of one run (--max-cost)."
    )
    cache: bool = Field(default=True, description="Reuse responses for identical requests (--no-cache).")


def _provider_types() -> list[str]:
    from agent_evals.providers import PROVIDERS

    return sorted(PROVIDERS)


def _provider_type_enum(schema: dict[str, Any]) -> None:
    # Read when the schema is generated, so it lists the registry as it is then.
    schema["enum"] = _provider_types()


class ProviderConfig(_Model):
    type: str = Field(
        description="A provider type registered in agent_evals.providers.PROVIDERS.",
        json_schema_extra=_provider_type_enum,
    )
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None,
        description="Name of the environment variable with the key; null or '' for a server that needs none.",
    )
    target: str | None = Field(default=None, description="module:function, for type python.")
    headers: dict[str, str] = Field(default_factory=dict)
    rpm: int | None = Field(default=None, gt=0, description="Requests per minute this provider allows.")
    tpm: int | None = Field(default=None, gt=0, description="Tokens per minute this provider allows.")
    max_concurrency: int | None = Field(
        default=None, gt=0, le=MAX_CONCURRENCY, description="Most calls in flight to this provider."
    )

    @field_validator("type")
    @classmethod
    def _registered(cls, value: str) -> str:
        types = _provider_types()
        if value not in types:
            raise PydanticCustomError(
                "provider_type", "unknown provider type", {"hint": f"use one of: {', '.join(types)}"}
            )
        return value


class Price(_Model):
    """A model's price in USD per million tokens; overrides genai-prices for that model name."""

    input_per_mtok: float = Field(ge=0, description="USD per million uncached input tokens.")
    output_per_mtok: float = Field(ge=0, description="USD per million output tokens.")
    cache_read_per_mtok: float | None = Field(
        default=None,
        ge=0,
        description="USD per million input tokens read from the prompt cache (default: input).",
    )
    cache_write_per_mtok: float | None = Field(
        default=None,
        ge=0,
        description="USD per million input tokens written to the prompt cache (default: input).",
    )


class ReadinessPolicy(_Model):
    """What `agent-evals readiness` asks of a production prompt."""

    min_cases: int = Field(default=50, ge=1, description="An eval set smaller than this is not ready.")


class HistoryConfig(_Model):
    """Where `run`, `diff` and `ci` record what they did (agent_evals.history)."""

    url: str | None = Field(
        default=None,
        description="The history database: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB "
        "(AGENT_EVALS_HISTORY_URL wins; default: .agent-evals/history.sqlite3 under the project root).",
    )


class AlertChannel(_Model):
    """Where a page goes: PagerDuty's Events API v2, or a webhook taking Slack-compatible JSON.

    Secrets never live in the file: the routing key and the webhook URL (Slack's carries its
    token) are named by the environment variables that hold them.
    """

    type: Literal["pagerduty", "webhook"]
    routing_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="pagerduty: the environment variable holding the integration's routing key "
        "(default PAGERDUTY_ROUTING_KEY).",
    )
    url_env: str | None = Field(
        default=None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="webhook: the environment variable holding the webhook URL.",
    )
    url: str | None = Field(
        default=None,
        description="pagerduty: the Events API endpoint (default https://events.pagerduty.com/v2/enqueue; "
        "EU accounts: https://events.eu.pagerduty.com/v2/enqueue). Never a credential.",
    )


class AlertsConfig(_Model):
    """Who is paged when `monitor` or `verify` finds a significant drop: a prompt's `owner.oncall`
    is routed to channels by name, else to the default channels."""

    channels: dict[str, AlertChannel] = Field(default_factory=dict, description="Channels by name.")
    routes: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="A prompt's owner.oncall (e.g. pagerduty:support-primary) to the channels that page it.",
    )
    default: tuple[str, ...] = Field(default=(), description="Channels for an on-call with no route.")

    @model_validator(mode="after")
    def _known_channels(self) -> AlertsConfig:
        named = [*self.default, *(c for channels in self.routes.values() for c in channels)]
        unknown = sorted({c for c in named if c not in self.channels})
        if unknown:
            known = ", ".join(sorted(self.channels)) or "none yet"
            raise PydanticCustomError(
                "alert_channel",
                "routes or default name undefined channel(s): {unknown}",
                {
                    "unknown": ", ".join(unknown),
                    "hint": f"define them under alerts.channels (defined: {known})",
                },
            )
        return self


class ProjectConfig(_Sourced):
    schema_version: Literal[1] = 1
    paths: Paths = Field(default_factory=Paths)
    defaults: RunDefaults = Field(default_factory=RunDefaults)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)
    gate: GatePolicy | None = Field(default=None, description="Defaults for every eval set's gate policy.")
    calibration: CalibrationPolicy | None = Field(
        default=None, description="Defaults for every eval set's judge calibration floors."
    )
    readiness: ReadinessPolicy = Field(default_factory=ReadinessPolicy)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
