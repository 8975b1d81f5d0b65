"""The agent-evals benchmark: is the runner's own overhead visible?

For each workload and server it starts bench/server.py (an OpenAI-compatible
server with a fixed latency, in its own process on the same machine), builds a
throwaway project with N synthetic cases, and runs `agent-evals run` end to end
as a subprocess:

1. `--no-cache`: every case is a real HTTP call. Reported: wall time, the
   ideal time N x latency / concurrency, their ratio (efficiency), the CPU of
   agent-evals and of the server, peak RSS.
2. a cold-cache run that fills the cache (reported, not a target);
3. the same command again, every answer from the cache (the server checks
   that it received no request).

Then, against the same server, the floor: bench/clients.py sending the same
requests with aiohttp on uvloop (the providers' client and loop) and nothing
of agent-evals, a whole process timed the same way. What a run takes beyond
it is agent-evals' own; what the floor takes beyond the ideal is the
interpreter's, the HTTP client's and the machine's.

The huge workload runs only the first by default (`--huge-cache` adds the
other two). Two servers by default: the plain asyncio server (a user's local
model server) and uvicorn (a fast one). `--repeat N`
measures everything N times and prints medians and ranges. It also times
`agent-evals --help` (median of several starts). Wall times are of the whole
process, interpreter start-up and record writing included. Figures and issue
17's acceptance items are printed, never asserted (a slow CI machine is not a bug).

    make bench                                  # or:
    .venv/bin/python bench/run_bench.py [--workload small,large,huge|all]
        [--server asyncio,uvicorn,aiohttp] [--repeat N] [--huge-cache] [--json FILE]
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
from collections.abc import Callable, Iterator, Sequence
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
    "huge": Workload("huge", cases=100_000, concurrency=200, latency_ms=20),
}

SERVERS = ("asyncio", "uvicorn", "aiohttp")

# Without --server, every workload on both. The plain asyncio server spends less CPU
# per request than uvicorn on this machine (bench/README.md), so huge runs on it too.
DEFAULT_SERVERS = {name: ("asyncio", "uvicorn") for name in ("small", "large", "huge")}


@dataclass
class Timing:
    wall_s: float
    cpu_s: float
    """User plus system CPU time of the agent-evals process (and of the git commands it waited for)."""
    peak_mb: float
    exit_code: int
    started_at: float
    """Epoch seconds, to set against the server's clock (same machine)."""
    ended_at: float


@dataclass
class Result:
    """One measurement of one workload on one server."""

    workload: Workload
    server: str
    first: Timing
    cold_cache: Timing | None
    """None when the cache runs were skipped (huge without --huge-cache)."""
    cached: Timing | None
    served_first: int
    served_cached: int
    server_cpu_s: float
    """CPU time the server process used during the first run."""
    first_request_at: float
    last_answer_at: float
    floor: Timing | None = None
    """The same requests sent by bench/clients.py alone (aiohttp on uvloop): the floor."""
    floor_first_request_at: float = 0.0
    floor_last_answer_at: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def phases(self) -> tuple[float, float, float]:
        """The first run's wall time split: start-up to the first request, requests, after the last answer."""
        return split(self.first, self.first_request_at, self.last_answer_at)

    @property
    def efficiency(self) -> float:
        return self.workload.ideal_s / self.first.wall_s

    @property
    def peak_mb(self) -> float:
        return max(t.peak_mb for t in (self.first, self.cold_cache, self.cached) if t is not None)

    def figures(self) -> dict[str, float]:
        """Every figure of this measurement by name (the names of the JSON output)."""
        before, during, after = self.phases
        figures = {
            "wall_s": self.first.wall_s,
            "efficiency": self.efficiency,
            "cpu_s": self.first.cpu_s,
            "server_cpu_s": self.server_cpu_s,
            "peak_mb": self.peak_mb,
            "peak_mb_first": self.first.peak_mb,
            "startup_to_first_request_s": before,
            "requests_s": during,
            "requests_efficiency": self.workload.ideal_s / during if during > 0 else 0.0,
            "after_last_answer_s": after,
        }
        if self.floor is not None:
            before, during, after = split(self.floor, self.floor_first_request_at, self.floor_last_answer_at)
            figures |= {
                "floor_wall_s": self.floor.wall_s,
                "floor_efficiency": self.workload.ideal_s / self.floor.wall_s,
                "floor_startup_to_first_request_s": before,
                "floor_requests_s": during,
                "floor_requests_efficiency": self.workload.ideal_s / during if during > 0 else 0.0,
                "floor_after_last_answer_s": after,
                "over_floor_s": self.first.wall_s - self.floor.wall_s,
            }
        if self.cold_cache is not None and self.cached is not None:
            figures |= {
                "cold_cache_wall_s": self.cold_cache.wall_s,
                "cached_wall_s": self.cached.wall_s,
                "cached_cpu_s": self.cached.cpu_s,
                "peak_mb_cold_cache": self.cold_cache.peak_mb,
                "peak_mb_cached": self.cached.peak_mb,
            }
        return figures


