"""Page the prompt's on-call when `monitor` or `verify` finds a significant drop, once per incident.

`page(store, config, prompt, check)` is the whole API a check needs. What it does, by the check's
status and the prompt's open incident (`incidents` row, keyed by `checks.incident_key`):

    status        no open incident                  an open incident
    drop          trigger: open one, page it         send nothing new (a webhook would post
                                                     again; PagerDuty would dedupe), record it
    ok            nothing                            resolve: PagerDuty `resolve` with the same
                                                     dedup_key, a webhook "recovered"; closed
    cannot_tell   never pages (the window is too small to tell: the check says so)
    stale         never pages (freshness is shown, not paged)

Routing: the prompt's `owner.oncall` names its channels in `alerts.routes`, else `alerts.default`
(no channel at all is a ConfigError, raised only when a page is due). Channel types are a
registry (`CHANNELS`): each turns an event into its request body and says where it goes.

Concurrency: two monitor processes that find the same drop at once page once. The incident row
is the lock: it is claimed (inserted if absent, re-opened if resolved, its channels marked) in
one write transaction before anything is sent, and the channels a send failed for are released
afterwards, so the next check pages them again instead of never.

HTTP (aiohttp, as the providers): every attempt has a timeout; 429 and 5xx are retried politely
through `retry.call_with_retry` (Retry-After honoured; PagerDuty sends none, so backoff); any
other 4xx is not retried and is one line (ConfigError: the key or URL is wrong). A receiver still
down after the retries leaves the check stored and raises EvaluationError (exit 3) naming the
channel. Secrets come from the environment only (the routing key, the webhook URL, whose path
is Slack's token), are registered with `credentials` before any request, and never reach output,
the store (every stored event is scrubbed) or a file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

from agent_evals import _json
from agent_evals.checks import Check, incident_key, store_check
from agent_evals.credentials import register, register_url, safe_url, scrub
from agent_evals.errors import ConfigError, EvaluationError, FailureKind, ProviderError
from agent_evals.retry import RetryEvent, RetryPolicy, call_with_retry, wait_text

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.history.store import Store
    from agent_evals.models import AlertChannel, AlertsConfig, Prompt

__all__ = [
    "CHANNELS",
    "DEFAULT_ROUTING_KEY_ENV",
    "PAGERDUTY_URL",
    "SUMMARY_LIMIT",
    "ChannelType",
    "Delivery",
    "Endpoint",
    "Event",
    "page",
    "raise_for",
    "route",
    "send_test",
]

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_ROUTING_KEY_ENV = "PAGERDUTY_ROUTING_KEY"
SUMMARY_LIMIT = 1024
"""PagerDuty's limit on `payload.summary`."""
_SLACK_HEADER_LIMIT = 150
_SLACK_TEXT_LIMIT = 3000
_EXCERPT = 200
_TOKEN_MIN = 16
"""A webhook URL's last path segment this long is taken for its token (Slack's are 24)."""
# A pager endpoint answers in well under a second; half a minute means the attempt is lost.
_CONNECT_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 30.0

Action = Literal["trigger", "resolve", "test"]


@dataclass(frozen=True)
class Event:
    """What one page says, whatever channel carries it.

    Attributes:
        action: `trigger` (a drop), `resolve` (recovered), or `test` (`agent-evals alert test`).
        dedup_key: the incident's key (`checks.incident_key`): PagerDuty's dedup_key.
        prompt: the prompt whose on-call is paged.
        check: the check behind it (None for a test event).
        summary: one line, at most SUMMARY_LIMIT characters, scrubbed.
    """

    action: Action
    dedup_key: str
    prompt: Prompt | None
    check: Check | None
    summary: str

    def details(self) -> dict[str, Any]:
        """What the check rests on, JSON-ready and scrubbed: PagerDuty's custom_details."""
        check, prompt = self.check, self.prompt
        out: dict[str, Any] = {"dedup_key": self.dedup_key}
        if prompt is not None:
            out |= {"prompt": prompt.id, "owner": prompt.owner.name, "oncall": prompt.owner.oncall}
        if check is not None:
            out |= {
                "check_id": check.check_id,
                "kind": check.kind,
                "status": check.status,
                "headline": check.headline,
                "evalset": check.evalset_id,
                "version": check.version,
                "prompt_hash": check.prompt_hash,
                "window": [_utc(w) for w in check.window] if check.window else None,
                "run_id": check.run_id,
                "pr": check.pr,
                "figures": dict(check.figures),
            }
        return _scrubbed({k: v for k, v in out.items() if v is not None})


