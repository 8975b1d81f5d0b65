"""`agent-evals monitor`: a production window graded, compared, stored (SQLite and PostgreSQL).

Every log here is synthetic. The agent answers JSON; a row passes the eval set's one grader
that needs no expected value (json_schema: a known disposition) and fails otherwise. The
exact_match grader needs an expected value, so monitor names it as not run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from agent_evals import monitor as mon
from agent_evals import stats
from agent_evals.cli import main
from agent_evals.history.store import ENV_VAR, checks, resolve_url, runs
from agent_evals.models import MonitorPolicy, ProjectConfig
from agent_evals.retry import RetryPolicy
from tests.http_server import Response, ScriptedServer
from tests.pty_run import CLI, run_pty
from tests.support import PROMPT, write_tree
from tests.test_history_import import history_url, pg_cluster  # noqa: F401 (fixtures)

PROMPT_V2 = PROMPT.replace("\nversion: 1\n", "\nversion: 2\n")

EVALSET = """\
schema_version: 1
id: triage
prompt: triage
provenance:
  source: synthetic test cases
  synthetic: true
graders:
  - type: json_schema
    name: shape
    schema:
      type: object
      required: [disposition]
      properties:
        disposition: {enum: [refund, billing, account_access, other]}
  - type: exact_match
    name: disposition
    field: disposition
monitor:
  map:
    vars.subject: subject
    vars.body: body
    output: response
    timestamp: ts
    version: prompt_version
    tags.channel: channel
  stratify_by: channel
  window_days: 7
  min_drop: 0.10
cases:
  - id: c1
    vars: {subject: Refund, body: I want my money back}
    expected: {disposition: refund}
"""

HOOK_ENV = "MONITOR_TEST_HOOK_URL"
CONFIG = f"""\
schema_version: 1
alerts:
  channels:
    team: {{type: webhook, url_env: {HOOK_ENV}}}
  default: [team]
