"""Benchmark `agent-evals sample` on a large SYNTHETIC log: wall time and peak memory.

Generates (once, then reuses) a synthetic support-ticket log with
bench/gen_log.py (1,000,000 rows by default; invented tickets, no real data),
then samples an eval set for the example `ticket-triage` prompt from it in a
child process, stratified by disposition, and prints the wall time and the
child's peak resident memory (ru_maxrss). Figures are printed, never asserted; CPU time is printed too, because wall
time on a shared machine says as much about the neighbours as about sample.

    .venv/bin/python bench/bench_sample.py [--rows 1000000] [--n 500] [--method uniform|diversity]
        [--format jsonl|csv|parquet] [--log PATH] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gen_log import MAPPING, write_log  # noqa: E402

CHILD = """
import json, sys
from pathlib import Path
from agent_evals.sampling import SampleOptions, sample
args = json.loads(sys.argv[1])
report = sample(SampleOptions(
    log=Path(args["log"]), prompt="ticket-triage", mapping=args["mapping"], n=args["n"],
    method=args["method"], stratify_by="disposition", min_per_stratum=5, seed=7,
    root=Path(args["root"]), chunksize=args["chunksize"], sampled_at="2026-11-01",
))
print(json.dumps({
    "rows_read": report.rows_read, "cases": report.cases, "to_label": report.to_label,
    "pool": report.pool, "near_duplicates": report.near_duplicates,
    "redactions": report.redactions, "strata": {s.name: [s.source, s.sampled] for s in report.strata},
}))
"""


def run_child(args: dict[str, Any]) -> tuple[float, float, float, dict[str, Any]]:
    """Run one sample in a child process: (wall seconds, CPU seconds, peak RSS in MB, its report)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE, cwd=args["root"]
    )
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"sample failed with exit code {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, json.loads(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark agent-evals sample on a synthetic log.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--method", choices=("uniform", "diversity"), default="uniform")
    parser.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="jsonl")
    parser.add_argument("--chunksize", type=int, default=20_000)
    parser.add_argument("--log", type=Path, help="the synthetic log to use or create")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    log = args.log or ROOT / ".agent-evals" / "bench" / f"synthetic-support-{args.rows}.{args.format}"
    if not log.exists():
        started = time.perf_counter()
        write_log(log, args.rows, seed=0)
        print(f"generated {args.rows:,} synthetic rows in {time.perf_counter() - started:.1f}s: {log}")
    size_mb = log.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(prefix="bench-sample-") as tmp:
        project = Path(tmp)
        (project / "prompts").mkdir()
        shutil.copy(ROOT / "prompts" / "ticket-triage.yaml", project / "prompts")
        wall, cpu, peak_mb, report = run_child(
            {
                "log": str(log.resolve()),
                "mapping": MAPPING,
                "n": args.n,
                "method": args.method,
                "root": str(project),
                "chunksize": args.chunksize,
            }
        )
    figures = {
        "rows": report["rows_read"],
        "log_mb": round(size_mb, 1),
        "format": args.format,
        "method": args.method,
        "n": args.n,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "rows_per_s": round(report["rows_read"] / wall),
        "peak_rss_mb": round(peak_mb, 1),
        "cases": report["cases"],
        "to_label": report["to_label"],
        "pool": report["pool"],
        "near_duplicates": report["near_duplicates"],
        "redactions": report["redactions"],
    }
    print(
        f"sample: {figures['rows']:,} rows ({size_mb:.0f} MB {args.format}), n={args.n} {args.method}, "
        f"stratified by disposition: {wall:.1f}s wall, {cpu:.1f}s CPU ({figures['rows_per_s']:,} rows/s), "
        f"peak RSS {peak_mb:.0f} MB"
    )
    print(f"  {report['cases']} cases, {report['to_label']} to label, pool {report['pool']:,} rows")
    for name, (source, sampled) in report["strata"].items():
        print(f"  {name:<18} {source:>9,} rows in log  {sampled:>4} sampled")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
