"""Human review: the verdicts of a person on grades no grader can settle alone.

A grade needs review (`GradeRecord.needs_review`) when an LLM judge is unsure
(its `min_confidence`), when its rubric is `human: true`, or when two graders
the eval set pairs up disagree (`mark_disagreements`). `agent-evals review`
walks a person through them (`run_review`) and stores each verdict beside the
eval set, in `evalsets/<evalset-id>.reviews.jsonl`, one JSON line per verdict:

    {"schema_version": 1, "case_id": "c1", "grader": "tone",
     "output_sha256": "<64 hex digits>", "verdict": "pass", "score": 0.8,
     "note": "polite enough", "reviewer": "Ada Lovelace", "at": "2026-01-01T12:00:00Z"}

(`score` and `note` are optional; without a score a pass is 1 and a fail 0.)
A verdict applies to one output, named by its sha256: a new output needs a new
review. The file is append-only, so it diffs and merges well in git (set
`*.reviews.jsonl merge=union` in `.gitattributes` to merge without conflicts);
a later line for the same (case, grader, output) supersedes an earlier one.

Pure: `mark_disagreements`, `apply_reviews`, `apply_to_record`, `pending`.
Disk: `load_reviews`, `append_verdict`. Terminal: `review_session`, `run_review`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent_evals.errors import ConfigError, ConfigErrors
from agent_evals.graders.base import REVIEW_REASON, case_outcome, review_reason
from agent_evals.record import CaseResult, GradeRecord, RunRecord, open_regular

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "REVIEWS_SCHEMA_VERSION",
    "REVIEWS_SUFFIX",
    "Ask",
    "HumanVerdict",
    "ReviewItem",
    "Reviews",
    "append_verdict",
    "apply_reviews",
    "apply_to_record",
    "load_reviews",
    "mark_disagreements",
    "newest_record",
    "output_sha256",
    "pending",
    "review_session",
    "reviewer_name",
    "reviews_path",
    "run_review",
]

REVIEWS_SCHEMA_VERSION = 1
REVIEWS_SUFFIX = ".reviews.jsonl"
_CONFLICT_MARKERS = (b"<<<<<<<", b"=======", b">>>>>>>")
_SHOWN_CHARS = 4_000


# --- the stored verdicts -----------------------------------------------------------


class HumanVerdict(BaseModel):
    """One person's verdict on one grader's grade of one output (a line of the reviews file)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    schema_version: int = REVIEWS_SCHEMA_VERSION
    case_id: str = Field(min_length=1)
    grader: str = Field(min_length=1)
    output_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the output, hex.")
    verdict: Literal["pass", "fail"]
    score: float | None = Field(default=None, ge=0, le=1, description="Default: 1 for pass, 0 for fail.")
    note: str | None = None
    reviewer: str = Field(min_length=1)
    at: str = Field(description="When, in UTC ISO 8601 (2026-01-01T12:00:00Z).")

    @field_validator("note", "reviewer", mode="before")
    @classmethod
    def _printable(cls, value: object) -> object:
        # Typed at a terminal (an arrow key is ESC [ A) or written into the file by hand: a control
        # character would reach records, reports and, through them, another person's terminal.
        if not isinstance(value, str):
            return value  # the field's type check says what is wrong
        return "".join(ch for ch in " ".join(value.split()) if unicodedata.category(ch) != "Cc")

    @field_validator("at")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 time, e.g. 2026-01-01T12:00:00Z") from None
        if when.tzinfo is None:
            raise ValueError("the time has no UTC offset: end it with Z")
        return value

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def final_score(self) -> float:
        """The score the grade gets: the reviewer's, or 1 for a pass and 0 for a fail."""
        if self.score is not None:
            return self.score
        return 1.0 if self.passed else 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.case_id, self.grader, self.output_sha256)


