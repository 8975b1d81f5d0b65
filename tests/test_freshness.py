"""Eval set freshness: the eval set held up against a window of production traffic (synthetic).

The strata path names a planted missing stratum with its traffic share and the exact
`sample --append` command; an under-represented stratum is named by its binomial test; an eval
set sampled in proportion is fresh; the text path finds a topic no case covers. Readiness and
the PR comment show the stored check; the CLI runs under a pseudo-terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_evals import freshness
from agent_evals.checks import Check, WindowRow
from agent_evals.cli import main
from agent_evals.gate import GateReport, PairReport, Verdict
from agent_evals.history.store import ENV_VAR
from agent_evals.models import EvalSet
from agent_evals.readiness import scorecards
from agent_evals.report import markdown
from tests.pty_run import CLI, run_pty
from tests.support import copy_ticket_triage_example

NOW = dt.datetime(2026, 12, 8, 9, 0)
SINCE = dt.datetime(2026, 12, 1)
UNTIL = dt.datetime(2026, 12, 8)
MAP = {"vars.channel": "channel", "vars.text": "body", "timestamp": "ts", "output": "reply"}


def evalset(counts: dict[str, int], **monitor: Any) -> EvalSet:
    cases = [
        {"id": f"{name}-{i}", "vars": {"channel": name, "text": f"synthetic {name} ticket"}}
        for name, n in counts.items()
        for i in range(n)
    ]
    return EvalSet.model_validate(
        {
            "id": "triage-set",
            "prompt": "triage",
            "graders": [{"type": "exact_match"}],
            "cases": cases,
            "monitor": {"map": MAP, "stratify_by": "channel", **monitor},
        }
    )


def window(counts: dict[str, int]) -> list[WindowRow]:
    names = [name for name, n in counts.items() for _ in range(n)]
    return [
        WindowRow(
            line=i + 1,
            at=SINCE + dt.timedelta(minutes=i),
            version="3",
            vars={"channel": name, "text": f"synthetic {name} ticket"},
            output="{}",
        )
        for i, name in enumerate(names)
    ]


def assess(cases: dict[str, int], traffic: dict[str, int], **monitor: Any) -> Check:
    e = evalset(cases, **monitor)
    assert e.monitor is not None
    return freshness.assess(
        e, window(traffic), e.monitor, now=NOW, log="prod.jsonl", since=SINCE, until=UNTIL
    )


def test_a_missing_stratum_is_named_with_its_share_and_the_command() -> None:
    check = assess({"email": 20, "chat": 15}, {"email": 500, "chat": 300, "phone": 200})
    assert check.status == "stale"
    assert check.headline == (
        "freshness triage-set: stale, 20.0% of the window's traffic is not covered (over 10.0%): "
        "missing phone (20.0% of traffic)"
    )
    # phone's share of 35 cases as `sample --min-per-stratum 5` would allot it today: 5 + 4.
    assert check.figures["command"] == (
        "agent-evals sample prod.jsonl --prompt triage --append --n 9 --map vars.channel=channel "
        "--map vars.text=body --map timestamp=ts --map output=reply --stratify-by channel "
        "--since 2026-12-01 --until 2026-12-08 --query 'channel == \"phone\"'"
    )
    assert check.figures["missing"] == ["phone"]
    assert check.figures["uncovered_share"] == 0.2
    assert (check.kind, check.prompt_id, check.evalset_id, check.window) == (
        "freshness", "triage", "triage-set", (SINCE, UNTIL)
    )  # fmt: skip
    phone = check.figures["strata"][2]
    assert phone == {
        "name": "phone", "rows": 200, "share": 0.2, "cases": 0, "target": 9, "p_value": None, "state": "missing"
    }  # fmt: skip


def test_an_under_represented_stratum_is_named_by_its_binomial_test() -> None:
    check = assess({"email": 50, "chat": 48, "sms": 2}, {"email": 500, "chat": 300, "sms": 200})
    assert check.status == "stale"
    assert check.headline == (
        "freshness triage-set: stale, 20.0% of the window's traffic is not covered (over 10.0%): "
        "under-represented sms (20.0% of traffic, 2 of 22 cases)"
    )
    assert check.figures["under"] == ["sms"]
    sms = check.figures["strata"][2]
    assert (sms["target"], sms["state"]) == (22, "under")
    assert sms["p_value"] < 1e-5
    assert check.figures["command"].endswith(
        "--stratify-by channel --since 2026-12-01 --until 2026-12-08 --query 'channel == \"sms\"'"
    )
    assert " --n 20 " in check.figures["command"]  # the 20 it lacks


def test_a_small_shortfall_is_chance_not_a_gap() -> None:
    # 17 of 100 cases where 22 are expected: a binomial shortfall well within chance.
    check = assess({"email": 50, "chat": 33, "sms": 17}, {"email": 500, "chat": 300, "sms": 200})
    assert check.status == "ok"
    assert check.figures["under"] == []
    assert check.figures["command"] is None


def test_a_proportional_eval_set_is_fresh() -> None:
    check = assess({"email": 50, "chat": 30, "sms": 20}, {"email": 500, "chat": 300, "sms": 200})
    assert check.status == "ok"
    assert check.headline == (
        "freshness triage-set: fresh, 0.0% of the window's traffic is not covered (at most 10.0%)"
    )
    assert check.figures["command"] is None


def test_a_rare_missing_stratum_under_the_threshold_is_named_but_fresh() -> None:
    check = assess({"email": 50, "chat": 30}, {"email": 600, "chat": 380, "fax": 20})
    assert check.status == "ok"
    assert check.headline == (
        "freshness triage-set: fresh, 2.0% of the window's traffic is not covered (at most 10.0%): "
        "missing fax (2.0% of traffic)"
    )
    assert check.figures["command"].endswith("--query 'channel == \"fax\"'")


def test_the_threshold_is_the_eval_sets() -> None:
    assert assess({"email": 50, "chat": 30}, {"email": 600, "chat": 380, "fax": 20}, max_uncovered_share=0.01).status == "stale"  # fmt: skip


def test_an_empty_window_cannot_tell() -> None:
    check = assess({"email": 5}, {})
    assert (check.status, check.headline) == (
        "cannot_tell",
        "freshness triage-set: cannot tell (no rows in the window)",
    )


TOPICS = {
    "refund": ["refund my order please", "refund for the broken blender", "refund not received", "charged twice refund"],
    "password": ["reset my password", "password expired cannot log in", "password reset link broken", "locked out password"],
    "shipping": ["shipping parcel delayed", "shipping tracking number missing", "shipping courier lost parcel", "shipping delivery late parcel"],
}  # fmt: skip


def test_text_clusters_find_the_topic_no_case_covers() -> None:
    rng = random.Random(1)
    rows = [
        WindowRow(line=i + 1, at=None, version=None, vars={"text": rng.choice(TOPICS[topic])}, output=None)
        for i, topic in enumerate(["refund"] * 450 + ["password"] * 350 + ["shipping"] * 200)
    ]
    cases = [{"id": f"{t}-{j}", "vars": {"text": TOPICS[t][j % 4]}} for t, n in (("refund", 25), ("password", 20)) for j in range(n)]  # fmt: skip
    e = EvalSet.model_validate(
        {"id": "s", "prompt": "triage", "graders": [{"type": "exact_match"}], "cases": cases, "monitor": {}}
    )
    assert e.monitor is not None
    check = freshness.assess(e, rows, e.monitor, now=NOW, log="prod.jsonl", clusters=3)
    assert check.status == "stale"
    assert check.headline == (
        "freshness s: stale, 20.0% of the window's traffic is not covered (over 10.0%): "
        "no case in text cluster 3 (shipping, parcel, delivery: 20.0% of traffic)"
    )
    shipping = check.figures["clusters"]["items"][2]
    assert (shipping["rows"], shipping["cases"], shipping["state"]) == (200, 0, "uncovered")
    assert len(shipping["examples"]) == 3
    assert all(x.startswith("shipping ") for x in shipping["examples"])
    assert (
        check.figures["command"]
        == "agent-evals sample prod.jsonl --prompt triage --append --n 5 --method diversity"
    )


# --- the PR comment ----------------------------------------------------------------------------


def test_the_pr_comment_names_a_stale_eval_set_under_the_verdict() -> None:
    stale = assess({"email": 20, "chat": 15}, {"email": 500, "chat": 300, "phone": 200})
    verdict = Verdict(status="pass", headline="gate passed", rules=())
    report = GateReport(pairs=(PairReport("triage", "triage-set", "modified", verdict, freshness=stale),))
    md = markdown.render(report)
    lines = md.splitlines()
    verdict_at = next(i for i, line in enumerate(lines) if line.startswith("✅ **"))
    assert lines[verdict_at + 2 : verdict_at + 4] == [
        "> [!WARNING]",
        "> 🧭 Eval set `triage-set` is stale: 20.0% of production traffic in 2026-12-01..2026-12-08 is not "
        "covered (over 10.0%), in `phone`. Fix: `agent-evals sample prod.jsonl --prompt triage --append --n 9 "
        "--map vars.channel=channel --map vars.text=body --map timestamp=ts --map output=reply --stratify-by "
        "channel --since 2026-12-01 --until 2026-12-08 --query 'channel == \"phone\"'`",
    ]
    fresh = assess({"email": 50, "chat": 30}, {"email": 500, "chat": 300})
    clean = GateReport(pairs=(PairReport("triage", "triage-set", "modified", verdict, freshness=fresh),))
    assert "[!WARNING]" not in markdown.render(clean)


# --- the command, the store and readiness ------------------------------------------------------

MONITOR = """
monitor:
  map: {vars.ticket.subject: subject, vars.ticket.body: body, vars.ticket.channel: channel, timestamp: ts, output: reply}
  stratify_by: vars.ticket.channel
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ticket-triage example with a monitor policy, and a synthetic log with a new channel."""
    copy_ticket_triage_example(tmp_path, ("prompts", "evalsets"))
    path = tmp_path / "evalsets/ticket-triage.yaml"
    committed = re.sub(r"(?m)^monitor:.*\n(?:  .*\n)+", "", path.read_text())  # the example's own block
    path.write_text(committed + MONITOR)
    rows = []
    for i in range(400):
        channel = ["email", "chat", "web", "phone"][i % 4]
        rows.append(
            {
                "ts": (SINCE + dt.timedelta(minutes=20 * i)).isoformat() + "Z",
                "subject": f"synthetic {channel} subject {i}",
                "body": f"synthetic ticket body {i}",
                "channel": channel,
                "reply": "{}",
            }
        )
    (tmp_path / "prod.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    return tmp_path


def freshness_row(root: Path) -> tuple[str, str, str | None]:
    (card,) = scorecards(root)
    (row,) = [c for c in card.checks if c.name == "freshness"]
    return row.status, row.detail, row.fix


def test_readiness_says_not_checked_then_shows_the_stored_check(project: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert freshness_row(project) == (
        "warn",
        "eval set ticket-triage: not checked against production traffic",
        "agent-evals freshness LOG --evalset ticket-triage",
    )
    assert not (project / ".agent-evals").exists()  # readiness never creates a history
    assert main(["freshness", "prod.jsonl", "--evalset", "ticket-triage", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "stale"
    assert report["figures"]["missing"] == ["phone"]
    command = (
        "agent-evals sample prod.jsonl --prompt ticket-triage --append --n 18 --map vars.ticket.subject=subject "
        "--map vars.ticket.body=body --map vars.ticket.channel=channel --map timestamp=ts --map output=reply "
        "--stratify-by vars.ticket.channel --since 2026-11-30 --until 2026-12-07 "
        "--query '`vars.ticket.channel` == \"phone\"'"
    )
    assert report["figures"]["command"] == command
    status, detail, fix = freshness_row(project)
    assert (status, fix) == ("fail", command)
    assert detail.startswith("eval set ticket-triage: 25.0% of production traffic not covered on ")
    assert detail.endswith(" (over 10.0%); missing or under-represented: phone")
    assert main(["readiness", "--strict"]) == 1
    assert main(["freshness", "prod.jsonl", "--evalset", "ticket-triage", "--strict"]) == 1


def test_the_cli_under_a_terminal(project: Path) -> None:
    result = run_pty([*CLI, "freshness", "prod.jsonl", "--evalset", "ticket-triage"], project, timeout=120)
    assert result.code == 0, result.text
    assert "phone" in result.text
    assert "missing" in result.text
    assert "fix: agent-evals sample prod.jsonl --prompt ticket-triage --append --n 18" in result.text.replace(
        "\n", " "
    )
    assert (
        "freshness ticket-triage: stale, 25.0% of the window's traffic is not covered (over 10.0%): "
        "missing phone (25.0% of traffic)"
    ) in " ".join(result.text.split())


def test_an_unknown_eval_set_is_one_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["freshness", "prod.jsonl", "--evalset", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "--evalset nope: no such eval set (eval sets: ticket-triage)"


def test_an_eval_set_without_a_monitor_policy_is_one_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    path = project / "evalsets/ticket-triage.yaml"
    path.write_text(path.read_text().replace(MONITOR, ""))
    assert main(["freshness", "prod.jsonl", "--evalset", "ticket-triage"]) == 2
    assert capsys.readouterr().err.strip() == (
        "evalsets/ticket-triage.yaml: eval set ticket-triage has no monitor policy "
        "(add 'monitor: {map: {...}, stratify_by: ...}': how its production log is read)"
    )


# --- random input ------------------------------------------------------------------------------

NAMES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    cases=st.lists(st.tuples(NAMES, NAMES), max_size=12),
    rows=st.lists(st.tuples(st.one_of(st.none(), NAMES), NAMES), max_size=40),
    stratify=st.sampled_from([None, "channel", "vars.channel", "tags.channel", "label"]),
    share=st.floats(0, 1),
)
def test_random_inputs_never_crash(
    cases: Sequence[tuple[str, str]],
    rows: Sequence[tuple[str | None, str]],
    stratify: str | None,
    share: float,
) -> None:
    e = EvalSet.model_validate(
        {
            "id": "r",
            "prompt": "p",
            "graders": [{"type": "exact_match"}],
            "cases": [
                {"id": str(i), "vars": {"channel": c, "text": t}, "tags": [c]}
                for i, (c, t) in enumerate(cases)
            ],
            "monitor": {"stratify_by": stratify, "max_uncovered_share": share},
        }
    )
    window_rows = [
        WindowRow(line=i, at=None, version=None, vars={"text": t}, output=None, stratum=s)
        for i, (s, t) in enumerate(rows)
    ]
    assert e.monitor is not None
    check = freshness.assess(e, window_rows, e.monitor, now=NOW)
    assert check.status in ("ok", "stale", "cannot_tell")
    json.dumps(check.figures, allow_nan=False)
    share_seen = check.figures["uncovered_share"]
    assert share_seen is None or 0 <= share_seen <= 1


def test_diff_names_the_stale_eval_set_in_the_pr_comment_from_the_stored_check(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: `freshness` stores a stale check; a later `diff` of two runs of that eval set
    reads it from the history and the PR comment says so under the verdict."""
    assert main(["freshness", "prod.jsonl", "--evalset", "ticket-triage", "--format", "json"]) == 0
    assert main(["run", "--evalset", "ticket-triage", "--output", "base.jsonl"]) == 0
    assert main(["run", "--evalset", "ticket-triage", "--output", "cand.jsonl"]) == 0
    capsys.readouterr()
    assert main(["diff", "base.jsonl", "cand.jsonl", "--report-md", "comment.md"]) == 0
    comment = (project / "comment.md").read_text(encoding="utf-8")
    assert "> 🧭 Eval set `ticket-triage` is stale: 25.0% of production traffic in " in comment
    assert (
        ", in `phone`. Fix: ``agent-evals sample prod.jsonl --prompt ticket-triage --append --n 18 "
        in comment
    )
