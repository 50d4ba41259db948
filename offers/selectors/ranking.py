"""The personalized ranking every channel shows: ``offers_for_member``.

The portal, the partner API and campaign messages call this one selector, so a member sees the
same offers and rewards in the same order everywhere (the channel only says where the list is
shown). Eligibility comes from ``offers.selectors.eligibility``; the scoring is the pure
``offers.ranking.score`` that the nightly batch (``offers.services.ranking``) runs on the whole
base. Offers come from the configuration cache; the rest is a dozen small reads keyed by member.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    F,
    FloatField,
    OuterRef,
    Prefetch,
    Subquery,
    Sum,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Cast, Round

from loyalty.core import clock
from loyalty.core.config import config_cached
from loyalty.core.errors import ValidationFailed
from loyalty.ledger.models import Account, AccountKind, Purchase, PurchaseLine
from loyalty.ledger.selectors import partner_program, program_default, purchase_counts
from loyalty.tiers.selectors import program_tiers
from offers import ranking
from offers.models import (
    BenefitKind,
    Offer,
    OfferImpression,
    OfferRedemption,
    RedemptionState,
    Reward,
    RewardKind,
    RewardRedemption,
)
from offers.selectors.eligibility import (
    Eligibility,
    MemberFacts,
    OfferConfig,
    early_access_reward_ids,
    member_facts,
    offer_eligibility,
    offers_live,
    reward_eligibility,
)

if TYPE_CHECKING:
    from loyalty.ledger.models import Program
    from loyalty.partners.models import Partner
    from members.models import Member

CHANNEL_MAX = 20  # OfferImpression.channel


@dataclass(frozen=True, slots=True)
class RankedItem:
    """One offer or reward in a member's ranking, with why it is there."""

    rank: int  # 1 = shown first
    kind: str  # "offer" or "reward"
    id: int
    title: str
    description: str
    gives: str  # what it gives, in plain words
    score: float
    reasons: tuple[str, ...]
    needs_activation: bool  # an offer the member must activate (clip) before it applies
    activated: bool  # an offer that needs activation and was activated
    points_cost: int | None  # rewards
    points_missing: int | None  # rewards: points still missing at the current balance
    valid_until: dt.datetime | None
    factors: tuple[tuple[str, float], ...] = ()  # points each factor added (staff view)


@dataclass(frozen=True, slots=True)
class NotEligible:
    """An offer or reward the member may not use now, with eligibility's stable code (staff view)."""

    kind: str
    id: int
    title: str
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ranking:
    items: tuple[RankedItem, ...]
    not_eligible: tuple[NotEligible, ...]
    personalized: bool


def money_value(value: Decimal | None) -> float:
    """A money (or rate) column as a float for scoring (0 when empty)."""
    return float(value) if value is not None else 0.0


def offer_gives(offer: OfferConfig) -> str:
    """What an offer gives, in the member's words."""
    scope = ", ".join(offer.scope_categories + offer.scope_skus)
    on = f" on {scope}" if scope else ""
    match offer.benefit_kind:
        case BenefitKind.BONUS_MULTIPLIER:
            return (
                f"{offer.benefit_multiplier.normalize():f}x points{on}" if offer.benefit_multiplier else f"Points{on}"
            )
        case BenefitKind.BONUS_FIXED:
            return f"{offer.benefit_points or 0:,} bonus points{on}"
        case BenefitKind.PERCENT_COUPON:
            return f"{offer.benefit_value.normalize():f}% off" if offer.benefit_value else "A discount"
        case BenefitKind.AMOUNT_COUPON:
            return f"{offer.benefit_value:.2f} off" if offer.benefit_value else "A discount"
        case BenefitKind.FREE_ITEM:
            return f"A free {offer.benefit_sku}" if offer.benefit_sku else "A free item"
        case BenefitKind.EXCLUSIVE_ACCESS:
            return "Early access to a reward"
    return offer.name


def reward_gives(reward: Reward) -> str:
    if reward.kind == RewardKind.PERCENT_COUPON and reward.value:
        return f"{reward.value.normalize():f}% off for {reward.points_cost:,} points"
    if reward.kind in (RewardKind.AMOUNT_COUPON, RewardKind.PARTNER_VOUCHER) and reward.value:
        return f"{reward.value:.2f} off for {reward.points_cost:,} points"
    return f"{reward.get_kind_display()} for {reward.points_cost:,} points"


