"""Prices: genai-prices' bundled snapshot by exact model and snapshot, `prices:` over it, offline.

The expected figures are the vendors' published list prices (USD per million tokens):
claude-opus-4-5 $5 in / $25 out / $0.50 cache read / $6.25 cache write; claude-opus-4
$15 / $75; gpt-4o $2.50 / $10.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.load import load_config
from agent_evals.pricing import Prices
from agent_evals.providers.base import Usage
from agent_evals.record import load_record
from tests.http_server import Handler, Request, Response, ScriptedServer, anthropic_messages
from tests.support import write_tree

ROOT = Path(__file__).resolve().parents[1]
MILLION = 1_000_000
ONE_EACH = Usage(input_tokens=MILLION, output_tokens=MILLION)
DATABASE = Prices({})


def test_a_newer_model_is_not_priced_as_the_older_one_its_name_starts_with() -> None:
    # The issue: a prefix table priced claude-opus-4-5 as claude-opus-4 ($15/$75).
    assert DATABASE.cost(ONE_EACH, "anthropic", "claude-opus-4-5") == pytest.approx(5 + 25)
    assert DATABASE.cost(ONE_EACH, "anthropic", "claude-opus-4") == pytest.approx(15 + 75)


def test_a_known_snapshot_is_its_model_and_an_unknown_one_is_unpriced() -> None:
    assert DATABASE.cost(ONE_EACH, "openai", "gpt-4o-2024-08-06") == pytest.approx(2.5 + 10)
    assert DATABASE.cost(ONE_EACH, "anthropic", "claude-opus-4-5-20251101") == pytest.approx(5 + 25)
    # Not a snapshot anyone published: no price, rather than gpt-4o's by its prefix.
    assert DATABASE.rate("openai", "gpt-4o-2099-01-01") is None
    assert DATABASE.cost(ONE_EACH, "openai", "gpt-4o-2099-01-01") is None


def test_an_unknown_model_costs_none_never_zero() -> None:
    assert DATABASE.cost(ONE_EACH, "openai", "my-finetune") is None
    assert DATABASE.cost(None, "openai", "gpt-4o") is None  # usage not reported: cost unknown
    assert DATABASE.cost(ONE_EACH, "python", "") is None  # agent code that names no model


def test_the_local_provider_is_free() -> None:
    assert DATABASE.cost(ONE_EACH, "local", "local-tfidf-knn") == 0.0
    assert DATABASE.cost(None, "local", "") == 0.0


def test_a_model_served_through_another_vendors_api_is_priced_by_its_name() -> None:
    # An OpenAI-compatible proxy (LiteLLM) serving a Claude model, and LiteLLM's own names.
    assert DATABASE.cost(ONE_EACH, "openai", "claude-opus-4-5") == pytest.approx(5 + 25)
    assert DATABASE.cost(ONE_EACH, "openai", "anthropic/claude-opus-4-5") == pytest.approx(5 + 25)


def test_cache_reads_and_writes_are_priced_at_their_own_rates() -> None:
    usage = Usage(
        input_tokens=MILLION, output_tokens=0, cache_read_tokens=MILLION, cache_write_tokens=MILLION
    )
    assert DATABASE.cost(usage, "anthropic", "claude-opus-4-5") == pytest.approx(5 + 0.5 + 6.25)
    # gpt-4o lists a cache read price and no write price: a write is an input token.
    assert DATABASE.cost(usage, "openai", "gpt-4o") == pytest.approx(2.5 + 1.25 + 2.5)


def test_the_model_that_answered_is_priced_before_the_one_asked_for() -> None:
    assert DATABASE.cost(ONE_EACH, "anthropic", "claude-opus-4-5-20251101", "claude-opus-4") == pytest.approx(
        30
    )
    # An answer naming a model the database does not list: the one asked for.
    assert DATABASE.cost(ONE_EACH, "openai", "gpt-4o-2099-01-01", "gpt-4o") == pytest.approx(12.5)
    assert DATABASE.cost(ONE_EACH, "openai", None, "gpt-4o") == pytest.approx(12.5)


def test_config_prices_override_the_database_and_price_the_cache(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "agent-evals.yaml": """\
                prices:
                  gpt-4o: {input_per_mtok: 1, output_per_mtok: 2, cache_read_per_mtok: 0.25, cache_write_per_mtok: 3}
                  triage-mini: {input_per_mtok: 2, output_per_mtok: 8}
                """
        },
    )
    prices = Prices(load_config(tmp_path).prices)
    usage = Usage(
        input_tokens=MILLION, output_tokens=MILLION, cache_read_tokens=MILLION, cache_write_tokens=MILLION
    )
    assert prices.cost(usage, "openai", "gpt-4o") == pytest.approx(1 + 2 + 0.25 + 3)
    # A price that names no cache rates charges the input rate for cache tokens.
    assert prices.cost(usage, "openai", "triage-mini") == pytest.approx(2 + 8 + 2 + 2)
    # The name a project calls its model by wins over the database's price for what answered.
    assert prices.cost(ONE_EACH, "openai", "gpt-4o-mini-2024-07-18", "triage-mini") == pytest.approx(10)
    rate = prices.rate("openai", "gpt-4o-mini-2024-07-18", "triage-mini")
    assert rate is not None
    assert (rate.model, rate.source) == ("triage-mini", "config")


def test_a_price_with_a_negative_cache_rate_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(
        tmp_path,
        {
            "agent-evals.yaml": "prices:\n  m: {input_per_mtok: 1, output_per_mtok: 2,\n      cache_read_per_mtok: -1}\n"
        },
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        "agent-evals.yaml:3: 'prices.m.cache_read_per_mtok': Input should be greater than or equal to 0 "
        "(got -1) (fix the value)"
    )


_OFFLINE = """
import socket, sys, threading

