"""Reads of challenges and badges: the live challenges (configuration, cached), a member's
challenges and badges for the portal, completion rates for staff."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from loyalty.core.config import config_cached
from loyalty.engagement.models import (
    Badge,
    Challenge,
    ChallengeCompletion,
    ChallengeKind,
    ChallengeProgress,
    MemberBadge,
)
from loyalty.tiers.selectors import member_tier
from segments.models import SegmentMembership

if TYPE_CHECKING:
    from loyalty.ledger.models import Program
    from members.models import Member

PURCHASE_KINDS = frozenset(
    {ChallengeKind.PURCHASE_COUNT, ChallengeKind.SPEND, ChallengeKind.PARTNERS_VISITED, ChallengeKind.STORES_VISITED}
)


@dataclass(frozen=True, slots=True)
class ChallengeConfig:
    """A challenge as the configuration cache keeps it (frozen: shared between requests)."""

    pk: int
    program_id: int
    name: str
    kind: str
    category: str
    event_type_code: str
    target: Decimal
    starts_at: dt.datetime
    ends_at: dt.datetime
    segment_ids: frozenset[int]
    tier_ids: frozenset[int]
    requires_opt_in: bool
    reward_points: int
    reward_id: int | None
    badge_id: int | None

    @classmethod
    def of(cls, c: Challenge) -> ChallengeConfig:
        return cls(
            pk=c.pk,
            program_id=c.program_id,
            name=c.name,
            kind=c.kind,
            category=c.category,
            event_type_code=c.event_type.code if c.event_type_id else "",
            target=c.target,
            starts_at=c.starts_at,
            ends_at=c.ends_at,
            segment_ids=frozenset(s.pk for s in c.segments.all()),
            tier_ids=frozenset(t.pk for t in c.tiers.all()),
            requires_opt_in=c.requires_opt_in,
            reward_points=c.reward_points,
            reward_id=c.reward_id,
            badge_id=c.badge_id,
        )

    def open_at(self, at: dt.datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def challenges_active(*, program: Program) -> tuple[ChallengeConfig, ...]:
    """The program's active challenges, read once per configuration stamp (``core.config``)."""
    return config_cached(
        ("engagement_challenges", program.pk),
        lambda: tuple(
            ChallengeConfig.of(c)
            for c in Challenge.objects.filter(program=program, is_active=True)
            .select_related("event_type")
            .prefetch_related("segments", "tiers")
        ),
    )


def challenge_targets_member(*, challenge: ChallengeConfig, member: Member, program: Program) -> bool:
    """Is ``member`` in the challenge's audience: one of its tiers (if it names any) and one of its
    segments (if it names any)."""
    if challenge.tier_ids:
        tier = member_tier(member=member, program=program)
        if tier is None or tier.pk not in challenge.tier_ids:
            return False
    if challenge.segment_ids:
        return SegmentMembership.objects.filter(
            member=member, segment_id__in=challenge.segment_ids, left_at__isnull=True
        ).exists()
    return True


# --- portal ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengeCard:
    pk: int
    name: str
    description: str
    goal: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    value: Decimal
    target: Decimal
    percent: int
    progress_text: str
    completed_at: dt.datetime | None
    requires_opt_in: bool
    opted_in: bool
    reward_text: str
    badge_name: str
    badge_picture: str


def challenge_goal(*, kind: str, target: Decimal, category: str = "", event_type_name: str = "") -> str:
    """The goal in the member's words ("3 purchases in Dairy")."""
    n = int(target) if target == target.to_integral_value() else target
    where = f" in {category}" if category else ""
    if kind == ChallengeKind.PURCHASE_COUNT:
        return f"{n} purchase{'s' if n != 1 else ''}{where}"
    if kind == ChallengeKind.SPEND:
        return f"spend {target:.2f}{where}"
    if kind == ChallengeKind.PARTNERS_VISITED:
        return f"shop at {n} different partners"
    if kind == ChallengeKind.STORES_VISITED:
        return f"visit {n} different stores"
    return f"{n} × {event_type_name or 'event'}"


def _value_text(kind: str, value: Decimal, target: Decimal) -> str:
    if kind == ChallengeKind.SPEND:
        return f"{min(value, target):.2f} of {target:.2f} spent"
    return f"{int(min(value, target))} of {int(target)} done"


def badge_picture(badge: Badge | None) -> str:
    """URL of the badge's picture: its uploaded image, else its static SVG icon."""
    from django.templatetags.static import static

    if badge is None:
        return ""
    if badge.image:
        return badge.image.url
    return static(f"engagement/badges/{badge.icon}.svg")


