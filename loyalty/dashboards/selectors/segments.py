"""Segments: sizes over time, composition, overlap between chosen segments and their share of
revenue (``segments.selectors``), the RFM grid, and the members by predicted CLV and at risk
(the latest score run, ``segments.MemberScore``)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from itertools import combinations

from django.db.models import Count, Q, Sum

from loyalty.dashboards.models import SegmentMix, SegmentSpendDaily, TierSpendDaily
from loyalty.dashboards.selectors.base import Chart, Column, Figure, Filters, Page, Table, as_date, money, ratio
from loyalty.tiers import qualification
from loyalty.tiers.selectors import program_tiers
from segments.models import MemberScore, RfmSegment, Segment, SegmentRefresh
from segments.selectors import (
    score_run_basis,
    score_run_latest,
    segment_overlap,
)

MAX_CHOSEN = 4
TOP = 20
AT_RISK_ALIVE = 0.5  # probability alive below this
VALUABLE_SHARE = 5  # top 1/5 by predicted CLV


def segments_choosable() -> list[Segment]:
    return list(Segment.objects.order_by("-size", "name").only("id", "name", "size")[:200])


def chosen_segments(ids: list[int]) -> list[Segment]:
    """The segments asked for (at most four), else the four largest."""
    if ids:
        found = {s.pk: s for s in Segment.objects.filter(pk__in=ids[:MAX_CHOSEN])}
        return [found[i] for i in ids[:MAX_CHOSEN] if i in found]
    return list(Segment.objects.order_by("-size", "name")[:MAX_CHOSEN])


def sizes_over_time(filters: Filters, chosen: list[Segment]) -> Table:
    refreshes = (
        SegmentRefresh.objects.filter(
            segment__in=chosen, refreshed_at__gte=filters.start_at, refreshed_at__lt=filters.end_at
        )
        .order_by("refreshed_at", "id")
        .values("segment_id", "refreshed_at", "size")
    )
    per_day: dict = {}
    for r in refreshes:  # the last size of each day
        per_day.setdefault(as_date(r["refreshed_at"]), {})[f"s{r['segment_id']}"] = r["size"]
    rows, last = [], {}
    for day in sorted(per_day):
        last.update(per_day[day])
        rows.append({"day": day, **{f"s{s.pk}": last.get(f"s{s.pk}") for s in chosen}})
    return Table(
        "segment_sizes",
        "Segment sizes over time",
        [Column("day", "Day", "date")] + [Column(f"s{s.pk}", s.name) for s in chosen],
        rows,
        note="Members in each segment after its refreshes (the last refresh of each day).",
    )


def segments_spend(filters: Filters, chosen: list[Segment]) -> dict:
    """Spend in the range of every member ("total": ``TierSpendDaily``, every tier) and of each chosen
    segment's members (by id: ``SegmentSpendDaily``), in the program (and at the partner) of the filters."""
    in_range = {"program_id": filters.program.pk, "day__gte": filters.start, "day__lte": filters.end}
    if filters.partner:
        in_range["partner_id"] = filters.partner.pk
    total = TierSpendDaily.objects.filter(**in_range).aggregate(spend=Sum("spend"))["spend"] or Decimal(0)
    days = SegmentSpendDaily.objects.filter(**in_range, segment_id__in=[s.pk for s in chosen])
    found = {row["segment_id"]: row["spend"] for row in days.values("segment_id").annotate(spend=Sum("spend"))}
    return {"total": total, **found}


def segments_mix(filters: Filters, chosen: list[Segment]) -> dict[int, dict]:
    """Each chosen segment's members per tier and RFM group and their predicted CLV, from the nightly
    ``SegmentMix``: members without a tier status in the program (or without an account in it) count at
    the base tier."""
    base = qualification.base_tier(program_tiers(program=filters.program).rules)
    mixes: dict[int, dict] = {
        s.pk: {"members": 0, "tiers": defaultdict(int), "rfm": defaultdict(int), "clv_members": 0, "clv_total": 0}
        for s in chosen
    }
    rows = SegmentMix.objects.filter(segment_id__in=list(mixes)).filter(
        Q(program_id=filters.program.pk) | Q(program_id__isnull=True)
    )
    for row in rows.values("segment_id", "tier_id", "rfm_segment", "members", "clv_members", "clv_total"):
        mix = mixes[row["segment_id"]]
        mix["members"] += row["members"]
        mix["tiers"][row["tier_id"] if row["tier_id"] is not None else (base.id if base else None)] += row["members"]
        if row["rfm_segment"]:
            mix["rfm"][row["rfm_segment"]] += row["members"]
        mix["clv_members"] += row["clv_members"]
        mix["clv_total"] += row["clv_total"]
    return mixes


