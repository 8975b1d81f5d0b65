"""Judge calibration: how often an LLM judge agrees with the people who reviewed its grades.

A judge's scores are only worth what its agreement with people is worth.
`agent-evals review` stores a person's verdict on one grader's grade of one
output (`agent_evals.review`); wherever such a verdict exists for an output an
LLM judge graded, the two verdicts make a pair. Over the pairs of one judge
grader this module measures, with the person as the truth and "pass" as the
positive class:

* n, and the confusion matrix (`sklearn.metrics.confusion_matrix`, labels
  `[fail, pass]`, rows the person, columns the judge);
* agreement, the share of pairs that agree (`accuracy_score`), with an exact
  Clopper–Pearson interval (`stats.pass_rate_interval`);
* Cohen's kappa (`cohen_kappa_score`): agreement beyond what two raters with
  these pass rates would reach by chance, (p_o - p_e) / (1 - p_e);
* sensitivity, P(judge passes | person passes), and specificity,
  P(judge fails | person fails) (`recall_score` of each class);
* the judge's pass rate corrected for those error rates (Rogan–Gladen):
  p = (p_obs + specificity - 1) / (sensitivity + specificity - 1), clipped to
  [0, 1], where p_obs is the judge's pass rate on every judged grade of the
  latest record (not only the reviewed ones). It is undefined when
  sensitivity + specificity <= 1: such a judge is no better than a coin.

Which pairs: the judge's *own* verdict, even where a person's verdict has
since replaced it in the record (`details["review"]["machine"]`); across
several records, newest first, each (case, output) counts once, with the
newest judge verdict on it. Note that people mostly review what the judge was
unsure of or disagreed on, so agreement measured on those cases tends to be
pessimistic; reviewing a random sample gives an unbiased figure.

A judge is *below the floor* when its agreement (or, if `min_kappa` is set,
its kappa) is under the eval set's `CalibrationPolicy`; its figures are
*too few* below `min_cases` pairs. Both are warnings in every report; the
gate's verdict does not change.

Pure: `calibrate`, `calibrations_for`, `calibration_policy`, `judge_verdict`.
Terminal: `print_calibration`. The `calibrate` command: `run_calibrate`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, SupportsFloat

from agent_evals.errors import ConfigError
from agent_evals.load import find_evalset_file
from agent_evals.models import CalibrationPolicy, EvalSet, ProjectConfig
from agent_evals.record import GradeRecord, RunRecord
from agent_evals.review import Reviews, output_sha256

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "CONFIDENCE",
    "LABELS",
    "Calibration",
    "CalibrationStatus",
    "calibrate",
    "calibration_policy",
    "calibrations_for",
    "is_judge",
    "judge_verdict",
    "print_calibration",
    "run_calibrate",
]

LABELS: tuple[str, str] = ("fail", "pass")
"""The confusion matrix's label order: index 0 is fail, 1 is pass."""
CONFIDENCE = 0.95
"""The coverage of the agreement interval."""

CalibrationStatus = Literal["ok", "below_floor", "too_few", "uncalibrated"]


def _pct(x: float) -> str:
    # 0.797 must not print as "80%" next to a floor of 80%.
    whole = 100 * x
    return f"{whole:.0f}%" if abs(whole - round(whole)) < 0.05 else f"{whole:.1f}%"


def _cases(n: int) -> str:
    return f"{n:,} case" if n == 1 else f"{n:,} cases"


