"""GitHub Actions workflow commands: `::error file=...,line=...::` on the eval set lines.

A regressed case is annotated at the line that defines it in the eval set (or
its JSONL cases file), so the PR's "Files changed" view shows the failure where
the case lives; a failed gate rule is annotated on the eval set file.

GitHub reads an annotation's file from the repository root, while the report names
files from the folder agent-evals ran in (the project, which may be a subfolder of
the repository, e.g. the action's `working-directory`): each path is rebased.

An agent's regressed case also says how its trajectory changed
("trajectory: no longer calls lookup_policy before issue_refund").
"""

from __future__ import annotations

import os
from pathlib import Path

from agent_evals.gate import GateReport, PairReport
from agent_evals.report._common import failing_grades, shown, trajectory_text
from agent_evals.scaffold import repository_root

_MAX_PER_PAIR = 50  # GitHub shows at most 10 error annotations per step; keep the log bounded too.


def _data(text: str) -> str:
    # Workflow-command escaping: the message may not hold raw %, CR or LF.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, message: str, *, file: str | None, line: int | None, title: str) -> str:
    props = [f"title={_prop(title)}"]
    if file:
        props.insert(0, f"file={_prop(file)}")
        if line:
            props.insert(1, f"line={line}")
    return f"::{level} {','.join(props)}::{_data(message)}"


def _from_repository_root(path: str, cwd: Path, top: Path | None) -> str:
    """`path` (from `cwd`, or absolute) from the repository root `top`; as given outside it."""
    if top is None:
        return path
    absolute = cwd / path
    # The folder resolved as the root is (symlinks, `..`), the file name kept, as the loader names files.
    absolute = Path(os.path.realpath(absolute.parent)) / absolute.name
    return absolute.relative_to(top).as_posix() if absolute.is_relative_to(top) else path


def _pair(pair: PairReport, cwd: Path, top: Path | None) -> list[str]:
    def rebased(path: str | None) -> str | None:
        return None if path is None else _from_repository_root(path, cwd, top)

    lines = []
    level = "error" if pair.verdict.status != "pass" else "warning"
    for rule in pair.verdict.failed:
        lines.append(
            _command(
                "error" if rule.severity == "error" or pair.verdict.status == "fail" else level,
                rule.message,
                file=rebased(pair.evalset_path),
                line=None,
                title=f"agent-evals {pair.evalset_id}: {rule.rule}",
            )
        )
    if pair.diff is not None:
        for case in pair.diff.outcome("regressed")[:_MAX_PER_PAIR]:
            file, line = pair.case_locations.get(case.case_id, (pair.evalset_path, None))
            reasons = [f"{grader}: {why}" for grader, why in failing_grades(shown(case.cand, failing=True))]
            moved = trajectory_text(case)
            if moved:
                reasons.append(f"trajectory: {moved}")
            lines.append(
                _command(
                    level,
                    f"case '{case.case_id}' regressed (passed on the baseline, fails now)"
                    + (": " + "; ".join(reasons) if reasons else ""),
                    file=rebased(file or pair.evalset_path),
                    line=line,
                    title=f"agent-evals {pair.evalset_id}: regressed",
                )
            )
    return lines


def render(report: GateReport, *, cwd: Path | None = None) -> str:
    """The workflow commands for a gate report, one per line (empty when nothing to say).

    Args:
        report: the gate report.
        cwd: the folder the report's file names are relative to (default: the current
            directory, where `agent-evals ci` ran); the annotations name files from the
            root of the git repository around it.

    Returns:
        `::error ...::` and `::warning ...::` lines.
    """
    here = Path.cwd() if cwd is None else cwd
    top = repository_root(here)
    lines = [line for pair in report.pairs for line in _pair(pair, here, top)]
    return "\n".join(lines) + ("\n" if lines else "")
