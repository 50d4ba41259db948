"""Reads of rewards and coupons: what a partner honours, the catalog a member may redeem from,
the member's coupon wallet, and what a coupon gives.

A partner honours the rewards of its program (``ledger.selectors.partner_program``) whose
``partner`` is this partner or none (any partner of the program). It may see a coupon of its
program when it honours the coupon's reward, the coupon's offer applies at it, and, for a coupon
bound to a member, it may read that member (``partner_member_access``); anything else is
``coupon_not_found``, exactly like an unknown code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.functions import Upper

from loyalty.core import clock
from loyalty.core.errors import NotFound
from loyalty.ledger import selectors as ledger_selectors
from loyalty.partners.selectors import partner_member_access
from offers.models import (
    BenefitKind,
    Coupon,
    CouponStatus,
    RedemptionState,
    Reward,
    RewardKind,
    RewardRedemption,
)
from offers.selectors.eligibility import early_access_reward_ids, member_facts, offers_live, reward_eligibility

if TYPE_CHECKING:
    from loyalty.ledger.models import Program
    from loyalty.partners.models import Partner
    from members.models import Member

CENT = Decimal("0.01")


# --- rewards --------------------------------------------------------------------------------------


def rewards_for_partner(*, partner: Partner, program: Program | None = None) -> QuerySet[Reward]:
    """The active rewards ``partner`` honours: of its program, bound to it or to no partner."""
    program = program or ledger_selectors.partner_program(partner=partner)
    return (
        Reward.objects.filter(program=program, is_active=True)
        .filter(Q(partner__isnull=True) | Q(partner=partner))
        .order_by("points_cost", "name", "pk")
    )


def reward_for_partner(*, partner: Partner, reward_id: int) -> Reward:
    """One reward ``partner`` honours (active or not: a redemption says why it is refused), else
    ``reward_not_found`` exactly like an unknown id."""
    program = ledger_selectors.partner_program(partner=partner)
    found = (
        Reward.objects.filter(pk=reward_id, program=program)
        .filter(Q(partner__isnull=True) | Q(partner=partner))
        .first()
    )
    if found is None:
        raise NotFound("No such reward", code="reward_not_found")
    return found


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A reward as one member sees it: may they redeem it, can they afford it, how much is left."""

    reward: Reward
    eligible: bool
    code: str  # why not eligible ("" when eligible)
    reason: str
    affordable: bool
    points_missing: int
    limit_left: int | None  # redemptions this member has left (None: no per-member limit)
    stock: int | None  # items left (None: unlimited)

    @property
    def redeemable(self) -> bool:
        return (
            self.eligible
            and self.affordable
            and (self.limit_left is None or self.limit_left > 0)
            and (self.stock is None or self.stock > 0)
        )


def reward_catalog(
    *,
    member: Member,
    program: Program | None = None,
    partner: Partner | None = None,
    now: dt.datetime | None = None,
    only_eligible: bool = False,
) -> list[CatalogItem]:
    """The active rewards of the program (those ``partner`` honours when given) for ``member``:
    eligible or not and why, affordable or the points missing, the per-member limit left and the
    stock. Five queries whatever the number of rewards (rewards with their tiers and segments,
    the account, the member's redemptions per reward, and what eligibility reads)."""
    now = now or clock.now()
    if program is None:
        program = (
            ledger_selectors.partner_program(partner=partner)
            if partner is not None
            else ledger_selectors.program_default()
        )
    rewards = (
        rewards_for_partner(partner=partner, program=program)
        if partner is not None
        else Reward.objects.filter(program=program, is_active=True).order_by("points_cost", "name", "pk")
    )
    rewards = list(rewards.prefetch_related("tiers", "segments_include", "segments_exclude"))
    if not rewards:
        return []
    account = ledger_selectors.member_account(member=member, program=program)
    available = account.available if account is not None else 0
    taken = dict(
        RewardRedemption.objects.filter(
            member=member,
            reward__in=[r.pk for r in rewards if r.per_member_limit is not None],
            status=RedemptionState.COMPLETED,
        )
        .values("reward_id")
        .annotate(n=Count("id"))
        .values_list("reward_id", "n")
    )
    offers = offers_live(program=program, now=now)
    facts = member_facts(member=member, program=program, offers=offers, personalization=False)
    early = early_access_reward_ids(offers=offers, facts=facts, now=now)
    items = []
    for reward in rewards:
        answer = reward_eligibility(
            reward=reward, facts=facts, now=now, partner_id=partner.pk if partner else None, early_access=early
        )
        if only_eligible and not answer:
            continue
        items.append(
            CatalogItem(
                reward=reward,
                eligible=answer.ok,
                code=answer.code,
                reason=answer.reason,
                affordable=available >= reward.points_cost,
                points_missing=max(0, reward.points_cost - available),
                limit_left=None
                if reward.per_member_limit is None
                else max(0, reward.per_member_limit - taken.get(reward.pk, 0)),
                stock=reward.stock,
            )
        )
    return items


