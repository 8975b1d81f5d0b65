"""Paired statistics for the gate: is the candidate prompt worse than the baseline?

Everything here works on *paired* per-case outcomes: for each case, the baseline
value and the candidate value, in the same order. Values are pass indicators
(0/1), per-case mean pass rates over K repeats, or scores in [0, 1].

Conventions used throughout:

- The delta of a case is ``cand - base``; a negative mean delta means the
  candidate is worse.
- ``alternative="less"`` is the gate's question, "is the candidate worse?"
  (H1: mean delta < 0, or for McNemar: fewer fixes than regressions).
  ``"greater"`` asks whether it is better; ``"two-sided"`` whether it differs.
- Cases may share a cluster key (same conversation or source trace). Standard
  errors are then cluster-robust with the CR1 small-sample factor G/(G-1), so
  that when every case is its own cluster the clustered SE equals the plain
  ``std(ddof=1) / sqrt(n)``. Bootstrap and permutation tests resample or
  sign-flip whole clusters.
- Bootstrap intervals are percentile intervals (two-sided, equal tails).

The functions are pure and deterministic given their ``seed``; invalid input
raises ``ValueError`` (these are caller bugs, not user configuration errors).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as _sps

__all__ = [
    "Alternative",
    "ClusterKeys",
    "Interval",
    "McNemarResult",
    "MeanShift",
    "NonInferiority",
    "PairedTest",
    "aggregate_repeats",
    "clustered_rate_interval",
    "clustered_standard_error",
    "detectable_drop",
    "drop_power",
    "drop_pvalue",
    "flaky",
    "gatekeeping",
    "holm",
    "mcnemar_exact",
    "mean_shift",
    "newcombe_interval",
    "noninferior",
    "paired_bootstrap_ci",
    "paired_test",
    "pass_rate_interval",
    "rows_needed",
    "stratified_exact_pvalue",
]

Alternative = Literal["less", "greater", "two-sided"]
ClusterKeys = Sequence[Hashable] | npt.NDArray[Any]
FloatArray = npt.NDArray[np.float64]

_ALTERNATIVES: tuple[str, ...] = ("less", "greater", "two-sided")

# Upper bound on the number of array elements materialised per resampling chunk
# (8 MB of float64): big enough to amortise numpy call overhead, small enough
# to stay in cache and never blow up memory on large eval sets.
_CHUNK_ELEMENTS = 2**20

# Drawing one multinomial category costs roughly 25 uniform index draws plus
# gathers, so grouping clusters into distinct "atoms" only pays off when there
# are many fewer atoms than clusters (always true for 0/1 outcomes).
_ATOM_SPEEDUP = 25

# Sign-flip tests enumerate all 2**G sign patterns up to this many clusters.
_MAX_EXACT_CLUSTERS = 16


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """Exact McNemar test on paired pass/fail outcomes.

    Attributes:
        n: number of paired cases.
        regressions: cases the baseline passed and the candidate failed (b).
        fixes: cases the baseline failed and the candidate passed (c).
        pvalue: exact binomial p-value on the b + c discordant pairs.
        alternative: the alternative hypothesis tested.
    """

    n: int
    regressions: int
    fixes: int
    pvalue: float
    alternative: Alternative


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with a two-sided interval.

    Attributes:
        estimate: the point estimate (NaN when there is no data).
        low: lower bound.
        high: upper bound.
        confidence: the interval's nominal coverage, e.g. 0.95.
    """

    estimate: float
    low: float
    high: float
    confidence: float


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Outcome of `paired_test`.

    Attributes:
        method: ``"mcnemar-exact"`` or ``"paired-permutation"``.
        n: number of paired cases.
        mean_delta: mean of ``cand - base``.
        se: standard error of ``mean_delta`` (clustered when clusters were given).
        pvalue: p-value for the requested alternative.
    """

    method: str
    n: int
    mean_delta: float
    se: float
    pvalue: float


@dataclass(frozen=True, slots=True)
class NonInferiority:
    """Outcome of a non-inferiority check.

    Attributes:
        margin: the largest drop in the mean that is still acceptable (>= 0).
        interval: paired bootstrap interval for the mean of ``cand - base``.
        passed: whether ``interval.low > -margin``.
    """

    margin: float
    interval: Interval
    passed: bool


# --- input checks -------------------------------------------------------------


def _as_1d(values: npt.ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _paired(base: npt.ArrayLike, cand: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    base_arr = _as_1d(base, "base")
    cand_arr = _as_1d(cand, "cand")
    if base_arr.shape != cand_arr.shape:
        raise ValueError(f"base and cand differ in length: {base_arr.size} != {cand_arr.size}")
    if base_arr.size == 0:
        raise ValueError("no cases: base and cand are empty")
    return base_arr, cand_arr


def _is_binary(values: FloatArray) -> bool:
    return bool(np.all((values == 0.0) | (values == 1.0)))


def _cluster_codes(clusters: ClusterKeys, n: int) -> tuple[npt.NDArray[np.intp], int]:
    """Map arbitrary hashable cluster keys to codes 0..G-1 in order of first appearance."""
    keys = list(clusters)
    if len(keys) != n:
        raise ValueError(f"clusters has {len(keys)} keys for {n} cases")
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(key, len(index)) for key in keys), dtype=np.intp, count=n)
    return codes, len(index)


def _cluster_totals(codes: npt.NDArray[np.intp], values: FloatArray, n_clusters: int) -> FloatArray:
    return np.asarray(np.bincount(codes, weights=values, minlength=n_clusters), dtype=np.float64)


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")


def _check_unit_open(value: float, name: str) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


# --- McNemar ------------------------------------------------------------------


def mcnemar_exact(
    base_pass: npt.ArrayLike,
    cand_pass: npt.ArrayLike,
    alternative: Alternative = "less",
) -> McNemarResult:
    """Exact McNemar test on paired pass/fail outcomes.

    Under the null hypothesis a discordant pair is equally likely to be a
    regression or a fix, so the number of fixes among the b + c discordant pairs
    is Binomial(b + c, 1/2); this is tested with `scipy.stats.binomtest`.

    Args:
        base_pass: per-case baseline outcomes (bool or 0/1).
        cand_pass: per-case candidate outcomes (bool or 0/1), same order.
        alternative: ``"less"`` (default): the candidate is worse, i.e. fewer
            fixes than regressions; ``"greater"``: it is better;
            ``"two-sided"``: it differs.

    Returns:
        The 2x2 discordant counts and the p-value; 1.0 when there are no
        discordant pairs.

    Raises:
        ValueError: if the inputs are empty, differ in length, are not 0/1, or
            ``alternative`` is unknown.
    """
    _check_alternative(alternative)
    base_arr, cand_arr = _paired(base_pass, cand_pass)
    if not (_is_binary(base_arr) and _is_binary(cand_arr)):
        raise ValueError("mcnemar_exact needs pass/fail outcomes (bool or 0/1)")
    base_ok = base_arr == 1.0
    cand_ok = cand_arr == 1.0
    regressions = int(np.count_nonzero(base_ok & ~cand_ok))
    fixes = int(np.count_nonzero(~base_ok & cand_ok))
    discordant = regressions + fixes
    if discordant == 0:
        pvalue = 1.0
    else:
        pvalue = float(_sps.binomtest(fixes, discordant, 0.5, alternative=alternative).pvalue)
    return McNemarResult(
        n=int(base_arr.size),
        regressions=regressions,
        fixes=fixes,
        pvalue=min(pvalue, 1.0),
        alternative=alternative,
    )


# --- bootstrap ----------------------------------------------------------------


def _bootstrap_means(
    sums: FloatArray,
    sizes: FloatArray,
    n_resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Means of ``n_resamples`` cluster bootstrap resamples.

    A resample draws G clusters with replacement; its mean delta is the ratio
    (sum of drawn cluster sums) / (sum of drawn cluster sizes), which weights
    every case equally however the clusters vary in size.
    """
    n_clusters = sums.size
    pairs = np.column_stack([sums, sizes])
    atoms, multiplicity = np.unique(pairs, axis=0, return_counts=True)
    if atoms.shape[0] * _ATOM_SPEEDUP < n_clusters:
        # Clusters with the same (sum, size) are interchangeable, so how often
        # each distinct atom is drawn is Multinomial(G, multiplicity / G): the
        # same distribution as drawing cluster indices, at a fraction of the cost.
        counts = rng.multinomial(n_clusters, multiplicity / n_clusters, size=n_resamples)
        totals = counts @ atoms
        result: FloatArray = totals[:, 0] / totals[:, 1]
        return result

    means = np.empty(n_resamples, dtype=np.float64)
    equal_sizes = bool(np.all(sizes == sizes[0]))
    chunk = max(1, _CHUNK_ELEMENTS // n_clusters)
    buffer = np.empty((min(chunk, n_resamples), n_clusters), dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        idx = rng.integers(0, n_clusters, size=(rows, n_clusters), dtype=np.int32)
        drawn = buffer[:rows]
        # mode="clip" skips numpy's bounds check; indices are in range by construction.
        np.take(sums, idx, out=drawn, mode="clip")
        numerators = drawn.sum(axis=1)
        if equal_sizes:
            denominators: FloatArray | float = float(sizes[0] * n_clusters)
        else:
            np.take(sizes, idx, out=drawn, mode="clip")
            denominators = drawn.sum(axis=1)
        means[start : start + rows] = numerators / denominators
    return means


def paired_bootstrap_ci(
    base: npt.ArrayLike,
    cand: npt.ArrayLike,
    *,
    clusters: ClusterKeys | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval for the mean of ``cand - base``.

    Cases are resampled with replacement, keeping each case's baseline and
    candidate together. With ``clusters``, whole clusters are resampled (cluster
    bootstrap) and each resample's mean is weighted by case, not by cluster.
    With few clusters (fewer than ~20) any bootstrap interval is too narrow.

    Args:
        base: per-case baseline values.
        cand: per-case candidate values, same order.
        clusters: optional per-case cluster keys (any hashable).
        confidence: two-sided coverage of the interval, in (0, 1).
        n_resamples: number of bootstrap resamples.
        seed: seed for `numpy.random.default_rng`; the same seed gives the same
            interval.

    Returns:
        The observed mean delta and its interval. When all deltas are equal the
        interval has zero width.

    Raises:
        ValueError: on empty or mismatched input, a bad ``confidence`` or
            ``n_resamples``.
    """
    _check_unit_open(confidence, "confidence")
    _check_positive_int(n_resamples, "n_resamples")
    base_arr, cand_arr = _paired(base, cand)
    deltas = cand_arr - base_arr
    first = float(deltas[0])
    if np.all(deltas == first):
        # Every resample has the same mean; skipping the bootstrap keeps the
        # interval exactly [d, d] instead of d plus rounding noise.
        return Interval(estimate=first, low=first, high=first, confidence=confidence)

    if clusters is None:
        sums = deltas
        sizes = np.ones_like(deltas)
    else:
        codes, n_clusters = _cluster_codes(clusters, deltas.size)
        sums = _cluster_totals(codes, deltas, n_clusters)
        sizes = _cluster_totals(codes, np.ones_like(deltas), n_clusters)

    means = _bootstrap_means(sums, sizes, n_resamples, np.random.default_rng(seed))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(
        estimate=float(deltas.mean()),
        low=float(low),
        high=float(high),
        confidence=confidence,
    )


# --- pass rate ----------------------------------------------------------------


def pass_rate_interval(
    passed: int,
    n: int,
    confidence: float = 0.95,
    method: Literal["exact", "jeffreys"] = "exact",
) -> Interval:
    """Interval for a binomial pass rate.

    Args:
        passed: number of passing cases.
        n: number of cases.
        confidence: two-sided coverage, in (0, 1).
        method: ``"exact"`` for Clopper–Pearson (never under-covers, somewhat
            wide); ``"jeffreys"`` for equal-tailed quantiles of the
            Beta(passed + 1/2, n - passed + 1/2) posterior, with the bound set to
            0 when ``passed == 0`` and to 1 when ``passed == n`` (Brown, Cai and
            DasGupta 2001).

    Returns:
        ``passed / n`` and its interval; ``Interval(nan, 0.0, 1.0)`` when n == 0.

    Raises:
        ValueError: if not ``0 <= passed <= n``, or on an unknown method.
    """
    _check_unit_open(confidence, "confidence")
    if method not in ("exact", "jeffreys"):
        raise ValueError(f"method must be 'exact' or 'jeffreys', got {method!r}")
    if n < 0 or not 0 <= passed <= n:
        raise ValueError(f"need 0 <= passed <= n, got passed={passed}, n={n}")
    if n == 0:
        return Interval(estimate=math.nan, low=0.0, high=1.0, confidence=confidence)

    if method == "exact":
        ci = _sps.binomtest(passed, n).proportion_ci(confidence_level=confidence, method="exact")
        low, high = float(ci.low), float(ci.high)
    else:
        tail = (1.0 - confidence) / 2.0
        posterior = _sps.beta(passed + 0.5, n - passed + 0.5)
        low = 0.0 if passed == 0 else float(posterior.ppf(tail))
        high = 1.0 if passed == n else float(posterior.ppf(1.0 - tail))
    return Interval(estimate=passed / n, low=low, high=high, confidence=confidence)


# --- standard errors ----------------------------------------------------------


def clustered_standard_error(deltas: npt.ArrayLike, clusters: ClusterKeys | None = None) -> float:
    """Standard error of the mean of ``deltas``, cluster-robust when clusters are given.

    Without clusters: ``std(deltas, ddof=1) / sqrt(n)``.

    With G clusters (Miller 2024, "Adding Error Bars to Evals", clustered SE,
    with the CR1 small-sample factor)::

        SE = sqrt(G / (G - 1) * sum_c (sum_{i in c} (d_i - mean(d)))**2) / n

    The G/(G-1) factor makes the clustered SE equal the plain ddof=1 SE when
    every case is its own cluster, and offsets the downward bias with few
    clusters. Without it the formula is Miller's as printed.

    Args:
        deltas: per-case values (usually ``cand - base``).
        clusters: optional per-case cluster keys (any hashable).

    Returns:
        The standard error; NaN when it cannot be estimated (one case, or a
        single cluster).

    Raises:
        ValueError: on empty input or a cluster list of the wrong length.
    """
    values = _as_1d(deltas, "deltas")
    n = values.size
    if n == 0:
        raise ValueError("no cases: deltas is empty")
    if clusters is None:
        return float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    codes, n_clusters = _cluster_codes(clusters, n)
    if n_clusters < 2:
        return math.nan
    centred_sums = _cluster_totals(codes, values - values.mean(), n_clusters)
    variance_sum = float(np.sum(centred_sums**2)) * n_clusters / (n_clusters - 1)
    return math.sqrt(variance_sum) / n


# --- paired tests -------------------------------------------------------------


def _sign_flip_pvalue(
    cluster_sums: FloatArray,
    alternative: Alternative,
    n_resamples: int,
    rng: np.random.Generator,
) -> float:
    """Sign-flip permutation p-value for the total of ``cluster_sums``.

    Under the null, swapping the baseline and candidate labels of every case in
    a cluster is as likely as not, which flips the sign of the cluster's sum of
    deltas. The total (n times the mean delta) is the test statistic.
    """
    # A zero sum is unchanged by its sign, so dropping it leaves the null
    # distribution as it is and lets more tests enumerate exactly.
    sums = cluster_sums[cluster_sums != 0.0]
    if sums.size == 0:
        return 1.0
    observed = float(sums.sum())
    # Tolerance for float ties: permuted totals equal to the observed one in
    # exact arithmetic must count as "at least as extreme".
    tol = 1e-10 * float(np.abs(sums).sum())

    n_clusters = sums.size
    if n_clusters <= _MAX_EXACT_CLUSTERS:
        patterns = np.arange(2**n_clusters)[:, None] >> np.arange(n_clusters)
        signs = 1.0 - 2.0 * (patterns & 1)
        totals = signs @ sums
        p_less = float(np.mean(totals <= observed + tol))
        p_greater = float(np.mean(totals >= observed - tol))
    else:
        n_less = n_greater = 0
        chunk = max(1, _CHUNK_ELEMENTS // n_clusters)
        for start in range(0, n_resamples, chunk):
            rows = min(chunk, n_resamples - start)
            flipped = rng.integers(0, 2, size=(rows, n_clusters), dtype=np.bool_)
            totals = observed - 2.0 * (flipped.astype(np.float64) @ sums)
            n_less += int(np.count_nonzero(totals <= observed + tol))
            n_greater += int(np.count_nonzero(totals >= observed - tol))
        # Count the observed labelling as one of the draws (Phipson & Smyth 2010),
        # so a Monte Carlo p-value is never 0.
        p_less = (n_less + 1) / (n_resamples + 1)
        p_greater = (n_greater + 1) / (n_resamples + 1)

    if alternative == "less":
        return p_less
    if alternative == "greater":
        return p_greater
    return min(1.0, 2.0 * min(p_less, p_greater))


def paired_test(
    base: npt.ArrayLike,
    cand: npt.ArrayLike,
    *,
    clusters: ClusterKeys | None = None,
    alternative: Alternative = "less",
    seed: int = 0,
    n_resamples: int = 9_999,
) -> PairedTest:
    """Test whether the candidate differs from the baseline, case by case.

    Chooses the test from the data:

    - all values 0/1 and no clusters: exact McNemar (``"mcnemar-exact"``);
    - otherwise a paired sign-flip permutation test on the mean delta
      (``"paired-permutation"``): the signs of per-case deltas, or with clusters
      of per-cluster sums of deltas, are flipped at random. The test is exact
      (all 2**G sign patterns) when at most 16 cases or clusters have a
      non-zero delta, Monte Carlo with ``n_resamples`` draws otherwise.

    Without clusters the permutation test is the one
    ``scipy.stats.permutation_test((deltas,), mean, permutation_type="samples")``
    computes, but in numpy: scipy's implementation takes seconds on 10k cases.

    Args:
        base: per-case baseline values.
        cand: per-case candidate values, same order.
        clusters: optional per-case cluster keys (any hashable).
        alternative: ``"less"`` (default): the candidate is worse;
            ``"greater"``: better; ``"two-sided"``: different.
        seed: seed for the permutation test's random sign flips.
        n_resamples: Monte Carlo sign flips when the test is not exact.

    Returns:
        The method used, n, the mean delta, its (clustered) standard error from
        `clustered_standard_error`, and the p-value.

    Raises:
        ValueError: on empty or mismatched input or an unknown alternative.
    """
    _check_alternative(alternative)
    _check_positive_int(n_resamples, "n_resamples")
    base_arr, cand_arr = _paired(base, cand)
    deltas = cand_arr - base_arr
    n = int(deltas.size)
    se = clustered_standard_error(deltas, clusters)
    mean_delta = float(deltas.mean())

    if clusters is None and _is_binary(base_arr) and _is_binary(cand_arr):
        result = mcnemar_exact(base_arr, cand_arr, alternative)
        return PairedTest("mcnemar-exact", n, mean_delta, se, result.pvalue)

    if clusters is None:
        sums = deltas
    else:
        codes, n_clusters = _cluster_codes(clusters, n)
        sums = _cluster_totals(codes, deltas, n_clusters)
    pvalue = _sign_flip_pvalue(sums, alternative, n_resamples, np.random.default_rng(seed))
    return PairedTest("paired-permutation", n, mean_delta, se, min(pvalue, 1.0))


# --- multiple comparisons -----------------------------------------------------


def holm(pvalues: npt.ArrayLike) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values.

    The i-th smallest of m p-values is multiplied by (m - i + 1); adjusted values
    are then made non-decreasing in that order and capped at 1. Reject every
    hypothesis whose adjusted p-value is at most alpha to control the
    family-wise error rate at alpha.

    Args:
        pvalues: raw p-values, each in [0, 1].

    Returns:
        Adjusted p-values in the same order as the input.

    Raises:
        ValueError: if a p-value is outside [0, 1] or NaN, or the input is not 1-D.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be one-dimensional, got shape {p.shape}")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = adjusted_sorted
    return [float(x) for x in adjusted]


# --- repeats ------------------------------------------------------------------


def aggregate_repeats(values_by_case: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Average each case's repeated outcomes (e.g. K runs of the same case).

    Args:
        values_by_case: case id to the values of its repeats.

    Returns:
        Case id to the mean of its repeats, in the input's order.

    Raises:
        ValueError: if a case has no values.
    """
    means: dict[str, float] = {}
    for case_id, values in values_by_case.items():
        if len(values) == 0:
            raise ValueError(f"case {case_id!r} has no values to aggregate")
        means[case_id] = float(np.mean(np.asarray(values, dtype=np.float64)))
    return means


def flaky(values_by_case: Mapping[str, Sequence[float]]) -> list[str]:
    """Cases whose repeats disagree.

    On 0/1 values these are the cases that are neither all pass nor all fail
    (0 < mean < 1). On scores, any variation between repeats counts; a case
    with a single repeat is never flaky.

    Args:
        values_by_case: case id to the values of its repeats.

    Returns:
        Sorted ids of the flaky cases.
    """
    return sorted(
        case_id
        for case_id, values in values_by_case.items()
        if len(values) > 1 and min(values) != max(values)
    )


# --- non-inferiority ----------------------------------------------------------


def noninferior(
    base: npt.ArrayLike,
    cand: npt.ArrayLike,
    *,
    margin: float,
    clusters: ClusterKeys | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = 10_000,
) -> NonInferiority:
    """Is the candidate no worse than the baseline by more than ``margin``?

    Passes when the lower bound of the two-sided paired bootstrap interval for
    the mean of ``cand - base`` lies above ``-margin``. With the default 95%
    interval this is a one-sided test at the 2.5% level (the usual
    non-inferiority convention).

    Args:
        base: per-case baseline values.
        cand: per-case candidate values, same order.
        margin: largest acceptable drop (>= 0), on the scale of the values.
        clusters: optional per-case cluster keys.
        confidence: two-sided coverage of the interval.
        seed: bootstrap seed.
        n_resamples: bootstrap resamples.

    Returns:
        The margin, the interval and the verdict.

    Raises:
        ValueError: on a negative margin or invalid input.
    """
    if not (math.isfinite(margin) and margin >= 0.0):
        raise ValueError(f"margin must be finite and >= 0, got {margin}")
    interval = paired_bootstrap_ci(
        base,
        cand,
        clusters=clusters,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    return NonInferiority(margin=margin, interval=interval, passed=interval.low > -margin)


# --- repeated pass/fail runs ----------------------------------------------------


def stratified_exact_pvalue(
    base_passes: npt.ArrayLike,
    base_runs: npt.ArrayLike,
    cand_passes: npt.ArrayLike,
    cand_runs: npt.ArrayLike,
    alternative: Alternative = "less",
) -> float:
    """Exact conditional test that the candidate passes less often, case by case, over repeated runs.

    Each case is a stratum: the baseline ran it ``base_runs[i]`` times and
    passed ``base_passes[i]`` times, the candidate likewise. Under the null the
    change does nothing, so a case's runs are exchangeable: given the case's
    total passes, the candidate's share of them is hypergeometric. The
    statistic is the candidate's total passes; its null distribution is the
    convolution of the cases' hypergeometric distributions, computed exactly
    (the exact conditional Cochran-Mantel-Haenszel test). With one run per
    side this is the exact McNemar test.

    It uses every run: a case that passed 3 of 3 before and 0 of 3 after is
    strong evidence (1 in 20), where a test on per-case means sees only a
    delta of -1 that a sign flip could have produced. Runs must be
    independent given the case: identical repeats (temperature 0) are copies
    and must be counted once by the caller.

    Args:
        base_passes, base_runs, cand_passes, cand_runs: per-case counts, same order.
        alternative: ``"less"`` (default): the candidate passes less; ``"greater"``:
            more; ``"two-sided"``: twice the smaller tail, capped at 1.

    Returns:
        The p-value; 1.0 when no case has both passing and failing runs.

    Raises:
        ValueError: on mismatched lengths, negative counts or passes above runs.
    """
    _check_alternative(alternative)
    arrays = [np.asarray(x, dtype=np.int64) for x in (base_passes, base_runs, cand_passes, cand_runs)]
    bp, br, cp, cr = arrays
    if not all(a.ndim == 1 and a.shape == bp.shape for a in arrays):
        raise ValueError("the four count arrays must be one-dimensional and of one length")
    if np.any(br < 0) or np.any(cr < 0) or np.any((bp < 0) | (bp > br)) or np.any((cp < 0) | (cp > cr)):
        raise ValueError("need 0 <= passes <= runs for every case")
    total = bp + cp
    informative = (total > 0) & (total < br + cr) & (br > 0) & (cr > 0)
    if not np.any(informative):
        return 1.0
    observed = int(cp[informative].sum())
    # Cases sharing (runs, runs, passes) share one distribution: convolve it in once per case.
    signatures, counts = np.unique(
        np.column_stack([br[informative], cr[informative], total[informative]]), axis=0, return_counts=True
    )
    lowest = 0
    pmf = np.ones(1)
    for (b_runs, c_runs, passes), count in zip(signatures.tolist(), counts.tolist(), strict=True):
        low, high = max(0, passes - b_runs), min(c_runs, passes)
        lowest += low * count
        support = np.arange(low, high + 1)
        stratum = _sps.hypergeom.pmf(support, b_runs + c_runs, passes, c_runs)
        for _ in range(count):
            pmf = np.convolve(pmf, stratum)
    index = observed - lowest
    p_less = float(pmf[: index + 1].sum())
    p_greater = float(pmf[index:].sum())
    if alternative == "less":
        return min(1.0, p_less)
    if alternative == "greater":
        return min(1.0, p_greater)
    return min(1.0, 2.0 * min(p_less, p_greater))


def gatekeeping(first: float, family: npt.ArrayLike) -> list[float]:
    """Adjusted p-values of a family tested behind a gatekeeper (fixed sequence, then Holm).

    The gatekeeper (the overall test) is tested at full alpha. Only when it is
    rejected is alpha passed on to the family, which is tested with Holm. A
    member's adjusted p-value is the larger of the gatekeeper's p-value and its
    Holm-adjusted one, so "adjusted <= alpha" rejects exactly what the
    procedure rejects and the family-wise error rate over gatekeeper and
    family stays at alpha (the closure of a serial gatekeeping procedure).

    Args:
        first: the gatekeeper's raw p-value.
        family: the raw p-values of the hypotheses behind it.

    Returns:
        The family's adjusted p-values, in the input's order.
    """
    if not 0.0 <= first <= 1.0:
        raise ValueError("p-values must lie in [0, 1]")
    values = np.asarray(family, dtype=np.float64)
    if values.size == 0:
        return []
    return [max(first, p) for p in holm(values)]


def clustered_rate_interval(
    passes: npt.ArrayLike,
    runs: npt.ArrayLike,
    *,
    clusters: ClusterKeys | None = None,
    confidence: float = 0.95,
) -> Interval:
    """Interval for a pass rate over repeated runs of cases, clustered by case (and cluster).

    Repeats of one case are not independent trials, and neither are the cases
    of one conversation. The rate is the share of all runs that passed; its
    variance is the cluster-robust (ratio-estimator) variance with the cases, or
    the given clusters, as units. The interval is the Korn-Graubard one: a
    Clopper-Pearson interval on the effective sample size
    ``n_eff = p (1 - p) / variance`` (at most the number of runs), which keeps
    Clopper-Pearson's coverage near 0 and 1 where a Wald interval fails.

    Args:
        passes: per-case passing runs.
        runs: per-case runs judged (cases with 0 runs are ignored).
        clusters: optional per-case cluster keys; cases are the units otherwise.
        confidence: two-sided coverage.

    Returns:
        The pooled pass rate and its interval; ``(nan, 0, 1)`` with no runs.
    """
    _check_unit_open(confidence, "confidence")
    x = np.asarray(passes, dtype=np.float64)
    m = np.asarray(runs, dtype=np.float64)
    if x.shape != m.shape or x.ndim != 1:
        raise ValueError("passes and runs must be one-dimensional and of one length")
    if np.any(m < 0) or np.any((x < 0) | (x > m)):
        raise ValueError("need 0 <= passes <= runs for every case")
    keep = m > 0
    total_runs = float(m[keep].sum())
    if total_runs == 0:
        return Interval(estimate=math.nan, low=0.0, high=1.0, confidence=confidence)
    rate = float(x[keep].sum()) / total_runs
    units = np.arange(int(keep.sum())) if clusters is None else np.asarray(list(clusters), dtype=object)[keep]
    codes, n_units = _cluster_codes(list(units), int(keep.sum()))
    residual = _cluster_totals(codes, x[keep] - rate * m[keep], n_units)
    size = _cluster_totals(codes, m[keep], n_units)
    # Without a small-sample factor, so that with one run per case and no clusters the
    # effective size is the number of cases and the interval is exactly Clopper-Pearson.
    variance = float(np.sum(residual**2)) / float(size.sum()) ** 2 if n_units > 1 else 0.0
    # Korn-Graubard caps the effective size at the actual one: clustering never adds information.
    binomial = rate * (1 - rate)
    n_eff = total_runs if variance <= 0 or binomial == 0 else min(total_runs, binomial / variance)
    tail = (1.0 - confidence) / 2.0
    successes = rate * n_eff
    low = 0.0 if successes <= 0 else float(_sps.beta.ppf(tail, successes, n_eff - successes + 1))
    high = 1.0 if successes >= n_eff else float(_sps.beta.ppf(1 - tail, successes + 1, n_eff - successes))
    return Interval(estimate=rate, low=low, high=high, confidence=confidence)


# --- a metric before and after a change ----------------------------------------


@dataclass(frozen=True)
class MeanShift:
    """The change in a series' mean from before to after a moment.

    Attributes:
        delta: mean(after) - mean(before).
        interval: its two-sided interval at `confidence`.
        p_lower: one-sided p-value that the mean went down.
        p_higher: one-sided p-value that the mean went up.
        n_eff: the effective sizes (before, after) after the autocorrelation correction.
        confidence: the interval's coverage.
    """

    delta: float
    interval: tuple[float, float]
    p_lower: float
    p_higher: float
    n_eff: tuple[float, float]
    confidence: float


def _lag1(values: FloatArray) -> float:
    """The lag-1 autocorrelation, clipped to [0, 0.95]: a negative one is taken as none
    (conservative), and near 1 the correction would leave no sample at all."""
    if values.size < 3 or float(np.var(values)) == 0.0:
        return 0.0
    centred = values - values.mean()
    rho = float(np.sum(centred[1:] * centred[:-1]) / np.sum(centred**2))
    return min(max(rho, 0.0), 0.95)


def mean_shift(before: npt.ArrayLike, after: npt.ArrayLike, *, alpha: float = 0.05) -> MeanShift:
    """Welch's comparison of two stretches of a time series (a business metric's daily values),
    with each side's sample size shrunk for day-to-day autocorrelation: an AR(1) series of n
    values with lag-1 correlation rho carries about n (1 - rho) / (1 + rho) independent ones.
    Without it, ten weeks of a slowly drifting metric would look like hundreds of independent
    measurements, and every change would seem to move it.

    Args:
        before: the values before the moment, in time order.
        after: the values after, in time order.
        alpha: 1 - confidence of the interval.

    Raises:
        ValueError: fewer than two values on a side, or alpha outside (0, 1).
    """
    _check_unit_open(alpha, "alpha")
    x, y = _as_1d(before, "before"), _as_1d(after, "after")
    if x.size < 2 or y.size < 2:
        raise ValueError("need at least two values on each side")
    n_x = max(x.size * (1 - _lag1(x)) / (1 + _lag1(x)), 2.0)
    n_y = max(y.size * (1 - _lag1(y)) / (1 + _lag1(y)), 2.0)
    var_x, var_y = float(np.var(x, ddof=1)) / n_x, float(np.var(y, ddof=1)) / n_y
    delta = float(y.mean() - x.mean())
    se = math.sqrt(var_x + var_y)
    if se == 0.0:
        # Two constant stretches: the difference is exact.
        p_lower = 0.0 if delta < 0 else 1.0
        p_higher = 0.0 if delta > 0 else 1.0
        return MeanShift(delta, (delta, delta), p_lower, p_higher, (n_x, n_y), 1 - alpha)
    # Welch-Satterthwaite degrees of freedom, on the effective sizes.
    df = (var_x + var_y) ** 2 / (var_x**2 / (n_x - 1) + var_y**2 / (n_y - 1))
    t = delta / se
    half = float(_sps.t.ppf(1 - alpha / 2, df)) * se
    return MeanShift(
        delta=delta,
        interval=(delta - half, delta + half),
        p_lower=float(_sps.t.cdf(t, df)),
        p_higher=float(_sps.t.sf(t, df)),
        n_eff=(n_x, n_y),
        confidence=1 - alpha,
    )


# --- two independent windows of production traffic (monitor) ------------------------------


def drop_pvalue(base_passed: int, base_n: int, cand_passed: int, cand_n: int) -> float:
    """One-sided exact conditional (Fisher) test that the candidate window passes less often.

    Two independent samples (two windows of traffic, not paired cases): given the total
    passes, the candidate's share is hypergeometric under the null of one pass rate, so the
    test holds its level at any n (it is conservative, never liberal).

    Returns:
        The p-value; 1.0 when either window is empty.

    Raises:
        ValueError: if not ``0 <= passed <= n`` on either side.
    """
    for passed, n in ((base_passed, base_n), (cand_passed, cand_n)):
        if n < 0 or not 0 <= passed <= n:
            raise ValueError(f"need 0 <= passed <= n, got passed={passed}, n={n}")
    if base_n == 0 or cand_n == 0:
        return 1.0
    table = [[cand_passed, cand_n - cand_passed], [base_passed, base_n - base_passed]]
    return min(1.0, float(_sps.fisher_exact(table, alternative="less").pvalue))


def newcombe_interval(
    cand_passed: int, cand_n: int, base_passed: int, base_n: int, confidence: float = 0.95
) -> Interval:
    """Newcombe's hybrid score interval for a difference of two proportions (candidate - base).

    Built from each side's Wilson score interval (Newcombe 1998, method 10): it keeps
    close to its level near 0 and 1 and for small n, where the Wald interval does not.

    Returns:
        ``cand rate - base rate`` and its interval; ``Interval(nan, -1.0, 1.0)`` when a side is empty.
    """
    _check_unit_open(confidence, "confidence")
    for passed, n in ((cand_passed, cand_n), (base_passed, base_n)):
        if n < 0 or not 0 <= passed <= n:
            raise ValueError(f"need 0 <= passed <= n, got passed={passed}, n={n}")
    if cand_n == 0 or base_n == 0:
        return Interval(estimate=math.nan, low=-1.0, high=1.0, confidence=confidence)

    def wilson(passed: int, n: int) -> tuple[float, float, float]:
        ci = _sps.binomtest(passed, n).proportion_ci(confidence_level=confidence, method="wilson")
        return passed / n, float(ci.low), float(ci.high)

    p1, l1, u1 = wilson(cand_passed, cand_n)
    p2, l2, u2 = wilson(base_passed, base_n)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Interval(estimate=d, low=max(-1.0, low), high=min(1.0, high), confidence=confidence)


def drop_power(rate: float, drop: float, base_n: int, cand_n: int, alpha: float) -> float:
    """Power of a one-sided two-sample test of proportions at level ``alpha`` to see ``rate -> rate - drop``.

    The normal approximation with the pooled variance under the null and the unpooled one
    under the alternative (Fleiss), as sample-size tables use it.
    """
    _check_unit_open(alpha, "alpha")
    if base_n < 1 or cand_n < 1 or not 0.0 < drop <= rate <= 1.0:
        return 0.0
    p1, p2 = rate, rate - drop
    pooled = (base_n * p1 + cand_n * p2) / (base_n + cand_n)
    null_sd = math.sqrt(pooled * (1 - pooled) * (1 / base_n + 1 / cand_n))
    alt_sd = math.sqrt(p1 * (1 - p1) / base_n + p2 * (1 - p2) / cand_n)
    z = float(_sps.norm.ppf(1 - alpha))
    return float(_sps.norm.cdf((drop - z * null_sd) / alt_sd))


def rows_needed(
    rate: float, drop: float, alpha: float, power: float = 0.8, base_n: int | None = None
) -> int | None:
    """The fewest rows of the candidate window that see ``drop`` with ``power`` (`drop_power`).

    With ``base_n`` the baseline's size is fixed; without it both windows have the returned size.

    Returns:
        The size; None when no size reaches the power (the drop exceeds the rate, or the
        fixed baseline is too small even against an endless candidate window).
    """
    _check_unit_open(power, "power")

    def reached(n: int) -> bool:
        return drop_power(rate, drop, n if base_n is None else base_n, n, alpha) >= power

    high = 1
    while not reached(high):
        high *= 2
        if high > 2**40:
            return None
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle
    return high


def detectable_drop(rate: float, base_n: int, cand_n: int, alpha: float, power: float = 0.8) -> float | None:
    """The smallest drop from ``rate`` that `drop_power` sees with ``power``; None if even a drop to 0 is not."""
    _check_unit_open(power, "power")
    if rate <= 0.0 or drop_power(rate, rate, base_n, cand_n, alpha) < power:
        return None
    from scipy.optimize import brentq

    tiny = min(rate, 1e-9)
    if drop_power(rate, tiny, base_n, cand_n, alpha) >= power:
        return tiny
    return float(brentq(lambda d: drop_power(rate, d, base_n, cand_n, alpha) - power, tiny, rate, xtol=1e-10))
