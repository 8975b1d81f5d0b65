"""`init` (scaffold): what it writes, what it refuses, and that the result validates, runs and gates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from agent_evals import scaffold
from agent_evals.errors import ConfigError
from agent_evals.load import load_config
from agent_evals.models import ProjectConfig
from tests.support import GitRepo, write_tree

ROOT = Path(__file__).resolve().parents[1]

SCAFFOLD = [
    "agent-evals.yaml",
    "prompts/ticket-triage.yaml",
    "evalsets/ticket-triage.yaml",
    ".github/workflows/prompt-gate.yml",
    ".pre-commit-config.yaml",
    ".gitignore",
]

# The three refund few-shot pairs of the example prompt: the edit a gate must catch.
_REFUND_FIRST = "  - role: user\n    content: |\n      Subject: Charged twice for May on Payrail\n"
_REFUND_END = "  - role: user\n    content: |\n      Subject: What is the transaction surcharge"


def drop_refund_examples(prompt: str) -> str:
    start, end = prompt.index(_REFUND_FIRST), prompt.index(_REFUND_END)
    dropped = prompt[:start] + prompt[end:]
    assert '"disposition": "refund"' in prompt
    assert '"disposition": "refund"' not in dropped
    return dropped


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process, as a developer or CI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "agent_evals.cli", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def rel(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_init_writes_the_scaffold_and_returns_the_files(tmp_path: Path) -> None:
    written = scaffold.init(tmp_path)

    assert rel(tmp_path, written) == SCAFFOLD
    assert all(p.is_file() for p in written)
    assert (tmp_path / ".gitignore").read_text() == (
        "# agent-evals: run records and the response cache\n.agent-evals/\n"
    )
    workflow = (tmp_path / ".github/workflows/prompt-gate.yml").read_text()
    assert "__AGENT_EVALS_" not in workflow


def test_the_example_is_marked_synthetic_and_runs_offline(tmp_path: Path) -> None:
    scaffold.init(tmp_path)
    prompt = yaml.safe_load((tmp_path / "prompts/ticket-triage.yaml").read_text())
    evalset = yaml.safe_load((tmp_path / "evalsets/ticket-triage.yaml").read_text())

    assert prompt["model"]["provider"] == "local"
    assert evalset["provenance"]["synthetic"] is True
    assert (tmp_path / "prompts/ticket-triage.yaml").read_text().startswith("# SYNTHETIC EXAMPLE")
    assert (tmp_path / "evalsets/ticket-triage.yaml").read_text().startswith("# SYNTHETIC EXAMPLE")
    # The README's example: enough cases for `readiness` (50), six dispositions of 12 each.
    assert len(evalset["cases"]) == 72
    assert {c["expected"]["disposition"] for c in evalset["cases"]} == {
        "refund",
        "billing_question",
        "technical_issue",
        "account_access",
        "feature_request",
        "cancellation",
    }


def test_the_config_spells_out_the_defaults(tmp_path: Path) -> None:
    scaffold.init(tmp_path)
    config = load_config(tmp_path)
    assert config.source_path is not None  # it was read, not defaulted
    assert config.model_dump() == ProjectConfig().model_dump()


def test_initialized_repository_validates_runs_and_gates(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    scaffold.init(repo.root)
    repo.commit(message="agent-evals init")
    assert repo.git.git.status("--porcelain") == ""

    validated = cli(repo.root, "validate")
    assert (validated.returncode, validated.stdout) == (0, ""), validated.stderr

    ran = cli(repo.root, "run")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ticket-triage" in ran.stdout
    assert repo.git.git.status("--porcelain") == ""  # records and cache are ignored

    repo.branch("drop-refund-examples")
    unchanged = cli(repo.root, "ci", "--base", "main")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr

    prompt = repo.root / "prompts/ticket-triage.yaml"
    prompt.write_text(drop_refund_examples(prompt.read_text()))
    assert cli(repo.root, "validate").returncode == 0
    gated = cli(repo.root, "ci", "--base", "main")

    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "critical refund" in gated.stdout
    assert "refund-terse" in gated.stdout
    assert "agent-evals gate FAILED" in gated.stdout


def test_init_refuses_to_overwrite_and_lists_the_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"agent-evals.yaml": "schema_version: 1\n", "prompts/ticket-triage.yaml": "mine\n"})

    with pytest.raises(ConfigError) as info:
        scaffold.init(tmp_path)

    assert info.value.exit_code == 2
    assert info.value.render() == (
        f"{tmp_path}: init would overwrite agent-evals.yaml, prompts/ticket-triage.yaml "
        "(move them away, or pass --force to overwrite them)"
    )
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "agent-evals.yaml",
        "prompts/ticket-triage.yaml",
    ]
    assert (tmp_path / "prompts/ticket-triage.yaml").read_text() == "mine\n"


def test_force_overwrites_the_scaffold_but_never_the_precommit_config(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "prompts/ticket-triage.yaml": "mine\n",
            ".pre-commit-config.yaml": "repos: []\n",
            ".gitignore": "/.agent-evals\n",
        },
    )

    written = scaffold.init(tmp_path, force=True)

    assert rel(tmp_path, written) == SCAFFOLD[:4]
    assert "SYNTHETIC EXAMPLE" in (tmp_path / "prompts/ticket-triage.yaml").read_text()
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == "repos: []\n"
    assert (tmp_path / ".gitignore").read_text() == "/.agent-evals\n"


def test_an_existing_precommit_config_gets_a_snippet_to_add(tmp_path: Path) -> None:
    existing = "repos:\n  - repo: https://github.com/psf/black\n    rev: 24.1.0\n    hooks: [{id: black}]\n"
    write_tree(tmp_path, {".pre-commit-config.yaml": existing, ".gitignore": "*.pyc"})

    written = scaffold.init(tmp_path)

    assert ".pre-commit-config.yaml" not in rel(tmp_path, written)
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == existing
    assert (tmp_path / ".gitignore").read_text() == (
        "*.pyc\n# agent-evals: run records and the response cache\n.agent-evals/\n"
    )
    snippet = scaffold.precommit_snippet(tmp_path)
    assert snippet is not None
    merged = yaml.safe_load(existing + snippet)
    assert [r["repo"] for r in merged["repos"]] == ["https://github.com/psf/black", "local"]
    assert [h["id"] for h in merged["repos"][1]["hooks"]] == ["agent-evals-validate", "agent-evals-gate"]

    (tmp_path / ".pre-commit-config.yaml").write_text(existing + snippet)
    assert scaffold.precommit_snippet(tmp_path) is None


def test_no_snippet_without_a_precommit_config(tmp_path: Path) -> None:
    assert scaffold.precommit_snippet(tmp_path) is None


def test_the_local_hooks_are_the_published_hooks(tmp_path: Path) -> None:
    """The `repo: local` hooks init writes behave like the ones in .pre-commit-hooks.yaml."""
    scaffold.init(tmp_path)
    local = yaml.safe_load((tmp_path / ".pre-commit-config.yaml").read_text())["repos"][0]
    published = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())

    assert local["repo"] == "local"
    assert [h.pop("language") for h in local["hooks"]] == ["system", "system"]
    assert [h.pop("language") for h in published] == ["python", "python"]
    for hook in published:
        hook.pop("description")
        hook.pop("always_run", None)  # false is the default
    assert local["hooks"] == published


def test_init_needs_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        scaffold.init(tmp_path / "missing")
    assert (
        info.value.render()
        == f"{tmp_path / 'missing'}: no such folder (create it, or run init in the repository)"
    )


# --- which agent-evals action the workflow uses ---------------------------------------------

SHA = "0123456789abcdef0123456789abcdef01234567"


def distribution(tmp_path: Path, direct_url: dict[str, object] | None) -> metadata.Distribution:
    """An installed agent-evals as pip leaves it: METADATA, and direct_url.json (PEP 610) if given."""
    info = tmp_path / "agent_evals-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: agent-evals\nVersion: 0.1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return metadata.PathDistribution(info)


def from_git(url: str, commit: str = SHA) -> dict[str, object]:
    return {"url": url, "vcs_info": {"vcs": "git", "commit_id": commit, "requested_revision": "main"}}


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (from_git("https://github.com/acme/agent-evals.git"), f"acme/agent-evals@{SHA}"),
        (from_git("https://github.com/acme/agent-evals"), f"acme/agent-evals@{SHA}"),
        (from_git("https://user:s3cret@github.com/acme/evals-fork.git"), f"acme/evals-fork@{SHA}"),
        (from_git("ssh://git@github.com/acme/agent-evals.git"), f"acme/agent-evals@{SHA}"),
        (from_git("https://github.com/acme/agent-evals.git", "a" * 64), f"acme/agent-evals@{'a' * 64}"),
        # No commit GitHub can run the action from:
        (None, None),
        ({"url": "file:///work/agent-evals", "dir_info": {"editable": True}}, None),
        ({"url": "https://example.com/agent-evals.tar.gz", "archive_info": {}}, None),
        (from_git("file:///srv/agent-evals"), None),
        (from_git("https://gitlab.com/acme/agent-evals.git"), None),
        (from_git("https://github.com/acme/agent-evals/tree/main"), None),
        (from_git("https://github.com/acme/agent-evals.git", "0123abcd"), None),  # not a full SHA
        (
            {"url": "https://github.com/acme/agent-evals.git", "vcs_info": {"vcs": "hg", "commit_id": SHA}},
            None,
        ),
    ],
)
def test_action_ref(tmp_path: Path, direct_url: dict[str, object] | None, expected: str | None) -> None:
    assert scaffold.action_ref(distribution(tmp_path, direct_url)) == expected


def installed_from_github(tmp_path: Path) -> dict[str, str]:
    """The environment of an agent-evals that pip installed from acme/agent-evals at SHA.

    Its dist-info comes first on the path, so `importlib.metadata` finds it before the
    development install (the code imported is the same).
    """
    distribution(tmp_path, from_git("https://github.com/acme/agent-evals.git"))
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_init_pins_the_action_to_the_commit_it_was_installed_from(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "agent_evals.cli", "init", str(project)],
        cwd=project,  # not this checkout: its agent_evals.egg-info would be found first
        env=installed_from_github(tmp_path / "site"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert scaffold.ACTION_UNKNOWN not in result.stderr
    workflow = (project / ".github/workflows/prompt-gate.yml").read_text()
    gate = yaml.safe_load(workflow)["jobs"]["gate"]["steps"][1]
    assert gate["uses"] == f"acme/agent-evals@{SHA}"
    assert "pip install" not in workflow  # the action installs agent-evals from its own checkout


def test_init_says_so_when_it_cannot_tell_the_action(tmp_path: Path) -> None:
    # This checkout is an editable install: no commit GitHub has.
    assert scaffold.action_ref() is None
    result = cli(tmp_path, "init", str(tmp_path))

    assert result.returncode == 0, result.stderr
    gate = yaml.safe_load((tmp_path / ".github/workflows/prompt-gate.yml").read_text())["jobs"]["gate"]
    assert gate["steps"][1]["uses"] == scaffold.ACTION_UNKNOWN
    assert f"note: {scaffold.ACTION_UNKNOWN_NOTE}" in result.stderr.splitlines()
    assert scaffold.ACTION_UNKNOWN_NOTE.startswith(
        f".github/workflows/prompt-gate.yml uses {scaffold.ACTION_UNKNOWN}: replace it with the agent-evals "
        "repository and a full commit SHA"
    )


def test_init_belongs_at_the_repository_root(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    (repo.root / "service").mkdir()

    with pytest.raises(ConfigError) as info:
        scaffold.init(repo.root / "service")

    top = repo.root.resolve()
    assert info.value.render() == (
        f"{repo.root / 'service'}: not the root of its git repository ({top}): GitHub and pre-commit "
        f"read their files there (run init in {top}; a project in a subfolder needs the folder in the "
        "workflow's working-directory and in the hooks' `files:`)"
    )
    assert list((repo.root / "service").iterdir()) == []


def test_init_outside_a_git_repository_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agent_evals.cli import main

    assert main(["init", str(tmp_path)]) == 0
    assert capsys.readouterr().err == (
        f"note: {tmp_path} is not in a git repository; run 'git init' there: the gate (agent-evals ci, "
        "the pre-commit hooks, the workflow) compares each change with git history\n"
        f"note: {scaffold.ACTION_UNKNOWN_NOTE}\n"  # a development install: see test_init_says_so_when...
    )


def test_the_example_init_writes_is_production_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent_evals.cli import main

    GitRepo(tmp_path)
    assert main(["init", str(tmp_path)]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["readiness", "--strict"]) == 0
    assert "ticket-triage: ready" in capsys.readouterr().out
