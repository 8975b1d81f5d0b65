"""Tests for agent_evals.stats.

Expected values come from formulas written out here (math.comb, closed forms,
hand-worked examples) or from an independent scipy routine, never from the
function under test.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats as sps

from agent_evals.stats import (
    Interval,
    aggregate_repeats,
    clustered_standard_error,
    flaky,
    holm,
    mcnemar_exact,
    noninferior,
    paired_bootstrap_ci,
    paired_test,
    pass_rate_interval,
)

Z_95 = 1.6448536269514722  # standard normal 0.95 quantile
Z_80 = 0.8416212335729143  # standard normal 0.80 quantile


def table(
    both_pass: int, regressions: int, fixes: int, both_fail: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Paired pass/fail arrays with the given 2x2 counts."""
    base = [True] * both_pass + [True] * regressions + [False] * fixes + [False] * both_fail
    cand = [True] * both_pass + [False] * regressions + [True] * fixes + [False] * both_fail
    return np.array(base), np.array(cand)


def binom_half_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), written out."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def clustered_data(
    rng: np.random.Generator, n_clusters: int, size: int, cluster_sd: float, noise_sd: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Deltas with a shared random effect per cluster (correlated within clusters)."""
    clusters = np.repeat(np.arange(n_clusters), size)
    effects = rng.normal(0.0, cluster_sd, n_clusters)[clusters]
    return effects + rng.normal(0.0, noise_sd, clusters.size), clusters


# --- McNemar --------------------------------------------------------------------


def test_mcnemar_two_sided_matches_binomial_formula() -> None:
    base, cand = table(both_pass=30, regressions=2, fixes=9, both_fail=10)

    result = mcnemar_exact(base, cand, alternative="two-sided")

    expected = 2 * binom_half_cdf(2, 11)  # 134 / 2048
    assert result.pvalue == pytest.approx(expected, rel=1e-12)
    assert result.pvalue == pytest.approx(0.06543, abs=1e-5)
    assert (result.n, result.regressions, result.fixes) == (51, 2, 9)
    assert result.alternative == "two-sided"


def test_mcnemar_one_sided_direction() -> None:
    worse_base, worse_cand = table(both_pass=30, regressions=9, fixes=2, both_fail=10)
    better_base, better_cand = table(both_pass=30, regressions=2, fixes=9, both_fail=10)

    worse = mcnemar_exact(worse_base, worse_cand)  # default: "less", candidate worse
    better = mcnemar_exact(better_base, better_cand)
    worse_greater = mcnemar_exact(worse_base, worse_cand, alternative="greater")

    assert worse.alternative == "less"
    assert worse.pvalue == pytest.approx(binom_half_cdf(2, 11))  # 67 / 2048
    assert worse.pvalue < 0.05
    assert better.pvalue == pytest.approx(binom_half_cdf(9, 11))  # P(fixes <= 9)
    assert better.pvalue > 0.95
    assert worse_greater.pvalue == pytest.approx(1 - binom_half_cdf(1, 11))  # P(fixes >= 2)


def test_mcnemar_without_discordant_pairs_is_one() -> None:
    base, cand = table(both_pass=5, regressions=0, fixes=0, both_fail=3)
    for alternative in ("less", "greater", "two-sided"):
        result = mcnemar_exact(base, cand, alternative=alternative)
        assert result.pvalue == 1.0
        assert (result.regressions, result.fixes) == (0, 0)


def test_mcnemar_accepts_zero_one_and_rejects_other_values() -> None:
    assert mcnemar_exact([1, 1, 0], [0, 1, 1]).regressions == 1
    with pytest.raises(ValueError, match="pass/fail"):
        mcnemar_exact([1.0, 0.5], [1.0, 1.0])
    with pytest.raises(ValueError, match="length"):
        mcnemar_exact([1, 0], [1])
    with pytest.raises(ValueError, match="alternative"):
        mcnemar_exact([1, 0], [1, 1], alternative="worse")  # type: ignore[arg-type]


# --- pass rate intervals ----------------------------------------------------------


def test_clopper_pearson_published_values() -> None:
    interval = pass_rate_interval(8, 10)
    assert interval.estimate == 0.8
    assert interval.low == pytest.approx(0.4439, abs=1e-4)
    assert interval.high == pytest.approx(0.9748, abs=1e-4)
    assert interval.confidence == 0.95


def test_clopper_pearson_zero_successes_closed_form() -> None:
    # With x = 0 the exact upper bound solves (1 - p)^n = alpha / 2.
    interval = pass_rate_interval(0, 10, confidence=0.95)
    assert interval.low == 0.0
    assert interval.high == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)


def test_jeffreys_interval() -> None:
    interval = pass_rate_interval(8, 10, method="jeffreys")
    assert interval.low == pytest.approx(sps.beta.ppf(0.025, 8.5, 2.5), rel=1e-12)
    assert interval.high == pytest.approx(sps.beta.ppf(0.975, 8.5, 2.5), rel=1e-12)
    # Narrower than Clopper–Pearson, which is conservative.
    assert interval.high - interval.low < 0.9748 - 0.4439

    none_passed = pass_rate_interval(0, 10, confidence=0.9, method="jeffreys")
    assert none_passed.low == 0.0
    assert none_passed.high == pytest.approx(sps.beta.ppf(0.95, 0.5, 10.5), rel=1e-12)
    assert pass_rate_interval(10, 10, method="jeffreys").high == 1.0


def test_pass_rate_interval_without_cases() -> None:
    for method in ("exact", "jeffreys"):
        interval = pass_rate_interval(0, 0, method=method)  # type: ignore[arg-type]
        assert math.isnan(interval.estimate)
        assert (interval.low, interval.high) == (0.0, 1.0)


def test_pass_rate_interval_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="passed"):
        pass_rate_interval(11, 10)
    with pytest.raises(ValueError, match="method"):
        pass_rate_interval(1, 10, method="wald")  # type: ignore[arg-type]


# --- Holm -------------------------------------------------------------------------


def test_holm_hand_worked_example() -> None:
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_handles_edges() -> None:
    assert holm([0.5, 0.6, 0.01]) == pytest.approx([1.0, 1.0, 0.03])
    assert holm([0.2]) == [0.2]
    assert holm([]) == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.1, float("nan")])


def test_holm_is_monotone_in_the_raw_order() -> None:
    raw = np.random.default_rng(3).uniform(0, 0.2, 25)
    adjusted = np.array(holm(raw))
    order = np.argsort(raw)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= raw)


# --- clustered standard error -------------------------------------------------------


def test_plain_standard_error_by_hand() -> None:
    # mean 0, sum of squares 2, sample variance 2/3, SE = sqrt(2/3) / 2.
    assert clustered_standard_error([1.0, 0.0, -1.0, 0.0]) == pytest.approx(math.sqrt(2 / 3) / 2)


def test_clustered_standard_error_by_hand() -> None:
    deltas = [1.0, 1.0, 0.0, 0.0, -1.0, 1.0]
    clusters = ["a", "a", "b", "b", "c", "c"]
    # mean 1/3; centred cluster sums: 2 - 2/3, 0 - 2/3, 0 - 2/3 -> squares sum to 8/3.
    # CR1: sqrt(G/(G-1) * 8/3) / n = sqrt(3/2 * 8/3) / 6 = 2 / 6.
    assert clustered_standard_error(deltas, clusters) == pytest.approx(1 / 3)


def test_singleton_clusters_equal_plain_standard_error() -> None:
    deltas = np.random.default_rng(5).normal(0.1, 1.0, 37)
    expected = np.std(deltas, ddof=1) / math.sqrt(deltas.size)
    assert clustered_standard_error(deltas, list(range(37))) == pytest.approx(expected, rel=1e-12)
    assert clustered_standard_error(deltas) == pytest.approx(expected, rel=1e-12)


def test_clustered_standard_error_grows_with_within_cluster_correlation() -> None:
    deltas, clusters = clustered_data(np.random.default_rng(6), 50, 4, cluster_sd=1.0, noise_sd=0.5)
    assert clustered_standard_error(deltas, clusters) > 1.5 * clustered_standard_error(deltas)


def test_standard_error_not_estimable_is_nan() -> None:
    assert math.isnan(clustered_standard_error([0.5]))
    assert math.isnan(clustered_standard_error([0.5, 1.0, 0.0], ["x", "x", "x"]))
    with pytest.raises(ValueError, match="clusters"):
        clustered_standard_error([0.5, 1.0], ["x"])


# --- bootstrap ----------------------------------------------------------------------


def test_bootstrap_is_reproducible_with_seed() -> None:
    rng = np.random.default_rng(8)
    base, cand = rng.random(300), rng.random(300)
    first = paired_bootstrap_ci(base, cand, seed=1)
    again = paired_bootstrap_ci(base, cand, seed=1)
    other = paired_bootstrap_ci(base, cand, seed=2)
    assert first == again
    assert (other.low, other.high) != (first.low, first.high)
    assert other.estimate == first.estimate == pytest.approx(np.mean(cand - base))


def test_bootstrap_contains_true_mean_delta() -> None:
    rng = np.random.default_rng(9)
    base = rng.random(400)
    cand = base - 0.03 + rng.normal(0.0, 0.2, 400)
    interval = paired_bootstrap_ci(base, cand)
    assert interval.low < -0.03 < interval.high
    assert interval.low < interval.estimate < interval.high


def test_bootstrap_coverage_is_near_nominal() -> None:
    rng = np.random.default_rng(10)
    covered = 0
    for seed in range(200):
        deltas = rng.normal(-0.05, 0.3, 100)
        interval = paired_bootstrap_ci(np.zeros(100), deltas, n_resamples=2000, seed=seed)
        covered += interval.low < -0.05 < interval.high
    assert 0.90 <= covered / 200 <= 0.99


@pytest.mark.parametrize("binary", [True, False], ids=["pass-fail", "scores"])
def test_bootstrap_width_matches_standard_error(binary: bool) -> None:
    # Percentile bootstrap and the normal interval agree for a mean at this n, for
    # both the few-distinct-values path (0/1) and the general path (scores).
    rng = np.random.default_rng(11)
    if binary:
        base, cand = rng.random(2000) < 0.8, rng.random(2000) < 0.75
    else:
        base, cand = rng.random(2000), rng.random(2000) * 0.95
    deltas = np.asarray(cand, dtype=float) - np.asarray(base, dtype=float)
    interval = paired_bootstrap_ci(base, cand)
    normal_width = 2 * 1.959964 * clustered_standard_error(deltas)
    assert interval.high - interval.low == pytest.approx(normal_width, rel=0.06)


def test_cluster_bootstrap_wider_than_naive_on_clustered_data() -> None:
    deltas, clusters = clustered_data(np.random.default_rng(12), 40, 5, cluster_sd=0.3, noise_sd=0.1)
    base = np.zeros_like(deltas)
    naive = paired_bootstrap_ci(base, deltas)
    clustered = paired_bootstrap_ci(base, deltas, clusters=clusters)
    assert clustered.high - clustered.low > 1.5 * (naive.high - naive.low)
    # The cluster bootstrap agrees with the clustered standard error.
    expected = 2 * 1.959964 * clustered_standard_error(deltas, clusters)
    assert clustered.high - clustered.low == pytest.approx(expected, rel=0.15)


@pytest.mark.parametrize("binary", [True, False], ids=["pass-fail", "scores"])
def test_cluster_bootstrap_weights_cases_not_clusters(binary: bool) -> None:
    # 100 big clusters with delta 0 and 100 singletons with delta -1 or 0: the case
    # mean is about -50/1100, the mean of cluster means about -0.25. The interval
    # must be about the former.
    rng = np.random.default_rng(13)
    sizes = [10] * 100 + [1] * 100
    clusters = np.repeat(np.arange(200), sizes)
    deltas = np.where(clusters < 100, 0.0, -(rng.random(clusters.size) < 0.5).astype(float))
    if not binary:
        deltas += rng.normal(0, 0.01, clusters.size)
    case_mean = float(deltas.mean())
    interval = paired_bootstrap_ci(np.zeros_like(deltas), deltas, clusters=clusters)
    assert interval.estimate == pytest.approx(case_mean)
    assert interval.low < case_mean < interval.high < -0.01
    assert interval.low > -0.1


def test_bootstrap_degenerate_input_gives_zero_width() -> None:
    same = paired_bootstrap_ci([1, 0, 1, 1], [1, 0, 1, 1])
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    shifted = paired_bootstrap_ci([0.5, 0.25, 0.0], [0.75, 0.5, 0.25], clusters=["a", "a", "b"])
    assert (shifted.estimate, shifted.low, shifted.high) == (0.25, 0.25, 0.25)


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        paired_bootstrap_ci([], [])
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap_ci([0.0, float("nan")], [1.0, 1.0])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_ci([0.0, 1.0], [1.0, 1.0], confidence=95)


# --- paired test ------------------------------------------------------------------


def test_paired_test_uses_mcnemar_for_unclustered_pass_fail() -> None:
    base, cand = table(both_pass=30, regressions=9, fixes=2, both_fail=10)
    result = paired_test(base, cand)
    assert result.method == "mcnemar-exact"
    assert result.pvalue == pytest.approx(binom_half_cdf(2, 11))
    assert result.n == 51
    assert result.mean_delta == pytest.approx(-7 / 51)
    deltas = cand.astype(float) - base.astype(float)
    assert result.se == pytest.approx(np.std(deltas, ddof=1) / math.sqrt(51))


@pytest.mark.parametrize("alternative", ["less", "greater", "two-sided"])
def test_permutation_test_matches_scipy_exact(alternative: str) -> None:
    rng = np.random.default_rng(14)
    base = rng.random(12)
    cand = base + rng.normal(-0.1, 0.2, 12)
    expected = sps.permutation_test(
        (cand - base,),
        np.mean,
        permutation_type="samples",
        alternative=alternative,
        n_resamples=10_000,  # >= 2**12, so scipy enumerates exactly
    ).pvalue
    result = paired_test(base, cand, alternative=alternative)  # type: ignore[arg-type]
    assert result.method == "paired-permutation"
    assert result.pvalue == pytest.approx(expected, rel=1e-12)


def test_permutation_test_monte_carlo_agrees_with_scipy() -> None:
    rng = np.random.default_rng(15)
    base = rng.random(60)
    cand = np.clip(base + rng.normal(-0.04, 0.2, 60), 0, 1)
    expected = sps.permutation_test(
        (cand - base,), np.mean, permutation_type="samples", alternative="less", rng=rng
    ).pvalue
    result = paired_test(base, cand, seed=3)
    assert result.pvalue == pytest.approx(expected, abs=0.02)
    assert paired_test(base, cand, seed=3) == result


def test_cluster_sign_flip_matches_scipy_on_cluster_sums() -> None:
    rng = np.random.default_rng(16)
    clusters = np.repeat(np.arange(10), [1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    base = rng.random(clusters.size)
    cand = base + rng.normal(-0.05, 0.1, 10)[clusters] + rng.normal(0, 0.05, clusters.size)
    sums = np.bincount(clusters, weights=cand - base)
    expected = sps.permutation_test(
        (sums,), np.sum, permutation_type="samples", alternative="less", n_resamples=2**10
    ).pvalue
    result = paired_test(base, cand, clusters=clusters)
    assert result.method == "paired-permutation"
    assert result.pvalue == pytest.approx(expected, rel=1e-12)
    assert result.se == pytest.approx(clustered_standard_error(cand - base, clusters))


def exact_sign_flip_pvalue(deltas: list[Fraction], alternative: str) -> float:
    """Sign-flip p-value by enumeration in exact rational arithmetic."""
    observed = sum(deltas, Fraction(0))
    totals = [
        sum((sign * d for sign, d in zip(signs, deltas, strict=True)), Fraction(0))
        for signs in itertools.product((1, -1), repeat=len(deltas))
    ]
    p_less = Fraction(sum(t <= observed for t in totals), len(totals))
    p_greater = Fraction(sum(t >= observed for t in totals), len(totals))
    two_sided = min(Fraction(1), 2 * min(p_less, p_greater))
    return float({"less": p_less, "greater": p_greater, "two-sided": two_sided}[alternative])


@pytest.mark.parametrize("alternative", ["less", "greater", "two-sided"])
def test_permutation_test_counts_float_ties(alternative: str) -> None:
    # Mean pass rates over K = 3 repeats: the deltas sum to exactly 0, but not in
    # floating point, and many sign patterns tie with the observed total.
    base = [Fraction(k, 3) for k in (1, 2, 0, 1, 3, 2, 1, 3, 0, 2)]
    cand = [Fraction(k, 3) for k in (2, 0, 1, 2, 2, 3, 0, 2, 1, 2)]
    exact_deltas = [c - b for b, c in zip(base, cand, strict=True)]
    assert sum(exact_deltas) == 0
    expected = exact_sign_flip_pvalue(exact_deltas, alternative)

    result = paired_test(
        [float(b) for b in base],
        [float(c) for c in cand],
        alternative=alternative,  # type: ignore[arg-type]
    )
    assert result.pvalue == pytest.approx(expected, rel=1e-12)


def test_monte_carlo_pvalue_counts_the_observed_labelling() -> None:
    # Every delta is negative, so no random sign pattern is as extreme as the data;
    # the p-value is 1 / (n_resamples + 1), never 0.
    deltas = -np.linspace(0.1, 1.0, 40)
    result = paired_test(np.zeros(40), deltas, n_resamples=999)
    assert result.pvalue == pytest.approx(1 / 1000)


def test_clusters_undo_duplicated_cases() -> None:
    # Copying every case five times makes a naive test far too confident; with each
    # case's copies in one cluster the test is exactly the test on the originals.
    rng = np.random.default_rng(17)
    base = rng.random(8)
    cand = base + rng.normal(-0.1, 0.2, 8)
    original = paired_test(base, cand).pvalue
    copies_base, copies_cand = np.repeat(base, 5), np.repeat(cand, 5)
    clustered = paired_test(copies_base, copies_cand, clusters=np.repeat(np.arange(8), 5)).pvalue
    naive = paired_test(copies_base, copies_cand).pvalue
    assert clustered == pytest.approx(original, rel=1e-12)
    assert naive < original / 5


def test_clustered_pass_fail_uses_permutation() -> None:
    base, cand = table(both_pass=30, regressions=9, fixes=2, both_fail=10)
    result = paired_test(base, cand, clusters=np.arange(51) // 3)
    assert result.method == "paired-permutation"
    assert 0.0 < result.pvalue < 1.0


def test_paired_test_with_identical_runs() -> None:
    scores = [0.2, 0.7, 0.9]
    assert paired_test(scores, scores).pvalue == 1.0
    assert paired_test(scores, scores, clusters=["a", "b", "b"]).pvalue == 1.0


# --- the gate scenario (acceptance criterion) -------------------------------------

N_CASES = 200


def eval_set_difficulty(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Per-case pass probabilities: most cases reliably pass or fail, some are flaky.

    Beta(0.1, 0.035) gives a mean pass rate near 74% with about 13% of cases
    strictly between 5% and 95%.
    """
    return rng.beta(0.1, 0.035, N_CASES)


