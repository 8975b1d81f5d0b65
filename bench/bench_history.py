"""Benchmark the history store at scale: import, queries, peak memory and size, SQLite and PostgreSQL.

Fills a fresh store with R runs of C case results each (default 1,000 x 10,000; all SYNTHETIC:
invented prompts `synthetic-*`, a `synthetic` provider, seeded) and prints, per backend:

* import: the whole import's wall and CPU time, runs/s and case results/s, through the real write
  path, in a child process (so its peak memory is its own): `ingest.add_run` on RunHeader /
  CaseResult objects streamed from a generator (never a list of a run's cases), then
  `ingest.import_record_file` on the last few runs written as real record files, then the gate
  verdicts (`ingest.add_verdicts`). The child's peak RSS (ru_maxrss) is printed after 10% and
  after 100% of the runs: it must not grow with the number of runs.
* queries, in a second child, in three passes: (1) cold: `query.prompt_history` per prompt on
  the freshly imported store (it computes every version's case-derived figures from the case
  rows and keeps them in `version_stats`); (2) warm: the same again (the kept figures, the case
  rows untouched); then `query.document` and `report.dashboard.render(document)`; (3) after one
  new run: one more run (C case results) of each prompt's latest version through
  `ingest.add_run`, then `prompt_history` per prompt again (one version per prompt recomputed).
  Then every SQL SELECT the three passes ran, EXPLAINed: a full scan of `cases` or `grades` is
  printed.
* the store's size on disk (the SQLite file after a WAL checkpoint; PostgreSQL's pg_database_size).

What the synthetic history holds: 3 prompts (50 versions in all) on 2 eval sets, runs spread over a
year, main and feature branches (a feature branch runs the next version), 10% of runs with 2
repeats (C/2 cases x 2: still C results), every result with 2 grades (exact_match and an LLM
judge), tokens, cost and latency; the agent prompt's cases mostly with 3 steps (model, tool,
model); a daily business metric over the year (`metrics.add_points`).

PostgreSQL is a throwaway cluster (tests/pg.py: initdb in a temporary folder, fsync=off, port on
127.0.0.1); it is skipped, with a printed line, when PostgreSQL is not installed. Figures are
printed, never asserted.

    make bench-history                    # or:
    .venv/bin/python bench/bench_history.py [--runs 1000] [--cases 10000] [--quick] [--sqlite-only]
        [--record-files 3] [--json FILE] [--profile FILE]

`--quick` is 20 runs x 2,000 cases. `--profile FILE` runs the SQLite import child under cProfile
and prints its top costs.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED = 15
YEAR_START = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
YEAR_S = 365 * 24 * 3600
URL_ENV = "BENCH_HISTORY_URL"  # the store's URL goes to the children by environment (it holds a password)

# (prompt id, eval set id, versions, an agent?): 50 versions over 3 prompts and 2 eval sets.
PROMPTS = (
    ("synthetic-ticket-triage", "synthetic-tickets", 17, False),
    ("synthetic-ticket-triage-short", "synthetic-tickets", 17, False),
    ("synthetic-refund-agent", "synthetic-refunds", 16, True),
)
PROMPT_WEIGHTS = (0.45, 0.25, 0.30)
FEATURE_SHARE = 0.4
REPEAT_SHARE = 0.1


# --- the synthetic history ------------------------------------------------------------------------


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class RunPlan:
    """What run `i` of `total` is: everything but its cases, drawn from a seed of its own."""

    def __init__(self, i: int, total: int, cases: int) -> None:
        rng = random.Random(SEED * 1_000_003 + i)
        self.i = i
        p = rng.choices(range(len(PROMPTS)), PROMPT_WEIGHTS)[0]
        self.prompt_id, self.evalset_id, versions, self.agent = PROMPTS[p]
        self.at = YEAR_START + dt.timedelta(seconds=(i + rng.random()) * YEAR_S / total)
        main_version = 1 + min(versions - 2, int((i / total) * (versions - 1)))
        self.feature = rng.random() < FEATURE_SHARE
        self.version = main_version + 1 if self.feature else main_version
        self.branch = f"feature/{self.prompt_id}-v{self.version}" if self.feature else "main"
        self.commit = _sha(self.prompt_id, self.version, self.branch, i // 7)
        self.prompt_hash = _sha("prompt", self.prompt_id, self.version)
        self.repeat = 2 if rng.random() < REPEAT_SHARE else 1
        self.distinct = cases // self.repeat
        self.results = self.distinct * self.repeat
        self.run_id = f"run-{i:05d}-{_sha('run', i)[:12]}"
        # The version's quality: pass rates drift over versions, and a feature branch is sometimes worse.
        self.quality = 0.78 + 0.1 * (self.version / versions) - (0.06 if self.feature and i % 5 == 0 else 0)
        self.seed = rng.getrandbits(32)

    def header(self) -> Any:
        from agent_evals.record import RunHeader

        options: dict[str, Any] = {"concurrency": 32}
        if self.repeat > 1:
            options["repeat"] = self.repeat
        return RunHeader(
            run_id=self.run_id,
            started_at=self.at.isoformat().replace("+00:00", "Z"),
            tool_version="0.0.0+synthetic-bench",
            git={"commit": self.commit, "branch": self.branch, "dirty": False},
            prompt={"id": self.prompt_id, "version": str(self.version), "hash": self.prompt_hash},
            evalset={"id": self.evalset_id, "hash": _sha("evalset", self.evalset_id), "cases": self.distinct},
            provider={"name": "synthetic", "type": "openai", "model": "synthetic-model-1"},
            options=options,
        )

    def end(self, duration_s: float) -> Any:
        from agent_evals.record import RunEnd

        finished = self.at + dt.timedelta(seconds=duration_s)
        return RunEnd(status="complete", finished_at=finished.isoformat().replace("+00:00", "Z"))

    def cases(self) -> Iterator[Any]:
        """The run's case results, one at a time, validated as the runner's are (pydantic's
        validator from plain values is several times faster than `model_construct`)."""
        from agent_evals.record import CaseResult

        rng = random.Random(self.seed)
        index = 0
        for n in range(self.distinct):
            case_id = f"case-{n:05d}"
            # A case's difficulty is its own, the same in every run: some cases are hard, a few flaky.
            hardness = (n * 2654435761 % 1000) / 1000
            p_pass = min(0.99, self.quality + 0.3 * (0.5 - hardness))
            for repeat in range(self.repeat):
                error = rng.random() < 0.005
                judge = None if error else round(min(1.0, max(0.0, rng.gauss(p_pass, 0.2))), 3)
                exact = None if error else rng.random() < p_pass
                passed = None if error else bool(exact and judge is not None and judge >= 0.5)
                in_tok = rng.randint(400, 1600)
                out_tok = rng.randint(30, 300)
                latency = round(rng.lognormvariate(6.7, 0.5), 1)
                case: dict[str, Any] = {
                    "index": index,
                    "case_id": case_id,
                    "repeat": repeat,
                    "status": "error" if error else "pass" if passed else "fail",
                    "tags": ("synthetic",),
                    "model": "synthetic-model-1",
                    "latency_ms": latency,
                    "attempts": 1,
                }
                if error:
                    case["error"] = "synthetic: the provider timed out"
                else:
                    case |= {
                        "score": round(((1.0 if exact else 0.0) + (judge or 0.0)) / 2, 3),
                        "passed": passed,
                        "output": "Refund approved.",
                        "finish_reason": "stop",
                        "usage": {"input_tokens": in_tok, "output_tokens": out_tok},
                        "cost_usd": round(in_tok * 2.5e-6 + out_tok * 1e-5, 7),
                        "grades": (
                            {
                                "grader": "exact_match",
                                "type": "exact_match",
                                "score": float(bool(exact)),
                                "passed": exact,
                                "reason": "matched" if exact else "expected 'refund', got 'escalate'",
                            },
                            {
                                "grader": "tone_judge",
                                "type": "llm_judge",
                                "score": judge,
                                "passed": judge is not None and judge >= 0.5,
                                "reason": "polite, names the next step" if (judge or 0) >= 0.5 else "curt",
                            },
                        ),
                    }
                if self.agent and not error and rng.random() < 0.7:
                    call = {"name": "lookup_order", "arguments": {"order_id": f"SYN-{n}"}, "id": f"call-{n}"}
                    case["tool_calls"] = (call,)
                    case["steps"] = (
                        {
                            "kind": "model",
                            "model": "synthetic-model-1",
                            "tool_calls": (call,),
                            "latency_ms": latency / 2,
                            "usage": {"input_tokens": in_tok // 2, "output_tokens": 20},
                        },
                        {
                            "kind": "tool",
                            "name": "lookup_order",
                            "arguments": {"order_id": f"SYN-{n}"},
                            "call_id": f"call-{n}",
                            "result": {"status": "delivered"},
                            "source": "mock",
                        },
                        {
                            "kind": "model",
                            "model": "synthetic-model-1",
                            "text": "Refund approved.",
                            "latency_ms": latency / 2,
                            "usage": {"input_tokens": in_tok - in_tok // 2, "output_tokens": out_tok - 20},
                        },
                    )
                yield CaseResult.model_validate(case)
                index += 1


def _gate_report(base: RunPlan, cand: RunPlan, pr: int) -> dict[str, Any]:
    """A gate report's JSON (only what `ingest.add_verdicts` reads) for a feature run against main."""
    failed = cand.quality < base.quality - 0.03

    def run(plan: RunPlan) -> dict[str, Any]:
        return {
            "run_id": plan.run_id,
            "started_at": plan.at.isoformat().replace("+00:00", "Z"),
            "prompt": {"id": plan.prompt_id, "version": str(plan.version), "hash": plan.prompt_hash},
            "git": {"commit": plan.commit, "branch": plan.branch},
        }

    rule = {"rule": "no_regressions", "label": "no regressions", "passed": not failed, "severity": "error"}
    return {
        "kind": "agent-evals-gate",
        "schema_version": 1,
        "base_ref": "main",
        "pairs": [
            {
                "prompt_id": cand.prompt_id,
                "evalset_id": cand.evalset_id,
                "change": "prompt",
                "runs": {"base": run(base), "cand": run(cand)},
                "verdict": {
                    "status": "fail" if failed else "pass",
                    "exit_code": 1 if failed else 0,
                    "headline": "synthetic: " + ("a regression" if failed else "no regression"),
                    "rules": [rule],
                    "tests": [],
                    "findings": [],
                    "policy": {"alpha": 0.05},
                },
                "counts": {},
                "calibration": {"tone_judge": {"grader": "tone_judge", "status": "ok", "n": 40}},
            }
        ],
    }


