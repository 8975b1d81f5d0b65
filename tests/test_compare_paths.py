"""One comparison path: `ci` in each mode, `diff` and `report` judge the same records the same way.

The project has a deterministic agent (a `python:` provider that routes tickets
by the rules written in its prompt), an LLM-judge grader played by a
deterministic judge (another `python:` function), an eval set with its own
`gate:` and `calibration:` blocks, and human verdicts stored beside the eval
set. Everything runs in a real temporary git repository; nothing leaves the
machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_evals.cli import main
from agent_evals.review import output_sha256
from tests.support import GitRepo, feature_branch

PROMPT = """\
schema_version: 1
id: triage
version: 1
description: Route a ticket (synthetic test prompt).
owner: {name: Support AI team, oncall: pagerduty:support-ai}
model: {provider: "python:agent:answer", name: rules, temperature: 0}
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

# Drops the whole refund rule: the ten refund cases regress.
BREAKING = PROMPT.replace("      refund <- money back | want a refund\n", "")
# Drops one phrase: the four "want a refund" cases regress, too few to be significant at alpha 0.05.
SLIGHT = PROMPT.replace(" | want a refund", "")

AGENT = """\
def answer(request):
    if "something odd" in request["vars"]["body"]:
        raise ValueError("no rule for this")
    rules = []
    for line in request["messages"][0]["content"].splitlines():
        if "<-" in line:
            label, phrases = line.split("<-")
            rules += [(p.strip(), label.strip()) for p in phrases.split("|")]
    for phrase, label in rules:
        if phrase in request["vars"]["body"]:
            return {"disposition": label}
    return {"disposition": "other"}
"""

# The agent cannot handle the odd ticket: that case could not be evaluated (1 of 31, under 5%).
# The judge fails "other" and is unsure about account access, so a person reviews it.
JUDGE = """\
import re


def grade(request):
    text = request["messages"][-1]["content"]
    output = re.search(r"<output>\\n(.*?)\\n</output>", text, re.S).group(1)
    return {
        "reasoning": "routed as the rubric asks" if "other" not in output else "not routed",
        "score": 2 if "other" in output else 5,
        "confidence": 0.3 if "account_access" in output else 0.9,
    }
"""


def case(case_id: str, body: str, label: str) -> str:
    return (
        f"  - id: {case_id}\n    vars: {{body: {json.dumps(body)}}}\n"
        f"    expected: {{disposition: {label}}}\n    tags: [{label}]\n"
    )


CASES = (
    "".join(case(f"refund-{i}", "I want my money back", "refund") for i in range(6))
    + "".join(case(f"refund-phrase-{i}", "I want a refund now", "refund") for i in range(4))
    + "".join(case(f"access-{i}", "I cannot log in", "account_access") for i in range(10))
    + "".join(case(f"billing-{i}", "Where is my invoice", "billing") for i in range(10))
    + case("odd-1", "something odd happened", "refund")
)

GATE = "gate: {max_regressions: 5, critical: [billing]}\n"
# Looser than the defaults (80% agreement over at least 20 cases): four reviewed cases at 75% are "ok".
CALIBRATION = "calibration: {min_agreement: 0.5, min_cases: 3}\n"


JUDGED = (
    "  - type: rubric\n    name: tone\n"
    "    judge: {provider: 'python:judge:grade', model: rules-judge, rubric: Routed right., min_confidence: 0.5}\n"
)


def evalset(gate: str = GATE, calibration: str = CALIBRATION, judge: str = JUDGED) -> str:
    return (
        "schema_version: 1\nid: triage\nprompt: triage\nmetric: tickets routed right first time\n"
        "provenance: {source: synthetic test cases, synthetic: true}\n"
        f"{gate}{calibration}"
        "graders:\n  - {type: exact_match, name: disposition, field: disposition}\n"
        f"{judge}cases:\n{CASES}"
    )


def reviews(verdicts: dict[str, str]) -> str:
    """A reviews file: a person's verdict on the `tone` grade of each account-access case named."""
    output = json.dumps({"disposition": "account_access"})
    return "".join(
        json.dumps(
            {
                "schema_version": 1,
                "case_id": case_id,
                "grader": "tone",
                "output_sha256": output_sha256(output),
                "verdict": verdict,
                "reviewer": "Ada",
                "at": "2026-01-01T00:00:00Z",
            }
        )
        + "\n"
        for case_id, verdict in verdicts.items()
    )


# The judge passes every account-access output; the person disagrees once: 3 of 4, 75%.
REVIEWS = reviews({"access-0": "pass", "access-1": "pass", "access-2": "pass", "access-3": "fail"})


