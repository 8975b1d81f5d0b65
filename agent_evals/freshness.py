"""Eval set freshness: does the eval set still look like today's production traffic?

`assess` holds an eval set up against a window of production rows (`monitor.read_window`,
mapped and redacted like `sample` reads them) and concludes one `checks.Check` of kind
`freshness`:

- **Strata** (the eval set's `monitor.stratify_by`: a mapped var, expected field or tag). Each
  stratum of the window gets the number of cases `sample --stratify-by S --min-per-stratum M`
  would give it on today's traffic (`sampling._select.allocate`: the minimum first, the rest in
  proportion). A stratum with no case is *missing*; one with fewer cases than that, by a
  one-sided exact binomial test (scipy) of its count among the eval set's cases against the
  target share, Holm-adjusted over the strata and judged at the policy's `alpha`, is
  *under-represented*. A fixed ratio would flag every small eval set; the test names a stratum
  only when its shortfall is more than chance.
- **Text** (always, when the inputs have text): TF-IDF of the window's inputs, k-means
  (scikit-learn, seeded), each case assigned to its nearest cluster; clusters with no case are
  uncovered, shown with their top terms and a few example inputs (already redacted).
- **The uncovered share**: the share of the window's rows in missing or under-represented strata
  (with `stratify_by`), else in uncovered text clusters. Above `monitor.max_uncovered_share`
  the check is `stale`, else `ok`; an empty window is `cannot_tell`.
- **The fix**: the exact `agent-evals sample LOG --prompt P --append --n N --stratify-by S
  --since ... --query ...` command that samples the gap (N: each missing stratum gets the
  minimum, each under-represented one what it lacks, never more than the window has).

`run` is the `agent-evals freshness` command without the CLI; `latest` reads the last stored
freshness check of an eval set (for `readiness` and the PR comment); `attach` puts it on the
gate report's pairs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_evals.checks import Check, CheckStatus, WindowRow

if TYPE_CHECKING:
    from rich.console import Console

    from agent_evals.gate import GateReport
    from agent_evals.history.store import Store
    from agent_evals.models import Case, EvalSet, MonitorPolicy

__all__ = [
    "DEFAULT_CLUSTERS",
    "DEFAULT_MIN_PER_STRATUM",
    "MISSING_STRATUM",
    "as_json",
    "assess",
    "attach",
    "latest",
    "print_check",
    "run",
    "sample_command",
]

DEFAULT_MIN_PER_STRATUM = 5
"""`sample`'s own default for `--min-per-stratum`: the command leaves it out when it is this."""
DEFAULT_CLUSTERS = 8
MISSING_STRATUM = "(missing)"
"""The stratum of a row or case without the stratify_by field (as `sample` names it)."""
EXAMPLES = 3
"""Example inputs shown per uncovered cluster."""
EXAMPLE_CHARS = 160
MAX_TEXT_ROWS = 20_000
"""Rows clustered at most (a seeded random subset of a larger window): shares are estimates then."""
TOP_TERMS = 5


@dataclass(frozen=True)
class _Stratum:
    name: str
    rows: int
    cases: int
    target: int
    p_value: float | None
    state: str  # covered | missing | under

    def figure(self, total: int) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "share": self.rows / total,
            "cases": self.cases,
            "target": self.target,
            "p_value": self.p_value,
            "state": self.state,
        }


# --- the assessment ----------------------------------------------------------------------------