@dataclass(frozen=True)
class Endpoint:
    """A channel ready to send to. `secret` is the routing key or the webhook URL: never shown."""

    name: str
    type: str
    url: str
    shown: str
    """How messages name it: `pagerduty channel 'oncall' (https://events.pagerduty.com/v2/enqueue)`."""
    secret: str = field(repr=False)


class ChannelType(Protocol):
    """One kind of receiver: where a channel sends, and the body of an event."""

    def endpoint(self, name: str, channel: AlertChannel, environ: Mapping[str, str]) -> Endpoint:
        """Resolve the channel's URL and secret from the environment (registered for scrubbing).

        Raises:
            ConfigError: the environment variable is not set, or the URL is not http(s).
        """
        ...

    def body(self, event: Event, endpoint: Endpoint) -> dict[str, Any]:
        """The JSON request body for `event`."""
        ...


class PagerDuty:
    """PagerDuty Events API v2: `trigger`, and `resolve` with the same dedup_key."""

    def endpoint(self, name: str, channel: AlertChannel, environ: Mapping[str, str]) -> Endpoint:
        var = channel.routing_key_env or DEFAULT_ROUTING_KEY_ENV
        key = environ.get(var, "").strip()
        if not key:
            raise ConfigError(
                f"alerts.channels.{name}: {var} is not set",
                hint=f"export the PagerDuty integration's routing key as {var}",
            )
        register(key)
        url = channel.url or PAGERDUTY_URL
        register_url(url)
        _check_scheme(url, f"alerts.channels.{name}.url", "e.g. " + PAGERDUTY_URL)
        return Endpoint(name, "pagerduty", url, f"pagerduty channel '{name}' ({safe_url(url)})", key)

    def body(self, event: Event, endpoint: Endpoint) -> dict[str, Any]:
        action = "resolve" if event.action == "resolve" else "trigger"
        dedup = event.dedup_key
        body: dict[str, Any] = {"routing_key": endpoint.secret, "event_action": action, "dedup_key": dedup}
        if action == "resolve":
            return body
        check, prompt = event.check, event.prompt
        payload: dict[str, Any] = {
            "summary": event.summary,
            "source": f"agent-evals/{prompt.id}" if prompt is not None else "agent-evals",
            "severity": "info" if event.action == "test" else "error",
            "timestamp": _utc(check.at if check is not None else _now()),
            "component": prompt.id if prompt is not None else "agent-evals",
            "group": (check.evalset_id if check is not None else None) or "agent-evals",
            "class": f"{check.kind} drop" if check is not None else "test",
            "custom_details": event.details(),
        }
        return body | {"payload": payload, "client": "agent-evals"}


