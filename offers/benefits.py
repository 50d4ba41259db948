"""Offer benefits: what a member gets when an offer's condition is met.

django-oscar's Benefit design: each ``BenefitKind`` value is one small strategy class in
``BENEFITS``. A benefit either gives points for a purchase (``points``: a whole number and the
plain-words detail of how it was worked out) or issues a coupon (``coupon``: what the coupon is,
issued by ``offers.services.coupons.coupon_issue``), or neither (exclusive access is read by
reward eligibility, not by purchases). Pure over plain data, like ``offers.conditions``.

Bonus points of an offer are worked out per offer and rounded once, in the program's rounding
mode, so the explanation line, the offer's budget and ``OfferRedemption.points`` all hold the same
whole number; they are not multiplied by the partner or tier multipliers (the offer says what it
gives).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from loyalty.ledger.policy import round_points
from offers.conditions import ZERO, PurchaseContext, PurchaseLine


def plain(value: Decimal) -> str:
    """A number as people write it: 2 not 2.00, 1.5 not 1.5000, 10 not 1E+1."""
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class BenefitSpec:
    """The benefit fields of an offer (the model or its frozen configuration)."""

    kind: str
    multiplier: Decimal | None = None
    points: int | None = None
    value: Decimal | None = None
    sku: str = ""
    reward_id: int | None = None
    scope_categories: frozenset[str] = frozenset()
    scope_skus: frozenset[str] = frozenset()
    scope_partner_ids: frozenset[int] = frozenset()
    coupon_valid_days: int = 30

    @classmethod
    def of(cls, offer: Any, *, scope_partner_ids: frozenset[int] | None = None) -> BenefitSpec:
        """From anything with the ``Offer`` model's ``benefit_*`` and ``scope_*`` attributes.
        ``scope_partner_ids``: the offer's ``scope_partners`` (a many-to-many the caller read)."""
        return cls(
            kind=offer.benefit_kind,
            multiplier=offer.benefit_multiplier,
            points=offer.benefit_points,
            value=offer.benefit_value,
            sku=offer.benefit_sku or "",
            reward_id=offer.benefit_reward_id,
            scope_categories=frozenset(str(c) for c in offer.scope_categories or ()),
            scope_skus=frozenset(str(s) for s in offer.scope_skus or ()),
            scope_partner_ids=frozenset(scope_partner_ids or ()),
            coupon_valid_days=offer.coupon_valid_days,
        )

    def in_scope(self, line: PurchaseLine) -> bool:
        """A line the bonus counts: any line when no category or SKU scope is set, else a line in
        one of the scope's categories or SKUs."""
        if not self.scope_categories and not self.scope_skus:
            return True
        return line.category in self.scope_categories or line.sku in self.scope_skus

    def partner_in_scope(self, partner_id: int | None) -> bool:
        return not self.scope_partner_ids or partner_id in self.scope_partner_ids

    def scope_words(self) -> str:
        parts = sorted(self.scope_categories) + sorted(self.scope_skus)
        return f" on {', '.join(parts)}" if parts else ""


@dataclass(frozen=True, slots=True)
class PointsGrant:
    """Whole bonus points for a purchase and how they were worked out, in plain words."""

    points: int
    detail: str


@dataclass(frozen=True, slots=True)
class CouponGrant:
    """A coupon to issue: what it gives (``value``: percent or amount; ``sku``: a free item) and
    for how many days it is valid."""

    kind: str
    value: Decimal | None
    sku: str
    valid_days: int


class BenefitStrategy:
    """One kind of benefit. ``required``: the ``BenefitSpec`` fields it needs, each an offer field
    named in ``FIELD_NAMES`` (the admin form's errors per kind)."""

    gives_points: bool = False
    issues_coupon: bool = False
    required: tuple[str, ...] = ()

    def points(
        self, spec: BenefitSpec, purchase: PurchaseContext, earn_rate: Decimal, rounding: str
    ) -> PointsGrant | None:
        """Bonus points for this purchase; None when the benefit gives none for it."""
        return None

    def coupon(self, spec: BenefitSpec) -> CouponGrant | None:
        return None

    def describe(self, spec: BenefitSpec) -> str:
        raise NotImplementedError

    def errors(self, spec: BenefitSpec) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        for name in self.required:
            value = getattr(spec, name)
            if value is None or value == "" or (isinstance(value, (int, Decimal)) and value <= 0):
                errors[FIELD_NAMES[name]] = ["Required for this benefit (a positive value)."]
        return errors


FIELD_NAMES = {
    "multiplier": "benefit_multiplier",
    "points": "benefit_points",
    "value": "benefit_value",
    "sku": "benefit_sku",
    "reward_id": "benefit_reward",
}


