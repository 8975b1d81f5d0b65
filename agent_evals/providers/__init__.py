"""Provider registry: a plain dict from provider type to a small spec.

A prompt's `model.provider` is either a type (`openai`, `anthropic`, `local`,
`python:module:function`) or a name defined under `providers:` in
agent-evals.yaml. `PROVIDERS` is the one list of types: config validation
(`ProviderConfig.type`), name resolution, the HTTP client, the key check, the
response cache and pricing all read it. Adding a provider is one module with
a class that has `complete` and `aclose` (see `agent_evals.providers.base`) and
one line here; factories import their module only when used.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_evals import credentials
from agent_evals.errors import ConfigError
from agent_evals.models import ProjectConfig
from agent_evals.providers.base import ChatRequest, Completion, Provider, ToolCall, Usage

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "PROVIDERS",
    "ChatRequest",
    "Completion",
    "Factory",
    "Provider",
    "ProviderSettings",
    "ProviderSpec",
    "ToolCall",
    "Usage",
    "lazy",
    "make_provider",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """A provider, resolved from its name, the project config and the environment.

    The API key itself is never stored here: only the name of the variable that
    holds it, read at request time.
    """

    name: str
    type: str
    base_url: str | None = None
    api_key_env: str | None = None
    target: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    root: Path = Path(".")

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


Factory = Callable[[ProviderSettings, "aiohttp.ClientSession | None"], Provider]
"""Builds a provider from its settings; an HTTP provider is given the run's client (None: its own)."""


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider type: how to build it, and what a run must know about it.

    Attributes:
        factory: builds the provider (see `lazy`).
        http: it calls over HTTP, so it takes the run's client, and a run checks its key first.
        api_key_env: the variable holding the key, the one the vendor's own SDK reads.
        base_url_env: the variable that moves the endpoint, the one the vendor's own SDK reads.
        base_url: the vendor's endpoint, when neither the config nor `base_url_env` names another.
        target: for a type named with what to call (`python:module:function`), the form of that
            part, shown in hints; None for a type named alone.
        cacheable: its answer is a function of the request, so the response cache may keep it
            (agent code can read files, clocks and the network: it is not).
        free: its calls cost nothing, so no price is looked up.
    """

    factory: Factory
    http: bool = False
    api_key_env: str | None = None
    base_url_env: str | None = None
    base_url: str | None = None
    target: str | None = None
    cacheable: bool = True
    free: bool = False

    def usage(self, name: str) -> str:
        """How a prompt names this type, e.g. `openai` or `python:module:function`."""
        return f"{name}:{self.target}" if self.target else name

    def default_base_url(self) -> str | None:
        return (os.environ.get(self.base_url_env) if self.base_url_env else None) or self.base_url


def lazy(path: str) -> Factory:
    """A factory for the provider class at `module:Class`, imported on first use.

    An HTTP provider's class takes `(settings, client=client)`, any other `(settings)`.
    """
    module_name, _, class_name = path.partition(":")

    def build(settings: ProviderSettings, client: aiohttp.ClientSession | None) -> Provider:
        cls: Any = getattr(importlib.import_module(module_name), class_name)
        provider: Provider = cls(settings, client=client) if PROVIDERS[settings.type].http else cls(settings)
        return provider

    return build


PROVIDERS: dict[str, ProviderSpec] = {
    # The official SDKs' environment variables, honoured the same way.
    "openai": ProviderSpec(
        lazy("agent_evals.providers.openai:OpenAIProvider"), http=True,
        api_key_env="OPENAI_API_KEY", base_url_env="OPENAI_BASE_URL", base_url="https://api.openai.com/v1",
    ),
    "anthropic": ProviderSpec(
        lazy("agent_evals.providers.anthropic:AnthropicProvider"), http=True,
        api_key_env="ANTHROPIC_API_KEY", base_url_env="ANTHROPIC_BASE_URL", base_url="https://api.anthropic.com",
    ),
    "local": ProviderSpec(lazy("agent_evals.providers.local:LocalProvider"), free=True),
    "python": ProviderSpec(
        lazy("agent_evals.providers.python_fn:PythonProvider"), target="module:function", cacheable=False
    ),
}  # fmt: skip
"""Every provider type, by the name `type:` and `model.provider` use."""


def spec(settings: ProviderSettings) -> ProviderSpec:
    """The registry entry of a resolved provider."""
    return PROVIDERS[settings.type]


def resolve(name: str, config: ProjectConfig, root: Path = Path(".")) -> ProviderSettings:
    """Resolve a provider name to its settings, and register its credentials to be scrubbed.

    Raises:
        ConfigError: the name is neither a provider type nor defined in the config.
    """
    settings = _resolve(name, config, root)
    # The key, URL credentials and header values of every provider a run may call: no file
    # the run writes, and nothing it prints, may carry them (agent_evals.credentials).
    credentials.register(settings.api_key())
    credentials.register_headers(settings.headers)
    credentials.register_url(settings.base_url)
    return settings


def _resolve(name: str, config: ProjectConfig, root: Path) -> ProviderSettings:
    kind, colon, target = name.partition(":")
    named = PROVIDERS.get(kind)
    if colon and named is not None and named.target is not None:
        return ProviderSettings(name=name, type=kind, target=target, root=root)
    if name in config.providers:
        pc = config.providers[name]
        defined = PROVIDERS[pc.type]  # ProviderConfig checked the type against the registry
        return ProviderSettings(
            name=name,
            type=pc.type,
            base_url=pc.base_url or defined.default_base_url(),
            # An explicit `api_key_env: null` (or '') means the server needs no key: send none.
            api_key_env=(pc.api_key_env or None)
            if "api_key_env" in pc.model_fields_set
            else defined.api_key_env,
            target=pc.target,
            headers=dict(pc.headers),
            root=root,
        )
    if named is not None and not colon and named.target is None:
        return ProviderSettings(
            name=name, type=name, base_url=named.default_base_url(), api_key_env=named.api_key_env, root=root
        )
    types = ", ".join(entry.usage(kind) for kind, entry in PROVIDERS.items())
    defined_names = ", ".join(sorted(config.providers)) or "none"
    raise ConfigError(
        f"unknown provider '{name}'",
        hint=f"use {types}, or one defined in agent-evals.yaml ({defined_names})",
    )


def make_provider(
    name: str, config: ProjectConfig, *, root: Path = Path("."), client: aiohttp.ClientSession | None = None
) -> Provider:
    """Build the provider `name` resolves to; HTTP providers use `client` if given.

    Raises:
        ConfigError: the name is neither a provider type nor defined in the config.
    """
    settings = resolve(name, config, root)
    return spec(settings).factory(settings, client)
