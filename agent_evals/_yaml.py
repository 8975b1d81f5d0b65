"""All YAML goes through here: safe loading that keeps line numbers.

Mappings load as `MarkedDict` and sequences as `MarkedList`, plain `dict` and
`list` subclasses that remember the 1-based line of each key or item, so a
schema error deep inside a file can still name the line it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from agent_evals.errors import ConfigError


class MarkedDict(dict[Any, Any]):
    """A mapping that knows the line of each of its keys and values."""

    line: int = 0
    key_lines: dict[Any, int]
    value_lines: dict[Any, int]


class MarkedList(list[Any]):
    """A sequence that knows the line of each of its items."""

    line: int = 0
    item_lines: list[int]


def _scalar_start(node: yaml.Node) -> int:
    # A block scalar (`|` or `>`) starts its text on the line after the indicator.
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        line += 1
    return line


# libyaml's parser when it is there (about 9x faster: pre-commit validates on every commit),
# with our own safe constructors either way.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """A safe loader whose containers carry line marks; never constructs objects."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> MarkedDict:
        self.flatten_mapping(node)
        result = MarkedDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        result.value_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConfigError(
                    "mapping keys must be plain scalars",
                    path=self.name,
                    line=key_node.start_mark.line + 1,
                    hint="quote the key",
                )
            if key in result:
                raise ConfigError(
                    f"duplicate key {key!r}",
                    path=self.name,
                    line=key_node.start_mark.line + 1,
                    hint=f"{key!r} is already set on line {result.key_lines[key]}; keep one",
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
            result.value_lines[key] = _scalar_start(value_node)
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> MarkedList:
        result = MarkedList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [_scalar_start(child) for child in node.value]
        return result


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> MarkedDict:
    return loader.construct_mapping(node)


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> MarkedList:
    return loader.construct_sequence(node)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def loads(text: str, path: str | Path) -> Any:
    """Parse YAML text safely, keeping line marks; errors become ConfigError."""
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"not valid YAML: {problem}",
            path=path,
            line=line,
            hint="check indentation and quoting near this line",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path=path, hint="fix the YAML syntax") from None
    finally:
        loader.dispose()


def load_mapping(path: Path, text: str | None = None) -> MarkedDict:
    """Load a YAML file whose top level must be a mapping."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text", path=path, line=1, hint="save the file as UTF-8") from None
        except OSError as exc:
            raise ConfigError(f"cannot read file: {exc.strerror}", path=path) from None
    data = loads(text, path)
    if data is None:
        raise ConfigError("file is empty", path=path, line=1, hint="add a mapping with at least an 'id' key")
    if not isinstance(data, MarkedDict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise ConfigError(
            f"top level is {kind}, expected a mapping",
            path=path,
            line=1,
            hint="write 'key: value' pairs at the top level",
        )
    return data


def line_of(data: Any, loc: Sequence[int | str]) -> int | None:
    """The line of the deepest element of `loc` that `data` has a mark for."""
    line: int | None = getattr(data, "line", None) or None
    node = data
    for part in loc:
        if isinstance(node, MarkedDict) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, MarkedList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def value_line(data: Any, loc: Sequence[int | str]) -> int | None:
    """The line where the value at `loc` starts (for block scalars, its first text line)."""
    if not loc:
        return getattr(data, "line", None)
    parent_loc, last = loc[:-1], loc[-1]
    node = data
    for part in parent_loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return line_of(data, loc)
    if isinstance(node, MarkedDict) and last in node:
        return node.value_lines.get(last)
    if isinstance(node, MarkedList) and isinstance(last, int) and 0 <= last < len(node):
        return node.item_lines[last]
    return line_of(data, loc)


def dump(data: Any) -> str:
    """Dump plain data as block-style YAML, keys in the order given."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