@dataclass(frozen=True)
class Calibration:
    """One judge grader's agreement with people, and what it does to the judge's pass rate.

    Attributes:
        grader: the grader's name.
        n: human-reviewed outputs the judge graded (the pairs).
        tn: both failed. fp: the judge passed what the person failed.
        fn: the judge failed what the person passed. tp: both passed.
        agreement: (tp + tn) / n; None when n == 0.
        agreement_ci: its exact (Clopper–Pearson) interval at `CONFIDENCE`; None when n == 0.
        kappa: Cohen's kappa; None when undefined (n == 0, or both gave one same verdict throughout).
        sensitivity: tp / (tp + fn); None when people passed none.
        specificity: tn / (tn + fp); None when people failed none.
        judged: the judge's verdicts in the latest record (every case and repeat).
        judge_passed: how many of those passed.
        corrected_pass_rate: the Rogan–Gladen pass rate, clipped to [0, 1]; None when undefined.
        corrected_note: why it is undefined (None when it is defined).
        judges: the judge models of the pairs, as `provider/model` (more than one: pooled).
        policy: the floors the figures were held to.
        warnings: one sentence per floor missed, or on too few (or no) cases.
    """

    grader: str
    n: int
    tn: int
    fp: int
    fn: int
    tp: int
    agreement: float | None
    agreement_ci: tuple[float, float] | None
    kappa: float | None
    sensitivity: float | None
    specificity: float | None
    judged: int
    judge_passed: int
    corrected_pass_rate: float | None
    corrected_note: str | None
    judges: tuple[str, ...] = ()
    policy: CalibrationPolicy = field(default_factory=CalibrationPolicy)
    warnings: tuple[str, ...] = ()

    @property
    def confusion(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Rows the person, columns the judge, both in `LABELS` order: ((tn, fp), (fn, tp))."""
        return ((self.tn, self.fp), (self.fn, self.tp))

    @property
    def observed_pass_rate(self) -> float | None:
        """The judge's pass rate on every judged grade of the latest record (p_obs)."""
        return self.judge_passed / self.judged if self.judged else None

    @property
    def below_floor(self) -> bool:
        """Agreement (or kappa, when `min_kappa` is set) under the policy's floor; never with no pairs."""
        if self.n == 0 or self.agreement is None:
            return False
        if self.agreement < self.policy.min_agreement:
            return True
        floor = self.policy.min_kappa
        return floor is not None and (self.kappa is None or self.kappa < floor)

    @property
    def too_few(self) -> bool:
        return self.n < self.policy.min_cases

    @property
    def status(self) -> CalibrationStatus:
        """`uncalibrated` (no pairs), else `below_floor`, else `too_few`, else `ok`."""
        if self.n == 0:
            return "uncalibrated"
        if self.below_floor:
            return "below_floor"
        return "too_few" if self.too_few else "ok"

    def summary(self) -> str:
        """One short phrase for a table cell: `72% of 25 cases, kappa 0.41` or `no human verdicts`."""
        if self.agreement is None:
            return "no human verdicts"
        kappa = "kappa n/a" if self.kappa is None else f"kappa {self.kappa:.2f}"
        return f"{_pct(self.agreement)} of {_cases(self.n)}, {kappa}"


# --- which grades are a judge's -------------------------------------------------------


def is_judge(grade: GradeRecord) -> bool:
    """A grade an LLM judge gave (a rubric's `judge`), not a person's (`human: true`) nor criteria."""
    details = grade.details
    return "judge_score" in details and not details.get("human")


def judge_verdict(grade: GradeRecord) -> bool | None:
    """The judge's own pass/fail for a grade: None when it is not a judge's, or it could not grade.

    When a stored human verdict has replaced the grade (`review.apply_reviews`),
    the judge's verdict is the one kept under `details["review"]["machine"]`:
    comparing the person with themselves would always agree.
    """
    if grade.error is not None or not is_judge(grade):
        return None
    review = grade.details.get("review")
    if isinstance(review, dict) and isinstance(review.get("machine"), dict):
        machine = review["machine"].get("passed")
        return machine if isinstance(machine, bool) else None
    return grade.passed


def _judge_name(grade: GradeRecord) -> str | None:
    provider, model = grade.details.get("provider"), grade.details.get("model")
    if not provider and not model:
        return None
    return f"{provider or '?'}/{model or '?'}"


# --- the figures (pure) ---------------------------------------------------------------------


@dataclass
class _Pairs:
    human: list[str] = field(default_factory=list)
    judge: list[str] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    judges: dict[str, None] = field(default_factory=dict)
    judged: int = 0
    judge_passed: int = 0


def _label(passed: bool) -> str:
    return LABELS[1] if passed else LABELS[0]


def calibrate(
    records: Sequence[RunRecord],
    reviews: Reviews,
    *,
    grader: str | None = None,
    policy: CalibrationPolicy | None = None,
) -> list[Calibration]:
    """Compare every LLM judge's verdicts with the human verdicts on the same outputs.

    A pair is a judge grade and a stored human verdict on the same case, grader
    and output (by the output's sha256). Across `records`, each (case, output)
    of a grader counts once, with the verdict of the first record that has it.

    Args:
        records: run records of one eval set, newest first; the first is the
            latest, whose judged pass rate is the p_obs that gets corrected.
        reviews: the eval set's human verdicts (`review.load_reviews`).
        grader: only this grader (default: every judge grader).
        policy: the floors (default: `CalibrationPolicy()`: 80% agreement, 20 cases).

    Returns:
        One `Calibration` per judge grader in the records, in order of first
        appearance; one with n == 0 (`status == "uncalibrated"`) for a judge
        no person has reviewed. Empty when the records hold no judge grade.
    """
    policy = policy or CalibrationPolicy()
    found: dict[str, _Pairs] = {}
    for position, record in enumerate(records):
        for result in record.cases:
            sha = output_sha256(result.output) if result.output is not None else None
            for grade in result.grades:
                if grader is not None and grade.grader != grader:
                    continue
                verdict = judge_verdict(grade)
                if verdict is None and not is_judge(grade):
                    continue
                acc = found.setdefault(grade.grader, _Pairs())
                if verdict is None:
                    continue  # a judge that could not grade this one: nothing to compare
                if position == 0:
                    acc.judged += 1
                    acc.judge_passed += verdict
                if sha is None or (result.case_id, sha) in acc.seen:
                    continue
                human = reviews.verdicts.get((result.case_id, grade.grader, sha))
                if human is None:
                    continue
                acc.seen.add((result.case_id, sha))
                acc.human.append(_label(human.passed))
                acc.judge.append(_label(verdict))
                name = _judge_name(grade)
                if name is not None:
                    acc.judges[name] = None
    return [_figures(name, acc, policy) for name, acc in found.items()]


def _figures(grader: str, acc: _Pairs, policy: CalibrationPolicy) -> Calibration:
    n = len(acc.human)
    tn = fp = fn = tp = 0
    agreement = kappa = sens = spec = None
    agreement_ci = None
    if n:
        from sklearn.exceptions import UndefinedMetricWarning
        from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, recall_score

        from agent_evals import stats

        labels = list(LABELS)
        matrix = confusion_matrix(acc.human, acc.judge, labels=labels)
        tn, fp, fn, tp = (int(x) for x in matrix.ravel())
        agreement = float(accuracy_score(acc.human, acc.judge))
        with warnings.catch_warnings():
            # Both raters gave one and the same verdict throughout: kappa is 0/0, reported as None.
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            kappa = _finite(
                cohen_kappa_score(acc.human, acc.judge, labels=labels, replace_undefined_by=math.nan)
            )
        sens = _finite(
            recall_score(acc.human, acc.judge, labels=labels, pos_label=LABELS[1], zero_division=math.nan)
        )
        spec = _finite(
            recall_score(acc.human, acc.judge, labels=labels, pos_label=LABELS[0], zero_division=math.nan)
        )
        interval = stats.pass_rate_interval(tp + tn, n, confidence=CONFIDENCE, method="exact")
        agreement_ci = (interval.low, interval.high)
    observed = acc.judge_passed / acc.judged if acc.judged else None
    corrected, note = _corrected(observed, sens, spec, n)
    calibration = Calibration(
        grader=grader,
        n=n,
        tn=tn,
        fp=fp,
        fn=fn,
        tp=tp,
        agreement=agreement,
        agreement_ci=agreement_ci,
        kappa=kappa,
        sensitivity=sens,
        specificity=spec,
        judged=acc.judged,
        judge_passed=acc.judge_passed,
        corrected_pass_rate=corrected,
        corrected_note=note,
        judges=tuple(acc.judges),
        policy=policy,
    )
    return _with_warnings(calibration)


def _finite(value: SupportsFloat) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _corrected(
    observed: float | None, sens: float | None, spec: float | None, n: int
) -> tuple[float | None, str | None]:
    """Rogan–Gladen: the pass rate a perfect judge would have seen, or None and why not."""
    if n == 0:
        return None, "undefined: no human verdicts to measure the judge's error rates"
    if observed is None:
        return None, "undefined: the judge graded no case in the latest record"
    if sens is None:
        return (
            None,
            "undefined: people passed none of the reviewed cases, so the judge's sensitivity is unknown",
        )
    if spec is None:
        return (
            None,
            "undefined: people failed none of the reviewed cases, so the judge's specificity is unknown",
        )
    youden = sens + spec - 1
    if youden <= 0:
        return None, (
            f"undefined: sensitivity + specificity = {sens + spec:.2f} <= 1, "
            "the judge does no better than chance against people"
        )
    return min(1.0, max(0.0, (observed + spec - 1) / youden)), None


def _with_warnings(c: Calibration) -> Calibration:
    name = f"judge '{c.grader}'"
    if c.n == 0 or c.agreement is None:
        said = (
            f"{name}: nothing to calibrate, no person has reviewed an output it graded "
            "(give verdicts with agent-evals review)",
        )
        return replace(c, warnings=said)
    found = []
    p = c.policy
    if c.agreement < p.min_agreement:
        found.append(
            f"{name} agrees with people on {_pct(c.agreement)} of {_cases(c.n)} (floor {_pct(p.min_agreement)})"
        )
    if p.min_kappa is not None:
        if c.kappa is None:
            found.append(
                f"{name}: Cohen's kappa with people is undefined on {_cases(c.n)} (people and the judge "
                f"gave one same verdict throughout) (floor {p.min_kappa:.2f})"
            )
        elif c.kappa < p.min_kappa:
            found.append(
                f"{name} has Cohen's kappa {c.kappa:.2f} with people on {_cases(c.n)} (floor {p.min_kappa:.2f})"
            )
    if c.too_few:
        found.append(
            f"{name}: agreement with people measured on only {_cases(c.n)} (at least {p.min_cases:,} wanted)"
        )
    return replace(c, warnings=tuple(found))


def calibrations_for(
    cand: RunRecord,
    reviews: Reviews,
    *,
    history: Sequence[RunRecord] = (),
    policy: CalibrationPolicy | None = None,
) -> tuple[Calibration, ...]:
    """The calibration of every judge grader of a gated candidate, for `PairReport.calibrations`.

    The candidate's own pass rate is the one corrected; its outputs are often
    new (the prompt changed), so pass older records of the same eval set in
    `history` (the baseline run, earlier runs) to find outputs people reviewed.

    Args:
        cand: the candidate record.
        reviews: the eval set's human verdicts (`review.load_reviews`).
        history: older records of the eval set, newest first.
        policy: the floors (`calibration_policy(config, evalset)`).
    """
    return tuple(calibrate([cand, *history], reviews, policy=policy))


def calibration_policy(config: ProjectConfig, evalset: EvalSet | None) -> CalibrationPolicy:
    """The eval set's calibration floors over the project's defaults, key by key."""
    merged: dict[str, object] = {}
    for layer in (config.calibration, evalset.calibration if evalset else None):
        if layer is not None:
            merged.update({k: getattr(layer, k) for k in layer.model_fields_set})
    return CalibrationPolicy.model_validate(merged)


# --- the terminal ---------------------------------------------------------------------------------


def _rate(x: float | None) -> str:
    return "-" if x is None else _pct(x)


def print_calibration(console: Console, calibrations: Sequence[Calibration]) -> None:
    """Print one row per judge grader, then the warnings and why a corrected rate is undefined.

    Args:
        console: where to print.
        calibrations: from `calibrate`.
    """
    from rich.text import Text

    from agent_evals.report.table import Table

    if not calibrations:
        console.print(Text("nothing to calibrate: the records hold no LLM-judge grade"))
        return
    table = Table(title="judge agreement with people", title_justify="left")
    for col, justify in (
        ("grader", "left"),
        ("judge", "left"),
        ("n", "right"),
        ("agreement (95% CI)", "right"),
        ("kappa", "right"),
        ("sensitivity", "right"),
        ("specificity", "right"),
        ("judge pass rate", "right"),
        ("corrected", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in calibrations:
        agreement = (
            "-"
            if c.agreement is None or c.agreement_ci is None
            else f"{_pct(c.agreement)} ({_pct(c.agreement_ci[0])}–{_pct(c.agreement_ci[1])})"
        )
        observed = c.observed_pass_rate
        table.add_row(
            Text(c.grader),
            Text(", ".join(c.judges) or "-"),
            str(c.n),
            Text(agreement, style="red" if c.below_floor else ""),
            "-" if c.kappa is None else f"{c.kappa:.2f}",
            _rate(c.sensitivity),
            _rate(c.specificity),
            "-" if observed is None else f"{_pct(observed)} ({c.judge_passed}/{c.judged})",
            _rate(c.corrected_pass_rate),
        )
    console.print(table)
    for c in calibrations:
        for warning in c.warnings:
            console.print(Text(f"warning: {warning}", style="yellow"))
        if c.n and c.corrected_note is not None:
            console.print(Text(f"judge '{c.grader}': corrected pass rate {c.corrected_note}", style="dim"))
        if len(c.judges) > 1:
            console.print(
                Text(f"judge '{c.grader}': verdicts of {len(c.judges)} judge models pooled", style="dim")
            )


# --- the `calibrate` command -------------------------------------------------------------------------


def _evalset_path(root: Path, folder: str, evalset: str) -> Path:
    path = find_evalset_file(root, folder, evalset)
    if path is None:
        raise ConfigError(
            f"no eval set '{evalset}' in {root / folder}",
            hint="name an eval set by its id or its YAML file; run from the project root",
        )
    return path


def _newest_first(records: Sequence[RunRecord]) -> list[RunRecord]:
    return sorted(records, key=lambda r: (r.header.started_at, r.path), reverse=True)


def run_calibrate(
    root: Path,
    evalset: str,
    records: Sequence[Path] = (),
    *,
    grader: str | None = None,
    strict: bool = False,
    console: Console | None = None,
) -> int:
    """Compare an eval set's LLM judges with its human verdicts (`agent-evals calibrate`).

    Args:
        root: the project root.
        evalset: the eval set's id, or its YAML file.
        records: run records to read (default: every record of the eval set
            under the project's runs folder); read newest first by start time.
        grader: only this grader.
        strict: exit 1 when a judge is below its floor.
        console: where to print (default: a new rich Console).

    Returns:
        The exit code: 0, or 1 with `strict` when a judge is below the floor.

    Raises:
        ConfigError: no such eval set or grader, no record, a record of another
            eval set, or a bad reviews file.
    """
    from agent_evals.load import load_config, load_evalset
    from agent_evals.record import load_record
    from agent_evals.review import load_reviews

    if console is None:
        from rich.console import Console

        console = Console()
    config = load_config(root)
    path = _evalset_path(root, config.paths.evalsets, evalset)
    spec = load_evalset(path)
    labels = [g.label for g in spec.graders]
    if grader is not None and grader not in labels:
        raise ConfigError(
            f"eval set '{spec.id}' has no grader '{grader}'", hint=f"its graders: {', '.join(labels)}"
        )
    if records:
        paths = list(dict.fromkeys(records))
    else:
        runs = root / config.paths.runs
        paths = sorted(p for p in runs.rglob(f"{spec.id}.jsonl") if p.is_file()) if runs.is_dir() else []
        if not paths:
            raise ConfigError(
                f"no run record of eval set '{spec.id}' under {runs}",
                hint=f"run 'agent-evals run --evalset {spec.id}' first, or name records with --record",
            )
    loaded = []
    for record_path in paths:
        record = load_record(record_path)
        recorded = str(record.header.evalset.get("id", ""))
        if recorded != spec.id:
            raise ConfigError(
                f"the record is of eval set '{recorded}', not '{spec.id}'",
                path=record_path,
                hint="name records of the eval set being calibrated",
            )
        loaded.append(record)
    result = calibrate(
        _newest_first(loaded), load_reviews(path), grader=grader, policy=calibration_policy(config, spec)
    )
    if grader is not None and not result:
        from rich.text import Text

        console.print(
            Text(f"grader '{grader}' gave no LLM-judge grade in these records: nothing to calibrate")
        )
        return 0
    print_calibration(console, result)
    return 1 if strict and any(c.below_floor for c in result) else 0