def member_challenges(*, member: Member, program: Program, now: dt.datetime) -> list[ChallengeCard]:
    """The challenges a member sees: running ones of their audience, and ones they completed.
    Three queries (challenges with their badge, event type and audience; progress; completions)."""
    challenges = list(
        Challenge.objects.filter(program=program, is_active=True)
        .filter(Q(starts_at__lte=now, ends_at__gt=now) | Q(completions__member=member))
        .select_related("badge", "event_type", "reward")
        .prefetch_related("segments", "tiers")
        .distinct()
        .order_by("ends_at", "pk")
    )
    if not challenges:
        return []
    ids = [c.pk for c in challenges]
    progress = {p.challenge_id: p for p in ChallengeProgress.objects.filter(member=member, challenge_id__in=ids)}
    done = {c.challenge_id: c for c in ChallengeCompletion.objects.filter(member=member, challenge_id__in=ids)}
    tier = None
    tier_read = False
    segment_ids: set[int] | None = None
    cards = []
    for c in challenges:
        completed = done.get(c.pk)
        if completed is None:
            tier_ids = {t.pk for t in c.tiers.all()}
            seg_ids = {s.pk for s in c.segments.all()}
            if tier_ids:
                if not tier_read:
                    tier, tier_read = member_tier(member=member, program=program), True
                if tier is None or tier.pk not in tier_ids:
                    continue
            if seg_ids:
                if segment_ids is None:
                    segment_ids = set(
                        SegmentMembership.objects.filter(member=member, left_at__isnull=True).values_list(
                            "segment_id", flat=True
                        )
                    )
                if not seg_ids & segment_ids:
                    continue
        p = progress.get(c.pk)
        value = c.target if completed else (p.value if p else Decimal("0"))
        percent = int(min(value / c.target, 1) * 100)
        rewards = []
        if c.reward_points:
            rewards.append(f"{c.reward_points} points")
        if c.reward_id:
            rewards.append(c.reward.name)
        if c.badge_id:
            rewards.append(f"the {c.badge.name} badge")
        cards.append(
            ChallengeCard(
                pk=c.pk,
                name=c.name,
                description=c.description,
                goal=challenge_goal(
                    kind=c.kind,
                    target=c.target,
                    category=c.category,
                    event_type_name=c.event_type.name if c.event_type_id else "",
                ),
                starts_at=c.starts_at,
                ends_at=c.ends_at,
                value=value,
                target=c.target,
                percent=percent,
                progress_text="Completed" if completed else _value_text(c.kind, value, c.target),
                completed_at=completed.completed_at if completed else None,
                requires_opt_in=c.requires_opt_in,
                opted_in=bool(p and p.opted_in_at),
                reward_text=" and ".join(rewards),
                badge_name=c.badge.name if c.badge_id else "",
                badge_picture=badge_picture(c.badge) if c.badge_id else "",
            )
        )
    return cards


@dataclass(frozen=True)
class BadgeCard:
    pk: int
    name: str
    description: str
    picture: str
    earned_at: dt.datetime | None


def member_badges(*, member: Member) -> tuple[list[BadgeCard], list[BadgeCard]]:
    """(earned, available): the badges the member holds, and those a running challenge still offers."""
    held = {mb.badge_id: mb.earned_at for mb in MemberBadge.objects.filter(member=member).only("badge_id", "earned_at")}
    badges = Badge.objects.filter(Q(pk__in=held) | Q(challenges__is_active=True)).distinct().order_by("name")
    earned, available = [], []
    for b in badges:
        card = BadgeCard(
            pk=b.pk, name=b.name, description=b.description, picture=badge_picture(b), earned_at=held.get(b.pk)
        )
        (earned if b.pk in held else available).append(card)
    return earned, available


def challenge_for_member(*, member: Member, challenge_id: int, now: dt.datetime) -> Challenge | None:
    """A running, active challenge (for opting in); None when there is none with this id."""
    return Challenge.objects.filter(pk=challenge_id, is_active=True, starts_at__lte=now, ends_at__gt=now).first()


# --- staff -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompletionRate:
    participants: int
    completed: int

    def __post_init__(self) -> None:
        # a member may complete without progress rows of their own (e.g. a nightly award): count them
        object.__setattr__(self, "participants", max(self.participants, self.completed))

    @property
    def rate(self) -> float | None:
        return self.completed / self.participants if self.participants else None

    @property
    def text(self) -> str:
        if not self.participants:
            return "no participants yet"
        return f"{self.completed} of {self.participants} ({self.rate:.0%})"


def challenge_completion_rates(*, challenge_ids: list[int]) -> dict[int, CompletionRate]:
    """Per challenge: members with progress (participants) and completions. Two grouped queries."""
    participants = dict(
        ChallengeProgress.objects.filter(challenge_id__in=challenge_ids)
        .filter(Q(value__gt=0) | Q(opted_in_at__isnull=False))
        .values_list("challenge_id")
        .annotate(n=Count("id"))
        .values_list("challenge_id", "n")
    )
    completed = dict(
        ChallengeCompletion.objects.filter(challenge_id__in=challenge_ids)
        .values_list("challenge_id")
        .annotate(n=Count("id"))
        .values_list("challenge_id", "n")
    )
    return {
        pk: CompletionRate(
            participants=max(participants.get(pk, 0), completed.get(pk, 0)), completed=completed.get(pk, 0)
        )
        for pk in challenge_ids
    }


def challenges_with_figures(challenges: QuerySet[Challenge]) -> QuerySet[Challenge]:
    """``challenges`` with ``participants_n`` and ``completed_n`` (a subquery each, for the admin list)."""
    participants = (
        ChallengeProgress.objects.filter(challenge=OuterRef("pk"))
        .filter(Q(value__gt=0) | Q(opted_in_at__isnull=False))
        .values("challenge")
        .annotate(n=Count("id"))
        .values("n")
    )
    completed = (
        ChallengeCompletion.objects.filter(challenge=OuterRef("pk"))
        .values("challenge")
        .annotate(n=Count("id"))
        .values("n")
    )
    return challenges.annotate(
        participants_n=Coalesce(Subquery(participants), 0), completed_n=Coalesce(Subquery(completed), 0)
    )