def reward_figures(*, rewards: QuerySet[Reward]) -> QuerySet[Reward]:
    """``rewards`` annotated for staff: ``redeemed`` (completed redemptions) and ``total_cost``
    (redeemed × cost to the business)."""
    return rewards.annotate(
        redeemed=Count("redemptions", filter=Q(redemptions__status=RedemptionState.COMPLETED)),
    ).annotate(
        total_cost=ExpressionWrapper(
            F("redeemed") * F("cost_to_business"), output_field=DecimalField(max_digits=16, decimal_places=2)
        )
    )


# --- coupons --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CouponBenefit:
    """What a coupon gives. ``kind``: ``amount`` or ``percent`` (a discount on the basket),
    ``free_item`` (``sku``), ``voucher`` (a partner voucher worth ``value``), ``experience``,
    ``donation``, or ``none`` (a code that gives nothing by itself, e.g. an imported one without
    an offer). ``discount``: the money off ``basket_total`` when one was given (amount: at most the
    basket; percent: rounded half up to the cent)."""

    kind: str
    value: Decimal | None = None
    sku: str = ""
    discount: Decimal | None = None


_REWARD_KINDS = {
    RewardKind.AMOUNT_COUPON: "amount",
    RewardKind.PERCENT_COUPON: "percent",
    RewardKind.FREE_PRODUCT: "free_item",
    RewardKind.PARTNER_VOUCHER: "voucher",
    RewardKind.EXPERIENCE: "experience",
    RewardKind.DONATION: "donation",
}
_OFFER_KINDS = {
    BenefitKind.AMOUNT_COUPON: "amount",
    BenefitKind.PERCENT_COUPON: "percent",
    BenefitKind.FREE_ITEM: "free_item",
}


def discount_on(*, kind: str, value: Decimal | None, basket_total: Decimal | None) -> Decimal | None:
    """Money off ``basket_total`` for an ``amount`` or ``percent`` coupon; None otherwise. Pure."""
    if basket_total is None or value is None or kind not in ("amount", "percent"):
        return None
    if kind == "amount":
        return min(value, basket_total).quantize(CENT)
    return (basket_total * value / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def coupon_benefit(*, coupon: Coupon, basket_total: Decimal | None = None) -> CouponBenefit:
    """What ``coupon`` gives (from its reward, else its offer), with the discount on
    ``basket_total`` when given."""
    if coupon.reward_id is not None:
        reward = coupon.reward
        kind, value, sku = _REWARD_KINDS.get(reward.kind, "none"), reward.value, reward.sku
    elif coupon.offer_id is not None and coupon.offer.benefit_kind in _OFFER_KINDS:
        offer = coupon.offer
        kind, value, sku = _OFFER_KINDS[offer.benefit_kind], offer.benefit_value, offer.benefit_sku
    else:
        kind, value, sku = "none", None, ""
    return CouponBenefit(
        kind=kind, value=value, sku=sku, discount=discount_on(kind=kind, value=value, basket_total=basket_total)
    )


def coupon_visible(*, coupon: Coupon, partner: Partner | None) -> bool:
    """May ``partner`` (None: staff, the member) see and use ``coupon``? Its program, the partner
    honouring its reward, its offer applying at the partner, and the member it is bound to."""
    if partner is None:
        return True
    if coupon.program_id != ledger_selectors.partner_program(partner=partner).pk:
        return False
    if coupon.reward_id is not None and coupon.reward.partner_id not in (None, partner.pk):
        return False
    if coupon.offer_id is not None:
        partner_ids = {p.pk for p in coupon.offer.partners.all()}
        if partner_ids and partner.pk not in partner_ids:
            return False
    return coupon.member_id is None or partner_member_access(partner=partner, member=coupon.member).read


def coupon_get(*, code: str, partner: Partner | None = None) -> Coupon:
    """The coupon with ``code`` (any case) that ``partner`` may see, else ``coupon_not_found``."""
    code = (code or "").strip()
    coupon = (
        Coupon.objects.annotate(code_upper=Upper("code"))
        .filter(code_upper=code.upper())  # the unique index on UPPER(code)
        .select_related("reward", "offer", "member")
        .first()
        if code and "\x00" not in code  # no code holds a NUL (PostgreSQL would refuse the query)
        else None
    )
    if coupon is None or not coupon_visible(coupon=coupon, partner=partner):
        raise NotFound("No coupon with this code", code="coupon_not_found")
    return coupon


@dataclass(frozen=True, slots=True)
class WalletCoupon:
    coupon: Coupon
    benefit: CouponBenefit
    uses_left: int


def coupon_wallet(*, member: Member, now: dt.datetime | None = None) -> list[WalletCoupon]:
    """The member's coupons they can still use now (active, started, not expired, uses left),
    soonest expiry first, each with what it gives. Two queries."""
    now = now or clock.now()
    coupons = (
        Coupon.objects.filter(member=member, status=CouponStatus.ACTIVE, uses_count__lt=F("max_uses"))
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=now))
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("reward", "offer")
        .order_by(F("expires_at").asc(nulls_last=True), "pk")
    )
    return [
        WalletCoupon(coupon=c, benefit=coupon_benefit(coupon=c), uses_left=c.max_uses - c.uses_count) for c in coupons
    ]
