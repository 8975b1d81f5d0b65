"""Call the team's own agent code as the system under test: `python:module:function`.

The function receives one dict and returns the output::

    {"messages": [{"role": ..., "content": ...}, ...],
     "vars": {...},            # the case's variables (agent code takes inputs, not text)
     "model": "name",          # the prompt's model name
     "params": {...}}          # the sampling parameters that are set, then `extra`

It may be sync (run in a worker thread) or async, and returns a str, a dict or
list (JSON-encoded as the output text), or a `Completion`.

Security: the target is named by a prompt file, and prompt files arrive in pull
requests, so it is untrusted. Only functions defined in modules whose files live
under the project root are called; the standard library, site-packages and a
virtualenv inside the root are refused, so `python:os:system` or
`python:subprocess:run` cannot be reached. The check runs before the module is
imported, and again on what the import actually loaded.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agent_evals.errors import ConfigError, ProviderError
from agent_evals.providers.base import Completion

if TYPE_CHECKING:
    from agent_evals.providers import ProviderSettings
    from agent_evals.render import ChatRequest

__all__ = ["PythonProvider", "load_target"]

AgentFunction = Callable[[dict[str, Any]], Any]

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_TARGET_HINT = (
    "use python:module:function with a module file inside the project, e.g. python:agent.main:answer"
)
_PACKAGE_DIRS = frozenset({"site-packages", "dist-packages"})


class PythonProvider:
    """A provider that calls a Python function from the project.

    The module is imported on the first call, with `settings.root` first on
    `sys.path`. A timeout (from the retry policy) abandons a sync function's
    result but cannot stop its thread.

    Args:
        settings: `target` is `module:function`; `root` is the project root.
    """

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.target = settings.target or ""
        self._function: AgentFunction | None = None

    def __repr__(self) -> str:
        return f"PythonProvider(target={self.target!r}, root={str(self.settings.root)!r})"

    async def complete(self, request: ChatRequest) -> Completion:
        """Call the function with the request; return its output.

        Raises:
            ConfigError: the target is malformed, cannot be imported, or is outside the project root.
            ProviderError: the function raised (not retryable, unless it raised a
                retryable ProviderError itself) or returned something unusable.
        """
        if self._function is None:
            # Imported once, on the event loop's thread: never two imports racing,
            # and a slow import delays only the first case.
            self._function = load_target(self.target, self.settings.root)
        function = self._function
        payload = _payload(request)
        try:
            if _is_async(function):
                result = await function(payload)
            else:
                result = await asyncio.to_thread(function, payload)
                if inspect.isawaitable(result):
                    result = await result
        except ProviderError:
            raise  # agent code may signal its own retryable failures
        except Exception as exc:
            message = _one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            raise ProviderError(f"python:{self.target} raised {message}") from exc
        return self._completion(result)

    async def aclose(self) -> None:
        """Nothing to release; present for the Provider protocol."""

    def _completion(self, result: Any) -> Completion:
        if isinstance(result, Completion):
            return result
        if isinstance(result, str):
            return Completion(text=result)
        if isinstance(result, dict | list):
            try:
                text = json.dumps(result, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise ProviderError(
                    f"python:{self.target} returned a {type(result).__name__} that is not JSON: {exc}"
                ) from None
            return Completion(text=text, raw=result if isinstance(result, dict) else None)
        raise ProviderError(
            f"python:{self.target} returned {type(result).__name__}; return a str, a dict or list, or a Completion"
        )


def _one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, at most `limit` characters: errors print as one line."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _is_async(function: Any) -> bool:
    call = getattr(function, "__call__", None)  # noqa: B004 - an instance with `async def __call__`
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


def _payload(request: ChatRequest) -> dict[str, Any]:
    # Deep copies: the agent may mutate what it gets, and the request is recorded.
    return {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "vars": copy.deepcopy(request.vars),
        "model": request.model.name,
        "params": {**request.model.params(), **copy.deepcopy(request.model.extra)},
    }


def _refuse(target: str, why: str) -> ConfigError:
    return ConfigError(f"refusing python:{target}: {why}", hint=_TARGET_HINT)


def _is_project_file(path: str | Path, root: Path) -> bool:
    """Whether `path` is a file of the project at `root`, not of an environment inside it."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root):
        return False
    if _PACKAGE_DIRS.intersection(resolved.relative_to(root).parts):
        return False
    # A virtualenv inside the project (./.venv) holds installed code, not the project's.
    for prefix in {sys.prefix, sys.exec_prefix}:
        env = Path(prefix).resolve()
        if env != root and env.is_relative_to(root) and resolved.is_relative_to(env):
            return False
    return True


def _module_file(module: Any) -> str | None:
    file = getattr(module, "__file__", None)
    return file if isinstance(file, str) else None


def _check_before_import(target: str, module_name: str, root: Path) -> None:
    """Refuse a module that is not a file under `root`, without executing anything."""
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        raise _refuse(target, f"'{module_name}' is in the standard library, outside the project")
    for name in (top, module_name):
        loaded = sys.modules.get(name)
        if loaded is None:
            continue
        file = _module_file(loaded)
        locations = [file] if file else [str(p) for p in getattr(loaded, "__path__", [])]
        if not locations or not all(_is_project_file(p, root) for p in locations):
            raise _refuse(
                target, f"'{name}' is loaded from {', '.join(locations) or 'nowhere'}, outside {root}"
            )
    relative = Path(*module_name.split("."))
    candidates = (root / relative.with_suffix(".py"), root / relative / "__init__.py")
    if not any(c.is_file() and _is_project_file(c, root) for c in candidates):
        raise _refuse(target, f"no module file for '{module_name}' under {root}")


def load_target(target: str, root: Path) -> AgentFunction:
    """Import `module:function` from the project at `root`.

    Args:
        target: `module:function`, the part after `python:`.
        root: the project root; the module's file must live under it.

    Returns:
        The function.

    Raises:
        ConfigError: the target is malformed, outside the project, fails to
            import, or does not name a callable defined in the project.
    """
    module_name, _, attr = target.partition(":")
    if not _MODULE_NAME.fullmatch(module_name) or not attr.isidentifier():
        raise ConfigError(f"invalid python provider target 'python:{target}'", hint=_TARGET_HINT)
    root = root.resolve()
    _check_before_import(target, module_name, root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # The module file may have been written after the import system cached the directory.
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"cannot import '{module_name}' for python:{target}: {_one_line(f'{type(exc).__name__}: {exc}')}",
            hint=f"check that {module_name} imports cleanly from {root}",
        ) from exc
    file = _module_file(module)
    if file is None or not _is_project_file(file, root):
        raise _refuse(target, f"'{module_name}' was loaded from {file or 'no file'}, outside {root}")
    function = getattr(module, attr, None)
    if function is None:
        raise ConfigError(f"module '{module_name}' has no '{attr}' (python:{target})", hint=_TARGET_HINT)
    if not callable(function):
        raise ConfigError(f"'{module_name}.{attr}' is not callable (python:{target})", hint=_TARGET_HINT)
    # A name the module merely imported (`from subprocess import run`) is refused
    # too: what counts is where the function is defined.
    defined_in = sys.modules.get(getattr(function, "__module__", None) or "")
    defined_file = _module_file(defined_in)
    if defined_file is None or not _is_project_file(defined_file, root):
        where = getattr(function, "__module__", None) or "an unknown module"
        raise _refuse(target, f"'{attr}' is defined in {where}, outside the project")
    return cast(AgentFunction, function)