attempts = []

def refuse(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"):
        attempts.append(event)
        raise OSError(f"network refused in this test: {event}")

sys.addaudithook(refuse)

from agent_evals.pricing import Prices
from agent_evals.providers.base import Usage

prices = Prices({})
usage = Usage(1000, 100, 10, 10)
costs = [prices.cost(usage, "anthropic", m) for m in ("claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5")]
costs += [prices.cost(usage, "openai", m) for m in ("gpt-4o", "gpt-4o-2024-08-06", "o4-mini", "gpt-5")]
import genai_prices.data_snapshot as snapshot
print(all(c is not None and c > 0 for c in costs), attempts, threading.active_count(), snapshot._custom_snapshot)
"""


def test_prices_come_from_the_bundled_snapshot_without_the_network() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _OFFLINE], capture_output=True, text=True, check=True, cwd=ROOT, timeout=120
    )
    # Every price found; no connection tried; no updater thread; the bundled data, not a fetched one.
    assert out.stdout.split("\n")[-2] == "True [] 1 None"


def test_help_and_loading_prices_do_not_import_the_price_database() -> None:
    code = textwrap.dedent(
        """
        import sys
        from agent_evals.cli import main
        rc = main(["--help"])
        import agent_evals.calls, agent_evals.pricing
        agent_evals.pricing.Prices({})
        print(rc, "genai_prices" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.splitlines()[-1] == "0 False"


# --- a run: the record's cost ------------------------------------------------------


def _answered_as(model: str, handler: Handler) -> Handler:
    """`handler`'s answer, naming `model` as the model that answered (a snapshot, an alias...)."""

    def handle(request: Request) -> Response:
        response = handler(request)
        assert isinstance(response, Response)
        return dataclasses.replace(response, json={**response.json, "model": model})

    return handle


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    handler = anthropic_messages(
        input_tokens=1000, output_tokens=200, cache_read_tokens=4000, cache_write_tokens=800
    )
    with ScriptedServer(default=_answered_as("claude-opus-4-5-20251101", handler)) as s:
        yield s


def _project(root: Path, server: ScriptedServer, model: str) -> Path:
    prompt = (
        "schema_version: 1\nid: echo\nversion: 1\nowner: {name: Test team, oncall: test-pager}\n"
        f"model: {{provider: claude, name: {model}, max_tokens: 300}}\n"
        'messages:\n  - role: user\n    content: "{{ q }}"\n'
    )
    evalset = (
        "schema_version: 1\nid: echo\nprompt: echo\ngraders:\n  - {type: contains}\ncases:\n"
        "  - {id: q1, vars: {q: one}, expected: 'echo: one'}\n  - {id: q2, vars: {q: two}, expected: 'echo: two'}\n"
    )
    config = (
        "providers:\n  claude:\n    type: anthropic\n"
        f"    base_url: {server.url}\n    api_key_env: null\n"
        "defaults: {max_attempts: 1}\n"
    )
    return write_tree(
        root, {"prompts/echo.yaml": prompt, "evalsets/echo.yaml": evalset, "agent-evals.yaml": config}
    )


def test_a_run_prices_the_snapshot_that_answered_with_its_cache_tokens(
    server: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path, server, "claude-opus-4-5")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-cache", "--output", "run.jsonl"]) == 0
    record = load_record(tmp_path / "run.jsonl")
    expected = (1000 * 5 + 200 * 25 + 4000 * 0.5 + 800 * 6.25) / MILLION
    assert [(c.model, c.cost_usd) for c in record.cases] == [
        ("claude-opus-4-5-20251101", pytest.approx(expected)),
        ("claude-opus-4-5-20251101", pytest.approx(expected)),
    ]
    assert record.end is not None
    assert record.end.cost_usd == pytest.approx(2 * expected)


def test_the_budget_reserves_at_the_price_of_the_model_asked_for(
    server: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Asked for by an alias no price list knows; the answer names a priced snapshot.
    _project(tmp_path, server, "house-alias")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-cache", "--output", "free.jsonl"]) == 0
    costs = [c.cost_usd for c in load_record(tmp_path / "free.jsonl").cases]
    assert costs == [pytest.approx((1000 * 5 + 200 * 25 + 4000 * 0.5 + 800 * 6.25) / MILLION)] * 2
    # Under a ceiling the call must be reserved before it is sent, when only the alias is known.
    sent = server.request_count
    main(["run", "--no-cache", "--max-cost", "5", "--output", "capped.jsonl"])
    capped = load_record(tmp_path / "capped.jsonl")
    assert [c.status for c in capped.cases] == ["skipped", "skipped"]
    assert all("unpriced model" in (c.error or "") for c in capped.cases)
    assert server.request_count == sent


def test_an_unpriced_model_is_recorded_as_unpriced(
    server: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.default = _answered_as("house-model-v2", anthropic_messages())
    _project(tmp_path, server, "house-alias")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-cache", "--output", "run.jsonl"]) == 0
    record = load_record(tmp_path / "run.jsonl")
    assert [c.cost_usd for c in record.cases] == [None, None]
    assert record.end is not None
    assert record.end.cost_usd is None


def test_every_listed_price_costs_what_genai_prices_computes() -> None:
    # A flat price is applied by multiplying (`pricing._linear`, worked out from genai-prices once a
    # minute); it must equal genai-prices' own arithmetic for every model it lists, and a tiered
    # price (not linear) must still go through it.
    import random

    from genai_prices.data_snapshot import get_snapshot

    from agent_evals.pricing import _database_cost, _exact_cost, _linear

    rng = random.Random(17)
    tiered = flat = 0
    for provider in get_snapshot().providers:
        for model in provider.models:
            try:
                linear = _linear(model.id, provider.id, 0)
            except LookupError:  # listed under a name its own lookup does not find
                continue
            if linear is None:
                tiered += 1
            else:
                flat += 1
            for counts in [(0, 0, 0, 0), (1, 0, 0, 0), (0, 0, 0, 1)] + [
                (rng.randrange(300_000), rng.randrange(40_000), rng.randrange(300_000), rng.randrange(20_000))
                for _ in range(3)
            ]:
                usage = Usage(*counts)
                exact = _exact_cost(model.id, provider.id, counts)
                assert _database_cost(model.id, provider.id, usage) == pytest.approx(exact, rel=1e-9, abs=1e-15), (
                    provider.id, model.id, counts,
                )  # fmt: skip
    assert flat > 1000
    assert tiered > 10  # the tiered path is exercised too
    # And a flat price's cost is multiplied out, not worked out again by genai-prices per call.
    _linear.cache_clear()
    usage = Usage(input_tokens=1234, output_tokens=56)
    for _ in range(5):
        _database_cost("gpt-4o", "openai", usage)
    assert _linear.cache_info().misses <= 2  # once (twice if a minute turned meanwhile)
    assert _linear.cache_info().hits >= 3
