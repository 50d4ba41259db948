"""The dashboards' figures against numbers worked out by hand on the story of conftest.py."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from loyalty.core import clock
from loyalty.dashboards.models import DailyFact
from loyalty.dashboards.selectors.health import (
    active_over_time,
    liability_over_time,
    monthly,
    program_health,
    retention,
)
from loyalty.dashboards.selectors.profitability import profitability_dashboard
from loyalty.dashboards.services import dashboards_refresh
from tests.dashboards.conftest import at

pytestmark = pytest.mark.django_db

JAN, FEB, MAR = dt.date(2030, 1, 1), dt.date(2030, 2, 1), dt.date(2030, 3, 1)


def by(rows, key):
    return {row[key]: row for row in rows}


def test_points_per_month_give_issued_redeemed_expired_and_their_rates(story):
    _, points = monthly(story["filters"])
    rows = by(points.rows, "month")
    assert [(rows[m]["issued"], rows[m]["redeemed"], rows[m]["expired"]) for m in (JAN, FEB, MAR)] == [
        (170, 40, 0),
        (30, 0, 130),
        (0, 0, 0),
    ]
    assert rows[JAN]["redemption_rate"] == round(40 / 170, 4)
    assert rows[FEB]["breakage_rate"] == round(130 / 30, 4)  # breakage of January's points counted when they expire
    assert rows[MAR]["redemption_rate"] is None  # nothing issued: no rate, not 0


def test_participation_is_active_in_90_days_over_enrolled_at_each_month_end(story):
    rows = by(active_over_time(story["filters"]).rows, "day")
    assert (rows[dt.date(2030, 1, 31)]["enrolled"], rows[dt.date(2030, 1, 31)]["active"]) == (2, 2)
    # Cal joined in March and never bought: 2 of 3 active
    assert (rows[dt.date(2030, 3, 31)]["enrolled"], rows[dt.date(2030, 3, 31)]["active"]) == (3, 2)
    assert rows[dt.date(2030, 3, 31)]["participation"] == round(2 / 3, 4)


def test_partner_filter_counts_members_linked_to_and_active_at_that_partner(story):
    from dataclasses import replace

    rows = by(active_over_time(replace(story["filters"], partner=story["coffee"])).rows, "day")
    assert (rows[dt.date(2030, 3, 31)]["enrolled"], rows[dt.date(2030, 3, 31)]["active"]) == (1, 1)


def test_retention_cohort_is_share_of_joiners_active_k_months_later(story):
    rows = by(retention(story["filters"]).rows, "cohort")
    assert rows[JAN]["size"] == 2
    assert (rows[JAN]["m0"], rows[JAN]["m1"], rows[JAN]["m2"]) == (1.0, 0.5, 0.0)
    assert rows[JAN]["m3"] is None  # after the range: unknown, not 0
    assert (rows[MAR]["size"], rows[MAR]["m0"]) == (1, 0.0)
    assert rows[FEB]["size"] == 0 and rows[FEB]["m0"] is None


def test_repeat_rate_and_engagement_per_active_member(story):
    engagement, _ = monthly(story["filters"])
    jan = by(engagement.rows, "month")[JAN]
    assert (jan["active"], jan["purchases"], jan["purchasers"], jan["repeat"]) == (2, 3, 2, 1)
    assert jan["repeat_rate"] == 0.5
    assert jan["purchases_per_active"] == 1.5


def test_liability_over_time_is_outstanding_points_at_each_month_end_times_point_value(story):
    rows = liability_over_time(story["filters"]).rows
    assert [(r["month_end"], r["points"], r["liability"]) for r in rows] == [
        (dt.date(2030, 1, 31), 130, Decimal("1.30")),
        (dt.date(2030, 2, 28), 30, Decimal("0.30")),
        (dt.date(2030, 3, 31), 30, Decimal("0.30")),
    ]


def test_liability_counts_points_from_before_the_range(story):
    from dataclasses import replace

    rows = liability_over_time(replace(story["filters"], start=dt.date(2030, 2, 1))).rows
    assert rows[0]["points"] == 30 and rows[0]["liability"] == Decimal("0.30")


def test_settlement_partner_owes_points_issued_at_cost_and_is_owed_redemptions_at_point_value(story):
    page = profitability_dashboard(story["filters"])
    coffee = by(page.table("settlement").rows, "partner")["Coffee"]
    assert (coffee["points_issued"], coffee["partner_owes"]) == (130, Decimal("1.04"))
    assert (coffee["points_redeemed"], coffee["partner_is_owed"]) == (40, Decimal("0.40"))
    assert coffee["net"] == Decimal("0.64") and coffee["direction"] == "partner pays"
    # the own store pays nothing for its points and nobody redeemed there: nothing to settle
    assert "Store" not in by(page.table("settlement").rows, "partner")


def test_margin_is_minus_points_cost_plus_rewards_and_messages_less_partner_funding(story):
    page = profitability_dashboard(story["filters"])
    jan = by(page.table("profit_months").rows, "month")[JAN]
    assert jan["revenue"] == Decimal("170.00")
    assert jan["points_cost"] == Decimal("1.70")
    assert jan["partner_funding"] == Decimal("0.80")  # 100 points at Coffee x 0.008
    assert jan["program_cost"] == Decimal("0.90")
    assert jan["margin"] == Decimal("-0.90")  # no campaign revenue measured yet
    assert jan["incremental_revenue"] is None


def test_program_health_headlines(story):
    page = program_health(story["filters"])
    figures = {f.label: f.value for f in page.figures}
    assert figures["Members enrolled now"] == 3
    assert figures["Participation rate"] == round(2 / 3, 4)
    assert figures["Redemption rate"] == round(40 / 200, 4)
    assert figures["Breakage rate"] == round(130 / 200, 4)
    assert figures["Points liability now"] == Decimal("0.30")


def test_refresh_twice_writes_the_same_rows_once(story):
    before = sorted(DailyFact.objects.values_list("day", "partner_id", "points_earned", "revenue"))
    dashboards_refresh(full=True)
    dashboards_refresh(days=120)
    assert sorted(DailyFact.objects.values_list("day", "partner_id", "points_earned", "revenue")) == before


def test_segment_revenue_share_is_its_members_spend_in_the_range_over_everybody_from_the_nightly_summary(story):
    from dataclasses import replace

    from loyalty.dashboards.selectors.segments import segments_dashboard
    from segments.services import segment_create, segment_refresh

    everyone = segment_create(
        name="Everyone", rules={"all": [{"field": "member.status", "op": "eq", "value": "active"}]}
    )
    from members.models import Member

    Member.objects.filter(pk=story["members"][0].pk).update(postal_code="1000")
    anns = segment_create(name="Ann", rules={"all": [{"field": "member.postal_code", "op": "eq", "value": "1000"}]})
    segment_refresh(segment=everyone)
    segment_refresh(segment=anns)
    page = segments_dashboard(story["filters"], [everyone.pk, anns.pk])
    assert page.table("segment_composition").rows[0]["spend"] == Decimal("0.00")  # not summarised yet

    dashboards_refresh(full=True)
    page = segments_dashboard(story["filters"], [everyone.pk, anns.pk])
    mix = by(page.table("segment_tiers").rows, "segment")
    # nobody has a tier status in the story: every member counts at the base tier, nightly mix
    assert sum(v for k, v in mix["Everyone"].items() if k != "segment") == 1.0
    rows = by(page.table("segment_composition").rows, "segment")
    assert (rows["Everyone"]["members"], rows["Everyone"]["spend"], rows["Everyone"]["revenue_share"]) == (
        3,
        Decimal("200.00"),
        1.0,
    )
    assert rows["Everyone"]["spend_per_member"] == Decimal("66.67")
    # Ann: 100.00 + 30.00 of 200.00
    assert (rows["Ann"]["spend"], rows["Ann"]["revenue_share"]) == (Decimal("130.00"), 0.65)
    # February only, at Coffee: Ann's 30.00 is all of it
    february = replace(story["filters"], start=FEB, end=dt.date(2030, 2, 28), partner=story["coffee"])
    rows = by(segments_dashboard(february, [everyone.pk, anns.pk]).table("segment_composition").rows, "segment")
    assert (rows["Ann"]["spend"], rows["Ann"]["revenue_share"]) == (Decimal("30.00"), 1.0)


def test_spend_per_tier_adds_the_nightly_summary_over_the_range_by_tier(story):
    from dataclasses import replace

    from loyalty.dashboards.selectors.tiers import tiers_dashboard

    rows = tiers_dashboard(story["filters"]).table("tier_spend").rows
    assert sum(r["purchases"] for r in rows) == 4
    assert sum(r["spend"] for r in rows) == Decimal("200.00")
    january = replace(story["filters"], end=dt.date(2030, 1, 31), partner=story["store"])
    rows = tiers_dashboard(january).table("tier_spend").rows
    assert (sum(r["purchases"] for r in rows), sum(r["spend"] for r in rows)) == (2, Decimal("70.00"))


def test_refresh_command_says_what_it_rewrote_and_refuses_a_bad_number_of_days(story, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--days must be 1 or more"):
        call_command("refresh_dashboards", "--days", "0")
    call_command("refresh_dashboards", "--days", "10")
    assert "Dashboards refreshed from 2030-03-22 to 2030-03-31" in capsys.readouterr().out


def test_nightly_task_refreshes_the_last_days(story):
    from loyalty.dashboards.tasks import refresh

    result = refresh.delay().get()
    assert result["until"] == "2030-03-31" and set(result["timings"]) >= {
        "daily_activity",
        "daily_ledger",
        "tier_flows",
        "tier_spend",
        "segment_spend",
    }


def _facts_by_day():
    """Each day's two parts, every partner added up."""
    return {
        (row["day"], row["part"]): row
        for row in DailyFact.objects.values("day", "part")
        .annotate(
            purchases=Sum("purchases"),
            revenue=Sum("revenue"),
            points_earned=Sum("points_earned"),
            points_net=Sum("points_net"),
        )
        .order_by()
    }


