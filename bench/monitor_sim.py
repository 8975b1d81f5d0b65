"""A seeded simulation of `monitor`'s comparison (issue 16, acceptance 1): false alarms and power.

Feeds SYNTHETIC windows of graded production traffic, drawn in memory, through the step
`agent-evals monitor` takes after grading (`monitor.compare`: Fisher's exact one-sided test
and Newcombe's interval per comparison, overall and per stratum, Holm over every test, the
`cannot_tell` rule), and prints a Markdown table: how often a window with no change is
called a `drop` (false alarms; the promise is at most alpha = 5%), and how often a planted
drop is found (power). It asserts nothing: the figures are printed, to be read.

    .venv/bin/python bench/monitor_sim.py [--sims N] [--seed S] [--per-day D]

The data-generating process (numpy.random.default_rng(seed)); every simulation draws new
windows. Three strata, as an eval set's `stratify_by` gives them, with shares and true pass
rates email 50% / 0.92, chat 30% / 0.85, phone 20% / 0.75. A window is 7 days of D rows a
day (default 300: 2,100 rows a window); each stratum's row count is multinomial, each row
passes independently with its stratum's rate. Each simulation draws three windows: the
current one, the previous one and the one before the version went live (two comparisons,
so eight tests under Holm, as `monitor` runs them). The policy is the default
(alpha 0.05, min_drop 0.05). A planted drop lowers one stratum's rate in the current window.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe as machine  # bench/machine.py: the machine, named one way

from agent_evals.models import MonitorPolicy
from agent_evals.monitor import Tally, Window, compare

STRATA = {"email": (0.5, 0.92), "chat": (0.3, 0.85), "phone": (0.2, 0.75)}
T0 = dt.datetime(2026, 11, 1)


def draw(rng: np.random.Generator, n: int, drop: dict[str, float]) -> Tally:
    """One graded window: rows per stratum, passes per stratum (synthetic)."""
    shares = [share for share, _ in STRATA.values()]
    counts = rng.multinomial(n, shares)
    tally = Tally()
    for (name, (_, rate)), rows in zip(STRATA.items(), counts, strict=True):
        passed = int(rng.binomial(rows, rate - drop.get(name, 0.0)))
        tally.passed += passed
        tally.failed += int(rows) - passed
        tally.strata[name] = [passed, int(rows) - passed]
    return tally


def run(sims: int, n: int, drop: dict[str, float], seed: int, policy: MonitorPolicy) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    statuses = {"drop": 0, "ok": 0, "cannot_tell": 0}
    stratum_found = 0
    for _ in range(sims):
        current = draw(rng, n, drop)
        baselines = [
            ("previous window", Window("synthetic", T0, T0, "2"), draw(rng, n, {})),
            ("window before v2 went live", Window("synthetic", T0, T0, "1"), draw(rng, n, {})),
        ]
        comparisons, status, _ = compare(current, baselines, policy)
        statuses[status] += 1
        if status == "drop" and drop:
            planted = next(iter(drop))
            stratum_found += any(
                t.stratum == planted and t.p_adjusted <= policy.alpha and t.diff < 0
                for c in comparisons
                for t in c.strata
            )
    return {
        "drop": statuses["drop"] / sims,
        "cannot_tell": statuses["cannot_tell"] / sims,
        "in_stratum": stratum_found / sims,
    }


def interval(share: float, sims: int) -> str:
    """A 95% Clopper-Pearson interval for a simulated rate."""
    from agent_evals.stats import pass_rate_interval

    ci = pass_rate_interval(round(share * sims), sims)
    return f"{ci.low * 100:.1f}-{ci.high * 100:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sims", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--per-day", type=int, default=300)
    args = parser.parse_args()
    policy = MonitorPolicy()
    n = args.per_day * 7
    scenarios = [
        ("no change", {}),
        ("chat -10 pts (0.85 -> 0.75)", {"chat": 0.10}),
        ("chat -5 pts (0.85 -> 0.80)", {"chat": 0.05}),
        ("phone -10 pts (0.75 -> 0.65)", {"phone": 0.10}),
    ]
    started = time.monotonic()
    print(f"# monitor: false alarms and power ({args.sims} simulations each, seed {args.seed})\n")
    print(
        f"Windows of {n} synthetic rows (7 days x {args.per_day}); alpha {policy.alpha}, min_drop {policy.min_drop}.\n"
    )
    print("| scenario | called a drop | 95% interval | drop found in the planted stratum | cannot tell |")
    print("|---|---|---|---|---|")
    for i, (name, drop) in enumerate(scenarios):
        got = run(args.sims, n, drop, args.seed + i, policy)
        found = f"{got['in_stratum'] * 100:.1f}%" if drop else "-"
        print(
            f"| {name} | {got['drop'] * 100:.1f}% | {interval(got['drop'], args.sims)} | {found} "
            f"| {got['cannot_tell'] * 100:.1f}% |"
        )
    print(f"\n* machine: {machine()}; wall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
