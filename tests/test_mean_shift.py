"""stats.mean_shift: a business metric before and after a change, Welch's interval on effective sizes.

Without autocorrelation it is exactly Welch's t-test (scipy); with an AR(1) series under no change
its false alarms stay near alpha, where plain Welch on daily values raises several times as many.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from agent_evals.stats import mean_shift


def test_without_autocorrelation_it_is_welchs_test() -> None:
    # Alternating deviations: a negative lag-1 correlation, taken as none.
    before = [0.70, 0.74, 0.69, 0.75, 0.71, 0.73, 0.70, 0.74]
    after = [0.66, 0.70, 0.65, 0.71, 0.67, 0.69]
    shift = mean_shift(before, after, alpha=0.05)
    welch = sps.ttest_ind(after, before, equal_var=False, alternative="less")
    assert shift.n_eff == (8.0, 6.0)
    assert shift.delta == pytest.approx(np.mean(after) - np.mean(before))
    assert shift.p_lower == pytest.approx(welch.pvalue)
    assert shift.p_higher == pytest.approx(1 - welch.pvalue)
    ci = sps.ttest_ind(after, before, equal_var=False).confidence_interval(0.95)
    assert shift.interval == pytest.approx((ci.low, ci.high))


def test_autocorrelation_shrinks_the_sample_and_widens_the_interval() -> None:
    rng = np.random.default_rng(3)
    series = np.cumsum(rng.normal(0, 0.01, 60)) * 0.5 + 0.7  # a slow drift: strong lag-1 correlation
    shift = mean_shift(series[:30], series[30:])
    welch = sps.ttest_ind(series[30:], series[:30], equal_var=False).confidence_interval(0.95)
    assert shift.n_eff[0] < 10
    assert shift.n_eff[1] < 10
    assert shift.interval[1] - shift.interval[0] > 1.5 * (welch.high - welch.low)


def test_constant_sides_give_an_exact_difference() -> None:
    shift = mean_shift([0.5, 0.5, 0.5], [0.4, 0.4])
    assert shift.delta == pytest.approx(-0.1)
    assert shift.interval == pytest.approx((-0.1, -0.1))
    assert (shift.p_lower, shift.p_higher) == (0.0, 1.0)


def test_too_few_values_is_refused() -> None:
    with pytest.raises(ValueError, match="at least two values on each side"):
        mean_shift([1.0], [1.0, 2.0])


def test_on_autocorrelated_series_with_no_change_false_alarms_stay_near_alpha() -> None:
    """AR(1), rho = 0.6, 21 days each side, no change: a one-sided test at 5%."""
    rng = np.random.default_rng(20261206)
    alarms = plain = 0
    sims = 1500
    for _ in range(sims):
        e = rng.normal(0, 1, 42)
        x = np.empty(42)
        x[0] = e[0]
        for i in range(1, 42):
            x[i] = 0.6 * x[i - 1] + e[i] * np.sqrt(1 - 0.36)
        alarms += mean_shift(x[:21], x[21:]).p_lower <= 0.05
        plain += sps.ttest_ind(x[21:], x[:21], equal_var=False, alternative="less").pvalue <= 0.05
    assert alarms / sims <= 0.08
    assert plain / sims >= 0.12  # what the correction is for
