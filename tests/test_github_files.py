"""The GitHub files: action.yml and the workflows against GitHub's schemas, the same commands
everywhere, and the action's shell steps run for real (GitHub itself is not needed)."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_evals import scaffold
from tests.support import GitRepo
from tests.test_scaffold import drop_refund_examples

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOWS = ROOT / ".github" / "workflows"
TEMPLATE = ROOT / "agent_evals" / "templates" / "init" / "github" / "workflows" / "prompt-gate.yml"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")

# What the README's "Other CI systems" section shows, line for line; GitHub adds `--annotations`.
CI_COMMAND = (
    'agent-evals ci --base "$AGENT_EVALS_BASE" --report-md "$AGENT_EVALS_REPORTS/report.md" '
    '--junit "$AGENT_EVALS_REPORTS/junit.xml" --json "$AGENT_EVALS_REPORTS/report.json"'
)
COMMENT_COMMAND = 'agent-evals comment --report "$AGENT_EVALS_REPORTS/report.md"'


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def on(workflow: dict[str, Any]) -> Any:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of an action (runs.steps) or a workflow (all jobs), each with its job's env."""
    if "runs" in doc:
        return list(doc["runs"]["steps"])
    return [
        {**step, "env": {**job.get("env", {}), **step.get("env", {})}}
        for job in doc["jobs"].values()
        for step in job.get("steps", [])
    ]


def commands(doc: dict[str, Any]) -> list[str]:
    """The `agent-evals ...` command lines in the run steps, up to `||`, `&&` or `;`."""
    found = []
    for step in steps(doc):
        for line in step.get("run", "").replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("agent-evals "):
                found.append(re.split(r"\s(?:\|\||&&|;)", line)[0].strip())
    return found


def normalized(command: str) -> str:
    """A command as the README shows it: no GitHub-only flag, no optional extras."""
    return re.sub(r'\s+(?:--annotations|"\$\{extra\[@\]\}")(?=\s|$)', "", command)