"""
FAST = RetryPolicy(
    max_attempts=2, timeout_s=5.0, initial_backoff_s=0.01, max_backoff_s=0.02, retry_deadline_s=5.0
)
START = dt.datetime(2026, 11, 1)
GOOD = json.dumps({"disposition": "refund"})
BAD = "sorry, I cannot help"


def project(root: Path, evalset: str = EVALSET) -> Path:
    return write_tree(
        root,
        {
            "agent-evals.yaml": CONFIG,
            "prompts/triage.yaml": PROMPT_V2,
            "evalsets/triage.yaml": evalset,
        },
    )


def row(at: dt.datetime, ok: bool, channel: str, version: str = "2", **extra: Any) -> dict[str, Any]:
    return {
        "ts": at.isoformat() + "Z",
        "subject": "Refund",
        "body": "synthetic ticket: please refund order 12",
        "response": GOOD if ok else BAD,
        "prompt_version": version,
        "channel": channel,
        **extra,
    }


def windows(
    rates: list[dict[str, float]], per_day: int, seed: int = 1, version_of: Any = None
) -> list[dict[str, Any]]:
    """Rows over consecutive 7-day windows; each window's pass rate per channel as given.

    Exactly round(rate * n) rows of a channel pass in each window, so the figures are exact.
    """
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for w, by_channel in enumerate(rates):
        for channel, rate in by_channel.items():
            n = per_day * 7
            passes = [True] * round(rate * n) + [False] * (n - round(rate * n))
            rng.shuffle(passes)
            for i, ok in enumerate(passes):
                at = START + dt.timedelta(days=7 * w, seconds=i * (7 * 86400 // n))
                out.append(row(at, ok, channel, version_of(w) if version_of else "2"))
    out.sort(key=lambda r: r["ts"])
    return out


def write_log(path: Path, rows: list[dict[str, Any]], extra_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    for at, text in sorted((extra_lines or {}).items()):
        lines.insert(at - 1, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(url: str, table: Any, *columns: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(resolve_url(Path("."), ProjectConfig(), {ENV_VAR: url}).url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(*columns).select_from(table))]
    finally:
        engine.dispose()


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """A Slack-style webhook on 127.0.0.1, named by the environment variable the config names."""
    with ScriptedServer() as server:
        server.route("POST", r"/hook", Response(200, body="ok"))
        monkeypatch.setenv(HOOK_ENV, server.url_for("/hook"))
        yield server
    assert not server.errors


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    monkeypatch.setenv(ENV_VAR, url)
    return url


# --- the statistics ------------------------------------------------------------------------------


def test_newcombe_interval_matches_newcombe_1998() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II, example (a): 56/70 vs 48/80,
    # method 10 (score, no continuity correction): 0.0524 to 0.3339.
    got = stats.newcombe_interval(56, 70, 48, 80)
    assert got.estimate == pytest.approx(0.2)
    assert round(got.low, 4) == 0.0524
    assert round(got.high, 4) == 0.3339
    # Example (c) 5/56 vs 0/29: -0.0381 to 0.1926... as candidate minus base.
    got = stats.newcombe_interval(5, 56, 0, 29)
    assert round(got.low, 4) == -0.0381
    assert round(got.high, 4) == 0.1926
    empty = stats.newcombe_interval(0, 0, 3, 5)
    assert math.isnan(empty.estimate)
    assert (empty.low, empty.high) == (-1.0, 1.0)
    with pytest.raises(ValueError, match="need 0 <= passed <= n"):
        stats.newcombe_interval(6, 5, 1, 5)


def test_drop_pvalue_is_fishers_one_sided_test() -> None:
    # 8/10 before, 2/10 after: 10 passes in all; the window's share is hypergeometric, and
    # P(X <= 2) = (C(10,0)C(10,10) + C(10,1)C(10,9) + C(10,2)C(10,8)) / C(20,10) = 2126 / 184756.
    assert stats.drop_pvalue(8, 10, 2, 10) == pytest.approx(2126 / 184756, rel=1e-9)
    # A rise is no evidence of a drop.
    assert stats.drop_pvalue(2, 10, 8, 10) == pytest.approx(1 - 101 / 184756, rel=1e-9)
    assert stats.drop_pvalue(5, 10, 0, 0) == 1.0
    assert stats.drop_pvalue(0, 0, 5, 10) == 1.0
    with pytest.raises(ValueError, match="need 0 <= passed <= n"):
        stats.drop_pvalue(11, 10, 2, 10)


def test_power_and_rows_needed() -> None:
    # Fleiss' formula, equal groups, one-sided 5%, 80%: 95% -> 90% needs 343 per group
    # (pooled sd under the null, unpooled under the alternative).
    assert stats.rows_needed(0.95, 0.05, 0.05) == 343
    assert stats.drop_power(0.95, 0.05, 343, 343, 0.05) >= 0.8
    assert stats.drop_power(0.95, 0.05, 342, 342, 0.05) < 0.8
    # A large baseline halves what the window needs; a tiny one can never reach the power.
    assert stats.rows_needed(0.9, 0.05, 0.05, base_n=2000) == 296
    assert stats.rows_needed(0.9, 0.05, 0.05, base_n=20) is None
    assert stats.drop_power(0.9, 0.0, 100, 100, 0.05) == 0.0
    assert stats.drop_power(0.5, 0.6, 100, 100, 0.05) == 0.0
    drop = stats.detectable_drop(0.9, 500, 500, 0.05)
    assert drop is not None
    assert round(drop, 4) == 0.0521
    assert stats.drop_power(0.9, drop, 500, 500, 0.05) == pytest.approx(0.8, abs=1e-6)
    assert stats.detectable_drop(0.0, 500, 500, 0.05) is None
    assert stats.detectable_drop(0.5, 2, 2, 0.05) is None


# --- reading a window ----------------------------------------------------------------------------


def test_read_window_names_other_versions_bad_lines_and_missing_fields(tmp_path: Path) -> None:
    rows = [
        row(START + dt.timedelta(hours=1), True, "email"),
        row(START + dt.timedelta(hours=2), True, "email", version="1"),
        row(START + dt.timedelta(hours=3), False, "chat"),
        {k: v for k, v in row(START + dt.timedelta(hours=4), True, "chat").items() if k != "response"},
        {k: v for k, v in row(START + dt.timedelta(hours=5), True, "chat").items() if k != "subject"},
        row(START + dt.timedelta(days=9), True, "chat"),  # outside the window
        row(START + dt.timedelta(hours=6), True, "chat", version="1"),
        {**row(START + dt.timedelta(hours=7), True, "email"), "ts": "yesterday-ish"},
        {k: v for k, v in row(START + dt.timedelta(hours=8), True, "chat").items() if k != "prompt_version"},
    ]
    log = write_log(tmp_path / "prod.jsonl", rows, {3: "{not json"})
    policy = MonitorPolicy(map=_MAP, stratify_by="channel")
    window = mon.read_window(log, None, policy, since=START, until=START + dt.timedelta(days=7), version="2")
    assert [r.line for r in window.rows] == [1, 4]
    assert [r.stratum for r in window.rows] == ["email", "chat"]
    assert window.rows[0].version == "2"
    assert window.rows[0].at == START + dt.timedelta(hours=1)
    assert window.other_versions == {"1": 2}
    assert dict(window.dropped) == {
        "another version (1)": 2,
        "no output": 1,
        "missing a mapped variable": 1,
        "no version": 1,
    }
    assert window.named["another version (1)"] == [f"{log}:2", f"{log}:8"]
    assert window.named["no output"] == [f"{log}:5"]
    assert window.named["no version"] == [f"{log}:10"]
    assert dict(window.bad_lines) == {"not valid JSON": 1, "timestamp is not a date or time": 1}
    assert window.named["timestamp is not a date or time"] == [f"{log}:9"]
    assert window.named["not valid JSON"] == [f"{log}:3"]
    assert f"2 another version (1): {log}:2, {log}:8" in window.problems()


_MAP = {
    "vars.subject": "subject",
    "vars.body": "body",
    "output": "response",
    "timestamp": "ts",
    "version": "prompt_version",
    "tags.channel": "channel",
}


def test_read_window_redacts_as_sample_does(tmp_path: Path) -> None:
    log = write_log(
        tmp_path / "prod.jsonl",
        [
            row(
                START,
                True,
                "email",
                body="synthetic: write to jane.doe@example.com",
                response="call +1 415 555 0100",
            )
        ],
    )
    window = mon.read_window(
        log, None, MonitorPolicy(map=_MAP), since=START, until=START + dt.timedelta(days=1)
    )
    assert window.rows[0].vars["body"] == "synthetic: write to <EMAIL>"
    assert window.rows[0].output == "call <PHONE>"
    assert window.redactions == {"email": 1, "phone": 1}


# --- the whole check -----------------------------------------------------------------------------


def test_planted_drop_in_one_stratum_is_found_stored_and_paged(
    tmp_path: Path,
    history_url: str,  # noqa: F811
    hook: ScriptedServer,
) -> None:
    root = project(tmp_path / "p")
    rates = [{"email": 0.95, "chat": 0.95}, {"email": 0.95, "chat": 0.75}]
    log = write_log(tmp_path / "prod.jsonl", windows(rates, per_day=60))
    now = dt.datetime(2026, 11, 20)
    result = mon.monitor(root, log, "triage", now=now, retry=FAST)
    check = result.check
    assert check.status == "drop"
    assert result.exit_code == 1
    assert check.window == (START + dt.timedelta(days=7), START + dt.timedelta(days=14))
    # The previous window is the only one: version 2 was live from the first row.
    assert [c.against for c in result.comparisons] == ["previous window"]
    comparison = result.comparisons[0]
    assert (comparison.overall.base_passed, comparison.overall.base_n) == (798, 840)
    assert (comparison.overall.passed, comparison.overall.n) == (714, 840)
    chat = next(t for t in comparison.strata if t.stratum == "chat")
    email = next(t for t in comparison.strata if t.stratum == "email")
    assert (chat.base_passed, chat.base_n, chat.passed, chat.n) == (399, 420, 315, 420)
    assert chat.diff == pytest.approx(-0.2)
    assert chat.p == pytest.approx(stats.drop_pvalue(399, 420, 315, 420))
    assert chat.p_adjusted == pytest.approx(min(1.0, 3 * chat.p))  # Holm: the smallest of three
    assert email.diff == pytest.approx(0.0)
    assert email.p_adjusted > 0.05
    assert check.headline.startswith("monitor triage v2: pass rate 85.0% (n=840, 2026-11-08..")
    assert "drop in stratum chat: 95.0% -> 75.0% (-20.0 pts, p=" in check.headline
    assert check.figures["graders"] == ["shape"]
    assert check.figures["graders_skipped"] == {
        "disposition": "needs an expected value: map the log's outcome label (label or expected.<field>)"
    }
    found = stored(history_url, checks, checks.c.kind, checks.c.status, checks.c.headline, checks.c.run_id)
    assert [f for f in found if f[0] == "monitor"] == [("monitor", "drop", check.headline, result.run_id)]
    # The freshness check of the same window is stored beside it.
    assert sorted(f[0] for f in found) == ["freshness", "monitor"]
    [prod] = stored(
        history_url,
        runs,
        runs.c.run_id,
        runs.c.kind,
        runs.c.window_start,
        runs.c.window_end,
        runs.c.prompt_version,
        runs.c.results,
        runs.c.passed,
    )
    assert prod == (result.run_id, "production", *check.window, "2", 840, 714)
    # One page to the on-call's webhook, stored with the check.
    assert hook.request_count == 1
    assert result.alert is not None
    assert result.alert["action"] == "trigger"
    [alert] = [
        a for kind, a in stored(history_url, checks, checks.c.kind, checks.c.alert) if kind == "monitor"
    ]
    assert alert["action"] == "trigger"


def test_receiver_down_keeps_the_check_and_exits_3(tmp_path: Path, sqlite_store: str) -> None:
    root = project(tmp_path / "p")
    down = ScriptedServer().start()
    url = down.url_for("/hook")
    down.stop()
    log = write_log(tmp_path / "prod.jsonl", windows([{"chat": 0.95}, {"chat": 0.6}], per_day=60))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(HOOK_ENV, url)
        said: list[str] = []
        result = mon.monitor(root, log, "triage", retry=FAST, on_retry=said.append)
    assert result.check.status == "drop"
    assert result.exit_code == 3
    # FAST allows two attempts: the one retry is said before its wait.
    [retry] = said
    assert retry.startswith("trigger to team (webhook), attempt 1: could not connect")
    assert result.alert_error is not None
    assert str(result.alert_error).startswith("could not send trigger to team (webhook): could not connect")
    assert str(result.alert_error).endswith(f"(the check is stored: {result.check.check_id})")
    assert ("monitor", "drop") in stored(sqlite_store, checks, checks.c.kind, checks.c.status)


def test_no_change_finds_nothing(tmp_path: Path, sqlite_store: str) -> None:
    root = project(tmp_path / "p")
    rates = [{"email": 0.9, "chat": 0.8}, {"email": 0.9, "chat": 0.8}]
    log = write_log(tmp_path / "prod.jsonl", windows(rates, per_day=60))
    result = mon.monitor(root, log, "triage")
    assert result.check.status == "ok"
    assert result.exit_code == 0
    assert result.comparisons[0].overall.diff == pytest.approx(0.0)
    detectable = result.comparisons[0].detectable
    assert detectable is not None
    assert f"no significant drop (could have seen a {mon._pts(detectable)}-point drop with 80% power)" in (
        result.check.headline
    )


def test_too_few_rows_cannot_tell(tmp_path: Path, sqlite_store: str) -> None:
    root = project(tmp_path / "p")
    rows = windows([{"email": 0.9}], per_day=20)
    # 12 rows in the last week, all failing: still never a drop.
    rows += [row(START + dt.timedelta(days=7, hours=i), False, "email") for i in range(12)]
    log = write_log(tmp_path / "prod.jsonl", rows)
    week = dt.timedelta(days=7)
    result = mon.monitor(root, log, "triage", since=START + week, until=START + 2 * week)
    needed = stats.rows_needed(0.9, 0.10, 0.05, 0.8, 140)
    assert needed == 183
    assert result.check.status == "cannot_tell"
    assert result.exit_code == 0
    assert result.check.headline.endswith("; cannot tell (n=12; needs about 190 to see a 10-point drop)")


def test_version_change_compares_with_the_window_before_it_went_live(
    tmp_path: Path, sqlite_store: str, hook: ScriptedServer
) -> None:
    root = project(tmp_path / "p")
    rates = [{"email": 0.95}, {"email": 0.95}, {"email": 0.70}]
    log = write_log(
        tmp_path / "prod.jsonl", windows(rates, per_day=30, version_of=lambda w: "1" if w < 2 else "2")
    )
    result = mon.monitor(root, log, "triage")
    labels = [c.against for c in result.comparisons]
    assert labels == ["window before v2 went live (2026-11-15)"]
    [c] = result.comparisons
    assert c.version == "1"
    assert (c.overall.base_passed, c.overall.base_n, c.overall.passed, c.overall.n) == (200, 210, 147, 210)
    assert result.check.status == "drop"


def test_no_mapping_is_one_config_line(tmp_path: Path, sqlite_store: str) -> None:
    root = project(tmp_path / "p", EVALSET.split("monitor:")[0] + "cases:" + EVALSET.split("cases:")[1])
    log = write_log(tmp_path / "prod.jsonl", [row(START, True, "email")])
    with pytest.raises(mon.ConfigError, match="no eval set of prompt 'triage' has a monitor: block"):
        mon.monitor(root, log, "triage")


# --- the CLI ---------------------------------------------------------------------------------------


def test_cli_exit_codes_and_json(
    tmp_path: Path,
    sqlite_store: str,
    hook: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = project(tmp_path / "p")
    monkeypatch.chdir(root)
    drop = write_log(tmp_path / "drop.jsonl", windows([{"chat": 0.95}, {"chat": 0.7}], per_day=60))
    same = write_log(tmp_path / "same.jsonl", windows([{"chat": 0.9}, {"chat": 0.9}], per_day=60))
    assert main(["monitor", str(same), "--prompt", "triage"]) == 0
    assert main(["monitor", str(drop), "--prompt", "triage", "--format", "json"]) == 1
    out = capsys.readouterr().out
    document = json.loads(out[out.index('{\n  "kind"') :])
    assert document["status"] == "drop"
    assert document["figures"]["comparisons"][0]["overall"]["window"] == {"passed": 294, "n": 420}
    capsys.readouterr()
    assert main(["monitor", str(same), "--prompt", "nope"]) == 2
    assert "no prompt 'nope'" in capsys.readouterr().err
    assert main(["monitor", str(same), "--prompt", "triage", "--since", "soon"]) == 2
    assert "--since 'soon' is not a date or time" in capsys.readouterr().err
    assert main(["monitor", str(tmp_path / "missing.jsonl"), "--prompt", "triage"]) == 2
    assert "log file not found (pass the path of a production log)" in capsys.readouterr().err


def test_cli_under_a_terminal(tmp_path: Path, sqlite_store: str) -> None:
    root = project(tmp_path / "p")
    log = write_log(tmp_path / "prod.jsonl", windows([{"chat": 0.9, "email": 0.9}] * 2, per_day=30))
    result = run_pty([*CLI, "monitor", str(log), "--prompt", "triage"], root)
    assert result.code == 0, result.text
    assert "vs the previous window" in result.text
    assert "monitor triage v2: pass rate 90.0% (n=420" in result.text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_log_bytes_never_crash(tmp_path: Path, sqlite_store: str, data: bytes) -> None:
    root = tmp_path / "p"
    if not root.exists():
        project(root)
    log = tmp_path / "random.jsonl"
    log.write_bytes(data)
    code = main(["-C", str(root), "monitor", str(log), "--prompt", "triage"])
    assert code in (0, 2, 3)


def test_outcome_labels_in_the_log_let_the_graders_that_need_them_grade_those_rows(tmp_path: Path) -> None:
    """With the log's final disposition mapped as the label, exact_match grades the rows that carry
    one (a wrong disposition in valid JSON fails it); a row still waiting for its label is graded
    by the other graders only."""
    evalset_text = EVALSET.replace(
        "    tags.channel: channel\n", "    tags.channel: channel\n    label: resolution.disposition\n"
    )
    root = project(tmp_path, evalset_text)
    from agent_evals.load import load_project

    evalset = load_project(root).evalsets["triage"]
    rows = [
        row(START + dt.timedelta(hours=1), True, "email", resolution={"disposition": "refund"}),
        row(START + dt.timedelta(hours=2), True, "email", resolution={"disposition": "billing"}),
        row(START + dt.timedelta(hours=3), True, "email"),  # no label yet
    ]
    log = write_log(tmp_path / "prod.jsonl", rows)
    policy = evalset.monitor or MonitorPolicy()
    window = mon.read_window(log, evalset, policy, since=START, until=START + dt.timedelta(days=1))
    assert [r.expected for r in window.rows] == [{"disposition": "refund"}, {"disposition": "billing"}, None]
    chosen = mon.choose_graders(evalset, labelled=True)
    assert [g.name for g in chosen.run] == ["shape", "disposition"]
    prompt = load_project(root).prompts["triage"]
    tally, results = mon.grade(window, chosen.run, prompt)
    assert [r.status for r in results] == ["pass", "fail", "pass"]
    assert [[g.grader for g in r.grades] for r in results] == [
        ["shape", "disposition"],
        ["shape", "disposition"],
        ["shape"],
    ]
    assert (tally.n, tally.passed) == (3, 2)