class Webhook:
    """A webhook taking Slack-compatible JSON (`text`, and `blocks` for Slack's layout)."""

    def endpoint(self, name: str, channel: AlertChannel, environ: Mapping[str, str]) -> Endpoint:
        if not channel.url_env:
            raise ConfigError(
                f"alerts.channels.{name}: a webhook needs url_env",
                hint="name the environment variable holding its URL, e.g. url_env: SLACK_WEBHOOK_URL",
            )
        url = environ.get(channel.url_env, "").strip()
        if not url:
            raise ConfigError(
                f"alerts.channels.{name}: {channel.url_env} is not set",
                hint=f"export the webhook's URL as {channel.url_env}",
            )
        # The whole URL is the credential (Slack's path ends in its token): registered whole, its path,
        # its query and its last segment when that is long enough to be a token and not a word.
        parts = urlsplit(url)
        last = parts.path.rstrip("/").rsplit("/", 1)[-1]
        register(url, parts.path.strip("/"), parts.query, last if len(last) >= _TOKEN_MIN else None)
        register_url(url)
        _check_scheme(url, channel.url_env, "e.g. https://hooks.slack.com/services/...")
        return Endpoint(name, "webhook", url, f"webhook channel '{name}' (URL from {channel.url_env})", url)

    def body(self, event: Event, endpoint: Endpoint) -> dict[str, Any]:
        check, prompt = event.check, event.prompt
        if event.action == "test":
            return {"text": event.summary}
        head = "recovered" if event.action == "resolve" else "drop"
        icon = ":white_check_mark:" if event.action == "resolve" else ":rotating_light:"
        title = f"agent-evals: {prompt.id if prompt else '?'} {check.kind if check else ''} {head}"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(title, _SLACK_HEADER_LIMIT)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(event.summary)}},
        ]
        fields = _facts(event)
        if fields:
            blocks.append(
                {
                    "type": "section",
                    "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_mrkdwn(v)}"} for k, v in fields],
                }
            )
        context = f"incident {event.dedup_key}" + (f" · check {check.check_id}" if check else "")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(context)}]})
        return {"text": f"{icon} {head}: {event.summary}", "blocks": blocks}


CHANNELS: dict[str, ChannelType] = {"pagerduty": PagerDuty(), "webhook": Webhook()}
"""Channel types by the name `alerts.channels.*.type` gives."""


@dataclass(frozen=True)
class Delivery:
    """What sending one event to one channel came to."""

    channel: str
    type: str
    action: Action
    ok: bool
    attempts: int = 0
    status: int | None = None
    """The receiver's HTTP status, when it answered."""
    error: str | None = None
    """One scrubbed line, when it failed."""
    config: bool = False
    """The failure is the configuration's (a missing variable, a 4xx): exit 2, not 3."""

    def line(self) -> str:
        what = f"{self.action} to {self.channel} ({self.type})"
        if self.ok:
            return f"sent {what}: HTTP {self.status}" + (
                f" after {self.attempts} attempts" if self.attempts > 1 else ""
            )
        return f"could not send {what}: {self.error}"

    def as_json(self) -> dict[str, Any]:
        out = {
            "channel": self.channel,
            "type": self.type,
            "action": self.action,
            "ok": self.ok,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
        }
        return {k: v for k, v in out.items() if v is not None}


# --- routing ---------------------------------------------------------------------------------


def route(config: AlertsConfig, prompt: Prompt) -> tuple[str, ...]:
    """The channel names that page `prompt`'s on-call: its `owner.oncall` route, else the default
    (every name is a defined channel: `AlertsConfig` refuses others where the file says them)."""
    names = config.routes.get(prompt.owner.oncall, config.default)
    return tuple(dict.fromkeys(names))


def _endpoint(config: AlertsConfig, name: str, environ: Mapping[str, str]) -> Endpoint:
    channel = config.channels.get(name)
    if channel is None:
        raise ConfigError(f"alerts.channels has no channel {name!r}", hint=_defined(config))
    return CHANNELS[channel.type].endpoint(name, channel, environ)


def _defined(config: AlertsConfig) -> str:
    names = ", ".join(sorted(config.channels)) or "none"
    return f"channels defined: {names}"


# --- paging ----------------------------------------------------------------------------------


