"""Reads of segments and scores for screens, campaigns and other apps. No writes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Exists, F, OuterRef, Q, QuerySet, Sum

from loyalty.core import clock
from loyalty.core.errors import NotFound, ValidationFailed
from loyalty.ledger.models import Program, Purchase
from members.models import Member
from segments import rules as R
from segments.compiler import matching_members
from segments.models import (
    MemberScore,
    ScoreRun,
    Segment,
    SegmentEvent,
    SegmentKind,
    SegmentMembership,
    SegmentRefresh,
)

DEMOGRAPHIC_FIELDS = (
    "age_band",
    "income_band",
    "household_size",
    "household_composition",
    "kids_count",
    "home_ownership",
    "marital_status",
    "country",
)


def segment_get(*, pk: int) -> Segment:
    try:
        return Segment.objects.get(pk=pk)
    except Segment.DoesNotExist:
        raise NotFound("No such segment", code="segment_not_found") from None


# Rules ---------------------------------------------------------------------------------------------


def rules_validate(*, rules: Any, segment: Segment | None = None) -> dict[str, Any]:
    """Validate a rule tree (format, fields, operators, values) and what it refers to (programs,
    partners, tiers, other segments; no cycles). Returns the normalized tree. Raises
    ``ValidationFailed`` (``invalid_rules``) naming each bad condition by its path."""
    tree = R.validate(rules)
    problems: list[dict[str, str]] = []

    def bad(path: str, name: str, message: str) -> None:
        problems.append({"path": path, "field": name, "message": message})

    conditions = list(R.walk(tree))
    program_ids = {c["program"] for _, c in conditions if c.get("program")}
    known_programs = set(Program.objects.filter(pk__in=program_ids).values_list("pk", flat=True))
    default_program = Program.objects.filter(is_default=True).values_list("pk", flat=True).first()
    partner_ids = {p for _, c in conditions for p in c.get("partner", [])}
    known_partners: set[int] = set()
    if partner_ids:
        from loyalty.partners.models import Partner

        known_partners = set(Partner.objects.filter(pk__in=partner_ids).values_list("pk", flat=True))
    segment_ids = R.referenced_segments(tree)
    known_segments = {s.pk: s for s in Segment.objects.filter(pk__in=segment_ids)}

    for path, c in conditions:
        name = c["field"]
        spec = R.fields()[name]
        program_id = c.get("program")
        if any(p.name == "program" for p in spec.params):
            if program_id and program_id not in known_programs:
                bad(path, name, f"unknown program {program_id}")
                continue
            if not program_id and default_program is None:
                bad(path, name, "no program given and no default program is configured")
                continue
        missing_partners = [p for p in c.get("partner", []) if p not in known_partners]
        if missing_partners:
            bad(path, name, f"unknown partner(s) {', '.join(map(str, missing_partners))}")
        if name == "loyalty.tier":
            names = {t.lower() for t in _tier_names(program_id or default_program)}
            wanted = c["value"] if isinstance(c["value"], list) else [c["value"]]
            unknown = [v for v in wanted if v.lower() not in names]
            if unknown:
                bad(
                    path,
                    name,
                    f"unknown tier(s) {', '.join(unknown)}; the program has {', '.join(sorted(names)) or 'no tiers'}",
                )
        if name == "segment":
            for segment_id in c["value"]:
                if segment_id not in known_segments:
                    bad(path, name, f"unknown segment {segment_id}")
                elif segment is not None and segment_id == segment.pk:
                    bad(path, name, "a segment cannot refer to itself")
                elif segment is not None and segment.pk in _segment_dependencies(known_segments[segment_id]):
                    bad(path, name, f"segment {segment_id} refers back to this segment (a cycle)")
    if problems:
        lines = [f"{p['path']} ({p['field']}): {p['message']}" for p in problems]
        raise ValidationFailed(
            "Invalid segment rules: " + "; ".join(lines),
            code="invalid_rules",
            fields={"rules": lines},
            extra={"errors": problems},
        )
    return tree


def _tier_names(program_id: int | None) -> list[str]:
    if program_id is None:
        return []
    from loyalty.tiers.models import Tier

    return list(Tier.objects.filter(program_id=program_id).values_list("name", flat=True))


def _segment_dependencies(segment: Segment) -> set[int]:
    """Ids of every segment that ``segment``'s rules refer to, directly or through others."""
    seen: set[int] = set()
    todo = [segment]
    while todo:
        current = todo.pop()
        if current.kind != SegmentKind.DYNAMIC or not current.rules:
            continue
        try:
            refs = R.referenced_segments(current.rules) - seen
        except (KeyError, TypeError):
            continue
        seen |= refs
        todo.extend(Segment.objects.filter(pk__in=refs))
    return seen


def segment_dependencies(*, segment: Segment) -> set[int]:
    return _segment_dependencies(segment)


def segment_matching(*, rules: dict[str, Any], now: dt.datetime | None = None) -> QuerySet[Member]:
    """Members matching a validated rule tree right now (one live query, not the materialized list)."""
    return matching_members(rules, now=now)


