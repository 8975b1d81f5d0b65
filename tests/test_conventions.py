"""The command-line conventions people expect of a Unix tool, each pinned by a test.

`-h`/`-V`; shell completion; `--quiet` (only errors and the verdict line) and `--verbose`
(what runs and why, cache hits, retries); `NO_COLOR` and `FORCE_COLOR`, on a real
pseudo-terminal and through a pipe; `--format json` for `validate`, `readiness` and
`cache stats` (stdout is then one JSON document and nothing else).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import typer

from agent_evals import __version__
from agent_evals.cli import app, main
from agent_evals.errors import ConfigError
from tests.http_server import Response, ScriptedServer, openai_chat
from tests.pty_run import CLI, run_pty
from tests.support import (
    AGENT,
    EVALSET,
    PROMPT,
    GitRepo,
    basic_project,
    echo_evalset,
    echo_prompt,
    feature_branch,
    write_tree,
)

SGR = re.compile(r"\x1b\[[0-9;]*m")
"""A colour or style escape (Select Graphic Rendition)."""
ANY_ESCAPE = re.compile(r"\x1b")
BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    return tmp_path


def run(args: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def piped(args: Sequence[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process with stdout and stderr going to pipes, as in CI."""
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env={**environ, **env}, capture_output=True, text=True, timeout=120
    )


# --- -h, -V --------------------------------------------------------------------------------------


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    # typer builds its commands on its own copy of click: a group is what has subcommands.
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_dash_h_is_help_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(_commands(typer.main.get_command(app)))
    assert {("validate",), ("ci",), ("cache", "stats"), ("schema",)} <= set(paths)
    for path in paths:
        long = run([*path, "--help"], capsys)
        short = run([*path, "-h"], capsys)
        assert short == long, path
        assert short[0] == 0, path
        assert short[1].startswith("Usage: agent-evals"), path


METAVAR = re.compile(r"^\s+(?:-\w, )?--[\w-]+ <([^>]*)>", re.M)
"""An option's line in `--help`, capturing what it says the option takes."""


def test_help_says_what_an_option_takes_never_a_python_type(capsys: pytest.CaptureFixture[str]) -> None:
    # typer 0.29 names a repeatable option's value by its annotation (`--filter <list[str]>`).
    taken: dict[str, set[str]] = {}
    for path in _commands(typer.main.get_command(app)):
        code, out, _ = run([*path, "--help"], capsys)
        assert code == 0, path
        for metavar in METAVAR.findall(out):
            taken.setdefault(metavar, set()).add(" ".join(path))
    assert {"glob", "id", "path", "int range"} <= set(taken)
    pythonic = {m: where for m, where in taken.items() if re.search(r"[\[\]]|list|Path", m)}
    assert not pythonic, pythonic


def test_dash_v_upper_is_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-V"], capsys) == run(["--version"], capsys) == (0, f"agent-evals {__version__}\n", "")


# --- shell completion ------------------------------------------------------------------------------


def bash(script: str, cwd: Path, **env: str) -> str:
    """Run `script` in bash (agent-evals on PATH), so the completion's shell detection finds bash."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    environ = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    # `; :` keeps bash alive as agent-evals' parent (a lone command would be exec'd in its place).
    done = subprocess.run(
        ["bash", "-c", f"{script}; :"], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_show_completion_prints_the_bash_completion_function(tmp_path: Path) -> None:
    script = bash("agent-evals --show-completion bash", tmp_path, SHELL="/bin/bash")
    assert "_agent_evals_completion() {" in script
    assert "complete -o default -F _agent_evals_completion agent-evals" in script


def test_bash_completes_commands_and_choices_through_the_script(tmp_path: Path) -> None:
    """The script `--show-completion` prints, sourced into bash, completes as a person's Tab would."""

    def complete(*words: str) -> list[str]:
        array = " ".join(f"'{w}'" for w in words)
        out = bash(
            "source <(agent-evals --show-completion)\n"
            f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}\n"
            "_agent_evals_completion agent-evals\n"
            'printf "%s\\n" "${COMPREPLY[@]}"',
            tmp_path,
        )
        return out.split()

    assert complete("agent-evals", "vali") == ["validate"]
    assert complete("agent-evals", "schema", "") == ["prompt", "evalset", "config"]
    assert complete("agent-evals", "validate", "--format", "") == ["text", "json"]