class BonusMultiplier(BenefitStrategy):
    """Spend in scope earns ``multiplier`` times the program's rate: the extra is
    spend × rate × (multiplier − 1) ("double points on dairy" is multiplier 2)."""

    gives_points = True
    required = ("multiplier",)

    def points(
        self, spec: BenefitSpec, purchase: PurchaseContext, earn_rate: Decimal, rounding: str
    ) -> PointsGrant | None:
        if spec.multiplier is None or spec.multiplier <= 1 or not spec.partner_in_scope(purchase.partner_id):
            return None
        spend = sum((line.base for line in purchase.lines if spec.in_scope(line)), ZERO)
        if spend <= 0:
            return None
        points = round_points(spend * earn_rate * (spec.multiplier - 1), rounding)
        if points <= 0:
            return None
        return PointsGrant(points, f"{spend}{spec.scope_words()} × {plain(earn_rate)} × ({plain(spec.multiplier)} − 1)")

    def describe(self, spec: BenefitSpec) -> str:
        return f"{plain(spec.multiplier) if spec.multiplier else '?'}× points{spec.scope_words()}"

    def errors(self, spec: BenefitSpec) -> dict[str, list[str]]:
        if spec.multiplier is None or spec.multiplier <= 1:
            return {"benefit_multiplier": ["A multiplier above 1 is required for this benefit."]}
        return {}


class BonusFixed(BenefitStrategy):
    """``points`` extra when the purchase has a line in scope (any line when no scope is set)."""

    gives_points = True
    required = ("points",)

    def points(
        self, spec: BenefitSpec, purchase: PurchaseContext, earn_rate: Decimal, rounding: str
    ) -> PointsGrant | None:
        if not spec.points or not spec.partner_in_scope(purchase.partner_id):
            return None
        if not any(spec.in_scope(line) and line.base > 0 for line in purchase.lines):
            return None
        return PointsGrant(spec.points, f"fixed bonus{spec.scope_words()}")

    def describe(self, spec: BenefitSpec) -> str:
        return f"{spec.points} bonus points{spec.scope_words()}"


class _Coupon(BenefitStrategy):
    issues_coupon = True

    def coupon(self, spec: BenefitSpec) -> CouponGrant | None:
        return CouponGrant(kind=spec.kind, value=spec.value, sku=spec.sku, valid_days=spec.coupon_valid_days)


class PercentCoupon(_Coupon):
    required = ("value",)

    def describe(self, spec: BenefitSpec) -> str:
        return f"a coupon for {plain(spec.value) if spec.value else '?'}% off"

    def errors(self, spec: BenefitSpec) -> dict[str, list[str]]:
        if spec.value is None or not 0 < spec.value <= 100:
            return {"benefit_value": ["A percent between 0 and 100 is required for this benefit."]}
        return {}


class AmountCoupon(_Coupon):
    required = ("value",)

    def describe(self, spec: BenefitSpec) -> str:
        return f"a coupon for {spec.value} off"


class FreeItem(_Coupon):
    required = ("sku",)

    def describe(self, spec: BenefitSpec) -> str:
        return f"a coupon for a free {spec.sku}"


class ExclusiveAccess(BenefitStrategy):
    """Early access to a reward: members the offer applies to may redeem ``reward`` from its
    ``early_access_from`` (read by reward eligibility; a purchase gives nothing for it)."""

    required = ("reward_id",)

    def describe(self, spec: BenefitSpec) -> str:
        return "early access to a reward"


# Keys are the ``offers.models.BenefitKind`` values (this module stays free of models).
BENEFITS: dict[str, BenefitStrategy] = {
    "bonus_multiplier": BonusMultiplier(),
    "bonus_fixed": BonusFixed(),
    "percent_coupon": PercentCoupon(),
    "amount_coupon": AmountCoupon(),
    "free_item": FreeItem(),
    "exclusive_access": ExclusiveAccess(),
}
POINTS_KINDS = frozenset(kind for kind, strategy in BENEFITS.items() if strategy.gives_points)
COUPON_KINDS = frozenset(kind for kind, strategy in BENEFITS.items() if strategy.issues_coupon)


def benefit_points(
    spec: BenefitSpec, purchase: PurchaseContext, earn_rate: Decimal, rounding: str
) -> PointsGrant | None:
    strategy = BENEFITS.get(spec.kind)
    return strategy.points(spec, purchase, earn_rate, rounding) if strategy is not None else None


def benefit_coupon(spec: BenefitSpec) -> CouponGrant | None:
    strategy = BENEFITS.get(spec.kind)
    return strategy.coupon(spec) if strategy is not None else None


def benefit_describe(spec: BenefitSpec) -> str:
    strategy = BENEFITS.get(spec.kind)
    return strategy.describe(spec) if strategy is not None else spec.kind


def benefit_errors(spec: BenefitSpec) -> dict[str, list[str]]:
    strategy = BENEFITS.get(spec.kind)
    if strategy is None:
        return {"benefit_kind": ["Unknown benefit."]}
    return strategy.errors(spec)
