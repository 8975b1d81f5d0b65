"""`agent-evals ci` gates the agent's own code, in real temporary git repositories.

The system under test is a `python:` provider, a package `agent/` whose `main.py`
imports its own `agent.rules` (an absolute import of itself: the baseline's and the
candidate's `agent.rules` are two modules of one name). A branch that changes only
that code, a `watch:` path or a `python:` grader's code must be gated like a prompt
edit, the baseline must run the merge base's code (from a `git worktree` that is
gone afterwards), and a change to anything else must run nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.record import load_record
from tests.pty_run import CLI, interrupt, run_pty
from tests.support import GitRepo, feature_branch

PROMPT = """\
schema_version: 1
id: triage
version: 1
description: Route a ticket (synthetic test prompt).
owner: {name: Support AI team, oncall: pagerduty:support-ai}
model: {provider: "python:agent.main:answer", name: rules}
output: {format: json}
messages:
  - role: user
    content: "{{ body }}"
"""

MAIN = """\
import os
import time
from pathlib import Path

from agent.rules import label_for


def answer(request):
    Path(os.environ["AGENT_CALLS"]).open("a").write("call\\n")
    time.sleep(float(os.environ.get("AGENT_DELAY", "0")))
    return {"disposition": label_for(request["vars"]["body"])}
"""

# What the branch does: every refund is now answered billing_question.
MAIN_BROKEN = MAIN.replace(
    '    return {"disposition": label_for(',
    '    if "money back" in request["vars"]["body"]:\n'
    '        return {"disposition": "billing_question"}\n'
    '    return {"disposition": label_for(',
)

RULES = """\
from pathlib import Path

LABELS = Path(__file__).resolve().parent.parent / "tools" / "labels.txt"


def label_for(body):
    for line in LABELS.read_text().splitlines():
        phrase, _, label = line.partition("=")
        if phrase and phrase in body:
            return label
    return "other"
"""

LABELS = "money back=refund\nlog in=account_access\ninvoice=billing\n"

GRADER = """\
def grade(output, parsed, case, **args):
    return parsed.get("disposition") == case["expected"]["disposition"]
"""

# A grader that now fails every refund: the eval set's own code changed the verdicts.
GRADER_STRICT = GRADER.replace(
    "    return parsed",
    '    if case["expected"]["disposition"] == "refund":\n        return False\n    return parsed',
)


def _case(case_id: str, body: str, label: str) -> str:
    return f"  - id: {case_id}\n    vars: {{body: {body}}}\n    expected: {{disposition: {label}}}\n"


CASES = (
    "".join(_case(f"refund-{i}", "I want my money back", "refund") for i in range(10))
    + "".join(_case(f"access-{i}", "I cannot log in", "account_access") for i in range(10))
    + "".join(_case(f"billing-{i}", "Where is my invoice", "billing") for i in range(10))
)
REFUNDS = {f"refund-{i}" for i in range(10)}


def evalset(graders: str = "  - {type: exact_match, name: disposition, field: disposition}\n") -> str:
    return (
        "schema_version: 1\nid: triage\nprompt: triage\nmetric: tickets routed right first time\n"
        "provenance: {source: synthetic test cases, synthetic: true}\n"
        f"graders:\n{graders}cases:\n{CASES}"
    )


MODULES = ("agent", "agent.main", "agent.rules", "checks", "checks.tone")


def project(prefix: str = "", prompt: str = PROMPT, graders: str | None = None) -> dict[str, str]:
    files = {
        "prompts/triage.yaml": prompt,
        "evalsets/triage.yaml": evalset() if graders is None else evalset(graders),
        "agent/__init__.py": "",
        "agent/main.py": MAIN,
        "agent/rules.py": RULES,
        "agent/NOTES.md": "How the agent routes tickets.\n",
        "tools/labels.txt": LABELS,
        "checks/__init__.py": "",
        "checks/tone.py": GRADER,
        "README.md": "A support bot.\n",
    }
    out = {f"{prefix}{path}": text for path, text in files.items()}
    out[".gitignore"] = ".agent-evals/\n__pycache__/\nout/\n"
    return out


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the agent logs each call (both sides, and the child process, append to it)."""
    log = tmp_path / "calls.log"
    monkeypatch.setenv("AGENT_CALLS", str(log))
    return log


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder `ci` makes its worktree in, to see that nothing is left there."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def make_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> GitRepo:
    return feature_branch(tmp_path / "repo", monkeypatch, files, modules=MODULES)


