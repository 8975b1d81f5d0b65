"""Provider registry: a plain dict from provider type to a small factory.

A prompt's `model.provider` is either a type (`openai`, `anthropic`, `local`,
`python:module:function`) or a name defined under `providers:` in
agent-evals.yaml. Factories import their module only when used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent_evals import credentials
from agent_evals.errors import ConfigError
from agent_evals.models import ProjectConfig
from agent_evals.providers.base import Completion, Provider, Usage

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "HTTP_TYPES",
    "PROVIDERS",
    "Completion",
    "Provider",
    "ProviderSettings",
    "Usage",
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


# The official SDKs' environment variables, honoured the same way.
_ENV_DEFAULTS = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
}


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
    if name.startswith("python:"):
        return ProviderSettings(name=name, type="python", target=name.removeprefix("python:"), root=root)
    if name in config.providers:
        pc = config.providers[name]
        key_env, url_env, url_default = _ENV_DEFAULTS.get(pc.type, (None, None, None))
        base_url = pc.base_url or (os.environ.get(url_env) if url_env else None) or url_default
        return ProviderSettings(
            name=name,
            type=pc.type,
            base_url=base_url,
            # An explicit `api_key_env: null` (or '') means the server needs no key: send none.
            api_key_env=(pc.api_key_env or None) if "api_key_env" in pc.model_fields_set else key_env,
            target=pc.target,
            headers=dict(pc.headers),
            root=root,
        )
    if name in _ENV_DEFAULTS:
        key_env, url_env, url_default = _ENV_DEFAULTS[name]
        return ProviderSettings(
            name=name,
            type=name,
            base_url=os.environ.get(url_env) or url_default,
            api_key_env=key_env,
            root=root,
        )
    if name == "local":
        return ProviderSettings(name=name, type="local", root=root)
    defined = ", ".join(sorted(config.providers)) or "none"
    raise ConfigError(
        f"unknown provider '{name}'",
        hint=f"use openai, anthropic, local, python:module:function, or one defined in agent-evals.yaml ({defined})",
    )


def _openai(settings: ProviderSettings, client: aiohttp.ClientSession | None) -> Provider:
    from agent_evals.providers.openai import OpenAIProvider

    return OpenAIProvider(settings, client=client)


def _anthropic(settings: ProviderSettings, client: aiohttp.ClientSession | None) -> Provider:
    from agent_evals.providers.anthropic import AnthropicProvider

    return AnthropicProvider(settings, client=client)


def _local(settings: ProviderSettings, client: aiohttp.ClientSession | None) -> Provider:
    from agent_evals.providers.local import LocalProvider

    return LocalProvider(settings)


def _python(settings: ProviderSettings, client: aiohttp.ClientSession | None) -> Provider:
    from agent_evals.providers.python_fn import PythonProvider

    return PythonProvider(settings)


PROVIDERS: dict[str, Callable[[ProviderSettings, aiohttp.ClientSession | None], Provider]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "local": _local,
    "python": _python,
}


HTTP_TYPES = frozenset({"openai", "anthropic"})
"""Provider types that call over HTTP, and so take an injected client."""


def make_provider(
    name: str, config: ProjectConfig, *, root: Path = Path("."), client: aiohttp.ClientSession | None = None
) -> Provider:
    """Build the provider `name` resolves to; HTTP providers use `client` if given."""
    settings = resolve(name, config, root)
    return PROVIDERS[settings.type](settings, client)
