"""The gate report as GitHub-flavoured Markdown, for a PR comment and the job summary.

Layout, most important first: a hidden marker (so a later run can find and
update its own comment), one verdict line, gate-integrity findings, a summary
table with one row per prompt/eval set pair, then a section per pair with the
failed rules, the power note, per-grader/per-tag figures and collapsible
lists of regressed, truncated, errored, fixed, new, removed and flaky cases, and of the
cases whose grades wait for a person (`agent-evals review`). LLM-judge graders
show their agreement with people (`agent_evals.calibrate`) beside their
scores, with a warning when it is below the floor or measured on too few cases.

A regressed case shows what changed first: for JSON outputs the fields that
differ, one per line with their path (`items[2].qty`: `1` → `3`); for text a
word diff (`<del>` the baseline's words, `<ins>` the candidate's). The expected
value and both outputs in full (JSON indented) follow in a collapsed block.
Outputs cut off at `max_tokens` are named under the verdict line ("3 outputs
truncated at max_tokens=300"), and a pass -> fail whose candidate output was
cut off is listed as `truncated`, not `regressed`.

Agents: a regressed case says how its trajectory changed ("**Trajectory**: no
longer calls `lookup_policy` before `issue_refund`; 1 fewer tool call"), the other
cases whose trajectory changed are listed in their own collapsible section, and a
pair whose runs recorded trajectories shows its paired per-case figures under the
intervals ("steps per case 3.0 -> 4.1 (+1.1, 95% CI +0.8..+1.4); tool calls ...;
tokens ...; cost ..."). A run without tools shows none of this.

Everything a model or a test author wrote (outputs, case ids, reasons, tags)
is untrusted: it goes into fenced code blocks or inline code (with fences
longer than any backtick run inside), or is escaped, so no output can close a
`<details>` block, start raw HTML, break a table or @-mention anyone.

GitHub rejects comments over 65,536 characters. `render` keeps the document
under `limit` by dropping detail from the least important places first.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from agent_evals.calibrate import Calibration
from agent_evals.diff import CaseDiff, Diff, Group, Label, Totals
from agent_evals.gate import GateReport, GroupTest, PairReport, RuleResult, Status, pct, pts
from agent_evals.integrity import Finding
from agent_evals.record import CaseResult
from agent_evals.report._common import (
    TRUNCATION_HINT,
    DiffOp,
    Sentence,
    calibrations_by_grader,
    case_diffs,
    change_line,
    clip,
    condense,
    delta_phrases,
    error_key,
    expected_text,
    failing_grades,
    is_json,
    money,
    ms,
    needs_review,
    one_line,
    output_change,
    pretty_output,
    review_cases,
    run_phrase,
    score,
    score_delta,
    shown,
    side_status,
    trajectory,
    trajectory_changed,
    trajectory_sentences,
    truncated_note,
    truncation_lines,
)
from agent_evals.summary import Summary, summarize

__all__ = ["MARKER", "append_step_summary", "render"]

MARKER = "<!-- agent-evals-report -->"
OUTPUT_CHARS = 1_500
RULE_CASES = 5
MAX_FIELDS = 20
"""Changed JSON fields listed per case; the full outputs follow."""
FIELD_CHARS = 200
"""Characters of each value in a changed-field line."""

_EMOJI: dict[Status, str] = {"pass": "✅", "fail": "❌", "error": "⛔"}
_WORD: dict[Status, str] = {"pass": "pass", "fail": "fail", "error": "could not evaluate"}


# --- escaping -------------------------------------------------------------------

# ASCII punctuation that means something inline in GFM; `&<>` become entities instead.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_SPACE = re.compile(r"\s+")
_AUTOLINK = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*:|\bwww)(//|\.)")


def text(value: object) -> str:
    """Untrusted text as inline Markdown: one line, no markup, no raw HTML, no @-mentions."""
    return _inline(str(value)).strip()


def _inline(value: str) -> str:
    """`text` keeping a leading or trailing space: a piece of a line that other pieces join."""
    flat = _SPACE.sub(" ", value)
    # Only `<` can open raw HTML and only `&` an entity; a lone `>` mid-line is plain text.
    escaped = flat.replace("&", "&amp;").replace("<", "&lt;")
    escaped = _MD_SPECIAL.sub(r"\\\1", escaped)
    # A zero-width space after @ keeps GitHub from notifying whoever an output names,
    # and one inside `://` and `www.` from turning an output's address into a link.
    escaped = _AUTOLINK.sub(lambda m: f"{m.group(1)}&#8203;{m.group(2)}", escaped)
    return escaped.replace("@", "@&#8203;")


def code(value: object, *, table: bool = False) -> str:
    """Untrusted text as an inline code span, on one line.

    Backslash escapes do not work inside code spans, but GFM splits table
    cells on `|` before parsing inlines, so inside a table `|` must be `\\|`.
    """
    flat = " ".join(str(value).split()) or " "
    if table:
        flat = flat.replace("|", "\\|")
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat[0] in "` " or flat[-1] in "` " else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def fence(body: str, info: str = "") -> str:
    """A fenced code block that no content can close: the fence outruns any backtick run inside."""
    body = body.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{body.removesuffix(chr(10))}\n{ticks}"


def summary_tag(label: str, *, open_: bool = False) -> str:
    # Markdown is not parsed inside <summary>, so escape for HTML, not Markdown.
    return f"<details{' open' if open_ else ''}>\n<summary>{html.escape(label)}</summary>"


def details(label: str, body: Sequence[str], *, open_: bool = False) -> str:
    # The blank lines end the HTML block so the body is parsed as Markdown, and let </details> start one.
    return "\n\n".join([summary_tag(label, open_=open_), *body, "</details>"])


def _ids(ids: Sequence[str], cap: int | None) -> str:
    shown_ids = list(ids if cap is None else ids[:cap])
    more = len(ids) - len(shown_ids)
    out = ", ".join(code(i) for i in shown_ids)
    if more:
        out += f"{', ' if out else ''}and {more:,} more"
    return out


def count(n: int, what: str) -> str:
    """`1 regressed case`, `3 regressed cases`."""
    return f"{n:,} {what} case" if n == 1 else f"{n:,} {what} cases"


# --- how much to show ---------------------------------------------------------------


@dataclass(frozen=True)
class Detail:
    """How much of each section to show; `None` is everything.

    Attributes:
        full: regressed cases shown in full (expected, both outputs, reasons), per pair.
        brief: fixed, errored and failing cases listed one line each, per section.
        ids: case ids listed where only ids are shown (rules, findings, new, removed, flaky).
        output: characters of each output and expected value.
    """

    full: int | None
    brief: int | None
    ids: int | None
    output: int


FULL = Detail(full=None, brief=None, ids=None, output=OUTPUT_CHARS)
# Lists of fixed, errored, new, removed and flaky cases matter least: they are capped first.
CAPPED = Detail(full=None, brief=20, ids=30, output=OUTPUT_CHARS)
# Regressed cases shown in full before outputs are shortened below OUTPUT_CHARS.
MIN_FULL = 10
# Then, least detail last: shorter outputs, fewer cases in full, finally ids only.
SHRINK: tuple[Detail, ...] = (
    Detail(full=MIN_FULL, brief=10, ids=20, output=800),
    Detail(full=MIN_FULL, brief=10, ids=20, output=400),
    Detail(full=MIN_FULL, brief=5, ids=15, output=200),
    Detail(full=5, brief=5, ids=10, output=200),
    Detail(full=5, brief=3, ids=10, output=100),
    Detail(full=0, brief=0, ids=5, output=0),
)


def truncation_note(limit: int) -> str:
    return f"truncated to stay under {limit:,} characters; full report in the JSON/JUnit artifacts"


# --- the document ----------------------------------------------------------------------


def render(report: GateReport, *, limit: int = 60_000) -> str:
    """The report as a PR comment, under `limit` characters.

    When everything does not fit, detail goes from the least important places
    first: the lists of fixed, errored, new and removed cases are capped; then
    as many regressed cases as fit are shown in full (at least `MIN_FULL`), the
    rest by id; then outputs are shortened; then cases are listed by id only.
    The verdict, the integrity findings and the tables always stay.

    Args:
        report: the gate's outcome for every prompt/eval set pair.
        limit: the largest document to return, in characters (GitHub allows 65,536).

    Returns:
        GitHub-flavoured Markdown whose first line is `MARKER`.

    Raises:
        ValueError: `limit` is too small for even the verdict line.
    """
    whole = _document(report, FULL, note=None)
    if len(whole) <= limit:
        return whole
    note = truncation_note(limit)

    def fit(detail: Detail, *, sections: bool = True, table: bool = True) -> str | None:
        md = _document(report, detail, note=note, sections=sections, table=table)
        return md if len(md) <= limit else None

    capped = fit(CAPPED)
    if capped is not None:
        return capped
    most = max((len(p.diff.outcome("regressed")) for p in report.pairs if p.diff), default=0)
    best = fit(replace(CAPPED, full=MIN_FULL)) if most > MIN_FULL else None
    if best is not None:
        # The document grows with every case shown in full: find the most that fit.
        lo, hi = MIN_FULL, most
        while lo < hi:
            mid = (lo + hi + 1) // 2
            candidate = fit(replace(CAPPED, full=mid))
            if candidate is not None:
                lo, best = mid, candidate
            else:
                hi = mid - 1
        return best
    last = SHRINK[-1]
    # Then shorter outputs and fewer cases; with hundreds of pairs, no pair sections, then no table.
    for attempt in (
        *((d, True, True) for d in SHRINK),
        (last, False, True),
        (last, False, False),
    ):
        detail, sections, table = attempt
        md = fit(detail, sections=sections, table=table)
        if md is not None:
            return md
    bare = "\n\n".join([MARKER, verdict_line(report), f"_{text(note)}_"]) + "\n"
    if len(bare) <= limit:
        return bare
    raise ValueError(f"limit {limit:,} is too small for the verdict line")


def verdict_line(report: GateReport) -> str:
    return f"{_EMOJI[report.status]} **{text(report.headline())}**"


def _document(
    report: GateReport, detail: Detail, *, note: str | None, sections: bool = True, table: bool = True
) -> str:
    blocks = [MARKER, verdict_line(report)]
    stale = freshness_block(report.pairs)
    if stale:
        blocks.append(stale)
    cut = truncation_block(report.pairs)
    if cut:
        blocks.append(cut)
    findings = findings_block(report.pairs, detail)
    if findings:
        blocks.append(findings)
    if report.pairs and report.message:
        blocks.append(text(report.message))
    if report.pairs and table:
        blocks.append(summary_table(report.pairs))
    elif report.pairs:
        blocks.append(
            f"_{len(report.pairs):,} prompt/eval set pairs: the summary table is in the JSON report._"
        )
    if note:
        blocks.append(f"> [!NOTE]\n> {text(note)}")
    if sections:
        for pair in report.pairs:
            blocks.append(pair_section(pair, detail))
    blocks.append(footer(report))
    return "\n\n".join(blocks) + "\n"


def truncation_block(pairs: Sequence[PairReport]) -> str | None:
    """`✂️ 3 outputs truncated at max_tokens=300`, per pair and run, with what it means for the gate."""
    per_pair = [(p, truncation_lines(p)) for p in pairs]
    per_pair = [(p, lines) for p, lines in per_pair if lines]
    if not per_pair:
        return None
    if len(pairs) == 1:
        body = [f"> - {text(line)}" for line in per_pair[0][1]]
    else:
        body = [
            f"> - {code(p.prompt_id)} / {code(p.evalset_id)}: {text('; '.join(lines))}"
            for p, lines in per_pair
        ]
    return "\n".join(
        [
            "> [!CAUTION]",
            "> ✂️ **Outputs cut off at max\\_tokens**",
            ">",
            *body,
            ">",
            f"> _{text(TRUNCATION_HINT)}._",
        ]
    )


def freshness_block(pairs: Sequence[PairReport]) -> str | None:
    """`🧭 eval set ticket-triage is stale: 23.0% of production traffic ... fix: agent-evals sample ...`,
    one line per pair whose eval set's latest freshness check (`freshness.attach`) is stale."""
    lines = []
    for pair in pairs:
        check = pair.freshness
        if check is None or check.status != "stale":
            continue
        figures = check.figures
        share = figures.get("uncovered_share")
        gap = [*figures.get("missing", ()), *figures.get("under", ())]
        when = f" in {check.window[0]:%Y-%m-%d}..{check.window[1]:%Y-%m-%d}" if check.window else ""
        line = (
            f"> 🧭 Eval set {code(pair.evalset_id)} is stale: "
            f"{100 * float(share or 0):.1f}% of production traffic{when} is not covered"
            f" (over {100 * float(figures.get('max_uncovered_share') or 0):.1f}%)"
        )
        if gap:
            line += f", in {', '.join(code(g) for g in gap[:5])}" + (
                f" and {len(gap) - 5} more" if len(gap) > 5 else ""
            )
        command = figures.get("command")
        line += f". Fix: {code(command)}" if command else "."
        lines.append(line)
    if not lines:
        return None
    return "\n".join(["> [!WARNING]", *(f"{line}\n>" for line in lines[:-1]), lines[-1]])


