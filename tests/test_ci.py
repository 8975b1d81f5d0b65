"""`agent-evals ci` end to end, in real temporary git repositories.

The system under test is a small deterministic agent (a `python:` provider)
whose answers follow its prompt: the system message maps phrases to labels, so
dropping a line from the prompt breaks exactly the cases that need it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import junitparser
import pytest

from agent_evals.cli import main
from tests.http_server import Request, Response, ScriptedServer, openai_chat
from tests.support import GitRepo, feature_branch

PROMPT = """\
schema_version: 1
id: triage
version: 1
description: Route a ticket (synthetic test prompt).
owner: {name: Support AI team, oncall: pagerduty:support-ai}
model: {provider: "python:agent:answer", name: rules}
output: {format: json}
messages:
  - role: system
    content: |
      Route the ticket.
      refund <- money back | want a refund
      account_access <- log in
      billing <- invoice
  - role: user
    content: "{{ body }}"
"""

AGENT = """\
import json
import os
from pathlib import Path


def answer(request):
    Path(os.environ.get("AGENT_CALLS", "calls.log")).open("a").write("call\\n")
    rules = []
    for line in request["messages"][0]["content"].splitlines():
        if "<-" in line:
            label, phrases = line.split("<-")
            rules += [(p.strip(), label.strip()) for p in phrases.split("|")]
    body = request["vars"]["body"]
    for phrase, label in rules:
        if phrase in body:
            return {"disposition": label}
    return {"disposition": "other"}
