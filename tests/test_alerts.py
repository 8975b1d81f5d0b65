"""Alerts to the named on-call (agent_evals.alerts), against receivers on 127.0.0.1.

A PagerDuty Events API v2 stand-in and a Slack-style webhook run as real HTTP servers; every
PagerDuty body is validated against the Events v2 schema written below from PagerDuty's docs
(developer-docs, events-API-v2/02-Trigger-Events.md). The incident lifecycle runs on SQLite and
PostgreSQL. The routing key and webhook URL are synthetic.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select

from agent_evals.alerts import page as page_
from agent_evals.alerts import route
from agent_evals.checks import Check, CheckStatus
from agent_evals.cli import main
from agent_evals.credentials import scrub
from agent_evals.errors import ConfigError, EvaluationError
from agent_evals.history.store import Store, checks, incidents, metadata, open_store, resolve_url
from agent_evals.load import load_project
from agent_evals.models import AlertChannel, AlertsConfig, Owner, ProjectConfig, Prompt
from agent_evals.retry import RetryPolicy
from tests.http_server import Request, Response, ScriptedServer
from tests.support import basic_project, write_tree
from tests.test_history_import import history_url, pg_cluster

__all__ = ["history_url", "pg_cluster"]

KEY = "R0UTINGsynthetic0KEY000000000a1b"  # synthetic: a 32-character Events v2 integration key
KEY_ENV = "PD_ROUTING_KEY_SYNTHETIC"
HOOK_ENV = "SLACK_WEBHOOK_SYNTHETIC"
HOOK_PATH = "/services/T0SYNTH/B0SYNTH/synthetic0webhook0token0x9"
FAST = RetryPolicy(
    max_attempts=3, timeout_s=5.0, initial_backoff_s=0.01, max_backoff_s=0.02, retry_deadline_s=10.0
)
DEDUP = "agent-evals/triage/monitor"

# The Events API v2 alert event, from PagerDuty's documentation of its parameters.
EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["routing_key", "event_action"],
    "properties": {
        "routing_key": {"type": "string", "minLength": 1},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string", "format": "date-time"},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
            "additionalProperties": False,
        },
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["src"],
                "properties": {
                    "src": {"type": "string"},
                    "href": {"type": "string"},
                    "alt": {"type": "string"},
                },
                "additionalProperties": False,
            },
        },
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["href"],
                "properties": {"href": {"type": "string"}, "text": {"type": "string"}},
                "additionalProperties": False,
            },
        },
        "client": {"type": "string"},
        "client_url": {"type": "string"},
    },
    "additionalProperties": False,
    # A trigger carries the payload; acknowledge and resolve need only the key and dedup_key.
    "if": {"properties": {"event_action": {"const": "trigger"}}},
    "then": {"required": ["payload", "dedup_key"]},
    "else": {"required": ["dedup_key"], "not": {"required": ["payload"]}},
}


def pagerduty(request: Request) -> Response:
    """PagerDuty's answer to a valid event: 202 with the dedup_key."""
    return Response(
        202, {"status": "success", "message": "Event processed", "dedup_key": request.json["dedup_key"]}
    )


@pytest.fixture
def receiver() -> Iterator[ScriptedServer]:
    """PagerDuty on /v2/enqueue, a Slack-style webhook on HOOK_PATH."""
    with ScriptedServer() as server:
        server.route("POST", r"/v2/enqueue", pagerduty)
        server.route("POST", HOOK_PATH, Response(200, body="ok"))
        yield server
    assert not server.errors


def alerts_config(server: ScriptedServer, **overrides: Any) -> AlertsConfig:
    fields: dict[str, Any] = {
        "channels": {
            "oncall": AlertChannel(
                type="pagerduty", url=server.url_for("/v2/enqueue"), routing_key_env=KEY_ENV
            ),
            "slack": AlertChannel(type="webhook", url_env=HOOK_ENV),
        },
        "routes": {"pagerduty:support-ai": ("oncall",)},
        "default": ("slack",),
    }
    return AlertsConfig(**(fields | overrides))


def env_for(server: ScriptedServer) -> dict[str, str]:
    return {KEY_ENV: KEY, HOOK_ENV: server.url_for(HOOK_PATH)}


