"""The error boundary: a bug says so and points to a log; the test harness catches every such run."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_evals.cli import main
from tests.support import basic_project

ROOT = Path(__file__).resolve().parents[1]


def _planted_bug(*_: object, **__: object) -> object:
    raise KeyError("planted bug")


@pytest.mark.internal_error
def test_a_bug_prints_internal_error_with_the_log_and_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("agent_evals.load.load_project", _planted_bug)
    assert main(["run"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("internal error: KeyError: 'planted bug' (this is a bug; details in ")
    assert "planted bug" in (tmp_path / ".agent-evals" / "crash.log").read_text()


def test_the_harness_fails_a_test_whose_cli_run_hit_the_crash_path(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest("from tests.conftest import _no_internal_error  # noqa: F401\n")
    pytester.makepyfile(
        """
        from agent_evals.cli import main

        def _bug(*args, **kwargs):
            return 1 / 0

        def test_unmarked(monkeypatch, tmp_path):
            monkeypatch.chdir(tmp_path)
            monkeypatch.setattr("agent_evals.load.load_project", _bug)
            main(["run"])
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)  # the body passed; the harness failed it at teardown
    result.stdout.fnmatch_lines(["*the CLI printed 'internal error': ZeroDivisionError*"])
