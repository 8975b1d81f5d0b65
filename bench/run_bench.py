"""The agent-evals benchmark: is the runner's own overhead visible?

For each workload it starts bench/server.py (an OpenAI-compatible server with a
fixed latency, in its own process), builds a throwaway project with N synthetic
cases, and runs `agent-evals run` end to end as a subprocess:

1. `--no-cache`: every case is a real HTTP call. Reported: wall time, the
   ideal time N x latency / concurrency, their ratio (efficiency), peak RSS.
2. a cold-cache run that fills the cache (reported, not a target);
3. the same command again, every answer from the cache (the server checks
   that it received no request).

It also times `agent-evals --help` (median of several starts). Wall times
are of the whole process, interpreter start-up and record writing included.
Figures are printed, never asserted (a slow CI machine is not a bug).

    make bench                                  # or:
    .venv/bin/python bench/run_bench.py [--workload small|large|all] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from machine import describe as machine  # bench/machine.py: the machine, named one way

HERE = Path(__file__).resolve().parent
AGENT_EVALS = Path(sys.executable).parent / "agent-evals"


@dataclass(frozen=True)
class Workload:
    name: str
    cases: int
    concurrency: int
    latency_ms: float

    @property
    def ideal_s(self) -> float:
        return self.cases * self.latency_ms / 1000 / self.concurrency


WORKLOADS = {
    "small": Workload("small", cases=2_000, concurrency=50, latency_ms=50),
    "large": Workload("large", cases=10_000, concurrency=100, latency_ms=20),
}

# What the issue asks for; printed beside the figures, never asserted.
TARGETS = {
    "efficiency (small)": ">= 0.9",
    "wall (large)": "< 5 s",
    "cached re-run (large)": "< 1.5 s",
    "--help": "< 0.3 s",
    "peak memory": "< 250 MB",
}


@dataclass
class Timing:
    wall_s: float
    cpu_s: float
    """User plus system CPU time of the agent-evals process."""
    peak_mb: float
    exit_code: int
    started_at: float
    """Epoch seconds, to set against the server's clock (same machine)."""
    ended_at: float


@dataclass
class Result:
    workload: Workload
    first: Timing
    cold_cache: Timing
    cached: Timing
    served_first: int
    served_cached: int
    first_request_at: float
    last_answer_at: float
    problems: list[str] = field(default_factory=list)

    @property
    def phases(self) -> tuple[float, float, float]:
        """The first run's wall time split: start-up to the first request, requests, after the last answer."""
        return (
            self.first_request_at - self.first.started_at,
            self.last_answer_at - self.first_request_at,
            self.first.ended_at - self.last_answer_at,
        )

    @property
    def efficiency(self) -> float:
        return self.workload.ideal_s / self.first.wall_s

    @property
    def peak_mb(self) -> float:
        return max(self.first.peak_mb, self.cold_cache.peak_mb, self.cached.peak_mb)


def timed(command: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path) -> Timing:
    """Run `command` to completion: its wall time and its own peak RSS (not its parent's)."""
    with log.open("wb") as out:
        started_at = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    cpu = usage.ru_utime + usage.ru_stime
    return Timing(wall, cpu, usage.ru_maxrss / 1024, proc.returncode, started_at, started_at + wall)


@contextmanager
def server(latency_ms: float, impl: str) -> Iterator[str]:
    """bench/server.py in its own process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), "--latency-ms", str(latency_ms), "--impl", impl],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            raise SystemExit(f"the benchmark server did not start: {line!r}")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def server_stats(base_url: str) -> dict[str, Any]:
    """Completions served so far; when the first request since the last call arrived, the last was answered."""
    stats_url = base_url.rsplit("/v1", 1)[0] + "/stats"
    with urllib.request.urlopen(stats_url, timeout=10) as response:
        stats: dict[str, Any] = json.load(response)
    return stats


PROMPT = """\
schema_version: 1
id: bench
version: 1
description: the benchmark's prompt
owner: {name: bench, oncall: nobody}
model:
  provider: openai
  name: bench-model
  temperature: 0
  max_tokens: 16
