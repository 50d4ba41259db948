"""The statistics of campaign results, as plain functions over plain numbers and arrays.

Nothing here knows about campaigns, members or the database: `loyalty.campaigns.results` feeds these
functions one arm's numbers at a time. Each function states its formula; the tests recompute it by hand.

- `two_proportion_ztest`: difference of two conversion rates, its Wald confidence interval (unpooled
  standard error) and the two-sided p-value of the z-test (pooled standard error under "no difference").
- `welch_ttest`: difference of two means (revenue per member), Welch's t-test (unequal variances), degrees
  of freedom by the Welch–Satterthwaite formula, its confidence interval and two-sided p-value.
- `bootstrap_mean_diff_ci`: percentile bootstrap interval of the same difference of means (seeded numpy).
- `sample_size_two_proportions`: members per arm to detect a given absolute uplift of a conversion rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats


class StatisticsInputError(ValueError):
    """The numbers cannot give this statistic (empty group, rate out of range...); the message says why."""


@dataclass(frozen=True)
class ProportionTest:
    rate_a: float
    rate_b: float
    diff: float  # rate_a - rate_b
    ci_low: float
    ci_high: float
    z: float
    p_value: float


@dataclass(frozen=True)
class MeanTest:
    mean_a: float
    mean_b: float
    diff: float  # mean_a - mean_b
    std_error: float
    df: float
    t: float
    p_value: float
    ci_low: float
    ci_high: float


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise StatisticsInputError(f"the confidence level must lie between 0 and 1 (got {confidence})")


def two_proportion_ztest(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, confidence: float = 0.95
) -> ProportionTest:
    """Group a against group b: rates p_a = x_a/n_a, p_b = x_b/n_b, difference d = p_a - p_b.

    z = d / sqrt(p (1 - p) (1/n_a + 1/n_b)) with the pooled rate p = (x_a + x_b) / (n_a + n_b);
    p-value = 2 (1 - Phi(|z|)). Interval: d ± z_(1-alpha/2) sqrt(p_a (1-p_a)/n_a + p_b (1-p_b)/n_b).
    When every member (or none) converted in both groups the pooled error is 0 and d is 0: z = 0, p = 1.
    """
    _check_confidence(confidence)
    for label, x, n in (("a", successes_a, n_a), ("b", successes_b, n_b)):
        if n <= 0:
            raise StatisticsInputError(f"group {label} has no members")
        if not 0 <= x <= n:
            raise StatisticsInputError(f"group {label}: {x} conversions out of {n} members is impossible")
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    diff = rate_a - rate_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if pooled_se == 0:
        z, p_value = 0.0, 1.0
    else:
        z = diff / pooled_se
        p_value = float(2 * scipy_stats.norm.sf(abs(z)))
    se = math.sqrt(rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b)
    half = float(scipy_stats.norm.ppf(1 - (1 - confidence) / 2)) * se
    return ProportionTest(rate_a, rate_b, diff, diff - half, diff + half, z, p_value)


def welch_ttest(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, confidence: float = 0.95
) -> MeanTest:
    """Mean of a against mean of b, variances not assumed equal.

    se = sqrt(s_a²/n_a + s_b²/n_b) (sample variances, n - 1 in the denominator); t = (m_a - m_b) / se;
    df = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a - 1) + (s_b²/n_b)²/(n_b - 1))  (Welch–Satterthwaite);
    p-value = 2 (1 - T_df(|t|)); interval: diff ± t_df(1-alpha/2) se.
    Both groups constant (se = 0): df is n_a + n_b - 2, and t = 0, p = 1 when the means are equal, else
    t = ±inf, p = 0 (the difference is certain).
    """
    _check_confidence(confidence)
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    for label, x in (("a", xa), ("b", xb)):
        if x.ndim != 1 or x.size < 2:
            raise StatisticsInputError(f"group {label} needs at least 2 members for a t-test (it has {x.size})")
        if not np.all(np.isfinite(x)):
            raise StatisticsInputError(f"group {label} has a value that is not a number")
    n_a, n_b = xa.size, xb.size
    mean_a, mean_b = float(xa.mean()), float(xb.mean())
    va, vb = float(xa.var(ddof=1)) / n_a, float(xb.var(ddof=1)) / n_b
    diff = mean_a - mean_b
    se = math.sqrt(va + vb)
    if se == 0:
        df = float(n_a + n_b - 2)
        if diff == 0:
            t, p_value = 0.0, 1.0
        else:
            t, p_value = math.copysign(math.inf, diff), 0.0
        return MeanTest(mean_a, mean_b, diff, 0.0, df, t, p_value, diff, diff)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    t = diff / se
    p_value = float(2 * scipy_stats.t.sf(abs(t), df))
    half = float(scipy_stats.t.ppf(1 - (1 - confidence) / 2, df)) * se
    return MeanTest(mean_a, mean_b, diff, se, df, t, p_value, diff - half, diff + half)


# Resampled values drawn at once for a small arm (resamples × its members): bounds memory.
_BOOTSTRAP_CHUNK_VALUES = 4_000_000


def _bootstrap_means(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `resamples` samples of x drawn with replacement (each of x's size). Three exact ways
    of the same draw, by cost:

    - few distinct values (most members spend 0): the counts of a resample over the distinct values follow
      a multinomial law, so a resample costs the distinct values instead of the members;
    - small arms: every draw at once, `resamples` × members indices;
    - large arms: the members of a resample that spent something are binomial in number, and only they are
      drawn (from the spenders); the others add 0. A resample costs the arm's spenders, not its members.
    """
    n = x.size
    values, counts = np.unique(x, return_counts=True)
    if values.size * 4 <= n:
        drawn = rng.multinomial(n, counts / n, size=resamples)  # resamples × distinct values
        return drawn @ values / n
    if n * resamples <= _BOOTSTRAP_CHUNK_VALUES:
        return x[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    spenders = x[x != 0]  # not empty: an arm of zeros has one distinct value, resampled by counts above
    means = np.zeros(resamples, dtype=np.float64)
    for i, k in enumerate(rng.binomial(n, spenders.size / n, size=resamples)):
        means[i] = spenders[rng.integers(0, spenders.size, size=k)].sum() / n
    return means


def bootstrap_mean_diff_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b): each group resampled with replacement on its
    own (`resamples` times, numpy's generator seeded with `seed`, so the same inputs give the same
    interval), the interval is the (alpha/2, 1 - alpha/2) quantiles of the resampled differences."""
    _check_confidence(confidence)
    if resamples < 1:
        raise StatisticsInputError("the bootstrap needs at least one resample")
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    for label, x in (("a", xa), ("b", xb)):
        if x.ndim != 1 or x.size < 1:
            raise StatisticsInputError(f"group {label} has no members")
        if not np.all(np.isfinite(x)):
            raise StatisticsInputError(f"group {label} has a value that is not a number")
    rng = np.random.default_rng(seed)
    diffs = _bootstrap_means(xa, resamples, rng) - _bootstrap_means(xb, resamples, rng)
    alpha = 1 - confidence
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def sample_size_two_proportions(
    *, baseline_rate: float, min_uplift: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Members per arm for a two-sided two-proportion z-test to detect `min_uplift` (absolute: 0.02 is
    two points of conversion rate) over `baseline_rate` with significance `alpha` and the given power:

    n = (z_(1-alpha/2) sqrt(2 p̄ (1 - p̄)) + z_power sqrt(p1 (1 - p1) + p2 (1 - p2)))² / (p2 - p1)²,
    p1 = baseline, p2 = baseline + uplift, p̄ = (p1 + p2) / 2, rounded up.
    """
    if not 0 < baseline_rate < 1:
        raise StatisticsInputError(
            f"the baseline conversion rate must lie strictly between 0 and 1 (got {baseline_rate})"
        )
    if min_uplift == 0:
        raise StatisticsInputError("the uplift to detect cannot be 0")
    p1, p2 = baseline_rate, baseline_rate + min_uplift
    if not 0 < p2 < 1:
        raise StatisticsInputError(
            f"baseline {baseline_rate} plus uplift {min_uplift} is a conversion rate outside 0 to 1"
        )
    if not 0 < alpha < 1:
        raise StatisticsInputError(f"alpha must lie between 0 and 1 (got {alpha})")
    if not 0 < power < 1:
        raise StatisticsInputError(f"the power must lie between 0 and 1 (got {power})")
    p_bar = (p1 + p2) / 2
    z_alpha = float(scipy_stats.norm.ppf(1 - alpha / 2))
    z_power = float(scipy_stats.norm.ppf(power))
    root = z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root**2 / (p2 - p1) ** 2 - 1e-9)
