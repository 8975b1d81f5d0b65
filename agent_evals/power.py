"""How small a drop the gate can see: its power, simulated from the records at hand.

The gate's power statement ("this eval set can detect a drop of 6.2 points")
must be the power of the procedure the gate actually runs, on data like the
data it has. A normal formula with an assumed variance is neither: it ignores
the test's discreteness, clustering, and whether repeats carry information.
So the statement is simulated:

1. **Per-case pass probabilities** from the records. When outputs vary, each
   case's runs on both sides are pooled (under "the change does nothing" they
   are draws from one probability) and shrunk towards the eval set's rate with
   an empirical-Bayes beta-binomial fit; with one run per side the pair's
   discordance is what reveals the noise. When outputs are deterministic, a
   case's probability is its baseline outcome, 0 or 1: re-running changes nothing.
2. **A drop of d points**: cases, taken in a random order, stop passing (their
   probability falls to 0) until the probabilities removed add up to d times
   the number of cases; the last one loses only the remainder. Regressions in
   agents look like this: some inputs break, most are untouched.
3. **The gate's overall test** on each simulated pair, at the gate's alpha:
   the exact McNemar test with one run per side; with repeats the stratified
   test on runs (its continuity-corrected normal form, `stats.stratified_exact_pvalue`
   is the exact one); with clusters the cluster sign-flip test (normal form).
4. **The detectable drop** is the smallest d whose simulated power reaches the
   target (80%), found by bisection over common random numbers, so the
   answer is deterministic for the records given.

Everything is seeded; the same records give the same statement on every path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as _sps

__all__ = ["Runs", "detectable_drop", "pass_probabilities", "power_at"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Simulated pairs per power estimate: the estimate's standard error at 80% power is 2 points.
SIMULATIONS = 400
# Cases simulated at most; a larger set is subsampled and the drop found scaled by sqrt(subsample / n).
MAX_CASES = 2_000
# Bisection steps over [0, the baseline pass rate]: the drop to within 1/4096 of the rate.
_STEPS = 12
# Up to this many moved clusters, simulated cluster tests are decided exactly (2^k sign patterns).
_EXACT_FLIPS = 10
# Most repeats `repeats_needed` considers.
MAX_REPEATS = 10


@dataclass(frozen=True)
class Runs:
    """The per-case run counts of one paired group: what the gate's overall test sees.

    Attributes:
        base_passes, base_runs, cand_passes, cand_runs: per-case counts (identical
            repeats already counted once).
        clusters: per-case cluster keys when some cases share one, else None.
    """

    base_passes: IntArray
    base_runs: IntArray
    cand_passes: IntArray
    cand_runs: IntArray
    clusters: tuple[str, ...] | None = None

    @property
    def n(self) -> int:
        return int(self.base_runs.size)


def pass_probabilities(passes: npt.ArrayLike, runs: npt.ArrayLike) -> FloatArray:
    """Empirical-Bayes pass probability of each case from its passes over its runs.

    Cases' probabilities are modelled as Beta(a, b) draws (beta-binomial);
    a and b come from the moments of the observed rates, and each case gets its
    posterior mean ``(passes + a) / (runs + a + b)``. Cases whose runs always
    agree pull the fit towards a U shape; cases that disagree with themselves
    towards the middle. Identical outcomes everywhere give back the rates
    themselves; no spread between cases gives every case the pooled rate.

    Args:
        passes: per-case passing runs.
        runs: per-case runs (> 0).

    Returns:
        Per-case probabilities in [0, 1].
    """
    s = np.asarray(passes, dtype=np.float64)
    m = np.asarray(runs, dtype=np.float64)
    if s.shape != m.shape or s.ndim != 1 or np.any(m <= 0) or np.any((s < 0) | (s > m)):
        raise ValueError("need one-dimensional passes and runs with 0 <= passes <= runs, runs > 0")
    mu = float(s.sum() / m.sum())
    spread = mu * (1.0 - mu)
    if spread == 0.0:
        return np.full(s.size, mu)
    rates = s / m
    inv = float(np.mean(1.0 / m))
    if inv >= 1.0:
        # One run per case: the runs say nothing about noise; treat outcomes as they are.
        return rates
    # E[(r - mu)^2] = tau2 (1 - 1/m) + mu (1 - mu) / m, averaged over cases.
    tau2 = (float(np.mean((rates - mu) ** 2)) - spread * inv) / (1.0 - inv)
    tau2 = min(max(tau2, 0.0), spread)
    if tau2 >= spread * (1.0 - 1e-9):
        return rates
    if tau2 <= 0.0:
        return np.full(s.size, mu)
    concentration = spread / tau2 - 1.0
    return np.asarray((s + mu * concentration) / (m + concentration), dtype=np.float64)


@dataclass
class _Draws:
    """Common random numbers: the same draws serve every drop the bisection tries."""

    probs: FloatArray
    base: IntArray
    cand: IntArray
    base_runs: IntArray
    cand_runs: IntArray
    order: IntArray
    cum: FloatArray
    partial: FloatArray
    cluster_codes: IntArray | None
    n_clusters: int


def _draws(
    probs: FloatArray, runs: Runs, sims: int, seed: int, repeats: int | None, rng_cases: IntArray
) -> _Draws:
    rng = np.random.default_rng(seed)
    n = rng_cases.size
    base_runs = runs.base_runs[rng_cases] if repeats is None else np.full(n, repeats, dtype=np.int64)
    cand_runs = runs.cand_runs[rng_cases] if repeats is None else np.full(n, repeats, dtype=np.int64)
    p = probs[rng_cases]
    base = rng.binomial(base_runs, p, size=(sims, n))
    cand = rng.binomial(cand_runs, p, size=(sims, n))
    order = np.argsort(rng.random((sims, n)), axis=1)
    cum = np.cumsum(p[order], axis=1)
    codes = None
    n_clusters = 0
    if runs.clusters is not None:
        keys = [runs.clusters[i] for i in rng_cases.tolist()]
        index: dict[str, int] = {}
        codes = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
        n_clusters = len(index)
    return _Draws(p, base, cand, base_runs, cand_runs, order, cum, rng.random(sims), codes, n_clusters)


def _candidate(d: _Draws, drop: float) -> IntArray:
    """The candidate's passes when `drop` points of pass probability break."""
    n = d.cand.shape[1]
    target = drop * n
    broken_sorted = d.cum <= target + 1e-12
    k = broken_sorted.sum(axis=1)
    broken = np.zeros_like(broken_sorted)
    np.put_along_axis(broken, d.order, broken_sorted, axis=1)
    cand = np.where(broken, 0, d.cand)
    # The next case in the order loses only what remains of the drop: it keeps passing with
    # probability (p - rest) / p, decided by one uniform per simulation (monotone in the drop).
    rows = np.nonzero(k < n)[0]
    if rows.size:
        idx = d.order[rows, k[rows]]
        before = np.where(k[rows] > 0, d.cum[rows, np.maximum(k[rows] - 1, 0)], 0.0)
        rest = np.clip(target - before, 0.0, None)
        p = d.probs[idx]
        keep = np.where(p > 0, 1.0 - rest / np.where(p > 0, p, 1.0), 1.0)
        lose = d.partial[rows] >= keep
        cand[rows[lose], idx[lose]] = 0
    return cand


