"""examples/monitor/make_monitor_demo.py: `make demo-monitor`, the after-the-merge example.

The script runs for real into tmp_path (the real commands in this process, a real git
repository for the gate, a real HTTP receiver on 127.0.0.1); what it stored is read back from
the history store, what was paged from the receiver's record, and every file it wrote and
everything it printed is searched for the secrets set for it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from agent_evals.cli import main
from tests.support import load_script

ROOT = Path(__file__).resolve().parents[1]
ROUTING_KEY = "TESTROUTINGKEY7c1d0e5f9a2b4c6d8e"
WEBHOOK_TOKEN = "testwebhooktoken93f1a7c2e4"


demo = load_script(ROOT / "examples/monitor/make_monitor_demo.py")


def _checks(store: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(store) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM checks ORDER BY at, check_id").fetchall()
    out = []
    for row in rows:
        item = dict(row)
        item["figures"] = json.loads(item["figures"])
        item["alert"] = json.loads(item["alert"]) if item["alert"] else None
        out.append(item)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo-monitor") / "out"

    printed = StringIO()
    with redirect_stdout(printed), redirect_stderr(printed):
        assert demo.make(out, routing_key=ROUTING_KEY, webhook_token=WEBHOOK_TOKEN) == 0
    return out, printed.getvalue()


def test_the_control_window_before_the_change_finds_nothing(built: tuple[Path, str]) -> None:
    out, _ = built
    control = next(c for c in _checks(out / "history.sqlite3") if c["kind"] == "monitor")
    assert (control["version"], control["status"]) == ("1", "ok")
    assert control["window_start"].startswith("2026-10-19")
    assert control["window_end"].startswith("2026-10-26")
    assert control["headline"] == (
        "monitor ticket-triage v1: pass rate 93.4% (n=713, 2026-10-19..2026-10-26); "
        "no significant drop (could have seen a 3.6-point drop with 80% power)"
    )
    assert control["alert"] == {
        "action": "none",
        "dedup_key": "agent-evals/ticket-triage/monitor",
        "reason": "no open incident",
    }
    tests = [t for c in control["figures"]["comparisons"] for t in (c["overall"], *c["strata"])]
    assert len(tests) == 5  # overall and the four channels, against the previous window
    assert all(t["p_holm"] > 0.05 for t in tests)


def test_the_drop_is_found_in_the_phone_stratum_with_exit_1(built: tuple[Path, str]) -> None:
    out, printed = built
    after = [c for c in _checks(out / "history.sqlite3") if c["kind"] == "monitor"][1]
    assert (after["version"], after["status"]) == ("2", "drop")
    assert after["headline"] == (
        "monitor ticket-triage v2: pass rate 85.0% (n=767, 2026-11-02..2026-11-09); drop in stratum phone: "
        "92.1% -> 53.9% (-38.1 pts, p=5.6e-13 Holm) vs the window before v2 went live (2026-10-26T10:00:00)"
    )
    # Only the planted stratum dropped: every other stratum's test, in both comparisons, is not significant.
    significant = {
        (c["against"], t["stratum"])
        for c in after["figures"]["comparisons"]
        for t in c["strata"]
        if t["p_holm"] <= 0.05 and t["diff"] < 0
    }
    assert significant == {("window before v2 went live (2026-10-26T10:00:00)", "phone")}
    assert (
        "$ agent-evals monitor ticket-triage-production.jsonl --prompt ticket-triage "
        "--since 2026-11-02 --until 2026-11-09   # exit 1"
    ) in printed
    assert "# exit 1" in printed.split("--since 2026-11-03 --until 2026-11-10")[1].splitlines()[0]


def test_one_page_per_incident_reaches_the_receiver(built: tuple[Path, str]) -> None:
    out, _ = built
    received = json.loads((out / "received.json").read_text(encoding="utf-8"))
    monitor_pages = [
        r
        for r in received
        if r["receiver"] == "pagerduty" and r["body"]["dedup_key"] == "agent-evals/ticket-triage/monitor"
    ]
    assert len(monitor_pages) == 1
    body = monitor_pages[0]["body"]
    assert (
        {k: body[k] for k in ("routing_key", "event_action", "dedup_key", "client")}
        == {
            "routing_key": "(the configured routing key)",  # the receiver got exactly the key set in the environment
            "event_action": "trigger",
            "dedup_key": "agent-evals/ticket-triage/monitor",
            "client": "agent-evals",
        }
    )
    payload = body["payload"]
    assert (payload["source"], payload["severity"], payload["component"], payload["class"]) == (
        "agent-evals/ticket-triage",
        "error",
        "ticket-triage",
        "monitor drop",
    )
    assert "drop in stratum phone" in payload["summary"]
    assert payload["custom_details"]["oncall"] == "pagerduty:support-automation-primary"
    webhooks = [r for r in received if r["receiver"] == "webhook"]
    assert [w["body"]["text"].split(": ticket-triage: ")[0] for w in webhooks] == [
        ":rotating_light: drop: agent-evals monitor drop",
        ":rotating_light: drop: agent-evals verify drop",
    ]
    # Four requests in all: the monitor incident and the verify incident, each to both channels once;
    # the next day's window, still dropping, sent nothing (the incident was open).
    assert sorted((r["receiver"], r["body"].get("dedup_key", "")) for r in received) == [
        ("pagerduty", "agent-evals/ticket-triage/monitor"),
        ("pagerduty", "agent-evals/ticket-triage/verify"),
        ("webhook", ""),
        ("webhook", ""),
    ]
    again = [c for c in _checks(out / "history.sqlite3") if c["kind"] == "monitor"][2]
    assert (again["status"], again["alert"]["action"]) == ("drop", "repeat")
    assert "deliveries" not in again["alert"]


def test_verify_attributes_the_drop_to_version_2_with_intervals(built: tuple[Path, str]) -> None:
    out, _ = built
    [check] = [c for c in _checks(out / "history.sqlite3") if c["kind"] == "verify"]
    assert (check["status"], check["version"], check["pr"]) == ("drop", "2", 52)
    assert check["headline"] == (
        "DROP: verify ticket-triage 2 (live 2026-10-26); production pass rate -8.4 pts [-11.5 pts, -5.3 pts]; "
        "first-contact resolution rate -0.02857 [-0.03419, -0.02295]; gate #52 pass predicted +0.0 pts on the eval set"
    )
    production = check["figures"]["production"]
    assert (production["before"], production["after"]) == (
        {"n": 713, "passed": 666, "windows": 1},
        {"n": 767, "passed": 652, "windows": 1},
    )
    low, high = production["interval"]
    assert low < production["delta"] < high < 0
    assert check["figures"]["live"]["source"] == "deploy"
    assert check["figures"]["gate"]["status"] == "pass"


def test_freshness_names_the_missing_phone_stratum_and_the_fix(built: tuple[Path, str]) -> None:
    out, printed = built
    fresh = [c for c in _checks(out / "history.sqlite3") if c["kind"] == "freshness"][-1]
    assert fresh["status"] == "stale"
    assert fresh["figures"]["missing"] == ["phone"]
    assert fresh["figures"]["under"] == []
    assert fresh["headline"] == (
        "freshness ticket-triage: stale, 19.8% of the window's traffic is not covered (over 10.0%): "
        "missing phone (19.8% of traffic)"
    )
    command = fresh["figures"]["command"]
    assert command.startswith(f"agent-evals sample {out / demo.LOG} --prompt ticket-triage --append --n 15 ")
    assert command.endswith(
        "--stratify-by channel --since 2026-11-02 --until 2026-11-09 --query 'channel == \"phone\"'"
    )
    assert (
        "  fix: agent-evals sample ticket-triage-production.jsonl --prompt ticket-triage --append" in printed
    )


def test_the_dashboard_is_written(built: tuple[Path, str]) -> None:
    out, printed = built
    page = (out / "dashboard.html").read_text(encoding="utf-8")
    assert "ticket-triage" in page
    assert "$ agent-evals dashboard --html dashboard.html   # exit 0" in printed


def test_no_secret_in_any_file_or_output(built: tuple[Path, str]) -> None:
    out, printed = built
    secrets = [ROUTING_KEY, WEBHOOK_TOKEN, f"/services/T0SYNTH/B0DEMO/{WEBHOOK_TOKEN}"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} in {path}"
    for secret in secrets:
        assert secret not in printed


def test_the_log_is_synthetic_and_deterministic(built: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = built
    again = tmp_path / "again.jsonl"
    assert demo.write_log(again) == 4560
    assert again.read_bytes() == (out / demo.LOG).read_bytes()
    rows = [json.loads(line) for line in again.read_text(encoding="utf-8").splitlines()]
    assert all(row["synthetic"] is True for row in rows)
    assert {row["ticket"]["channel"] for row in rows} == {"email", "chat", "web", "phone"}
    assert {(row["prompt"]["version"], row["ts"] >= "2026-10-26T10:00:00Z") for row in rows} == {
        (1, False),
        (2, True),
    }
    assert (out / "metric.csv").read_text(encoding="utf-8").startswith("# SYNTHETIC")


def test_quiet_verify_still_prints_its_verdict_line(
    built: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`-q` prints only errors and the verdict line: for verify, as for monitor, that line is the headline."""
    out, _ = built
    copy = tmp_path / "out"
    shutil.copytree(out, copy)  # this check is stored in the copy's history, not the module's
    monkeypatch.setenv("AGENT_EVALS_HISTORY_URL", f"sqlite:///{copy / 'history.sqlite3'}")
    assert main(["-q", "-C", str(copy / "project"), "verify", "ticket-triage"]) == 1
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [
        "DROP: verify ticket-triage 2 (live 2026-10-26); production pass rate -8.4 pts [-11.5 pts, -5.3 pts]; "
        "first-contact resolution rate -0.02857 [-0.03419, -0.02295]; gate #52 pass predicted +0.0 pts on the eval set"
    ]
    assert printed.err == ""
