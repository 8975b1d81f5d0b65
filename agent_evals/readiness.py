"""`readiness`: is a prompt ready for production? A scorecard of the shifts that get it there.

Each check is one of the shifts that move an agent into production, with a
one-line fix when it fails:

    narrow_job      one task (a description) and one output contract (a schema)
    runtime_policy  the production agent's timeouts, retries, cost ceiling and human escape hatch
    evals           an eval set with provenance, enough cases, labelled expectations or rubrics
    gate_policy     a gate the eval set enforces
    owner           a named owner and an on-call
    freshness       a monitored eval set still covers today's traffic (its latest
                    `agent-evals freshness` check in the history)
    metric          the business number the eval set protects
    litmus          the three answers: what breaks at 1% wrong, who is paged, which number moves

Ownership is read straight from the YAML, so a prompt that does not validate
(an unowned prompt is invalid) still gets a scorecard that says what to add.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent_evals import _yaml
from agent_evals.errors import ConfigError
from agent_evals.graders import build_grader
from agent_evals.load import YAML_SUFFIXES, load_project
from agent_evals.models import EvalSet, ProjectConfig, Prompt
from agent_evals.report._common import one_line

if TYPE_CHECKING:
    from rich.console import Console

    from agent_evals.checks import Check as StoredCheck

CheckStatus = Literal["pass", "fail", "warn"]


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Scorecard:
    prompt_id: str
    path: str
    checks: tuple[Check, ...] = field(default=())

    @property
    def ready(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _owner(raw: dict[str, Any]) -> Check:
    name, oncall = _get(raw, "owner", "name"), _get(raw, "owner", "oncall")
    if not _text(name):
        return Check(
            "owner", "fail", "no named owner", "add 'owner: {name: <team or person>, oncall: <rotation>}'"
        )
    if not _text(oncall):
        return Check("owner", "fail", f"owner {name} has no on-call", "add 'owner.oncall: <who gets paged>'")
    return Check("owner", "pass", f"{name}; on-call {oncall}")


def _litmus(raw: dict[str, Any]) -> Check:
    questions = {
        "if_wrong_1pct": "what breaks if it is wrong 1% of the time",
        "who_gets_paged": "who gets paged when it is down",
        "business_number": "which number in the weekly business review moves because it exists",
    }
    missing = [key for key in questions if not _text(_get(raw, "litmus", key))]
    if missing:
        return Check(
            "litmus",
            "fail",
            "unanswered: " + "; ".join(questions[k] for k in missing),
            "answer them under 'litmus:' in the prompt (" + ", ".join(missing) + ")",
        )
    return Check("litmus", "pass", "the three litmus answers are recorded")


def _narrow_job(raw: dict[str, Any], prompt: Prompt | None) -> Check:
    if not _text(raw.get("description")):
        return Check(
            "narrow_job", "fail", "no description of its one job", "add 'description:' in one sentence"
        )
    if prompt is not None and (prompt.output.format != "json" or prompt.output.json_schema is None):
        return Check(
            "narrow_job", "fail", "no output contract", "declare 'output: {format: json, schema: {...}}'"
        )
    return Check("narrow_job", "pass", str(raw.get("description")).strip().splitlines()[0][:80])


def _runtime(raw: dict[str, Any]) -> Check:
    wanted = {
        "timeout_s": "a timeout",
        "max_attempts": "retries",
        "max_cost_usd": "a cost ceiling",
        "escape_hatch": "a human escape hatch",
    }
    found = raw.get("runtime")
    policy: dict[str, Any] = found if isinstance(found, dict) else {}
    missing = [key for key in wanted if policy.get(key) in (None, "")]
    attempts = policy.get("max_attempts")
    if isinstance(attempts, int) and attempts < 2 and "max_attempts" not in missing:
        missing.append("max_attempts")
    if missing:
        return Check(
            "runtime_policy",
            "fail",
            "missing " + ", ".join(wanted[k] for k in missing),
            "record the production runtime under 'runtime:' (" + ", ".join(missing) + ")",
        )
    return Check(
        "runtime_policy",
        "pass",
        f"timeout {policy['timeout_s']}s, {policy['max_attempts']} attempts, ceiling ${policy['max_cost_usd']}, "
        f"escape hatch: {one_line(str(policy['escape_hatch']), 60)}",
    )


def _evals(evalsets: Sequence[EvalSet], min_cases: int) -> list[Check]:
    if not evalsets:
        return [
            Check(
                "evals",
                "fail",
                "no eval set targets this prompt",
                "add evalsets/<id>.yaml with 'prompt: <id>'",
            ),
            Check("gate_policy", "fail", "no eval set, so no gate", "add an eval set with a 'gate:' policy"),
            Check("metric", "fail", "no eval set, so no business metric", "add 'metric:' to its eval set"),
        ]
    checks = []
    for e in evalsets:
        where = f"eval set {e.id}"
        if e.provenance is None:
            checks.append(
                Check("evals", "fail", f"{where} has no provenance",
                      "add 'provenance: {source: ..., sampled_at: ..., method: ...}' (agent-evals sample writes it)")
            )  # fmt: skip
        elif len(e.cases) < min_cases:
            checks.append(
                Check("evals", "fail", f"{where} has {len(e.cases)} cases; at least {min_cases} needed",
                      "sample more production traffic: agent-evals sample --append")
            )  # fmt: skip
        else:
            unlabeled = [c.id for c in e.cases if c.expected is None]
            needs_expected = any(build_grader(g).needs_expected for g in e.graders)
            if unlabeled and needs_expected:
                checks.append(
                    Check("evals", "fail", f"{where}: {len(unlabeled)} cases have no expected value",
                          "label them, or grade them with a rubric")
                )  # fmt: skip
            else:
                synthetic = " (synthetic: replace with production traffic)" if e.provenance.synthetic else ""
                status: CheckStatus = "warn" if e.provenance.synthetic else "pass"
                checks.append(
                    Check(
                        "evals",
                        status,
                        f"{where}: {len(e.cases)} cases from {e.provenance.source}{synthetic}",
                    )
                )
        checks.append(
            Check("gate_policy", "pass", f"{where} has a gate policy")
            if e.gate is not None
            else Check("gate_policy", "fail", f"{where} has no gate policy", "add 'gate: {max_regressions: ..., critical: [...]}'")
        )  # fmt: skip
        checks.append(
            Check("metric", "pass", f"{where} protects: {e.metric}")
            if e.metric
            else Check("metric", "fail", f"{where} names no business metric", "add 'metric: <the number it protects>'")
        )  # fmt: skip
    return checks


def _freshness(root: Path, config: ProjectConfig, evalsets: Sequence[EvalSet]) -> list[Check]:
    """Each monitored eval set's latest freshness check from the history (`agent-evals freshness`).

    Only eval sets with a `monitor:` policy get one (it says how their production log is read).
    A SQLite history that does not exist yet is not created: nothing was checked.
    """
    watched = [e for e in evalsets if e.monitor is not None]
    if not watched:
        return []
    found: dict[str, StoredCheck | None] = dict.fromkeys((e.id for e in watched), None)
    problem = None
    try:
        from agent_evals.freshness import latest
        from agent_evals.history.store import open_store, resolve_url

        target = resolve_url(root, config)
        database = target.url.database
        if target.url.get_backend_name() != "sqlite" or (database and Path(database).exists()):
            with open_store(target) as store:
                found = {e.id: latest(store, e.id) for e in watched}
    except ConfigError as exc:
        problem = exc.render()
    out = []
    for e in watched:
        where = f"eval set {e.id}"
        command = f"agent-evals freshness LOG --evalset {e.id}"
        check = found[e.id]
        if problem is not None:
            out.append(Check("freshness", "warn", f"{where}: history unavailable: {problem}", command))
        elif check is None:
            out.append(
                Check("freshness", "warn", f"{where}: not checked against production traffic", command)
            )
        else:
            out.append(_freshness_row(where, check, command))
    return out


def _freshness_row(where: str, check: StoredCheck, command: str) -> Check:
    figures = check.figures
    share = figures.get("uncovered_share")
    limit = float(figures.get("max_uncovered_share") or 0)
    on = f" on {check.at:%Y-%m-%d}"
    if check.status == "stale":
        gap = ", ".join([*figures.get("missing", ()), *figures.get("under", ())])
        return Check(
            "freshness",
            "fail",
            f"{where}: {100 * float(share or 0):.1f}% of production traffic not covered{on} "
            f"(over {100 * limit:.1f}%)" + (f"; missing or under-represented: {gap}" if gap else ""),
            str(figures.get("command") or command),
        )
    if check.status == "ok":
        return Check(
            "freshness",
            "pass",
            f"{where}: {100 * float(share or 0):.1f}% of production traffic not covered{on} "
            f"(at most {100 * limit:.1f}%)",
        )
    return Check("freshness", "warn", f"{where}: could not tell{on} ({check.headline})", command)


def scorecards(root: Path, prompt_ids: Sequence[str] = ()) -> list[Scorecard]:
    """A scorecard for every prompt under `root` (or those named)."""
    project = load_project(root)
    folder = root / project.config.paths.prompts
    files = sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES) if folder.is_dir() else []
    cards = []
    known: list[str] = []
    for path in files:
        try:
            raw: dict[str, Any] = dict(_yaml.load_mapping(path))
        except ConfigError as exc:
            cards.append(
                Scorecard(path.stem, str(path), (Check("valid", "fail", exc.render(), "fix the file"),))
            )
            continue
        prompt_id = str(raw.get("id") or path.stem)
        known.append(prompt_id)
        if prompt_ids and prompt_id not in prompt_ids:
            continue
        prompt = project.prompts.get(prompt_id)
        evalsets = [e for e in project.evalsets.values() if e.prompt == prompt_id]
        checks = [_narrow_job(raw, prompt), _runtime(raw), *_evals(evalsets, project.config.readiness.min_cases),
                  _owner(raw), _litmus(raw)]  # fmt: skip
        checks += _freshness(root, project.config, evalsets)
        if prompt is None:
            problems = [e.render() for e in project.errors if e.path and Path(e.path).name == path.name]
            detail = problems[0] if problems else "does not load"
            checks.insert(0, Check("valid", "fail", detail, "run agent-evals validate and fix what it says"))
        cards.append(Scorecard(prompt_id, str(path), tuple(_order(checks))))
    if prompt_ids:
        unknown = sorted(set(prompt_ids) - {c.prompt_id for c in cards})
        if unknown:
            raise ConfigError(f"no prompt '{unknown[0]}'", hint=f"known: {', '.join(known) or 'none'}")
    return cards


_ORDER = (
    "valid",
    "narrow_job",
    "runtime_policy",
    "evals",
    "freshness",
    "gate_policy",
    "owner",
    "metric",
    "litmus",
)


def _order(checks: list[Check]) -> list[Check]:
    return sorted(checks, key=lambda c: _ORDER.index(c.name))


_MARK = {"pass": "✅", "fail": "❌", "warn": "⚠️"}


def markdown(cards: Sequence[Scorecard]) -> str:
    """The scorecards as a Markdown section (for the PR comment)."""
    lines = ["### Production readiness", ""]
    for card in cards:
        lines += [
            f"**`{card.prompt_id}`**: {'ready' if card.ready else 'not ready'}",
            "",
            "| check | | detail | fix |",
            "|---|---|---|---|",
        ]
        for c in card.checks:
            cells = [c.name, _MARK[c.status], c.detail, c.fix or ""]
            lines.append("| " + " | ".join(x.replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def verdict(cards: Sequence[Scorecard]) -> str:
    """The one-line verdict, e.g. `readiness: 1 of 2 prompt(s) ready (not ready: refunds)`."""
    waiting = [card.prompt_id for card in cards if not card.ready]
    line = f"readiness: {len(cards) - len(waiting)} of {len(cards)} prompt(s) ready"
    return line + (f" (not ready: {', '.join(waiting)})" if waiting else "")


def as_json(cards: Sequence[Scorecard]) -> dict[str, Any]:
    """`readiness --format json`: a stable shape (schema_version 1) for programs.

    `{"schema_version": 1, "ready": bool, "prompts": [{"id", "path", "ready",
    "checks": [{"name", "status": "pass"|"fail"|"warn", "detail", "fix"}]}]}`;
    `fix` is null for a check that passed.
    """
    return {
        "schema_version": 1,
        "ready": all(card.ready for card in cards),
        "prompts": [
            {
                "id": card.prompt_id,
                "path": card.path,
                "ready": card.ready,
                "checks": [
                    {"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix}
                    for c in card.checks
                ],
            }
            for card in cards
        ],
    }


def print_scorecards(console: Console, cards: Sequence[Scorecard]) -> None:
    """One table per prompt: each check, its status, and the fix when it fails."""
    from agent_evals.report.table import Table

    for card in cards:
        table = Table(
            title=f"{card.prompt_id}: {'ready' if card.ready else 'NOT READY'}", title_justify="left"
        )
        for col in ("check", "", "detail", "fix"):
            table.add_column(col)
        for c in card.checks:
            table.add_row(c.name, _MARK[c.status], c.detail, c.fix or "")
        console.print(table)