def run(rng: np.random.Generator, pass_prob: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """One stochastic run of the eval set."""
    return rng.random(pass_prob.size) < pass_prob


def regressed(rng: np.random.Generator, pass_prob: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Candidate probabilities: 24 reliable passes now fail, 4 reliable fails now pass (-10 points)."""
    cand = pass_prob.copy()
    cand[rng.choice(np.flatnonzero(pass_prob > 0.9), 24, replace=False)] = 0.0
    cand[rng.choice(np.flatnonzero(pass_prob < 0.1), 4, replace=False)] = 1.0
    return cand


def test_gate_does_not_reject_a_no_op_change() -> None:
    rng = np.random.default_rng(2024)
    difficulty = eval_set_difficulty(rng)

    single = paired_test(run(rng, difficulty), run(rng, difficulty))
    assert single.method == "mcnemar-exact"
    assert single.pvalue >= 0.05

    naive_failures = paired_rejections = 0
    for _ in range(200):
        base, cand = run(rng, difficulty), run(rng, difficulty)
        naive_failures += cand.mean() < base.mean()
        paired_rejections += paired_test(base, cand).pvalue < 0.05
    # The naive "candidate pass rate is lower" rule fails about half of all no-op
    # changes; the paired test keeps false alarms at or below alpha.
    assert naive_failures / 200 > 0.35
    assert paired_rejections / 200 < 0.10


def test_gate_rejects_a_clear_regression() -> None:
    rng = np.random.default_rng(2025)
    difficulty = eval_set_difficulty(rng)
    base, cand = run(rng, difficulty), run(rng, regressed(rng, difficulty))

    result = paired_test(base, cand)
    table_ = mcnemar_exact(base, cand)
    assert result.pvalue < 0.01
    assert result.mean_delta == pytest.approx(-0.10, abs=0.04)
    assert table_.regressions >= 20
    assert table_.fixes < table_.regressions / 2

    # Not a lucky seed: at alpha = 0.01 this regression is caught most of the time.
    caught = sum(
        paired_test(run(rng, difficulty), run(rng, regressed(rng, difficulty))).pvalue < 0.01
        for _ in range(100)
    )
    assert caught >= 80


# --- power --------------------------------------------------------------------------


def test_noninferior_passes_identical_runs() -> None:
    base = np.random.default_rng(20).random(200) < 0.8
    result = noninferior(base, base, margin=0.02)
    assert result.passed
    assert result.interval == Interval(0.0, 0.0, 0.0, 0.95)
    assert result.margin == 0.02


def test_noninferior_fails_a_ten_point_drop() -> None:
    base, cand = table(both_pass=140, regressions=22, fixes=2, both_fail=36)
    result = noninferior(base, cand, margin=0.02)
    assert result.interval.estimate == pytest.approx(-0.10)
    assert not result.passed
    assert result.interval.high < 0
    # The same data clears a margin wider than the whole interval.
    assert noninferior(base, cand, margin=0.25).passed


def test_noninferior_rejects_negative_margin() -> None:
    with pytest.raises(ValueError, match="margin"):
        noninferior([1, 0], [1, 0], margin=-0.01)


# --- repeats --------------------------------------------------------------------------


def test_aggregate_repeats_and_flaky() -> None:
    values = {
        "c3": [1, 1, 1],
        "c1": [1, 0, 1, 1],
        "c2": [0, 0],
        "c0": [0, 1],
        "single": [1],
    }
    assert aggregate_repeats(values) == {"c3": 1.0, "c1": 0.75, "c2": 0.0, "c0": 0.5, "single": 1.0}
    assert flaky(values) == ["c0", "c1"]
    assert flaky({"s": [0.5, 0.5], "t": [0.5, 0.75]}) == ["t"]
    with pytest.raises(ValueError, match="no values"):
        aggregate_repeats({"empty": []})
