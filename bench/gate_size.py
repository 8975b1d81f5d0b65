"""The gate's false-alarm rate on no-op changes, with many more simulations than bench/gate_sim.py
gives each cell: for the cells where the overall test comes closest to its alpha (outputs that vary,
repeats), so the figure's Monte Carlo error is small next to the 5% it must stay under.

    .venv/bin/python bench/gate_size.py [--sims 1000] [--jobs 2]

The worlds, the records and the judging are bench/gate_sim.py's own (`draw_world`, `build`,
`judge`: the path of `agent-evals diff`); the policy is the defaults (alpha 0.05). Synthetic data,
seeded; prints a table, asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_sim import Cell, build, draw_world, judge, machine

from agent_evals.models import GatePolicy
from agent_evals.stats import pass_rate_interval

CELLS = tuple(
    Cell(n, k, "stochastic", clusters) for n in (200, 500) for k in (3, 5) for clusters in (False, True)
)


def _fails(args: tuple[Cell, int, int]) -> int:
    cell, start, count = args
    failed = 0
    for sim in range(start, start + count):
        rng = np.random.default_rng(np.random.SeedSequence([20261206, *cell.key, sim]))
        pair = build(draw_world(rng, cell, 0.0))
        verdict, _ = judge(pair.base, pair.cand, GatePolicy())
        failed += verdict.status == "fail"
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    started = time.perf_counter()
    chunk = 50
    tasks = [(cell, s, min(chunk, args.sims - s)) for cell in CELLS for s in range(0, args.sims, chunk)]
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        counts = pool.map(_fails, tasks)
    failed: dict[Cell, int] = {}
    for (cell, _, _), n in zip(tasks, counts, strict=True):
        failed[cell] = failed.get(cell, 0) + n
    print(f"* machine: {machine()}; {args.jobs} workers; {time.perf_counter() - started:.0f} s wall")
    print(f"* {args.sims:,} no-op changes a cell, judged at alpha 0.05 (the defaults)\n")
    print("| n | K | clusters | false alarms | 95% interval |")
    print("| ---: | ---: | --- | ---: | --- |")
    for cell in CELLS:
        ci = pass_rate_interval(failed[cell], args.sims)
        print(
            f"| {cell.n} | {cell.repeats} | {'yes' if cell.clusters else 'no'} | "
            f"{100 * failed[cell] / args.sims:.1f}% | {100 * ci.low:.1f}% to {100 * ci.high:.1f}% |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