@pytest.fixture
def prompt(tmp_path: Path) -> Prompt:
    """tests.support's triage prompt: owner Support AI team, on-call pagerduty:support-ai."""
    return load_project(basic_project(tmp_path / "project")).prompts["triage"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(resolve_url(tmp_path, ProjectConfig(), {})) as opened:
        yield opened


def check(day: int, status: CheckStatus = "drop", headline: str | None = None) -> Check:
    """A monitor window of one week starting on March `day`, 2026 (synthetic)."""
    start = dt.datetime(2026, 3, 1) + dt.timedelta(days=day - 1)
    return Check(
        kind="monitor",
        prompt_id="triage",
        status=status,
        headline=headline
        or f"monitor triage: pass rate 91.2% -> 84.0% (-7.2 pts, p=0.003), week of March {day}",
        at=start + dt.timedelta(days=7, hours=1),
        evalset_id="triage",
        version="2",
        prompt_hash="abc123",
        window=(start, start + dt.timedelta(days=7)),
        figures={"n": 1200, "rate": 0.84, "baseline": 0.912, "pvalue": 0.003},
        run_id=f"prod-{day}",
    )


def bodies(server: ScriptedServer, path: str = "/v2/enqueue") -> list[Any]:
    return [r.json for r in server.requests if r.path == path]


def incident(store: Store) -> dict[str, Any]:
    with store.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.dedup_key == DEDUP)).mappings().one()
    return dict(row)


def stored_alert(store: Store, c: Check) -> Any:
    with store.connect() as conn:
        return conn.execute(select(checks.c.alert).where(checks.c.check_id == c.check_id)).scalar_one()


def open_history(url: str, root: Path) -> Store:
    return open_store(resolve_url(root, ProjectConfig(), {"AGENT_EVALS_HISTORY_URL": url}))


# --- the PagerDuty event ------------------------------------------------------------------------


