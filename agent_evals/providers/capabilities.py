"""Which request parameters a model accepts: a small table by model family.

For each prompt the table decides two things:

- the name the output-token limit goes under (`token_limit`): `max_completion_tokens` on
  OpenAI's own API and for OpenAI's reasoning models anywhere, `max_tokens` everywhere else
  (third-party OpenAI-compatible servers such as vLLM, Ollama and LiteLLM, and Anthropic);
- the parameters a model refuses (`refusals`), each with the reason.

A prompt that sets a parameter its model refuses is a config error at that parameter's line
(`check_prompt`), found by `agent-evals validate` and by a run before it sends anything
(`check_prompts`). It is never dropped quietly: the run record would then claim a sampling
setting that was never used. Models the table does not know (a vLLM or Ollama model, a
proxy's alias) get every parameter as written; so does everything under `model.extra`.

Model names are matched without a routing prefix (`openai/o3` is `o3`) and case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from agent_evals.errors import ConfigError, ConfigErrors

if TYPE_CHECKING:
    from agent_evals.models import ModelSpec, ProjectConfig, Prompt
    from agent_evals.providers import ProviderSettings

__all__ = [
    "RULES",
    "Refusal",
    "Rule",
    "TokenLimit",
    "check_prompt",
    "check_prompts",
    "refusals",
    "token_limit",
]

TokenLimit = Literal["max_tokens", "max_completion_tokens"]

OPENAI_API_HOST = "api.openai.com"

# o1, o3, o4 (and their -mini/-pro variants), GPT-5 and later, except the `-chat` models,
# which are GPT-5's non-reasoning chat snapshots.
_OPENAI_REASONING = r"(?:o1|o3|o4)(?:-|$)|(?!.*-chat)gpt-(?:[5-9]|[1-9]\d)(?:[.-]|$)"
_OPENAI_CHAT = r"gpt-3\.5|gpt-4|chatgpt-|gpt-\d.*-chat"
# Claude Opus 4.7 and every model after it (Opus 4.8, the 5 family, Mythos, Fable).
_CLAUDE_NO_SAMPLING = r"claude-[a-z]+-(?:4-[7-9]|[5-9]|[1-9]\d)(?:-|$)|claude-mythos-preview"
# Claude models from before effort: the 3 family (and older), Opus/Sonnet 4, Opus 4.1,
# Sonnet 4.5, Haiku 4.5.
_CLAUDE_NO_EFFORT = (
    r"claude-(?:\d|instant|(?:opus|sonnet)-4(?:-0|-\d{8})?$|opus-4-1(?:-|$)|(?:sonnet|haiku)-4-5(?:-|$))"
)
ANTHROPIC_EFFORTS = ("low", "medium", "high", "xhigh", "max")
"""The values of the Anthropic SDK's `OutputConfigParam.effort`."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: models of `provider` whose name matches `pattern` refuse `params`.

    Attributes:
        provider: the provider type (`openai`, `anthropic`).
        pattern: a regex matched at the start of the model name (without a routing prefix).
        params: `ModelSpec` fields the models refuse.
        why: the reason, shown in the error's hint.
        values: only these values are refused; None refuses any value.
        since_version: for Anthropic, the rule holds from this API version on (the version
            sent: the provider's `anthropic-version` header, else the SDK's).
    """

    provider: str
    pattern: str
    params: tuple[str, ...]
    why: str
    values: frozenset[str] | None = None
    since_version: str | None = None

    def applies(self, provider: str, model: str, version: str | None) -> bool:
        if provider != self.provider or not re.match(self.pattern, model, re.IGNORECASE):
            return False
        return self.since_version is None or version is None or version >= self.since_version


RULES: tuple[Rule, ...] = (
    Rule(
        "openai",
        _OPENAI_REASONING,
        ("temperature", "top_p"),
        "OpenAI's reasoning models (o1, o3, o4, GPT-5) sample at a fixed temperature; "
        "set reasoning_effort instead",
    ),
    Rule("openai", _OPENAI_CHAT, ("reasoning_effort",), "it is not a reasoning model"),
    Rule("anthropic", "", ("seed",), "Anthropic's Messages API has no seed"),
    Rule(
        "anthropic",
        "",
        ("reasoning_effort",),
        f"Anthropic's effort is one of {', '.join(ANTHROPIC_EFFORTS)}",
        values=frozenset({"none", "minimal"}),
    ),
    Rule(
        "anthropic",
        _CLAUDE_NO_SAMPLING,
        ("temperature", "top_p"),
        "Claude models from Opus 4.7 on take no sampling parameters",
    ),
    Rule(
        "anthropic",
        "claude-",
        ("temperature", "top_p"),
        "Anthropic API version 2026-10-21 takes no sampling parameters; an older anthropic-version "
        "in the provider's headers still does, for Claude models before Opus 4.7",
        since_version="2026-10-21",
    ),
    Rule(
        "anthropic",
        _CLAUDE_NO_EFFORT,
        ("reasoning_effort",),
        "effort needs Claude Opus 4.5, Sonnet 4.6, Haiku 5.5 or later",
    ),
)
"""The table, most specific first: the first rule that refuses a parameter gives the reason."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A parameter a prompt sets that its model refuses."""

    param: str
    message: str
    hint: str


