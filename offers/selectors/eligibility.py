"""Who may use an offer or a reward now: the one place that decides eligibility.

Offers are configuration (read by every purchase and every ranking): ``offers_live`` keeps them
as frozen ``OfferConfig`` values under the configuration stamp (``loyalty.core.config``; triggers of
offers migration 0003). Their counters are not configuration and are not cached: limits are read
fresh (``MemberFacts.exhausted``) and enforced by the services' conditional UPDATEs.

What is known about a member that eligibility needs is read once into a frozen ``MemberFacts``
(``member_facts``), reading only what the live offers look at. ``offer_eligibility`` and
``reward_eligibility`` are then pure: (configuration, facts, now) -> ``Eligibility``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import Q

from loyalty.core import clock
from loyalty.core.config import config_cached
from loyalty.tiers.selectors import member_tier, program_tiers
from members.models import ConsentPurpose, MemberStatus
from members.selectors import consent_granted
from offers.models import BenefitKind, Offer, OfferActivation, OfferRedemption, OfferStatus, RedemptionState, Reward
from segments.models import SegmentMembership

if TYPE_CHECKING:
    from loyalty.ledger.models import Program
    from loyalty.tiers.models import Tier
    from members.models import Member


@dataclass(frozen=True, slots=True)
class OfferConfig:
    """An offer as the configuration cache keeps it (frozen: shared between requests)."""

    pk: int
    program_id: int
    name: str
    description: str
    status: str
    priority: int
    condition_kind: str
    condition_min_spend: Decimal | None
    condition_categories: tuple[str, ...]
    condition_skus: tuple[str, ...]
    condition_count: int | None
    condition_window_days: int | None
    condition_days_of_week: tuple[int, ...]
    condition_channels: tuple[str, ...]
    benefit_kind: str
    benefit_multiplier: Decimal | None
    benefit_points: int | None
    benefit_value: Decimal | None
    benefit_sku: str
    benefit_reward_id: int | None
    scope_categories: tuple[str, ...]
    scope_skus: tuple[str, ...]
    scope_partner_ids: frozenset[int]
    coupon_valid_days: int
    segments_include: frozenset[int]
    segments_exclude: frozenset[int]
    tier_ids: frozenset[int]
    partner_ids: frozenset[int]
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    requires_activation: bool
    max_redemptions: int | None
    max_per_member: int | None
    points_budget: int | None
    image: str

    @classmethod
    def of(cls, offer: Offer) -> OfferConfig:
        """From an offer whose many-to-many fields were prefetched."""

        def ids(manager) -> frozenset[int]:
            return frozenset(item.pk for item in manager.all())

        return cls(
            pk=offer.pk,
            program_id=offer.program_id,
            name=offer.name,
            description=offer.description,
            status=offer.status,
            priority=offer.priority,
            condition_kind=offer.condition_kind,
            condition_min_spend=offer.condition_min_spend,
            condition_categories=tuple(str(c) for c in offer.condition_categories or ()),
            condition_skus=tuple(str(s) for s in offer.condition_skus or ()),
            condition_count=offer.condition_count,
            condition_window_days=offer.condition_window_days,
            condition_days_of_week=tuple(int(d) for d in offer.condition_days_of_week or ()),
            condition_channels=tuple(str(c) for c in offer.condition_channels or ()),
            benefit_kind=offer.benefit_kind,
            benefit_multiplier=offer.benefit_multiplier,
            benefit_points=offer.benefit_points,
            benefit_value=offer.benefit_value,
            benefit_sku=offer.benefit_sku,
            benefit_reward_id=offer.benefit_reward_id,
            scope_categories=tuple(str(c) for c in offer.scope_categories or ()),
            scope_skus=tuple(str(s) for s in offer.scope_skus or ()),
            scope_partner_ids=ids(offer.scope_partners),
            coupon_valid_days=offer.coupon_valid_days,
            segments_include=ids(offer.segments_include),
            segments_exclude=ids(offer.segments_exclude),
            tier_ids=ids(offer.tiers),
            partner_ids=ids(offer.partners),
            valid_from=offer.valid_from,
            valid_until=offer.valid_until,
            requires_activation=offer.requires_activation,
            max_redemptions=offer.max_redemptions,
            max_per_member=offer.max_per_member,
            points_budget=offer.points_budget,
            image=offer.image.name if offer.image else "",
        )

    @property
    def limited(self) -> bool:
        """Whether a total limit (redemptions or points budget) can exhaust it."""
        return self.max_redemptions is not None or self.points_budget is not None

    def in_window(self, now: dt.datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and (
            self.valid_until is None or now < self.valid_until
        )


def _offers_load(program_id: int) -> tuple[OfferConfig, ...]:
    offers = (
        Offer.objects.filter(program_id=program_id, status=OfferStatus.ACTIVE)
        .prefetch_related("scope_partners", "segments_include", "segments_exclude", "tiers", "partners")
        .order_by("-priority", "pk")
    )
    return tuple(OfferConfig.of(offer) for offer in offers)


def offers_active(*, program: Program) -> tuple[OfferConfig, ...]:
    """The program's offers with status active (any validity window), highest priority first."""
    return config_cached(("offers_active", program.pk), lambda: _offers_load(program.pk))