def split(timing: Timing, first_request_at: float, last_answer_at: float) -> tuple[float, float, float]:
    """A process's wall time split by the server's clock: start-up to its first request, the
    requests, after the last answer."""
    return (
        first_request_at - timing.started_at,
        last_answer_at - first_request_at,
        timing.ended_at - last_answer_at,
    )


@dataclass
class Summary:
    """The repeated measurements of one workload on one server: medians and ranges."""

    workload: Workload
    server: str
    results: list[Result]

    def values(self, name: str) -> list[float]:
        return [f[name] for f in (r.figures() for r in self.results) if name in f]

    def median(self, name: str) -> float | None:
        values = self.values(name)
        return statistics.median(values) if values else None

    @property
    def problems(self) -> list[str]:
        return [p for r in self.results for p in r.problems]


def timed(command: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path) -> Timing:
    """Run `command` to completion: its wall time, CPU time and peak RSS (not its parent's).

    On Linux, wait4's ru_maxrss is the larger of the process's own peak and that of
    any descendant it waited for (agent-evals waits for its `git` commands, a few MB),
    so it is agent-evals' own peak; the CPU times include those descendants'.
    """
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
    """Completions served so far, when the first request since the last call arrived and the last was
    answered, and the server's CPU time so far."""
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
    """What is wrong with a run's record, if anything (counts, cache flags).

    Reads the record a line at a time: a huge run's record is too big to hold at once.
    """
    if not path.is_file():
        return [f"{path.name}: no record written"]
    passed = 0
    statuses: set[str] = set()
    all_cached = True
    last: dict[str, Any] = {}
    with path.open(encoding="utf-8") as fh:
        for text in fh:
            last = json.loads(text)
            if last["kind"] == "case":
                statuses.add(last["status"])
                passed += last["status"] == "pass"
                all_cached = all_cached and bool(last.get("cached"))
    problems = []
    if passed != cases:
        problems.append(f"{path.name}: {passed} of {cases} cases passed (statuses: {sorted(statuses)})")
    if cached and not all_cached:
        problems.append(f"{path.name}: not every case came from the cache")
    if last.get("kind") != "end" or last.get("status") != "complete":
        problems.append(f"{path.name}: the record has no 'complete' end line")
    return problems


def floor_command(workload: Workload, base_url: str) -> list[str]:
    """bench/clients.py sending `workload`'s requests to the running server with aiohttp on uvloop."""
    return [
        sys.executable, str(HERE / "clients.py"), "--client", "aiohttp+uvloop",
        "--url", base_url + "/chat/completions", "--cases", str(workload.cases),
        "--concurrency", str(workload.concurrency), "--latency-ms", f"{workload.latency_ms:g}",
    ]  # fmt: skip