def findings_block(pairs: Sequence[PairReport], detail: Detail) -> str | None:
    """Every gate-integrity finding, named by pair, rule, old and new value and cases."""
    items: list[tuple[PairReport, Finding, bool]] = []
    for pair in pairs:
        accepted = any(r.rule == "gate_integrity" and r.passed for r in pair.verdict.rules)
        items += [(pair, f, accepted) for f in pair.verdict.findings]
    if not items:
        return None
    all_accepted = all(accepted for _, _, accepted in items)
    head = (
        "**Gate integrity: this change moves the bar; accepted with `--accept-policy-change`.**"
        if all_accepted
        else "**Gate integrity: this change moves the bar.** Review it; if it is intended, "
        "re-run with `--accept-policy-change`."
    )
    lines = ["> [!WARNING]", f"> {head}", ">"]
    for pair, f, accepted in items:
        cases = f"; cases: {_ids(f.cases, detail.ids)}" if f.cases else ""
        lines.append(
            f"> - {code(pair.prompt_id)} / {code(pair.evalset_id)}: {code(f.rule)} "
            f"{code(f.old)} → {code(f.new)}{cases}{' (accepted)' if accepted and not all_accepted else ''}"
        )
    return "\n".join(lines)


# --- the summary table ---------------------------------------------------------------------