"""


def case(case_id: str, body: str, label: str) -> str:
    return (
        f"  - id: {case_id}\n    vars: {{body: {json.dumps(body)}}}\n"
        f"    expected: {{disposition: {label}}}\n    tags: [{label}]\n"
    )


def evalset(cases: str, gate: str = "") -> str:
    return (
        "schema_version: 1\nid: triage\nprompt: triage\nmetric: tickets routed right first time\n"
        "provenance: {source: synthetic test cases, synthetic: true}\n"
        f"{gate}"
        "graders:\n  - {type: exact_match, name: disposition, field: disposition}\ncases:\n" + cases
    )


BASE_CASES = (
    "".join(case(f"refund-{i}", "I want my money back", "refund") for i in range(7))
    + "".join(case(f"refund-phrase-{i}", "I want a refund now", "refund") for i in range(3))
    + "".join(case(f"access-{i}", "I cannot log in", "account_access") for i in range(10))
    + "".join(case(f"billing-{i}", "Where is my invoice", "billing") for i in range(10))
    + case("odd-1", "something odd happened", "refund")
)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """main has the prompt, eval set and agent; HEAD is on a feature branch."""
    files = {
        "prompts/triage.yaml": PROMPT,
        "evalsets/triage.yaml": evalset(BASE_CASES),
        "agent.py": AGENT,
        ".gitignore": ".agent-evals/\ncalls.log\n",
    }
    return feature_branch(tmp_path / "repo", monkeypatch, files)


def ci(*args: str) -> int:
    return main(["ci", "--base", "main", *args])


def ci_refuses(repo: GitRepo, capsys: pytest.CaptureFixture[str], expected: list[str]) -> None:
    """`ci` exits 2 saying exactly `expected` on stderr, and no model is called."""
    assert ci() == 2
    assert capsys.readouterr().err.splitlines() == expected
    assert not (repo.root / "calls.log").exists()


def test_a_breaking_prompt_edit_fails_and_the_reports_name_the_cases(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.commit({"prompts/triage.yaml": PROMPT.replace("      refund <- money back | want a refund\n", "")})
    code = ci("--report-md", "out/report.md", "--junit", "out/junit.xml", "--json", "out/report.json")
    assert code == 1
    regressed = {f"refund-{i}" for i in range(7)} | {f"refund-phrase-{i}" for i in range(3)}
    md = (repo.root / "out/report.md").read_text()
    assert all(case_id in md for case_id in regressed)
    suites = junitparser.JUnitXml.fromstring((repo.root / "out/junit.xml").read_text())
    failed = {
        tc.name
        for suite in suites
        for tc in suite
        if any(isinstance(r, junitparser.Failure) for r in tc.result) and not tc.name.startswith("gate:")
    }
    assert failed == regressed
    verdict = json.loads((repo.root / "out/report.json").read_text())
    assert verdict["status"] == "fail"
    assert "significant_regression" in capsys.readouterr().out


def test_a_harmless_edit_passes_without_running_anything(repo: GitRepo) -> None:
    edited = PROMPT.replace(
        "description: Route a ticket (synthetic test prompt).", "description: Routes tickets."
    )
    repo.commit({"prompts/triage.yaml": "# a comment, re-indented   \n" + edited})
    assert ci() == 0
    assert not (repo.root / "calls.log").exists()


def test_added_cases_are_new_not_regressions(repo: GitRepo) -> None:
    added = case("new-fails", "gibberish", "billing") + case("new-passes", "an invoice please", "billing")
    repo.commit({"evalsets/triage.yaml": evalset(BASE_CASES + added)})
    assert ci("--json", "out.json") == 0
    pair = json.loads((repo.root / "out.json").read_text())["pairs"][0]
    outcomes = {c["case_id"]: c["outcome"] for c in pair["cases"]}
    assert outcomes["new-fails"] == "new"
    assert outcomes["new-passes"] == "new"
    assert "regressed" not in outcomes.values()


def test_a_new_prompt_is_gated_on_absolute_thresholds(repo: GitRepo) -> None:
    new_prompt = PROMPT.replace("id: triage", "id: billing-only").replace(
        "      refund <- money back | want a refund\n      account_access <- log in\n", ""
    )
    gate = "gate: {min_pass_rate: 0.9}\n"
    new_evalset = evalset(BASE_CASES, gate).replace(
        "id: triage\nprompt: triage", "id: billing-only\nprompt: billing-only"
    )
    repo.commit({"prompts/billing-only.yaml": new_prompt, "evalsets/billing-only.yaml": new_evalset})
    assert ci("--json", "out.json") == 1  # only billing cases pass: 10/31 < 90%
    pair = json.loads((repo.root / "out.json").read_text())["pairs"][0]
    assert pair["change"] == "new"
    assert pair["verdict"]["headline"].startswith("new, no baseline: pass rate 32.3% (min_pass_rate 90.0%)")


def test_nothing_changed_exits_0_without_calling_a_provider(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ci() == 0
    assert not (repo.root / "calls.log").exists()
    assert "no prompt, eval set or the code they run changed since" in capsys.readouterr().out


def test_loosening_the_bar_and_deleting_failing_cases_is_called_out_and_still_fails(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.commit({"evalsets/triage.yaml": evalset(BASE_CASES, "gate: {max_regressions: 0}\n")})
    repo.git.git.checkout("main")
    repo.git.git.merge("feature")
    repo.git.git.checkout("-b", "sneaky")
    # The edit breaks the three "want a refund" cases; the branch deletes two and allows five regressions.
    kept = BASE_CASES.replace(case("refund-phrase-1", "I want a refund now", "refund"), "").replace(
        case("refund-phrase-2", "I want a refund now", "refund"), ""
    )
    repo.commit(
        {
            "prompts/triage.yaml": PROMPT.replace(" | want a refund", ""),
            "evalsets/triage.yaml": evalset(kept, "gate: {max_regressions: 5}\n"),
        }
    )
    assert ci("--report-md", "report.md") == 1
    out = capsys.readouterr().out
    md = (repo.root / "report.md").read_text()
    assert "max_regressions: 0 -> 5" in out
    assert "refund-phrase-1" in out
    finding = "`triage` / `triage`: `max_regressions` `0` → `5`"
    assert finding in md
    assert "`cases` `31 cases` → `29 cases`; cases: `refund-phrase-1`, `refund-phrase-2`" in md
    # The findings come before the per-prompt summary table in the PR comment.
    assert md.index(finding) < md.index("| prompt / eval set |")
    assert ci("--accept-policy-change") == 0


def test_a_provider_that_fails_for_most_cases_exits_3(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedServer(default=lambda request: Response(500, {"error": {"message": "down"}})) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        repo.commit(
            {
                "agent-evals.yaml": "schema_version: 1\ndefaults: {max_attempts: 2, initial_backoff_s: 0}\n",
                "prompts/triage.yaml": PROMPT.replace('provider: "python:agent:answer"', "provider: openai"),
            }
        )
        assert ci() == 3
        assert server.request_count > 0


def test_baseline_dir_compares_with_committed_records(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--output", "baselines"]) == 0
    repo.write({"prompts/triage.yaml": PROMPT.replace("      refund <- money back | want a refund\n", "")})
    assert main(["ci", "--baseline-dir", "baselines"]) == 1


def test_base_and_baseline_dir_are_exclusive(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci"]) == 2
    assert "give exactly one of --base REF or --baseline-dir DIR" in capsys.readouterr().err


def test_sharded_ci_merged_gives_the_unsharded_verdict(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.commit({"prompts/triage.yaml": PROMPT.replace("      refund <- money back | want a refund\n", "")})
    assert ci("--json", "full.json") == 1
    for i in (1, 2, 3):
        assert ci("--shard", f"{i}/3", "--output", f"shards/{i}") == 0
    assert "merge the shards with 'agent-evals merge'" in capsys.readouterr().out
    assert main(["merge", "shards/1", "shards/2", "shards/3", "--output", "merged"]) == 0
    assert ci("--records", "merged", "--json", "merged.json") == 1
    full, merged = (
        json.loads((repo.root / name).read_text())["pairs"][0] for name in ("full.json", "merged.json")
    )
    assert [r["rule"] for r in full["verdict"]["rules"]] == [r["rule"] for r in merged["verdict"]["rules"]]
    outcomes = [{c["case_id"]: c["outcome"] for c in pair["cases"]} for pair in (full, merged)]
    assert outcomes[0] == outcomes[1]


def test_annotations_point_at_the_eval_set_lines(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.commit({"prompts/triage.yaml": PROMPT.replace("      refund <- money back | want a refund\n", "")})
    capsys.readouterr()
    assert ci("--annotations") == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::")]
    text = (repo.root / "evalsets/triage.yaml").read_text().splitlines()
    line_of_refund_0 = text.index("  - id: refund-0") + 1
    assert (
        f"::error file=evalsets/triage.yaml,line={line_of_refund_0},title=agent-evals triage%3A regressed::"
        "case 'refund-0' regressed (passed on the baseline, fails now): "
        "disposition: expected 'refund', got 'other'"
    ) in lines
    assert any(
        line.startswith(
            "::error file=evalsets/triage.yaml,title=agent-evals triage%3A significant_regression::"
        )
        for line in lines
    )


def test_ci_passes_the_runtime_options_to_both_sides(repo: GitRepo) -> None:
    from agent_evals.record import load_record

    repo.commit({"prompts/triage.yaml": PROMPT.replace("Route the ticket.", "Route this ticket.")})
    assert ci("--repeat", "2", "--trace", "t.jsonl", "--output", "out") == 0
    for side in ("base", "cand"):
        record = load_record(repo.root / f"out/{side}/triage.jsonl")
        assert {c.repeat for c in record.cases} == {0, 1}
        assert (repo.root / f"t.{side}.jsonl").read_text().count('"step": "response"') == 62


def test_ci_honours_the_cost_ceiling(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.commit({"prompts/triage.yaml": PROMPT.replace("Route the ticket.", "Route this ticket.")})
    # The agent has no price, so under a ceiling nothing can be sent: the gate cannot judge.
    assert ci("--max-cost", "1") == 3
    assert not (repo.root / "calls.log").exists()
    assert "skipped" in capsys.readouterr().out


def test_deleting_an_evalset_moves_the_bar(repo: GitRepo) -> None:
    (repo.root / "evalsets/triage.yaml").unlink()
    repo.commit()
    assert ci("--json", "g.json") == 1
    (pair,) = json.loads((repo.root / "g.json").read_text())["pairs"]
    assert (pair["prompt_id"], pair["evalset_id"], pair["change"]) == ("triage", "triage", "deleted")
    assert [(f["kind"], f["old"], f["new"]) for f in pair["verdict"]["findings"]] == [
        ("evalset_deleted", "triage", "deleted")
    ]
    assert ci("--accept-policy-change") == 0
    assert not (repo.root / "calls.log").exists()


def test_an_interrupted_ci_says_the_same_command_again_does_not_buy_an_answer_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ci has no --resume; what it was answered before Ctrl-C is in the response cache, and the
    hint says so. Measured: the second ci sends only what the first did not get answered."""
    answer = openai_chat('{"disposition": "refund"}')

    def slow(request: Request) -> Response:
        time.sleep(0.05)
        return answer(request)

    openai_prompt = PROMPT.replace('provider: "python:agent:answer"', "provider: openai")
    # Every case a request of its own: identical requests share one cache entry.
    cases = "".join(case(f"refund-{i}", f"I want my money back for order {i}", "refund") for i in range(30))
    files = {"prompts/triage.yaml": openai_prompt, "evalsets/triage.yaml": evalset(cases)}
    repo = feature_branch(tmp_path / "repo", monkeypatch, {**files, ".gitignore": ".agent-evals/\n"})
    repo.commit({"prompts/triage.yaml": openai_prompt.replace("      billing <- invoice\n", "")})
    every = 2 * 30  # both sides, every case
    with ScriptedServer(default=slow) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-test"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent_evals.cli", "ci", "--base", "main", "-j", "2"],
            cwd=repo.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.request_count < 12:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert (
            "the model answers received are in the response cache: the same command again does not send "
            "them again" in err
        )
        first = server.request_count
        assert 12 <= first < every
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert main(["ci", "--base", "main", "-j", "2"]) in (0, 1)
        again = server.request_count - first
    # At most the two requests in flight at Ctrl-C were cut off unanswered and are sent again.
    assert every - first <= again <= every - first + 2