def composition(filters: Filters, chosen: list[Segment]) -> tuple[Table, Table]:
    rows, tier_rows = [], []
    spend = segments_spend(filters, chosen)
    mixes = segments_mix(filters, chosen)
    tiers = program_tiers(program=filters.program).tiers
    rfm_names = dict(RfmSegment.choices)
    for segment in chosen:
        mix = mixes[segment.pk]
        segment_spend = spend.get(segment.pk) or Decimal(0)
        top_rfm = max(mix["rfm"].items(), key=lambda item: (item[1], item[0]), default=(None, 0))[0]
        rows.append(
            {
                "segment": segment.name,
                "members": segment.size,
                "spend": money(segment_spend),
                "revenue_share": ratio(segment_spend, spend["total"]) or 0.0,
                "spend_per_member": money(segment_spend / segment.size) if segment.size else money(0),
                "avg_clv": money(mix["clv_total"] / mix["clv_members"]) if mix["clv_members"] else None,
                "top_rfm": rfm_names.get(top_rfm, "") if top_rfm else "",
            }
        )
        row = {"segment": segment.name}
        for tier in tiers:
            row[tier.name] = ratio(mix["tiers"].get(tier.pk, 0), mix["members"]) or 0.0
        if mix["tiers"].get(None):
            row["No tier"] = ratio(mix["tiers"][None], mix["members"]) or 0.0
        tier_rows.append(row)
    tier_names = list(dict.fromkeys(k for r in tier_rows for k in r if k != "segment"))
    return (
        Table(
            "segment_composition",
            "Composition and revenue share",
            [
                Column("segment", "Segment", "text"),
                Column("members", "Members"),
                Column("spend", "Spend in the range", "money"),
                Column("revenue_share", "Share of all spend", "rate"),
                Column("spend_per_member", "Spend per member", "money"),
                Column("avg_clv", "Average predicted CLV", "money"),
                Column("top_rfm", "Largest RFM group", "text"),
            ],
            rows,
            note="Members: after the segment's last refresh. Spend: eligible, less returns, in the range"
            + (" at the chosen partner" if filters.partner else "")
            + ", by the members in the segment when each day was last summarised (nightly). "
            "Share: of all members' spend. Predicted CLV, RFM group and tier mix: as of the last nightly summary.",
        ),
        Table(
            "segment_tiers",
            "Tier mix of each segment",
            [Column("segment", "Segment", "text")] + [Column(n, n, "rate") for n in tier_names],
            [{**{n: r.get(n, 0.0) for n in tier_names}, "segment": r["segment"]} for r in tier_rows],
        ),
    )


def overlaps(chosen: list[Segment]) -> Table:
    rows = []
    for first, second in combinations(chosen, 2):
        o = segment_overlap(first=first, second=second)
        rows.append(
            {
                "first": first.name,
                "second": second.name,
                "both": o["both"],
                "only_first": o["only_first"],
                "only_second": o["only_second"],
                "jaccard": o["jaccard"],
            }
        )
    return Table(
        "segment_overlap",
        "Overlap between the chosen segments",
        [
            Column("first", "Segment", "text"),
            Column("second", "and segment", "text"),
            Column("both", "In both"),
            Column("only_first", "Only the first"),
            Column("only_second", "Only the second"),
            Column("jaccard", "Overlap (both ÷ either)", "rate"),
        ],
        rows,
    )


def rfm_grid() -> Table:
    cells = {
        (r["r_score"], r["f_score"]): r
        for r in MemberScore.objects.values("r_score", "f_score").annotate(n=Count("member_id"), spend=Sum("monetary"))
    }
    rows = []
    for r in range(5, 0, -1):
        row = {"recency": f"R{r}"}
        for f in range(1, 6):
            cell = cells.get((r, f))
            row[f"f{f}"] = cell["n"] if cell else 0
            row[f"spend{f}"] = money(cell["spend"]) if cell else money(0)
        rows.append(row)
    return Table(
        "rfm_grid",
        "RFM grid: members (and their spend) by recency and frequency",
        [Column("recency", "Recency score", "text")]
        + [Column(f"f{f}", f"F{f} members") for f in range(1, 6)]
        + [Column(f"spend{f}", f"F{f} spend", "money") for f in range(1, 6)],
        rows,
        note="Scores 1-5 by quintile over the scored members (R5: bought most recently, F5: most often). "
        "Spend: in the score run's window.",
    )


