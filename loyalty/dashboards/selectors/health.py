"""Program health: members, activity, engagement, retention, points and the liability over time.

Figures come from the summary tables (``DailyFact``, ``MonthlyActivity``, ``ActiveSnapshot``),
today's member count and liability from the ledger itself. Definitions: docs/domain.md
("Dashboards")."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from loyalty.dashboards.models import ActiveSnapshot, DailyFact, MonthlyActivity
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
from loyalty.ledger.models import Account, AccountKind
from loyalty.ledger.selectors import points_liability

RETENTION_MONTHS = 12
NOT_ENROLLED = ("closed", "erased")


def _facts(filters: Filters, *, partner: bool = True):
    facts = DailyFact.objects.filter(program_id=filters.program.pk, day__gte=filters.start, day__lte=filters.end)
    if partner and filters.partner:
        facts = facts.filter(partner_id=filters.partner.pk)
    return facts


def members_enrolled(filters: Filters) -> int:
    """Members with an account in the program, not closed or erased (linked to the partner when one is chosen)."""
    accounts = Account.objects.filter(program=filters.program, kind=AccountKind.MEMBER).exclude(
        member__status__in=NOT_ENROLLED
    )
    if filters.partner:
        accounts = accounts.filter(member__partner_links__partner=filters.partner).distinct()
    return accounts.count()


def new_members_per_week(filters: Filters) -> Table:
    per_day = _facts(filters).values("day").annotate(n=Sum("new_members")).order_by("day")
    weeks: dict[dt.date, int] = defaultdict(int)
    for row in per_day:
        day = as_date(row["day"])
        weeks[day - dt.timedelta(days=day.weekday())] += row["n"] or 0
    first = filters.start - dt.timedelta(days=filters.start.weekday())
    rows, week = [], first
    while week <= filters.end:
        rows.append({"week": week, "new_members": weeks.get(week, 0)})
        week += dt.timedelta(days=7)
    return Table(
        "new_members",
        "New members per week",
        [Column("week", "Week of", "date"), Column("new_members", "New members")],
        rows,
        note="Members whose account in the program opened that week (Monday to Sunday)"
        + (", enrolled through the chosen partner." if filters.partner else "."),
    )


def active_over_time(filters: Filters) -> Table:
    snaps = ActiveSnapshot.objects.filter(
        program_id=filters.program.pk, partner_key=filters.partner_key, day__gte=filters.start, day__lte=filters.end
    ).order_by("day")
    rows = [
        {
            "day": as_date(s.day),
            "enrolled": s.enrolled,
            "active": s.active_90d,
            "participation": ratio(s.active_90d, s.enrolled),
        }
        for s in snaps
    ]
    return Table(
        "active",
        "Active members and participation rate",
        [
            Column("day", "On", "date"),
            Column("enrolled", "Enrolled"),
            Column("active", "Active (90 days)"),
            Column("participation", "Participation rate", "rate"),
        ],
        rows,
        note="Active: a purchase or an event in the 90 days up to that day. Participation rate: active ÷ enrolled "
        "(not closed or erased). Taken at each month end and on the last refreshed day.",
    )


def monthly(filters: Filters) -> tuple[Table, Table]:
    """Engagement per month (active members, purchases and events per active member, repeat rate)
    and points per month (issued, redeemed, expired, redemption and breakage rates)."""
    facts = {
        as_date(row["month"]): row
        for row in _facts(filters)
        .annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(
            purchases=Sum("purchases"),
            events=Sum("events"),
            earned=Sum("points_earned"),
            redeemed=Sum("points_redeemed"),
            refunded=Sum("points_refunded"),
            expired=Sum("points_expired"),
        )
        .order_by("month")
    }
    activity = {
        as_date(row["month"]): row
        for row in MonthlyActivity.objects.filter(
            program_id=filters.program.pk,
            partner_key=filters.partner_key,
            month__gte=filters.start.replace(day=1),
            month__lte=filters.end,
        )
        .values("month")
        .annotate(active=Sum("active_members"), purchasers=Sum("purchasers"), repeat=Sum("repeat_purchasers"))
        .order_by("month")
    }
    engagement, points = [], []
    for month in filters.months():
        f, a = facts.get(month, {}), activity.get(month, {})
        active = a.get("active") or 0
        engagement.append(
            {
                "month": month,
                "active": active,
                "purchases": f.get("purchases") or 0,
                "events": f.get("events") or 0,
                "purchases_per_active": ratio(f.get("purchases") or 0, active),
                "events_per_active": ratio(f.get("events") or 0, active),
                "purchasers": a.get("purchasers") or 0,
                "repeat": a.get("repeat") or 0,
                "repeat_rate": ratio(a.get("repeat") or 0, a.get("purchasers") or 0),
            }
        )
        earned = f.get("earned") or 0
        redeemed = (f.get("redeemed") or 0) - (f.get("refunded") or 0)
        expired = f.get("expired") or 0
        points.append(
            {
                "month": month,
                "issued": earned,
                "redeemed": redeemed,
                "expired": expired,
                "redemption_rate": ratio(redeemed, earned),
                "breakage_rate": ratio(expired, earned),
            }
        )
    return (
        Table(
            "engagement",
            "Engagement per month",
            [
                Column("month", "Month", "month"),
                Column("active", "Active members"),
                Column("purchases", "Purchases"),
                Column("events", "Events"),
                Column("purchases_per_active", "Purchases per active member", "ratio"),
                Column("events_per_active", "Events per active member", "ratio"),
                Column("purchasers", "Members who bought"),
                Column("repeat", "Bought twice or more"),
                Column("repeat_rate", "Repeat rate", "rate"),
            ],
            engagement,
            note="Active in a month: a purchase or an event in that month. Repeat rate: of the members who bought "
            "in the month, the share who bought at least twice.",
        ),
        Table(
            "points",
            "Points issued, redeemed and expired per month",
            [
                Column("month", "Month", "month"),
                Column("issued", "Issued", "points"),
                Column("redeemed", "Redeemed", "points"),
                Column("expired", "Expired (breakage)", "points"),
                Column("redemption_rate", "Redemption rate", "rate"),
                Column("breakage_rate", "Breakage rate", "rate"),
            ],
            points,
            note="Issued: points earned by members. Redeemed: points burned less refunds of cancelled redemptions. "
            "Rates: ÷ points issued in the same month.",
        ),
    )


def retention(filters: Filters) -> Table:
    """Of the members who joined in month M, the share active in month M+k (k = 0..11)."""
    cohorts = filters.months()
    sizes = {
        as_date(row["month"]): row["n"] or 0
        for row in DailyFact.objects.filter(
            program_id=filters.program.pk, day__gte=cohorts[0], day__lte=month_end(cohorts[-1])
        )
        .annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(n=Sum("new_members"))
    }
    active: dict[tuple[dt.date, dt.date], int] = {}
    for row in (
        MonthlyActivity.objects.filter(
            program_id=filters.program.pk,
            partner_key=filters.partner_key,
            cohort__gte=cohorts[0],
            cohort__lte=cohorts[-1],
        )
        .values("cohort", "month")
        .annotate(n=Sum("active_members"))
    ):
        active[(as_date(row["cohort"]), as_date(row["month"]))] = row["n"] or 0
    rows = []
    for cohort in cohorts:
        row = {"cohort": cohort, "size": sizes.get(cohort, 0)}
        month = cohort
        for k in range(RETENTION_MONTHS):
            row[f"m{k}"] = ratio(active.get((cohort, month), 0), row["size"]) if month <= filters.end else None
            month = (month + dt.timedelta(days=32)).replace(day=1)
        rows.append(row)
    return Table(
        "retention",
        "Retention by enrollment cohort",
        [Column("cohort", "Joined in", "month"), Column("size", "Members")]
        + [Column(f"m{k}", f"Month {k}", "rate") for k in range(RETENTION_MONTHS)],
        rows,
        note="Of the members who joined in a month, the share active (a purchase or an event) k months later; "
        "month 0 is the month they joined"
        + (". With a partner chosen: active at that partner." if filters.partner else "."),
    )


def liability_over_time(filters: Filters) -> Table:
    """Outstanding points at each month end (every member-account entry before it) × point value."""
    before = (
        DailyFact.objects.filter(program_id=filters.program.pk, day__lt=filters.start).aggregate(n=Sum("points_net"))[
            "n"
        ]
        or 0
    )
    per_month = {
        as_date(row["month"]): row["n"] or 0
        for row in _facts(filters, partner=False)
        .annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(n=Sum("points_net"))
    }
    value = filters.program.point_value
    rows, outstanding = [], before
    for month in filters.months():
        outstanding += per_month.get(month, 0)
        rows.append(
            {
                "month_end": min(month_end(month), filters.end),
                "points": outstanding,
                "liability": money(Decimal(outstanding) * value),
            }
        )
    return Table(
        "liability",
        "Outstanding points liability at each month end",
        [Column("month_end", "On", "date"), Column("points", "Outstanding points", "points")]
        + [Column("liability", "Liability", "money")],
        rows,
        note=f"Points held by members (available and pending, less debt) × the point value ({value}). "
        "Program-wide: points are not a partner's.",
    )


def program_health(filters: Filters) -> Page:
    enrolled = members_enrolled(filters)
    active = active_over_time(filters)
    engagement, points = monthly(filters)
    latest = active.rows[-1] if active.rows else None
    liability_now = points_liability(program=filters.program)
    purchasers = sum(r["purchasers"] for r in engagement.rows)
    repeat = sum(r["repeat"] for r in engagement.rows)
    issued = sum(r["issued"] for r in points.rows)
    redeemed = sum(r["redeemed"] for r in points.rows)
    expired = sum(r["expired"] for r in points.rows)
    page = Page("Program health")
    page.figures = [
        Figure("Members enrolled now", enrolled),
        Figure(
            "Active members (90 days)",
            latest["active"] if latest else None,
            note=f"on {latest['day']:%d %b %Y}" if latest else "no summary yet",
        ),
        Figure("Participation rate", latest["participation"] if latest else None, "rate"),
        Figure("Repeat rate", ratio(repeat, purchasers), "rate", note="monthly, over the range"),
        Figure("Redemption rate", ratio(redeemed, issued), "rate", note="over the range"),
        Figure("Breakage rate", ratio(expired, issued), "rate", note="over the range"),
        Figure("Points liability now", liability_now["value"], "money", note=f"{liability_now['points']:,} points"),
    ]
    new = new_members_per_week(filters)
    cohort = retention(filters)
    liability = liability_over_time(filters)
    page.sections = [
        (Chart("bar", new.title, new.id, "week", ["new_members"], "Week", "Members"), new),
        (
            Chart("line", active.title, active.id, "day", ["enrolled", "active"], "Day", "Members"),
            active,
        ),
        (
            Chart(
                "line",
                "Purchases and events per active member",
                engagement.id,
                "month",
                ["purchases_per_active", "events_per_active"],
                "Month",
                "Per active member",
            ),
            engagement,
        ),
        (
            Chart(
                "heat",
                cohort.title,
                cohort.id,
                "cohort",
                [f"m{k}" for k in range(RETENTION_MONTHS)],
                "Months after joining",
                "Joined in",
            ),
            cohort,
        ),
        (
            Chart("bar", points.title, points.id, "month", ["issued", "redeemed", "expired"], "Month", "Points"),
            points,
        ),
        (Chart("line", liability.title, liability.id, "month_end", ["liability"], "Month end", "Money"), liability),
    ]
    if not active.rows:
        page.notes.append("No summary for this range yet: the nightly refresh (manage.py refresh_dashboards) fills it.")
    return page