def segment_preview(*, rules: Any, segment: Segment | None = None, sample_size: int = 10) -> dict[str, Any]:
    """What the admin shows while rules are edited: how many members match and a few of them.
    Two queries after validation."""
    tree = rules_validate(rules=rules, segment=segment)
    members = matching_members(tree)
    sample = list(
        members.order_by("-id").values("id", "member_number", "first_name", "last_name", "status")[:sample_size]
    )
    return {"count": members.count(), "sample": sample, "description": rules_words(tree)}


def rules_words(tree: dict[str, Any]) -> str:
    """The rules in plain language with referenced segments named (one query when there are any)."""
    ids = R.referenced_segments(tree)
    names = dict(Segment.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    return R.describe(tree, segment_names=names)


# Membership ---------------------------------------------------------------------------------------


def segment_members(*, segment: Segment) -> QuerySet[Member]:
    """Members in the segment now (its materialized membership)."""
    return Member.objects.filter(
        Exists(SegmentMembership.objects.filter(segment=segment, member=OuterRef("pk"), left_at__isnull=True))
    )


def member_segments(*, member: Member) -> QuerySet[Segment]:
    """Segments the member is in now."""
    return Segment.objects.filter(
        Exists(SegmentMembership.objects.filter(segment=OuterRef("pk"), member=member, left_at__isnull=True))
    ).order_by("name")


def member_in_segment(*, member: Member, segment: Segment) -> bool:
    return SegmentMembership.objects.filter(segment=segment, member=member, left_at__isnull=True).exists()


def segment_size_history(
    *, segment: Segment, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Size after each refresh, oldest first: [{"at", "size", "entered", "left"}] (for charts)."""
    refreshes = SegmentRefresh.objects.filter(segment=segment)
    if since is not None:
        refreshes = refreshes.filter(refreshed_at__gte=since)
    if until is not None:
        refreshes = refreshes.filter(refreshed_at__lt=until)
    return [
        {"at": r["refreshed_at"], "size": r["size"], "entered": r["entered"], "left": r["left"]}
        for r in refreshes.order_by("refreshed_at", "id").values("refreshed_at", "size", "entered", "left")
    ]


def segment_events(*, segment: Segment | None = None, after_id: int = 0, limit: int = 1000) -> QuerySet[SegmentEvent]:
    """Entered/left events in id order after ``after_id`` (a trigger keeps its last id)."""
    events = SegmentEvent.objects.filter(id__gt=after_id)
    if segment is not None:
        events = events.filter(segment=segment)
    return events.order_by("id")[:limit]


def segment_overlap(*, first: Segment, second: Segment) -> dict[str, Any]:
    """How many members are in both segments, in only one, and the Jaccard index. One query."""
    open_rows = SegmentMembership.objects.filter(left_at__isnull=True)
    in_second = Exists(open_rows.filter(segment=second, member=OuterRef("member_id")))
    counts = open_rows.filter(segment__in=[first, second]).aggregate(
        first=Count("id", filter=Q(segment=first)),
        second=Count("id", filter=Q(segment=second)),
        both=Count("id", filter=Q(segment=first) & Q(in_second)),
    )
    both = counts["both"]
    union = counts["first"] + counts["second"] - both
    return {
        "first": counts["first"],
        "second": counts["second"],
        "both": both,
        "only_first": counts["first"] - both,
        "only_second": counts["second"] - both,
        "jaccard": round(both / union, 4) if union else 0.0,
    }


def segment_composition(
    *,
    segment: Segment,
    program: Program | None = None,
    window_days: int = 365,
) -> dict[str, Any]:
    """Who is in the segment: tier mix, demographics, RFM mix, and the segment's share of the
    spend of the last ``window_days`` days."""
    members = segment_members(segment=segment)
    size = members.count()
    in_segment = Exists(
        SegmentMembership.objects.filter(segment=segment, member=OuterRef("member_id"), left_at__isnull=True)
    )
    demographics = {}
    for name in DEMOGRAPHIC_FIELDS:
        rows = members.values(name).annotate(members=Count("id")).order_by("-members", name)
        demographics[name] = [
            {"value": row[name] if row[name] not in ("", None) else None, "members": row["members"]} for row in rows
        ]
    since = clock.now() - dt.timedelta(days=window_days)
    net = F("eligible_amount") - F("returned_amount")
    spend = Purchase.objects.filter(occurred_at__gte=since, occurred_at__lte=clock.now()).aggregate(
        total=Sum(net), segment=Sum(net, filter=Q(in_segment))
    )
    total = spend["total"] or Decimal("0")
    segment_spend = spend["segment"] or Decimal("0")
    scores = MemberScore.objects.filter(in_segment)
    rfm = list(scores.values("rfm_segment").annotate(members=Count("member_id")).order_by("-members"))
    value = scores.aggregate(avg_clv=Avg("predicted_clv"), total_clv=Sum("predicted_clv"))
    run = score_run_latest()
    return {
        "size": size,
        "tiers": _tier_mix(members=members, size=size, program=program),
        "demographics": demographics,
        "rfm_segments": rfm,
        "spend": {
            "window_days": window_days,
            "segment": Decimal(segment_spend).quantize(Decimal("0.01")),
            "total": Decimal(total).quantize(Decimal("0.01")),
            "share": round(float(segment_spend / total), 4) if total else 0.0,
            "per_member": (Decimal(segment_spend) / size).quantize(Decimal("0.01")) if size else Decimal("0.00"),
        },
        "predicted_clv": {
            "average": Decimal(value["avg_clv"]).quantize(Decimal("0.01")) if value["avg_clv"] is not None else None,
            "total": Decimal(value["total_clv"]).quantize(Decimal("0.01")) if value["total_clv"] is not None else None,
            **score_run_basis(run),
        },
    }


def score_run_latest() -> ScoreRun | None:
    """The finished score run whose scores are stored (the latest), or None."""
    return ScoreRun.objects.filter(finished_at__isnull=False).order_by("-started_at", "-id").first()


def score_run_basis(run: ScoreRun | None) -> dict[str, Any]:
    """What staff must know about the predicted values of ``run``: their basis, whether the model
    fit was degenerate, and in words."""
    if run is None:
        return {"basis": None, "degenerate": False, "explanation": ""}
    if run.clv_basis == "model":
        words = f"BG/NBD × Gamma-Gamma fitted on {run.fit_members} members (scores as of {run.as_of:%Y-%m-%d})."
    elif run.clv_basis == "historic":
        words = (
            "The model fit was degenerate (a parameter at its bound or no convergence): predicted CLV is each "
            f"member's historic value per day over the next {run.horizon_days} days, not a model prediction."
        )
    else:
        words = "Predicted CLV was not computed: too few members with purchases on two days."
    return {"basis": run.clv_basis, "degenerate": run.degenerate, "explanation": words}


def _tier_mix(*, members: QuerySet[Member], size: int, program: Program | None) -> list[dict[str, Any]]:
    """Members per tier (members without a tier status count at the base tier)."""
    from loyalty.ledger.selectors import program_default
    from loyalty.tiers import qualification
    from loyalty.tiers.models import MemberTier
    from loyalty.tiers.selectors import program_tiers

    if program is None:
        try:
            program = program_default()
        except NotFound:
            return []
    pt = program_tiers(program=program)
    counts = dict(
        MemberTier.objects.filter(program=program, member__in=members.values("pk"))
        .values_list("tier_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    rated = sum(counts.values())
    base = qualification.base_tier(pt.rules)
    key = base.id if base else None
    counts[key] = counts.get(key, 0) + (size - rated)
    rows = [{"tier": t.name, "rank": t.rank, "members": counts.get(t.pk, 0)} for t in pt.tiers]
    if counts.get(None):
        rows.insert(0, {"tier": None, "rank": None, "members": counts[None]})
    for row in rows:
        row["share"] = round(row["members"] / size, 4) if size else 0.0
    return rows


# Scores -------------------------------------------------------------------------------------------


def member_score(*, member: Member) -> MemberScore | None:
    return MemberScore.objects.filter(member=member).first()


def rfm_distribution() -> list[dict[str, Any]]:
    """Members per named RFM segment in the latest scores, with their average predicted CLV."""
    return list(
        MemberScore.objects.values("rfm_segment")
        .annotate(members=Count("member_id"), avg_clv=Avg("predicted_clv"))
        .order_by("-members")
    )


def segments_referring_to(*, segment: Segment) -> list[Segment]:
    """Dynamic segments whose rules name ``segment``."""
    found = []
    for other in Segment.objects.filter(kind=SegmentKind.DYNAMIC).exclude(pk=segment.pk).only("pk", "name", "rules"):
        try:
            if segment.pk in R.referenced_segments(other.rules or {}):
                found.append(other)
        except (KeyError, TypeError):
            continue
    return found


SUGGESTED_MEMBER_FIELDS = {
    "member.age_band": "age_band",
    "member.income_band": "income_band",
    "member.household_composition": "household_composition",
    "member.home_ownership": "home_ownership",
    "member.marital_status": "marital_status",
    "member.country": "country",
    "member.language": "preferred_language",
}


def rule_value_suggestions(*, limit: int = 300) -> dict[str, list[str]]:
    """Values present in the data (e.g. the imported demographics and categories) that the
    rule builder offers for text fields and the category parameter: the most frequent first.
    Cached for ten minutes (they are group-bys over members and purchase lines)."""
    from django.core.cache import cache

    from loyalty.ledger.models import PurchaseLine

    key = f"segments:rule-suggestions:{limit}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    suggestions: dict[str, list[str]] = {}
    for name, column in SUGGESTED_MEMBER_FIELDS.items():
        rows = (
            Member.objects.exclude(**{column: ""})
            .values_list(column)
            .annotate(n=Count("id"))
            .order_by("-n", column)[:limit]
        )
        suggestions[name] = [value for value, _ in rows]
    suggestions["category"] = [
        value
        for value, _ in PurchaseLine.objects.exclude(category="")
        .values_list("category")
        .annotate(n=Count("id"))
        .order_by("-n", "category")[:limit]
    ]
    cache.set(key, suggestions, 600)
    return suggestions
