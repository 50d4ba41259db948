"""Which offers a purchase meets and what each would give: pure, over the prepared offers
(``offers.selectors.purchase.purchase_offers_live``), the purchase and what is known of the buyer.

Eligibility (tiers, segments, activation, per-member limits) is decided by
``offers.selectors.eligibility.offer_eligibility``; total limits and budgets by
``offers.services.offers.offer_uses_claim`` under the offer's row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from offers.benefits import BENEFITS, BenefitSpec, CouponGrant
from offers.conditions import CONDITIONS, BuyerFacts, ConditionSpec, PurchaseContext
from offers.selectors.eligibility import OfferConfig


@dataclass(frozen=True, slots=True)
class PreparedOffer:
    """A live offer with its condition and benefit read once per configuration stamp."""

    config: OfferConfig
    condition: ConditionSpec
    benefit: BenefitSpec

    @classmethod
    def of(cls, config: OfferConfig) -> PreparedOffer:
        return cls(
            config=config,
            condition=ConditionSpec.of(config),
            benefit=BenefitSpec.of(config, scope_partner_ids=config.scope_partner_ids),
        )

    @property
    def reads_history(self) -> bool:
        strategy = CONDITIONS.get(self.condition.kind)
        return strategy is not None and strategy.reads_history


@dataclass(frozen=True, slots=True)
class OfferUse:
    """What a purchase would take from one offer it meets: bonus ``points`` (with the plain-words
    ``detail``) or a ``coupon`` to issue."""

    offer: OfferConfig
    points: int = 0
    detail: str = ""
    coupon: CouponGrant | None = None
    reads_history: bool = False
    prepared: PreparedOffer | None = None


def offer_uses(
    offers: tuple[PreparedOffer, ...], purchase: PurchaseContext, *, earn_rate: Decimal, rounding: str
) -> list[OfferUse]:
    """What each offer would give this purchase by its benefit, at this partner (the offer's
    partners), and by its condition when the condition looks only at the purchase; offers whose
    condition reads the member's history are kept with ``reads_history`` for ``offer_uses_met``.
    Highest priority first, as ``offers`` come."""
    uses = []
    for offer in offers:
        config = offer.config
        if config.partner_ids and purchase.partner_id not in config.partner_ids:
            continue
        strategy = BENEFITS.get(offer.benefit.kind)
        if strategy is None:
            continue
        reads_history = offer.reads_history
        if not reads_history and not CONDITIONS[offer.condition.kind].is_met(offer.condition, purchase, BuyerFacts()):
            continue
        if strategy.gives_points:
            grant = strategy.points(offer.benefit, purchase, earn_rate, rounding)
            if grant is None:
                continue
            uses.append(OfferUse(config, grant.points, grant.detail, None, reads_history, offer))
        elif strategy.issues_coupon:
            coupon = strategy.coupon(offer.benefit)
            detail = f"{strategy.describe(offer.benefit)}, issued"
            uses.append(OfferUse(config, 0, detail, coupon, reads_history, offer))
    return uses


def offer_uses_met(uses: list[OfferUse], purchase: PurchaseContext, buyer: BuyerFacts) -> list[OfferUse]:
    """``uses`` whose condition the purchase meets, now that ``buyer`` is known (conditions that
    look only at the purchase were checked already)."""
    return [
        use
        for use in uses
        if not use.reads_history
        or (
            use.prepared is not None
            and CONDITIONS[use.prepared.condition.kind].is_met(use.prepared.condition, purchase, buyer)
        )
    ]