def page(
    store: Store,
    config: AlertsConfig,
    prompt: Prompt,
    check: Check,
    *,
    environ: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
    now: dt.datetime | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Store `check`, and page or un-page the prompt's on-call as its status and the open incident say.

    The check is stored first (`checks.store_check`), so it is kept whatever the receivers do,
    and stored again with what was sent (`checks.alert`): callers store a check by calling this,
    not `store_check` after it (that would forget the alert).

    Args:
        store: the history store holding `incidents`.
        config: `alerts:` from agent-evals.yaml.
        prompt: the prompt checked (its owner and on-call).
        check: the conclusion of `monitor`, `verify` or the freshness check.
        environ: where secrets are read (default `os.environ`).
        retry: the retry policy for each request (default `RetryPolicy()`; the CLI passes the
            project's).
        now: the time incidents record (default: now, naive UTC).
        on_retry: called with a line before each retry's wait (which channel, what failed,
            how long), so a command waiting on a receiver says why.

    Returns:
        The alert record stored with the check: `action` (trigger, repeat, resolve or none),
        `dedup_key`, `reason`, and per channel what was sent (`deliveries`).

    Raises:
        ConfigError: a page is due and no channel is configured for the on-call, a channel's
            variable is not set, or a receiver refused the event (a 4xx other than 429).
        EvaluationError: a receiver could not be reached after the retries (the check is stored).
    """
    env = os.environ if environ is None else environ
    when = now or _now()
    key = incident_key(prompt.id, check.kind)
    store_check(store, check)
    if check.status not in ("drop", "ok"):
        reason = (
            "a window too small to tell never pages" if check.status == "cannot_tell" else "stale never pages"
        )
        return _finish(store, check, {"action": "none", "dedup_key": key, "reason": reason})
    if not config.channels:
        # Paging is not set up at all: say so beside the result (it is no reason to fail the check).
        reason = "no alert channels configured (alerts: in agent-evals.yaml): nobody was paged"
        return _finish(store, check, {"action": "none", "dedup_key": key, "reason": reason})
    routed: tuple[str, ...] = ()
    if check.status == "drop":
        routed = route(config, prompt)
        if not routed:
            raise ConfigError(
                f"{prompt.id}: a significant drop is due a page, but no alert channel is configured for "
                f"on-call {prompt.owner.oncall!r}",
                hint=f"add alerts.routes.{prompt.owner.oncall} or alerts.default to agent-evals.yaml",
            )
    plan = _claim(store, key, prompt, check, routed, when)
    if not plan.send:
        return _finish(store, check, {"action": plan.action, "dedup_key": key, "reason": plan.reason})
    event = Event(
        "resolve" if plan.action == "resolve" else "trigger",
        key,
        prompt,
        check,
        _summary(prompt, check, plan.action),
    )
    deliveries = _deliver(config, plan.send, event, env, retry or RetryPolicy(), on_retry)
    failed = [d.channel for d in deliveries if not d.ok]
    if failed:
        _release(store, key, plan.action, failed, deliveries, _now())
    alert = {
        "action": plan.action,
        "dedup_key": key,
        "reason": plan.reason,
        "deliveries": [d.as_json() for d in deliveries],
    }
    result = _finish(store, check, alert)
    raise_for(deliveries, stored=check.check_id)
    return result


def _finish(store: Store, check: Check, alert: dict[str, Any]) -> dict[str, Any]:
    store_check(store, check, alert)
    return _scrubbed(alert)


@dataclass(frozen=True)
class _Plan:
    action: Literal["trigger", "repeat", "resolve", "none"]
    send: tuple[str, ...]
    reason: str


def _claim(
    store: Store, key: str, prompt: Prompt, check: Check, routed: Sequence[str], when: dt.datetime
) -> _Plan:
    """Decide what to send and mark it in the incident row, in one write transaction (the lock).

    SQLite takes its write lock at BEGIN; PostgreSQL's insert-if-absent waits on a concurrent
    insert of the same key, and `FOR UPDATE` on the row, so the second of two processes reads
    what the first decided.
    """
    from sqlalchemy import select, update

    from agent_evals.history.store import incidents, insert

    with store.write() as conn:
        row = None
        if check.status == "drop":
            fresh = {
                "dedup_key": key,
                "prompt_id": prompt.id,
                "kind": check.kind,
                "status": "open",
                "opened_at": when,
                "resolved_at": None,
                "check_id": check.check_id,
                "channels": list(routed),
                "events": [_event(when, "trigger", check, routed)],
            }
            statement = insert(conn, incidents).values(fresh).on_conflict_do_nothing()
            # RETURNING, not rowcount: what a driver reports for ON CONFLICT DO NOTHING varies.
            if conn.execute(statement.returning(incidents.c.dedup_key)).first() is not None:
                return _Plan("trigger", tuple(routed), "a new incident")
        row = (
            conn.execute(select(incidents).where(incidents.c.dedup_key == key).with_for_update())
            .mappings()
            .first()
        )
        if row is None or (row["status"] != "open" and check.status == "ok"):
            return _Plan("none", (), "no open incident")
        events = list(row["events"] or [])
        if check.status == "ok":
            sent = tuple(row["channels"] or ())
            events.append(_event(when, "resolve", check, sent))
            conn.execute(
                update(incidents)
                .where(incidents.c.dedup_key == key)
                .values(status="resolved", resolved_at=when, events=events)
            )
            return _Plan("resolve", sent, "recovered")
        if row["status"] != "open":  # resolved before: the same key opens a new incident
            events.append(_event(when, "trigger", check, routed))
            conn.execute(
                update(incidents)
                .where(incidents.c.dedup_key == key)
                .values(
                    status="open",
                    opened_at=when,
                    resolved_at=None,
                    check_id=check.check_id,
                    channels=list(routed),
                    events=events,
                )
            )
            return _Plan("trigger", tuple(routed), "a new incident after the last one resolved")
        paged = list(row["channels"] or [])
        # Channels the trigger has not reached (a send that failed, a route added since): page them now.
        missing = tuple(name for name in routed if name not in paged)
        events.append(_event(when, "trigger" if missing else "repeat", check, missing))
        conn.execute(
            update(incidents)
            .where(incidents.c.dedup_key == key)
            .values(channels=paged + list(missing), events=events)
        )
        if missing:
            return _Plan("trigger", missing, "the open incident had not reached these channels")
        return _Plan("repeat", (), f"incident open since {_utc(row['opened_at'])}: already paged")


def _release(
    store: Store,
    key: str,
    action: str,
    failed: Sequence[str],
    deliveries: Sequence[Delivery],
    when: dt.datetime,
) -> None:
    """Undo the claim for the channels a send failed for, so the next check tries them again."""
    from sqlalchemy import select, update

    from agent_evals.history.store import incidents

    errors = {d.channel: d.error for d in deliveries if not d.ok}
    with store.write() as conn:
        row = (
            conn.execute(select(incidents).where(incidents.c.dedup_key == key).with_for_update())
            .mappings()
            .first()
        )
        if row is None:
            return
        events = list(row["events"] or [])
        events.append(
            _scrubbed(
                {"at": _utc(when), "action": f"{action} failed", "channels": list(failed), "errors": errors}
            )
        )
        if action == "resolve":
            # Still triggered at these receivers: the incident stays open on them, to be resolved next time.
            values: dict[str, Any] = {"status": "open", "resolved_at": None, "channels": list(failed)}
        else:
            values = {"channels": [c for c in (row["channels"] or []) if c not in failed]}
        conn.execute(update(incidents).where(incidents.c.dedup_key == key).values(events=events, **values))


def _event(when: dt.datetime, action: str, check: Check, channels: Sequence[str]) -> dict[str, Any]:
    return _scrubbed(
        {
            "at": _utc(when),
            "action": action,
            "check_id": check.check_id,
            "status": check.status,
            "window": [_utc(w) for w in check.window] if check.window else None,
            "channels": list(channels),
        }
    )


def _summary(prompt: Prompt, check: Check, action: str) -> str:
    """Prompt, what dropped by how much (the headline), window, version, owner and on-call."""
    what = "recovered" if action == "resolve" else "drop"
    parts = [f"agent-evals {check.kind} {what}: {prompt.id}: {check.headline}"]
    if check.window:
        start, end = check.window
        parts.append(f"window {_utc(start)}..{_utc(end)}")
    if check.version is not None:
        parts.append(f"version {check.version}")
    parts.append(f"owner {prompt.owner.name}, on-call {prompt.owner.oncall}")
    return _cut(scrub(" | ".join(parts)), SUMMARY_LIMIT)


def _facts(event: Event) -> list[tuple[str, str]]:
    check, prompt = event.check, event.prompt
    facts: list[tuple[str, str]] = []
    if check is not None and check.window:
        facts.append(("Window", f"{_utc(check.window[0])} .. {_utc(check.window[1])}"))
    if check is not None and check.version is not None:
        facts.append(("Version", str(check.version)))
    if prompt is not None:
        facts.append(("Owner", prompt.owner.name))
        facts.append(("On-call", prompt.owner.oncall))
    return [(k, scrub(v)) for k, v in facts]


# --- test events -----------------------------------------------------------------------------


def send_test(
    config: AlertsConfig,
    prompt: Prompt | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> list[Delivery]:
    """Send a test event to `prompt`'s channels (default: every configured channel).

    PagerDuty gets a trigger (severity info) and at once its resolve, so the on-call sees the
    alert arrive and close; a webhook gets one message. Nothing is stored. `on_retry` is
    called before each retry's wait, as `page`'s is.

    Returns:
        One Delivery per request, in channel order; a failure is a Delivery with `ok` False
        (`raise_for` turns them into the error to exit with).

    Raises:
        ConfigError: no channel is configured, a route names an unknown channel.
    """
    env = os.environ if environ is None else environ
    names = route(config, prompt) if prompt is not None else tuple(config.channels)
    if not names:
        who = f"on-call {prompt.owner.oncall!r}" if prompt is not None else "this project"
        raise ConfigError(
            f"no alert channel is configured for {who}",
            hint="add alerts.channels and alerts.routes (or alerts.default) to agent-evals.yaml",
        )
    about = (
        f"{prompt.id} (owner {prompt.owner.name}, on-call {prompt.owner.oncall})"
        if prompt
        else "this project"
    )
    key = f"agent-evals/{prompt.id if prompt else '_'}/test"
    summary = _cut(scrub(f"agent-evals test event for {about}: no action needed"), SUMMARY_LIMIT)
    policy = retry or RetryPolicy()
    deliveries = _deliver(config, names, Event("test", key, prompt, None, summary), env, policy, on_retry)
    resolves = [d.channel for d in deliveries if d.ok and config.channels[d.channel].type == "pagerduty"]
    if resolves:
        resolve = Event("resolve", key, prompt, None, summary)
        deliveries += _deliver(config, resolves, resolve, env, policy, on_retry)
    return deliveries


def raise_for(deliveries: Sequence[Delivery], *, stored: str | None = None) -> None:
    """Raise the error the failed deliveries come to, if any, naming every failed channel.

    Raises:
        ConfigError: every failure is the configuration's (a variable not set, a 4xx).
        EvaluationError: a receiver could not be reached (exit 3).
    """
    failed = [d for d in deliveries if not d.ok]
    if not failed:
        return
    text = "; ".join(f"could not send {d.action} to {d.channel} ({d.type}): {d.error}" for d in failed)
    if stored:
        text += f" (the check is stored: {stored})"
    if all(d.config for d in failed):
        raise ConfigError(scrub(text))
    raise EvaluationError(scrub(text))


# --- HTTP ------------------------------------------------------------------------------------


def _deliver(
    config: AlertsConfig,
    names: Sequence[str],
    event: Event,
    environ: Mapping[str, str],
    policy: RetryPolicy,
    on_retry: Callable[[str], None] | None,
) -> list[Delivery]:
    """Send `event` to each channel named, at once; a Delivery per channel, in order."""
    ready: list[Endpoint | Delivery] = []
    for name in names:
        kind = config.channels[name].type if name in config.channels else "?"
        try:
            ready.append(_endpoint(config, name, environ))
        except ConfigError as exc:
            ready.append(Delivery(name, kind, event.action, ok=False, error=scrub(exc.render()), config=True))
    targets = [e for e in ready if isinstance(e, Endpoint)]
    sent = asyncio.run(_send_all(targets, event, policy, on_retry)) if targets else []
    by_name = {d.channel: d for d in sent}
    return [by_name[e.name] if isinstance(e, Endpoint) else e for e in ready]


async def _send_all(
    targets: Sequence[Endpoint], event: Event, policy: RetryPolicy, on_retry: Callable[[str], None] | None
) -> list[Delivery]:
    from agent_evals.providers._http import new_client

    async with new_client(
        connections=max(1, len(targets)), read_timeout_s=_READ_TIMEOUT_S, connect_timeout_s=_CONNECT_TIMEOUT_S
    ) as session:
        return list(await asyncio.gather(*(_send(session, t, event, policy, on_retry) for t in targets)))


async def _send(
    session: aiohttp.ClientSession,
    target: Endpoint,
    event: Event,
    policy: RetryPolicy,
    on_retry: Callable[[str], None] | None,
) -> Delivery:
    body = CHANNELS[target.type].body(event, target)
    data = json.dumps(body, ensure_ascii=False).encode()
    answered: list[int] = []

    async def attempt() -> int:
        status = await _post(session, target, data)
        answered.append(status)
        return status

    def retrying(retry: RetryEvent) -> None:
        if on_retry is not None:
            problem = scrub(str(retry.error).replace(target.secret, "***"))
            on_retry(
                f"{event.action} to {target.name} ({target.type}), attempt {retry.attempt}: {problem}; "
                f"retrying in {wait_text(retry.delay_s)}"
            )

    try:
        status, attempts = await call_with_retry(attempt, policy, on_retry=retrying)
    except ProviderError as exc:
        message = scrub(str(exc).replace(target.secret, "***"))
        config = exc.status is not None and 400 <= exc.status < 500 and not exc.retryable
        return Delivery(
            target.name,
            target.type,
            event.action,
            ok=False,
            attempts=exc.attempts,
            status=exc.status,
            error=message,
            config=config,
        )
    return Delivery(target.name, target.type, event.action, ok=True, attempts=attempts, status=status)


async def _post(session: aiohttp.ClientSession, target: Endpoint, data: bytes) -> int:
    """One attempt: the status of a 2xx, else the ProviderError the retry loop reads."""
    import aiohttp

    from agent_evals.providers._http import (
        _client_error,
        env_proxy,
        excerpt,
        parse_retry_after,
        redact,
        tls_context,
        user_agent,
    )

    headers = {"Content-Type": "application/json", "User-Agent": user_agent()}
    tls: Any = tls_context() if target.url.lower().startswith("https:") else True
    try:
        async with session.post(
            target.url,
            data=data,
            headers=headers,
            proxy=env_proxy(target.url),
            ssl=tls,
            allow_redirects=False,
        ) as response:
            text = (await response.read()).decode("utf-8", errors="replace")
            status = response.status
            response_headers = response.headers
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _client_error(exc, target.shown, secret=target.secret) from None
    if 200 <= status <= 299:
        return status
    detail = redact(excerpt(_said(text), _EXCERPT), target.secret)
    reason = f"{status}" + (f" {detail}" if detail else "")
    retryable = status in (408, 429) or 500 <= status <= 599
    if retryable:
        kind: FailureKind = "throttled" if status == 429 else "unavailable"
        raise ProviderError(
            f"{target.shown} answered {reason}",
            retryable=True,
            retry_after=parse_retry_after(response_headers),
            status=status,
            kind=kind,
        )
    fix = (
        "check that the routing key is an Events API v2 integration key"
        if target.type == "pagerduty"
        else "check the webhook URL; it may have been revoked"
    )
    raise ProviderError(f"{target.shown} refused the event: {reason} ({fix})", status=status)


# --- small helpers ---------------------------------------------------------------------------


def _check_scheme(url: str, where: str, example: str) -> None:
    try:
        parts = urlsplit(url)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"{where}: not an http(s) URL", hint=example)


def _said(text: str) -> str:
    """What a receiver's error body says: PagerDuty's `message` and its `errors`, else the body."""
    from agent_evals.providers._http import message_of

    try:
        data = _json.loads(text)
    except ValueError:
        data = None
    errors = data.get("errors") if isinstance(data, dict) else None
    said = message_of(text)
    if isinstance(errors, list) and errors:
        said += ": " + "; ".join(str(e) for e in errors)
    return said


def _scrubbed(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(scrub(json.dumps(data, default=str, allow_nan=False)))  # type: ignore[no-any-return]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _mrkdwn(text: str) -> str:
    """Slack's three control characters escaped (`&`, `<`, `>`), so a headline cannot forge a link."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _cut(escaped, _SLACK_TEXT_LIMIT)


def _utc(when: dt.datetime) -> str:
    """ISO 8601 in UTC with a Z (times are naive UTC throughout the history)."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.isoformat(timespec="seconds") + "Z"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