def offers_live(*, program: Program, now: dt.datetime | None = None) -> tuple[OfferConfig, ...]:
    """The program's active offers whose validity window holds ``now``: what purchases and
    rankings look at. Read from the database once per configuration stamp."""
    now = now or clock.now()
    return tuple(offer for offer in offers_active(program=program) if offer.in_window(now))


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What eligibility needs to know about a member, read once (``member_facts``)."""

    member_id: int
    active: bool
    tier_id: int | None
    tier_early_access: bool
    tier_exclusive_rewards: bool
    segment_ids: frozenset[int]
    activated: frozenset[int]  # offers the member activated
    used: tuple[tuple[int, int], ...]  # (offer id, completed redemptions by this member)
    exhausted: frozenset[int]  # offers whose total redemptions or points budget are used up
    birth_month: int | None
    personalization: bool  # personalization consent on record

    def uses(self, offer_id: int) -> int:
        return next((n for pk, n in self.used if pk == offer_id), 0)


_UNREAD = object()


def member_facts(
    *,
    member: Member,
    program: Program,
    offers: tuple[OfferConfig, ...] | None = None,
    personalization: bool = True,
    tier: Tier | None | object = _UNREAD,
    birth_month: bool = True,
) -> MemberFacts:
    """Read what eligibility needs about ``member`` for ``offers`` (default: the live offers).
    Reads only what those offers look at (no segment read when no offer or reward names a segment,
    no activation read when none needs activation, and so on), and what is read is one statement
    (``_member_reads``). ``personalization`` False skips the consent read (callers that do not
    rank, such as the purchase); ``tier``: the member's tier when the caller read it already;
    ``birth_month`` False leaves it out (eligibility does not read it; the purchase's conditions
    read it themselves when one asks)."""
    offers = offers_live(program=program) if offers is None else offers
    if tier is _UNREAD:
        tier = member_tier(member=member, program=program, tiers=program_tiers(program=program))
    rows = _member_reads(
        member_id=member.pk,
        program_id=program.pk,
        segments=any(o.segments_include or o.segments_exclude for o in offers) or _rewards_use_segments(program),
        activation=[o.pk for o in offers if o.requires_activation],
        per_member=[o.pk for o in offers if o.max_per_member is not None],
        limited=[o.pk for o in offers if o.limited],
    )
    return MemberFacts(
        member_id=member.pk,
        active=member.status == MemberStatus.ACTIVE,
        tier_id=tier.pk if tier is not None else None,
        tier_early_access=bool(tier and tier.early_access),
        tier_exclusive_rewards=bool(tier and tier.exclusive_rewards),
        segment_ids=frozenset(pk for kind, pk, _n in rows if kind == "s"),
        activated=frozenset(pk for kind, pk, _n in rows if kind == "a"),
        used=tuple((pk, n) for kind, pk, n in rows if kind == "u"),
        exhausted=frozenset(pk for kind, pk, _n in rows if kind == "x"),
        birth_month=member.birth_date.month if birth_month and member.birth_date else None,
        personalization=personalization
        and consent_granted(member=member, purpose=ConsentPurpose.PERSONALIZATION, channel=""),
    )


def _member_reads(
    *, member_id: int, program_id: int, segments: bool, activation: list[int], per_member: list[int], limited: list[int]
) -> list[tuple[str, int, int]]:
    """The member's open segments ("s"), activations ("a") and completed redemptions per offer
    ("u", with their number), and the offers whose total limits are used up ("x"), as
    (kind, id, number) rows of one UNION ALL statement of the parts needed (none: no statement).
    Plain SQL (names from the models): the purchase reads it on every purchase that meets an
    offer, and compiling four querysets cost more than the database does."""
    parts: list[str] = []
    params: list[object] = []

    def names(model, *fields: str) -> tuple[str, ...]:
        quote = connection.ops.quote_name
        return (quote(model._meta.db_table), *(quote(model._meta.get_field(f).column) for f in fields))

    def marks(values: list[int]) -> str:
        return ", ".join(["%s"] * len(values))

    if segments:
        table, member, segment, left = names(SegmentMembership, "member", "segment", "left_at")
        parts.append(f"SELECT 's', {segment}, 0 FROM {table} WHERE {member} = %s AND {left} IS NULL")  # noqa: S608
        params.append(member_id)
    if activation:
        table, member, offer = names(OfferActivation, "member", "offer")
        parts.append(
            f"SELECT 'a', {offer}, 0 FROM {table} WHERE {member} = %s AND {offer} IN ({marks(activation)})"  # noqa: S608
        )
        params += [member_id, *activation]
    if per_member:
        table, member, offer, status = names(OfferRedemption, "member", "offer", "status")
        parts.append(
            f"SELECT 'u', {offer}, COUNT(*) FROM {table} WHERE {member} = %s AND {status} = %s"  # noqa: S608
            f" AND {offer} IN ({marks(per_member)}) GROUP BY {offer}"
        )
        params += [member_id, RedemptionState.COMPLETED.value, *per_member]
    if limited:
        table, pk, count, most, issued, budget = names(
            Offer, "id", "redemptions_count", "max_redemptions", "points_issued", "points_budget"
        )
        parts.append(
            f"SELECT 'x', {pk}, 0 FROM {table} WHERE {pk} IN ({marks(limited)}) AND (({most} IS NOT NULL AND"  # noqa: S608
            f" {count} >= {most}) OR ({budget} IS NOT NULL AND {issued} >= {budget}))"
        )
        params += limited
    if not parts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)  # noqa: S608 - names from the models, values as parameters
        return [(kind, pk, int(n)) for kind, pk, n in cursor.fetchall()]


def _rewards_use_segments(program: Program) -> bool:
    return config_cached(
        ("rewards_use_segments", program.pk),
        lambda: (
            Reward.objects.filter(program_id=program.pk, is_active=True)
            .filter(Q(segments_include__isnull=False) | Q(segments_exclude__isnull=False))
            .exists()
        ),
    )


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The answer: ``ok``, else a stable ``code`` and the reason in plain words. For an eligible
    offer that the member must first activate, ``needs_activation`` is True."""

    ok: bool
    code: str = ""
    reason: str = ""
    needs_activation: bool = False

    def __bool__(self) -> bool:
        return self.ok