def offer_item(offer: OfferConfig, *, program: Program, popularity: float) -> ranking.Item:
    """An offer as scoring sees it (the batch builds the same)."""
    point_value = money_value(program.point_value)
    fixed = rate = 0.0
    match offer.benefit_kind:
        case BenefitKind.BONUS_FIXED:
            fixed = (offer.benefit_points or 0) * point_value
        case BenefitKind.BONUS_MULTIPLIER:
            extra = max(money_value(offer.benefit_multiplier) - 1.0, 0.0)
            rate = extra * money_value(program.earn_rate) * point_value
        case BenefitKind.PERCENT_COUPON:
            rate = money_value(offer.benefit_value) / 100
        case BenefitKind.AMOUNT_COUPON | BenefitKind.FREE_ITEM:
            fixed = money_value(offer.benefit_value)
    scoped = offer.benefit_kind == BenefitKind.BONUS_MULTIPLIER and bool(offer.scope_categories or offer.scope_skus)
    return ranking.Item(
        kind=ranking.KIND_OFFER,
        pk=offer.pk,
        categories=tuple(dict.fromkeys(offer.condition_categories + offer.scope_categories)),
        skus=tuple(dict.fromkeys(offer.condition_skus + offer.scope_skus)),
        scoped=scoped,
        value_fixed=fixed,
        value_basket_rate=rate,
        priority=offer.priority,
        tier_only=bool(offer.tier_ids),
        popularity=popularity,
    )


def reward_item(reward: Reward, *, program: Program) -> ranking.Item:
    fixed = rate = 0.0
    if reward.kind == RewardKind.PERCENT_COUPON:
        rate = money_value(reward.value) / 100
    elif reward.value is not None:
        fixed = money_value(reward.value)
    else:
        fixed = reward.points_cost * money_value(program.point_value)
    return ranking.Item(
        kind=ranking.KIND_REWARD,
        pk=reward.pk,
        value_fixed=fixed,
        value_basket_rate=rate,
        tier_only=False,
        points_cost=reward.points_cost,
    )


def rewards_active(*, program: Program) -> list[Reward]:
    """The program's active rewards with what ``reward_eligibility`` reads (tiers, segments)
    prefetched: one query, plus one per kind of restriction that some reward uses (the others
    get an empty prefetch, which runs no query)."""
    restrictions = ("tiers", "segments_include", "segments_exclude")
    flags = {
        name: Exists(Reward._meta.get_field(name).remote_field.through.objects.filter(reward_id=OuterRef("pk")))
        for name in restrictions
    }
    rewards = list(
        Reward.objects.filter(program=program, is_active=True)
        .annotate(**{f"uses_{name}": flag for name, flag in flags.items()})
        .order_by("pk")
    )
    for name in restrictions:
        using = [r for r in rewards if getattr(r, f"uses_{name}")]
        others = [r for r in rewards if not getattr(r, f"uses_{name}")]
        if using:
            prefetch_related_objects(using, name)
        if others:
            model = Reward._meta.get_field(name).related_model
            prefetch_related_objects(others, Prefetch(name, queryset=model.objects.none()))
    return rewards


def offers_popularity(*, offers: tuple[OfferConfig, ...]) -> dict[int, float]:
    """Popularity (0..1) of each live offer from its redemption counter (not configuration: read fresh)."""
    if not offers:
        return {}
    counts = dict(Offer.objects.filter(pk__in=[o.pk for o in offers]).values_list("pk", "redemptions_count"))
    values = ranking.popularity([counts.get(o.pk, 0) for o in offers])
    return {o.pk: float(v) for o, v in zip(offers, values, strict=True)}


def _catalog(
    program: Program, offers: tuple[OfferConfig, ...], rewards: list[Reward]
) -> tuple[ranking.Items, tuple[str, ...]]:
    items = ranking.Items.of(
        [offer_item(o, program=program, popularity=0.0) for o in offers]
        + [reward_item(r, program=program) for r in rewards]
    )
    return items, tuple(offer_gives(o) for o in offers) + tuple(reward_gives(r) for r in rewards)


def ranking_catalog(
    *, program: Program, offers: tuple[OfferConfig, ...], rewards: list[Reward]
) -> tuple[ranking.Items, tuple[str, ...]]:
    """What is ranked (offers then rewards, popularity left at 0) and what each gives, built once
    per configuration stamp and state of the rewards' ranked fields (their arrays are read-only)."""
    key = (
        "ranking_catalog",
        program.pk,
        tuple(o.pk for o in offers),
        tuple((r.pk, r.kind, r.value, r.points_cost) for r in rewards),
    )
    return config_cached(key, lambda: _catalog(program, offers, rewards))