def output_sha256(output: str) -> str:
    """The hex sha256 of an output's UTF-8 text: what a human verdict is pinned to."""
    return hashlib.sha256(output.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Reviews:
    """The human verdicts of one eval set, the latest per (case, grader, output)."""

    path: Path | None = None
    verdicts: Mapping[tuple[str, str, str], HumanVerdict] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.verdicts)

    def lookup(self, case_id: str, grader: str, output: str | None) -> HumanVerdict | None:
        """The verdict on this exact output, or None (no output, or never reviewed)."""
        if output is None:
            return None
        return self.verdicts.get((case_id, grader, output_sha256(output)))


def reviews_path(evalset_path: Path) -> Path:
    """Where an eval set's human verdicts live: `evalsets/triage.yaml` -> `evalsets/triage.reviews.jsonl`."""
    return evalset_path.with_name(evalset_path.stem + REVIEWS_SUFFIX)


def load_reviews(evalset_path: Path) -> Reviews:
    """Read the human verdicts stored beside an eval set; none when there is no file yet.

    Args:
        evalset_path: the eval set's YAML file (the reviews file is found beside it).

    Raises:
        ConfigError: the path is there but not a regular file (a FIFO, a device, a folder, a
            symlink loop), or a line is not a valid verdict: not UTF-8, not JSON, too long, too
            deep (every bad line, each as `path:line: ...`).
    """
    from agent_evals.load import MAX_LINE_BYTES, iter_jsonl

    path = reviews_path(evalset_path)
    if not os.path.lexists(path):
        return Reviews(path=path)
    verdicts: dict[tuple[str, str, str], HumanVerdict] = {}
    errors: list[ConfigError] = []
    fix = "pass the reviews file 'agent-evals review' writes beside the eval set, or move this away"
    # Only a regular file is read (a FIFO would block, /dev/zero never end), one bounded line at
    # a time, each line through the same JSON reader as cases files and run records.
    with open_regular(path, fix, "reviews file") as fh:
        for lineno, raw in enumerate(iter(partial(fh.readline, MAX_LINE_BYTES + 1), b""), start=1):
            if raw.startswith(_CONFLICT_MARKERS):
                errors.append(
                    ConfigError(
                        "a git merge conflict marker",
                        path=path,
                        line=lineno,
                        hint="keep both sides' lines and delete the markers; "
                        "`*.reviews.jsonl merge=union` in .gitattributes avoids this",
                    )
                )
                continue
            try:
                for _, data in iter_jsonl([raw], path, hint=_ONE_OBJECT, first_line=lineno):
                    verdict = _verdict(data, path, lineno)
                    # Later lines supersede earlier ones: re-reviewing appends, never rewrites history.
                    verdicts[verdict.key] = verdict
            except ConfigErrors as exc:
                errors.extend(exc.errors)
            except ConfigError as exc:
                errors.append(exc)
                if len(raw) > MAX_LINE_BYTES:
                    break  # the rest of that line would be read as more lines
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return Reviews(path=path, verdicts=verdicts)


_ONE_OBJECT = "each line is one JSON object: one human verdict"


def _verdict(data: Any, path: Path, lineno: int) -> HumanVerdict:
    """One line of a reviews file, read as JSON, as a verdict.

    Raises:
        ConfigError: not an object, a newer schema, or not a valid verdict.
    """
    from agent_evals.load import translate

    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a JSON object, got {type(data).__name__}", path=path, line=lineno, hint=_ONE_OBJECT
        )
    version = data.get("schema_version", REVIEWS_SCHEMA_VERSION)
    if isinstance(version, int) and version > REVIEWS_SCHEMA_VERSION:
        raise ConfigError(
            f"reviews schema_version {version} is newer than this tool's",
            path=path,
            line=lineno,
            hint="upgrade agent-evals",
        )
    try:
        return HumanVerdict.model_validate(data)
    except ValidationError as exc:
        errors = translate(exc, path=path, marks=None, model=HumanVerdict)
        missing = [
            err.message.removeprefix("missing required key ")
            for err in errors
            if err.message.startswith("missing required key ")
        ]
        if len(missing) > 1:  # a line that is not a verdict at all: one error, not one per key
            others = [err for err in errors if not err.message.startswith("missing required key ")]
            errors = [
                ConfigError(
                    f"missing required keys {', '.join(missing)}",
                    hint="a verdict has them all; see 'agent-evals review'",
                ),
                *others,
            ]
        raise ConfigErrors(
            [ConfigError(err.message, path=path, line=lineno, hint=err.hint) for err in errors]
        ) from None


