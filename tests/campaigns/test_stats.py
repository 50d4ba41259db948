"""The statistics of campaign results against hand-computed cases and closed forms (no statsmodels)."""

import math

import numpy as np
import pytest
from scipy import special
from scipy import stats as scipy_stats

from loyalty.campaigns import stats

Z_975 = 1.959963984540054  # Phi^-1(0.975)
Z_80 = 0.8416212335729143  # Phi^-1(0.80)


def normal_two_sided_p(z):
    """Closed form: 2 (1 - Phi(|z|)) = erfc(|z| / sqrt 2)."""
    return math.erfc(abs(z) / math.sqrt(2))


def student_two_sided_p(t, df):
    """Closed form: 2 (1 - T_df(|t|)) = I_(df / (df + t²))(df/2, 1/2) (regularized incomplete beta)."""
    return special.betainc(df / 2, 0.5, df / (df + t * t))


def test_two_proportion_ztest_uses_pooled_error_for_p_and_unpooled_for_interval():
    # 60 of 500 (12%) against 40 of 500 (8%): d = 0.04.
    # pooled p = 100/1000 = 0.1; se0 = sqrt(0.1 * 0.9 * (1/500 + 1/500)) = sqrt(0.00036) = 0.0189737
    # z = 0.04 / 0.0189737 = 2.10819; p = erfc(2.10819 / sqrt 2) = 0.03502
    # se = sqrt(0.12 * 0.88 / 500 + 0.08 * 0.92 / 500) = sqrt(0.0003584) = 0.0189315
    # CI = 0.04 ± 1.95996 * 0.0189315 = 0.04 ± 0.037105 → (0.002895, 0.077105)
    result = stats.two_proportion_ztest(60, 500, 40, 500)
    assert result.rate_a == pytest.approx(0.12)
    assert result.rate_b == pytest.approx(0.08)
    assert result.diff == pytest.approx(0.04)
    se0 = math.sqrt(0.1 * 0.9 * (2 / 500))
    assert result.z == pytest.approx(0.04 / se0)
    assert result.z == pytest.approx(2.10819, abs=1e-5)
    assert result.p_value == pytest.approx(normal_two_sided_p(0.04 / se0))
    assert result.p_value == pytest.approx(0.03502, abs=1e-5)
    half = Z_975 * math.sqrt(0.12 * 0.88 / 500 + 0.08 * 0.92 / 500)
    assert result.ci_low == pytest.approx(0.04 - half)
    assert result.ci_high == pytest.approx(0.04 + half)
    assert result.ci_low == pytest.approx(0.002895, abs=1e-6)


def test_two_proportion_ztest_is_antisymmetric_in_its_groups():
    forward = stats.two_proportion_ztest(30, 200, 45, 250)
    backward = stats.two_proportion_ztest(45, 250, 30, 200)
    assert forward.diff == pytest.approx(-backward.diff)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.ci_low == pytest.approx(-backward.ci_high)


def test_two_proportion_ztest_with_nobody_converting_has_no_difference_and_p_one():
    result = stats.two_proportion_ztest(0, 100, 0, 80)
    assert (result.diff, result.z, result.p_value, result.ci_low, result.ci_high) == (0, 0, 1, 0, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 0, 1, 10), "group a has no members"), ((11, 10, 1, 10), "impossible"), ((1, 10, -1, 10), "impossible")],
)
def test_two_proportion_ztest_refuses_impossible_counts(args, message):
    with pytest.raises(stats.StatisticsInputError, match=message):
        stats.two_proportion_ztest(*args)


def test_welch_ttest_degrees_of_freedom_by_welch_satterthwaite():
    # a = 1, 2, 3, 4: mean 2.5, s² = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, s²/n = 5/12 = 0.416667
    # b = 2, 4, 6, 8, 10: mean 6, s² = (16 + 4 + 0 + 4 + 16) / 4 = 10, s²/n = 2
    # se = sqrt(5/12 + 2) = 1.554563; t = -3.5 / 1.554563 = -2.251437
    # df = (5/12 + 2)² / ((5/12)² / 3 + 2² / 4) = 5.840278 / 1.057870 = 5.520788
    result = stats.welch_ttest([1, 2, 3, 4], [2, 4, 6, 8, 10])
    assert result.mean_a == 2.5
    assert result.mean_b == 6
    assert result.diff == -3.5
    assert result.std_error == pytest.approx(math.sqrt(5 / 12 + 2))
    assert result.t == pytest.approx(-3.5 / math.sqrt(5 / 12 + 2))
    df = (5 / 12 + 2) ** 2 / ((5 / 12) ** 2 / 3 + 2**2 / 4)
    assert result.df == pytest.approx(df)
    assert result.df == pytest.approx(5.520788, abs=1e-5)
    assert result.p_value == pytest.approx(student_two_sided_p(result.t, df))
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(5 / 12 + 2)
    assert (result.ci_low, result.ci_high) == (pytest.approx(-3.5 - half), pytest.approx(-3.5 + half))


def test_welch_ttest_agrees_with_scipy_unequal_variance_test():
    rng = np.random.default_rng(7)
    a, b = rng.exponential(20, 300), rng.exponential(15, 450)
    ours = stats.welch_ttest(a, b)
    theirs = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert ours.t == pytest.approx(theirs.statistic)
    assert ours.p_value == pytest.approx(theirs.pvalue)


def test_welch_ttest_of_constant_groups_is_certain_or_null():
    assert stats.welch_ttest([3, 3], [3, 3, 3]).p_value == 1
    different = stats.welch_ttest([5, 5], [3, 3, 3])
    assert (different.p_value, different.ci_low, different.ci_high, different.df) == (0, 2, 2, 3)