def ranking_items(
    *, program: Program, offers: tuple[OfferConfig, ...], rewards: list[Reward]
) -> tuple[ranking.Items, tuple[str, ...]]:
    """The items to rank (offers then rewards) with the offers' popularity read now, and what
    each gives: shared by ``offers_for_member`` and the batch."""
    items, gives = ranking_catalog(program=program, offers=offers, rewards=rewards)
    popular = offers_popularity(offers=offers)
    values = np.array([popular[o.pk] for o in offers] + [0.0] * len(rewards), dtype=float)
    return dataclasses.replace(items, popularity=values), gives


@dataclass(frozen=True, slots=True)
class History:
    """A member's purchase history as ranking uses it (only read with personalization consent)."""

    total: float  # spend on lines in the window (amount less line discount)
    category_spend: dict[str, float]
    sku_spend: dict[str, float]
    basket: float  # average kept spend per counted purchase; DEFAULT_BASKET without purchases


def history_since(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=ranking.HISTORY_DAYS)


def _cents(expression) -> Cast:
    """Money as whole cents in a float: sums of integers are exact in any order, so one member's
    figures here and the batch's grouped sums are the same floats."""
    return Cast(Round(expression * 100), FloatField())


def member_history(*, member: Member, program: Program, skus: tuple[str, ...], now: dt.datetime) -> History:
    """Spend per category in the window and the typical basket in one statement (the basket as
    two scalar subqueries beside the grouped lines); spend on the named SKUs in a second one,
    only when offers name SKUs."""
    since = history_since(now)
    lines = PurchaseLine.objects.filter(
        purchase__member_id=member.pk, purchase__program_id=program.pk, purchase__occurred_at__gte=since
    )
    spend = _cents(F("amount") - F("discount"))
    kept = (
        Purchase.objects.filter(member_id=member.pk, program_id=program.pk, occurred_at__gte=since)
        .filter(purchase_counts())
        .order_by()
        .values("member_id")
    )
    rows = list(
        lines.order_by()
        .values("category")
        .annotate(
            v=Sum(spend),
            kept=Subquery(kept.annotate(s=Sum(_cents(F("eligible_amount") - F("returned_amount")))).values("s")),
            n=Subquery(kept.annotate(n=Count("id")).values("n")),
        )
        .values_list("category", "v", "kept", "n")
    )
    category_spend = {category or "": float(v) for category, v, _, _ in rows}
    sku_spend: dict[str, float] = {}
    if skus and rows:
        sku_spend = {
            s: float(v)
            for s, v in lines.filter(sku__in=skus).values("sku").annotate(v=Sum(spend)).values_list("sku", "v")
        }
    kept_cents, count = (rows[0][2], rows[0][3]) if rows else (None, 0)
    basket = float(kept_cents) / 100 / count if count else ranking.DEFAULT_BASKET
    return History(
        total=sum(category_spend.values()), category_spend=category_spend, sku_spend=sku_spend, basket=basket
    )


def member_recent(*, member: Member, now: dt.datetime) -> frozenset[tuple[str, int]]:
    """Items shown (any channel) or used recently: not new for the member (novelty). One
    statement: impressions, offer uses and reward redemptions as one UNION ALL."""
    shown_since = now - dt.timedelta(days=ranking.NOVELTY_SHOWN_DAYS)
    used_since = now - dt.timedelta(days=ranking.NOVELTY_USED_DAYS)
    none = Value(None, output_field=BigIntegerField())
    shown = (
        OfferImpression.objects.filter(member_id=member.pk, last_shown_at__gte=shown_since)
        .order_by()
        .values_list("offer_id", "reward_id")
    )
    used_offers = (
        OfferRedemption.objects.filter(
            member_id=member.pk, created_at__gte=used_since, status=RedemptionState.COMPLETED
        )
        .order_by()
        .values_list("offer_id", none)
    )
    used_rewards = (
        RewardRedemption.objects.filter(
            member_id=member.pk, created_at__gte=used_since, status=RedemptionState.COMPLETED
        )
        .order_by()
        .values_list(none, "reward_id")
    )
    return frozenset(
        (ranking.KIND_OFFER, offer_id) if offer_id is not None else (ranking.KIND_REWARD, reward_id)
        for offer_id, reward_id in shown.union(used_offers, used_rewards, all=True)
    )


def member_balance(*, member: Member, program: Program) -> int:
    found = (
        Account.objects.filter(member_id=member.pk, program_id=program.pk, kind=AccountKind.MEMBER)
        .values_list("available", flat=True)
        .first()
    )
    return int(found or 0)