def ci_json(repo: GitRepo, *args: str) -> tuple[int, dict[str, object]]:
    code = main(["ci", "--base", "main", "--json", "out/report.json", *args])
    return code, json.loads((repo.root / "out/report.json").read_text())


def worktrees(repo: GitRepo) -> list[str]:
    listing = repo.git.git.worktree("list", "--porcelain")
    return [line for line in listing.splitlines() if line.startswith("worktree ")]


def regressed(report: dict[str, object]) -> set[str]:
    (pair,) = report["pairs"]  # type: ignore[misc]
    return {c["case_id"] for c in pair["cases"] if c["outcome"] == "regressed"}


def test_a_branch_changing_only_the_agent_code_is_gated_and_fails_on_the_regression(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path, scratch: Path
) -> None:
    repo = make_repo(tmp_path, monkeypatch, project())
    merge_base = repo.git.head.commit.hexsha
    repo.commit({"agent/main.py": MAIN_BROKEN}, "answer refunds as billing questions")

    code, report = ci_json(repo)

    assert code == 1
    (pair,) = report["pairs"]  # type: ignore[misc]
    assert pair["note"] == "agent code changed: agent/main.py"
    assert pair["verdict"]["status"] == "fail"
    assert regressed(report) == REFUNDS
    # The baseline ran the merge base's code, from a checkout of it: its refunds were right.
    base = load_record(Path(pair["runs"]["base"]["path"]))
    cand = load_record(Path(pair["runs"]["cand"]["path"]))
    assert base.header.git is not None
    assert base.header.git["commit"] == merge_base
    assert {json.loads(c.output or "{}")["disposition"] for c in base.cases if c.case_id in REFUNDS} == {
        "refund"
    }
    assert base.header.code is not None
    assert cand.header.code is not None
    assert base.header.code["hash"] != cand.header.code["hash"]
    assert sorted(cand.header.code["files"]) == [
        "agent/__init__.py",
        "agent/main.py",
        "agent/rules.py",
    ]
    # Both sides called the agent on every case; the worktree is gone, and git forgot it.
    assert len(calls.read_text().splitlines()) == 60
    assert worktrees(repo) == [f"worktree {repo.root.resolve()}"]
    assert list(scratch.iterdir()) == []


def test_a_change_to_a_module_the_agent_imports_is_gated_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path
) -> None:
    repo = make_repo(tmp_path, monkeypatch, project())
    repo.commit({"agent/rules.py": RULES.replace('"other"', '"billing_question"')}, "a new fallback")

    code, report = ci_json(repo)

    (pair,) = report["pairs"]  # type: ignore[misc]
    assert pair["note"] == "agent code changed: agent/rules.py"
    # Nothing falls through to the fallback in these cases: the change is gated, and passes.
    assert code == 0
    assert pair["verdict"]["status"] == "pass"
    assert regressed(report) == set()


def test_a_change_to_anything_else_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, monkeypatch, project())
    # Docs, a non-Python file in the package, and the labels the prompt does not declare in `watch:`.
    repo.commit(
        {
            "README.md": "A support bot that routes tickets.\n",
            "agent/NOTES.md": "Refunds are billing questions now.\n",
            "tools/labels.txt": LABELS.replace("=refund", "=billing_question"),
        },
        "docs",
    )

    assert main(["ci", "--base", "main"]) == 0

    assert "no prompt, eval set or the code they run changed since" in capsys.readouterr().out
    assert not calls.exists()  # the agent was never called
    assert not (repo.root / ".agent-evals").exists()