messages:
  - role: system
    content: Answer with the word answer and the case number.
  - role: user
    content: "Question for {{ ref }}: {{ question }}"
"""

EVALSET = """\
schema_version: 1
id: bench
prompt: bench
description: synthetic cases for the benchmark
graders:
  - {type: exact_match, name: answer}
  - {type: contains, name: mentions, value: answer}
cases_file: bench.jsonl
"""

CONFIG = """\
schema_version: 1
prices:
  bench-model: {input_per_mtok: 0.5, output_per_mtok: 1.5}
"""


def make_project(root: Path, cases: int) -> None:
    """A project with one prompt (provider openai) and `cases` cases in a JSONL file, in a git repo."""
    (root / "prompts").mkdir(parents=True)
    (root / "evalsets").mkdir()
    (root / "agent-evals.yaml").write_text(CONFIG)
    (root / "prompts" / "bench.yaml").write_text(PROMPT)
    (root / "evalsets" / "bench.yaml").write_text(EVALSET)
    with (root / "evalsets" / "bench.jsonl").open("w") as fh:
        for i in range(cases):
            row = {
                "id": f"case-{i}",
                "vars": {"ref": f"case-{i}", "question": f"what is the answer to question {i}?"},
                "expected": f"answer {i}",
                "tags": ["even" if i % 2 == 0 else "odd"],
            }
            fh.write(json.dumps(row) + "\n")
    (root / ".gitignore").write_text(".agent-evals/\n")
    # A run records the commit it ran at, as in CI; give it one.
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench project"], cwd=root, check=True)


def check_record(path: Path, cases: int, *, cached: bool) -> list[str]:
    """What is wrong with a run's record, if anything (counts, cache flags)."""
    if not path.is_file():
        return [f"{path.name}: no record written"]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    results = [line for line in lines if line["kind"] == "case"]
    problems = []
    passed = sum(1 for r in results if r["status"] == "pass")
    if passed != cases:
        statuses = sorted({r["status"] for r in results})
        problems.append(f"{path.name}: {passed} of {cases} cases passed (statuses: {statuses})")
    if cached and not all(r.get("cached") for r in results):
        problems.append(f"{path.name}: not every case came from the cache")
    if lines[-1]["kind"] != "end" or lines[-1]["status"] != "complete":
        problems.append(f"{path.name}: the record has no 'complete' end line")
    return problems


def run_workload(workload: Workload, *, impl: str, work: Path, extra_env: dict[str, str]) -> Result:
    root = work / workload.name
    make_project(root, workload.cases)
    with server(workload.latency_ms, impl) as base_url:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": base_url,
            "OPENAI_API_KEY": "sk-bench",
            **extra_env,
        }
        env.pop("AGENT_EVALS_PROFILE", None)
        command = [str(AGENT_EVALS), "run", "-j", str(workload.concurrency)]
        out = root / ".agent-evals" / "bench"
        logs = work / f"{workload.name}-"

        def go(tag: str, *flags: str) -> Timing:
            return timed(
                [*command, *flags, "--output", str(out / f"{tag}.jsonl")],
                cwd=root,
                env=env,
                log=Path(f"{logs}{tag}.log"),
            )

        server_stats(base_url)
        first = go("first", "--no-cache")
        stats = server_stats(base_url)
        cold = go("cold-cache")
        before = server_stats(base_url)["served"]
        cached = go("cached")
        served_cached = server_stats(base_url)["served"] - before
    result = Result(
        workload,
        first,
        cold,
        cached,
        served_first=stats["served"],
        served_cached=served_cached,
        first_request_at=stats["first_at"] or first.started_at,
        last_answer_at=stats["last_at"] or first.ended_at,
    )
    served_first = result.served_first
    for tag, timing in (("first", first), ("cold-cache", cold), ("cached", cached)):
        if timing.exit_code != 0:
            log = Path(f"{logs}{tag}.log").read_text()[-2000:]
            result.problems.append(f"{tag} run exited {timing.exit_code}:\n{log}")
        else:
            result.problems += check_record(out / f"{tag}.jsonl", workload.cases, cached=tag == "cached")
    if served_first != workload.cases:
        result.problems.append(f"the first run sent {served_first} requests for {workload.cases} cases")
    if served_cached:
        result.problems.append(f"the cached re-run sent {served_cached} requests")
    return result


