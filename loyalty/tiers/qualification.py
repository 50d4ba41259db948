"""Pure tier rules over plain data: which tier some metrics qualify for, what is missing for a
tier, what a downgrade policy makes of a closed period, and the qualification windows.

The nightly job runs the same rules as SQL (``services.evaluation`` builds its CASE
expressions from these ``TierRule`` objects), so both always agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from dateutil.relativedelta import relativedelta

SPEND, POINTS, PURCHASES = "spend", "points", "purchases"
METRICS = (SPEND, POINTS, PURCHASES)
NO_RANK = -1  # the rank of "no tier"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Metrics:
    """Qualifying figures of one member in one window."""

    spend: Decimal = Decimal("0.00")
    points: int = 0
    purchases: int = 0

    def value(self, metric: str) -> Decimal | int:
        return getattr(self, metric)


@dataclass(frozen=True)
class TierRule:
    id: int
    name: str
    rank: int
    combine: str = "any"
    thresholds: dict[str, Decimal | int] = field(default_factory=dict)

    def qualifies(self, metrics: Metrics) -> bool:
        """No thresholds: everybody qualifies (a base tier). Exactly at a threshold qualifies."""
        if not self.thresholds:
            return True
        met = [metrics.value(metric) >= minimum for metric, minimum in self.thresholds.items()]
        return all(met) if self.combine == "all" else any(met)

    def missing(self, metrics: Metrics) -> dict[str, Decimal | int]:
        """Per threshold metric, how much more is needed (0 when met). With ``any`` one of the
        non-zero figures is enough; with ``all`` every one is needed."""
        result: dict[str, Decimal | int] = {}
        for metric, minimum in self.thresholds.items():
            gap = max(minimum - metrics.value(metric), 0)
            result[metric] = Decimal(gap).quantize(CENT) if metric == SPEND else int(gap)
        return result


def rule_thresholds(pairs: list[tuple[str, Decimal]]) -> dict[str, Decimal | int]:
    """Threshold rows (metric, minimum) as the rule's mapping: spend stays money, the others whole."""
    return {metric: minimum.quantize(CENT) if metric == SPEND else int(minimum) for metric, minimum in pairs}


def qualified_tier(rules: list[TierRule], metrics: Metrics) -> TierRule | None:
    """The highest-ranked tier the metrics qualify for (None if none)."""
    for rule in sorted(rules, key=lambda r: r.rank, reverse=True):
        if rule.qualifies(metrics):
            return rule
    return None


def base_tier(rules: list[TierRule]) -> TierRule | None:
    """The tier of a member with no activity."""
    return qualified_tier(rules, Metrics())


def next_tier(rules: list[TierRule], current: TierRule | None) -> TierRule | None:
    rank = current.rank if current else NO_RANK
    higher = [r for r in rules if r.rank > rank]
    return min(higher, key=lambda r: r.rank) if higher else None


def tier_below(rules: list[TierRule], rank: int) -> TierRule | None:
    lower = [r for r in rules if r.rank < rank]
    return max(lower, key=lambda r: r.rank) if lower else None


def rank_of(rule: TierRule | None) -> int:
    return rule.rank if rule is not None else NO_RANK


def apply_policy(
    policy: str, rules: list[TierRule], earned: TierRule | None, qualified: TierRule | None
) -> TierRule | None:
    """The tier a member holds after a period closes, from the tier held (``earned``) and the
    tier the closed period qualifies for. Moving up is always allowed."""
    if rank_of(qualified) >= rank_of(earned):
        return qualified
    if policy == "never":
        return earned
    if policy == "one_step":
        below = tier_below(rules, rank_of(earned))
        return qualified if rank_of(qualified) > rank_of(below) else below
    return qualified  # requalify


def add_years(moment: dt.datetime, years: int) -> dt.datetime:
    """Same month, day and time ``years`` later; 29 February becomes 28 February."""
    return moment + relativedelta(years=years)


def anniversary_period(enrolled_at: dt.datetime, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The membership year (from an enrollment anniversary to the next) that contains ``at``."""
    years = max(at.year - enrolled_at.year, 0)
    start = add_years(enrolled_at, years)
    if start > at and years > 0:
        years -= 1
        start = add_years(enrolled_at, years)
    return start, add_years(enrolled_at, years + 1)


def review_period(
    window: str, at: dt.datetime, enrolled_at: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The period a status set at ``at`` is reviewed over: its close is the next evaluation.

    calendar_year: the year containing ``at``; membership_year: the membership year containing
    ``at``; rolling_12_months: the 12 months from ``at`` (a tier reached is reviewed 12 months
    later, over the 12 months before the review); lifetime: no period, never reviewed."""
    if window == "calendar_year":
        start = dt.datetime(at.year, 1, 1, tzinfo=dt.UTC)
        return start, add_years(start, 1)
    if window == "membership_year":
        return anniversary_period(enrolled_at, at)
    if window == "rolling_12_months":
        return at, add_years(at, 1)
    if window == "lifetime":
        return None, None
    raise ValueError(f"unknown qualification window {window}")


def qualification_window(
    window: str, at: dt.datetime, enrolled_at: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Where activity counts toward an upgrade at ``at``: the current calendar or membership
    year, the 12 months up to ``at`` (no end), or everything (lifetime)."""
    if window == "rolling_12_months":
        return add_years(at, -1), None
    return review_period(window, at, enrolled_at)