def run_workload(
    workload: Workload,
    *,
    impl: str,
    root: Path,
    logs: Path,
    cache_runs: bool,
    extra_env: dict[str, str],
    with_floor: bool = True,
) -> Result:
    """One measurement of `workload` on server `impl`, in the project at `root` (made by make_project),
    and, `with_floor`, of the floor (`floor_command`) on the same server."""
    # A fresh start: no cache, no records of an earlier measurement. The history store exists, as
    # in any project after its first run: creating it (its migrations) is once per project.
    shutil.rmtree(root / ".agent-evals", ignore_errors=True)
    subprocess.run(
        [str(AGENT_EVALS), "history", "--format", "json"], cwd=root, check=True, stdout=subprocess.DEVNULL
    )
    logs.mkdir(parents=True, exist_ok=True)
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

        def go(tag: str, *flags: str) -> Timing:
            return timed(
                [*command, *flags, "--output", str(out / f"{tag}.jsonl")],
                cwd=root,
                env=env,
                log=logs / f"{tag}.log",
            )

        cpu_before = server_stats(base_url)["cpu_s"]
        first = go("first", "--no-cache")
        stats = server_stats(base_url)
        cold = cached = None
        served_cached = 0
        if cache_runs:
            cold = go("cold-cache")
            before = server_stats(base_url)["served"]
            cached = go("cached")
            served_cached = server_stats(base_url)["served"] - before
        floor, floor_stats, served_floor = None, None, 0
        if with_floor:
            # (Reading the stats resets the server's first and last request times.)
            before = server_stats(base_url)["served"]
            floor = timed(
                floor_command(workload, base_url), cwd=root, env=dict(os.environ), log=logs / "floor.log"
            )
            floor_stats = server_stats(base_url)
            served_floor = floor_stats["served"] - before
    result = Result(
        workload,
        impl,
        first,
        cold,
        cached,
        served_first=stats["served"],
        served_cached=served_cached,
        server_cpu_s=stats["cpu_s"] - cpu_before,
        first_request_at=stats["first_at"] or first.started_at,
        last_answer_at=stats["last_at"] or first.ended_at,
    )
    if floor is not None and floor_stats is not None:
        result.floor = floor
        result.floor_first_request_at = floor_stats["first_at"] or floor.started_at
        result.floor_last_answer_at = floor_stats["last_at"] or floor.ended_at
        if floor.exit_code != 0:
            log = (logs / "floor.log").read_text()[-2000:]
            result.problems.append(f"{workload.name} on {impl}: the floor exited {floor.exit_code}:\n{log}")
        elif served_floor != workload.cases:
            result.problems.append(
                f"{workload.name} on {impl}: the floor sent {served_floor} requests for {workload.cases} cases"
            )
    for tag, timing in (("first", first), ("cold-cache", cold), ("cached", cached)):
        if timing is None:
            continue
        if timing.exit_code != 0:
            log = (logs / f"{tag}.log").read_text()[-2000:]
            result.problems.append(f"{workload.name} on {impl}: {tag} run exited {timing.exit_code}:\n{log}")
        else:
            found = check_record(out / f"{tag}.jsonl", workload.cases, cached=tag == "cached")
            result.problems += [f"{workload.name} on {impl}: {p}" for p in found]
    if result.served_first != workload.cases:
        result.problems.append(
            f"{workload.name} on {impl}: the first run sent {result.served_first} requests "
            f"for {workload.cases} cases"
        )
    if served_cached:
        result.problems.append(f"{workload.name} on {impl}: the cached re-run sent {served_cached} requests")
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


def cell(summary: Summary, name: str, fmt: str) -> str:
    """The median of a figure, and with more than one measurement its range: `2.51 (2.40-2.70)`."""
    values = summary.values(name)
    if not values:
        return "-"
    text = format(statistics.median(values), fmt)
    if len(values) > 1:
        text += f" ({min(values):{fmt}}-{max(values):{fmt}})"
    return text


# Issue 17's acceptance: (item, the workload it reads, the servers it applies to (None: each
# server measured), what is measured, whether it is met). Printed beside the figures, never asserted.
Check = Callable[[Summary], tuple[str, bool]]


def _floor(s: Summary) -> str:
    """The floor's efficiency, said beside a run's: how far the HTTP client alone gets."""
    floor = s.median("floor_efficiency")
    return "" if floor is None else f" (the HTTP client alone: {floor:.2f})"


def _small_efficiency(s: Summary) -> tuple[str, bool]:
    efficiency = s.median("efficiency") or 0.0
    return f"efficiency {efficiency:.2f}{_floor(s)}", efficiency >= 0.8


def _large_efficiency_memory(s: Summary) -> tuple[str, bool]:
    efficiency, peak = s.median("efficiency") or 0.0, s.median("peak_mb") or 0.0
    return (
        f"efficiency {efficiency:.2f}{_floor(s)}, peak RSS {peak:.0f} MB",
        efficiency >= 0.7 and peak <= 150,
    )


