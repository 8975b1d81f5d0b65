"""All YAML goes through here: safe loading that keeps line numbers.

Mappings load as `MarkedDict` and sequences as `MarkedList`, plain `dict` and
`list` subclasses that remember the 1-based line of each key or item, so a
schema error deep inside a file can still name the line it is about.

Hostile or broken files end in a located ConfigError, in bounded time and memory:
a file over `MAX_YAML_BYTES` is refused before parsing, collections nested over
`MAX_DEPTH` deep and aliases that repeat more than `MAX_YAML_BYTES` of data are
refused before any value is built, and values PyYAML cannot build (an integer
too long to print, an impossible date) name their line.
"""

from __future__ import annotations

import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from agent_evals._json import lone_surrogate
from agent_evals.errors import ConfigError

MAX_YAML_BYTES = 8 * 1024 * 1024
"""The largest YAML file read (8 MB). PyYAML builds a node and then an object per value, about
40 times the text in memory and 0.7 s per MB: a 50 MB eval set took 35 s and 2.2 GB before
any error. Large case sets belong in a `cases_file:` (JSON Lines, a line per case)."""

MAX_DEPTH = 100
"""How deep collections may nest, in a YAML file or a line of a cases file. Deeper values
overflow Python's stack when they are built, validated, hashed or rendered (a few hundred
levels, less under a deep call stack); no prompt, case or config comes near 100."""