def assess(
    evalset: EvalSet,
    rows: Sequence[WindowRow],
    policy: MonitorPolicy,
    *,
    now: dt.datetime,
    log: str = "LOG",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    min_per_stratum: int = DEFAULT_MIN_PER_STRATUM,
    clusters: int = DEFAULT_CLUSTERS,
    seed: int = 0,
    map_file: str | None = None,
    output: str | None = None,
    mapped: bool = False,
    mapping: Mapping[str, str] | None = None,
) -> Check:
    """The eval set against a window of production rows: what it misses, and the command that fills it.

    Args:
        evalset: the eval set (its cases and id).
        rows: the window's rows (`monitor.read_window(...).rows`).
        policy: the eval set's monitor policy (`stratify_by`, `alpha`, `max_uncovered_share`, `map`).
        now: when the check is made (naive UTC).
        log: the log as the suggested command names it.
        since, until: the window (shown, and passed to the command); default: the rows' first and
            last times.
        min_per_stratum: the fewest cases a stratum should have (as `sample --min-per-stratum`).
        clusters: text clusters (k-means over TF-IDF); fewer when the window has fewer distinct inputs.
        seed: the seed of the clustering.
        map_file: the `--map-file` the command passes (the policy's, as a path from where it runs).
        output: the `--output` the command passes, when the eval set is not `<evalsets>/<prompt>.yaml`.
        mapped, mapping: the log was mapped by `--map` pairs or `map_file` given instead of the policy's map.

    Returns:
        A `Check` of kind `freshness`: `stale`, `ok`, or `cannot_tell` for an empty window.
    """
    times = sorted(r.at for r in rows if r.at is not None)
    start = since or (times[0] if times else None)
    end = until or (times[-1] if times else None)
    window = (start, end) if start is not None and end is not None else None
    base: dict[str, Any] = {
        "rows": len(rows),
        "cases": len(evalset.cases),
        "stratify_by": policy.stratify_by,
        "alpha": policy.alpha,
        "min_per_stratum": min_per_stratum,
        "max_uncovered_share": policy.max_uncovered_share,
    }

    def conclude(status: CheckStatus, headline: str, figures: Mapping[str, Any]) -> Check:
        return Check(
            kind="freshness",
            prompt_id=evalset.prompt,
            status=status,
            headline=headline,
            at=now,
            evalset_id=evalset.id,
            window=window,
            figures=figures,
        )

    if not rows:
        return conclude(
            "cannot_tell",
            f"freshness {evalset.id}: cannot tell (no rows in the window)",
            {**base, "uncovered_share": None, "uncovered_by": None, "command": None},
        )
    strata = (
        _strata(evalset.cases, rows, policy.stratify_by, policy.alpha, min_per_stratum)
        if policy.stratify_by
        else None
    )
    text = _clusters(evalset.cases, rows, clusters, seed, policy.alpha)
    total = len(rows)
    command: str | None = None
    n_suggested: int | None = None
    if strata is not None:
        gap = [s for s in strata if s.state != "covered"]
        uncovered = sum(s.rows for s in gap) / total
        by: str | None = "strata"
        fill = [s for s in gap if s.name != MISSING_STRATUM]
        if fill:
            n_suggested = sum(min(s.rows, max(min_per_stratum, s.target - s.cases)) for s in fill)
    else:
        gap = []
        uncovered = text["uncovered_share"] if text else 0.0
        by = "clusters" if text else None
        empty = [c for c in text["items"] if c["state"] == "uncovered"] if text else []
        if empty:
            n_suggested = sum(min(c["rows"], min_per_stratum) for c in empty)
    if n_suggested:
        command = sample_command(
            log,
            evalset.prompt,
            n=n_suggested,
            policy=policy,
            strata=[s.name for s in gap if s.name != MISSING_STRATUM],
            min_per_stratum=min_per_stratum,
            since=start,
            until=until,
            map_file=map_file,
            output=output,
            mapping=(mapping or {}) if mapped else None,
        )
    stale = uncovered > policy.max_uncovered_share
    figures = {
        **base,
        "uncovered_share": uncovered,
        "uncovered_by": by,
        "strata": [s.figure(total) for s in strata] if strata is not None else None,
        "missing": [s.name for s in gap if s.state == "missing"],
        "under": [s.name for s in gap if s.state == "under"],
        "eval_only": _eval_only(evalset.cases, rows, policy.stratify_by) if policy.stratify_by else [],
        "clusters": text,
        "n": n_suggested,
        "command": command,
    }
    return conclude(
        "stale" if stale else "ok",
        _headline(evalset.id, uncovered, by, policy.max_uncovered_share, gap, text, total),
        figures,
    )


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _headline(
    evalset_id: str,
    uncovered: float,
    by: str | None,
    limit: float,
    gap: Sequence[_Stratum],
    text: Mapping[str, Any] | None,
    total: int,
) -> str:
    if uncovered > limit:
        lead = f"freshness {evalset_id}: stale, {_pct(uncovered)} of the window's traffic is not covered (over {_pct(limit)})"
    else:
        lead = f"freshness {evalset_id}: fresh, {_pct(uncovered)} of the window's traffic is not covered (at most {_pct(limit)})"
    parts = []
    for s in sorted(gap, key=lambda s: (-s.rows, s.name)):
        share = _pct(s.rows / total)
        if s.state == "missing":
            parts.append(f"missing {s.name} ({share} of traffic)")
        else:
            parts.append(f"under-represented {s.name} ({share} of traffic, {s.cases} of {s.target} cases)")
    if by == "clusters" and text is not None:
        for c in text["items"]:
            if c["state"] == "uncovered":
                about = ", ".join(c["terms"][:3])
                parts.append(
                    f"no case in text cluster {c['cluster']} ({about}: {_pct(c['share'])} of traffic)"
                )
    return lead + (": " + "; ".join(parts) if parts else "")