def test_install_completion_writes_the_script_and_sources_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    bash("agent-evals --install-completion", tmp_path, HOME=str(home), SHELL="/bin/bash")
    script = home / ".bash_completions" / "agent-evals.sh"
    assert "_agent_evals_completion() {" in script.read_text()
    assert f"source '{script}'" in (home / ".bashrc").read_text()


# --- --quiet and --verbose -----------------------------------------------------------------------------


def test_quiet_and_verbose_together_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(["-q", "-v", "validate"], capsys)
    assert code == 2
    assert "--quiet and --verbose cannot be used together" in err


def test_quiet_validate_prints_only_problems(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate"], capsys) == (0, "", "validated 1 prompt, 1 eval set (3 cases)\n")
    assert run(["-q", "validate"], capsys) == (0, "", "")
    prompt = project / "prompts/triage.yaml"
    prompt.write_text(prompt.read_text().replace("owner:", "ownr:"))
    code, out, err = run(["-q", "validate"], capsys)
    assert code == 2
    assert out.startswith("prompts/triage.yaml:")
    assert "ownr" in out
    assert err == f"{len(out.splitlines())} problem(s) found\n"


def test_quiet_run_prints_nothing_but_its_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["-q", "run", "--output", "r.jsonl"], capsys)
    assert (code, out, err) == (0, "", "")
    assert (project / "r.jsonl").is_file()
    write_tree(
        project, {"agent.py": AGENT.replace('return {"disposition": "other"}', "raise ValueError('boom')")}
    )
    sys.modules.pop("agent", None)
    code, out, err = run(["-q", "run", "--output", "r2.jsonl"], capsys)
    assert code == 3
    assert out == ""
    assert "boom" in err
    assert err.endswith("1 case(s) could not be evaluated (see the errors above)\n")


# Answers refunds right until the system message says "this ticket": a prompt edit that regresses c1.
PROMPT_READING_AGENT = """\
async def answer(request):
    system = request["messages"][0]["content"]
    text = request["messages"][-1]["content"].lower()
    if "money back" in text:
        return {"disposition": "billing" if "this ticket" in system else "refund"}
    if "log in" in text:
        return {"disposition": "account_access"}
    return {"disposition": "other"}
"""


