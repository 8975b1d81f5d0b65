"""What the two HTML pages (the gate report, report/html.py, and the dashboard, report/dashboard.py)
share: the sandboxed template environment, their assets, the Content-Security-Policy that lets only
the page's own script run, data embedded in a `<script>` element, and the SVG shapes charts are
laid out in (in Python; the templates only draw them).

A shape's `ref` names it for a page's filters (`run-3`): the script shows or hides marks by ref.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

__all__ = ["Chart", "Dot", "Label", "Rect", "Rule", "Shape", "asset", "csp", "environment", "script_json"]


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    """The pages' templates (agent_evals/templates), autoescaped, in a sandbox."""
    return ImmutableSandboxedEnvironment(
        loader=jinja2.PackageLoader("agent_evals", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def asset(name: str) -> str:
    """A template folder file's text (a page's CSS or script, inlined)."""
    env = environment()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return source


def csp(script: str) -> str:
    """The page's Content-Security-Policy: nothing loads, only `script` (by its hash) runs."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    # Nothing may load: only the page's own script (by hash) runs, even if an output slipped through.
    return (
        "default-src 'none'; "
        f"script-src 'sha256-{digest}'; "
        "style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def script_json(data: Any) -> Markup:
    """`data` as JSON that is safe inside a `<script>` element.

    `<`, `>` and `&` are written as `\\u003c`, `\\u003e` and `\\u0026`, so no
    string in the data (an output saying `</script><script>...`) can end the
    element or open a comment; JSON.parse reads them back unchanged.
    """
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    # U+2028/2029 end a line in JavaScript source; harmless to JSON.parse, but keep the text plain.
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


# --- chart shapes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    cls: str
    title: str = ""
    ref: str = ""
    kind: Literal["rect"] = "rect"


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    cls: str = ""
    anchor: Literal["start", "middle", "end"] = "start"
    title: str = ""
    ref: str = ""
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class Rule:
    x1: float
    y1: float
    x2: float
    y2: float
    cls: str = "grid"
    title: str = ""
    ref: str = ""
    kind: Literal["line"] = "line"


@dataclass(frozen=True)
class Dot:
    cx: float
    cy: float
    r: float
    cls: str
    title: str = ""
    ref: str = ""
    kind: Literal["circle"] = "circle"


Shape = Rect | Label | Rule | Dot


@dataclass(frozen=True)
class Chart:
    """One SVG chart: what to draw, and what a screen reader says instead."""

    title: str
    width: int
    height: int
    shapes: tuple[Shape, ...]
    description: str
    series: tuple[tuple[str, str], ...] = ()
    """(css class, name) of each series, for the legend."""
    note: str = ""
