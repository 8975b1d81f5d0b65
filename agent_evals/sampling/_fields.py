"""The field mapping: which field of a logged request feeds which part of a case.

A mapping is `target: source`. Targets are `vars.<path>` (the prompt's input
variables, nested by dots), `expected` or `expected.<path>`, `label` (short for
`expected.<last part of the source>`: `label: resolution.disposition` is
`expected.disposition`), `output` (the production output), `feedback`,
`timestamp`, `cluster` (a conversation or trace id), `tags.<name>`, and `tools`:
a field holding the agent's trajectory, whose tool calls and results become the
case's recorded tool calls (`tools:` on the case, replayed when it runs). The
trajectory is an OpenAI-format message list (`--map tools=messages`: assistant
`tool_calls`, `tool` messages) or OpenTelemetry GenAI spans; with `--format otel`
each row is a trace and `tools` is its spans unless mapped otherwise (see
`agent_evals.sampling._read`). Sources are dotted paths into the row
(`payload.subject`, `messages.1.content`); a CSV column may itself be named
`payload.subject` or hold a JSON object.

The mapping comes from `--map TARGET=SOURCE` flags or a small YAML file:

    schema_version: 1
    map:
      vars.ticket.subject: payload.subject
      label: resolution.disposition
      timestamp: ts
      cluster: conversation_id
    graders:                     # optional; default: exact_match on each expected field
      - {type: exact_match, name: disposition, field: disposition}
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_evals import _yaml
from agent_evals.errors import ConfigError

MISSING: Any = object()
"""A field the row does not have (distinct from an explicit null)."""

SINGLE_TARGETS = ("output", "feedback", "timestamp", "cluster", "tools", "version")
TARGET_HELP = "vars.<name>, expected, expected.<name>, label, output, feedback, timestamp, cluster, tags.<name>, tools, version"
_SPEC_KEYS = ("schema_version", "map", "graders", "text_fields")


@dataclass(frozen=True)
class FieldMap:
    """A parsed mapping; every path is a tuple of its dotted parts.

    Attributes:
        vars: (path under vars, source) pairs; at least one.
        expected: (path under expected, source) pairs; an empty path is the whole value.
        tags: (tag name, source) pairs.
        tools: the field holding the trajectory (messages or spans) whose tool calls are recorded.
    """

    vars: tuple[tuple[tuple[str, ...], str], ...]
    expected: tuple[tuple[tuple[str, ...], str], ...] = ()
    output: str | None = None
    feedback: str | None = None
    timestamp: str | None = None
    cluster: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    tools: str | None = None
    version: str | None = None
    """The prompt version that answered the row (`monitor` never mixes a row into another version)."""

    @classmethod
    def parse(
        cls, mapping: Mapping[str, str], *, lines: Mapping[str, int] | None = None, path: str | None = None
    ) -> FieldMap:
        """Parse `target: source` pairs.

        Args:
            mapping: targets to source paths.
            lines: the line of each target, when the mapping comes from a file (for errors).
            path: the file the mapping comes from, or None for `--map` flags.

        Raises:
            ConfigError: an unknown target, an empty source, two targets that overlap, or no `vars.` target.
        """
        vars_: list[tuple[tuple[str, ...], str]] = []
        expected: list[tuple[tuple[str, ...], str]] = []
        tags: list[tuple[str, str]] = []
        single: dict[str, str] = {}

        def fail(target: str, message: str, hint: str) -> ConfigError:
            where = path if path is not None else None
            line = (lines or {}).get(target)
            prefix = "" if path is not None else "--map: "
            return ConfigError(prefix + message, path=where, line=line, hint=hint)

        for target, source in mapping.items():
            if not isinstance(source, str) or not source.strip():
                raise fail(target, f"'{target}' maps to no field", "give the dotted path of a log field")
            source = source.strip()
            head, _, rest = target.partition(".")
            parts = tuple(rest.split(".")) if rest else ()
            if any(not p for p in parts):
                raise fail(
                    target,
                    f"target '{target}' has an empty part",
                    "write dotted names, e.g. vars.ticket.subject",
                )
            if head == "vars" and parts:
                vars_.append((parts, source))
            elif head == "expected":
                expected.append((parts, source))
            elif target == "label":
                expected.append(((source.split(".")[-1],), source))
            elif head == "tags" and len(parts) == 1:
                tags.append((parts[0], source))
            elif target in SINGLE_TARGETS:
                single[target] = source
            else:
                close = difflib.get_close_matches(
                    target, ["vars.", "expected", "label", *SINGLE_TARGETS, "tags."], n=1
                )
                hint = f"did you mean '{close[0]}'?" if close else f"targets: {TARGET_HELP}"
                raise fail(target, f"unknown mapping target '{target}'", hint)
        for group, name in ((vars_, "vars"), (expected, "expected")):
            paths = sorted(p for p, _ in group)
            for a, b in itertools.pairwise(paths):
                if b[: len(a)] == a:
                    first, second = ".".join((name, *a)), ".".join((name, *b))
                    raise fail(
                        second if len(b) else first,
                        f"'{first}' and '{second}' overlap",
                        "map either the whole object or its fields, not both",
                    )
        if not vars_:
            raise fail(
                "",
                "no input variables are mapped",
                "map at least one, e.g. vars.ticket.subject=payload.subject",
            )
        return cls(
            vars=tuple(vars_),
            expected=tuple(expected),
            tags=tuple(tags),
            output=single.get("output"),
            feedback=single.get("feedback"),
            timestamp=single.get("timestamp"),
            cluster=single.get("cluster"),
            tools=single.get("tools"),
            version=single.get("version"),
        )

    def sources(self) -> dict[str, str]:
        """Every mapped source, with the target it feeds (the first, when several share one)."""
        out: dict[str, str] = {}
        for parts, source in self.vars:
            out.setdefault(source, ".".join(("vars", *parts)))
        for parts, source in self.expected:
            out.setdefault(source, ".".join(("expected", *parts)))
        for name in SINGLE_TARGETS:
            source = getattr(self, name)
            if source is not None:
                out.setdefault(source, name)
        for name, source in self.tags:
            out.setdefault(source, f"tags.{name}")
        return out

    def aliases(self) -> dict[str, str]:
        """Short names for mapped fields (the last part of a target), for `--query` and `--stratify-by`.

        A short name two targets share is left out; the full target always works.
        """
        names: dict[str, list[str]] = {}
        for parts, source in (*self.vars, *self.expected):
            if parts:
                names.setdefault(parts[-1], []).append(source)
        for name, source in self.tags:
            names.setdefault(name, []).append(source)
        out = {name: sources[0] for name, sources in names.items() if len(set(sources)) == 1}
        for name in SINGLE_TARGETS:
            source = getattr(self, name)
            if source is not None:
                out[name] = source
        if self.expected and len(self.expected) == 1:
            out["label"] = self.expected[0][1]
        for parts, source in self.vars:
            out[".".join(("vars", *parts))] = source
        for parts, source in self.expected:
            out[".".join(("expected", *parts))] = source
        for name, source in self.tags:
            out[f"tags.{name}"] = source
        return out

    @property
    def expected_fields(self) -> list[str]:
        """The top-level fields of `expected`, in mapping order (empty when the whole value is mapped)."""
        out: list[str] = []
        for parts, _ in self.expected:
            if parts and parts[0] not in out:
                out.append(parts[0])
        return out


@dataclass(frozen=True)
class SampleSpec:
    """What a mapping file holds: the mapping, and optionally graders and similarity fields."""

    mapping: dict[str, str]
    lines: dict[str, int] = field(default_factory=dict)
    path: str | None = None
    graders: tuple[dict[str, Any], ...] | None = None
    text_fields: tuple[str, ...] = ()


def _flatten_map(data: Any, prefix: str, out: dict[str, str], lines: dict[str, int], path: Path) -> None:
    for key, value in data.items():
        target = f"{prefix}{key}"
        line = data.key_lines.get(key) if isinstance(data, _yaml.MarkedDict) else None
        if isinstance(value, dict):
            _flatten_map(value, f"{target}.", out, lines, path)
        elif isinstance(value, str):
            out[target] = value
            if line is not None:
                lines[target] = line
        else:
            raise ConfigError(
                f"'map.{target}' must be a field path, got {type(value).__name__}",
                path=path,
                line=line,
                hint="write the dotted path of a log field, e.g. payload.subject",
            )


def load_spec(path: Path) -> SampleSpec:
    """Read a mapping file (see the module docstring).

    Raises:
        ConfigError: not YAML, an unknown key, or a malformed mapping, naming the line.
    """
    data = _yaml.load_mapping(path)
    for key in data:
        if key not in _SPEC_KEYS:
            close = difflib.get_close_matches(str(key), _SPEC_KEYS, n=1)
            raise ConfigError(
                f"unknown key '{key}'",
                path=path,
                line=data.key_lines.get(key),
                hint=f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(_SPEC_KEYS)}",
            )
    if data.get("schema_version", 1) != 1:
        raise ConfigError(
            f"unsupported schema_version {data['schema_version']!r}",
            path=path,
            line=data.key_lines.get("schema_version"),
            hint="use schema_version: 1",
        )
    raw = data.get("map")
    if not isinstance(raw, dict):
        raise ConfigError(
            "missing 'map'" if raw is None else "'map' must be a mapping of target: source",
            path=path,
            line=data.key_lines.get("map", 1),
            hint="e.g. map: {vars.ticket.subject: payload.subject, label: resolution.disposition}",
        )
    mapping: dict[str, str] = {}
    lines: dict[str, int] = {}
    _flatten_map(raw, "", mapping, lines, path)
    graders = data.get("graders")
    if graders is not None and (
        not isinstance(graders, list) or not graders or not all(isinstance(g, dict) for g in graders)
    ):
        raise ConfigError(
            "'graders' must be a non-empty list of grader entries",
            path=path,
            line=data.key_lines.get("graders"),
            hint="e.g. graders: [{type: exact_match, name: disposition, field: disposition}]",
        )
    text_fields = data.get("text_fields", [])
    if not isinstance(text_fields, list) or not all(isinstance(t, str) for t in text_fields):
        raise ConfigError(
            "'text_fields' must be a list of vars paths",
            path=path,
            line=data.key_lines.get("text_fields"),
            hint="e.g. text_fields: [ticket.subject, ticket.body]",
        )
    FieldMap.parse(mapping, lines=lines, path=str(path))
    return SampleSpec(
        mapping=mapping,
        lines=lines,
        path=str(path),
        graders=tuple(_plain(g) for g in graders) if graders is not None else None,
        text_fields=tuple(text_fields),
    )


def _plain(value: Any) -> Any:
    """Marked YAML containers as plain dicts and lists (for dumping)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse_map_args(pairs: Sequence[str]) -> dict[str, str]:
    """`TARGET=SOURCE` flags as a mapping.

    Raises:
        ConfigError: a flag without `=`.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise ConfigError(
                f"--map {pair!r} is not TARGET=SOURCE", hint="e.g. --map vars.ticket.subject=payload.subject"
            )
        out[target.strip()] = source.strip()
    return out


# --- reading fields from rows ------------------------------------------------------


def get_field(row: Any, path: str) -> Any:
    """The value at dotted `path` in a row, or MISSING.

    A key may itself contain dots (a CSV column `payload.subject`), list items
    are addressed by number (`messages.0.content`), and a string holding a JSON
    object or list is read as JSON when the path goes on into it.
    """
    return getter(path)(row)


def getter(path: str) -> Callable[[Any], Any]:
    """`get_field` for one path, fast on plain nested dicts (it runs on every row of the log)."""
    parts = tuple(path.split("."))
    slow = list(parts)

    def get(row: Any) -> Any:
        if type(row) is dict and path in row:
            return row[path]
        node = row
        for part in parts:
            if type(node) is dict and part in node:
                node = node[part]
            else:
                return _get(row, slow)
        return node

    return get


def _get(node: Any, parts: list[str]) -> Any:
    if not parts:
        return node
    if isinstance(node, str) and node[:1] in ("{", "["):
        try:
            node = json.loads(node)
        except ValueError:
            return MISSING
    if isinstance(node, dict):
        # The longest key first: a column literally named `a.b` wins over `a` -> `b`.
        for cut in range(len(parts), 0, -1):
            key = ".".join(parts[:cut])
            if key in node:
                found = _get(node[key], parts[cut:])
                if found is not MISSING:
                    return found
        return MISSING
    if isinstance(node, list) and parts[0].lstrip("-").isdigit():
        index = int(parts[0])
        if -len(node) <= index < len(node):
            return _get(node[index], parts[1:])
    return MISSING


def flat_keys(row: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths of a row's fields (for "did you mean" hints)."""
    out: list[str] = []
    for key, value in row.items():
        if isinstance(value, dict):
            out.extend(flat_keys(value, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}")
    return out


def is_missing(value: Any) -> bool:
    """Absent, null, or a float NaN (a CSV's empty cell)."""
    return value is MISSING or value is None or (isinstance(value, float) and math.isnan(value))


def expected_value(pairs: Iterable[tuple[tuple[str, ...], Any]]) -> Any:
    """A case's expected value from the mapped (path under expected, value) pairs: an empty path is
    the whole value, the others fields of a mapping."""
    expected: Any = None
    for parts, value in pairs:
        if not parts:
            expected = value
        else:
            expected = expected if isinstance(expected, dict) else {}
            set_path(expected, parts, value)
    return expected


def set_path(target: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value
