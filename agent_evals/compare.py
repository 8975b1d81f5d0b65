"""Compare: one baseline/candidate pair, with everything around it, judged by the gate.

Every command that judges a run goes through `compare_pair`: `ci` in each of
its modes (`--base REF`, `--baseline-dir DIR`, `--records DIR`), `diff`, and
`report` (with or without `--baseline`). It assembles what the gate needs
from the records and the eval set they ran:

* the policy in force: given by the caller (`ci --base` holds the change to
  the stricter of base and candidate), else `integrity.effective_policy`;
* the integrity findings the caller found (the gate adds missing cases);
* the human verdicts stored beside the eval set, applied to both records
  (`review.apply_to_record`): verdicts given after a record was written count;
* the eval set's calibration floors (`calibrate.calibration_policy`) and each
  LLM judge's agreement with people (`calibrate.calibrations_for`);
* where each case is written, for annotations;

then `diff.diff` and `gate.gate`, or `gate.gate_absolute` when there is no
baseline. Written once so the same records get the same verdict from every
command.

Assembly: `compare_pair`. From record files: `compare_records`,
`single_run_report`. Helper: `case_locations`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_evals.calibrate import calibration_policy, calibrations_for
from agent_evals.gate import GateReport, PairReport, gate, gate_absolute
from agent_evals.integrity import Finding, effective_policy
from agent_evals.load import find_evalset_file, load_config
from agent_evals.record import RunRecord, load_record
from agent_evals.review import Reviews, apply_to_record, load_reviews

if TYPE_CHECKING:
    from agent_evals.models import EvalSet, GatePolicy, ProjectConfig

__all__ = ["case_locations", "compare_pair", "compare_records", "single_run_report"]


def compare_pair(
    base: RunRecord | None,
    cand: RunRecord,
    *,
    config: ProjectConfig,
    evalset: EvalSet | None,
    policy: GatePolicy | None = None,
    overrides: Mapping[str, Any] | None = None,
    findings: Sequence[Finding] = (),
    accept_policy_change: bool = False,
    note: str | None = None,
) -> PairReport:
    """Judge a candidate record against its baseline (or alone) as every command does.

    Args:
        base: the baseline record; None gates the candidate on absolute thresholds (a new pair).
        cand: the candidate record.
        config: the project's configuration (gate and calibration defaults).
        evalset: the eval set both records ran, as the project has it now; None when the
            project does not have it (no policy, reviews or calibration of its own).
        policy: the policy in force; default `integrity.effective_policy(config, evalset, overrides)`.
        overrides: command-line overrides of the policy (only when `policy` is not given).
        findings: gate-integrity findings; they fail the gate unless the change is accepted.
        accept_policy_change: the change to the bar was reviewed and is intended.
        note: shown with the pair in every report.

    Returns:
        The pair's report: `change` is "modified" with a baseline, else "new".
    """
    if policy is None:
        policy = effective_policy(config, evalset, dict(overrides or {}))
    if note is None and base is not None:
        from agent_evals.sources import changed_note

        # Same prompt and cases, different code: say so, or the pair reads as a rerun of one thing.
        note = changed_note(base.header.code, cand.header.code)
    reviews = _reviews(evalset)
    if reviews is not None:
        # Verdicts given after the records were written still count, on both sides.
        cand = apply_to_record(cand, reviews)
        base = apply_to_record(base, reviews) if base is not None else None
    # Human verdicts are mostly on baseline outputs (the candidate's are often new): calibrate over both.
    calibrations = (
        calibrations_for(
            cand,
            reviews,
            history=(base,) if base is not None else (),
            policy=calibration_policy(config, evalset),
        )
        if reviews is not None
        else ()
    )
    common: dict[str, Any] = {
        "prompt_id": str(cand.header.prompt.get("id")),
        "evalset_id": evalset.id if evalset is not None else str(cand.header.evalset.get("id")),
        "cand": cand,
        "note": note,
        "evalset_path": evalset.source_path if evalset is not None else None,
        "case_locations": case_locations(evalset) if evalset is not None else {},
        "calibrations": calibrations,
    }
    if base is None:
        return PairReport(change="new", verdict=gate_absolute(cand, policy), **common)
    from agent_evals.diff import diff

    d = diff(base, cand)
    verdict = gate(d, policy, findings=findings, accept_policy_change=accept_policy_change)
    return PairReport(change="modified", verdict=verdict, diff=d, **common)


def _reviews(evalset: EvalSet | None) -> Reviews | None:
    """The eval set's stored human verdicts (none yet: empty); None when its file is unknown."""
    if evalset is None or evalset.source_path is None:
        return None
    return load_reviews(Path(evalset.source_path))


def _project_evalset(root: Path, config: ProjectConfig, record: RunRecord) -> EvalSet | None:
    """The project's eval set of the record's id, or None when the project has no such eval set."""
    from agent_evals.load import load_evalset

    path = find_evalset_file(root, config.paths.evalsets, str(record.header.evalset.get("id")))
    return load_evalset(path) if path is not None else None


def compare_records(
    base_path: Path,
    cand_path: Path,
    root: Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    accept_policy_change: bool = False,
) -> GateReport:
    """Diff and gate two run records, with the policy of the eval set they ran (if the project has it).

    Args:
        base_path: the baseline record.
        cand_path: the candidate record.
        root: the project root (its configuration and eval sets).
        overrides: command-line overrides of the gate policy.
        accept_policy_change: cases missing from the candidate are intended.

    Raises:
        ConfigError: a record does not load, or the two ran different eval sets.
    """
    from agent_evals.diff import check_comparable

    base, cand = load_record(base_path), load_record(cand_path)
    check_comparable(base, cand)
    config = load_config(root)
    pair = compare_pair(
        base,
        cand,
        config=config,
        evalset=_project_evalset(root, config, cand),
        overrides=overrides,
        accept_policy_change=accept_policy_change,
    )
    return GateReport(pairs=(pair,))


def single_run_report(record_path: Path, root: Path) -> GateReport:
    """One run with no baseline, judged on its eval set's absolute rules, human verdicts applied.

    Raises:
        ConfigError: the record does not load.
    """
    from agent_evals.report.html import as_single_run

    record = load_record(record_path)
    config = load_config(root)
    pair = compare_pair(None, record, config=config, evalset=_project_evalset(root, config, record))
    return GateReport(pairs=(as_single_run(pair),))


def case_locations(evalset: EvalSet) -> dict[str, tuple[str | None, int | None]]:
    """Where each case of the eval set is written (file, line), by case id."""
    return {case.id: evalset.case_source(i) for i, case in enumerate(evalset.cases)}
