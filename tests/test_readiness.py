"""`readiness`: the bundled example is ready; each missing fact fails with its one-line fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.readiness import scorecards
from tests.support import copy_ticket_triage_example

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy_ticket_triage_example(tmp_path, ("prompts", "evalsets"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def edit(path: Path, pattern: str, replacement: str = "") -> None:
    text = path.read_text()
    changed, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert count == 1, pattern
    path.write_text(changed)


def failed(root: Path) -> dict[str, tuple[str, str | None]]:
    (card,) = scorecards(root)
    return {c.name: (c.detail, c.fix) for c in card.checks if c.status == "fail"}


def test_the_example_is_ready(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (card,) = scorecards(example)
    assert card.ready
    assert [c.name for c in card.checks] == [
        "narrow_job", "runtime_policy", "evals", "freshness", "gate_policy", "owner", "metric", "litmus"
    ]  # fmt: skip
    assert main(["readiness", "--strict"]) == 0
    assert "ticket-triage: ready" in capsys.readouterr().out


def test_removing_the_owner_fails_with_a_fix(example: Path) -> None:
    edit(example / "prompts/ticket-triage.yaml", r"^owner:\n(  .*\n)+")
    result = failed(example)
    assert result["owner"] == ("no named owner", "add 'owner: {name: <team or person>, oncall: <rotation>}'")
    assert result["valid"][0].startswith("prompts/ticket-triage.yaml:")  # an unowned prompt does not validate


def test_removing_the_oncall_fails_with_a_fix(example: Path) -> None:
    edit(example / "prompts/ticket-triage.yaml", r"^  oncall: .*\n")
    assert failed(example)["owner"] == (
        "owner support-automation team has no on-call",
        "add 'owner.oncall: <who gets paged>'",
    )


def test_removing_the_metric_fails_with_a_fix(example: Path) -> None:
    edit(example / "evalsets/ticket-triage.yaml", r"^metric: .*\n")
    assert failed(example) == {
        "metric": (
            "eval set ticket-triage names no business metric",
            "add 'metric: <the number it protects>'",
        )
    }


def test_removing_the_provenance_fails_with_a_fix(example: Path) -> None:
    edit(example / "evalsets/ticket-triage.yaml", r"^provenance:\n(  .*\n(    .*\n)*)+")
    assert failed(example) == {
        "evals": (
            "eval set ticket-triage has no provenance",
            "add 'provenance: {source: ..., sampled_at: ..., method: ...}' (agent-evals sample writes it)",
        )
    }


def test_unanswered_litmus_and_runtime_fail_with_fixes(example: Path) -> None:
    edit(example / "prompts/ticket-triage.yaml", r"^  who_gets_paged: .*\n")
    edit(example / "prompts/ticket-triage.yaml", r"^  max_cost_usd: .*\n")
    result = failed(example)
    assert result["litmus"] == (
        "unanswered: who gets paged when it is down",
        "answer them under 'litmus:' in the prompt (who_gets_paged)",
    )
    assert result["runtime_policy"] == (
        "missing a cost ceiling",
        "record the production runtime under 'runtime:' (max_cost_usd)",
    )


def test_too_few_cases_and_no_gate(example: Path) -> None:
    (example / "agent-evals.yaml").write_text("schema_version: 1\nreadiness: {min_cases: 100}\n")
    edit(example / "evalsets/ticket-triage.yaml", r"^gate:\n(  .*\n)+")
    result = failed(example)
    assert result["evals"] == (
        "eval set ticket-triage has 72 cases; at least 100 needed",
        "sample more production traffic: agent-evals sample --append",
    )
    assert result["gate_policy"][1] == "add 'gate: {max_regressions: ..., critical: [...]}'"


def test_strict_exits_1_and_markdown_has_the_scorecard(example: Path) -> None:
    edit(example / "evalsets/ticket-triage.yaml", r"^metric: .*\n")
    assert main(["readiness"]) == 0
    assert main(["readiness", "--strict", "--markdown", "card.md"]) == 1
    md = (example / "card.md").read_text()
    assert "**`ticket-triage`**: not ready" in md
    assert (
        "| metric | ❌ | eval set ticket-triage names no business metric | add 'metric: <the number it protects>' |"
        in md
    )


def test_an_unknown_prompt_names_the_known_ones(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["readiness", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "no prompt 'nope' (known: ticket-triage)"


def test_a_long_escape_hatch_is_shown_on_one_line_and_says_it_was_cut(example: Path) -> None:
    hatch = "hand the ticket to the tier-2 queue\n  with the model's draft attached " + "x" * 80
    edit(
        example / "prompts/ticket-triage.yaml",
        r"^  escape_hatch: >-\n(    .*\n)+",
        f"  escape_hatch: {json.dumps(hatch)}\n",
    )
    (card,) = scorecards(example)
    (runtime,) = [c for c in card.checks if c.name == "runtime_policy"]
    assert runtime.status == "pass"
    shown = runtime.detail.split("escape hatch: ", 1)[1]
    # Its whitespace collapsed to one line, cut to 60 characters, and the cut shown.
    assert shown == "hand the ticket to the tier-2 queue with the model's draft …"