def test_welch_ttest_refuses_groups_of_one_member_and_not_a_number():
    with pytest.raises(stats.StatisticsInputError, match="at least 2 members"):
        stats.welch_ttest([1], [1, 2])
    with pytest.raises(stats.StatisticsInputError, match="not a number"):
        stats.welch_ttest([1, float("nan")], [1, 2])


def test_bootstrap_interval_is_reproducible_with_its_seed_and_changes_with_another():
    rng = np.random.default_rng(1)
    a, b = rng.exponential(10, 200), rng.exponential(8, 300)
    first = stats.bootstrap_mean_diff_ci(a, b, seed=3)
    assert stats.bootstrap_mean_diff_ci(a, b, seed=3) == first
    assert stats.bootstrap_mean_diff_ci(a, b, seed=4) != first


def test_bootstrap_interval_of_constant_groups_is_the_difference_itself():
    assert stats.bootstrap_mean_diff_ci([4.0] * 10, [1.5] * 7) == (pytest.approx(2.5), pytest.approx(2.5))


def test_bootstrap_interval_is_close_to_welch_interval_for_large_samples():
    # Means of 4,000 draws are near normal: the percentile interval and Welch's agree within a few percent.
    rng = np.random.default_rng(11)
    a, b = rng.exponential(12, 4000), rng.exponential(10, 4000)
    welch = stats.welch_ttest(a, b)
    low, high = stats.bootstrap_mean_diff_ci(a, b, resamples=4000, seed=0)
    width = welch.ci_high - welch.ci_low
    assert low == pytest.approx(welch.ci_low, abs=0.08 * width)
    assert high == pytest.approx(welch.ci_high, abs=0.08 * width)


def test_bootstrap_by_counts_and_by_draws_give_the_same_interval_for_mostly_zero_revenue():
    # 90% of members spend 0: resampled by multinomial counts of the 3 distinct values; the same
    # values made all distinct (+ tiny jitter) are resampled member by member. Both are the bootstrap.
    a = np.array([0.0] * 900 + [10.0] * 60 + [30.0] * 40)
    b = np.array([0.0] * 950 + [10.0] * 30 + [30.0] * 20)
    by_counts = stats.bootstrap_mean_diff_ci(a, b, resamples=3000, seed=0)
    jitter = np.arange(1000) * 1e-9
    by_draws = stats.bootstrap_mean_diff_ci(a + jitter, b + jitter, resamples=3000, seed=0)
    assert by_counts[0] == pytest.approx(by_draws[0], abs=0.15)
    assert by_counts[1] == pytest.approx(by_draws[1], abs=0.15)
    # the observed difference: (600 + 1200) / 1000 - (300 + 600) / 1000 = 1.8 - 0.9 = 0.9
    assert by_counts[0] < 0.9 < by_counts[1]


def test_bootstrap_of_large_arms_draws_only_the_spenders_and_gives_the_same_interval(monkeypatch):
    # Large arms resample the spenders only (their number binomial); made to take that path here by a
    # small memory bound, the interval matches the all-members draw on the same data.
    rng = np.random.default_rng(5)
    a = np.where(rng.random(3000) < 0.3, rng.exponential(30, 3000), 0.0)
    b = np.where(rng.random(3000) < 0.25, rng.exponential(30, 3000), 0.0)
    every_member = stats.bootstrap_mean_diff_ci(a, b, resamples=3000, seed=0)
    monkeypatch.setattr(stats, "_BOOTSTRAP_CHUNK_VALUES", 1000)
    spenders_only = stats.bootstrap_mean_diff_ci(a, b, resamples=3000, seed=0)
    width = every_member[1] - every_member[0]
    assert spenders_only[0] == pytest.approx(every_member[0], abs=0.1 * width)
    assert spenders_only[1] == pytest.approx(every_member[1], abs=0.1 * width)
    assert stats.bootstrap_mean_diff_ci(np.zeros(2000), np.zeros(2000), resamples=10) == (0, 0)


def test_sample_size_for_two_points_over_ten_percent():
    # p1 = 0.10, p2 = 0.12, p̄ = 0.11
    # (1.959964 * sqrt(2 * 0.11 * 0.89) + 0.841621 * sqrt(0.10 * 0.90 + 0.12 * 0.88))² / 0.02²
    # = (1.959964 * 0.442493 + 0.841621 * 0.442267)² / 0.0004 = (0.867271 + 0.372222)² / 0.0004
    # = 1.536343 / 0.0004 = 3840.86 → 3841 members per arm
    expected = (Z_975 * math.sqrt(2 * 0.11 * 0.89) + Z_80 * math.sqrt(0.09 + 0.12 * 0.88)) ** 2 / 0.02**2
    assert math.ceil(expected) == 3841
    assert stats.sample_size_two_proportions(baseline_rate=0.10, min_uplift=0.02) == 3841


def test_sample_size_grows_with_power_and_shrinks_with_uplift():
    base = stats.sample_size_two_proportions(baseline_rate=0.2, min_uplift=0.05)
    assert stats.sample_size_two_proportions(baseline_rate=0.2, min_uplift=0.05, power=0.9) > base
    assert stats.sample_size_two_proportions(baseline_rate=0.2, min_uplift=0.10) < base


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline_rate": 0, "min_uplift": 0.1}, "strictly between 0 and 1"),
        ({"baseline_rate": 0.5, "min_uplift": 0}, "cannot be 0"),
        ({"baseline_rate": 0.95, "min_uplift": 0.1}, "outside 0 to 1"),
        ({"baseline_rate": 0.5, "min_uplift": 0.1, "power": 1}, "power"),
    ],
)
def test_sample_size_refuses_impossible_rates(kwargs, message):
    with pytest.raises(stats.StatisticsInputError, match=message):
        stats.sample_size_two_proportions(**kwargs)