def make_repo(root: Path, monkeypatch: pytest.MonkeyPatch, evalset_text: str) -> GitRepo:
    """main has the project and the stored verdicts; HEAD is on a feature branch."""
    files = {
        "prompts/triage.yaml": PROMPT,
        "evalsets/triage.yaml": evalset_text,
        "evalsets/triage.reviews.jsonl": REVIEWS,
        "agent.py": AGENT,
        "judge.py": JUDGE,
        ".gitignore": ".agent-evals/\nout/\n*.json\n",
    }
    return feature_branch(root, monkeypatch, files, modules=("agent", "judge"))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """The project with its LLM judge and the person's verdicts on the judge's grades."""
    return make_repo(tmp_path / "repo", monkeypatch, evalset())


@pytest.fixture
def plain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """The project without a judge: every run is the same (temperature 0), so each regression counts."""
    return make_repo(tmp_path / "repo", monkeypatch, evalset(judge=""))


def pair(path: str) -> dict[str, Any]:
    (only,) = json.loads(Path(path).read_text())["pairs"]
    assert isinstance(only, dict)
    return only


def test_every_path_gives_the_same_verdict_and_calibration(repo: GitRepo) -> None:
    repo.commit({"prompts/triage.yaml": BREAKING})
    base, cand = "out/base/triage.jsonl", "out/cand/triage.jsonl"

    assert main(["ci", "--base", "main", "--output", "out", "--json", "a.json"]) == 1
    assert main(["diff", base, cand, "--json", "b.json"]) == 1
    assert main(["ci", "--base", "main", "--records", "out", "--json", "c.json"]) == 1
    assert main(["ci", "--baseline-dir", "out/base", "--json", "d.json"]) == 1

    a, b, c, d = (pair(f"{name}.json") for name in "abcd")
    assert a["verdict"]["status"] == "fail"
    assert "significant_regression" in {r["rule"] for r in a["verdict"]["rules"] if not r["passed"]}
    assert a["verdict"]["policy"]["max_regressions"] == 5
    assert a["verdict"]["policy"]["critical"] == ["billing"]
    # The eval set's floors, and the person's verdicts on the unsure judge's grades.
    tone = a["calibration"]["tone"]
    assert (tone["status"], tone["n"], tone["agreement"]) == ("ok", 4, 0.75)
    assert tone["policy"] == {"min_agreement": 0.5, "min_kappa": None, "min_cases": 3}
    for other in (b, c, d):
        assert other["verdict"] == a["verdict"]
        assert other["calibration"] == a["calibration"]
    # The same cases regressed on every path (`--baseline-dir` ran the candidate again: the same outputs).
    regressed = [f"refund-{i}" for i in range(6)] + [f"refund-phrase-{i}" for i in range(4)]
    for each in (a, b, c, d):
        assert [x["case_id"] for x in each["cases"] if x["outcome"] == "regressed"] == regressed


def test_ci_base_holds_the_judge_to_the_eval_sets_calibration_floors(repo: GitRepo) -> None:
    repo.commit({"prompts/triage.yaml": SLIGHT})
    assert main(["ci", "--base", "main", "--json", "g.json"]) == 0
    tone = pair("g.json")["calibration"]["tone"]
    # Under the defaults (80%, 20 cases) these four verdicts at 75% would be below the floor.
    assert tone["policy"] == {"min_agreement": 0.5, "min_kappa": None, "min_cases": 3}
    assert (tone["status"], tone["below_floor"], tone["too_few"], tone["warnings"]) == (
        "ok",
        False,
        False,
        [],
    )


def test_ci_base_without_a_calibration_block_uses_the_project_floors(repo: GitRepo) -> None:
    repo.commit(
        {
            "agent-evals.yaml": "schema_version: 1\ncalibration: {min_cases: 4}\n",
            "evalsets/triage.yaml": evalset(calibration=""),
            "prompts/triage.yaml": SLIGHT,
        }
    )
    assert main(["ci", "--base", "main", "--json", "g.json"]) == 0
    tone = pair("g.json")["calibration"]["tone"]
    assert tone["policy"] == {"min_agreement": 0.8, "min_kappa": None, "min_cases": 4}
    assert tone["status"] == "below_floor"


