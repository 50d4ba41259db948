"""Offers and campaigns: redemptions in the range, points issued against the budget; each campaign
launched in the range with its measured uplift (loyalty.campaigns results, Welch intervals)."""

from __future__ import annotations

from django.db.models import Count, Q, Sum

from loyalty.campaigns.models import Campaign, CampaignStatus
from loyalty.campaigns.results import CampaignResults, campaign_results
from loyalty.campaigns.selectors.attribution import campaign_arms
from loyalty.dashboards.selectors.base import Chart, Column, Figure, Filters, Page, Table, ratio
from offers.models import Offer


def _campaigns_measured(filters: Filters) -> list[tuple[Campaign, CampaignResults]]:
    """Campaigns of the program launched in the range (not cancelled), with their results. Campaigns
    belong to a program, not a partner: the partner filter does not apply to them."""
    campaigns = (
        Campaign.objects.filter(
            program=filters.program, launched_at__gte=filters.start_at, launched_at__lt=filters.end_at
        )
        .exclude(status=CampaignStatus.CANCELLED)
        .order_by("launched_at", "pk")
    )
    return [(campaign, campaign_results(campaign_arms(campaign), bootstrap=0)) for campaign in campaigns]


def campaign_rows(filters: Filters) -> list[dict]:
    """One row per variant of each campaign launched in the range: its messages delivered, conversion
    rate, uplift against the holdout with the 95% interval, incremental revenue, cost and ROI."""
    rows = []
    for campaign, results in _campaigns_measured(filters):
        arms = {arm.name: arm for arm in results.arms}
        for comparison in results.comparisons:
            arm = arms[comparison.variant]
            interval = comparison.conversion_ci
            rows.append(
                {
                    "campaign": f"{campaign.name} — {comparison.variant}",
                    "sent": arm.delivered,
                    "conversion_rate": arm.conversion_rate,
                    "uplift": comparison.conversion_diff,
                    "uplift_ci": (
                        f"{interval.low * 100:+.1f} to {interval.high * 100:+.1f} points"
                        if interval is not None
                        else " ".join(comparison.notes) or "not measured"
                    ),
                    "incremental_revenue": comparison.incremental_revenue,
                    "cost": comparison.cost,
                    "roi": comparison.roi,
                }
            )
    return rows


def campaign_incremental_revenue(filters: Filters) -> dict:
    """Incremental revenue of the campaigns launched in the range, per month of launch ({first day of
    month: money}); campaigns without a holdout add nothing (their uplift is not measured)."""
    months: dict = {}
    for campaign, results in _campaigns_measured(filters):
        month = campaign.launched_at.date().replace(day=1)
        for comparison in results.comparisons:
            if comparison.incremental_revenue is not None:
                months[month] = months.get(month, 0) + comparison.incremental_revenue
    return months


CAMPAIGN_COLUMNS = [
    Column("campaign", "Campaign", "text"),
    Column("sent", "Messages sent"),
    Column("conversion_rate", "Conversion rate", "rate"),
    Column("uplift", "Uplift (conversion)", "rate"),
    Column("uplift_ci", "95% interval of the uplift", "text"),
    Column("incremental_revenue", "Incremental revenue", "money"),
    Column("cost", "Cost of points, rewards and messages", "money"),
    Column("roi", "ROI (incremental revenue − cost)", "money"),
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
        note="Campaigns of the program launched in the range, one row per variant against the holdout (the partner "
        "filter does not apply: campaigns are the program's). Uplift is the difference in conversion rate, with its "
        "95% interval by a two-proportion z-test; each campaign's page in the admin has the full results.",
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
