"""A campaign's results: each arm's figures, and each variant against the holdout.

The caller (the campaign's results selector, the Complete Journey replay) reads one `ArmData` per arm:
who the arm reached, each member's attributed revenue (0 for non-buyers), conversions, message counts and
costs. `campaign_results` turns them into figures and comparisons (the statistics in
`loyalty.campaigns.stats`); `results_csv_rows` and `results_chart_svg` render them for the export and the
page. Definitions: docs/domain.md, "Campaign results".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from html import escape

import numpy as np

from loyalty.campaigns import stats

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ArmData:
    name: str  # variant name, or "holdout"
    is_holdout: bool
    revenue: Sequence[float] | np.ndarray  # one value per member of the arm (its reach), 0 for non-buyers
    converted: int  # members of the arm with at least one attributed purchase
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    points_cost: Decimal = Decimal(0)
    reward_cost: Decimal = Decimal(0)
    message_cost: Decimal = Decimal(0)


@dataclass(frozen=True)
class ArmResult:
    name: str
    is_holdout: bool
    reach: int
    delivered: int
    opened: int
    clicked: int
    converted: int
    conversion_rate: float | None  # None when the arm reached nobody
    revenue: Decimal
    revenue_per_member: Decimal | None
    points_cost: Decimal
    reward_cost: Decimal
    message_cost: Decimal

    @property
    def cost(self) -> Decimal:
        return self.points_cost + self.reward_cost + self.message_cost


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """One variant against the holdout. A figure that cannot be computed is None, and `notes` say why."""

    variant: str
    holdout: str | None
    confidence: float
    conversion_diff: float | None = None  # variant rate - holdout rate (absolute: 0.02 = 2 points)
    conversion_ci: Interval | None = None
    conversion_p: float | None = None
    revenue_per_member_diff: float | None = None
    revenue_ci: Interval | None = None  # Welch
    revenue_p: float | None = None
    revenue_df: float | None = None
    revenue_bootstrap_ci: Interval | None = None
    incremental_revenue: Decimal | None = None  # revenue per member difference × variant reach
    cost: Decimal = Decimal(0)  # points + reward + message cost of the variant
    roi: Decimal | None = None  # incremental revenue - cost
    roi_ratio: float | None = None  # (incremental revenue - cost) / cost, when cost > 0
    notes: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.conversion_diff is not None


@dataclass(frozen=True)
class CampaignResults:
    arms: tuple[ArmResult, ...]
    comparisons: tuple[Comparison, ...]
    confidence: float
    bootstrap: int
    seed: int
    notes: tuple[str, ...] = ()

    @property
    def holdout(self) -> ArmResult | None:
        return next((arm for arm in self.arms if arm.is_holdout), None)


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _arm_result(arm: ArmData, revenue: np.ndarray) -> ArmResult:
    reach = int(revenue.size)
    total = _money(float(revenue.sum())) if reach else Decimal("0.00")
    return ArmResult(
        name=arm.name,
        is_holdout=arm.is_holdout,
        reach=reach,
        delivered=arm.delivered,
        opened=arm.opened,
        clicked=arm.clicked,
        converted=arm.converted,
        conversion_rate=arm.converted / reach if reach else None,
        revenue=total,
        revenue_per_member=_money(float(revenue.mean())) if reach else None,
        points_cost=Decimal(arm.points_cost),
        reward_cost=Decimal(arm.reward_cost),
        message_cost=Decimal(arm.message_cost),
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _compare(
    variant: ArmResult,
    variant_revenue: np.ndarray,
    holdout: ArmResult | None,
    holdout_revenue: np.ndarray | None,
    *,
    confidence: float,
    bootstrap: int,
    seed: int,
) -> Comparison:
    cost = variant.cost
    if holdout is None or holdout_revenue is None:
        return Comparison(variant.name, None, confidence, cost=cost, notes=("No holdout: nothing to compare with.",))
    empty = [arm.name for arm in (variant, holdout) if arm.reach == 0]
    if empty:
        return Comparison(
            variant.name,
            holdout.name,
            confidence,
            cost=cost,
            notes=tuple(f"The arm “{name}” reached no member: nothing to compare." for name in empty),
        )
    notes: list[str] = []
    conversion = stats.two_proportion_ztest(
        variant.converted, variant.reach, holdout.converted, holdout.reach, confidence=confidence
    )
    rpm_diff = float(variant_revenue.mean() - holdout_revenue.mean())
    revenue_ci = revenue_p = revenue_df = None
    if variant.reach >= 2 and holdout.reach >= 2:
        welch = stats.welch_ttest(variant_revenue, holdout_revenue, confidence=confidence)
        revenue_ci = Interval(welch.ci_low, welch.ci_high)
        revenue_p, revenue_df = welch.p_value, _finite(welch.df)
    else:
        notes.append("An arm has fewer than 2 members: no t-test of revenue per member.")
    bootstrap_ci = None
    if bootstrap:
        low, high = stats.bootstrap_mean_diff_ci(
            variant_revenue, holdout_revenue, confidence=confidence, resamples=bootstrap, seed=seed
        )
        bootstrap_ci = Interval(low, high)
    else:
        notes.append("No bootstrap interval was asked for (bootstrap=0).")
    incremental = _money(rpm_diff * variant.reach)
    roi = incremental - cost
    return Comparison(
        variant=variant.name,
        holdout=holdout.name,
        confidence=confidence,
        conversion_diff=conversion.diff,
        conversion_ci=Interval(conversion.ci_low, conversion.ci_high),
        conversion_p=conversion.p_value,
        revenue_per_member_diff=rpm_diff,
        revenue_ci=revenue_ci,
        revenue_p=revenue_p,
        revenue_df=revenue_df,
        revenue_bootstrap_ci=bootstrap_ci,
        incremental_revenue=incremental,
        cost=cost,
        roi=roi,
        roi_ratio=float(roi / cost) if cost > 0 else None,
        notes=tuple(notes),
    )


def campaign_results(
    arms: list[ArmData], *, confidence: float = 0.95, bootstrap: int = 2000, seed: int = 0
) -> CampaignResults:
    """Figures per arm, and every variant against the holdout (the one arm with `is_holdout`).

    Raises `stats.StatisticsInputError` (a ValueError) for arms that cannot be results: two holdouts,
    conversions above the reach, a revenue that is not a number. No holdout or an empty arm is not an
    error: the comparisons say why they have no figures. ``bootstrap=0`` leaves the bootstrap interval
    out (lists of campaigns, where the Welch interval is shown and 2,000 resamples per campaign would
    cost seconds each on large arms).
    """
    if not 0 < confidence < 1:
        raise stats.StatisticsInputError(f"the confidence level must lie between 0 and 1 (got {confidence})")
    if bootstrap < 0:
        raise stats.StatisticsInputError("the bootstrap needs a number of resamples (0: no bootstrap interval)")
    holdouts = [arm for arm in arms if arm.is_holdout]
    if len(holdouts) > 1:
        raise stats.StatisticsInputError("a campaign has at most one holdout arm")
    revenues = []
    for arm in arms:
        revenue = np.asarray(arm.revenue, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(revenue)):
            raise stats.StatisticsInputError(f"the arm “{arm.name}” has a revenue that is not a number")
        if not 0 <= arm.converted <= revenue.size:
            raise stats.StatisticsInputError(
                f"the arm “{arm.name}” has {arm.converted} conversions for {revenue.size} members"
            )
        revenues.append(revenue)
    results = [_arm_result(arm, revenue) for arm, revenue in zip(arms, revenues, strict=True)]
    holdout_index = next((i for i, arm in enumerate(arms) if arm.is_holdout), None)
    holdout = results[holdout_index] if holdout_index is not None else None
    holdout_revenue = revenues[holdout_index] if holdout_index is not None else None
    comparisons = tuple(
        _compare(
            result,
            revenue,
            holdout,
            holdout_revenue,
            confidence=confidence,
            bootstrap=bootstrap,
            seed=seed,
        )
        for result, revenue in zip(results, revenues, strict=True)
        if not result.is_holdout
    )
    notes = () if holdout is not None else ("This campaign has no holdout: its uplift cannot be measured.",)
    return CampaignResults(tuple(results), comparisons, confidence, bootstrap, seed, notes)


def holdout_sample_size(*, baseline_rate: float, min_uplift: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Members per arm (holdout included) to detect `min_uplift` (absolute, in conversion rate) two-sided."""
    return stats.sample_size_two_proportions(
        baseline_rate=baseline_rate, min_uplift=min_uplift, alpha=alpha, power=power
    )