def test_a_drop_triggers_a_documented_pagerduty_event_that_says_what_dropped(
    receiver: ScriptedServer, prompt: Prompt, store: Store
) -> None:
    drop = check(1)
    alert = page_(store, alerts_config(receiver), prompt, drop, environ=env_for(receiver), retry=FAST)

    [body] = bodies(receiver)
    jsonschema.validate(body, EVENT_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert body == {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": DEDUP,
        "payload": {
            "summary": "agent-evals monitor drop: triage: monitor triage: pass rate 91.2% -> 84.0% (-7.2 pts, "
            "p=0.003), week of March 1 | window 2026-03-01T00:00:00Z..2026-03-08T00:00:00Z | version 2 | "
            "owner Support AI team, on-call pagerduty:support-ai",
            "source": "agent-evals/triage",
            "severity": "error",
            "timestamp": "2026-03-08T01:00:00Z",
            "component": "triage",
            "group": "triage",
            "class": "monitor drop",
            "custom_details": {
                "dedup_key": DEDUP,
                "prompt": "triage",
                "owner": "Support AI team",
                "oncall": "pagerduty:support-ai",
                "check_id": drop.check_id,
                "kind": "monitor",
                "status": "drop",
                "headline": drop.headline,
                "evalset": "triage",
                "version": "2",
                "prompt_hash": "abc123",
                "window": ["2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z"],
                "run_id": "prod-1",
                "figures": {"n": 1200, "rate": 0.84, "baseline": 0.912, "pvalue": 0.003},
            },
        },
        "client": "agent-evals",
    }
    assert receiver.last.headers["content-type"] == "application/json"
    assert alert == {
        "action": "trigger",
        "dedup_key": DEDUP,
        "reason": "a new incident",
        "deliveries": [
            {
                "channel": "oncall",
                "type": "pagerduty",
                "action": "trigger",
                "ok": True,
                "attempts": 1,
                "status": 202,
            }
        ],
    }
    assert stored_alert(store, drop) == alert


def test_the_summary_is_cut_to_pagerdutys_1024_characters(
    receiver: ScriptedServer, prompt: Prompt, store: Store
) -> None:
    page_(store, alerts_config(receiver), prompt, check(1, headline="x" * 2000), environ=env_for(receiver))
    [body] = bodies(receiver)
    jsonschema.validate(body, EVENT_SCHEMA)
    summary = body["payload"]["summary"]
    assert len(summary) == 1024
    assert summary == "agent-evals monitor drop: triage: " + "x" * 989 + "…"


# --- once per incident --------------------------------------------------------------------------


def test_one_trigger_per_incident_over_three_drop_windows_and_a_resolve_on_recovery(
    history_url: str, receiver: ScriptedServer, prompt: Prompt, tmp_path: Path
) -> None:
    config, env = alerts_config(receiver), env_for(receiver)
    with open_history(history_url, tmp_path) as store:
        actions = [
            page_(store, config, prompt, check(day), environ=env, retry=FAST, now=check(day).at)["action"]
            for day in (1, 8, 15)
        ]
        assert actions == ["trigger", "repeat", "repeat"]
        assert [b["event_action"] for b in bodies(receiver)] == ["trigger"]
        row = incident(store)
        assert (row["status"], row["channels"], row["check_id"]) == ("open", ["oncall"], check(1).check_id)
        assert [(e["action"], e["check_id"], e["channels"]) for e in row["events"]] == [
            ("trigger", check(1).check_id, ["oncall"]),
            ("repeat", check(8).check_id, []),
            ("repeat", check(15).check_id, []),
        ]
        assert (
            stored_alert(store, check(15))["reason"]
            == "incident open since 2026-03-08T01:00:00Z: already paged"
        )

        recovered = check(22, status="ok", headline="monitor triage: pass rate 90.8% (no significant drop)")
        alert = page_(store, config, prompt, recovered, environ=env, retry=FAST, now=recovered.at)
        assert (alert["action"], alert["reason"]) == ("resolve", "recovered")
        resolve = bodies(receiver)[-1]
        jsonschema.validate(resolve, EVENT_SCHEMA)
        assert resolve == {"routing_key": KEY, "event_action": "resolve", "dedup_key": DEDUP}
        row = incident(store)
        assert (row["status"], row["resolved_at"]) == ("resolved", recovered.at)
        assert [e["action"] for e in row["events"]] == ["trigger", "repeat", "repeat", "resolve"]

        # Fine again: nothing to resolve, nothing sent.
        again = page_(store, config, prompt, check(29, status="ok"), environ=env, retry=FAST)
        assert (again["action"], again["reason"]) == ("none", "no open incident")
        # A new drop after the recovery is a new incident: paged again, with the same dedup_key.
        assert page_(store, config, prompt, check(36), environ=env, retry=FAST)["action"] == "trigger"
        assert [b["event_action"] for b in bodies(receiver)] == ["trigger", "resolve", "trigger"]
        assert incident(store)["status"] == "open"


@pytest.mark.parametrize(
    ("status", "reason"),
    [("cannot_tell", "a window too small to tell never pages"), ("stale", "stale never pages")],
)
def test_cannot_tell_and_stale_never_page_even_with_no_channel(
    status: CheckStatus, reason: str, receiver: ScriptedServer, prompt: Prompt, store: Store
) -> None:
    small = check(1, status=status, headline="cannot tell (n=12; needs about 180 to see a 5-point drop)")
    alert = page_(store, AlertsConfig(), prompt, small)
    assert alert == {"action": "none", "dedup_key": DEDUP, "reason": reason}
    assert receiver.request_count == 0
    assert stored_alert(store, small) == alert


def test_a_drop_with_paging_not_set_up_is_kept_and_says_nobody_was_paged(
    prompt: Prompt, store: Store
) -> None:
    drop = check(1)
    alert = page_(store, AlertsConfig(), prompt, drop)
    assert alert == {
        "action": "none",
        "dedup_key": DEDUP,
        "reason": "no alert channels configured (alerts: in agent-evals.yaml): nobody was paged",
    }
    assert stored_alert(store, drop) == alert
    with store.connect() as conn:
        assert conn.execute(select(incidents)).first() is None


def test_a_drop_with_no_channel_for_its_on_call_is_one_config_line_and_the_check_is_kept(
    prompt: Prompt, store: Store
) -> None:
    drop = check(1)
    config = AlertsConfig(channels={"other": AlertChannel(type="webhook", url_env="OTHER_WEBHOOK_URL")})
    with pytest.raises(ConfigError) as caught:
        page_(store, config, prompt, drop)
    assert caught.value.render() == (
        "triage: a significant drop is due a page, but no alert channel is configured for on-call "
        "'pagerduty:support-ai' (add alerts.routes.pagerduty:support-ai or alerts.default to agent-evals.yaml)"
    )
    with store.connect() as conn:
        assert (
            conn.execute(select(checks.c.status).where(checks.c.check_id == drop.check_id)).scalar() == "drop"
        )
        assert conn.execute(select(incidents)).first() is None


# --- HTTP: retries, refusals, a receiver down ---------------------------------------------------


def test_429_and_503_are_retried_politely_then_the_page_goes_through(
    receiver: ScriptedServer, prompt: Prompt, store: Store
) -> None:
    receiver.enqueue(
        Response(429, {"status": "throttle", "message": "Too many requests"}, headers={"Retry-After": "1"}),
        Response(503, body="Service Unavailable"),
    )
    alert = page_(store, alerts_config(receiver), prompt, check(1), environ=env_for(receiver), retry=FAST)

    first, second, third = receiver.requests
    assert second.time - first.time >= 1.0  # Retry-After honoured
    assert first.json == second.json == third.json
    assert alert["deliveries"] == [
        {
            "channel": "oncall",
            "type": "pagerduty",
            "action": "trigger",
            "ok": True,
            "attempts": 3,
            "status": 202,
        }
    ]
    assert incident(store)["channels"] == ["oncall"]


def test_a_refused_event_is_not_retried_and_is_one_line_without_the_key(
    receiver: ScriptedServer, prompt: Prompt, store: Store
) -> None:
    receiver.enqueue(
        Response(
            400,
            {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [f"routing_key {KEY} does not match an integration"],
            },
        )
    )
    with pytest.raises(ConfigError) as caught:
        page_(store, alerts_config(receiver), prompt, check(1), environ=env_for(receiver), retry=FAST)
    assert receiver.request_count == 1
    url = receiver.url_for("/v2/enqueue")
    assert str(caught.value) == (
        f"could not send trigger to oncall (pagerduty): pagerduty channel 'oncall' ({url}) refused the event: "
        "400 Event object is invalid: routing_key *** does not match an integration (check that the routing "
        "key is an Events API v2 integration key) (the check is stored: " + check(1).check_id + ")"
    )
    # Released: the next drop pages again instead of counting the failed page as sent.
    assert incident(store)["channels"] == []


def test_a_receiver_down_keeps_the_check_says_which_channel_and_pages_once_it_is_back(
    history_url: str, prompt: Prompt, tmp_path: Path
) -> None:
    down = ScriptedServer().start()
    config = alerts_config(down)
    url = down.url_for("/v2/enqueue")
    down.stop()
    env = {KEY_ENV: KEY}
    with open_history(history_url, tmp_path) as store:
        with pytest.raises(EvaluationError) as caught:
            page_(store, config, prompt, check(1), environ=env, retry=FAST)
        assert caught.value.exit_code == 3
        assert str(caught.value) == (
            f"could not send trigger to oncall (pagerduty): could not connect to pagerduty channel 'oncall' ({url}): "
            "connection refused (check the base URL, and that the server is up) (after 3 attempts) "
            f"(the check is stored: {check(1).check_id})"
        )
        assert KEY not in str(caught.value)
        alert = stored_alert(store, check(1))
        assert alert["action"] == "trigger"
        assert [(d["ok"], d["attempts"]) for d in alert["deliveries"]] == [(False, 3)]
        row = incident(store)
        assert (row["status"], row["channels"]) == ("open", [])
        assert [e["action"] for e in row["events"]] == ["trigger", "trigger failed"]

        with ScriptedServer() as back:
            back.route("POST", r"/v2/enqueue", pagerduty)
            alert = page_(store, alerts_config(back), prompt, check(8), environ=env, retry=FAST)
            assert (alert["action"], alert["reason"]) == (
                "trigger",
                "the open incident had not reached these channels",
            )
            assert [b["event_action"] for b in bodies(back)] == ["trigger"]
            # ... and once only.
            assert (
                page_(store, alerts_config(back), prompt, check(15), environ=env, retry=FAST)["action"]
                == "repeat"
            )
            assert back.request_count == 1


def test_a_resolve_that_fails_keeps_the_incident_open_to_resolve_next_time(
    receiver: ScriptedServer, prompt: Prompt, store: Store
) -> None:
    config, env = alerts_config(receiver), env_for(receiver)
    page_(store, config, prompt, check(1), environ=env, retry=FAST)
    receiver.enqueue(*[Response(500, body="boom")] * 3)
    with pytest.raises(EvaluationError):
        page_(store, config, prompt, check(8, status="ok"), environ=env, retry=FAST)
    row = incident(store)
    assert (row["status"], row["channels"], row["resolved_at"]) == ("open", ["oncall"], None)
    assert (
        page_(store, config, prompt, check(15, status="ok"), environ=env, retry=FAST)["action"] == "resolve"
    )
    assert [b["event_action"] for b in bodies(receiver)] == ["trigger"] + ["resolve"] * 4
    assert incident(store)["status"] == "resolved"


# --- the webhook and routing ----------------------------------------------------------------------


def test_the_webhook_gets_slack_json_for_a_drop_and_recovered_for_the_recovery(
    receiver: ScriptedServer, prompt: Prompt, store: Store
) -> None:
    config = alerts_config(receiver, routes={"pagerduty:support-ai": ("slack",)})
    drop = check(1, headline="monitor triage: pass rate 91% -> 84% on <refund> & <billing>")
    page_(store, config, prompt, drop, environ=env_for(receiver), retry=FAST)
    page_(
        store,
        config,
        prompt,
        check(8, status="ok", headline="monitor triage: 90%"),
        environ=env_for(receiver),
    )

    trigger, recovered = bodies(receiver, HOOK_PATH)
    summary = (
        "agent-evals monitor drop: triage: monitor triage: pass rate 91% -> 84% on <refund> & <billing> | "
        "window 2026-03-01T00:00:00Z..2026-03-08T00:00:00Z | version 2 | owner Support AI team, "
        "on-call pagerduty:support-ai"
    )
    assert trigger == {
        "text": f":rotating_light: drop: {summary}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "agent-evals: triage monitor drop"}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": summary.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Window*\n2026-03-01T00:00:00Z .. 2026-03-08T00:00:00Z"},
                    {"type": "mrkdwn", "text": "*Version*\n2"},
                    {"type": "mrkdwn", "text": "*Owner*\nSupport AI team"},
                    {"type": "mrkdwn", "text": "*On-call*\npagerduty:support-ai"},
                ],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"incident {DEDUP} · check {drop.check_id}"}],
            },
        ],
    }
    assert recovered["text"] == (
        ":white_check_mark: recovered: agent-evals monitor recovered: triage: monitor triage: 90% | "
        "window 2026-03-08T00:00:00Z..2026-03-15T00:00:00Z | version 2 | owner Support AI team, "
        "on-call pagerduty:support-ai"
    )
    assert recovered["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "agent-evals: triage monitor recovered"},
    }
    assert bodies(receiver) == []  # PagerDuty is not this on-call's channel