def test_nightly_refresh_counts_a_late_purchase_on_its_day_and_its_points_on_the_day_written(story):
    from loyalty.activity.services import purchase_record

    clock.set_now(at(3, 31))
    purchase_record(
        partner=story["coffee"],
        member=story["members"][0],
        external_id="late-1",
        occurred_at=at(3, 1),
        lines=[{"sku": "SKU1", "category": "COFFEE", "amount": Decimal("10.00")}],
    )
    dashboards_refresh()  # nightly: activity over 95 days, ledger over the last 3
    facts = _facts_by_day()
    assert (
        facts[(dt.date(2030, 3, 1), DailyFact.ACTIVITY)]["purchases"],
        facts[(dt.date(2030, 3, 1), "activity")]["revenue"],
    ) == (1, Decimal("10.00"))
    assert facts[(dt.date(2030, 3, 31), DailyFact.LEDGER)]["points_earned"] == 10
    # January's ledger days are outside the nightly ledger window: kept as written by the full refresh
    assert facts[(dt.date(2030, 1, 10), DailyFact.LEDGER)]["points_earned"] == 150


def test_rows_written_before_parts_are_replaced_by_the_whole_history_once(story):
    full = _facts_by_day()
    DailyFact.objects.update(part="")  # as the table was before it had parts
    dashboards_refresh()
    assert _facts_by_day() == full and not DailyFact.objects.filter(part="").exists()