def append_verdict(path: Path, verdict: HumanVerdict) -> None:
    """Append one verdict to a reviews file, on disk before this returns (a Ctrl-C loses nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(verdict.model_dump(mode="json", exclude_none=True), ensure_ascii=False)
    with path.open("a+b") as fh:
        # A hand-edited file may lack its last newline; appending after it would merge two lines.
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write(line.encode("utf-8") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def reviewer_name(cwd: Path | None = None) -> str:
    """Who is reviewing: `git config user.name`, else $USER (or $USERNAME), else `unknown`."""
    name = ""
    try:
        found = subprocess.run(
            ["git", "config", "user.name"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        name = found.stdout.strip() if found.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        pass  # no git: fall back to the login name
    return name or os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- marking and applying (pure) -----------------------------------------------------


def _flag(grade: GradeRecord, why: str, other: str) -> GradeRecord:
    details = dict(grade.details)
    if grade.needs_review:
        why = f"{review_reason(details)}; {why}"
    details[REVIEW_REASON] = why
    details["disagrees_with"] = [*details.get("disagrees_with", []), other]
    return grade.model_copy(update={"needs_review": True, "details": details})


def mark_disagreements(
    grades: Sequence[GradeRecord], pairs: Iterable[Sequence[str]]
) -> tuple[GradeRecord, ...]:
    """Mark both grades of every pair of graders that disagree on pass/fail as needing review.

    Grades that could not grade, and `human` rubrics (provisional until a
    person decides), disagree with nothing. Pairs naming a grader that is not
    among `grades` are skipped: the eval-set loader checks the names.

    Args:
        grades: one case's grades, as the runner records them.
        pairs: grader names, two by two (the eval set's `review.disagree`).

    Returns:
        The grades in the same order, the disagreeing ones with `needs_review`
        and `details["disagrees_with"]`.
    """
    original = {g.grader: g for g in grades}
    marked = dict(original)
    for pair in pairs:
        a, b = pair[0], pair[1]
        ga, gb = original.get(a), original.get(b)
        if ga is None or gb is None or not _judged(ga) or not _judged(gb) or ga.passed == gb.passed:
            continue
        words = f"{a} {'passed' if ga.passed else 'failed'}, {b} {'passed' if gb.passed else 'failed'}"
        marked[a] = _flag(marked[a], f"disagrees with grader '{b}' ({words})", b)
        marked[b] = _flag(marked[b], f"disagrees with grader '{a}' ({words})", a)
    return tuple(marked[g.grader] for g in grades)


def _judged(grade: GradeRecord) -> bool:
    return grade.error is None and grade.passed is not None and not grade.details.get("human")


def _reviewable(grade: GradeRecord) -> bool:
    # "review" in details: already decided by a person; a newer verdict may replace it.
    return grade.error is None and (
        grade.needs_review or bool(grade.details.get("human")) or "review" in grade.details
    )


def _with_verdict(grade: GradeRecord, verdict: HumanVerdict) -> GradeRecord:
    earlier = grade.details.get("review")
    # Keep what the machine said before any person did, so a record shows both.
    machine = (
        earlier["machine"]
        if isinstance(earlier, dict) and "machine" in earlier
        else {"score": grade.score, "passed": grade.passed, "reason": grade.reason}
    )
    note = " ".join((verdict.note or "").split())
    review: dict[str, Any] = {
        "verdict": verdict.verdict,
        "score": verdict.final_score,
        "reviewer": verdict.reviewer,
        "at": verdict.at,
        "machine": machine,
    }
    if note:
        review["note"] = note
    return grade.model_copy(
        update={
            "score": verdict.final_score,
            "passed": verdict.passed,
            "reason": f"human review by {verdict.reviewer}: {verdict.verdict}"
            + (f" — {note}" if note else ""),
            "needs_review": False,
            "details": {**grade.details, "review": review},
        }
    )


def apply_reviews(result: CaseResult, reviews: Reviews) -> CaseResult:
    """The case with stored human verdicts in place of its provisional grades.

    Every grade that needs review (or comes from a `human` rubric) and has a
    verdict on this exact output gets the person's score, pass/fail and reason
    and no longer needs review; the case's status, score and pass/fail are then
    recomputed with `case_outcome`, the runner's rule. Pure.

    Args:
        result: one case as the runner records it.
        reviews: the eval set's verdicts (`load_reviews`).

    Returns:
        `result` itself when no verdict applies, else an updated copy.
    """
    if result.output is None or not result.grades or not reviews.verdicts:
        return result
    grades = []
    changed = False
    for grade in result.grades:
        verdict = reviews.lookup(result.case_id, grade.grader, result.output) if _reviewable(grade) else None
        grades.append(grade if verdict is None else _with_verdict(grade, verdict))
        changed = changed or verdict is not None
    if not changed:
        return result
    status, score, passed = case_outcome(grades)
    return result.model_copy(
        update={"grades": tuple(grades), "status": status, "score": score, "passed": passed}
    )


def apply_to_record(record: RunRecord, reviews: Reviews) -> RunRecord:
    """`apply_reviews` on every case of a record read back from disk (e.g. a committed baseline)."""
    cases = tuple(apply_reviews(c, reviews) for c in record.cases)
    if all(new is old for new, old in zip(cases, record.cases, strict=True)):
        return record
    return record.model_copy(update={"cases": cases})


# --- what is left to review ---------------------------------------------------------------


@dataclass(frozen=True)
class ReviewItem:
    """One grade of one output waiting for a person, with what they need to decide it."""

    evalset_id: str
    case_id: str
    grader: str
    why: str
    input: str | None
    output: str
    expected: Any
    reason: str
    details: Mapping[str, Any]
    score: float | None
    passed: bool | None
    repeats: tuple[int, ...] = (0,)

    @property
    def output_sha256(self) -> str:
        return output_sha256(self.output)


def last_user_message(request: Mapping[str, Any] | None) -> str | None:
    """The last user message of a recorded request: the input a reviewer needs to see."""
    messages = (request or {}).get("messages") or []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return None


def pending(record: RunRecord) -> list[ReviewItem]:
    """The grades of a record that still need review, one item per (case, grader, output).

    Repeats of a case with the same output are one item (one verdict covers
    them all); grades that could not grade, and cases with no output, are not
    reviewable.
    """
    evalset_id = str(record.header.evalset.get("id", ""))
    items: dict[tuple[str, str, str], ReviewItem] = {}
    for result in record.cases:
        if result.output is None:
            continue
        for grade in result.grades:
            if not grade.needs_review or grade.error is not None:
                continue
            key = (result.case_id, grade.grader, output_sha256(result.output))
            seen = items.get(key)
            if seen is not None:
                items[key] = replace(seen, repeats=(*seen.repeats, result.repeat))
                continue
            items[key] = ReviewItem(
                evalset_id=evalset_id,
                case_id=result.case_id,
                grader=grade.grader,
                why=review_reason(grade.details),
                input=last_user_message(result.request),
                output=result.output,
                expected=result.expected,
                reason=grade.reason,
                details=grade.details,
                score=grade.score,
                passed=grade.passed,
                repeats=(result.repeat,),
            )
    return list(items.values())


# --- the terminal session -------------------------------------------------------------------


class Ask(Protocol):
    """Asks the person one question and returns the answer (rich's Prompt.ask, or a test's script)."""

    def __call__(self, prompt: str, *, default: str) -> str: ...


def _rich_ask(console: Console) -> Ask:
    from rich.prompt import Prompt
    from rich.text import Text

    def ask(prompt: str, *, default: str) -> str:
        # Text, not markup: "[p]ass" must print its brackets.
        return Prompt.ask(Text(prompt), console=console, default=default, show_default=bool(default))

    return ask


_CHOICES: dict[str, Literal["pass", "fail", "skip", "quit"]] = {
    "p": "pass",
    "pass": "pass",
    "f": "fail",
    "fail": "fail",
    "s": "skip",
    "skip": "skip",
    "q": "quit",
    "quit": "quit",
}


def _choose(console: Console, ask: Ask) -> Literal["pass", "fail", "skip", "quit"]:
    while True:
        try:
            answer = ask("[p]ass, [f]ail, [s]kip or [q]uit", default="")
        except EOFError:
            return "quit"  # stdin closed: stop cleanly, every verdict so far is on disk
        choice = _CHOICES.get(answer.strip().lower())
        if choice is not None:
            return choice
        console.print("answer p, f, s or q", style="yellow")


def _block(console: Console, title: str, body: str | None) -> None:
    from rich.panel import Panel
    from rich.text import Text

    if body is None:
        return
    shown = (
        body
        if len(body) <= _SHOWN_CHARS
        else body[:_SHOWN_CHARS] + f"\n… ({len(body) - _SHOWN_CHARS:,} more characters)"
    )
    # Text, never markup: outputs and cases are untrusted and may contain [brackets].
    console.print(Panel(Text(shown), title=title, title_align="left", expand=True))


def _show(console: Console, item: ReviewItem, n: int, total: int) -> None:
    from rich.rule import Rule
    from rich.text import Text

    console.print(Rule(Text(f"{n}/{total}  {item.evalset_id} · case {item.case_id} · grader {item.grader}")))
    console.print(Text(f"needs review: {item.why}", style="yellow"))
    _block(console, "input (last user message)", item.input)
    expected = item.expected
    _block(
        console,
        "expected",
        None
        if expected is None
        else expected
        if isinstance(expected, str)
        else json.dumps(expected, ensure_ascii=False, indent=2, default=str),
    )
    _block(console, "output", item.output)
    verdict = "pass" if item.passed else "fail"
    score = "n/a" if item.score is None else f"{item.score:.3f}"
    lines = [f"{item.grader} (provisional {verdict}, score {score}): {item.reason}"]
    reasoning = item.details.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        lines.append(f"judge reasoning: {reasoning}")
    advice = item.details.get("advice")
    if isinstance(advice, dict):
        said = advice.get("reason") or advice.get("error")
        lines.append(f"advice (not the verdict): {said}")
    if len(item.repeats) > 1:
        lines.append(f"same output in repeats {', '.join(str(r) for r in item.repeats)}")
    _block(console, "grader", "\n".join(lines))


def review_session(
    items: Sequence[ReviewItem],
    *,
    path: Path,
    console: Console | None = None,
    ask: Ask | None = None,
    reviewer: str | None = None,
    clock: Callable[[], str] = _now,
) -> list[HumanVerdict]:
    """Walk a person through `items`: show each, ask pass / fail / skip / quit and an optional note.

    Each verdict is appended to `path` as soon as it is given, so quitting or
    Ctrl-C loses nothing already decided. End of input counts as quit.

    Args:
        items: from `pending`.
        path: the eval set's reviews file (`reviews_path`).
        console: where to show the cases (default: a new rich Console).
        ask: asks one question (default: rich's `Prompt.ask` on `console`).
        reviewer: who is reviewing (default: `reviewer_name()`).
        clock: the UTC time stamp of each verdict.

    Returns:
        The verdicts given, in order.
    """
    if console is None:
        from rich.console import Console

        console = Console()
    ask = ask or _rich_ask(console)
    who = reviewer or reviewer_name(path.parent)
    given: list[HumanVerdict] = []
    for n, item in enumerate(items, start=1):
        _show(console, item, n, len(items))
        choice = _choose(console, ask)
        if choice == "quit":
            break
        if choice == "skip":
            continue
        try:
            note = ask("note (optional)", default="").strip() or None
        except EOFError:
            note = None
        verdict = HumanVerdict(
            case_id=item.case_id,
            grader=item.grader,
            output_sha256=item.output_sha256,
            verdict=choice,
            note=note,
            reviewer=who,
            at=clock(),
        )
        append_verdict(path, verdict)
        given.append(verdict)
    console.print(f"{len(given)} verdict(s) saved to {path}", highlight=False, markup=False)
    return given


# --- the `review` command --------------------------------------------------------------------


def newest_record(runs: Path, evalset_id: str) -> Path:
    """The most recently written run record of an eval set under `runs` (`run` and `ci` records).

    Raises:
        ConfigError: there is none.
    """
    found = [p for p in runs.rglob(f"{evalset_id}.jsonl") if p.is_file()] if runs.is_dir() else []
    if not found:
        raise ConfigError(
            f"no run record of eval set '{evalset_id}' under {runs}",
            hint=f"run 'agent-evals run --evalset {evalset_id}' first, or name a record",
        )
    return max(found, key=lambda p: (p.stat().st_mtime_ns, str(p)))


def _evalset_file(root: Path, folder: str, evalset_id: str) -> Path:
    from agent_evals.load import find_evalset_file

    path = find_evalset_file(root, folder, evalset_id)
    if path is None:
        raise ConfigError(
            f"no eval set '{evalset_id}' in {root / folder}",
            hint="human verdicts are stored beside the eval set; review from the project root",
        )
    return path


def _only_evalset(root: Path, folder: str) -> str:
    ids = sorted(p.stem for p in (root / folder).glob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if len(ids) == 1:
        return ids[0]
    raise ConfigError(
        "which eval set? name one or a run record",
        hint=f"known eval sets: {', '.join(ids) or 'none'}",
    )


def run_review(
    root: Path,
    record_path: Path | None,
    evalset_id: str | None,
    *,
    console: Console | None = None,
    ask: Ask | None = None,
    reviewer: str | None = None,
) -> int:
    """Review the grades of a run record that still need a person (`agent-evals review`).

    Verdicts stored earlier are applied first, so nothing is asked twice.

    Args:
        root: the project root.
        record_path: the run record to review (default: the newest record of
            `evalset_id` under the project's runs folder).
        evalset_id: the eval set (default: the record's; with neither, the
            project's only eval set).
        console: where to show the cases.
        ask: asks one question (default: rich's `Prompt.ask`).
        reviewer: who is reviewing (default: `git config user.name`, else $USER).

    Returns:
        How many verdicts were given.

    Raises:
        ConfigError: no such record or eval set, the record is of another eval
            set, or the reviews file has a bad line.
    """
    from agent_evals.load import load_config
    from agent_evals.record import load_record

    if console is None:
        from rich.console import Console

        console = Console()
    config = load_config(root)
    if record_path is None:
        evalset_id = evalset_id or _only_evalset(root, config.paths.evalsets)
        record_path = newest_record(root / config.paths.runs, evalset_id)
    record = load_record(record_path)
    recorded = str(record.header.evalset.get("id", ""))
    if evalset_id is not None and recorded != evalset_id:
        raise ConfigError(
            f"the record is of eval set '{recorded}', not '{evalset_id}'",
            path=record_path,
            hint="name a record of that eval set, or leave the eval set out",
        )
    evalset_path = _evalset_file(root, config.paths.evalsets, recorded)
    items = pending(apply_to_record(record, load_reviews(evalset_path)))
    if not items:
        console.print(f"nothing to review in {record_path}", highlight=False, markup=False)
        return 0
    target = reviews_path(evalset_path)
    console.print(
        f"{len(items)} grade(s) to review from {record_path}; verdicts go to {target}",
        highlight=False,
        markup=False,
    )
    return len(review_session(items, path=target, console=console, ask=ask, reviewer=reviewer))
