"""Profitability audit and coalition settlement, per month and per partner, from ``DailyFact`` and
``DailyMessages``. The settlement rule and every figure: docs/domain.md ("Dashboards")."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from loyalty.dashboards.models import DailyFact, DailyMessages
from loyalty.dashboards.selectors.base import Chart, Column, Figure, Filters, Page, Table, as_date, money, ratio
from loyalty.dashboards.selectors.offers import campaign_incremental_revenue
from loyalty.messaging.costs import messages_cost
from loyalty.partners.models import Partner, PartnerKind

NO_PARTNER = "Program (no partner)"


def _per_partner_month(filters: Filters) -> list[dict]:
    facts = DailyFact.objects.filter(program_id=filters.program.pk, day__gte=filters.start, day__lte=filters.end)
    if filters.partner:
        facts = facts.filter(partner_id=filters.partner.pk)
    return [
        {**row, "month": as_date(row["month"])}
        for row in facts.annotate(month=TruncMonth("day"))
        .values("partner_id", "month")
        .annotate(
            revenue=Sum("revenue"),
            returns=Sum("returns_amount"),
            earned=Sum("points_earned"),
            redeemed=Sum("points_redeemed"),
            refunded=Sum("points_refunded"),
            funded=Sum("points_funded"),
            reward_cost=Sum("reward_cost"),
        )
        .order_by("month", "partner_id")
    ]


def _message_costs(filters: Filters) -> dict[dt.date, Decimal]:
    sent: dict[dt.date, dict[str, int]] = defaultdict(dict)
    for row in (
        DailyMessages.objects.filter(program_id=filters.program.pk, day__gte=filters.start, day__lte=filters.end)
        .annotate(month=TruncMonth("day"))
        .values("month", "channel")
        .annotate(n=Sum("sent"))
    ):
        sent[as_date(row["month"])][row["channel"]] = row["n"] or 0
    return {month: messages_cost(channels) for month, channels in sent.items()}


def settlement_row(partner: Partner, *, funded: int, redeemed: int, point_value: Decimal) -> dict:
    """What one partner owes the program and is owed for a period (docs/domain.md, settlement)."""
    owes = money(Decimal(funded) * partner.cost_per_point)
    owed = money(Decimal(redeemed) * point_value)
    return {
        "partner": partner.name,
        "points_issued": funded,
        "cost_per_point": partner.cost_per_point,
        "partner_owes": owes,
        "points_redeemed": redeemed,
        "point_value": point_value,
        "partner_is_owed": owed,
        "net": owes - owed,
        "direction": "partner pays" if owes > owed else ("program pays" if owed > owes else "settled"),
    }


def settles(partner: Partner, *, redeemed: int) -> bool:
    """Coalition partners settle; another partner only when money changes hands (it pays for
    its points, or members redeemed at it)."""
    return partner.kind == PartnerKind.COALITION or partner.cost_per_point > 0 or redeemed != 0


SETTLEMENT_COLUMNS = [
    Column("partner", "Partner", "text"),
    Column("points_issued", "Points issued at the partner", "points"),
    Column("cost_per_point", "Partner's cost per point", "text"),
    Column("partner_owes", "Partner owes", "money"),
    Column("points_redeemed", "Points redeemed at the partner", "points"),
    Column("point_value", "Point value", "text"),
    Column("partner_is_owed", "Partner is owed", "money"),
    Column("net", "Net (+ partner pays)", "money"),
    Column("direction", "Who pays", "text"),
]


def profitability_dashboard(filters: Filters) -> Page:
    program = filters.program
    value = program.point_value
    rows = _per_partner_month(filters)
    partner_ids = {r["partner_id"] for r in rows if r["partner_id"] is not None}
    partners = {p.pk: p for p in Partner.objects.filter(pk__in=partner_ids)}
    messages = {} if filters.partner else _message_costs(filters)
    incremental = campaign_incremental_revenue(filters)

    months: dict[dt.date, dict] = {}
    by_partner: dict[int | None, dict] = {}
    settlement_months = []
    for r in rows:
        partner = partners.get(r["partner_id"])
        funded = r["funded"] or 0
        funding = money(Decimal(funded) * partner.cost_per_point) if partner else money(0)
        for bucket in (
            months.setdefault(r["month"], defaultdict(Decimal)),
            by_partner.setdefault(r["partner_id"], defaultdict(Decimal)),
        ):
            bucket["revenue"] += (r["revenue"] or 0) - (r["returns"] or 0)
            bucket["earned"] += r["earned"] or 0
            bucket["redeemed"] += (r["redeemed"] or 0) - (r["refunded"] or 0)
            bucket["funded"] += funded
            bucket["funding"] += funding
            bucket["reward_cost"] += r["reward_cost"] or 0
        if partner:
            settlement_months.append(
                {
                    "month": r["month"],
                    **settlement_row(
                        partner, funded=funded, redeemed=(r["redeemed"] or 0) - (r["refunded"] or 0), point_value=value
                    ),
                }
            )

    month_rows = []
    for month in filters.months():
        b = months.get(month, defaultdict(Decimal))
        points_cost = money(Decimal(b["earned"]) * value)
        message_cost = money(messages.get(month, 0))
        cost = points_cost + money(b["reward_cost"]) + message_cost - money(b["funding"])
        gain = incremental.get(month)
        month_rows.append(
            {
                "month": month,
                "revenue": money(b["revenue"]),
                "points_issued": int(b["earned"]),
                "points_cost": points_cost,
                "reward_cost": money(b["reward_cost"]),
                "message_cost": message_cost,
                "partner_funding": money(b["funding"]),
                "program_cost": cost,
                "cost_share": ratio(cost, b["revenue"]),
                "incremental_revenue": money(gain) if gain is not None else None,
                "margin": money((gain or 0) - cost),
            }
        )
    partner_rows = []
    for pid, b in sorted(by_partner.items(), key=lambda kv: (kv[0] is None, partners[kv[0]].name if kv[0] else "")):
        points_cost = money(Decimal(b["earned"]) * value)
        partner_rows.append(
            {
                "partner": partners[pid].name if pid else NO_PARTNER,
                "revenue": money(b["revenue"]),
                "points_issued": int(b["earned"]),
                "points_cost": points_cost,
                "reward_cost": money(b["reward_cost"]),
                "partner_funding": money(b["funding"]),
                "net_cost": points_cost + money(b["reward_cost"]) - money(b["funding"]),
            }
        )
    settlement = [
        settlement_row(partners[pid], funded=int(b["funded"]), redeemed=int(b["redeemed"]), point_value=value)
        for pid, b in sorted(((k, v) for k, v in by_partner.items() if k), key=lambda kv: partners[kv[0]].name)
        if settles(partners[pid], redeemed=int(b["redeemed"]))
    ]
    settlement_months = [r for r in settlement_months if r["partner"] in {s["partner"] for s in settlement}]

    money_cols = [
        Column("revenue", "Revenue from members", "money"),
        Column("points_issued", "Points issued", "points"),
        Column("points_cost", "Cost of points issued", "money"),
        Column("reward_cost", "Reward costs", "money"),
    ]
    per_month = Table(
        "profit_months",
        "Profitability per month",
        [Column("month", "Month", "month")]
        + money_cols
        + [
            Column("message_cost", "Message costs", "money"),
            Column("partner_funding", "Partner-funded points", "money"),
            Column("program_cost", "Program cost", "money"),
            Column("cost_share", "Cost ÷ revenue", "rate"),
            Column("incremental_revenue", "Incremental revenue (campaigns)", "money"),
            Column("margin", "Program margin", "money"),
        ],
        month_rows,
        note=f"Cost of points issued at the point value ({value}); program cost = points + rewards + messages − what "
        "partners pay for the points issued at them; margin = incremental revenue from campaigns − program cost "
        "(incremental revenue: each campaign launched that month, its variants against its holdout; a campaign without "
        "a holdout adds nothing)."
        + (" Message costs are program-wide: not shown with a partner chosen." if filters.partner else ""),
    )
    per_partner = Table(
        "profit_partners",
        "Profitability per partner",
        [Column("partner", "Partner", "text")]
        + money_cols
        + [Column("partner_funding", "Partner-funded points", "money"), Column("net_cost", "Net cost", "money")],
        partner_rows,
        note="Per partner where the purchase or movement happened; message costs are the program's.",
    )
    statement = Table(
        "settlement",
        "Coalition settlement statement",
        SETTLEMENT_COLUMNS,
        settlement,
        note=f"For {filters.start:%d %b %Y} to {filters.end:%d %b %Y}: a partner owes the points issued at it × its "
        "cost per point, and is owed the points redeemed at it × the program's point value; the net is what changes "
        "hands.",
    )
    statement_months = Table(
        "settlement_months",
        "Settlement per partner and month",
        [Column("month", "Month", "month")] + SETTLEMENT_COLUMNS,
        settlement_months,
    )
    total_cost = sum((r["program_cost"] for r in month_rows), Decimal(0))
    total_revenue = sum((r["revenue"] for r in month_rows), Decimal(0))
    page = Page("Profitability audit")
    page.figures = [
        Figure("Revenue from members", money(total_revenue), "money"),
        Figure("Program cost", money(total_cost), "money"),
        Figure("Cost ÷ revenue", ratio(total_cost, total_revenue), "rate"),
        Figure(
            "Program margin",
            money(sum((r["margin"] for r in month_rows), Decimal(0))),
            "money",
            note="incremental revenue of campaigns measured against their holdouts",
        ),
        Figure("Partners to settle", len(settlement)),
    ]
    page.sections = [
        (
            Chart(
                "stacked",
                "Program cost per month",
                per_month.id,
                "month",
                ["points_cost", "reward_cost", "message_cost"],
                "Month",
                "Money",
            ),
            per_month,
        ),
        (
            Chart("bar", "Net cost per partner", per_partner.id, "partner", ["net_cost"], "Partner", "Money"),
            per_partner,
        ),
        (
            Chart(
                "bar",
                "Net settlement per partner",
                statement.id,
                "partner",
                ["net"],
                "Partner",
                "Money (+ partner pays)",
            ),
            statement,
        ),
        (None, statement_months),
    ]
    return page