def help_startup(runs: int) -> float:
    """Median wall time of `agent-evals --help`."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(AGENT_EVALS), "--help"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as aligned text: the first column left, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def report(results: Sequence[Result], help_s: float) -> str:
    head = ("workload", "N", "-j", "latency", "ideal", "wall", "efficiency", "CPU", "cold cache", "cached")
    rows = [(*head, "peak RSS")]
    for r in results:
        w = r.workload
        rows.append(
            (
                w.name,
                f"{w.cases:,}",
                str(w.concurrency),
                f"{w.latency_ms:g} ms",
                f"{w.ideal_s:.2f} s",
                f"{r.first.wall_s:.2f} s",
                f"{r.efficiency:.2f}",
                f"{r.first.cpu_s:.2f} s",
                f"{r.cold_cache.wall_s:.2f} s",
                f"{r.cached.wall_s:.2f} s",
                f"{r.peak_mb:.0f} MB",
            )
        )
    lines = table(rows)
    lines.append("")
    lines.append("the first run's wall time, split by the server's clock:")
    phases = [
        ("workload", "start-up to 1st request", "requests", "their efficiency", "after the last answer")
    ]
    for r in results:
        before, during, after = r.phases
        efficiency = r.workload.ideal_s / during if during > 0 else 0.0
        phases.append(
            (r.workload.name, f"{before:.2f} s", f"{during:.2f} s", f"{efficiency:.2f}", f"{after:.2f} s")
        )
    lines += table(phases)
    lines.append("")
    lines.append(f"agent-evals --help: {help_s:.3f} s (median of starts)")
    lines.append(f"machine: {machine()}")
    lines.append("targets: " + "; ".join(f"{k} {v}" for k, v in TARGETS.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=(*WORKLOADS, "all"), default="all")
    parser.add_argument(
        "--server", choices=("uvicorn", "aiohttp"), default="uvicorn", help="server implementation"
    )
    parser.add_argument("--help-runs", type=int, default=7, help="starts of --help to take the median of")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the projects and logs (path printed)")
    args = parser.parse_args(argv)
    if not AGENT_EVALS.exists():
        raise SystemExit(f"{AGENT_EVALS} not found: install agent-evals into this Python first (make bench)")
    chosen = list(WORKLOADS.values()) if args.workload == "all" else [WORKLOADS[args.workload]]
    work = Path(tempfile.mkdtemp(prefix="agent-evals-bench-"))
    results: list[Result] = []
    try:
        for workload in chosen:
            print(f"running {workload.name}: {workload.cases:,} cases, -j {workload.concurrency}, "
                  f"{workload.latency_ms:g} ms ...", file=sys.stderr, flush=True)  # fmt: skip
            results.append(run_workload(workload, impl=args.server, work=work, extra_env={}))
        help_s = help_startup(args.help_runs)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(report(results, help_s))
    problems = [p for r in results for p in r.problems]
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if args.json is not None:
        figures = {
            "machine": machine(),
            "help_s": help_s,
            "workloads": [
                {
                    **asdict(r.workload),
                    "ideal_s": r.workload.ideal_s,
                    "wall_s": r.first.wall_s,
                    "efficiency": r.efficiency,
                    "cpu_s": r.first.cpu_s,
                    "cold_cache_wall_s": r.cold_cache.wall_s,
                    "cached_wall_s": r.cached.wall_s,
                    "cached_cpu_s": r.cached.cpu_s,
                    "peak_mb": r.peak_mb,
                    "startup_to_first_request_s": r.phases[0],
                    "requests_s": r.phases[1],
                    "after_last_answer_s": r.phases[2],
                    "peak_mb_by_run": {
                        "first": r.first.peak_mb,
                        "cold_cache": r.cold_cache.peak_mb,
                        "cached": r.cached.peak_mb,
                    },
                    "problems": r.problems,
                }
                for r in results
            ],
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    # Problems (a failed run, a cached re-run that called the server) make the figures meaningless.
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
