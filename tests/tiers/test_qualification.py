"""The pure rules, without the database."""

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.tiers import qualification as q
from loyalty.tiers.qualification import Metrics, TierRule

BASE = TierRule(id=1, name="Base", rank=0)
SILVER = TierRule(id=2, name="Silver", rank=1, thresholds={"spend": Decimal("500.00")})
GOLD = TierRule(id=3, name="Gold", rank=2, thresholds={"spend": Decimal("1000.00"), "points": 2000})
PLATINUM = TierRule(
    id=4, name="Platinum", rank=3, combine="all", thresholds={"spend": Decimal("5000.00"), "purchases": 20}
)
RULES = [BASE, SILVER, GOLD, PLATINUM]


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        (Metrics(), BASE),
        (Metrics(spend=Decimal("499.99")), BASE),
        (Metrics(spend=Decimal("500.00")), SILVER),
        (Metrics(spend=Decimal("999.99"), points=1999), SILVER),
        (Metrics(points=2000), GOLD),
        (Metrics(spend=Decimal("9000.00"), purchases=19), GOLD),
        (Metrics(spend=Decimal("5000.00"), purchases=20), PLATINUM),
    ],
)
def test_highest_qualified_tier_exactly_at_threshold_qualifies(metrics, expected):
    assert q.qualified_tier(RULES, metrics) == expected


def test_without_a_base_tier_nothing_may_qualify():
    assert q.qualified_tier([SILVER, GOLD], Metrics()) is None
    assert q.base_tier([SILVER, GOLD]) is None and q.base_tier(RULES) == BASE


def test_missing_amounts_per_metric():
    metrics = Metrics(spend=Decimal("880.00"), points=150, purchases=2)
    assert GOLD.missing(metrics) == {"spend": Decimal("120.00"), "points": 1850}
    assert PLATINUM.missing(metrics) == {"spend": Decimal("4120.00"), "purchases": 18}
    assert SILVER.missing(metrics) == {"spend": Decimal("0.00")}


@pytest.mark.parametrize(
    ("policy", "earned", "qualified", "expected"),
    [
        ("requalify", PLATINUM, BASE, BASE),
        ("requalify", GOLD, SILVER, SILVER),
        ("requalify", SILVER, GOLD, GOLD),
        ("one_step", PLATINUM, BASE, GOLD),
        ("one_step", PLATINUM, GOLD, GOLD),
        ("one_step", GOLD, PLATINUM, PLATINUM),
        ("one_step", BASE, BASE, BASE),
        ("never", PLATINUM, BASE, PLATINUM),
        ("never", SILVER, GOLD, GOLD),
    ],
)
def test_downgrade_policies(policy, earned, qualified, expected):
    assert q.apply_policy(policy, RULES, earned, qualified) == expected


def test_one_step_without_a_base_tier_can_drop_to_no_tier():
    assert q.apply_policy("one_step", [SILVER, GOLD], SILVER, None) is None


def test_calendar_year_windows():
    assert q.review_period("calendar_year", utc(2030, 7, 4, 15), utc(2020, 1, 1)) == (utc(2030, 1, 1), utc(2031, 1, 1))
    assert q.qualification_window("calendar_year", utc(2030, 1, 1), utc(2020, 1, 1)) == (
        utc(2030, 1, 1),
        utc(2031, 1, 1),
    )


def test_membership_year_windows_follow_the_enrollment_anniversary():
    enrolled = utc(2028, 5, 20, 9, 30)
    assert q.review_period("membership_year", utc(2028, 5, 20, 9, 30), enrolled) == (enrolled, utc(2029, 5, 20, 9, 30))
    assert q.review_period("membership_year", utc(2030, 5, 20, 9, 29), enrolled) == (
        utc(2029, 5, 20, 9, 30),
        utc(2030, 5, 20, 9, 30),
    )
    assert q.review_period("membership_year", utc(2030, 12, 1), enrolled)[0] == utc(2030, 5, 20, 9, 30)


def test_membership_year_of_29_february_falls_on_28_february_in_other_years():
    enrolled = utc(2028, 2, 29)
    assert q.review_period("membership_year", utc(2029, 3, 1), enrolled) == (utc(2029, 2, 28), utc(2030, 2, 28))
    assert q.review_period("membership_year", utc(2032, 3, 1), enrolled) == (utc(2032, 2, 29), utc(2033, 2, 28))


def test_rolling_window_is_the_last_12_months_and_reviews_a_year_after():
    now = utc(2030, 8, 15, 12)
    assert q.qualification_window("rolling_12_months", now, utc(2020, 1, 1)) == (utc(2029, 8, 15, 12), None)
    assert q.review_period("rolling_12_months", now, utc(2020, 1, 1)) == (now, utc(2031, 8, 15, 12))


def test_lifetime_window_has_no_bounds():
    assert q.qualification_window("lifetime", utc(2030, 1, 1), utc(2020, 1, 1)) == (None, None)
    assert q.review_period("lifetime", utc(2030, 1, 1), utc(2020, 1, 1)) == (None, None)