def _no(code: str, reason: str) -> Eligibility:
    return Eligibility(ok=False, code=code, reason=reason)


def _audience(
    *,
    facts: MemberFacts,
    tier_ids: frozenset[int],
    include: frozenset[int],
    exclude: frozenset[int],
    what: str,
) -> Eligibility | None:
    """The tier and segment rules shared by offers and rewards; None when they let the member in."""
    if tier_ids and facts.tier_id not in tier_ids:
        return _no(f"{what}_tier_excluded", f"This {what} is for other tiers")
    if include and not (include & facts.segment_ids):
        return _no(f"{what}_segment_excluded", f"This {what} is for members of other segments")
    if exclude & facts.segment_ids:
        return _no(f"{what}_segment_excluded", f"This {what} is not for members of one of your segments")
    return None


def offer_eligibility(
    *, offer: OfferConfig, facts: MemberFacts, now: dt.datetime, partner_id: int | None = None
) -> Eligibility:
    """May the member use ``offer`` now (at ``partner_id``, when a partner asks)? Pure.
    Conditions on a purchase (spend, categories, ...) are not eligibility: ``offers.conditions``."""
    if not facts.active:
        return _no("member_inactive", "Only active members may use offers")
    if offer.status != OfferStatus.ACTIVE:
        return _no("offer_not_active", "This offer is not running")
    if offer.valid_from is not None and now < offer.valid_from:
        return _no("offer_not_started", f"This offer starts on {offer.valid_from:%Y-%m-%d}")
    if offer.valid_until is not None and now >= offer.valid_until:
        return _no("offer_ended", "This offer has ended")
    if partner_id is not None and offer.partner_ids and partner_id not in offer.partner_ids:
        return _no("offer_partner_excluded", "This offer does not apply at this partner")
    refused = _audience(
        facts=facts,
        tier_ids=offer.tier_ids,
        include=offer.segments_include,
        exclude=offer.segments_exclude,
        what="offer",
    )
    if refused is not None:
        return refused
    if offer.pk in facts.exhausted:
        return _no("offer_exhausted", "This offer has been used up")
    if offer.max_per_member is not None and facts.uses(offer.pk) >= offer.max_per_member:
        return _no("offer_member_limit_reached", "You have used this offer as often as it allows")
    return Eligibility(ok=True, needs_activation=offer.requires_activation and offer.pk not in facts.activated)