def _rank(*, member: Member, program: Program, partner_id: int | None, limit: int | None, now: dt.datetime) -> Ranking:
    offers = offers_live(program=program, now=now)
    facts: MemberFacts = member_facts(member=member, program=program, offers=offers)
    rewards = rewards_active(program=program)
    items, gives = ranking_items(program=program, offers=offers, rewards=rewards)
    early = early_access_reward_ids(offers=offers, facts=facts, now=now)
    answers: list[Eligibility] = [
        offer_eligibility(offer=o, facts=facts, now=now, partner_id=partner_id) for o in offers
    ] + [reward_eligibility(reward=r, facts=facts, now=now, partner_id=partner_id, early_access=early) for r in rewards]
    personal = facts.personalization
    history = (
        member_history(member=member, program=program, skus=items.skus, now=now)
        if personal
        else History(total=0.0, category_spend={}, sku_spend={}, basket=ranking.DEFAULT_BASKET)
    )
    recent = member_recent(member=member, now=now) if personal else frozenset()
    balance = member_balance(member=member, program=program)
    members = ranking.Members(
        personal=np.array([personal]),
        basket=np.array([history.basket]),
        balance=np.array([float(balance)]),
        category_share=ranking.shares(history.category_spend, history.total, items.categories)[None, :],
        sku_share=ranking.shares(history.sku_spend, history.total, items.skus)[None, :],
        eligible=np.array([[a.ok for a in answers]], dtype=bool),
        fresh=np.array([[(i.kind, i.pk) not in recent for i in items.items]], dtype=bool),
    )
    scores = ranking.score(
        items=items,
        members=members,
        point_value=money_value(program.point_value),
        earn_rate=money_value(program.earn_rate),
    )
    positions = ranking.order(items=items, total=scores.total, limit=limit)[0]
    category_share = {c: v / history.total for c, v in history.category_spend.items()} if history.total > 0 else {}
    tier = program_tiers(program=program).tier(facts.tier_id)
    configs: list[OfferConfig | Reward] = [*offers, *rewards]
    row = scores.row(0)
    factor_rows = ranking.factor_table(scores, 0)
    totals = scores.total[0].tolist()
    ranked: list[RankedItem] = []
    for k in positions.tolist():
        if k < 0:
            break
        item, config, answer = items.items[k], configs[k], answers[k]
        is_reward = item.kind == ranking.KIND_REWARD
        ranked.append(
            RankedItem(
                rank=len(ranked) + 1,
                kind=item.kind,
                id=item.pk,
                title=config.name,
                description=config.description,
                gives=gives[k],
                score=totals[k],
                reasons=tuple(
                    ranking.reasons(
                        item=item,
                        row=row,
                        k=k,
                        personal=personal,
                        category_share=category_share,
                        balance=balance,
                        currency=program.currency,
                        tier_name=tier.name if tier else None,
                    )
                ),
                needs_activation=answer.needs_activation,
                activated=(not is_reward) and config.requires_activation and not answer.needs_activation,
                points_cost=item.points_cost if is_reward else None,
                points_missing=max(0, item.points_cost - balance) if is_reward else None,
                valid_until=config.valid_until,
                factors=factor_rows[k],
            )
        )
    not_eligible = tuple(
        NotEligible(kind=item.kind, id=item.pk, title=config.name, code=answer.code, reason=answer.reason)
        for item, config, answer in zip(items.items, configs, answers, strict=True)
        if not answer.ok
    )
    return Ranking(items=tuple(ranked), not_eligible=not_eligible, personalized=personal)


def _program(partner: Partner | None) -> Program:
    return partner_program(partner=partner) if partner is not None else program_default()


def _channel(channel: str) -> str:
    if not channel or len(channel) > CHANNEL_MAX:
        raise ValidationFailed(f"A channel of 1 to {CHANNEL_MAX} characters", code="channel_invalid")
    return channel


def offers_for_member(
    *, member: Member, channel: str, partner: Partner | None = None, limit: int | None = None
) -> list[RankedItem]:
    """The offers and rewards ``member`` may use now (at ``partner``, when a partner asks), best
    first, each with its score and the reasons in plain words. Every channel gets the same order;
    ``channel`` names where the list is shown (interfaces record impressions with
    ``offers.services.impressions.offer_impressions_record`` after showing it)."""
    _channel(channel)
    program = _program(partner)
    return list(
        _rank(
            member=member,
            program=program,
            partner_id=partner.pk if partner else None,
            limit=limit,
            now=clock.now(),
        ).items
    )


def offers_ranking_explained(*, member: Member, program: Program | None = None) -> Ranking:
    """Staff view: the member's whole ranking (as ``offers_for_member`` without a partner) and the
    offers and rewards they are not eligible for, each with eligibility's code and reason."""
    return _rank(member=member, program=program or program_default(), partner_id=None, limit=None, now=clock.now())
