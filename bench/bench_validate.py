"""`agent-evals validate` on this repository and on 100 files: what the pre-commit hook costs.

Copies the bundled ticket-triage example 50 times (50 prompts and 50 eval sets of 72 cases each,
ids renamed) into a temporary project and times `agent-evals validate` there and on this
repository, as a subprocess (interpreter start-up included), median of 7 runs after one warm-up
(bytecode written). Prints the figures; asserts nothing.

    .venv/bin/python bench/bench_validate.py
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7


def timed(cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-m", "agent_evals.cli", "validate"]
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)  # warm-up: bytecode
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hundred_files(root: Path) -> int:
    prompt = (ROOT / "prompts" / "ticket-triage.yaml").read_text(encoding="utf-8")
    evalset = (ROOT / "evalsets" / "ticket-triage.yaml").read_text(encoding="utf-8")
    (root / "prompts").mkdir()
    (root / "evalsets").mkdir()
    lines = 0
    for i in range(50):
        p = prompt.replace("id: ticket-triage", f"id: ticket-triage-{i}", 1)
        e = evalset.replace("id: ticket-triage", f"id: ticket-triage-{i}", 1).replace(
            "prompt: ticket-triage", f"prompt: ticket-triage-{i}", 1
        )
        (root / "prompts" / f"ticket-triage-{i}.yaml").write_text(p, encoding="utf-8")
        (root / "evalsets" / f"ticket-triage-{i}.yaml").write_text(e, encoding="utf-8")
        lines += p.count("\n") + e.count("\n")
    return lines


def main() -> int:
    here = timed(ROOT)
    with tempfile.TemporaryDirectory() as folder:
        lines = hundred_files(Path(folder))
        many = timed(Path(folder))
    print(f"agent-evals validate, this repository: {here:.2f} s (median of {RUNS})")
    print(
        f"agent-evals validate, 100 files (50 prompts, 50 eval sets, {lines:,} lines of YAML): {many:.2f} s"
    )
    print(
        f"machine: {os.cpu_count()}-core, Python {platform.python_version()}, {platform.processor() or platform.machine()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