_MB = 1024 * 1024


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
# libyaml reports a bad character's position in bytes of the UTF-8 text, PyYAML's reader in characters.
_POSITION_IN_BYTES = _Base is not yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
_SCALAR_NAMES = {"int": "an integer", "float": "a number", "bool": "a boolean", "timestamp": "a date"}


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """A safe loader whose containers carry line marks; never constructs objects."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return super().construct_object(node, deep)
        try:
            return super().construct_object(node, deep)
        # PyYAML's scalar constructors fail this way on a value its tag cannot hold
        # (`!!int x`, `!!bool x`, `!!timestamp x`, `2020-02-30`).
        except (ValueError, KeyError, AttributeError, OverflowError) as exc:
            tag = node.tag.removeprefix(_TAG)
            kind = _SCALAR_NAMES.get(tag, tag)
            detail = f": {exc}" if isinstance(exc, ValueError) else ""
            raise ConfigError(
                f"cannot read {_clip(node.value)} as {kind}{detail}",
                path=self.name,
                line=node.start_mark.line + 1,
                hint="fix the value, or quote it to keep it as text",
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> MarkedDict:
        # An explicit `!!map` or `!!set` on a list or a scalar: PyYAML's own code assumes a mapping.
        self._expect(node, yaml.MappingNode, "a mapping")
        merges = sum(key.tag == _TAG + "merge" for key, _ in node.value)
        own = len(node.value) - merges
        self.flatten_mapping(node)
        # `<<: *base` puts base's pairs first; the mapping's own keys override them, as YAML says.
        merged = len(node.value) - own
        own_keys: set[Any] = set()
        result = MarkedDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        result.value_lines = {}
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConfigError(
                    "mapping keys must be plain scalars",
                    path=self.name,
                    line=key_node.start_mark.line + 1,
                    hint="quote the key",
                )
            if index >= merged:
                if key in own_keys:
                    raise ConfigError(
                        f"duplicate key {key!r}",
                        path=self.name,
                        line=key_node.start_mark.line + 1,
                        hint=f"{key!r} is already set on line {result.key_lines[key]}; keep one",
                    )
                own_keys.add(key)
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
            result.value_lines[key] = _scalar_start(value_node)
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> MarkedList:
        self._expect(node, yaml.SequenceNode, "a list")
        result = MarkedList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [_scalar_start(child) for child in node.value]
        return result

    def _expect(self, node: yaml.Node, kind: type[yaml.Node], name: str) -> None:
        if not isinstance(node, kind):
            raise ConfigError(
                f"{node.tag.removeprefix(_TAG)} must be {name}",
                path=self.name,
                line=node.start_mark.line + 1,
                hint="fix the value, or drop the '!!' tag",
            )


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> MarkedDict:
    return loader.construct_mapping(node)


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> MarkedList:
    return loader.construct_sequence(node)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    # Python refuses to print (so to hash, save or show) an int over this many digits, and
    # reading a long `1:2:3...` (base 60) literal takes quadratic time: refuse long literals
    # before converting, and converted values (hex, binary) that cannot be printed.
    limit = sys.get_int_max_str_digits() or sys.int_info.default_max_str_digits
    text = loader.construct_scalar(node).replace("_", "")
    value: int | None = None
    if len(text.lstrip("+-")) <= limit:
        value = loader.construct_yaml_int(node)
        if value.bit_length() > 3 * limit:  # fewer bits cannot make `limit` digits (3.32 bits a digit)
            try:
                str(value)
            except ValueError:
                value = None
    if value is None:
        raise ConfigError(
            f"integer with more than {limit} digits",
            path=loader.name,
            line=node.start_mark.line + 1,
            hint="quote it to keep it as text",
        )
    return value


_Loader.add_constructor(_TAG + "map", _construct_map)
_Loader.add_constructor(_TAG + "seq", _construct_seq)
_Loader.add_constructor(_TAG + "int", _construct_int)


def _clip(text: str, width: int = 40) -> str:
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _check_shape(root: yaml.Node, path: str | Path) -> None:
    """Refuse what would exhaust the stack or memory once built, before building anything.

    One iterative walk of the node graph with one result per collection node: an
    alias is the same node met again, so a "billion laughs" document is measured,
    not expanded. About a third of the time construction then takes.

    Raises:
        ConfigError: collections nested over MAX_DEPTH deep, aliases repeating over
            MAX_YAML_BYTES of text, or an alias inside the collection it names (built, it would
            never end; walked, it looped forever).
    """
    weight: dict[int, int] = {}  # characters a collection stands for, aliases expanded
    height: dict[int, int] = {}  # collections nested in it, itself included
    reached: set[int] = set()  # nodes an edge already led to: any further edge is an alias
    entered: set[int] = set()  # collections whose children are being walked: the current path
    repeated = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if not children_done:
            if key in entered and key not in weight:
                raise ConfigError(
                    "an alias refers to a collection that contains it (a structure with no end)",
                    path=path,
                    line=node.start_mark.line + 1,
                    hint="an '*alias' may repeat a value, not the collection it sits in: write the data out",
                )
            if key not in weight:
                entered.add(key)
                stack.append((node, True))
                stack.extend((child, False) for child in children if not isinstance(child, yaml.ScalarNode))
            continue
        total, tallest = 1, 0
        for child in children:
            child_key = id(child)
            if isinstance(child, yaml.ScalarNode):
                size = len(child.value) + 1
                if not child.value.isascii() and lone_surrogate(child.value):
                    raise ConfigError(
                        "a \\u escape of half a surrogate pair, which no UTF-8 text can hold",
                        path=path,
                        line=child.start_mark.line + 1,
                        hint="write the character itself, or both halves of its \\u escape pair",
                    )
            else:  # walked before this node (an alias of an ancestor is refused above)
                size = weight[child_key]
                tallest = max(tallest, height[child_key])
            total += size
            if child_key in reached:
                repeated += size
            else:
                reached.add(child_key)
        weight[key], height[key] = total, tallest + 1
        if repeated > MAX_YAML_BYTES:
            raise ConfigError(
                f"aliases repeat more than {MAX_YAML_BYTES // _MB} MB of data",
                path=path,
                line=node.start_mark.line + 1,
                hint="each '*alias' copies its anchored value: write the data out, or alias less of it",
            )
    if height.get(id(root), 0) > MAX_DEPTH:
        # Down the tallest children to the collection nested MAX_DEPTH + 1 deep: the line to show.
        node = root
        for _ in range(MAX_DEPTH):
            node = max(_children(node), key=lambda child: height.get(id(child), 0))
        raise ConfigError(
            f"collections nested more than {MAX_DEPTH} deep",
            path=path,
            line=node.start_mark.line + 1,
            hint="flatten the data",
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def loads(text: str, path: str | Path) -> Any:
    """Parse YAML text safely, keeping line marks; errors become ConfigError.

    Raises:
        ConfigError: the text is over MAX_YAML_BYTES, is not valid YAML, nests or
            repeats (by aliases) too much, or holds a value that cannot be read.
    """
    if len(text) > MAX_YAML_BYTES // 4:  # only then can the UTF-8 text be over the limit
        _check_size(len(text.encode("utf-8", "surrogatepass")), path)
    loader = _Loader(text)
    loader.name = str(path)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_shape(node, path)
        return loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise ConfigError(
            f"not valid YAML: unacceptable character #x{exc.character:04x}: {exc.reason}",
            path=path,
            line=_line_at(text, exc.position),
            hint=f'remove it, or write it as "{_escape(exc.character)}" in a double-quoted string',
        ) from None
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
    except RecursionError:
        # PyYAML's own (pure Python) parser recurses per level; libyaml stops at 1,000 levels itself.
        mark = loader.get_mark() if hasattr(loader, "get_mark") else None
        raise ConfigError(
            f"collections nested more than {MAX_DEPTH} deep",
            path=path,
            line=mark.line + 1 if mark is not None else None,
            hint="flatten the data",
        ) from None
    finally:
        loader.dispose()


def _line_at(text: str, position: int) -> int:
    if _POSITION_IN_BYTES:
        return text.encode("utf-8", "surrogatepass")[:position].count(b"\n") + 1
    return text.count("\n", 0, position) + 1


def _escape(char: int) -> str:
    return f"\\x{char:02x}" if char < 0x100 else f"\\u{char:04x}" if char < 0x10000 else f"\\U{char:08x}"


def _check_size(size: int, path: str | Path) -> None:
    if size > MAX_YAML_BYTES:
        raise ConfigError(
            f"file is {size / _MB:.1f} MB; YAML files are limited to {MAX_YAML_BYTES // _MB} MB",
            path=path,
            hint="move the cases to a JSON Lines file and name it with 'cases_file:'",
        )


def read_text(path: Path, *, max_bytes: int | None = None) -> str:
    """A file's UTF-8 text, or a ConfigError that says why not (naming the line of a bad byte).

    Args:
        path: the file; anything but a regular file (a folder, a FIFO) is refused, never read.
        max_bytes: refuse a larger file before reading it (default: no limit).

    Raises:
        ConfigError: the file cannot be read, is not a regular file, is too large, or is not UTF-8.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            if stat.S_ISDIR(info.st_mode):
                raise ConfigError("is a folder, not a file", path=path, hint="name a file")
            raise ConfigError("is not a regular file", path=path, hint="name a file, not a pipe or a device")
        if max_bytes is not None and info.st_size > max_bytes:
            _check_size(info.st_size, path)
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", path=path) from None
    try:
        # Lines as a text-mode read gives them: \r\n and \r become \n.
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "not UTF-8 text",
            path=path,
            line=data.count(b"\n", 0, exc.start) + 1,
            hint="save the file as UTF-8",
        ) from None


EMPTY_HINT = "add a mapping with at least an 'id' key"


def load_mapping(path: Path, text: str | None = None, *, empty_hint: str = EMPTY_HINT) -> MarkedDict:
    """Load a YAML file whose top level must be a mapping; `empty_hint` says what an empty one needs.

    Raises:
        ConfigError: the file cannot be read or parsed, or its top level is not a mapping.
    """
    if text is None:
        text = read_text(path, max_bytes=MAX_YAML_BYTES)
    data = loads(text, path)
    if data is None:
        raise ConfigError("file is empty", path=path, line=1, hint=empty_hint)
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
