"""Reads of tiers for screens, the API, dashboards and other apps. No writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek, TruncYear

from loyalty.core import clock
from loyalty.core.config import FrozenRow, config_cached
from loyalty.core.errors import ValidationFailed
from loyalty.ledger.models import Account, AccountKind, Entry, EntryKind, Program, Purchase
from loyalty.ledger.selectors import program_default
from loyalty.tiers import qualification
from loyalty.tiers.models import MemberTier, QualificationWindow, Tier, TierChange, TierPerk, TierPolicy
from loyalty.tiers.qualification import Metrics, TierRule
from members.models import Member


@dataclass(frozen=True)
class ProgramTiers:
    """A program's tier policy (a default one if the program has none) and its tiers, lowest
    first. Cached configuration, so frozen: it keeps column values (``FrozenRow``), and every read
    of ``program``, ``policy``, ``tiers``, ``tier()`` or ``perks()`` is the caller's own instance."""

    program_row: FrozenRow[Program]
    policy_row: FrozenRow[TierPolicy]
    tier_rows: tuple[FrozenRow[Tier], ...]
    perk_rows: tuple[tuple[int, tuple[FrozenRow[TierPerk], ...]], ...]  # (tier id, its perks)
    rules: tuple[TierRule, ...]

    @property
    def program(self) -> Program:
        return self.program_row.instance()

    @property
    def policy(self) -> TierPolicy:
        return self.policy_row.instance()

    @property
    def tiers(self) -> list[Tier]:
        return [row.instance() for row in self.tier_rows]

    def tier(self, tier_id: int | None) -> Tier | None:
        if tier_id is None:
            return None
        return next((row.instance() for row in self.tier_rows if row.pk == tier_id), None)

    def perks(self, tier_id: int) -> list[TierPerk]:
        rows = next((perks for pk, perks in self.perk_rows if pk == tier_id), ())
        return [row.instance() for row in rows]

    def rule(self, tier_id: int | None) -> TierRule | None:
        return next((r for r in self.rules if r.id == tier_id), None) if tier_id is not None else None


def program_tiers(*, program: Program) -> ProgramTiers:
    """Policy and tiers with thresholds and perks: configuration, read (four queries) once per
    configuration stamp (``loyalty.core.config``)."""
    return config_cached(("program_tiers", program.pk), lambda: _program_tiers(program))


def _program_tiers(program: Program) -> ProgramTiers:
    policy = TierPolicy.objects.filter(program=program).first() or TierPolicy(program=program)
    tiers = list(Tier.objects.filter(program=program).prefetch_related("thresholds", "perks").order_by("rank"))
    rules = tuple(
        TierRule(
            id=t.pk,
            name=t.name,
            rank=t.rank,
            combine=t.combine,
            thresholds=MappingProxyType(
                qualification.rule_thresholds([(th.metric, th.minimum) for th in t.thresholds.all()])
            ),
        )
        for t in tiers
    )
    return ProgramTiers(
        program_row=FrozenRow.of(program),
        policy_row=FrozenRow.of(policy),
        tier_rows=tuple(FrozenRow.of(t) for t in tiers),
        perk_rows=tuple((t.pk, tuple(FrozenRow.of(p) for p in t.perks.all())) for t in tiers),
        rules=rules,
    )


def member_metrics(
    *,
    member: Member,
    program: Program,
    start: dt.datetime | None,
    end: dt.datetime | None,
    adjustments_count: bool = False,
) -> Metrics:
    """Qualifying spend, points and purchases of a member in [start, end) (open ends when None).

    Spend is the eligible amount net of returns. A purchase counts as a qualifying purchase
    only while some of it is kept (a fully returned purchase does not count). Points are the
    points earned; positive staff adjustments only when the program says so."""
    purchases = Purchase.objects.filter(program=program, member=member)
    entries = Entry.objects.filter(account__member=member, account__program=program, account__kind=AccountKind.MEMBER)
    if start is not None:
        purchases = purchases.filter(occurred_at__gte=start)
        entries = entries.filter(created_at__gte=start)
    if end is not None:
        purchases = purchases.filter(occurred_at__lt=end)
        entries = entries.filter(created_at__lt=end)
    counted = Q(kind=EntryKind.EARN)
    if adjustments_count:
        counted |= Q(kind=EntryKind.ADJUST, points__gt=0)
    spent = purchases.aggregate(
        spend=Sum(F("eligible_amount") - F("returned_amount")),
        purchases=Count("id", filter=Q(eligible_amount__gt=F("returned_amount"))),
    )
    points = entries.filter(counted).aggregate(points=Sum("points"))["points"] or 0
    return Metrics(
        spend=(spent["spend"] or Decimal("0")).quantize(qualification.CENT),
        points=int(points),
        purchases=spent["purchases"] or 0,
    )