# ---- Rendering: CSV and SVG -------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _dec(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _cell(text: str) -> str:
    """A spreadsheet would run a cell starting with = + - @ as a formula: such names get a quote first."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


CSV_HEADER = [
    "arm",
    "holdout",
    "reach",
    "delivered",
    "opened",
    "clicked",
    "converted",
    "conversion rate",
    "revenue",
    "revenue per member",
    "points cost",
    "reward cost",
    "message cost",
    "conversion difference vs holdout",
    "conversion difference CI low",
    "conversion difference CI high",
    "conversion p-value (z-test)",
    "revenue per member difference vs holdout",
    "revenue difference CI low (Welch)",
    "revenue difference CI high (Welch)",
    "revenue p-value (Welch t-test)",
    "Welch degrees of freedom",
    "revenue difference CI low (bootstrap)",
    "revenue difference CI high (bootstrap)",
    "incremental revenue",
    "cost",
    "ROI (incremental revenue - cost)",
    "ROI ratio",
    "notes",
]


def results_csv_rows(results: CampaignResults) -> list[list[str]]:
    """The export: a header, then one row per arm (the holdout's comparison columns empty)."""
    by_variant = {comparison.variant: comparison for comparison in results.comparisons}
    rows = [list(CSV_HEADER)]
    for arm in results.arms:
        comparison = None if arm.is_holdout else by_variant.get(arm.name)
        row = [
            _cell(arm.name),
            "yes" if arm.is_holdout else "no",
            str(arm.reach),
            str(arm.delivered),
            str(arm.opened),
            str(arm.clicked),
            str(arm.converted),
            _rate(arm.conversion_rate),
            _dec(arm.revenue),
            _dec(arm.revenue_per_member),
            _dec(arm.points_cost),
            _dec(arm.reward_cost),
            _dec(arm.message_cost),
        ]
        if comparison is None:
            row += [""] * (len(CSV_HEADER) - len(row) - 1) + [" ".join(results.notes) if arm.is_holdout else ""]
        else:
            c = comparison
            row += [
                _rate(c.conversion_diff),
                _rate(c.conversion_ci.low if c.conversion_ci else None),
                _rate(c.conversion_ci.high if c.conversion_ci else None),
                _p(c.conversion_p),
                _num(c.revenue_per_member_diff),
                _num(c.revenue_ci.low if c.revenue_ci else None),
                _num(c.revenue_ci.high if c.revenue_ci else None),
                _p(c.revenue_p),
                _num(c.revenue_df, 1),
                _num(c.revenue_bootstrap_ci.low if c.revenue_bootstrap_ci else None),
                _num(c.revenue_bootstrap_ci.high if c.revenue_bootstrap_ci else None),
                _dec(c.incremental_revenue),
                _dec(c.cost),
                _dec(c.roi),
                _num(c.roi_ratio),
                _cell(" ".join(c.notes)),
            ]
        rows.append(row)
    return rows


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def results_chart_svg(results: CampaignResults, *, title: str) -> str:
    """Conversion rate per arm as horizontal bars, each variant's bar with its difference to the holdout
    and that difference's interval in words. Server-rendered, no script; every text is escaped, so the
    result can be marked safe. The table it is drawn from is `results_csv_rows` (the page shows it)."""
    bar_height, gap, label_width, plot_width, right = 26, 30, 170, 360, 110  # gap: the line under a bar
    top = 40
    n = max(1, len(results.arms))
    height = top + n * (bar_height + gap) + 30
    width = label_width + plot_width + right
    rates = [arm.conversion_rate or 0.0 for arm in results.arms]
    scale_max = max([*rates, 0.01])
    by_variant = {comparison.variant: comparison for comparison in results.comparisons}
    descriptions = []
    bars = []
    for i, arm in enumerate(results.arms):
        y = top + i * (bar_height + gap)
        rate = arm.conversion_rate
        name = escape(arm.name)
        if rate is None:
            rate_text = "reached no member"
        else:
            rate_text = f"{_percent(rate)} converted ({arm.converted} of {arm.reach})"
        comparison = by_variant.get(arm.name) if not arm.is_holdout else None
        versus = ""
        if comparison is not None and comparison.available and comparison.conversion_ci is not None:
            versus = (
                f"{comparison.conversion_diff * 100:+.1f} points vs holdout "
                f"({int(round(results.confidence * 100))}% CI {comparison.conversion_ci.low * 100:+.1f} to "
                f"{comparison.conversion_ci.high * 100:+.1f}, p = {comparison.conversion_p:.3g})"
            )
        elif comparison is not None and comparison.notes:
            versus = comparison.notes[0]
        label = f"{arm.name}{' (holdout)' if arm.is_holdout else ''}: {rate_text}"
        descriptions.append(label + (f"; {versus}" if versus else ""))
        bar_width = 0 if rate is None else max(1.0, plot_width * rate / scale_max)
        fill = "#9aa5b1" if arm.is_holdout else "#2f6db3"
        bars.append(
            f'<g role="listitem" aria-label="{escape(descriptions[-1])}">'
            f'<text x="{label_width - 8}" y="{y + bar_height * 0.68:.1f}" text-anchor="end">{name}</text>'
            f'<rect x="{label_width}" y="{y}" width="{bar_width:.1f}" height="{bar_height}" fill="{fill}"/>'
            f'<text x="{label_width + bar_width + 6:.1f}" y="{y + bar_height * 0.68:.1f}">'
            f"{escape(rate_text if rate is None else _percent(rate))}</text>"
            + (
                f'<text x="{label_width + 6}" y="{y + bar_height + 14}" font-size="11">{escape(versus)}</text>'
                if versus
                else ""
            )
            + "</g>"
        )
    desc = "Conversion rate per arm. " + "; ".join(descriptions) + "."
    if results.notes:
        desc += " " + " ".join(results.notes)
    title_text = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-labelledby="campaign-chart-title campaign-chart-desc" '
        f'font-family="system-ui, sans-serif" font-size="13">'
        f'<title id="campaign-chart-title">{title_text}</title>'
        f'<desc id="campaign-chart-desc">{escape(desc)}</desc>'
        f'<text x="0" y="18" font-weight="bold">{title_text}</text>'
        f'<line x1="{label_width}" y1="{top - 6}" x2="{label_width}" y2="{height - 24}" stroke="#555"/>'
        f'<g role="list">{"".join(bars)}</g>'
        f'<text x="{label_width}" y="{height - 8}" font-size="11">Conversion rate (share of the arm with at '
        f"least one attributed purchase)</text>"
        "</svg>"
    )