def _regressing_branch(root: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """main passes c1 and c2 under a no-regression gate; the branch's prompt edit makes c1 fail."""
    files = {
        "prompts/triage.yaml": PROMPT,
        "evalsets/triage.yaml": EVALSET + "gate: {max_regressions: 0}\n",
        "agent.py": PROMPT_READING_AGENT,
        ".gitignore": ".agent-evals/\n",
    }
    repo = feature_branch(root, monkeypatch, files)
    repo.commit({"prompts/triage.yaml": PROMPT.replace("Classify the ticket", "Classify this ticket")})
    return repo


def test_quiet_ci_prints_only_the_verdict_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _regressing_branch(tmp_path, monkeypatch)
    code, out, err = run(["-q", "ci", "--base", "main", "--report-md", "r.md"], capsys)
    assert code == 1
    assert out == "agent-evals gate FAILED: 1 failed of 1 prompt/eval set pair(s)\n"
    assert err == ""
    assert "FAILED" in (tmp_path / "r.md").read_text()  # the reports are written as ever
    sys.modules.pop("agent", None)
    code, loud, _ = run(["ci", "--base", "main"], capsys)
    assert code == 1
    assert loud.endswith(out)
    assert len(loud.splitlines()) > 5


def test_quiet_ci_in_a_terminal_shows_the_verdict_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _regressing_branch(tmp_path, monkeypatch)
    done = run_pty([*CLI, "-q", "ci", "--base", "main"], tmp_path)
    assert done.code == 1, done.text
    assert done.text.strip() == "agent-evals gate FAILED: 1 failed of 1 prompt/eval set pair(s)"
    assert "\x1b[?25l" not in done.raw  # no progress bar was drawn (it hides the cursor)


def test_verbose_ci_says_what_it_gates_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _regressing_branch(tmp_path, monkeypatch)
    code, _, err = run(["-v", "ci", "--base", "main"], capsys)
    assert code == 1
    assert "running triage (prompt triage) on python:agent:answer / test-agent: 3 case(s)" in err
    assert "  triage/c1: fail (" in err
    assert "--base main: gating against main (merge-base " in err
    assert "triage/triage: gated as modified" in err


def http_project(root: Path, url: str) -> None:
    write_tree(
        root,
        {
            "prompts/echo.yaml": echo_prompt("gpt"),
            "evalsets/echo.yaml": echo_evalset(1),
            "agent-evals.yaml": "schema_version: 1\n"
            "defaults: {max_attempts: 3, initial_backoff_s: 0, max_backoff_s: 0}\n"
            f"providers:\n  gpt: {{type: openai, base_url: '{url}/v1', api_key_env: ''}}\n",
        },
    )


def test_verbose_run_shows_each_case_its_retries_and_cache_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with ScriptedServer(default=openai_chat()) as server:
        http_project(tmp_path, server.url)
        server.enqueue(Response(500, {"error": {"message": "overloaded", "type": "server_error"}}))
        code, _, err = run(["-v", "run", "--output", "r1.jsonl"], capsys)
        assert code == 0, err
        assert server.request_count == 2
        lines = err.splitlines()
        assert lines[0] == "running echo (prompt echo) on gpt / test-model: 1 case(s)"
        assert re.fullmatch(r"  echo/q00000: pass \(retried: 2 attempts, [\d,]+ ms\)", lines[1]), lines
        code, _, err = run(["-v", "run", "--output", "r2.jsonl"], capsys)
        assert server.request_count == 2
    assert code == 0
    assert "  echo/q00000: pass (from the cache)\n" in err
    _, _, quiet = run(["run", "--output", "r3.jsonl"], capsys)
    assert "echo/q00000" not in quiet  # without --verbose, no line per case


@pytest.mark.internal_error
def test_verbose_prints_the_traceback_of_an_internal_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def planted(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("planted bug")

    monkeypatch.setattr("agent_evals.load.load_project", planted)
    code, _, err = run(["-v", "run"], capsys)
    assert code == 3
    assert err.startswith("Traceback (most recent call last):\n")
    assert "KeyError: 'planted bug'\ninternal error: KeyError: 'planted bug' (this is a bug;" in err
    assert "Traceback" not in run(["run"], capsys)[2]


# --- NO_COLOR and FORCE_COLOR ------------------------------------------------------------------------


def test_a_terminal_gets_colour_and_no_color_takes_it_away(tmp_path: Path) -> None:
    basic_project(tmp_path)
    coloured = run_pty([*CLI, "readiness"], tmp_path)
    assert coloured.code == 0, coloured.text
    assert SGR.search(coloured.raw)
    # run_pty clears NO_COLOR from the environment it is given: set it on the command itself.
    plain = run_pty(["env", "NO_COLOR=1", *CLI, "readiness"], tmp_path)
    assert plain.code == 0, plain.text
    assert not ANY_ESCAPE.search(plain.raw), plain.raw
    assert plain.text == coloured.text


def test_no_color_on_a_terminal_running_the_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _regressing_branch(tmp_path, monkeypatch)
    coloured = run_pty([*CLI, "ci", "--base", "main"], tmp_path)
    plain = run_pty(["env", "NO_COLOR=1", *CLI, "ci", "--base", "main"], tmp_path)
    assert coloured.code == plain.code == 1
    assert SGR.search(coloured.raw)
    assert not SGR.search(plain.raw), plain.raw
    assert "agent-evals gate FAILED" in plain.text


def test_a_pipe_gets_colour_only_with_force_color(tmp_path: Path) -> None:
    basic_project(tmp_path)
    plain = piped(["readiness"], tmp_path)
    forced = piped(["readiness"], tmp_path, FORCE_COLOR="1")
    assert plain.returncode == forced.returncode == 0
    assert not ANY_ESCAPE.search(plain.stdout)
    assert SGR.search(forced.stdout)
    assert SGR.sub("", forced.stdout) == plain.stdout
    both = piped(["readiness"], tmp_path, FORCE_COLOR="1", NO_COLOR="1")
    assert both.stdout == plain.stdout  # NO_COLOR wins


def test_force_color_draws_no_progress_bar_into_a_log(tmp_path: Path) -> None:
    basic_project(tmp_path)
    done = piped(["run", "--repeat", "3"], tmp_path, FORCE_COLOR="1")
    assert done.returncode == 0, done.stderr
    assert SGR.search(done.stdout)  # the tables are coloured
    assert "\x1b[?25l" not in done.stderr
    assert "\r" not in done.stderr


# --- --format json --------------------------------------------------------------------------------


def test_validate_json_when_clean(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate", "--format", "json"], capsys)
    assert code == 0
    assert json.loads(out) == {
        "schema_version": 1, "ok": True, "errors": [], "prompts": 1, "evalsets": 1, "cases": 3,
    }  # fmt: skip
    assert err == "validated 1 prompt, 1 eval set (3 cases)\n"


def test_validate_json_lists_the_problems_the_text_prints(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evalset = project / "evalsets/triage.yaml"
    evalset.write_text(evalset.read_text().replace("type: exact_match", "type: exact_mtch"))
    prompt = project / "prompts/triage.yaml"
    prompt.write_text(prompt.read_text().replace("{{ body }}", "{{ body }} {{ nope }}"))
    code, text, _ = run(["validate"], capsys)
    assert code == 2
    code, out, err = run(["validate", "--format", "json"], capsys)
    assert code == 2
    report = json.loads(out)
    assert report["ok"] is False
    first = report["errors"][0]
    assert {k: first[k] for k in ("path", "line", "message")} == {
        "path": "evalsets/triage.yaml",
        "line": 9,
        "message": "unknown grader type 'exact_mtch'",
    }
    assert first["hint"].startswith("known types: ")
    rendered = [ConfigError(e["message"], path=e["path"], line=e["line"], hint=e["hint"]).render()
                for e in report["errors"]]  # fmt: skip
    assert rendered == text.splitlines()
    assert err == f"{len(rendered)} problem(s) found\n"


def test_validate_json_stays_pure_json_on_stdout_in_a_pipe(tmp_path: Path) -> None:
    basic_project(tmp_path, **{"agent-evals_yaml": "schema_version: [\n"})
    done = piped(["-q", "validate", "--format", "json"], tmp_path)
    assert done.returncode == 2
    report = json.loads(done.stdout)  # nothing but the document
    assert report["errors"] == [
        {
            "path": "agent-evals.yaml",
            "line": 2,
            "message": "not valid YAML: did not find expected node content",
            "hint": "check indentation and quoting near this line",
        }
    ]


def test_readiness_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["readiness", "--format", "json", "--strict"], capsys)
    assert code == 1
    report = json.loads(out)
    assert report["schema_version"] == 1
    assert report["ready"] is False
    [card] = report["prompts"]
    assert (card["id"], card["path"], card["ready"]) == ("triage", "prompts/triage.yaml", False)
    checks = {c["name"]: c for c in card["checks"]}
    assert list(checks) == [
        "narrow_job",
        "runtime_policy",
        "evals",
        "gate_policy",
        "owner",
        "metric",
        "litmus",
    ]
    assert checks["owner"] == {
        "name": "owner", "status": "pass", "detail": "Support AI team; on-call pagerduty:support-ai", "fix": None,
    }  # fmt: skip
    assert checks["gate_policy"]["status"] == "fail"
    assert checks["gate_policy"]["fix"] == "add 'gate: {max_regressions: ..., critical: [...]}'"
    code, text, _ = run(["readiness"], capsys)
    assert text.endswith("readiness: 0 of 1 prompt(s) ready (not ready: triage)\n")
    assert run(["-q", "readiness"], capsys) == (
        0,
        "readiness: 0 of 1 prompt(s) ready (not ready: triage)\n",
        "",
    )


def test_cache_stats_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["cache", "stats", "--format", "json"], capsys)
    assert code == 0
    empty = json.loads(out)
    assert {k: empty[k] for k in ("schema_version", "entries", "oldest", "models")} == {
        "schema_version": 1, "entries": 0, "oldest": None, "models": [],
    }  # fmt: skip
    with ScriptedServer(default=openai_chat()) as server:
        http_project(tmp_path, server.url)
        write_tree(tmp_path, {"evalsets/echo.yaml": echo_evalset(4)})
        assert run(["run"], capsys)[0] == 0
    code, out, _ = run(["cache", "stats", "--format", "json"], capsys)
    stats = json.loads(out)
    assert stats["path"] == ".agent-evals/cache.sqlite3"
    assert stats["entries"] == 4
    assert stats["models"] == [{"provider": "gpt", "model": "test-model", "entries": 4}]
    assert stats["text_bytes"] == sum(len(f"echo: question {i}") for i in range(4))
    assert stats["file_bytes"] > 0
    assert stats["oldest"] <= stats["newest"]
    assert stats["newest"].endswith("+00:00")
    _, text, _ = run(["cache", "stats"], capsys)
    assert "response cache: 4 entries" in text