def schema_check(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def generated_workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init")
    scaffold.init(root)
    return root / ".github" / "workflows" / "prompt-gate.yml"


# --- schemas ------------------------------------------------------------------------------


def test_action_matches_githubs_schema() -> None:
    result = schema_check("vendor.github-actions", ACTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_githubs_schema(generated_workflow: Path) -> None:
    paths = [WORKFLOWS / "ci.yml", WORKFLOWS / "prompt-gate.yml", generated_workflow]
    result = schema_check("vendor.github-workflows", *paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(TEMPLATE.read_text().replace("runs-on:", "run-on:"))
    assert schema_check("vendor.github-workflows", broken).returncode == 1


# --- one set of commands ---------------------------------------------------------------------


def test_action_and_init_workflow_run_the_same_commands(generated_workflow: Path) -> None:
    action = commands(load(ACTION))
    workflow = commands(load(generated_workflow))

    assert [normalized(c) for c in action] == [CI_COMMAND, COMMENT_COMMAND]
    assert [normalized(c) for c in workflow] == [CI_COMMAND, COMMENT_COMMAND]
    assert action[0] == f'{CI_COMMAND} --annotations "${{extra[@]}}"'
    assert workflow[0] == f"{CI_COMMAND} --annotations"
    assert action[1] == workflow[1] == COMMENT_COMMAND


def test_every_command_and_option_used_exists() -> None:
    import typer

    from agent_evals.cli import app

    cli = typer.main.get_command(app)
    subcommands: dict[str, Any] = cli.commands  # type: ignore[attr-defined]
    action = load(ACTION)
    extras = re.findall(r"extra\+=\((--[a-z-]+)", ACTION.read_text())
    assert extras == ["--max-cost", "--accept-policy-change"]
    hooks = [h["entry"] for h in load_list(ROOT / ".pre-commit-hooks.yaml")]
    used = [*commands(action), *commands(load(TEMPLATE)), *hooks, *(f"agent-evals ci {e}" for e in extras)]
    for command in used:
        words = shlex.split(command)
        assert words[0] == "agent-evals"
        assert words[1] in subcommands, command
        options = {opt for param in subcommands[words[1]].params for opt in param.opts}
        assert {w for w in words[2:] if w.startswith("--")} <= options, command


def load_list(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


def test_every_variable_a_command_uses_is_set(generated_workflow: Path) -> None:
    for doc in (load(ACTION), load(generated_workflow)):
        for step in steps(doc):
            used = set(re.findall(r"\$\{?(AGENT_EVALS_[A-Z]+)", step.get("run", "")))
            assert used <= set(step.get("env", {})), step.get("name")


# --- what the files promise ------------------------------------------------------------------


def test_action_inputs_and_outputs() -> None:
    action = load(ACTION)
    defaults = {name: spec.get("default") for name, spec in action["inputs"].items()}
    assert defaults == {
        "base-ref": "origin/${{ github.base_ref }}",
        "working-directory": ".",
        "python-version": "3.12",
        "install": "",
        "max-cost": "",
        "comment": "true",
        "fail-on-regression": "true",
        "accept-policy-change": "false",
    }
    assert set(action["outputs"]) == {"verdict", "exit-code", "report-md", "junit", "json"}
    assert action["runs"]["using"] == "composite"
    setup, install = action["runs"]["steps"][:2]
    assert setup["uses"] == "actions/setup-python@v5"
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert '"$ACTION_PATH" $EXTRA_INSTALL' in install["run"]


@pytest.mark.parametrize("name", ["prompt-gate.yml", "template"])
def test_prompt_gate_workflows_fetch_history_and_may_comment(name: str, generated_workflow: Path) -> None:
    workflow = load(generated_workflow if name == "template" else WORKFLOWS / name)
    assert "pull_request" in on(workflow)
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    checkout = next(s for s in steps(workflow) if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0


def test_this_repository_gates_itself_with_its_own_action() -> None:
    workflow = load(WORKFLOWS / "prompt-gate.yml")
    assert [s["uses"] for s in steps(workflow) if s.get("id") == "gate"] == ["./"]
    assert "secrets." not in (WORKFLOWS / "prompt-gate.yml").read_text()


def test_ci_runs_the_tests_on_every_supported_python() -> None:
    workflow = load(WORKFLOWS / "ci.yml")
    (job,) = workflow["jobs"].values()
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    assert [s["run"] for s in job["steps"] if "run" in s] == ["bash .ci/run"]


# --- the action's shell steps, run here -----------------------------------------------------


def action_step(step_id_or_name: str) -> dict[str, Any]:
    return next(s for s in load(ACTION)["runs"]["steps"] if step_id_or_name in (s.get("id"), s.get("name")))


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A composite `run:` step as the runner runs it: `bash --noprofile --norc -eo pipefail`."""
    assert "${{" not in step["run"], "expressions in scripts are injection risks: pass them in env"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_gate_step_records_a_regression_and_the_verdict_step_fails_on_it(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    scaffold.init(repo.root)
    repo.commit()
    repo.branch()
    prompt = repo.root / "prompts" / "ticket-triage.yaml"
    prompt.write_text(drop_refund_examples(prompt.read_text()))
    github_output = tmp_path / "github_output"
    reports = tmp_path / "runner-temp" / "agent-evals"
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # agent-evals
        "AGENT_EVALS_BASE": "main",
        "AGENT_EVALS_REPORTS": str(reports),
        "MAX_COST": "",
        "ACCEPT_POLICY_CHANGE": "false",
        "GITHUB_OUTPUT": str(github_output),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }

    gate = run_step(action_step("gate"), repo.root, env)

    assert gate.returncode == 0, gate.stdout + gate.stderr  # the step records; the verdict step fails
    assert outputs(github_output) == {
        "exit-code": "1",
        "verdict": "fail",
        "report-md": f"{reports}/report.md",
        "junit": f"{reports}/junit.xml",
        "json": f"{reports}/report.json",
    }
    assert all((reports / name).is_file() for name in ("report.md", "junit.xml", "report.json"))
    assert re.search(r"^::error file=evalsets/ticket-triage\.yaml,line=\d+", gate.stdout, re.MULTILINE)
    assert (tmp_path / "summary.md").read_text().strip()

    verdict = run_step(action_step("Verdict"), repo.root, {"CODE": "1", "FAIL_ON_REGRESSION": "true"})
    assert verdict.returncode == 1
    assert "::error title=agent-evals::the prompt gate failed" in verdict.stdout


def fake_agent_evals(tmp_path: Path, code: int) -> Path:
    """An `agent-evals` that logs its arguments and exits with `code`, writing no report."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "agent-evals"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/args"\nexit {code}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


@pytest.mark.parametrize(("code", "verdict"), [(0, "pass"), (2, "error"), (3, "error")])
def test_gate_step_passes_the_options_and_maps_the_exit_code(tmp_path: Path, code: int, verdict: str) -> None:
    bin_dir = fake_agent_evals(tmp_path, code)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "AGENT_EVALS_BASE": "origin/",  # a push: no pull request base
        "AGENT_EVALS_REPORTS": str(tmp_path / "reports"),
        "MAX_COST": "2.5",
        "ACCEPT_POLICY_CHANGE": "true",
        "GITHUB_OUTPUT": str(tmp_path / "github_output"),
    }

    gate = run_step(action_step("gate"), tmp_path, env)

    assert gate.returncode == 0, gate.stderr
    assert "::notice title=agent-evals::no pull request base ref; gating against --base auto" in gate.stdout
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:3] == ["ci", "--base", "auto"]
    assert args[-4:] == ["--annotations", "--max-cost", "2.5", "--accept-policy-change"]
    assert outputs(tmp_path / "github_output") == {
        "exit-code": str(code),
        "verdict": verdict,
        "report-md": "",
        "junit": "",
        "json": "",
    }


@pytest.mark.parametrize(
    ("code", "fail_on_regression", "exit_code"),
    [
        ("0", "true", 0),
        ("1", "true", 1),
        ("1", "false", 0),
        ("2", "false", 2),
        ("3", "false", 3),
        ("130", "true", 3),
    ],
)
def test_verdict_step_fails_per_exit_code(
    tmp_path: Path, code: str, fail_on_regression: str, exit_code: int
) -> None:
    result = run_step(
        action_step("Verdict"), tmp_path, {"CODE": code, "FAIL_ON_REGRESSION": fail_on_regression}
    )
    assert result.returncode == exit_code, result.stdout


def test_the_readme_documents_the_commands_the_action_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert CI_COMMAND in readme
    assert COMMENT_COMMAND in readme
    for command in commands(load(ROOT / "action.yml")):
        core = normalized(command)
        assert core in (CI_COMMAND, COMMENT_COMMAND), core
