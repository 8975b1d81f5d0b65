"""`agent-evals report`: one self-contained page for a run, or for baseline vs candidate."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_evals.cli import main
from tests.support import copy_ticket_triage_example

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy_ticket_triage_example(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--output", "base.jsonl"]) == 0
    assert (
        main(["run", "--prompt-file", "examples/candidate/ticket-triage.yaml", "--output", "cand.jsonl"]) == 0
    )
    return tmp_path


def test_baseline_vs_candidate_page(example: Path) -> None:
    assert main(["report", "cand.jsonl", "--baseline", "base.jsonl", "--html", "out/r.html"]) == 0
    page = (example / "out/r.html").read_text()
    assert page.lower().startswith("<!doctype html>")
    assert "refund-duplicate-charge-shopwave" in page
    assert "critical refund" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_single_run_page_uses_the_evalset_policy(example: Path) -> None:
    assert main(["report", "base.jsonl", "--html", "one.html"]) == 0
    page = (example / "one.html").read_text()
    assert "single run: pass rate 80.6%" in page
