"""Tiers: distribution over time, movements per month (up, down, kept) and what each tier's
members spend. Today's distribution is ``tiers.selectors.tier_distribution``; earlier month ends
are worked back from it with the tier changes of the summary table ``TierFlowDaily``."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from loyalty.dashboards.models import TierFlowDaily, TierSpendDaily
from loyalty.dashboards.selectors.base import (
    Chart,
    Column,
    Figure,
    Filters,
    Page,
    Table,
    as_date,
    money,
    month_end,
    ratio,
)
from loyalty.tiers import qualification
from loyalty.tiers.selectors import program_tiers, tier_distribution


def _slug(tier_id: int | None) -> str:
    return f"t{tier_id}" if tier_id is not None else "t_none"


def tier_flows(filters: Filters) -> list[dict]:
    """Tier changes per month from the first month of the range to today."""
    rows = (
        TierFlowDaily.objects.filter(program_id=filters.program.pk, day__gte=filters.start.replace(day=1))
        .annotate(month=TruncMonth("day"))
        .values("month", "from_tier_id", "to_tier_id", "reason")
        .annotate(members=Sum("members"))
        .order_by("month")
    )
    return [{**row, "month": as_date(row["month"])} for row in rows]


def distribution_over_time(filters: Filters, now_rows: list[dict], flows: list[dict]) -> Table:
    tiers = [(row["tier_id"], row["tier"]) for row in now_rows]
    now = {row["tier_id"]: row["members"] for row in now_rows}
    rows = []
    for month in filters.months():
        at = month_end(month)
        counts = dict(now)
        for flow in flows:
            if flow["month"] > at:  # undo what changed after this month end
                counts[flow["to_tier_id"]] = counts.get(flow["to_tier_id"], 0) - flow["members"]
                if flow["from_tier_id"] is not None or flow["reason"] != "initial":
                    counts[flow["from_tier_id"]] = counts.get(flow["from_tier_id"], 0) + flow["members"]
        row = {"month_end": min(at, filters.end)}
        for tier_id, _ in tiers:
            row[_slug(tier_id)] = max(0, counts.get(tier_id, 0))
        rows.append(row)
    return Table(
        "tier_distribution",
        "Members per tier at each month end",
        [Column("month_end", "On", "date")] + [Column(_slug(tier_id), name) for tier_id, name in tiers],
        rows,
        note="Today's members per tier, worked back month by month with the tier changes recorded since.",
    )


def movements(filters: Filters, flows: list[dict], distribution: Table, ranks: dict) -> Table:
    per_month: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for flow in flows:
        if flow["month"] > filters.end:
            continue
        bucket = per_month[flow["month"]]
        from_rank, to_rank = ranks.get(flow["from_tier_id"]), ranks.get(flow["to_tier_id"])
        if flow["reason"] == "initial" or flow["from_tier_id"] is None:
            bucket["new"] += flow["members"]
        elif to_rank is not None and from_rank is not None and to_rank > from_rank:
            bucket["up"] += flow["members"]
        else:
            bucket["down"] += flow["members"]
        if flow["from_tier_id"] is not None and flow["reason"] != "initial":
            bucket["left"] += flow["members"]
    rows, previous = [], None
    tier_keys = [c.key for c in distribution.columns[1:]]
    for month, dist in zip(filters.months(), distribution.rows, strict=True):
        bucket = per_month.get(month, {})
        at_start = sum(previous[k] for k in tier_keys) if previous else None
        rows.append(
            {
                "month": month,
                "up": bucket.get("up", 0),
                "down": bucket.get("down", 0),
                "new": bucket.get("new", 0),
                "kept": max(0, at_start - bucket.get("left", 0)) if at_start is not None else None,
            }
        )
        previous = dist
    return Table(
        "tier_movements",
        "Tier movements per month",
        [
            Column("month", "Month", "month"),
            Column("up", "Moved up"),
            Column("down", "Moved down"),
            Column("kept", "Kept their tier"),
            Column("new", "Got a first tier"),
        ],
        rows,
        note="Up or down by the tiers' rank (a tier set by hand counts where it lands). Kept: members in a tier "
        "at the start of the month who did not change during it (not shown for the first month).",
    )


def spend_per_tier(filters: Filters, now_rows: list[dict]) -> Table:
    base = qualification.base_tier(program_tiers(program=filters.program).rules)
    days = TierSpendDaily.objects.filter(program_id=filters.program.pk, day__gte=filters.start, day__lte=filters.end)
    if filters.partner:
        days = days.filter(partner_id=filters.partner.pk)
    found: dict[int | None, tuple[int, Decimal]] = {}
    for row in days.values("tier_id").annotate(n=Sum("purchases"), spend=Sum("spend")).order_by():
        tier_id = row["tier_id"] if row["tier_id"] is not None else (base.id if base else None)
        n, spend = found.get(tier_id, (0, Decimal(0)))
        found[tier_id] = (n + row["n"], spend + row["spend"])
    rows = []
    for tier in now_rows:
        n, spend = found.get(tier["tier_id"], (0, Decimal(0)))
        rows.append(
            {
                "tier": tier["tier"],
                "members": tier["members"],
                "purchases": n,
                "spend": money(spend),
                "spend_per_member": money(Decimal(spend or 0) / tier["members"]) if tier["members"] else None,
                "basket": money(Decimal(spend or 0) / n) if n else None,
            }
        )
    return Table(
        "tier_spend",
        "What each tier's members spend",
        [
            Column("tier", "Tier", "text"),
            Column("members", "Members now"),
            Column("purchases", "Purchases"),
            Column("spend", "Spend", "money"),
            Column("spend_per_member", "Spend per member", "money"),
            Column("basket", "Average basket", "money"),
        ],
        rows,
        note="Spend (eligible, less returns) in the range by the members in each tier"
        + (", at the chosen partner" if filters.partner else "")
        + ". From the nightly summary: days of the last refresh window count by members' tier now, older days by "
        "the tier they held when those days were last summarised.",
    )


def tiers_dashboard(filters: Filters) -> Page:
    now_rows = tier_distribution(program=filters.program)
    pt = program_tiers(program=filters.program)
    ranks = {t.pk: t.rank for t in pt.tiers}
    flows = tier_flows(filters)
    distribution = distribution_over_time(filters, now_rows, flows)
    moves = movements(filters, flows, distribution, ranks)
    spend = spend_per_tier(filters, now_rows)
    total = sum(r["members"] for r in now_rows)
    page = Page("Tiers")
    page.figures = [Figure("Members with a tier now", total)] + [
        Figure(r["tier"], r["members"], note=f"{(ratio(r['members'], total) or 0):.0%} of members") for r in now_rows
    ]
    page.sections = [
        (
            Chart(
                "stacked",
                distribution.title,
                distribution.id,
                "month_end",
                [c.key for c in distribution.columns[1:]],
                "Month end",
                "Members",
            ),
            distribution,
        ),
        (Chart("bar", moves.title, moves.id, "month", ["up", "down", "new"], "Month", "Members"), moves),
        (Chart("bar", "Spend per member by tier", spend.id, "tier", ["spend_per_member"], "Tier", "Money"), spend),
    ]
    return page