def _arrow(base: str | None, cand: str) -> str:
    return f"{base or '—'} → {cand}"


def _row(pair: PairReport) -> list[str]:
    verdict = f"{_EMOJI[pair.verdict.status]} {_WORD[pair.verdict.status]}"
    name = f"{code(pair.prompt_id, table=True)} / {code(pair.evalset_id, table=True)}"
    d = pair.diff
    if d is not None:
        o = d.overall
        bt, ct = d.base_totals, d.cand_totals
        return [
            name,
            pair.change,
            verdict,
            f"{_arrow(pct(o.base_pass_rate), pct(o.cand_pass_rate))} ({_bold_if_negative(pts(o.pass_delta))})",
            f"{_arrow(score(o.base_mean_score), score(o.cand_mean_score))} ({score_delta(o.score_delta)})",
            f"{len(d.labelled('regressed')):,} / {len(d.outcome('fixed')):,}"
            + (f" (✂️ {n:,} truncated)" if (n := len(d.labelled("truncated"))) else ""),
            f"{_arrow(money(bt.cost_usd), money(ct.cost_usd))} ({_money_delta(bt, ct)})",
            _arrow(ms(bt.latency_p50_ms), ms(ct.latency_p50_ms)),
        ]
    s = summarize(pair.cand.cases) if pair.cand is not None else None
    return [
        name,
        pair.change,
        verdict,
        _arrow(None, pct(s.pass_rate) if s else "n/a"),
        _arrow(None, score(s.mean_score) if s else "n/a"),
        "—",
        _arrow(None, money(s.cost_usd) if s else "n/a"),
        _arrow(None, ms(s.latency_p50_ms) if s else "n/a"),
    ]