def member_tier_status(*, member: Member, program: Program) -> MemberTier | None:
    return MemberTier.objects.filter(member=member, program=program).first()


def member_tier(*, member: Member, program: Program, tiers: ProgramTiers | None = None) -> Tier | None:
    """The member's tier now (the base tier when no status was recorded yet), for earning rules,
    rewards and offers: read its ``earn_multiplier``, ``exclusive_rewards`` and ``early_access``.

    A caller that already holds the program's tiers (``program_tiers``) passes them: no query
    when the program has none, and the base tier comes from them."""
    if tiers is not None:
        if tiers.program_row.pk != program.pk:
            raise ValueError("tiers belong to another program")
        if not tiers.tier_rows:
            return None
    status = MemberTier.objects.filter(member=member, program=program).select_related("tier").first()
    if status is not None:
        return status.tier
    pt = tiers if tiers is not None else program_tiers(program=program)
    base = qualification.base_tier(pt.rules)
    return pt.tier(base.id) if base else None


def tier_history(*, member: Member, program: Program | None = None) -> QuerySet[TierChange]:
    changes = TierChange.objects.filter(member=member).select_related("from_tier", "to_tier")
    if program is not None:
        changes = changes.filter(program=program)
    return changes.order_by("-changed_at", "-id")


@dataclass(frozen=True)
class TierProgress:
    """What a member sees on the tier page.

    ``to_next``: per threshold metric of the next tier, what is still missing in the current
    window (``next_combine`` says whether any one or all of them are needed).
    ``keep``: per threshold metric of the current tier, what is still missing in the period
    that closes at ``keep_by`` to keep it; all zeros when it is already secured; None when
    nothing can take it away (policy ``never``, a lifetime window, a tier without thresholds).
    """

    program: Program
    tier: Tier | None
    earned_tier: Tier | None
    tier_since: dt.datetime | None
    manual_until: dt.datetime | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    metrics: Metrics
    next_tier: Tier | None
    next_combine: str | None
    to_next: dict[str, Decimal | int] | None
    keep_combine: str | None
    keep: dict[str, Decimal | int] | None
    keep_by: dt.datetime | None
    keep_metrics: Metrics
    downgrade_to: Tier | None
    downgrade_at: dt.datetime | None
    next_evaluation: dt.date | None
    perks: list[TierPerk] = field(default_factory=list)

    @property
    def earn_multiplier(self) -> Decimal:
        return self.tier.earn_multiplier if self.tier is not None else Decimal("1")


