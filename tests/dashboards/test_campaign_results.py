"""The offers-and-campaigns dashboard and the profitability audit show each campaign's measured result
(loyalty.campaigns): a row per variant against the holdout, and the incremental revenue per month, on the
attribution fixture worked out by hand in tests/campaigns/test_attribution.py."""

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.dashboards.selectors.base import Filters
from loyalty.dashboards.selectors.offers import campaign_incremental_revenue, campaign_rows
from tests.campaigns.conftest import NOON
from tests.campaigns.test_attribution import campaign_with_activity  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def filters_for(campaign, start=None, end=None):
    return Filters(
        program=campaign.program,
        start=start or NOON.date() - dt.timedelta(days=1),
        end=end or NOON.date() + dt.timedelta(days=10),
    )


def test_a_campaign_launched_in_the_range_has_its_uplift_and_incremental_revenue(campaign_with_activity):  # noqa: F811
    campaign = campaign_with_activity
    (row,) = campaign_rows(filters_for(campaign))
    # A: m1 (70 after the return), m2 (40), m3 (0) -> 2 of 3 converted, 110 revenue; holdout: h1 (20), h2 (0)
    assert row["campaign"] == f"{campaign.name} — A"
    assert row["conversion_rate"] == pytest.approx(2 / 3)
    assert row["uplift"] == pytest.approx(2 / 3 - 1 / 2)
    assert "points" in row["uplift_ci"]
    # incremental revenue = (110/3 - 20/2) x 3 = 80.00
    assert row["incremental_revenue"] == Decimal("80.00")
    assert row["roi"] == row["incremental_revenue"] - row["cost"]
    assert campaign_incremental_revenue(filters_for(campaign)) == {NOON.date().replace(day=1): Decimal("80.00")}


def test_a_campaign_launched_outside_the_range_is_not_shown(campaign_with_activity):  # noqa: F811
    campaign = campaign_with_activity
    later = filters_for(campaign, start=NOON.date() + dt.timedelta(days=1), end=NOON.date() + dt.timedelta(days=30))
    assert campaign_rows(later) == []
    assert campaign_incremental_revenue(later) == {}