def test_a_change_to_a_watched_path_is_gated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path, scratch: Path
) -> None:
    watching = PROMPT + "watch:\n  - tools/*.txt\n"
    repo = make_repo(tmp_path, monkeypatch, project(prompt=watching))
    repo.commit({"tools/labels.txt": LABELS.replace("=refund", "=billing_question")}, "relabel refunds")

    code, report = ci_json(repo)

    assert code == 1
    (pair,) = report["pairs"]  # type: ignore[misc]
    assert pair["note"] == "agent code changed: tools/labels.txt"
    assert regressed(report) == REFUNDS
    cand = load_record(Path(pair["runs"]["cand"]["path"]))
    assert cand.header.code is not None
    assert "tools/labels.txt" in cand.header.code["files"]
    assert list(scratch.iterdir()) == []


def test_a_change_to_a_python_graders_code_is_gated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path, scratch: Path
) -> None:
    graders = "  - {type: 'python:checks.tone:grade', name: tone}\n"
    repo = make_repo(tmp_path, monkeypatch, project(graders=graders))
    repo.commit({"checks/tone.py": GRADER_STRICT}, "a stricter grader")

    code, report = ci_json(repo)

    assert code == 1
    (pair,) = report["pairs"]  # type: ignore[misc]
    assert pair["note"] == "grader code changed: checks/tone.py"
    # Each side was graded by its own grader: the baseline's passed the refunds, the candidate's does not.
    assert regressed(report) == REFUNDS
    assert list(scratch.iterdir()) == []


def test_a_project_in_a_subfolder_names_the_changed_file_from_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path
) -> None:
    repo = make_repo(tmp_path, monkeypatch, project(prefix="services/bot/"))
    repo.commit({"services/bot/agent/main.py": MAIN_BROKEN}, "answer refunds as billing questions")
    monkeypatch.chdir(repo.root / "services/bot")

    code = main(["ci", "--base", "main", "--json", "report.json"])

    assert code == 1
    (pair,) = json.loads((repo.root / "services/bot/report.json").read_text())["pairs"]
    assert pair["note"] == "agent code changed: services/bot/agent/main.py"
    assert {c["case_id"] for c in pair["cases"] if c["outcome"] == "regressed"} == REFUNDS


def test_a_watch_glob_that_matches_nothing_stops_ci_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repo(tmp_path, monkeypatch, project(prompt=PROMPT + "watch:\n  - tools/*.txt\n  - tool/*.yaml\n"))

    assert main(["ci", "--base", "main"]) == 2

    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "prompts/triage.yaml:13: watch glob 'tool/*.yaml' matches no file under the project root "
            "(globs are relative to the project root, e.g. 'agent/**.py' or 'tools/*.yaml')"
        )
    )
    assert not calls.exists()


def _cli_env(calls: Path, scratch: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "AGENT_CALLS": str(calls), "TMPDIR": str(scratch), **extra}


def test_ci_in_a_terminal_gates_an_agent_code_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch, project())
    repo.commit({"agent/main.py": MAIN_BROKEN}, "answer refunds as billing questions")
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    done = run_pty([*CLI, "ci", "--base", "main"], repo.root, env=_cli_env(tmp_path / "calls.log", scratch))

    assert done.code == 1, done.text
    assert "agent code changed: agent/main.py" in done.text
    assert "agent-evals gate FAILED" in done.text
    assert list(scratch.iterdir()) == []


def test_ctrl_c_while_the_baseline_runs_stops_it_and_removes_the_worktree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path, monkeypatch, project())
    repo.commit({"agent/main.py": MAIN_BROKEN}, "answer refunds as billing questions")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    calls = tmp_path / "calls.log"

    done = run_pty(
        [*CLI, "--verbose", "ci", "--base", "main", "-j", "1"],
        repo.root,
        env=_cli_env(calls, scratch, AGENT_DELAY="0.2"),
        # A baseline case streamed back from the child to the progress display: the baseline is running.
        steps=[(r"triage/refund-\d: pass", interrupt)],
        timeout=120,
    )

    assert done.code == 130, done.text
    assert len(calls.read_text().splitlines()) < 30  # stopped before the baseline finished
    assert list(scratch.iterdir()) == []
    assert worktrees(repo) == [f"worktree {repo.root.resolve()}"]
    (base,) = (repo.root / ".agent-evals/runs").glob("ci-*/base/triage.jsonl")
    record = load_record(base)
    assert record.status == "interrupted"
    assert 0 < len(record.cases) < 30
