"""One registry drives provider types: a type added by one registry line is validated, resolved,
built and run with no other edit; taken out again, it is refused with the registered types."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent_evals.calls import Calls, check_keys
from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.load import load_config
from agent_evals.models import ProjectConfig, ProviderConfig
from agent_evals.providers import PROVIDERS, ProviderSettings, ProviderSpec, lazy, make_provider, resolve
from agent_evals.providers.base import ChatRequest, Completion, Usage
from agent_evals.record import load_record
from agent_evals.retry import RetryPolicy
from agent_evals.schema import json_schema
from tests.support import echo_evalset, echo_prompt, write_tree


class Shout:
    """A throwaway provider type: answers the last message in capitals (the "one file" of a new type)."""

    def __init__(self, settings: ProviderSettings, client: Any = None) -> None:
        self.name = settings.name
        self.settings = settings
        self.client = client

    async def complete(self, request: ChatRequest) -> Completion:
        text = request.messages[-1].content
        return Completion(text=f"ECHO: {text.upper()}", usage=Usage(3, 2), model="shout-1")

    async def aclose(self) -> None:
        return None


CONFIG = "providers:\n  loud:\n    type: shout\n    api_key_env: SHOUT_KEY\n"


def test_a_type_registered_in_one_line_is_validated_resolved_built_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(
        tmp_path,
        {
            "prompts/echo.yaml": echo_prompt("shout"),
            "evalsets/echo.yaml": echo_evalset(
                2, graders="  - {type: contains, name: echoed, value: ECHO}\n"
            ),
            "agent-evals.yaml": CONFIG,
        },
    )
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as registered:
        # The one line: the rest of agent-evals reads the registry.
        registered.setitem(PROVIDERS, "shout", ProviderSpec(lazy("tests.test_provider_registry:Shout")))

        config = load_config(tmp_path)
        assert config.providers["loud"].type == "shout"
        assert resolve("shout", config).type == "shout"
        loud = resolve("loud", config)
        assert (loud.type, loud.api_key_env) == ("shout", "SHOUT_KEY")
        provider = make_provider("loud", config)
        assert isinstance(provider, Shout)
        assert provider.client is None  # not an HTTP type: no client is passed

        assert main(["validate"]) == 0
        assert main(["run", "--output", "run.jsonl"]) == 0
        record = load_record(tmp_path / "run.jsonl")
        assert [(c.output, c.model, c.status) for c in record.cases] == [
            ("ECHO: QUESTION 0", "shout-1", "pass"),
            ("ECHO: QUESTION 1", "shout-1", "pass"),
        ]
        # Unpriced: no price list knows shout-1, and the type is not registered free.
        assert [c.cost_usd for c in record.cases] == [None, None]

    # Taken out of the registry, the same config is refused at its line, listing the types there are.
    assert "shout" not in PROVIDERS
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        "agent-evals.yaml:3: 'providers.loud.type': unknown provider type (got 'shout') "
        "(use one of: anthropic, local, openai, python)"
    )
    with pytest.raises(ConfigError) as unknown:
        resolve("shout", ProjectConfig())
    assert unknown.value.hint == (
        "use openai, anthropic, local, python:module:function, or one defined in agent-evals.yaml (none)"
    )


def test_the_registry_says_which_types_speak_http_and_need_their_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        PROVIDERS,
        "shout",
        ProviderSpec(
            lazy("tests.test_provider_registry:Shout"),
            http=True,
            api_key_env="SHOUT_API_KEY",
            base_url_env="SHOUT_BASE_URL",
            base_url="https://api.shout.example/v1",
        ),
    )
    monkeypatch.delenv("SHOUT_API_KEY", raising=False)
    monkeypatch.delenv("SHOUT_BASE_URL", raising=False)
    settings = resolve("shout", ProjectConfig())
    assert (settings.base_url, settings.api_key_env) == ("https://api.shout.example/v1", "SHOUT_API_KEY")
    monkeypatch.setenv("SHOUT_BASE_URL", "http://127.0.0.1:9/v1")
    assert resolve("shout", ProjectConfig()).base_url == "http://127.0.0.1:9/v1"
    monkeypatch.delenv("SHOUT_BASE_URL")

    # Its vendor's own API refuses calls without a key: the run stops before sending anything.
    with pytest.raises(ConfigError, match="provider 'shout': SHOUT_API_KEY is not set"):
        check_keys(ProjectConfig(), Path("."), ["shout"])
    monkeypatch.setenv("SHOUT_API_KEY", "k")
    check_keys(ProjectConfig(), Path("."), ["shout"])

    async def built() -> Any:
        calls = Calls(ProjectConfig(), Path("."), RetryPolicy())
        try:
            provider = calls.provider("shout")
            return provider, calls.client
        finally:
            await calls.aclose()

    provider, client = asyncio.run(built())
    assert isinstance(provider, Shout)
    assert client is not None  # an HTTP type gets the run's one client
    assert provider.client is client


def test_config_validation_and_the_schema_list_exactly_the_registered_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def schema_types() -> list[str]:
        enum = json_schema("config")["$defs"]["ProviderConfig"]["properties"]["type"]["enum"]
        assert isinstance(enum, list)
        return enum

    assert schema_types() == sorted(PROVIDERS)
    for kind in PROVIDERS:
        assert ProviderConfig(type=kind).type == kind
    monkeypatch.setitem(PROVIDERS, "shout", ProviderSpec(lazy("tests.test_provider_registry:Shout")))
    assert schema_types() == sorted(PROVIDERS)
    assert "shout" in schema_types()