# --- the children ---------------------------------------------------------------------------------


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _open() -> Any:
    from agent_evals.history.store import open_store, resolve_url
    from agent_evals.models import ProjectConfig

    # The same resolution `history` uses, the URL from the environment.
    target = resolve_url(Path.cwd(), ProjectConfig(), {"AGENT_EVALS_HISTORY_URL": os.environ[URL_ENV]})
    return open_store(target)


def _timed_cases(plan: RunPlan, out: dict[str, Any]) -> Iterator[tuple[None, Any]]:
    """The plan's cases as `add_run` takes them, the generator's own time added to out["gen_s"]
    (so an import's rate is the store's)."""
    gen = plan.cases()
    while True:
        t0 = time.perf_counter()
        case = next(gen, None)
        out["gen_s"] += time.perf_counter() - t0
        if case is None:
            return
        yield None, case


def child_import(args: dict[str, Any]) -> dict[str, Any]:
    from agent_evals.history import ingest, metrics

    total, n_cases, files = args["runs"], args["cases"], [Path(p) for p in args["files"]]
    streamed = total - len(files)
    checkpoint = max(1, total // 10)
    out: dict[str, Any] = {"gen_s": 0.0}
    started = time.perf_counter()
    cpu0 = time.process_time()
    with _open() as store:
        out["open_s"] = time.perf_counter() - started
        results = 0
        for i in range(streamed):
            plan = RunPlan(i, total, n_cases)
            done = ingest.add_run(store, plan.header(), _timed_cases(plan, out), plan.end(900.0))
            if done.outcome != "added" or done.results != plan.results:
                raise SystemExit(f"run {plan.run_id}: expected {plan.results} results added, got {done}")
            results += done.results
            if i + 1 == checkpoint:
                out["rss_10pct_mb"] = _maxrss_mb()
                out["runs_10pct"] = i + 1
        out["streamed_s"] = time.perf_counter() - started - out["open_s"]
        out["streamed_runs"], out["streamed_results"] = streamed, results

        t0 = time.perf_counter()
        file_results = 0
        for path in files:
            done = ingest.import_record_file(store, path)
            assert done.outcome == "added", done
            file_results += done.results
        out["files_s"] = time.perf_counter() - t0
        out["file_runs"], out["file_results"] = len(files), file_results
        if total <= checkpoint:
            out["rss_10pct_mb"], out["runs_10pct"] = _maxrss_mb(), total

        # Gate verdicts: each feature run against the latest main run of its prompt before it.
        t0 = time.perf_counter()
        last_main: dict[str, RunPlan] = {}
        verdicts = 0
        for i in range(total):
            plan = RunPlan(i, total, n_cases)
            if not plan.feature:
                last_main[plan.prompt_id] = plan
            elif plan.prompt_id in last_main:
                ingest.add_verdicts(
                    store, _gate_report(last_main[plan.prompt_id], plan, 1000 + i), pr=1000 + i
                )
                verdicts += 1
        out["verdicts"], out["verdicts_s"] = verdicts, time.perf_counter() - t0

        # A synthetic business metric, daily over the year, through the `metric import` path.
        rng = random.Random(SEED)
        points = [
            metrics.Point(
                "synthetic_ticket_reopen_rate",
                (YEAR_START + dt.timedelta(days=d)).replace(tzinfo=None),
                round(0.07 + rng.gauss(0, 0.005), 4),
            )
            for d in range(365)
        ]
        added, _ = metrics.add_points(store, points, source="synthetic")
        assert added == len(points), added
    out["total_s"] = time.perf_counter() - started
    out["cpu_s"] = time.process_time() - cpu0
    out["rss_100pct_mb"] = _maxrss_mb()
    return out


def latest_plans(total: int, n_cases: int) -> list[RunPlan]:
    """One more run of each prompt's latest version (the highest version any of its runs ran, on
    that version's last branch and commit), a day after the history's year, all cases once."""
    last: dict[str, RunPlan] = {}
    for i in range(total):
        plan = RunPlan(i, total, n_cases)
        seen = last.get(plan.prompt_id)
        if seen is None or plan.version >= seen.version:
            last[plan.prompt_id] = plan
    plans = []
    for k, prompt_id in enumerate(sorted(last)):
        plan = copy.copy(last[prompt_id])
        plan.i = total + k
        plan.at = YEAR_START + dt.timedelta(seconds=YEAR_S, days=1, minutes=k)
        plan.run_id = f"run-{total + k:05d}-{_sha('run', 'one-more', total + k)[:12]}"
        plan.repeat, plan.distinct, plan.results = 1, n_cases, n_cases
        plan.seed = SEED * 7_919 + k
        plans.append(plan)
    return plans


def child_query(args: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import event, func, select

    from agent_evals.history import ingest, query
    from agent_evals.history.store import version_stats
    from agent_evals.report import dashboard

    out: dict[str, Any] = {"timings": [], "passes": {}, "computed": {}, "gen_s": 0.0}
    statements: list[tuple[str, Any]] = []

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if capturing and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    capturing = [True]  # off for the bench's own statements (the count below, the new runs' import)

    def timed(name: str, work: Any) -> Any:
        t0 = time.perf_counter()
        value = work()
        out["timings"].append((name, time.perf_counter() - t0))
        return value

    def histories(label: str, ids: list[str]) -> list[Any]:
        since = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        t0 = time.perf_counter()
        found = [
            timed(f"{label}: prompt_history {prompt_id}", lambda p=prompt_id: query.prompt_history(store, p))
            for prompt_id in ids
        ]
        out["passes"][label] = time.perf_counter() - t0
        # How many versions the pass computed from case rows (the rest came from `version_stats`).
        capturing.clear()
        with store.connect() as conn:
            computed = conn.execute(
                select(func.count()).where(version_stats.c.computed_at >= since)
            ).scalar_one()
            conn.rollback()
        capturing.append(True)
        out["computed"][label] = (computed, sum(len(h.versions) for h in found))
        return found

    t0 = time.perf_counter()
    with _open() as store:
        out["timings"].append(("open_store", time.perf_counter() - t0))
        event.listen(store.engine, "before_cursor_execute", capture)
        ids = timed("prompt_ids", lambda: query.prompt_ids(store))
        histories("cold", ids)
        warm = histories("warm", ids)
        document = timed("document (warm)", lambda: query.document(warm, store.target.shown))
        html = timed("dashboard.render (warm)", lambda: dashboard.render(document))
        out["document_bytes"] = len(json.dumps(document))
        out["html_bytes"] = len(html.encode())
        out["prompts"] = len(document["prompts"])
        out["versions"] = sum(len(p["versions"]) for p in document["prompts"])
        out["runs_in_document"] = sum(len(p["runs"]) for p in document["prompts"])

        # One new run of each prompt's latest version: its import is not a query (not EXPLAINed).
        capturing.clear()
        t0 = time.perf_counter()
        added = 0
        for plan in latest_plans(args["runs"], args["cases"]):
            done = ingest.add_run(store, plan.header(), _timed_cases(plan, out), plan.end(900.0))
            if done.outcome != "added" or done.results != plan.results:
                raise SystemExit(f"run {plan.run_id}: expected {plan.results} results added, got {done}")
            added += done.results
        out["one_more_s"], out["one_more_results"] = time.perf_counter() - t0, added
        capturing.append(True)
        after = histories("after one new run", ids)
        out["versions_after"] = sum(len(h.versions) for h in after)
        out["rss_mb"] = _maxrss_mb()
        event.remove(store.engine, "before_cursor_execute", capture)
        out["plans"] = _explain(store, statements)
    return out


def _explain(store: Any, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """EXPLAIN every distinct statement the queries ran; flag full scans of cases and grades."""
    seen: set[str] = set()
    plans: list[dict[str, Any]] = []
    sqlite = store.dialect == "sqlite"
    with store.connect() as conn:
        for statement, parameters in statements:
            if statement in seen:
                continue
            seen.add(statement)
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            rows = conn.exec_driver_sql(prefix + statement, parameters).all()
            lines = [str(r[-1]) for r in rows] if sqlite else [str(r[0]) for r in rows]
            if sqlite:
                scans = [
                    line
                    for line in lines
                    if line.startswith("SCAN ") and line.split()[1] in ("cases", "grades")
                ]
            else:
                scans = [
                    line.strip()
                    for line in lines
                    if "Seq Scan on cases" in line or "Seq Scan on grades" in line
                ]
            plans.append({"sql": " ".join(statement.split()), "plan": lines, "full_scans": scans})
        conn.rollback()
    return plans


# --- the parent -----------------------------------------------------------------------------------


def run_child(
    mode: str, args: dict[str, Any], url: str, profile: Path | None = None
) -> tuple[dict[str, Any], float]:
    """Run a child; its JSON result and its own peak RSS in MB (ru_maxrss from wait4)."""
    env = {**os.environ, URL_ENV: url}
    command = [sys.executable]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile)]
    command += [str(Path(__file__).resolve()), "--child", mode, json.dumps(args)]
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out, env=env, cwd=args["cwd"])
        _, status, usage = os.wait4(child.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if code != 0:
        raise SystemExit(f"the {mode} child failed with exit code {code}")
    return json.loads(text.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def write_record_files(folder: Path, total: int, n_cases: int, count: int) -> list[str]:
    """The last `count` runs as real run records (the file import path)."""
    from agent_evals.record import RecordWriter

    paths = []
    for i in range(total - count, total):
        plan = RunPlan(i, total, n_cases)
        path = folder / f"{plan.run_id}.jsonl"
        writer = RecordWriter(path, plan.header())
        for case in plan.cases():
            writer.add(case)
        writer.close(plan.end(900.0))
        paths.append(str(path))
    return paths


def machine(pg_version: str | None) -> dict[str, str]:
    import sqlalchemy
    from machine import cpu_model, ram_gib  # bench/machine.py

    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version or "not run",
        "sqlalchemy": sqlalchemy.__version__,
    }


def pg_version() -> str | None:
    sys.path.insert(0, str(ROOT))
    from tests import pg

    folder = pg.binaries()
    if folder is None:
        return None
    result = subprocess.run(
        [str(folder / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    words = result.stdout.split()
    return words[2] if len(words) > 2 else None


def bench_backend(
    name: str, url: str, args: argparse.Namespace, files: list[str], cwd: str
) -> dict[str, Any]:
    common = {"runs": args.runs, "cases": args.cases, "files": files, "cwd": cwd}
    profile = args.profile.with_suffix(f".{name}.prof") if args.profile else None
    print(f"[{name}] importing {args.runs:,} runs x {args.cases:,} case results ...", flush=True)
    imported, import_rss = run_child("import", common, url, profile)
    print(f"[{name}] imported in {imported['total_s']:.1f}s; querying ...", flush=True)
    queried, query_rss = run_child("query", common, url)
    return {
        "backend": name,
        "import": imported,
        "import_rss_mb": import_rss,
        "query": queried,
        "query_rss_mb": query_rss,
    }


def sqlite_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def pg_size(cluster: Any, database: str) -> int:
    import psycopg

    from tests import pg

    with psycopg.connect(
        host="127.0.0.1", port=cluster.port, user=pg.USER, password=cluster.password, dbname=database
    ) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return int(row[0])


def report(result: dict[str, Any], size: int, n_runs: int, n_cases: int) -> list[str]:
    imp, q = result["import"], result["query"]
    streamed_rate = imp["streamed_results"] / max(imp["streamed_s"] - imp["gen_s"], 1e-9)
    file_rate = imp["file_results"] / imp["files_s"] if imp["files_s"] else 0.0
    total_results = imp["streamed_results"] + imp["file_results"]
    b = result["backend"]
    rows = [
        (
            b,
            "import: total (runs, files, verdicts, metric)",
            f"{imp['total_s']:.1f} s",
            f"CPU {imp['cpu_s']:.1f} s",
        ),
        (
            b,
            "import: runs/s, case results/s (whole import)",
            f"{n_runs / imp['total_s']:,.1f} runs/s",
            f"{total_results / imp['total_s']:,.0f} results/s",
        ),
        (
            b,
            f"  add_run, streamed ({imp['streamed_runs']:,} runs)",
            f"{imp['streamed_s']:.1f} s",
            f"{streamed_rate:,.0f} results/s (generator's {imp['gen_s']:.1f} s set apart)",
        ),
        (
            b,
            f"  import_record_file ({imp['file_runs']} files)",
            f"{imp['files_s']:.1f} s",
            f"{file_rate:,.0f} results/s (read, validate, write)",
        ),
        (b, f"  add_verdicts ({imp['verdicts']} verdicts)", f"{imp['verdicts_s']:.1f} s", ""),
        (
            b,
            "importer peak RSS after 10% / 100% of runs",
            f"{imp['rss_10pct_mb']:.0f} / {imp['rss_100pct_mb']:.0f} MB",
            f"after {imp['runs_10pct']} / {n_runs} runs; wait4: {result['import_rss_mb']:.0f} MB",
        ),
    ]
    timings = dict(q["timings"])
    for name in ("open_store", "prompt_ids"):
        rows.append((b, f"query: {name}", f"{timings[name]:.2f} s", ""))
    for label, total in q["passes"].items():
        if label == "after one new run":
            gen, added = q["gen_s"], q["one_more_results"]
            rows.append(
                (
                    b,
                    f"add_run: one more run per prompt ({added:,} results)",
                    f"{q['one_more_s']:.2f} s",
                    f"{added / max(q['one_more_s'] - gen, 1e-9):,.0f} results/s "
                    f"(generator's {gen:.2f} s set apart)",
                )
            )
        for name, seconds in q["timings"]:
            if name.startswith(label + ": "):
                rows.append((b, f"query {name}", f"{seconds:.2f} s", ""))
        computed, versions = q["computed"][label]
        note = f"{computed} of {versions} versions computed from case rows"
        rows.append((b, f"query {label}: all prompts", f"{total:.2f} s", note))
        if label == "warm":
            for name in ("document (warm)", "dashboard.render (warm)"):
                rows.append((b, f"query: {name}", f"{timings[name]:.2f} s", ""))
            rows.append(
                (
                    b,
                    "  document, HTML page",
                    f"{q['document_bytes'] / 1e6:.1f} MB",
                    f"HTML {q['html_bytes'] / 1e6:.1f} MB; {q['prompts']} prompts, "
                    f"{q['versions']} versions, {q['runs_in_document']:,} runs",
                )
            )
    rows.append((b, "querying process peak RSS", f"{result['query_rss_mb']:.0f} MB", ""))
    rows.append(
        (
            b,
            "store size on disk",
            f"{size / 1e6:,.0f} MB",
            f"{size / max(n_runs * n_cases, 1):.0f} bytes/result",
        )
    )
    width = [max(len(r[k]) for r in rows) for k in range(4)]
    return ["  ".join(cell.ljust(width[k]) for k, cell in enumerate(r)).rstrip() for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the history store (synthetic data).")
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--cases", type=int, default=10_000, help="case results per run")
    parser.add_argument("--quick", action="store_true", help="20 runs x 2,000 cases")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgresql-only", action="store_true", help="skip SQLite")
    parser.add_argument("--record-files", type=int, default=3, help="the last runs, imported as record files")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", type=Path, help="cProfile the import children (FILE.sqlite.prof, ...)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, payload = args.child
        result = (child_import if mode == "import" else child_query)(json.loads(payload))
        print(json.dumps(result))
        return 0
    if args.quick:
        args.runs, args.cases = 20, 2_000
    files_count = max(0, min(args.record_files, args.runs - 1))

    version = None if args.sqlite_only else pg_version()
    info = machine(version)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"history: {args.runs:,} runs x {args.cases:,} case results, 2 grades each (synthetic, seed {SEED})"
    )
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        folder = Path(tmp)
        (folder / "records").mkdir()
        t0 = time.perf_counter()
        files = write_record_files(folder / "records", args.runs, args.cases, files_count)
        print(f"wrote {len(files)} record files in {time.perf_counter() - t0:.1f}s", flush=True)

        if not args.postgresql_only:
            db = folder / "history.sqlite3"
            result = bench_backend("sqlite", f"sqlite:///{db}", args, files, tmp)
            size = sqlite_size(db)
            result["size_bytes"] = size
            results.append(result)
            lines += report(result, size, args.runs, args.cases)

        if args.sqlite_only:
            print("postgresql: skipped (--sqlite-only)")
        elif version is None:
            print("postgresql: skipped: PostgreSQL is not installed (apt-get install postgresql)")
        else:
            from tests import pg

            with pg.cluster() as cluster:
                database = cluster.create_database()
                result = bench_backend("postgresql", cluster.url(database), args, files, tmp)
                size = pg_size(cluster, database)
                result["size_bytes"] = size
                results.append(result)
                lines += report(result, size, args.runs, args.cases)
    elapsed = time.perf_counter() - started
    # Other processes share the machine: the load says how much the figures may be inflated.
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print()
    print("\n".join(lines))
    print()
    for result in results:
        scans = [p for p in result["query"]["plans"] if p["full_scans"]]
        print(
            f"{result['backend']}: {len(result['query']['plans'])} distinct queries EXPLAINed, "
            f"{len(scans)} with a full scan of cases or grades"
        )
        for p in scans:
            print(f"  FULL SCAN {'; '.join(p['full_scans'])}\n    in: {p['sql'][:300]}")
    print(f"benchmark wall time {elapsed:.0f} s; load average at the end {load} ({os.cpu_count()} cores)")
    if args.profile:
        import pstats

        for result in results:
            path = args.profile.with_suffix(f".{result['backend']}.prof")
            print(
                f"\ncProfile of the {result['backend']} import child ({path}), ingest.py by cumulative time:"
            )
            pstats.Stats(str(path)).sort_stats("cumulative").print_stats("ingest.py", 15)
            print("all functions by own time:")
            pstats.Stats(str(path)).sort_stats("tottime").print_stats(20)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": info, "runs": args.runs, "cases": args.cases, "results": results}, indent=2
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
