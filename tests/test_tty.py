"""Every command with a terminal attached, as a developer runs it (CI has none, so only this shows).

`ci` in a terminal used to end in `internal error: KeyError` (its progress bar was
started with no jobs and then ticked), and so did the gate hook of pre-commit, which
gives hooks a pseudo-terminal. These tests run the CLI in a fresh process on a real
pseudo-terminal and fail on any internal error or traceback (`tests/pty_run.py`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pty_run import CLI, interrupt, run_pty
from tests.support import EVALSET, basic_project
from tests.test_precommit import Project as Clone  # a developer's clone of an `init` repository
from tests.test_scaffold import drop_refund_examples

PROMPT_FILE = "prompts/ticket-triage.yaml"
ASK, NOTE = r"\[q\]uit", r"note \(optional\)"


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Clone]:
    repo = Clone(tmp_path)
    yield repo
    repo.git.close()


def test_run_in_a_terminal_shows_progress_and_writes_the_record(tmp_path: Path) -> None:
    basic_project(tmp_path)
    done = run_pty([*CLI, "run", "--output", "r.jsonl", "--repeat", "2"], tmp_path)
    assert done.code == 0, done.text
    assert "agent-evals run" in done.text  # the summary table
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1 + 6 + 1  # header, 3 cases x 2, end


def test_ci_in_a_terminal_passes_a_harmless_change(clone: Clone) -> None:
    prompt = clone.text(PROMPT_FILE)
    clone.commit({PROMPT_FILE: prompt.replace("(synthetic example)", "(synthetic, v2)")}, "reword")
    done = run_pty([*CLI, "ci", "--base", "main", "--report-md", "r.md"], clone.root)
    assert done.code == 0, done.text
    assert "agent-evals gate PASSED" in done.text
    assert (clone.root / "r.md").is_file()


def test_ci_in_a_terminal_fails_a_regressing_change(clone: Clone) -> None:
    clone.commit({PROMPT_FILE: drop_refund_examples(clone.text(PROMPT_FILE))}, "drop the refund examples")
    done = run_pty([*CLI, "ci", "--base", "main"], clone.root)
    assert done.code == 1, done.text
    assert "agent-evals gate FAILED" in done.text
    assert "critical refund" in done.text


def test_diff_in_a_terminal(clone: Clone) -> None:
    candidate = clone.root / "candidate" / "ticket-triage.yaml"
    candidate.parent.mkdir()
    candidate.write_text(drop_refund_examples(clone.text(PROMPT_FILE)))
    assert run_pty([*CLI, "run", "--output", "base.jsonl"], clone.root).code == 0
    ran = run_pty(
        [*CLI, "run", "--prompt-file", "candidate/ticket-triage.yaml", "--output", "cand.jsonl"], clone.root
    )
    assert ran.code == 0, ran.text
    done = run_pty([*CLI, "diff", "base.jsonl", "cand.jsonl"], clone.root)
    assert done.code == 1, done.text
    assert "regressed" in done.text


def test_sample_in_a_terminal(tmp_path: Path) -> None:
    basic_project(tmp_path)
    rows = [{"subject": f"Refund {i}", "body": "money back", "label": "refund"} for i in range(12)]
    rows += [{"subject": f"Login {i}", "body": "cannot log in", "label": "account_access"} for i in range(12)]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = run_pty(
        [*CLI, "sample", "log.jsonl", "--prompt", "triage", "--n", "10", "--stratify-by", "label",
         "--map", "vars.subject=subject", "--map", "vars.body=body", "--map", "expected.disposition=label",
         "--map", "label=label", "-o", "evalsets/sampled.yaml"],
        tmp_path,
    )  # fmt: skip
    assert done.code == 0, done.text
    assert (tmp_path / "evalsets/sampled.yaml").is_file()


def test_review_in_a_terminal_asks_and_stores_verdicts(tmp_path: Path) -> None:
    basic_project(tmp_path)
    human = EVALSET.replace(
        "    field: disposition\n",
        "    field: disposition\n  - type: rubric\n    name: tone\n    human: true\n",
    )
    (tmp_path / "evalsets/triage.yaml").write_text(human)
    assert run_pty([*CLI, "run", "--output", "first.jsonl"], tmp_path).code == 0
    # The reviewer passes the first case with no note, fails the second, skips the third.
    done = run_pty(
        [*CLI, "review", "first.jsonl"],
        tmp_path,
        steps=[(ASK, b"p\r"), (NOTE, b"\r"), (ASK, b"f\r"), (NOTE, b"\r"), (ASK, b"s\r")],
    )
    assert done.code == 0, done.text
    verdicts = [
        json.loads(line) for line in (tmp_path / "evalsets/triage.reviews.jsonl").read_text().splitlines()
    ]
    assert [(v["case_id"], v["verdict"]) for v in verdicts] == [("c1", "pass"), ("c2", "fail")]


def test_run_watch_in_a_terminal_reruns_an_edit_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    basic_project(tmp_path)
    evalset = tmp_path / "evalsets/triage.yaml"

    def edit(_: subprocess.Popen[bytes]) -> None:
        evalset.write_text(evalset.read_text().replace("body: cannot log in", "body: I want my money back"))

    done = run_pty(
        [*CLI, "run", "--watch"],
        tmp_path,
        steps=[(r"watching: ran 3 case", edit), (r"1 case\(s\) changed since the last run", interrupt)],
        timeout=120,
    )
    assert done.code == 130, done.text


# --- pre-commit gives hooks a pseudo-terminal: the hooks init writes, in a real commit ---------


def _pre_commit_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # agent-evals on PATH
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
    }


def test_pre_commit_in_a_terminal_passes_a_good_change_and_fails_a_regressing_one(
    clone: Clone, tmp_path: Path
) -> None:
    env = _pre_commit_env(tmp_path)
    prompt = clone.text(PROMPT_FILE)

    clone.write({PROMPT_FILE: prompt.replace("(synthetic example)", "(synthetic, v2)")})
    clone.git.git.add("--", PROMPT_FILE)
    good = run_pty([sys.executable, "-m", "pre_commit", "run"], clone.root, env=env)
    assert good.code == 0, good.text
    assert "agent-evals gate" in good.text
    assert "Passed" in good.text

    clone.write({PROMPT_FILE: drop_refund_examples(prompt)})
    clone.git.git.add("--", PROMPT_FILE)
    bad = run_pty([sys.executable, "-m", "pre_commit", "run"], clone.root, env=env)
    assert bad.code == 1, bad.text
    assert "critical refund" in bad.text
    assert "agent-evals gate FAILED" in bad.text


def test_base_auto_says_which_ref_it_chose(
    clone: Clone, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent_evals.cli import main

    clone.commit(
        {PROMPT_FILE: clone.text(PROMPT_FILE).replace("(synthetic example)", "(synthetic, v2)")}, "reword"
    )
    monkeypatch.chdir(clone.root)
    assert main(["ci", "--base", "auto"]) == 0
    merge_base = clone.git.git.merge_base("HEAD", "origin/main")[:8]
    assert f"--base auto: gating against origin/main (merge-base {merge_base})\n" in capsys.readouterr().err


@pytest.mark.parametrize("columns", [40, 22])
def test_a_narrow_terminal_shows_every_figure_whole(tmp_path: Path, columns: int) -> None:
    """At 40 columns rich cut the summary's cells to `6…` (a pass rate read as another number), and
    at 22 it printed them empty; a table too narrow for its words is printed one line per cell
    (agent_evals/report/table.py, whose wider layouts tests/test_report_table.py covers)."""
    basic_project(tmp_path)
    done = run_pty([*CLI, "run", "--output", "r.jsonl"], tmp_path, columns=columns)
    assert done.code == 0, done.text
    summary, graders = done.text.split("agent-evals run", 1)[1].split("per grader")
    lines = " ".join(summary.split())  # a line longer than the terminal wraps at a space
    for said in ["eval set (prompt): triage", "cases: 3", "pass rate: 66.7% (2/3)", "score: 0.667",
                 "errors: 0", "cost: unknown", "p50 / p95 latency: 0 /"]:  # fmt: skip
        assert said in lines, summary
    graders = " ".join(graders.split("record:")[0].split())
    assert (
        graders == "eval set: triage grader: disposition pass rate: 66.7% (2/3) mean score: 0.667 errors: 0"
    )
    assert "…" not in summary + graders


def test_a_narrow_terminal_shows_the_progress_figures_whole(tmp_path: Path) -> None:
    """At 40 columns rich's default progress columns cut the elapsed time to `0:00:…`; the
    job's name and the bar give way instead, and the count and time stay whole."""
    basic_project(tmp_path)
    done = run_pty([*CLI, "run", "--output", "r.jsonl"], tmp_path, columns=40)
    assert done.code == 0, done.text
    frames = [line for line in done.text.splitlines() if "3/3" in line]
    assert frames, done.text  # the bar's last frame, drawn as it stops
    assert all(re.search(r"3/3 0 errors \d:\d\d:\d\d$", line.rstrip()) for line in frames), frames