MEMBER_COLUMNS = [
    Column("member", "Member number", "text"),
    Column("predicted_clv", "Predicted CLV", "money"),
    Column("probability_alive", "Probability alive", "rate"),
    Column("historic_clv", "Spent so far", "money"),
    Column("recency_days", "Days since last purchase"),
    Column("rfm", "RFM group", "text"),
]


def _member_rows(scores) -> list[dict]:
    return [
        {
            "member": s.member.member_number,
            "predicted_clv": money(s.predicted_clv),
            "probability_alive": round(s.probability_alive, 4) if s.probability_alive is not None else None,
            "historic_clv": money(s.historic_clv),
            "recency_days": s.recency_days,
            "rfm": s.get_rfm_segment_display(),
        }
        for s in scores
    ]


def top_members(scored: int) -> tuple[Table, Table]:
    scores = MemberScore.objects.select_related("member").only(
        "member__member_number",
        "predicted_clv",
        "probability_alive",
        "historic_clv",
        "recency_days",
        "rfm_segment",
    )
    top = scores.filter(predicted_clv__isnull=False).order_by("-predicted_clv", "member_id")[:TOP]
    threshold = (
        MemberScore.objects.filter(predicted_clv__isnull=False)
        .order_by("-predicted_clv")
        .values_list("predicted_clv", flat=True)[
            max(0, scored // VALUABLE_SHARE - 1) : max(1, scored // VALUABLE_SHARE)
        ]
    )
    limit = next(iter(threshold), None)
    at_risk = []
    if limit is not None:
        at_risk = scores.filter(predicted_clv__gte=limit, probability_alive__lt=AT_RISK_ALIVE).order_by(
            "-predicted_clv", "member_id"
        )[:TOP]
    note = ""
    if not scores.filter(probability_alive__isnull=False).exists():
        note = "The latest score run has no probability alive (its model fit was degenerate or not run): no member "
        note += "can be flagged at risk until a run fits the model. "
    return (
        Table("top_clv", f"Top {TOP} members by predicted CLV", MEMBER_COLUMNS, _member_rows(top)),
        Table(
            "at_risk",
            "Valuable members at risk",
            MEMBER_COLUMNS,
            _member_rows(at_risk),
            note=note + f"Among the fifth of members with the highest predicted CLV (at least {money(limit or 0)}), "
            f"those whose probability of still being active has fallen below {AT_RISK_ALIVE:.0%} "
            "(it falls with every week a member stays away longer than their usual gap).",
        ),
    )


def segments_dashboard(filters: Filters, segment_ids: list[int]) -> Page:
    chosen = chosen_segments(segment_ids)
    run = score_run_latest()
    scored = MemberScore.objects.count()
    sizes = sizes_over_time(filters, chosen)
    comp, tier_mix = composition(filters, chosen)
    overlap = overlaps(chosen)
    grid = rfm_grid()
    top, at_risk = top_members(scored)
    page = Page("Segments")
    page.figures = [
        Figure("Segments", Segment.objects.count()),
        Figure("Members scored", scored, note=f"as of {run.as_of:%d %b %Y}" if run else "no score run yet"),
        Figure(
            "Predicted CLV of the top 20",
            sum((r["predicted_clv"] for r in top.rows), Decimal(0)),
            "money",
        ),
    ]
    basis = score_run_basis(run)
    if basis["explanation"]:
        page.notes.append(basis["explanation"])
    page.sections = [
        (Chart("line", sizes.title, sizes.id, "day", [c.key for c in sizes.columns[1:]], "Day", "Members"), sizes),
        (Chart("bar", "Share of all spend", comp.id, "segment", ["revenue_share"], "Segment", "Share"), comp),
        (None, tier_mix),
        (None, overlap),
        (
            Chart(
                "heat",
                grid.title,
                grid.id,
                "recency",
                [f"f{f}" for f in range(1, 6)],
                "Frequency score",
                "Recency score",
            ),
            grid,
        ),
        (None, top),
        (None, at_risk),
    ]
    return page
