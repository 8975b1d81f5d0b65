"""`json_schema`: the parsed output validates against a JSON Schema.

The schema is the grader's own (`schema:` inline) or, without one, the
prompt's declared `output.schema`. `jsonschema` is imported only when a schema
is checked or used, so `agent-evals --help` and `validate` stay fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from agent_evals import _jobclock, _json
from agent_evals._regex import PatternError, compile_pattern
from agent_evals.errors import ConfigError, GraderError
from agent_evals.graders import base
from agent_evals.graders._common import cannot_read
from agent_evals.graders.base import Grade, GraderBase, Sample

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

    from agent_evals.models import Prompt

_SHOWN_ERRORS = 3
_KEPT_ERRORS = 20
_MESSAGE_LIMIT = 120


JSON_SCHEMA_HELP = "see https://json-schema.org/understanding-json-schema/"
NO_FETCH = (
    "point it inside the schema, such as '#/$defs/name': agent-evals never fetches a schema from a URL "
    "or a file"
)
_DIALECT = "give a dialect URI, such as https://json-schema.org/draft/2020-12/schema, or leave it out"


@dataclass(frozen=True)
class SchemaProblem:
    """Why a schema from a file cannot check values (`schema_problem`)."""

    kind: Literal["metaschema", "invalid", "unusable"]
    """`metaschema`: not valid under its draft's metaschema; `invalid`: a `$schema` that is not a
    string, or a reference that does not resolve; `unusable`: it runs away on a value (`unusable`)."""
    detail: str
    hint: str
    where: str | None = None
    """For `metaschema`, the JSON path of the part at fault (None: the schema root)."""

    def text(self) -> str:
        """One line for `check_schema`'s ValueError (a grader's options, a recorded call)."""
        if self.kind == "metaschema":
            return f"invalid JSON Schema at {self.where or 'the schema root'}: {self.detail}"
        if self.kind == "invalid":
            return f"invalid JSON Schema: {self.detail} ({self.hint})"
        return f"unusable JSON Schema: it {self.detail} ({self.hint})"


def schema_problem(schema: dict[str, Any]) -> tuple[BoundedSchema | None, SchemaProblem | None]:
    """A file's schema checked before it checks values: its `$schema` a string, valid under that
    draft's metaschema, every reference resolving inside it (nothing is fetched), and no value of a
    JSON type running away on it (`unusable`). The schema ready to use, or why it is not."""
    from jsonschema.exceptions import SchemaError

    draft = _draft(schema)
    if draft is None:
        # (jsonschema checks a schema of an unknown dialect under the latest draft, warning that it
        # will refuse it: refused here now, in one line.)
        dialect = schema["$schema"]
        what = (
            f"$schema {_shorten(repr(dialect))} is not a draft of JSON Schema"
            if isinstance(dialect, str)
            else f"$schema is {_shorten(json.dumps(dialect))}, not a string"
        )
        return None, SchemaProblem("invalid", what, _DIALECT)
    try:
        draft.check_schema(schema)
    except SchemaError as exc:
        where = exc.json_path if exc.path else None
        return None, SchemaProblem("metaschema", exc.message, JSON_SCHEMA_HELP, where)
    bounded = BoundedSchema(schema)
    unresolved = _unresolved(schema, bounded)
    if unresolved is not None:
        return None, SchemaProblem("invalid", unresolved, NO_FETCH)
    problem = unusable(bounded)
    if problem is not None:
        return None, SchemaProblem("unusable", problem, FLATTEN)
    return bounded, None


def _draft(schema: dict[str, Any]) -> type[Validator] | None:
    """The draft `schema` is written in: its `$schema`'s (http and https taken alike: the drafts'
    own URIs mix them, and authors do), 2020-12 without one; None for a `$schema` naming no draft."""
    from jsonschema.validators import Draft202012Validator, validator_for

    if "$schema" not in schema:
        return Draft202012Validator
    dialect = schema["$schema"]
    if not isinstance(dialect, str):
        return None
    scheme, sep, rest = dialect.partition("://")
    other = {"http": "https", "https": "http"}.get(scheme)
    for uri in (dialect, f"{other}{sep}{rest}" if other else None):
        if uri is not None:
            found = validator_for({"$schema": uri}, default=None)  # type: ignore[arg-type]
            if found is not None:
                return found
    return None


def check_schema(schema: dict[str, Any]) -> BoundedSchema:
    """`schema` ready to check values, once `schema_problem` finds nothing wrong with it.

    Raises:
        ValueError: it is not, saying why.
    """
    bounded, problem = schema_problem(schema)
    if problem is not None:
        raise ValueError(problem.text())
    assert bounded is not None
    return bounded


def prompt_schema_errors(prompt: Prompt) -> list[ConfigError]:
    """What is wrong with the JSON Schemas a prompt file declares (its `output.schema` and each
    tool's `parameters`), by `schema_problem`; one located error each. `validate` reports them;
    `run` refuses the prompt with them before anything is sent."""
    declared: list[tuple[str, dict[str, Any] | None, tuple[str | int, ...]]] = [
        ("output schema is", prompt.output.json_schema, ("output", "schema"))
    ]
    declared += [
        (f"the parameters of tool '{tool.name}' are", tool.parameters, ("tools", index, "parameters"))
        for index, tool in enumerate(prompt.tools)
    ]
    errors = []
    for subject, schema, where in declared:
        if schema is None:
            continue
        _, problem = schema_problem(schema)
        if problem is None:
            continue
        message = (
            f"{subject} an unusable JSON Schema: it {problem.detail}"
            if problem.kind == "unusable"
            else f"{subject} not a valid JSON Schema: {problem.detail}"
        )
        errors.append(
            ConfigError(message, path=prompt.source_path, line=prompt.line_of(*where), hint=problem.hint)
        )
    return errors


_PROBES: tuple[Any, ...] = (None, True, 0, "", [], {})
"""One value of each JSON type: a schema that recurses or multiplies does so on at least one."""


def unusable(bounded: BoundedSchema) -> str | None:
    """Why no value could be checked against a schema (valid as a JSON Schema) within the limits, found
    by checking one value of each JSON type: "refers to itself without end on the value null"; else None.
    A `$ref` to itself, or branches that multiply, stop the load (or `validate`) at the schema's line,
    not every case of a run."""
    from agent_evals._regex import PatternTimeout

    for probe in _PROBES:
        try:
            bounded.errors(probe)
        except SchemaTooCostly as exc:
            return f"{exc.what} on the value {json.dumps(probe)}"
        except PatternTimeout:
            continue  # a pattern's own limit, reported where it meets a real value
    return None


_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples"})
"""Keywords whose values are data, not subschemas: a `$ref` key in them is not a reference."""


def _unresolved(schema: dict[str, Any], bounded: BoundedSchema) -> str | None:
    """The first `$ref` (or `$dynamicRef`, `$recursiveRef`) of `schema` that does not resolve inside it,
    as "$ref 'other.json' at $.properties.a does not resolve"; else None. Found by walking the schema,
    so a reference no probe value reaches is found too."""
    from referencing.exceptions import Unresolvable

    resolver, specification = bounded.resolver()

    def walk(node: Any, resolver: Any, path: str) -> str | None:
        if isinstance(node, dict):
            resolver = resolver.in_subresource(specification.create_resource(node))
            for keyword in ("$ref", "$dynamicRef", "$recursiveRef"):
                ref = node.get(keyword)
                if isinstance(ref, str):
                    try:
                        resolver.lookup(ref)
                    except Unresolvable:
                        return f"{keyword} {_shorten(repr(ref))} at {path} does not resolve"
            items = [(key, value) for key, value in node.items() if key not in _DATA_KEYWORDS]
            return next((f for k, v in items if (f := walk(v, resolver, _child(path, k))) is not None), None)
        if isinstance(node, list):
            return next(
                (f for i, v in enumerate(node) if (f := walk(v, resolver, f"{path}[{i}]")) is not None), None
            )
        return None

    try:
        return walk(schema, resolver, "$")
    except RecursionError:
        return None  # nested past Python's stack: the probes report it


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"


def _schema_or_none(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is not None:
        check_schema(schema)
    return schema


SchemaOption = Annotated[dict[str, Any] | None, AfterValidator(_schema_or_none)]
"""An inline JSON Schema option, checked when the options load (a broken schema is a load error)."""


class JsonSchemaOptions(base.Options):
    """Options of `json_schema`."""

    # Aliased because a field named `schema` shadows a (deprecated) BaseModel method.
    json_schema: SchemaOption = Field(
        default=None,
        alias="schema",
        description="An inline JSON Schema; default: the prompt's output.schema.",
    )


SCHEMA_STEPS = 200_000
"""Keywords one check of one value against a schema may evaluate. Schemas come from prompt and eval
set files: `anyOf`, `oneOf`, `allOf` and `$ref`s that branch on the same value multiply, and thirty
small `$defs` that each refer twice to the next take 2^30 steps, hours for one case."""
SCHEMA_SECONDS = 2.0
"""The backstop for slow steps, as for a template render."""
STRIKES = 5
"""Checks over the limits after which a schema is not used again: one that runs away on five values
would on the next 10,000, seconds each."""


FLATTEN = (
    "anyOf, oneOf, allOf and $ref that branch on the same value multiply, and a $ref to itself never ends; "
    "flatten the schema"
)


class SchemaTooCostly(GraderError):
    """A check of a value against a schema that went over `SCHEMA_STEPS` or `SCHEMA_SECONDS`, or
    recursed without end (a `$ref` to itself), or one not run after `STRIKES` of those."""

    def __init__(self, what: str, *, strikes: int = 0, spent: float | None = None) -> None:
        self.what = what
        if spent is not None:
            said = (
                f"{what} {spent:.3g} s on this run's values already, over the limit of "
                f"{_jobclock.JOB_SECONDS:g} s for a prompt on an eval set, so it is not used again"
            )
        elif strikes:
            said = f"{what} on {strikes} values already, so it is not used again"
        else:
            said = f"{what} on this value"
        super().__init__(f"the JSON Schema {said} ({FLATTEN})")


class _Steps:
    """The steps and deadline of one check (in a ContextVar while `BoundedSchema.errors` runs)."""

    __slots__ = ("deadline", "left")

    def __init__(self) -> None:
        self.left = SCHEMA_STEPS
        self.deadline = time.monotonic() + SCHEMA_SECONDS

    def tick(self) -> None:
        self.left -= 1
        # The clock is read every 1,024 steps: a step is one keyword on one value.
        if not self.left & 1023:
            if self.left <= 0:
                raise SchemaTooCostly(f"takes more than {SCHEMA_STEPS:,} steps")
            if time.monotonic() > self.deadline:
                raise SchemaTooCostly(f"takes more than {SCHEMA_SECONDS:g} s")


_STEPS: ContextVar[_Steps | None] = ContextVar("agent_evals_schema_steps", default=None)


def _counted(keyword: Callable[..., Any]) -> Callable[..., Any]:
    def counted(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        steps = _STEPS.get()
        if steps is not None:
            steps.tick()
        return keyword(validator, value, instance, schema)

    return counted


class BoundedSchema:
    """A JSON Schema from a file, ready to check values within `SCHEMA_STEPS` and `SCHEMA_SECONDS`
    each; after `STRIKES` checks over them, or `_jobclock.JOB_SECONDS` of checks in a job, it is not
    used again. The one way values are checked against file-supplied schemas (outputs, tool
    arguments, recorded calls)."""

    __slots__ = ("_validator", "overruns")

    def __init__(self, schema: dict[str, Any]) -> None:
        from jsonschema.validators import Draft202012Validator, extend
        from referencing import Registry

        # An unknown $schema: the latest draft, as jsonschema does (without its warning); `schema_problem`
        # refuses it before a schema is used.
        base_cls = _draft(schema) or Draft202012Validator
        keywords = {name: _counted(keyword) for name, keyword in base_cls.VALIDATORS.items()}
        # `pattern` and `patternProperties` come from the (untrusted) schema and meet the model's
        # output: matched within agent_evals._regex's time limit, not with `re`, which has none.
        keywords.update(pattern=_counted(_pattern), patternProperties=_counted(_pattern_properties))
        # jsonschema compares items it cannot sort (objects) pairwise, in one uncounted step: 3,000
        # take 7.6 s, 50,000 in a model's output about 35 min. Ours hashes each item once, a step a value.
        keywords.update(uniqueItems=_counted(_unique_items))
        cls = extend(base_cls, keywords)  # type: ignore[no-untyped-call]
        # Check `format` too: a schema author who writes `format: date` means it. A registry of our
        # own, without jsonschema's default retrieval (urlopen, no timeout): a `$ref` to a URL in a
        # pull request's schema does not resolve, and is never fetched.
        self._validator: Validator = cls(schema, format_checker=base_cls.FORMAT_CHECKER, registry=Registry())
        self.overruns = 0

    def resolver(self) -> tuple[Any, Any]:
        """(a `referencing` resolver at the schema's root, its draft's specification), as the validator
        resolves references: the drafts' metaschemas and the schema itself, nothing fetched."""
        from jsonschema_specifications import REGISTRY
        from referencing import Specification
        from referencing.jsonschema import specification_with

        meta = type(self._validator).META_SCHEMA
        dialect = meta.get("$id") or meta.get("id") or "urn:unknown-dialect"
        specification = specification_with(dialect_id=dialect, default=Specification.OPAQUE)
        root = specification.create_resource(self._validator.schema)
        return REGISTRY.resolver_with_root(root), specification

    def errors(self, value: Any) -> list[ValidationError]:
        """Every way `value` breaks the schema, in the schema's keyword order (stable run to run).

        Raises:
            SchemaTooCostly: the check went over the limits, or the schema did before `STRIKES` times,
                or it has taken `_jobclock.JOB_SECONDS` in the current job.
            agent_evals._regex.PatternTimeout: a `pattern` ran past its time limit.
        """
        if self.overruns >= STRIKES:
            raise SchemaTooCostly("went over its limits", strikes=self.overruns)
        clock = _jobclock.current()
        if clock is not None and (spent := clock.over(self)) is not None:
            raise SchemaTooCostly("has taken", spent=spent)
        token = _STEPS.set(_Steps())
        started = time.monotonic()
        try:
            return list(self._validator.iter_errors(value))
        except SchemaTooCostly:
            self.overruns += 1
            raise
        except RecursionError:
            self.overruns += 1
            raise SchemaTooCostly("refers to itself without end") from None
        except Exception as exc:
            from referencing.exceptions import Unresolvable

            if isinstance(exc, Unresolvable):  # `schema_problem` finds these first; the backstop
                raise GraderError(
                    f"the JSON Schema has a reference that does not resolve: {exc} ({NO_FETCH})"
                ) from None
            raise
        finally:
            _STEPS.reset(token)
            if clock is not None:
                clock.charge(self, time.monotonic() - started)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and _search(pattern, instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, properties: dict[str, Any], instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in properties.items():
        for key, value in instance.items():
            if _search(pattern, key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _equality_key(item)
        if key in seen:
            yield ValidationError(f"{instance!r} has non-unique elements")
            return
        seen.add(key)


def _equality_key(value: Any) -> Any:
    """A hashable value equal for two JSON values exactly when JSON Schema holds them equal: objects
    whatever their key order, 1 and 1.0, but not true and 1. One step per value, nested ones too."""
    steps = _STEPS.get()
    if steps is not None:
        steps.tick()
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, Mapping):
        return (5, frozenset((key, _equality_key(item)) for key, item in value.items()))
    if isinstance(value, Sequence):
        return (4, tuple(_equality_key(item) for item in value))
    return (0, value)  # null (and what else hashes)


def _search(pattern: str, text: str) -> Any:
    try:
        compiled = compile_pattern(pattern)
    except PatternError:
        return None  # check_schema reports a pattern that does not compile
    return compiled.search(text)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


class JsonSchema(GraderBase):
    """Pass when the parsed output is valid under the schema; the reason lists the first violations."""

    Options: ClassVar[type[base.Options]] = JsonSchemaOptions
    options: JsonSchemaOptions

    def __init__(self, spec: Any, options: Any) -> None:
        super().__init__(spec, options)
        # Validators are cached per schema text: building one resolves $refs and checks formats.
        self._validators: dict[str, BoundedSchema] = {}

    def _validator_for(self, schema: dict[str, Any], inline: bool) -> BoundedSchema:
        key = json.dumps(schema, sort_keys=True, default=str)
        found = self._validators.get(key)
        if found is None:
            if inline:  # checked when the options loaded
                found = BoundedSchema(schema)
            else:  # the prompt's, checked here
                try:
                    found = check_schema(schema)
                except ValueError as exc:
                    raise GraderError(f"the prompt's output schema is not usable: {exc}") from None
            self._validators[key] = found
        return found

    async def grade(self, sample: Sample) -> Grade:
        """Validate the parsed output against the schema.

        Raises:
            GraderError: there is no schema (neither inline nor from the prompt),
                or the prompt's schema is invalid.
        """
        inline = self.options.json_schema is not None
        schema = self.options.json_schema if inline else sample.output_schema
        if schema is None:
            raise GraderError(
                "json_schema grader has no schema: set 'schema' on the grader or 'output.schema' in the prompt"
            )
        instance, why_not = _parsed(sample)
        if why_not is not None:
            return cannot_read(why_not)
        errors = self._validator_for(schema, inline).errors(instance)
        if not errors:
            return Grade(score=1.0, passed=True, reason="output matches the schema", details={"errors": []})
        found = [{"path": e.json_path, "message": _shorten(e.message)} for e in errors[:_KEPT_ERRORS]]
        shown = "; ".join(f"{e['path']}: {e['message']}" for e in found[:_SHOWN_ERRORS])
        more = f" (and {len(errors) - _SHOWN_ERRORS} more)" if len(errors) > _SHOWN_ERRORS else ""
        count = "1 schema violation" if len(errors) == 1 else f"{len(errors)} schema violations"
        return Grade(
            score=0.0,
            passed=False,
            reason=f"{count}: {shown}{more}",
            details={"errors": found, "error_count": len(errors)},
        )


def _parsed(sample: Sample) -> tuple[Any, str | None]:
    """The output as JSON, or why it is not JSON."""
    if sample.parse_error is not None:
        return None, f"output is not JSON: {sample.parse_error}"
    if sample.parsed is not None:
        return sample.parsed, None
    # A text prompt's output is not parsed by the runner; a literal `null` also lands here.
    try:
        return _json.loads(sample.output), None
    except ValueError as exc:
        return None, f"output is not JSON: {exc}"