def test_routing_follows_owner_oncall_else_the_default(
    receiver: ScriptedServer, prompt: Prompt, store: Store
) -> None:
    config = alerts_config(receiver)
    other = prompt.model_copy(update={"owner": Owner(name="Growth team", oncall="slack:#growth-alerts")})
    assert route(config, prompt) == ("oncall",)
    assert route(config, other) == ("slack",)
    page_(store, config, other, check(1), environ=env_for(receiver), retry=FAST)
    assert [r.path for r in receiver.requests] == [HOOK_PATH]


def test_a_route_to_an_undefined_channel_is_refused_where_the_file_says_it(tmp_path: Path) -> None:
    from agent_evals.load import load_config

    (tmp_path / "agent-evals.yaml").write_text(
        "schema_version: 1\n"
        "alerts:\n"
        "  channels:\n"
        "    oncall: {type: pagerduty}\n"
        "  routes:\n"
        '    "pagerduty:support-ai": [oncall, pager-two]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.render().endswith(
        "agent-evals.yaml:2: 'alerts': routes or default name undefined channel(s): pager-two "
        "(define them under alerts.channels (defined: oncall))"
    )


def test_a_missing_routing_key_is_one_line_naming_the_variable(
    receiver: ScriptedServer, prompt: Prompt, store: Store
) -> None:
    with pytest.raises(ConfigError) as caught:
        page_(store, alerts_config(receiver), prompt, check(1), environ={})
    assert str(caught.value) == (
        f"could not send trigger to oncall (pagerduty): alerts.channels.oncall: {KEY_ENV} is not set "
        f"(export the PagerDuty integration's routing key as {KEY_ENV}) (the check is stored: {check(1).check_id})"
    )
    assert receiver.request_count == 0
    assert incident(store)["channels"] == []


