"""Offers (and campaigns, wired at merge): redemptions in the range, points issued against the budget."""

from __future__ import annotations

from django.db.models import Count, Q, Sum

from loyalty.dashboards.selectors.base import Chart, Column, Figure, Filters, Page, Table, ratio
from offers.models import Offer


def campaign_rows(filters: Filters) -> list[dict]:
    """Campaigns of the range: sent, conversions, uplift, incremental revenue, cost, ROI.

    WIRED AT MERGE: loyalty.campaigns has no models on this branch; the campaigns branch's selector
    of campaign results goes here (one row per campaign, keys of ``CAMPAIGN_COLUMNS``)."""
    return []


def campaign_incremental_revenue(filters: Filters) -> dict:
    """Incremental revenue of campaigns per month ({first day of month: money}). WIRED AT MERGE
    with ``campaign_rows`` (empty until then: the profitability audit shows it as not measured)."""
    return {}


CAMPAIGN_COLUMNS = [
    Column("campaign", "Campaign", "text"),
    Column("sent", "Messages sent"),
    Column("conversion_rate", "Conversion rate", "rate"),
    Column("uplift", "Uplift", "rate"),
    Column("incremental_revenue", "Incremental revenue", "money"),
    Column("cost", "Cost of points and rewards", "money"),
    Column("roi", "ROI", "ratio"),
]


def offer_rows(filters: Filters) -> list[dict]:
    in_range = Q(
        redemptions__created_at__gte=filters.start_at,
        redemptions__created_at__lt=filters.end_at,
        redemptions__status="completed",
    )
    if filters.partner:
        in_range &= Q(redemptions__purchase__partner=filters.partner)
    offers = (
        Offer.objects.filter(program=filters.program)
        .exclude(status="draft")
        .annotate(
            range_redemptions=Count("redemptions", filter=in_range),
            range_points=Sum("redemptions__points", filter=in_range),
        )
        .order_by("-range_redemptions", "name")
    )
    rows = []
    for o in offers:
        rows.append(
            {
                "offer": o.name,
                "status": o.get_status_display(),
                "redemptions": o.range_redemptions,
                "points": o.range_points or 0,
                "redemptions_total": o.redemptions_count,
                "max_redemptions": o.max_redemptions,
                "points_total": o.points_issued,
                "points_budget": o.points_budget,
                "budget_used": ratio(o.points_issued, o.points_budget) if o.points_budget else None,
            }
        )
    return rows


def offers_dashboard(filters: Filters) -> Page:
    rows = offer_rows(filters)
    offers = Table(
        "offers",
        "Offers: redemptions and points against budget",
        [
            Column("offer", "Offer", "text"),
            Column("status", "Status", "text"),
            Column("redemptions", "Redemptions in range"),
            Column("points", "Points in range", "points"),
            Column("redemptions_total", "Redemptions, all time"),
            Column("max_redemptions", "Redemption limit"),
            Column("points_total", "Points issued, all time", "points"),
            Column("points_budget", "Points budget", "points"),
            Column("budget_used", "Budget used", "rate"),
        ],
        rows,
        note="Completed offer redemptions in the range (at the chosen partner's purchases when one is chosen); "
        "all-time figures are the offers' own counters.",
    )
    campaigns = Table(
        "campaigns",
        "Campaigns",
        CAMPAIGN_COLUMNS,
        campaign_rows(filters),
        note="Campaign results appear here once campaigns are in use.",
    )
    budgeted = [r for r in rows if r["points_budget"]]
    page = Page("Offers and campaigns")
    page.figures = [
        Figure("Offers live or ended", len(rows)),
        Figure("Offer redemptions in range", sum(r["redemptions"] for r in rows)),
        Figure("Offer points in range", sum(r["points"] for r in rows), "points"),
        Figure("Offers with a points budget", len(budgeted)),
    ]
    chart = Chart(
        "bar", "Redemptions in range (top 12 offers)", offers.id, "offer", ["redemptions"], "Offer", "Redemptions"
    )
    chart.limit = 12
    page.sections = [(chart, offers), (None, campaigns)]
    return page
