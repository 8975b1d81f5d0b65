"""JSON Schemas of the project's YAML files, generated from the models that load them.

Editors read these (the `# yaml-language-server: $schema=...` line at the top of a file)
to complete keys and underline a typo as it is typed. They come from the same pydantic
models the loader validates with, so they cannot drift from it, and a test compares the
committed `schemas/*.schema.json` with what this module generates.

A grader entry of an eval set is schematised per grader type: `type: exact_match` allows
the common keys plus exact_match's own options, from the `Options` model `build_grader`
checks them with (`if type is X then these keys`). `agent-evals validate` stays the
authority: it also checks what a schema cannot say (templates that render, a prompt an
eval set names, one rubric mode of three).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from agent_evals.errors import ConfigError

__all__ = ["FILES", "SCHEMAS", "json_schema", "render", "write"]

# Draft 7, the newest the YAML language server (VS Code, Neovim, Zed, ...) reads; pydantic
# writes 2020-12, whose only keyword here that draft 7 lacks is `prefixItems` (see `_draft7`).
# `$defs` stays: a `$ref` is a JSON pointer, which finds the key whatever its name.
DIALECT: Final = "http://json-schema.org/draft-07/schema#"

SCHEMAS: Final = ("prompt", "evalset", "config")
"""The schemas there are, by name: `agent-evals schema NAME`."""

FILES: Final = {name: f"{name}.schema.json" for name in SCHEMAS}
"""The file each schema is written to (`agent-evals schema --write DIR`)."""

_TITLES: Final = {
    "prompt": ("agent-evals prompt", "One prompt: prompts/<id>.yaml."),
    "evalset": ("agent-evals eval set", "Cases and graders for one prompt: evalsets/<id>.yaml."),
    "config": ("agent-evals project settings", "agent-evals.yaml at the project root."),
}
_PYTHON_GRADER: Final = r"^python:[^:\s]+:[^:\s]+$"


def _model(name: str) -> type[BaseModel]:
    from agent_evals.models import EvalSet, ProjectConfig, Prompt

    models: dict[str, type[BaseModel]] = {"prompt": Prompt, "evalset": EvalSet, "config": ProjectConfig}
    try:
        return models[name]
    except KeyError:
        raise ConfigError(f"no schema '{name}'", hint=f"one of: {', '.join(SCHEMAS)}") from None


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 7, which editors and check-jsonschema read) of one file kind.

    Args:
        name: `prompt`, `evalset` or `config`.

    Returns:
        The schema, as a JSON-ready dict.

    Raises:
        ConfigError: an unknown name.
    """
    model = _model(name)
    body = model.model_json_schema(ref_template="#/$defs/{model}")
    defs: dict[str, Any] = body.pop("$defs", {})
    if "GraderSpec" in defs:
        defs["GraderSpec"] = _grader_spec(defs)
    title, description = _TITLES[name]
    body.update(title=title, description=description)
    schema = {"$schema": DIALECT, **body}
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    converted: dict[str, Any] = _draft7(schema)
    return converted


def _draft7(node: Any) -> Any:
    """`node` with 2020-12's `prefixItems` (a fixed-length tuple) spelled as draft 7's array `items`."""
    if isinstance(node, list):
        return [_draft7(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _draft7(value) for key, value in node.items()}
    if "prefixItems" in out:
        out["items"] = out.pop("prefixItems")
    return out


def _grader_spec(defs: dict[str, Any]) -> dict[str, Any]:
    """A grader entry: the common keys, and per registered type, that type's own options."""
    from agent_evals.graders import GRADERS
    from agent_evals.graders.python_fn import PythonGrader
    from agent_evals.models import GraderSpec

    common: dict[str, Any] = GraderSpec.model_json_schema()["properties"]
    common["type"] = {
        "description": f"The grader: one of {', '.join(sorted(GRADERS))}, or python:module:function.",
        "anyOf": [
            {"enum": sorted(GRADERS)},
            {"type": "string", "pattern": _PYTHON_GRADER, "description": "A grader function in your code."},
        ],
    }
    branches = []
    kinds: list[tuple[dict[str, Any], type[Any]]] = [
        ({"const": name}, cls) for name, cls in sorted(GRADERS.items())
    ]
    kinds.append(({"pattern": _PYTHON_GRADER}, PythonGrader))
    for match, cls in kinds:
        options = cls.Options.model_json_schema(ref_template="#/$defs/{model}")
        for key, value in options.pop("$defs", {}).items():
            if defs.setdefault(key, value) != value:
                raise AssertionError(f"two schemas named {key}: rename one of the models")
        props: dict[str, Any] = dict(options["properties"])
        # The target of a python grader is its type (`python:module:function`), not a key.
        props.pop("target", None)
        required = [key for key in options.get("required", []) if key in props]
        then: dict[str, Any] = {
            "description": (cls.__doc__ or "").strip().splitlines()[0],
            # The common keys are checked above; listed here so `additionalProperties` allows them.
            "properties": {**dict.fromkeys(common, True), **props},
            "additionalProperties": False,
        }
        if required:
            then["required"] = required
        branches.append({"if": {"properties": {"type": match}, "required": ["type"]}, "then": then})
    return {
        "title": "GraderSpec",
        "description": "A grader: `type`, the common keys (name, weight, required, turns) and the type's own options.",
        "type": "object",
        "properties": common,
        "required": ["type"],
        "allOf": branches,
    }


def render(name: str) -> str:
    """One schema as the text committed under `schemas/`: indented JSON and a final newline."""
    return json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"


def write(folder: Path, names: Sequence[str] = SCHEMAS) -> list[Path]:
    """Write schemas into `folder` (created if missing) as `<name>.schema.json`.

    Args:
        folder: where to write.
        names: which schemas; default all.

    Returns:
        The files written, in the order of `names`.

    Raises:
        ConfigError: an unknown name, or `folder` cannot be written.
    """
    texts = {name: render(name) for name in names}
    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            path = folder / FILES[name]
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the schemas ({exc.strerror})", path=folder) from None
    return written