def test_verdicts_stored_after_the_records_count_in_ci_records_as_in_diff(repo: GitRepo) -> None:
    repo.commit({"prompts/triage.yaml": SLIGHT})
    # The runs happen while the verdicts are not there (a person reviews afterwards).
    verdicts = repo.root / "evalsets/triage.reviews.jsonl"
    verdicts.unlink()
    assert main(["ci", "--base", "main", "--output", "out", "--json", "before.json"]) == 0
    verdicts.write_text(REVIEWS)

    assert main(["ci", "--base", "main", "--records", "out", "--json", "c.json"]) == 0
    assert main(["diff", "out/base/triage.jsonl", "out/cand/triage.jsonl", "--json", "b.json"]) == 0

    before, c, b = pair("before.json"), pair("c.json"), pair("b.json")
    assert c["verdict"] == b["verdict"]
    assert c["calibration"] == b["calibration"]
    # The person's verdicts replaced the unsure judge's grades, on both sides...
    reviewed = {f"access-{i}" for i in range(4)}
    assert reviewed <= {r["case_id"] for r in before["needs_review"]}
    assert not reviewed & {r["case_id"] for r in c["needs_review"]}
    # ...so access-3, which the person failed, fails on both sides: one pass fewer than the judge gave.
    access_3 = next(x for x in c["cases"] if x["case_id"] == "access-3")
    assert (access_3["outcome"], access_3["base"]["status"], access_3["cand"]["status"]) == (
        "still_failing",
        "fail",
        "fail",
    )
    overall, overall_before = (
        next(t for t in p["verdict"]["tests"] if t["group"] == "overall") for p in (c, before)
    )
    assert overall["cand_rate"] < overall_before["cand_rate"]


# Each option moves a change the eval set's bar lets through (four regressions, one case that
# could not be evaluated) to a failed gate (1) or one that cannot judge (3).
GATE_OPTIONS = pytest.mark.parametrize(
    ("option", "value", "code", "policy_key"),
    [
        ("--alpha", "0.5", 1, "alpha"),
        ("--max-error-rate", "0", 3, "max_error_rate"),
        ("--max-regressions", "2", 1, "max_regressions"),
        ("--min-pass-rate", "0.99", 1, "min_pass_rate"),
    ],
)


@GATE_OPTIONS
def test_diff_applies_the_gate_options(
    plain: GitRepo, option: str, value: str, code: int, policy_key: str
) -> None:
    plain.commit({"prompts/triage.yaml": SLIGHT})
    assert main(["ci", "--base", "main", "--output", "out"]) == 0  # 4 regressions: within the bar
    records = ["out/base/triage.jsonl", "out/cand/triage.jsonl"]
    assert main(["diff", *records, "--json", "default.json"]) == 0
    assert main(["diff", *records, option, value, "--json", "set.json"]) == code
    assert pair("set.json")["verdict"]["policy"][policy_key] == float(value)
    assert pair("default.json")["verdict"]["policy"][policy_key] != float(value)


@GATE_OPTIONS
def test_ci_applies_the_gate_options(
    plain: GitRepo, option: str, value: str, code: int, policy_key: str
) -> None:
    plain.commit({"prompts/triage.yaml": SLIGHT})
    assert main(["ci", "--base", "main", "--json", "default.json"]) == 0
    assert main(["ci", "--base", "main", option, value, "--json", "set.json"]) == code
    assert pair("set.json")["verdict"]["policy"][policy_key] == float(value)
    assert pair("default.json")["verdict"]["policy"][policy_key] != float(value)


def test_diff_in_a_folder_inside_the_project_gates_with_the_project_s_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started in a subfolder, `diff` found neither the project's config nor its eval set and gated
    with the default policy: four regressions passed where the eval set allows none."""
    repo = make_repo(tmp_path / "repo", monkeypatch, evalset(gate="gate: {max_regressions: 0}\n", judge=""))
    repo.commit({"prompts/triage.yaml": SLIGHT})
    assert main(["ci", "--base", "main", "--output", "out"]) == 1  # four regressions, none allowed
    records = [str(repo.root / "out/base/triage.jsonl"), str(repo.root / "out/cand/triage.jsonl")]
    monkeypatch.chdir(repo.root / "prompts")
    assert main(["diff", *records, "--json", "inside.json"]) == 1
    assert pair("inside.json")["verdict"]["policy"]["max_regressions"] == 0
    # Outside any project, records are compared with the default policy.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    assert main(["diff", *records, "--json", "outside.json"]) == 0
    assert pair("outside.json")["verdict"]["policy"]["max_regressions"] is None


def test_report_in_a_folder_inside_the_project_reads_the_project_s_eval_set(
    plain: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain.commit({"prompts/triage.yaml": SLIGHT})
    assert main(["ci", "--base", "main", "--output", "out"]) == 0
    base, cand = (str(plain.root / f"out/{side}/triage.jsonl") for side in ("base", "cand"))
    monkeypatch.chdir(plain.root / "prompts")
    assert main(["report", cand, "--baseline", base, "--html", "page.html"]) == 0
    page = (plain.root / "prompts/page.html").read_text()
    assert str(plain.root / "evalsets/triage.yaml") in page