def _large_cached(s: Summary) -> tuple[str, bool]:
    cached = s.median("cached_wall_s")
    if cached is None:
        return "not measured (no cache runs)", False
    return f"cached re-run {cached:.2f} s", cached < 1


def _huge(s: Summary) -> tuple[str, bool]:
    wall, efficiency, peak = (s.median(n) or 0.0 for n in ("wall_s", "efficiency", "peak_mb"))
    return f"wall {wall:.2f} s, efficiency {efficiency:.2f}, peak RSS {peak:.0f} MB", peak <= 300


ACCEPTANCE: list[tuple[str, str, tuple[str, ...] | None, Check]] = [
    ("1. 2,000 cases, -j 50, 50 ms, plain asyncio server: efficiency >= 0.8", "small", ("asyncio",), _small_efficiency),
    ("2. 10,000 cases, -j 100, 20 ms: efficiency >= 0.7, peak RSS <= 150 MB", "large", None, _large_efficiency_memory),
    ("3. the cached 10,000-case re-run under 1 s", "large", None, _large_cached),
    ("4. 100,000 cases, -j 200, 20 ms (ideal 10 s): figures, peak RSS <= 300 MB", "huge", None, _huge),
]  # fmt: skip


def acceptance(summaries: Sequence[Summary]) -> list[dict[str, Any]]:
    """Each acceptance item on each server it was measured on: what was measured and whether it is met."""
    items: list[dict[str, Any]] = []
    for item, workload, servers, check in ACCEPTANCE:
        found = [
            s for s in summaries if s.workload.name == workload and (servers is None or s.server in servers)
        ]
        if not found:
            items.append({"item": item, "server": None, "measured": "not measured", "met": None})
        for s in found:
            measured, met = check(s)
            items.append({"item": item, "server": s.server, "measured": measured, "met": met})
    return items


def report(summaries: Sequence[Summary], help_s: float, repeat: int) -> str:
    head = ("workload", "server", "N", "-j", "latency", "ideal s", "wall s", "efficiency", "CPU s")
    rows = [(*head, "server CPU s", "cold cache s", "cached s", "peak RSS MB first/cold/cached")]
    for s in summaries:
        w = s.workload
        peaks = [cell(s, f"peak_mb_{run}", ".0f") for run in ("first", "cold_cache", "cached")]
        rows.append(
            (
                w.name,
                s.server,
                f"{w.cases:,}",
                str(w.concurrency),
                f"{w.latency_ms:g} ms",
                f"{w.ideal_s:.2f}",
                cell(s, "wall_s", ".2f"),
                cell(s, "efficiency", ".2f"),
                cell(s, "cpu_s", ".2f"),
                cell(s, "server_cpu_s", ".2f"),
                cell(s, "cold_cache_wall_s", ".2f"),
                cell(s, "cached_wall_s", ".2f"),
                " / ".join(peaks),
            )
        )
    lines = []
    if repeat > 1:
        lines.append(f"medians of {repeat} measurements, (min-max) beside each")
    lines += table(rows)
    lines.append("")
    lines.append("the first run's wall time, split by the server's clock (seconds):")
    phases = [("workload", "server", "start-up to 1st request", "requests", "their efficiency", "after the last answer")]  # fmt: skip
    for s in summaries:
        phases.append(
            (
                s.workload.name,
                s.server,
                cell(s, "startup_to_first_request_s", ".2f"),
                cell(s, "requests_s", ".2f"),
                cell(s, "requests_efficiency", ".2f"),
                cell(s, "after_last_answer_s", ".2f"),
            )
        )
    lines += table(phases)
    floors = [s for s in summaries if s.values("floor_wall_s")]
    if floors:
        lines.append("")
        lines.append(
            "the floor: the same requests from bench/clients.py alone (aiohttp on uvloop, nothing of "
            "agent-evals), a whole process timed the same way:"
        )
        rows = [("workload", "server", "wall s", "efficiency", "start-up to 1st request", "requests",
                 "their efficiency", "agent-evals' run beyond it s")]  # fmt: skip
        for s in floors:
            rows.append(
                (
                    s.workload.name,
                    s.server,
                    cell(s, "floor_wall_s", ".2f"),
                    cell(s, "floor_efficiency", ".2f"),
                    cell(s, "floor_startup_to_first_request_s", ".2f"),
                    cell(s, "floor_requests_s", ".2f"),
                    cell(s, "floor_requests_efficiency", ".2f"),
                    cell(s, "over_floor_s", ".2f"),
                )
            )
        lines += table(rows)
    lines.append("")
    lines.append("issue 17's acceptance (medians; printed, not asserted):")
    verdicts = {True: "met", False: "NOT MET", None: "-"}
    items = [("item", "server", "measured", "")]
    for a in acceptance(summaries):
        items.append((a["item"], a["server"] or "-", a["measured"], verdicts[a["met"]]))
    lines += table(items)
    lines.append("")
    lines.append(f"agent-evals --help: {help_s:.3f} s (median of starts)")
    lines.append(f"machine: {machine()}")
    return "\n".join(lines)