# --- strata ----------------------------------------------------------------------------------


def _label(value: Any) -> str:
    from agent_evals.sampling._scan import label_text

    return label_text(value)


def row_stratum(row: WindowRow, key: str) -> str:
    """A window row's stratum: the one `read_window` set, else its `key` tag or var."""
    from agent_evals.sampling._fields import MISSING, get_field

    if row.stratum is not None:
        return row.stratum
    name = key.removeprefix("tags.")
    if name in row.tags:
        return _label(row.tags[name])
    if key.startswith("tags."):
        return MISSING_STRATUM
    value = get_field(dict(row.vars), key.removeprefix("vars."))
    return MISSING_STRATUM if value is MISSING else _label(value)


def case_stratum(case: Case, key: str, known: frozenset[str] = frozenset()) -> str:
    """A case's stratum by `key`: a var (`vars.channel` or `channel`), an expected field
    (`expected.disposition`, `disposition`, or `label` for the whole expected value), or a tag.

    Case tags are plain values (`sample` writes a mapped tag's value): a tag `NAME:VALUE` or
    `NAME=VALUE` counts, else a tag that is one of the window's strata (`known`).
    """
    from agent_evals.sampling._fields import MISSING, get_field

    name = key.split(".", 1)[1] if key.startswith(("tags.", "vars.", "expected.")) else key
    candidates: list[Any] = []
    if not key.startswith(("tags.", "expected.")):
        candidates.append(get_field(case.vars, name))
    if not key.startswith(("tags.", "vars.")) and case.expected is not None:
        if key in ("label", "expected"):
            candidates.append(case.expected)
        elif isinstance(case.expected, dict):
            candidates.append(get_field(case.expected, name))
    for value in candidates:
        if value is not MISSING and value is not None:
            return _label(value)
    if not key.startswith(("vars.", "expected.")):
        for tag in case.tags:
            for sep in (":", "="):
                prefix = f"{name}{sep}"
                if tag.startswith(prefix):
                    return tag[len(prefix) :]
        for tag in case.tags:
            if tag in known:
                return tag
    return MISSING_STRATUM