def _bare(model: str) -> str:
    """The model name without a routing prefix: `openai/o3` -> `o3`."""
    return model.rsplit("/", 1)[-1]


def _version(settings: ProviderSettings) -> str | None:
    if settings.type != "anthropic":
        return None
    from agent_evals.providers.anthropic import api_version

    return api_version(settings)


def token_limit(settings: ProviderSettings, model: str) -> TokenLimit:
    """The request field that carries the output-token limit for `model` on this provider.

    OpenAI deprecated `max_tokens` for `max_completion_tokens`, and its reasoning models
    refuse `max_tokens`; many OpenAI-compatible servers know only `max_tokens`.
    """
    if settings.type != "openai":
        return "max_tokens"
    if re.match(_OPENAI_REASONING, _bare(model), re.IGNORECASE):
        return "max_completion_tokens"
    host = urlsplit(settings.base_url or "").hostname or ""
    return "max_completion_tokens" if host.lower() == OPENAI_API_HOST else "max_tokens"


def refusals(spec: ModelSpec, settings: ProviderSettings) -> list[Refusal]:
    """The parameters `spec` sets that its model refuses on this provider, in field order."""
    model = _bare(spec.name)
    version = _version(settings)
    rules = [rule for rule in RULES if rule.applies(settings.type, model, version)]
    found = []
    for param, value in spec.params().items():
        for rule in rules:
            if param not in rule.params or (rule.values is not None and value not in rule.values):
                continue
            if rule.values is None:
                message = f"model '{spec.name}' does not accept {param}"
                hint = f"remove it; {rule.why}"
            else:
                message = f"model '{spec.name}' does not accept {param} '{value}'"
                hint = rule.why
            found.append(Refusal(param, message, hint))
            break
    return found


def check_prompt(prompt: Prompt, settings: ProviderSettings) -> list[ConfigError]:
    """One located error per parameter `prompt` sets that its model refuses.

    Args:
        prompt: the prompt, as it will run (after any `--provider`/`--model` override).
        settings: the provider its `model.provider` resolves to.
    """
    return [
        ConfigError(
            refusal.message,
            path=prompt.source_path,
            line=prompt.line_of("model", refusal.param),
            hint=refusal.hint,
        )
        for refusal in refusals(prompt.model, settings)
    ]


def check_prompts(prompts: Iterable[Prompt], config: ProjectConfig, root: Path) -> None:
    """Refuse to run prompts that set a parameter their model refuses (before anything is sent).

    Raises:
        ConfigError: every such parameter, one located line each (a `ConfigErrors`).
    """
    from agent_evals.providers import resolve

    errors: list[ConfigError] = []
    seen: set[int] = set()
    for prompt in prompts:
        if id(prompt) in seen:
            continue
        seen.add(id(prompt))
        errors.extend(check_prompt(prompt, resolve(prompt.model.provider, config, root)))
    if errors:
        raise ConfigErrors(errors)
