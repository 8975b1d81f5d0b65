"""`python:module:function`: a grader written as a function in the project's own code.

The function is called as `fn(output=..., parsed=..., case={id, vars, expected,
tags}, **args)`, sync or async, and returns a bool, a number in [0, 1], a dict
`{score, passed?, reason?, details?}` or a `Grade`.

Security: eval set files arrive in pull requests, so a target is untrusted. It
must name a module *file under the project root*, which is the current working
directory when the grader is built (the CLI runs from the project root):
`checks.tone:grade` is `./checks/tone.py` (or `./checks/tone/__init__.py`).
Anything else (`os:system`, an installed package, a symlink out of the root)
is refused with a ConfigError before any of its code runs.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import inspect
import math
import numbers
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from pydantic import Field, field_validator

from agent_evals.errors import ConfigError, GraderError
from agent_evals.graders import base
from agent_evals.graders.base import Grade, GraderBase, Sample
from agent_evals.models import GraderSpec

_TARGET = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_RESERVED = ("output", "parsed", "case")
_DICT_KEYS = {"score", "passed", "reason", "details"}
_MESSAGE_LIMIT = 200


class PythonGraderOptions(base.Options):
    """Options of a `python:module:function` grader."""

    target: str = Field(description="'module:function', the module a file under the project root.")
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="Lowest passing score for a numeric result."
    )
    args: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments for the function."
    )

    @field_validator("target")
    @classmethod
    def _target_shape(cls, target: str) -> str:
        if not _TARGET.match(target):
            raise ValueError("target must be 'module:function', e.g. 'checks.tone:grade'")
        return target

    @field_validator("args")
    @classmethod
    def _no_reserved_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        clash = [key for key in _RESERVED if key in args]
        if clash:
            raise ValueError(
                f"args may not set {', '.join(map(repr, clash))}: the grader passes those itself"
            )
        return args


def _refuse(target: str, problem: str, root: Path) -> ConfigError:
    return ConfigError(
        f"python grader '{target}': {problem}",
        hint=f"a target must be a module file under the project root {root} (run agent-evals from there)",
    )


def module_file(target: str, root: Path) -> Path:
    """The file under `root` that `target`'s module names, resolved.

    Raises:
        ConfigError: there is no such file under `root`, or it resolves outside it.
    """
    module = target.partition(":")[0]
    parts = module.split(".")
    here = root.joinpath(*parts)
    # A package wins over a module of the same name, as in Python's own import system.
    for candidate in (here / "__init__.py", here.with_name(here.name + ".py")):
        if candidate.is_file():
            resolved = candidate.resolve()
            if not resolved.is_relative_to(root):
                raise _refuse(
                    target, f"module '{module}' is a link to {resolved}, outside the project root", root
                )
            return resolved
    raise _refuse(target, f"module '{module}' is not a file under the project root", root)


def _located_in(mod: ModuleType, root: Path) -> bool:
    paths = [getattr(mod, "__file__", None), *list(getattr(mod, "__path__", []) or [])]
    return any(p is not None and Path(p).resolve().is_relative_to(root) for p in paths)


def load_target(target: str, root: Path) -> Callable[..., Any]:
    """Import `target` from under `root` and return the function it names.

    Raises:
        ConfigError: the module is not under `root`, fails to import, or lacks
            a callable of that name.
    """
    module, _, name = target.partition(":")
    path = module_file(target, root)
    parts = module.split(".")
    # A name already imported from elsewhere (`os`, an installed package) would be reused by
    # import_module without reading our file, so check every package on the way first.
    for i in range(1, len(parts) + 1):
        loaded = sys.modules.get(".".join(parts[:i]))
        if loaded is not None and not _located_in(loaded, root):
            where = getattr(loaded, "__file__", None) or "built in"
            raise _refuse(target, f"module name '{'.'.join(parts[:i])}' is already taken by {where}", root)
    # The root goes on sys.path only for this import: left there, a file in a pull request
    # could shadow a module agent-evals itself imports later.
    added = str(root) not in sys.path
    if added:
        sys.path.insert(0, str(root))
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        raise _refuse(
            target, f"importing '{module}' failed: {type(exc).__name__}: {_one_line(exc)}", root
        ) from exc
    finally:
        if added:
            sys.path.remove(str(root))
    if Path(getattr(mod, "__file__", None) or "").resolve() != path:
        raise _refuse(target, f"module '{module}' was imported from {mod.__file__}, not {path}", root)
    fn = getattr(mod, name, None)
    if fn is None or not callable(fn):
        raise ConfigError(
            f"python grader '{target}': module '{module}' has no function '{name}'",
            hint=f"define 'def {name}(output, parsed, case, **args)' in {path}",
        )
    return fn  # type: ignore[no-any-return]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _score(value: Any, target: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GraderError(
            f"python grader '{target}' returned a {what} of type {type(value).__name__}, not a number"
        )
    score = float(value)
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise GraderError(f"python grader '{target}' returned a {what} of {score:g}, outside [0, 1]")
    return score


def to_grade(result: Any, target: str, threshold: float) -> Grade:
    """Turn what a python grader returned into a Grade.

    Raises:
        GraderError: the result is none of bool, number in [0, 1], dict with a
            `score`, or Grade.
    """
    label = target.partition(":")[2]
    if isinstance(result, Grade):
        _score(result.score, target, "Grade score")
        return result
    if isinstance(result, bool):
        return Grade(score=float(result), passed=result, reason=f"{label} returned {result}")
    if isinstance(result, numbers.Real):
        score = _score(result, target, "score")
        passed = score >= threshold
        return Grade(score=score, passed=passed, reason=f"{label} scored {score:.2f} (pass >= {threshold:g})")
    if isinstance(result, dict):
        unknown = sorted(str(k) for k in result if k not in _DICT_KEYS)
        if unknown:
            raise GraderError(
                f"python grader '{target}' returned unknown keys {', '.join(unknown)}; "
                "allowed: score, passed, reason, details"
            )
        if "score" not in result:
            raise GraderError(f"python grader '{target}' returned a dict without 'score'")
        score = _score(result["score"], target, "score")
        passed = result.get("passed", score >= threshold)
        reason = result.get("reason", f"{label} scored {score:.2f} (pass >= {threshold:g})")
        details = result.get("details", {})
        if not isinstance(passed, bool) or not isinstance(reason, str) or not isinstance(details, dict):
            raise GraderError(
                f"python grader '{target}' returned a dict with the wrong types: "
                "'passed' must be a bool, 'reason' a string, 'details' a dict"
            )
        return Grade(score=score, passed=passed, reason=reason, details=details)
    raise GraderError(
        f"python grader '{target}' returned {type(result).__name__}; "
        "expected a bool, a number in [0, 1], a dict with 'score', or a Grade"
    )


class PythonGrader(GraderBase):
    """Run a `module:function` from the project's own code as a grader.

    The module's location is checked when the grader is built (so `validate`
    catches a bad target); it is imported when the first case is graded.
    """

    Options: ClassVar[type[base.Options]] = PythonGraderOptions
    options: PythonGraderOptions

    def __init__(self, spec: GraderSpec, options: Any) -> None:
        super().__init__(spec, options)
        self._root = Path.cwd().resolve()
        module_file(self.options.target, self._root)
        self._fn: Callable[..., Any] | None = None

    async def grade(self, sample: Sample) -> Grade:
        """Call the function on the sample and read its result.

        Raises:
            ConfigError: the target cannot be imported from under the project root.
            GraderError: the function raised, or returned something unusable.
        """
        target = self.options.target
        if self._fn is None:
            self._fn = load_target(target, self._root)
        case = sample.case
        fn = self._fn

        def call() -> Any:
            # Copies, so a grader that mutates its inputs cannot change what later graders see.
            case_view = copy.deepcopy(
                {"id": case.id, "vars": case.vars, "expected": case.expected, "tags": list(case.tags)}
            )
            return fn(
                output=sample.output, parsed=copy.deepcopy(sample.parsed), case=case_view, **self.options.args
            )

        try:
            # A plain function runs in a worker thread (as a sync agent or mock tool does), so a slow
            # grader does not stall the event loop: the calls in flight are read as they answer.
            result = call() if inspect.iscoroutinefunction(fn) else await asyncio.to_thread(call)
            if inspect.isawaitable(result):
                result = await result
        except GraderError:
            raise
        except Exception as exc:
            raise GraderError(
                f"python grader '{target}' raised {type(exc).__name__}: {_one_line(exc)}"
            ) from exc
        return to_grade(result, target, self.options.threshold)