def as_json(summaries: Sequence[Summary], help_s: float, repeat: int) -> dict[str, Any]:
    """The figures for --json: per workload and server the medians (under the names of
    Result.figures), their ranges, every measurement, and the acceptance items."""
    workloads = []
    for s in summaries:
        names = dict.fromkeys(name for r in s.results for name in r.figures())
        workloads.append(
            {
                **asdict(s.workload),
                "server": s.server,
                "ideal_s": s.workload.ideal_s,
                **{name: s.median(name) for name in names},
                "range": {name: [min(s.values(name)), max(s.values(name))] for name in names},
                "runs": [r.figures() for r in s.results],
                "problems": s.problems,
            }
        )
    return {
        "machine": machine(),
        "repeat": repeat,
        "help_s": help_s,
        "workloads": workloads,
        "acceptance": acceptance(summaries),
    }


def _names(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}: choose from {', '.join(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workload",
        type=lambda t: list(WORKLOADS) if t == "all" else _names(t, list(WORKLOADS), "workload"),
        default=list(WORKLOADS),
        help="all (default) or a comma list of " + ", ".join(WORKLOADS),
    )
    parser.add_argument(
        "--server",
        type=lambda t: _names(t, SERVERS, "server"),
        help="a comma list of " + ", ".join(SERVERS) + " for every workload (default: asyncio,uvicorn)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure everything N times: medians and ranges"
    )
    parser.add_argument(
        "--huge-cache", action="store_true", help="also the cold-cache and cached runs of huge"
    )
    parser.add_argument("--help-runs", type=int, default=7, help="starts of --help to take the median of")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the projects and logs (path printed)")
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the floor (bench/clients.py alone on each workload)"
    )
    args = parser.parse_args(argv)
    if not AGENT_EVALS.exists():
        raise SystemExit(f"{AGENT_EVALS} not found: install agent-evals into this Python first (make bench)")
    chosen = [WORKLOADS[name] for name in args.workload]
    summaries = [
        Summary(w, impl, [])
        for w in chosen
        for impl in (args.server if args.server is not None else DEFAULT_SERVERS[w.name])
    ]
    work = Path(tempfile.mkdtemp(prefix="agent-evals-bench-"))
    try:
        for w in chosen:
            make_project(work / w.name, w.cases)
        # Repetitions interleave, so a slow minute of the machine touches every figure a little.
        for repetition in range(1, args.repeat + 1):
            for s in summaries:
                w = s.workload
                print(f"[{repetition}/{args.repeat}] {w.name} on {s.server}: {w.cases:,} cases, "
                      f"-j {w.concurrency}, {w.latency_ms:g} ms ...", file=sys.stderr, flush=True)  # fmt: skip
                result = run_workload(
                    w,
                    impl=s.server,
                    root=work / w.name,
                    logs=work / "logs" / f"{w.name}-{s.server}-{repetition}",
                    cache_runs=w.name != "huge" or args.huge_cache,
                    extra_env={},
                    with_floor=not args.no_floor,
                )
                s.results.append(result)
        help_s = help_startup(args.help_runs)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(report(summaries, help_s, args.repeat))
    problems = [p for s in summaries for p in s.problems]
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(summaries, help_s, args.repeat), indent=2) + "\n")
    # Problems (a failed run, a cached re-run that called the server) make the figures meaningless.
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