def _rejects(d: _Draws, cand: IntArray, alpha: float) -> npt.NDArray[np.bool_]:
    """Whether the gate's overall test (its fast form) rejects, per simulation."""
    base = d.base
    z_alpha = float(_sps.norm.ppf(alpha))
    if d.cluster_codes is not None:
        deltas = cand / d.cand_runs - base / d.base_runs
        order = np.argsort(d.cluster_codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(d.cluster_codes[order]) != 0])
        sums = np.add.reduceat(deltas[:, order], starts, axis=1)
        total = sums.sum(axis=1)
        scale = np.sqrt((sums**2).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(scale > 0, total / scale, 0.0)
        rejects = np.asarray(z <= z_alpha)
        _exact_sign_flips(sums, alpha, rejects)
        return rejects
    if np.all(d.base_runs == 1) and np.all(d.cand_runs == 1):
        regressions = ((base == 1) & (cand == 0)).sum(axis=1)
        fixes = ((base == 0) & (cand == 1)).sum(axis=1)
        discordant = regressions + fixes
        p = np.where(discordant > 0, _sps.binom.cdf(fixes, np.maximum(discordant, 1), 0.5), 1.0)
        return np.asarray(p <= alpha)
    total = (base + cand).astype(np.float64)
    runs = (d.base_runs + d.cand_runs).astype(np.float64)
    expected = d.cand_runs * total / runs
    variance = d.base_runs * d.cand_runs * total * (runs - total) / (runs**2 * np.maximum(runs - 1, 1))
    var = variance.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(var > 0, (cand.sum(axis=1) - expected.sum(axis=1) + 0.5) / np.sqrt(var), 0.0)
    return np.asarray(z <= z_alpha)


def _exact_sign_flips(sums: FloatArray, alpha: float, rejects: npt.NDArray[np.bool_]) -> None:
    """Where few clusters moved, the normal form is far off: decide those simulations exactly.

    With k non-zero cluster sums the sign-flip test has 2^k equally likely patterns; its
    smallest p-value is 2^-k, which no normal approximation knows.
    """
    nonzero = sums != 0
    counts = nonzero.sum(axis=1)
    for k in range(0, _EXACT_FLIPS + 1):
        rows = np.nonzero(counts == k)[0]
        if rows.size == 0:
            continue
        if k == 0:
            rejects[rows] = False
            continue
        values = np.array([sums[r][nonzero[r]] for r in rows.tolist()])
        patterns = 1.0 - 2.0 * ((np.arange(2**k)[:, None] >> np.arange(k)) & 1)
        flipped = values @ patterns.T
        observed = values.sum(axis=1, keepdims=True)
        tol = 1e-10 * np.abs(values).sum(axis=1, keepdims=True)
        p_less = (flipped <= observed + tol).mean(axis=1)
        rejects[rows] = p_less <= alpha


def _setup(
    runs: Runs, deterministic: bool, seed: int, repeats: int | None, sims: int
) -> tuple[_Draws, float]:
    if deterministic:
        probs = (runs.base_passes / np.maximum(runs.base_runs, 1) >= 0.5).astype(np.float64)
    else:
        probs = pass_probabilities(runs.base_passes + runs.cand_passes, runs.base_runs + runs.cand_runs)
    cases = np.arange(runs.n)
    scale = 1.0
    if runs.n > MAX_CASES:
        cases = np.sort(np.random.default_rng(seed + 1).choice(runs.n, MAX_CASES, replace=False))
        scale = math.sqrt(MAX_CASES / runs.n)
    return _draws(probs, runs, sims, seed, repeats, cases), scale


def _power(d: _Draws, drop: float, alpha: float) -> float:
    return float(np.mean(_rejects(d, _candidate(d, drop), alpha)))


def power_at(
    runs: Runs,
    drop: float,
    *,
    alpha: float,
    deterministic: bool,
    repeats: int | None = None,
    sims: int = SIMULATIONS,
    seed: int = 0,
) -> float:
    """Simulated probability that the gate's overall test catches a drop of `drop` points.

    Args:
        runs: the group's per-case counts.
        drop: the true drop in pass rate (0.05 = 5 points).
        alpha: the test's level.
        deterministic: outputs do not vary between runs.
        repeats: simulate this many runs per case and side instead of those recorded.
        sims: simulated pairs.
        seed: seed of the draws.
    """
    d, scale = _setup(runs, deterministic, seed, repeats, sims)
    # A drop on all n cases is as visible as a drop 1/scale times larger on the subsample.
    return _power(d, drop / scale, alpha)


def detectable_drop(
    runs: Runs,
    *,
    alpha: float,
    deterministic: bool,
    power: float = 0.8,
    sims: int = SIMULATIONS,
    seed: int = 0,
) -> float | None:
    """The smallest drop in pass rate the gate's overall test catches with probability `power`.

    Args:
        runs: the group's per-case counts (`Runs`).
        alpha: the level the overall test runs at.
        deterministic: outputs do not vary between runs (each case's outcome is fixed).
        power: the target probability of detection.
        sims: simulated pairs per power estimate.
        seed: seed of the draws; the answer is deterministic given it.

    Returns:
        The drop (0.062 = 6.2 points), or None when even every passing case breaking
        would not be caught that often.
    """
    if runs.n == 0:
        return None
    d, scale = _setup(runs, deterministic, seed, None, sims)
    ceiling = float(d.probs.sum()) / d.probs.size
    if ceiling <= 0.0 or _power(d, ceiling, alpha) < power:
        return None
    low, high = 0.0, ceiling
    for _ in range(_STEPS):
        mid = (low + high) / 2.0
        if _power(d, mid, alpha) >= power:
            high = mid
        else:
            low = mid
    return high * scale


def repeats_needed(
    runs: Runs,
    target: float,
    *,
    alpha: float,
    power: float = 0.8,
    sims: int = SIMULATIONS,
    seed: int = 0,
) -> int | None:
    """Fewest runs per case and side (at most `MAX_REPEATS`) that catch `target` with `power`.

    Only meaningful when outputs vary; None when even `MAX_REPEATS` is not enough.
    """
    for repeats in range(2, MAX_REPEATS + 1):
        if (
            power_at(runs, target, alpha=alpha, deterministic=False, repeats=repeats, sims=sims, seed=seed)
            >= power
        ):
            return repeats
    return None