def _bold_if_negative(delta: str) -> str:
    return f"**{delta}**" if delta.startswith("-") else delta


def _money_delta(base: Totals, cand: Totals) -> str:
    delta = cand.cost_usd - base.cost_usd
    return f"{'+' if delta >= 0 else '-'}${abs(delta):.4f}"


def _table(header: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> str:
    sep = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(sep[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def summary_table(pairs: Sequence[PairReport]) -> str:
    """One row per prompt/eval set pair: baseline → candidate, with deltas."""
    return _table(
        [
            "prompt / eval set",
            "change",
            "verdict",
            "pass rate",
            "mean score",
            "regressed / fixed",
            "cost",
            "latency p50",
        ],
        "lllllrll",
        [_row(p) for p in pairs],
    )


# --- one pair ------------------------------------------------------------------------------


def pair_section(pair: PairReport, detail: Detail) -> str:
    v = pair.verdict
    blocks = [
        f"### {_EMOJI[v.status]} {code(pair.prompt_id)} / {code(pair.evalset_id)}",
        f"**{text(v.headline)}**",
    ]
    context = _context(pair)
    if context:
        blocks.append(context)
    if pair.note:
        blocks.append(f"_{text(pair.note)}_")
    failed = v.failed
    if failed:
        blocks.append("**Failed rules**\n\n" + "\n".join(_rule_line(r) for r in failed))
    blocks += _figures(pair)
    judges = calibration_block(pair)
    if judges is not None:
        blocks.append(judges)
    calibrations = calibrations_by_grader(pair)
    if pair.diff is not None:
        blocks.append(groups_table(pair.diff, v.tests, calibrations))
        blocks += diff_sections(pair, pair.diff, detail)
    elif pair.cand is not None:
        s = summarize(pair.cand.cases)
        if s.graders:
            blocks.append(_new_graders_table(s, calibrations))
        blocks += new_sections(pair, detail)
    review = review_section(pair, detail)
    if review is not None:
        blocks.append(review)
    return "\n\n".join(blocks)


def review_section(pair: PairReport, detail: Detail) -> str | None:
    """The candidate cases whose grades wait for a person: case, grader and why (collapsible)."""
    needs = needs_review(pair)
    if not needs:
        return None
    n = len(review_cases(needs))
    label = f"{n:,} case needs human review" if n == 1 else f"{n:,} cases need human review"
    listed = needs if detail.brief is None else needs[: detail.brief]
    lines = [f"- {code(r.case_id)} — {code(r.grader)}: {text(one_line(r.why, 200))}" for r in listed]
    rest = needs[len(listed) :]
    if rest:
        lines.append(f"- … and {len(rest):,} more: {_ids(review_cases(rest), detail.ids)}")
    explain = (
        "_their grades are provisional until a person decides: run "
        f"{code(f'agent-evals review --evalset {pair.evalset_id}')} and commit the verdicts "
        f"({code(pair.evalset_id + '.reviews.jsonl')} beside the eval set):_"
    )
    return details(label, [explain, "\n".join(lines)])


def _context(pair: PairReport) -> str | None:
    cand = pair.cand or (pair.diff.cand if pair.diff else None)
    if cand is None:
        return None
    parts = []
    h = cand.header
    version = h.prompt.get("version")
    if pair.diff is not None:
        base_version = pair.diff.base.header.prompt.get("version")
        if base_version is not None and version is not None and base_version != version:
            parts.append(f"prompt version {code(base_version)} → {code(version)}")
        elif version is not None:
            parts.append(f"prompt version {code(version)}")
        base_model, cand_model = pair.diff.base.header.provider.get("model"), h.provider.get("model")
        if cand_model:
            parts.append(
                f"model {code(cand_model)}"
                if base_model in (None, cand_model)
                else f"model {code(base_model)} → {code(cand_model)}"
            )
    else:
        if version is not None:
            parts.append(f"prompt version {code(version)}")
        if h.provider.get("model"):
            parts.append(f"model {code(h.provider['model'])}")
    if pair.evalset_path:
        parts.append(f"eval set {code(pair.evalset_path)}")
    return " · ".join(parts) or None


def _rule_line(rule: RuleResult) -> str:
    mark = "⛔" if rule.severity == "error" else "❌"
    cases = f" — {_ids(rule.cases, RULE_CASES)}" if rule.cases else ""
    return f"- {mark} {code(rule.rule)}: {text(rule.message)}{cases}"


def _figures(pair: PairReport) -> list[str]:
    v = pair.verdict
    cis = []
    # The gate computes both intervals at the stats module's default 95% coverage.
    if v.cand_pass_ci is not None:
        lo, hi = v.cand_pass_ci
        cis.append(f"candidate pass rate 95% CI {pct(lo)} to {pct(hi)}")
    if v.score_delta_ci is not None:
        lo, hi = v.score_delta_ci
        cis.append(f"mean score change 95% CI {score_delta(lo)} to {score_delta(hi)}")
    out = ["📏 " + "; ".join(cis)] if cis else []
    if pair.diff is not None:
        per_case = delta_phrases(pair.diff)
        if per_case:
            n = pair.diff.overall.n
            out.append(f"🧭 Paired over {n:,} cases: " + "; ".join(text(p) for p in per_case))
    elif pair.cand is not None and (alone := run_phrase(summarize(pair.cand.cases))) is not None:
        out.append(f"🧭 {text(alone)}")
    if v.power is not None:
        out.append(f"🔎 Power: {text(v.power.sentence())}")
    return out


def calibration_block(pair: PairReport) -> str | None:
    """Each LLM judge's agreement with people: a warning below the floor or on too few cases."""
    if not pair.calibrations:
        return None
    lines = []
    for c in pair.calibrations:
        if c.warnings:
            lines += [f"- ⚠️ {text(w)}" for w in c.warnings]
        else:
            lines.append(f"- ✅ judge {code(c.grader)} agrees with people on {text(c.summary())}")
        if c.n and c.corrected_pass_rate is not None and c.observed_pass_rate is not None:
            lines.append(
                f"  - pass rate corrected for the judge's errors: {pct(c.corrected_pass_rate)} "
                f"(the judge passed {pct(c.observed_pass_rate)})"
            )
        elif c.n and c.corrected_note is not None:
            lines.append(f"  - pass rate corrected for the judge's errors: {text(c.corrected_note)}")
    return "⚖️ **Judge agreement with people**\n\n" + "\n".join(lines)


def _agreement_cell(c: Calibration | None) -> str:
    if c is None:
        return "—"
    return text(c.summary()) + (" ⚠️" if c.warnings else "")


def groups_table(
    d: Diff, tests: Sequence[GroupTest], calibrations: Mapping[str, Calibration] | None = None
) -> str:
    """Paired figures overall, per grader and per tag, with their tests (collapsible).

    With `calibrations`, an "agreement with people" column shows each LLM
    judge's agreement beside its figures.
    """
    by_label = {t.group: t for t in tests}
    groups: list[tuple[str, Group]] = [("overall", d.overall)]
    # A tag carried only by new or removed cases has no pairs to compare: leave it out.
    groups += [(f"grader {g.name}", g) for g in d.graders if g.n]
    groups += [(f"tag {g.name}", g) for g in d.tags if g.n]
    rows = []
    for label, g in groups:
        t = by_label.get(label)
        name = "overall" if g.kind == "overall" else f"{g.kind} {code(g.name, table=True)}"
        p = "—" if t is None else _p_cell(t)
        row = [
            name,
            f"{g.n:,}",
            _arrow(pct(g.base_pass_rate), pct(g.cand_pass_rate)),
            _bold_if_negative(pts(g.pass_delta)),
            f"{_arrow(score(g.base_mean_score), score(g.cand_mean_score))} ({score_delta(g.score_delta)})",
            f"{g.regressions:,} / {g.fixes:,}",
            p,
        ]
        if calibrations:
            row.append(_agreement_cell(calibrations.get(g.name) if g.kind == "grader" else None))
        rows.append(row)
    header = ["group", "n", "pass rate", "Δ", "mean score", "regressed / fixed", "p"]
    align = "lrlrlrr"
    if calibrations:
        header, align = [*header, "agreement with people"], align + "l"
    table = _table(header, align, rows)
    return details(
        "Per grader and per tag",
        [
            table,
            "_p: one-sided paired test that the candidate is worse. The overall test runs at full alpha; "
            "the other groups are tested behind it (Holm), shown as raw → adjusted; a group with the same "
            "outcomes as another shares its test (the method of each is in the JSON report)._",
        ],
    )


def _p_cell(t: GroupTest) -> str:
    return t.p_cell(_p) + (" **significant**" if t.significant and t.same_as is None else "")


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def _new_graders_table(s: Summary, calibrations: Mapping[str, Calibration] | None = None) -> str:
    rows = [
        [
            code(g.name, table=True),
            f"{pct(g.pass_rate)} ({g.passed:,}/{g.graded:,})",
            score(g.mean_score),
            f"{g.errors:,}",
            *([_agreement_cell(calibrations.get(g.name))] if calibrations else []),
        ]
        for g in s.graders
    ]
    header = ["grader", "pass rate", "mean score", "errors"]
    align = "lrrr"
    if calibrations:
        header, align = [*header, "agreement with people"], align + "l"
    return details("Per grader", [_table(header, align, rows)])


# --- case lists --------------------------------------------------------------------------------


def diff_sections(pair: PairReport, d: Diff, detail: Detail) -> list[str]:
    out = []
    regressed = d.labelled("regressed")
    if regressed:
        out.append(_full_cases("regressed", regressed, detail, open_=pair.verdict.status == "fail"))
    truncated = d.labelled("truncated")
    if truncated:
        out.append(_full_cases("truncated", truncated, detail, open_=pair.verdict.status == "fail"))
    errored = d.outcome("errored")
    if errored:
        out.append(_errored_cases(count(len(errored), "errored"), errored, detail))
    fixed = d.outcome("fixed")
    if fixed:
        out.append(_brief_cases(count(len(fixed), "fixed"), fixed, _fixed_line, detail))
    moved = [c for c in d.cases if c.label not in ("regressed", "truncated") and trajectory_changed(c)]
    if moved:
        out.append(
            _brief_cases(
                f"{count(len(moved), 'other')} with a changed trajectory",
                moved,
                _trajectory_line,
                detail,
            )
        )
    for word, cases, explain in (
        ("new", d.outcome("new"), "in the candidate run only; not compared"),
        ("removed", d.outcome("removed"), "in the baseline run only"),
        ("still failing", d.outcome("still_failing"), "fail in both runs; not counted against this change"),
    ):
        if cases:
            out.append(
                details(
                    count(len(cases), word),
                    [f"_{explain}:_ {_ids([c.case_id for c in cases], detail.ids)}"],
                )
            )
    flaky = d.flaky
    if flaky:
        out.append(
            details(
                count(len(flaky), "flaky"),
                [
                    "_repeats disagree; each case counts by the share of its repeats that passed:_",
                    _flaky_list(flaky, detail.ids),
                ],
            )
        )
    return out


def new_sections(pair: PairReport, detail: Detail) -> list[str]:
    """Case lists for a pair with no baseline: failing and errored candidate cases."""
    cases = case_diffs(pair)
    failing = [c for c in cases if c.cand is not None and c.cand.passed is False]
    errored = [c for c in cases if c.cand is not None and c.cand.passed is None]
    out = []
    if errored:
        out.append(_errored_cases(count(len(errored), "errored"), errored, detail))
    if failing:
        out.append(_brief_cases(count(len(failing), "failing"), failing, _failing_line, detail))
    return out


_SECTION_NOTE: dict[Label, str] = {
    "truncated": "passed in the baseline, fail in the candidate on an output cut off at max_tokens: "
    + TRUNCATION_HINT,
}


def _full_cases(word: Label, cases: Sequence[CaseDiff], detail: Detail, *, open_: bool) -> str:
    listed = cases if detail.full is None else cases[: detail.full]
    note = _SECTION_NOTE.get(word)
    body = ([f"_{text(note)}._"] if note else []) + [_full_case(c, detail) for c in listed]
    rest = cases[len(listed) :]
    if rest:
        body.append(
            f"_… and {len(rest):,} more {word} {'case' if len(rest) == 1 else 'cases'} "
            f"(full detail in the JSON/JUnit artifacts):_ {_ids([c.case_id for c in rest], detail.ids)}"
        )
    label = count(len(cases), word)
    return details(f"✂️ {label}" if word == "truncated" else label, body, open_=open_)


def _output_block(label: str, value: str | None, detail: Detail) -> str:
    if value is None:
        return f"**{label}**: _(none)_"
    readable = pretty_output(value)
    body, cut = clip(readable, detail.output)
    info = "json" if is_json(value) else ""
    block = f"**{label}**\n\n{fence(body, info)}"
    if cut:
        block += f"\n\n_(shortened: {len(body):,} of {len(readable):,} characters shown)_"
    return block


def _conversation(base: CaseResult | None, cand: CaseResult | None, detail: Detail) -> str | None:
    """A conversation case turn by turn: what the user said, each side's answer, the turn's failing grades.

    Collapsed; None for a case without turns. Each turn's per-turn grades (`turns: each`
    graders) that failed on the candidate are named, so the turn that went wrong stands out.
    """
    turns = {t.turn: t for t in (cand.turns if cand else ())}
    before = {t.turn: t for t in (base.turns if base else ())}
    if not turns and not before:
        return None
    blocks = []
    for number in sorted({*turns, *before}):
        now, then = turns.get(number), before.get(number)
        either = now or then
        said = either.user if either is not None else None
        lines = [f"**Turn {number}**" + (f": {text(one_line(said, 300))}" if said else "")]
        failed = [g for g in (now.grades if now else ()) if g.passed is False]
        lines += [f"- ❌ **{text(g.grader)}**: {text(one_line(g.reason, 200))}" for g in failed]
        body = "\n".join(lines)
        answers = [
            _output_block("Baseline", then.output if then else None, detail),
            _output_block("Candidate", now.output if now else None, detail),
        ]
        blocks.append(body + "\n\n" + "\n\n".join(answers))
    return details(f"Conversation ({len(blocks)} turns)", blocks)


def change_block(base: str | None, cand: str | None, detail: Detail) -> str | None:
    """What changed from the baseline's output to the candidate's, first thing under a regressed case.

    JSON: one line per changed field, `path`: `old` → `new` (values in code spans, so no output
    can break out). Text: the words that changed, with a little context, as escaped inline
    text between `<del>` and `<ins>` (GitHub keeps both tags); long unchanged stretches are `…`.
    """
    change = output_change(base, cand)
    if change is None:
        return None
    if change.kind == "same":
        return "_The baseline and candidate outputs are identical._"
    if change.kind == "json":
        width = min(FIELD_CHARS, max(detail.output, 20))
        lines = [_field_line(*change_line(f, width), kind=f.kind) for f in change.fields[:MAX_FIELDS]]
        more = len(change.fields) - MAX_FIELDS
        if more > 0:
            lines.append(f"- … and {more:,} more changed {'field' if more == 1 else 'fields'}")
        return "**Changed fields** (baseline → candidate)\n\n" + "\n".join(lines)
    return "**Changed words** (baseline → candidate): " + _word_line(change.words, detail.output)


def _field_line(path: str, old: str, new: str, *, kind: str) -> str:
    if kind == "added":
        return f"- {code(path)}: added {code(new)}"
    if kind == "removed":
        return f"- {code(path)}: removed (was {code(old)})"
    return f"- {code(path)}: {code(old)} → {code(new)}"


def _word_line(ops: Sequence[DiffOp], budget: int) -> str:
    if all(kind == "=" or not segment.strip() for kind, segment in ops):
        return "_the outputs differ only in whitespace_"
    out: list[str] = []
    used = 0
    previous = "="
    for kind, segment in condense(ops):
        # A replacement reads `<del>old</del> <ins>new</ins>`, not run together.
        gap, previous = (" " if previous == "-" and kind == "+" else ""), kind
        if used >= budget:
            out.append(" …")
            break
        piece, _ = clip(segment, budget - used)
        used += len(piece)
        if kind == "=" or not piece.strip():
            # A changed run of spaces alone would be an invisible mark.
            out.append(_inline(piece) if kind != "-" else "")
            continue
        lead, core, trail = _edges(piece)
        tag = "del" if kind == "-" else "ins"
        out.append(f"{gap}{_inline(lead)}<{tag}>{_inline(core)}</{tag}>{_inline(trail)}")
    return "".join(out).strip()


def _edges(piece: str) -> tuple[str, str, str]:
    core = piece.strip()
    start = piece.index(core[0])
    return piece[:start], core, piece[start + len(core) :]


def _full_case(c: CaseDiff, detail: Detail) -> str:
    base = shown(c.base, failing=False)
    cand = shown(c.cand, failing=True)
    meta = [f"baseline {side_status(c.base)} → candidate {side_status(c.cand)}"]
    if c.tags:
        meta.insert(0, "tags " + ", ".join(code(t) for t in c.tags))
    for side, result in (("baseline", base), ("candidate", cand)):
        note = truncated_note(result)
        if note:
            meta.append(f"✂️ {side} {note}")
    head = f"#### {code(c.case_id)}\n\n" + " · ".join(meta)
    reasons = failing_grades(cand)
    parts = [head]
    if reasons:
        parts.append("\n".join(f"- ❌ **{text(g)}**: {text(r)}" for g, r in reasons))
    moves = trajectory_sentences(trajectory(c))
    if moves:
        parts.append("**Trajectory**: " + "; ".join(sentence(m) for m in moves))
    if detail.output:
        change = change_block(base.output if base else None, cand.output if cand else None, detail)
        if change:
            parts.append(change)
        conversation = _conversation(base, cand, detail)
        if conversation:
            parts.append(conversation)
        parts.append(
            details(
                "Expected and both outputs in full",
                [
                    _output_block("Expected", expected_text(c.expected), detail),
                    _output_block("Baseline output", base.output if base else None, detail),
                    _output_block("Candidate output", cand.output if cand else None, detail),
                ],
            )
        )
    return "\n\n".join(parts)


def _brief_cases(
    label: str, cases: Sequence[CaseDiff], line: Callable[[CaseDiff, Detail], str], detail: Detail
) -> str:
    listed = cases if detail.brief is None else cases[: detail.brief]
    body = "\n".join(line(c, detail) for c in listed)
    rest = cases[len(listed) :]
    if rest:
        body += (
            "\n\n" if body else ""
        ) + f"_… and {len(rest):,} more:_ {_ids([c.case_id for c in rest], detail.ids)}"
    return details(label, [body])


def _reason_text(reasons: list[tuple[str, str]]) -> str:
    return "; ".join(f"{g}: {one_line(r, 200)}" for g, r in reasons)


def _tags(c: CaseDiff) -> str:
    return f" ({', '.join(code(t) for t in c.tags)})" if c.tags else ""


def sentence(s: Sentence) -> str:
    """A trajectory sentence: its prose escaped, its tool names and values in code spans."""
    return "".join(code(part) if i % 2 else _inline(part) for i, part in enumerate(s.parts)).strip()


_OUTCOME_WORDS: dict[str, str] = {
    "fixed": "fixed",
    "still_passing": "still passing",
    "still_failing": "still failing",
    "errored": "errored",
}


def _trajectory_line(c: CaseDiff, detail: Detail) -> str:
    moves = "; ".join(sentence(m) for m in trajectory_sentences(trajectory(c)))
    return f"- {code(c.case_id)} ({_OUTCOME_WORDS.get(c.outcome, c.outcome)}){_tags(c)} — {moves}"


def _fixed_line(c: CaseDiff, detail: Detail) -> str:
    base = shown(c.base, failing=True)
    why = _reason_text(failing_grades(base))
    note = truncated_note(base)
    return (
        f"- {code(c.case_id)}{_tags(c)}"
        + (f" — the baseline failed: {text(why)}" if why else "")
        + (f" (✂️ baseline {text(note)})" if note else "")
    )


def _failing_line(c: CaseDiff, detail: Detail) -> str:
    cand = shown(c.cand, failing=True)
    why = _reason_text(failing_grades(cand))
    note = truncated_note(cand)
    return (
        f"- {code(c.case_id)}{_tags(c)}"
        + (f" — {text(why)}" if why else "")
        + (f" (✂️ {text(note)})" if note else "")
    )


def _errored_line(c: CaseDiff, detail: Detail) -> str:
    return f"- {code(c.case_id)}{_tags(c)} — " + _errored_what(c)


def _errored_what(c: CaseDiff, *, key: Callable[[str], str] = lambda e: e) -> str:
    parts = []
    for side, s in (("baseline", c.base), ("candidate", c.cand)):
        if s is not None and s.passed is None:
            status = side_status(s)
            parts.append(f"{side} {status}" + (f": {code(one_line(key(s.error), 300))}" if s.error else ""))
    return "; ".join(parts)


def _errored_cases(label: str, cases: Sequence[CaseDiff], detail: Detail) -> str:
    """The errored cases, each distinct error once.

    A provider that is down fails every case with the same words; one line per case
    would repeat them hundreds of times. Cases that share an error are one line
    (`×44`, the error, their ids); an error only one case met keeps its own line.
    """
    groups: dict[str, list[CaseDiff]] = {}
    for c in cases:
        groups.setdefault(_errored_what(c, key=error_key), []).append(c)
    if len(groups) == len(cases):
        return _brief_cases(label, cases, _errored_line, detail)
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    listed = ordered if detail.brief is None else ordered[: detail.brief]
    lines = [
        _errored_line(members[0], detail)
        if len(members) == 1
        else f"- ×{len(members):,} — {what}: {_ids([c.case_id for c in members], detail.ids)}"
        for what, members in listed
    ]
    rest = [c for _, members in ordered[len(listed) :] for c in members]
    if rest:
        lines.append(f"\n_… and {len(rest):,} more:_ {_ids([c.case_id for c in rest], detail.ids)}")
    return details(label, ["\n".join(lines)])


def _flaky_list(cases: Sequence[CaseDiff], cap: int | None) -> str:
    listed = cases if cap is None else cases[:cap]
    lines = [
        f"- {code(c.case_id)}: baseline {pct(c.base.pass_rate) if c.base else 'n/a'}, "
        f"candidate {pct(c.cand.pass_rate) if c.cand else 'n/a'} of repeats passed"
        for c in listed
    ]
    if len(cases) > len(listed):
        lines.append(f"- … and {len(cases) - len(listed):,} more")
    return "\n".join(lines)


def footer(report: GateReport) -> str:
    parts = []
    version = next(
        (
            rec.header.tool_version
            for p in report.pairs
            for rec in (p.cand or (p.diff.cand if p.diff else None),)
            if rec is not None
        ),
        None,
    )
    parts.append(f"agent-evals {html.escape(version)}" if version else "agent-evals")
    if report.base_ref:
        parts.append(f"baseline {code(report.base_ref)}")
    if report.merge_base:
        parts.append(f"merge base {code(report.merge_base[:12])}")
    parts.append("full detail in the JSON/JUnit artifacts")
    return "<sub>" + " · ".join(parts) + "</sub>"


# --- the job summary --------------------------------------------------------------------------


def append_step_summary(markdown: str, *, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append `markdown` to the GitHub Actions job summary, when there is one.

    Args:
        markdown: the rendered report.
        environ: the environment to read `GITHUB_STEP_SUMMARY` from (default: `os.environ`).

    Returns:
        The summary file written to, or None outside GitHub Actions.
    """
    target = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        # Several steps may append to one summary; keep each report its own block.
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
        fh.write("\n")
    return path