def tier_progress(*, member: Member, program: Program | None = None) -> TierProgress:
    """Current tier, metrics in the window, the next tier and what is missing for it, what keeps
    the current tier by the period end, and the date of the next evaluation. At most 8 queries
    (10 under a rolling window, +1 without ``program``)."""
    program = program or program_default()
    now = clock.now()
    pt = program_tiers(program=program)
    policy = pt.policy
    status = MemberTier.objects.filter(member=member, program=program).first()
    if status is not None:
        tier_id, earned_id = status.tier_id, status.earned_tier_id
        period_start, period_end = status.period_start, status.period_end
    else:
        base = qualification.base_tier(pt.rules)
        tier_id = earned_id = base.id if base else None
        period_start, period_end = qualification.review_period(policy.window, now, member.enrolled_at)
    start, end = qualification.qualification_window(policy.window, now, member.enrolled_at)
    metrics = member_metrics(
        member=member, program=program, start=start, end=end, adjustments_count=policy.adjustments_count
    )
    current = pt.rule(tier_id)
    following = qualification.next_tier(pt.rules, current)
    manual_until = status.manual_until if status is not None and status.manual_until else None
    if manual_until is not None and manual_until <= now:
        manual_until = None  # ended; the nightly job records it
    keep_metrics = metrics
    if period_start is not None and (period_start, period_end) != (start, end):
        keep_metrics = member_metrics(
            member=member,
            program=program,
            start=period_start,
            end=period_end,
            adjustments_count=policy.adjustments_count,
        )
    guaranteed = (
        current is None
        or not current.thresholds
        or (
            manual_until is None
            and (policy.downgrade_policy == "never" or policy.window == QualificationWindow.LIFETIME)
        )
    )
    keep = None if guaranteed else current.missing(keep_metrics if manual_until is None else metrics)
    due_dates = [
        d
        for d in (
            period_end if policy.window != QualificationWindow.LIFETIME else None,
            status.downgrade_at if status else None,
            manual_until,
        )
        if d is not None
    ]
    tier = pt.tier(tier_id)
    return TierProgress(
        program=program,
        tier=tier,
        earned_tier=pt.tier(earned_id),
        tier_since=status.tier_since if status else None,
        manual_until=manual_until,
        window_start=start,
        window_end=end,
        metrics=metrics,
        next_tier=pt.tier(following.id) if following else None,
        next_combine=following.combine if following else None,
        to_next=following.missing(metrics) if following else None,
        keep_combine=current.combine if keep is not None else None,
        keep=keep,
        keep_by=(manual_until or period_end) if keep is not None else None,
        keep_metrics=keep_metrics,
        downgrade_to=pt.tier(status.downgrade_to_id) if status and status.downgrade_at else None,
        downgrade_at=status.downgrade_at if status else None,
        next_evaluation=max(min(due_dates), now).date() if due_dates else None,
        perks=pt.perks(tier.pk) if tier is not None else [],
    )


def tier_distribution(*, program: Program) -> list[dict]:
    """Members per tier now, lowest tier first. Members with an account in the program and no
    tier status yet count at the base tier."""
    pt = program_tiers(program=program)
    counts = dict(MemberTier.objects.filter(program=program).values_list("tier_id").annotate(n=Count("id")).order_by())
    unrated = (
        Account.objects.filter(program=program, kind=AccountKind.MEMBER)
        .exclude(Exists(MemberTier.objects.filter(program=program, member_id=OuterRef("member_id"))))
        .count()
    )
    base = qualification.base_tier(pt.rules)
    key = base.id if base else None
    counts[key] = counts.get(key, 0) + unrated
    rows = [{"tier_id": t.pk, "tier": t.name, "rank": t.rank, "members": counts.get(t.pk, 0)} for t in pt.tiers]
    if counts.get(None):
        rows.insert(0, {"tier_id": None, "tier": "No tier", "rank": None, "members": counts[None]})
    return rows


TRUNC = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth, "year": TruncYear}


def tier_movements(*, program: Program, since: dt.datetime, until: dt.datetime, period: str = "month") -> list[dict]:
    """Tier changes per period, reason and (from, to) tier, for dashboards: one query."""
    if period not in TRUNC:
        raise ValidationFailed(f"period must be one of {', '.join(TRUNC)}", code="invalid_period")
    rows = (
        TierChange.objects.filter(program=program, changed_at__gte=since, changed_at__lt=until)
        .annotate(period=TRUNC[period]("changed_at"))
        .values("period", "reason", "from_tier_id", "from_tier__name", "to_tier_id", "to_tier__name")
        .annotate(members=Count("id"))
        .order_by("period", "reason", "from_tier_id", "to_tier_id")
    )
    return [
        {
            "period": row["period"].date() if isinstance(row["period"], dt.datetime) else row["period"],
            "reason": row["reason"],
            "from_tier_id": row["from_tier_id"],
            "from_tier": row["from_tier__name"],
            "to_tier_id": row["to_tier_id"],
            "to_tier": row["to_tier__name"],
            "members": row["members"],
        }
        for row in rows
    ]