def _strata(
    cases: Sequence[Case], rows: Sequence[WindowRow], key: str, alpha: float, minimum: int
) -> list[_Stratum]:
    from scipy.stats import binomtest

    from agent_evals.sampling._select import allocate
    from agent_evals.stats import holm

    window = Counter(row_stratum(r, key) for r in rows)
    known = frozenset(window)
    have = Counter(case_stratum(c, key, known) for c in cases)
    n = len(cases)
    # What `sample` would give each stratum today with this many cases (the minimum as far as n allows).
    floor = min(minimum, n // len(window)) if window else 0
    target = allocate(n, dict(window), dict(window), floor) if n else dict.fromkeys(window, 0)
    tested = [s for s in sorted(window) if 0 < have[s] < target[s]]
    raw = [float(binomtest(have[s], n, target[s] / n, alternative="less").pvalue) for s in tested]
    adjusted = dict(zip(tested, holm(raw), strict=True)) if tested else {}
    out = []
    for s in sorted(window, key=lambda s: (-window[s], s)):
        p = adjusted.get(s)
        state = "missing" if have[s] == 0 else "under" if p is not None and p <= alpha else "covered"
        out.append(_Stratum(s, window[s], have[s], target[s], p, state))
    return out


def _eval_only(cases: Sequence[Case], rows: Sequence[WindowRow], key: str) -> list[str]:
    """Strata the eval set has and the window does not (retired traffic: shown, not a gap)."""
    window = {row_stratum(r, key) for r in rows}
    return sorted({case_stratum(c, key, frozenset(window)) for c in cases} - window)


# --- text clusters -----------------------------------------------------------------------------


def _clusters(
    cases: Sequence[Case], rows: Sequence[WindowRow], k: int, seed: int, alpha: float
) -> dict[str, Any] | None:
    """TF-IDF k-means over the window's inputs; which clusters the cases fall in. None: no text.

    A cluster with no case is *uncovered* only when that is more than chance: were the cases
    drawn from today's traffic, none would fall in a cluster of share p with probability
    (1 - p)^n (the exact binomial test of 0 cases), Holm-adjusted over the clusters. A small
    cluster that n cases could easily miss is shown (with its examples) but not counted.
    """
    import warnings

    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    from agent_evals.sampling._scan import similarity_text
    from agent_evals.stats import holm

    texts = [similarity_text(r.vars, ()) for r in rows]
    if len(texts) > MAX_TEXT_ROWS:
        pick = np.sort(np.random.default_rng(seed).choice(len(texts), MAX_TEXT_ROWS, replace=False))
        texts = [texts[i] for i in pick]
    vectorizer = TfidfVectorizer(sublinear_tf=True, max_features=20_000, stop_words="english")
    try:
        matrix = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # no words at all (empty, numbers, punctuation)
        return None
    # k-means on distinct vectors, weighted by how often each occurs: a request sent a
    # thousand times is one point of weight 1000, and k never exceeds the distinct points.
    seen: dict[tuple[tuple[int, ...], tuple[float, ...]], int] = {}
    index = np.empty(len(texts), dtype=np.intp)
    for i in range(len(texts)):
        lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
        if lo == hi:
            index[i] = -1
            continue
        key = (tuple(matrix.indices[lo:hi].tolist()), tuple(np.round(matrix.data[lo:hi], 9).tolist()))
        index[i] = seen.setdefault(key, len(seen))
    k = min(k, len(seen))
    if k < 2:
        return None
    first = {int(d): i for i, d in reversed(list(enumerate(index))) if d >= 0}
    points = matrix[[first[d] for d in range(len(seen))]]
    weight = np.bincount(index[index >= 0], minlength=len(seen)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(points, sample_weight=weight)
    point_label = model.labels_
    point_distance = model.transform(points).min(axis=1)
    labels = np.where(index >= 0, point_label[np.maximum(index, 0)], -1)
    distance = np.where(index >= 0, point_distance[np.maximum(index, 0)], np.inf)
    case_counts: Counter[int] = Counter()
    if cases:
        case_matrix = vectorizer.transform([similarity_text(c.vars, ()) for c in cases])
        words = np.asarray(case_matrix.getnnz(axis=1)) > 0
        if words.any():
            case_counts.update(int(x) for x in model.predict(case_matrix[words]))
    terms = vectorizer.get_feature_names_out()
    total = len(texts)
    n = len(cases)
    items: list[dict[str, Any]] = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if not len(members):
            continue
        centre = model.cluster_centers_[c]
        top = [t for t in np.argsort(-centre, kind="stable")[:TOP_TERMS] if centre[t] > 0]
        examples: list[str] = []
        if case_counts[c] == 0:
            for i in members[np.argsort(distance[members], kind="stable")]:
                line = " ".join(texts[i].split())[:EXAMPLE_CHARS]
                if line not in examples:
                    examples.append(line)
                if len(examples) == EXAMPLES:
                    break
        share = len(members) / total
        items.append(
            {
                "cluster": c,
                "rows": len(members),
                "share": share,
                "cases": case_counts[c],
                "p_value": None,
                "state": "covered",
                "terms": [str(terms[t]) for t in top],
                "examples": examples,
            }
        )
    empty = [x for x in items if x["cases"] == 0]
    if empty:
        adjusted = holm([float((1 - x["share"]) ** n) for x in empty])
        for x, p in zip(empty, adjusted, strict=True):
            x["p_value"] = p
            x["state"] = "uncovered" if p <= alpha else "covered"
    items.sort(key=lambda x: (-x["rows"], x["cluster"]))
    for number, x in enumerate(items, 1):
        x["cluster"] = number  # numbered by size: stable names for people, not k-means' order
    uncovered = sum(x["rows"] for x in items if x["state"] == "uncovered") / total
    return {"k": len(items), "rows": total, "uncovered_share": uncovered, "items": items}


# --- the command that fills the gap ------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def sample_command(
    log: str,
    prompt: str,
    *,
    n: int,
    policy: MonitorPolicy,
    strata: Sequence[str] = (),
    min_per_stratum: int = DEFAULT_MIN_PER_STRATUM,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    map_file: str | None = None,
    output: str | None = None,
    mapping: Mapping[str, str] | None = None,
) -> str:
    """The `agent-evals sample ... --append` command that samples `n` rows of the gap, shell-quoted.

    The log is mapped as `monitor` mapped it: `map_file`, and the policy's map (or `mapping`
    instead, when the window was read with `--map`). With `strata` (and `stratify_by`): stratified, and a `--query` that keeps those
    strata only; without: `--method diversity` (one row nearest each k-means centroid).
    """
    args = ["agent-evals", "sample", log, "--prompt", prompt, "--append", "--n", str(n)]
    if map_file:
        args += ["--map-file", map_file]
    for target, source in (policy.map if mapping is None else mapping).items():
        args += ["--map", f"{target}={source}"]
    if output:
        args += ["--output", output]
    if strata and policy.stratify_by:
        args += ["--stratify-by", policy.stratify_by]
        if min_per_stratum != DEFAULT_MIN_PER_STRATUM:
            args += ["--min-per-stratum", str(min_per_stratum)]
    else:
        args += ["--method", "diversity"]
    if since is not None:
        args += ["--since", _iso(since)]
    if until is not None:
        args += ["--until", _iso(until)]
    if strata and policy.stratify_by:
        args += ["--query", _query(policy.stratify_by, strata)]
    return shlex.join(args)


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    if moment == dt.datetime(moment.year, moment.month, moment.day):
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds")


def _query(key: str, strata: Sequence[str]) -> str:
    """`channel in ["chat", "email"]`: a pandas condition over the mapped name (dotted: in backticks)."""
    name = key if _IDENT.fullmatch(key) else "`" + key.replace("`", "") + "`"
    values = [json.dumps(s, ensure_ascii=False) for s in sorted(strata)]
    if len(values) == 1:
        return f"{name} == {values[0]}"
    return f"{name} in [{', '.join(values)}]"


# --- the command, without the CLI --------------------------------------------------------------


def run(
    root: Path,
    log: Path,
    evalset_id: str,
    *,
    now: dt.datetime,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    mapping: Mapping[str, str] | None = None,
    map_file: Path | None = None,
    log_format: str | None = None,
    min_per_stratum: int = DEFAULT_MIN_PER_STRATUM,
    clusters: int = DEFAULT_CLUSTERS,
    seed: int = 0,
    store: Store | None = None,
) -> Check:
    """`agent-evals freshness LOG --evalset ID`: read the window as `monitor` does, assess, store.

    Args:
        root: the project root.
        log: the production log.
        evalset_id: the eval set; it needs a `monitor:` policy (how its log is mapped).
        now: when the check is made (naive UTC).
        since, until: the window; default: the policy's `window_days` ending just after the
            log's newest row (as `monitor`).
        mapping, map_file: override the policy's map (as `monitor --map/--map-file`).
        store: the history to store the check in, when given.

    Raises:
        ConfigError: no such eval set, no monitor policy, a bad map or an unreadable log.
    """
    from agent_evals.errors import ConfigError
    from agent_evals.load import load_project
    from agent_evals.monitor import field_map, newest_row, read_window, window_bounds

    project = load_project(root)
    evalset = project.evalsets.get(evalset_id)
    if evalset is None:
        project.raise_errors()
        known = ", ".join(sorted(project.evalsets)) or "none"
        raise ConfigError(f"--evalset {evalset_id}: no such eval set", hint=f"eval sets: {known}")
    policy = evalset.monitor
    if policy is None:
        raise ConfigError(
            f"eval set {evalset_id} has no monitor policy",
            path=evalset.source_path,
            hint="add 'monitor: {map: {...}, stratify_by: ...}': how its production log is read",
        )
    fields = field_map(evalset, policy, mapping, map_file)
    newest = None if until else newest_row(log, fields, log_format)
    start, end = window_bounds(log, newest, policy, since, until)
    window = read_window(
        log,
        evalset,
        policy,
        since=start,
        until=end,
        log_format=log_format,
        mapping=mapping,
        map_file=map_file,
    )
    check = assess(
        evalset,
        window.rows,
        policy,
        now=now,
        log=str(log),
        since=start,
        until=end,
        min_per_stratum=min_per_stratum,
        clusters=clusters,
        seed=seed,
        map_file=str(map_file) if map_file else _map_file(root, evalset, policy),
        output=_output(root, project.config.paths.evalsets, evalset),
        mapped=bool(mapping or map_file),
        mapping=mapping,
    )
    if store is not None:
        from agent_evals.checks import store_check

        store_check(store, check)
    return check


def _relative(root: Path, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _map_file(root: Path, evalset: EvalSet, policy: MonitorPolicy) -> str | None:
    if not policy.map_file:
        return None
    here = Path(evalset.source_path).parent if evalset.source_path else root
    return _relative(
        root, (root / here / policy.map_file) if not here.is_absolute() else here / policy.map_file
    )


def _output(root: Path, folder: str, evalset: EvalSet) -> str | None:
    """The `--output` of the command: none when `sample --append` finds the eval set by itself."""
    if not evalset.source_path:
        return None
    path = Path(evalset.source_path)
    path = path if path.is_absolute() else root / path
    default = root / folder / f"{evalset.prompt}.yaml"
    if path.resolve() == default.resolve():
        return None
    return _relative(root, path)


# --- reading it back ---------------------------------------------------------------------------


def latest(store: Store, evalset_id: str) -> Check | None:
    """The last freshness check stored for an eval set, or None."""
    from sqlalchemy import select

    from agent_evals.history.store import checks

    with store.connect() as conn:
        row = (
            conn.execute(
                select(checks)
                .where(checks.c.kind == "freshness", checks.c.evalset_id == evalset_id)
                .order_by(checks.c.at.desc(), checks.c.check_id)
                .limit(1)
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    window = (row["window_start"], row["window_end"]) if row["window_start"] and row["window_end"] else None
    return Check(
        kind="freshness",
        prompt_id=row["prompt_id"],
        status=row["status"],
        headline=row["headline"] or "",
        at=row["at"],
        evalset_id=row["evalset_id"],
        window=window,
        figures=row["figures"] or {},
    )


def attach(report: GateReport, store: Store) -> GateReport:
    """The gate report with each pair's eval set's latest freshness check (the PR comment shows a stale one)."""
    pairs = tuple(replace(p, freshness=latest(store, p.evalset_id)) for p in report.pairs)
    return replace(report, pairs=pairs)


# --- showing it --------------------------------------------------------------------------------


def as_json(check: Check) -> dict[str, Any]:
    """`freshness --format json`: `{"schema_version": 1, "check_id", "evalset", "prompt", "status",
    "headline", "window": [start, end] | null, "figures": {...}}` (figures as `assess` documents)."""
    return {
        "schema_version": 1,
        "check_id": check.check_id,
        "evalset": check.evalset_id,
        "prompt": check.prompt_id,
        "status": check.status,
        "headline": check.headline,
        "window": [w.isoformat() for w in check.window] if check.window else None,
        "figures": dict(check.figures),
    }


def print_check(console: Console, check: Check) -> None:
    """The strata table (traffic share vs cases), uncovered text clusters with examples, the fix."""
    from agent_evals.report.table import Table

    figures = check.figures
    strata = figures.get("strata")
    if strata:
        table = Table(title=f"strata by {figures.get('stratify_by')}", title_justify="left")
        for col in ("stratum", "rows", "share", "cases", "expected", "p (Holm)", ""):
            table.add_column(col, justify="left" if col in ("stratum", "") else "right")
        for s in strata:
            p = s["p_value"]
            table.add_row(
                s["name"], str(s["rows"]), _pct(s["share"]), str(s["cases"]), str(s["target"]),
                "" if p is None else f"{p:.3g}",
                {"missing": "missing", "under": "under-represented"}.get(s["state"], ""),
            )  # fmt: skip
        console.print(table)
    text = figures.get("clusters")
    if text:
        for c in text["items"]:
            if c["cases"]:
                continue
            word = "uncovered" if c["state"] == "uncovered" else "no case (could be chance)"
            console.print(
                f"text cluster {c['cluster']} ({', '.join(c['terms'])}): {_pct(c['share'])} of traffic, {word}",
                markup=False,
                soft_wrap=True,
            )
            for example in c["examples"]:
                console.print(f"  e.g. {example}", markup=False, soft_wrap=True)
    if figures.get("command"):
        console.print(f"fix: {figures['command']}", markup=False, soft_wrap=True)