def offers_eligible(
    *,
    member: Member,
    program: Program,
    now: dt.datetime | None = None,
    partner_id: int | None = None,
    facts: MemberFacts | None = None,
) -> list[tuple[OfferConfig, Eligibility]]:
    """The live offers ``member`` is eligible for now, highest priority first, each with its
    eligibility (which says whether it still needs activating)."""
    now = now or clock.now()
    offers = offers_live(program=program, now=now)
    if not offers:
        return []
    facts = facts or member_facts(member=member, program=program, offers=offers)
    found = []
    for offer in offers:
        answer = offer_eligibility(offer=offer, facts=facts, now=now, partner_id=partner_id)
        if answer.ok:
            found.append((offer, answer))
    return found


def early_access_reward_ids(*, offers: tuple[OfferConfig, ...], facts: MemberFacts, now: dt.datetime) -> frozenset[int]:
    """Rewards the member may redeem early through an exclusive-access offer they are eligible
    for (and have activated, where the offer asks for it)."""
    return frozenset(
        offer.benefit_reward_id
        for offer in offers
        if offer.benefit_kind == BenefitKind.EXCLUSIVE_ACCESS
        and offer.benefit_reward_id is not None
        and (answer := offer_eligibility(offer=offer, facts=facts, now=now))
        and not answer.needs_activation
    )


def reward_eligibility(
    *,
    reward: Reward,
    facts: MemberFacts,
    now: dt.datetime,
    partner_id: int | None = None,
    early_access: frozenset[int] = frozenset(),
) -> Eligibility:
    """May the member redeem ``reward`` now (at ``partner_id``)? Pure over the reward row and the
    facts. ``early_access``: rewards an exclusive-access offer opens early to this member
    (``early_access_reward_ids``). Stock, the per-member limit and the balance are checked by
    ``reward_redeem`` under the account lock, not here."""
    if not facts.active:
        return _no("member_inactive", "Only active members may redeem rewards")
    if not reward.is_active:
        return _no("reward_inactive", "This reward is not offered")
    if reward.valid_until is not None and now >= reward.valid_until:
        return _no("reward_ended", "This reward is no longer offered")
    if reward.valid_from is not None and now < reward.valid_from:
        early = reward.early_access_from is not None and reward.early_access_from <= now
        if not early:
            return _no("reward_not_started", f"This reward is offered from {reward.valid_from:%Y-%m-%d}")
        if not (facts.tier_early_access or reward.pk in early_access):
            return _no("reward_early_access_only", "This reward is open early only to members with early access")
    if reward.exclusive and not facts.tier_exclusive_rewards:
        return _no("reward_exclusive_tier", "This reward is reserved for tiers with exclusive rewards")
    if partner_id is not None and reward.partner_id is not None and reward.partner_id != partner_id:
        return _no("reward_partner_excluded", "This reward is honoured by another partner")
    refused = _audience(
        facts=facts,
        tier_ids=frozenset(t.pk for t in reward.tiers.all()),
        include=frozenset(s.pk for s in reward.segments_include.all()),
        exclude=frozenset(s.pk for s in reward.segments_exclude.all()),
        what="reward",
    )
    return refused if refused is not None else Eligibility(ok=True)