# --- two monitors at once -------------------------------------------------------------------------

RACE = """
import datetime as dt, json, sys, time
from pathlib import Path
from agent_evals.alerts import page
from agent_evals.checks import Check
from agent_evals.history.store import open_store, resolve_url
from agent_evals.load import load_project
from agent_evals.models import AlertsConfig, ProjectConfig
from agent_evals.retry import RetryPolicy

root, config_json, start_at = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
prompt = load_project(root).prompts["triage"]
config = AlertsConfig.model_validate_json(config_json)
drop = Check(kind="monitor", prompt_id="triage", status="drop", headline="monitor triage: -7.2 pts (synthetic)",
             at=dt.datetime(2026, 3, 8), window=(dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 8)))
with open_store(resolve_url(root, ProjectConfig())) as store:
    time.sleep(max(0.0, start_at - time.time()))
    alert = page(store, config, prompt, drop, retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01))
print(alert["action"])
"""


def test_two_monitors_finding_the_same_drop_at_once_page_once(
    history_url: str, receiver: ScriptedServer, prompt: Prompt, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    with open_history(history_url, tmp_path):
        pass  # migrated before the race, so the processes race on the incident and not the schema
    config = alerts_config(receiver).model_dump_json()
    script = tmp_path / "race.py"
    script.write_text(textwrap.dedent(RACE), encoding="utf-8")
    env = {
        **os.environ,
        **env_for(receiver),
        "AGENT_EVALS_HISTORY_URL": history_url,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    start_at = time.time() + 4.0
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), config, str(start_at)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    assert sorted(r[0].strip() for r in results) == ["repeat", "trigger"]
    assert [b["event_action"] for b in bodies(receiver)] == ["trigger"]
    with open_history(history_url, tmp_path) as store:
        assert [e["action"] for e in incident(store)["events"]] == ["trigger", "repeat"]


# --- the command, and no key anywhere ---------------------------------------------------------------

CONFIG = """\
schema_version: 1
defaults:
  max_attempts: 2
  initial_backoff_s: 0.01
  max_backoff_s: 0.02
alerts:
  channels:
    oncall: {{type: pagerduty, url: "{pd}", routing_key_env: {key_env}}}
    slack: {{type: webhook, url_env: {hook_env}}}
  routes:
    "pagerduty:support-ai": [oncall]
  default: [slack]
"""


@pytest.fixture
def cli_project(tmp_path: Path, receiver: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = basic_project(tmp_path / "cli")
    config = CONFIG.format(pd=receiver.url_for("/v2/enqueue"), key_env=KEY_ENV, hook_env=HOOK_ENV)
    write_tree(root, {"agent-evals.yaml": config})
    monkeypatch.chdir(root)
    for name, value in env_for(receiver).items():
        monkeypatch.setenv(name, value)
    return root


def test_alert_test_sends_a_trigger_and_its_resolve_to_the_prompts_oncall(
    cli_project: Path, receiver: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alert", "test", "--prompt", "triage"]) == 0
    assert (
        capsys.readouterr().out
        == "sent test to oncall (pagerduty): HTTP 202\nsent resolve to oncall (pagerduty): HTTP 202\n"
    )
    trigger, resolve = bodies(receiver)
    for body in (trigger, resolve):
        jsonschema.validate(body, EVENT_SCHEMA)
    assert trigger["dedup_key"] == resolve["dedup_key"] == "agent-evals/triage/test"
    assert trigger["payload"]["severity"] == "info"
    assert trigger["payload"]["summary"] == (
        "agent-evals test event for triage (owner Support AI team, on-call pagerduty:support-ai): no action needed"
    )

    assert main(["alert", "test"]) == 0  # every channel
    assert capsys.readouterr().out == (
        "sent test to oncall (pagerduty): HTTP 202\nsent test to slack (webhook): HTTP 200\n"
        "sent resolve to oncall (pagerduty): HTTP 202\n"
    )
    assert bodies(receiver, HOOK_PATH) == [
        {"text": "agent-evals test event for this project: no action needed"}
    ]


def test_alert_test_exit_codes(
    cli_project: Path,
    receiver: ScriptedServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["alert", "test", "--prompt", "nope"]) == 2
    assert capsys.readouterr().err == "--prompt nope: no such prompt (prompts: triage)\n"

    monkeypatch.delenv(KEY_ENV)
    assert main(["alert", "test", "--prompt", "triage"]) == 2
    assert capsys.readouterr().err == (
        f"could not send test to oncall (pagerduty): alerts.channels.oncall: {KEY_ENV} is not set "
        f"(export the PagerDuty integration's routing key as {KEY_ENV})\n"
    )
    monkeypatch.setenv(KEY_ENV, KEY)
    receiver.enqueue(*[Response(503, body="down")] * 2)
    assert main(["alert", "test", "--prompt", "triage"]) == 3
    url = receiver.url_for("/v2/enqueue")
    # The retry is said as it happens (a wait of a minute is not silence), then the failure.
    assert capsys.readouterr().err == (
        f"note: test to oncall (pagerduty), attempt 1: pagerduty channel 'oncall' ({url}) answered 503 down; "
        "retrying in 0s\n"
        f"could not send test to oncall (pagerduty): pagerduty channel 'oncall' ({url}) answered 503 down "
        "(after 2 attempts)\n"
    )
    receiver.enqueue(*[Response(503, body="down")] * 2)
    assert main(["-q", "alert", "test", "--prompt", "triage"]) == 3
    assert capsys.readouterr().err.startswith("could not send test")  # -q: the error only


def test_no_key_or_webhook_url_in_any_output_record_or_file(
    cli_project: Path,
    receiver: ScriptedServer,
    prompt: Prompt,
    history_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = HOOK_PATH.rsplit("/", 1)[1]
    # The receiver echoes the key back, as a misbehaving proxy might.
    receiver.enqueue(Response(503, {"message": f"bad key {KEY} at {HOOK_PATH}"}))
    assert main(["alert", "test"]) == 0
    config = alerts_config(receiver, routes={"pagerduty:support-ai": ("oncall", "slack")})
    messages = []
    with open_history(history_url, tmp_path) as store:
        page_(store, config, prompt, check(1), environ=env_for(receiver), retry=FAST)
        page_(store, config, prompt, check(8), environ=env_for(receiver), retry=FAST)
        receiver.enqueue(*[Response(400, {"message": f"refused {KEY}"})] * 2)
        try:
            page_(store, config, prompt, check(15, status="ok"), environ=env_for(receiver), retry=FAST)
        except ConfigError as exc:
            messages.append(str(exc))
        with store.connect() as conn:
            rows = [
                json.dumps([list(r) for r in conn.execute(select(table))], default=str)
                for table in metadata.sorted_tables
            ]
    captured = capsys.readouterr()
    assert bodies(receiver)[0]["routing_key"] == KEY  # it was sent, to the receiver only
    # Registered, so whatever prints or stores them is scrubbed (the CLI's streams, checks, records).
    assert (
        scrub(f"key {KEY} url {receiver.url_for(HOOK_PATH)} token {token}.") == "key *** url *** token ***."
    )
    assert len(messages) == 1
    assert "***" in messages[0]
    texts = [captured.out, captured.err, *messages, *rows]
    assert any("oncall" in text for text in rows)
    for text in texts:
        assert KEY not in text
        assert token not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert KEY.encode() not in data, path
            assert token.encode() not in data, path