def test_a_baseline_dir_that_cannot_be_read_is_refused_not_gated_as_new(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each of these passed a regression (exit 0): no baseline was found, so every pair was new."""
    assert main(["run", "--output", "baselines"]) == 0
    repo.write({"prompts/triage.yaml": PROMPT.replace("      refund <- money back | want a refund\n", "")})
    capsys.readouterr()
    root = repo.root
    (root / "a-file").write_text("x\n")
    (root / "empty").mkdir()
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / "triage.jsonl")
    (root / "loop").mkdir()
    (root / "loop" / "triage.jsonl").symlink_to("triage.jsonl")
    (root / "dangling").mkdir()
    (root / "dangling" / "triage.jsonl").symlink_to(root / "nowhere.jsonl")
    said = {
        "no-such-dir": "no-such-dir: --baseline-dir not found (pass the folder",
        "a-file": "a-file: --baseline-dir is not a folder (pass the folder",
        "empty": "empty: no baseline record of any eval set in this folder (looked for triage.jsonl) (pass",
        "fifo": "fifo/triage.jsonl: not a regular file (a FIFO; pass a file written by 'agent-evals run')",
        "loop": "loop/triage.jsonl: cannot read file: Too many levels of symbolic links",
        "dangling": "dangling/triage.jsonl: run record not found",
    }
    for folder, line in said.items():
        assert main(["ci", "--baseline-dir", folder]) == 2, folder
        err = capsys.readouterr().err
        assert err.startswith(line), err
        assert len(err.splitlines()) == 1, err
    assert main(["ci", "--baseline-dir", "baselines"]) == 1  # the same change against a real baseline


BREAKING = PROMPT.replace("      refund <- money back | want a refund\n", "")
"""A prompt edit that breaks the refund cases: `ci` at the project's root fails the gate (exit 1)."""


@pytest.mark.parametrize("command", [["ci", "--base", "main"], ["run", "--output", "out.jsonl"]])
def test_a_folder_inside_the_project_is_refused_naming_its_root(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Started in a subfolder, `ci` found no prompt changed and passed the gate (exit 0) on a
    breaking edit: it is exit 2, one line naming the root, and nothing runs; `-C ROOT` gates it."""
    repo.commit({"prompts/triage.yaml": BREAKING})
    monkeypatch.chdir(repo.root / "prompts")
    assert main(command) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"{repo.root / 'prompts'} is inside the agent-evals project at {repo.root}, not its root "
        f"(run from {repo.root}, or pass -C {repo.root})"
    ]
    assert not (repo.root / "calls.log").exists()
    assert not (repo.root / "prompts/calls.log").exists()
    assert not (repo.root / "prompts/out.jsonl").exists()
    if command[0] == "ci":
        assert main(["-C", str(repo.root), *command]) == 1


def test_a_folder_above_the_project_is_refused_not_gated_as_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A monorepo whose CI step runs at the repository's top, the project in `agent/`: `ci` there
    found no prompt changed and passed the gate (exit 0). It is exit 2; `-C agent` gates the edit."""
    files = {
        "agent/prompts/triage.yaml": PROMPT,
        "agent/evalsets/triage.yaml": evalset(BASE_CASES),
        "agent/agent.py": AGENT,
        ".gitignore": ".agent-evals/\ncalls.log\n",
    }
    repo = feature_branch(tmp_path / "mono", monkeypatch, files)
    repo.commit({"agent/prompts/triage.yaml": BREAKING})
    ci_refuses(
        repo,
        capsys,
        [
            "no agent-evals project here or above (looked for agent-evals.yaml, prompts/, evalsets/; "
            "run 'agent-evals init' or pass -C DIR)"
        ],
    )
    assert main(["-C", "agent", "ci", "--base", "main"]) == 1


def test_a_paths_folder_that_does_not_exist_is_refused_not_gated_as_unchanged(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in `paths:` left the project empty: `validate` passed (0 prompts) and `ci` found no
    prompt changed and passed a breaking edit (exit 0). Each is exit 2 at the config's line."""
    repo.commit(
        {
            "agent-evals.yaml": "schema_version: 1\npaths:\n  prompts: promts\n",
            "prompts/triage.yaml": BREAKING,
        }
    )
    expected = [
        "agent-evals.yaml:3: paths.prompts: 'promts' is not a folder of the project "
        "(create it, or name the folder that holds the prompts)"
    ]
    ci_refuses(repo, capsys, expected)
    assert main(["validate"]) == 2
    assert capsys.readouterr().out.splitlines()[:1] == expected


def test_a_changed_prompt_no_eval_set_targets_is_refused_not_called_unchanged(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A prompt added (or edited) with no eval set of its own gave no pair, and `ci` said "no prompt
    or eval set changed" and passed (exit 0): it is exit 2 at the prompt's id, naming what to add."""
    repo.commit({"prompts/escalate.yaml": PROMPT.replace("id: triage", "id: escalate")})
    ci_refuses(
        repo,
        capsys,
        [
            "prompts/escalate.yaml:2: prompt 'escalate' changed since "
            f"{repo.git.git.merge_base('HEAD', 'main')[:8]} (main) and no eval set targets it: nothing can "
            "gate the change (add an eval set with 'prompt: escalate', its cases sampled from the prompt's "
            "traffic with 'agent-evals sample': evals come before prompt changes)"
        ],
    )
    # With its eval set, the new pair is gated (on absolute thresholds: it has no baseline).
    escalate = evalset(BASE_CASES).replace("id: triage\nprompt: triage", "id: escalate\nprompt: escalate")
    repo.commit({"evalsets/escalate.yaml": escalate})
    assert ci("--json", "out.json") == 0
    (only,) = json.loads((repo.root / "out.json").read_text())["pairs"]
    assert (only["prompt_id"], only["evalset_id"], only["change"]) == ("escalate", "escalate", "new")


def test_an_eval_set_retargeted_to_a_prompt_that_does_not_exist_is_refused(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in an eval set's `prompt:` put it in no pair, and `ci` said "no prompt or eval set
    changed" and passed (exit 0): it is exit 2 at that line, as `validate` and `run` say it."""
    repo.commit({"evalsets/triage.yaml": evalset(BASE_CASES).replace("prompt: triage", "prompt: traige")})
    expected = [
        "evalsets/triage.yaml:3: eval set targets prompt 'traige', which does not exist "
        "(create prompts/traige.yaml or fix the id; known: triage)"
    ]
    ci_refuses(repo, capsys, expected)
    assert main(["run"]) == 2
    assert capsys.readouterr().err.splitlines() == expected


def test_loosening_the_project_s_gate_defaults_alone_is_called_out_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change to agent-evals.yaml's `gate:` alone changed no prompt or eval set, so `ci` said
    "nothing changed" and passed (exit 0) while it lowered every eval set's bar. Each pair whose
    bar it loosened is gated as unchanged with the loosened field as a finding: exit 1 until the
    change is accepted, and nothing runs."""
    files = {
        "agent-evals.yaml": "schema_version: 1\ngate: {min_pass_rate: 0.9}\n",
        "prompts/triage.yaml": PROMPT,
        "evalsets/triage.yaml": evalset(BASE_CASES),
        "agent.py": AGENT,
        ".gitignore": ".agent-evals/\ncalls.log\n*.json\n",
    }
    repo = feature_branch(tmp_path / "repo", monkeypatch, files)
    repo.commit({"agent-evals.yaml": "schema_version: 1\ngate: {min_pass_rate: 0.5}\n"})
    assert ci("--json", "moved.json") == 1
    (pair,) = json.loads((repo.root / "moved.json").read_text())["pairs"]
    assert (pair["evalset_id"], pair["change"], pair["verdict"]["status"]) == ("triage", "unchanged", "fail")
    assert [(f["kind"], f["rule"], f["old"], f["new"]) for f in pair["verdict"]["findings"]] == [
        ("policy_loosened", "min_pass_rate", "0.9", "0.5")
    ]
    assert ci("--accept-policy-change") == 0
    # Tightening the bar moves nothing a reviewer must see.
    repo.commit({"agent-evals.yaml": "schema_version: 1\ngate: {min_pass_rate: 0.95}\n"})
    assert main(["ci", "--base", "HEAD~1"]) == 0
    assert not (repo.root / "calls.log").exists()


def test_a_case_without_the_expected_value_its_grader_reads_is_the_eval_set_s_error(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """It ran every case and then said the case could not be evaluated (exit 3), as if the model or
    the network had failed: CI could not tell it from an outage. It is exit 2 at the case's line, for
    `ci` and `run` alike, before anything is sent, as `validate` says; `run --filter` past it runs."""
    cases = BASE_CASES.replace(
        '  - id: billing-3\n    vars: {body: "Where is my invoice"}\n    expected: {disposition: billing}\n',
        '  - id: billing-3\n    vars: {body: "Where is my invoice"}\n    expected: {queue: billing}\n',
    )
    assert cases != BASE_CASES
    repo.commit({"evalsets/triage.yaml": evalset(cases)})
    line = next(i for i, row in enumerate(evalset(cases).splitlines(), 1) if "id: billing-3" in row)
    expected = [
        f"evalsets/triage.yaml:{line}: case 'billing-3' has no 'expected.disposition', which grader "
        "'disposition' needs (add 'expected.disposition' to the case, or give the case a different grader)"
    ]
    ci_refuses(repo, capsys, expected)
    assert main(["run"]) == 2
    assert capsys.readouterr().err.splitlines() == expected
    assert not (repo.root / "calls.log").exists()
    assert main(["validate"]) == 2
    assert capsys.readouterr().out.splitlines()[:1] == expected
    assert main(["run", "--filter", "refund-*"]) == 0


def test_an_eval_set_with_no_cases_is_its_error_not_an_outage(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` wrote an empty record and exited 0; `ci` said the pair could not be evaluated (exit 3),
    as for an outage. Both are exit 2 at the eval set's `cases:` line."""
    text = evalset("[]\n").replace("cases:\n[]\n", "cases: []\n")
    repo.commit({"evalsets/triage.yaml": text})
    line = text.splitlines().index("cases: []") + 1
    expected = [
        f"evalsets/triage.yaml:{line}: eval set 'triage' has no cases: nothing to evaluate (add cases to it)"
    ]
    ci_refuses(repo, capsys, expected)
    assert main(["run"]) == 2
    assert capsys.readouterr().err.splitlines() == expected
    assert not (repo.root / ".agent-evals" / "runs").exists()
