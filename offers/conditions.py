"""Offer conditions: what a purchase (and the member making it) must meet for the offer to apply.

django-oscar's Condition design: each ``ConditionKind`` value is one small strategy class in
``CONDITIONS``; adding a kind adds a class, not a branch. Pure over plain data: a frozen
``PurchaseContext`` (the purchase as the till sent it) and ``BuyerFacts`` (what the workflow read
about the member's earlier purchases), so every kind is tested without the database.

Each strategy also says which of the offer's fields it needs (``required``: the admin form's
errors per kind) and how it reads in plain words (``describe``: the admin, the portal).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ZERO = Decimal("0")
WEEKDAYS = {1: "Monday", 2: "Tuesday", 3: "Wednesday", 4: "Thursday", 5: "Friday", 6: "Saturday", 7: "Sunday"}
MONTHS = (
    "January February March April May June July August September October November December".split()  # noqa: SIM905
)

# How a purchase reached the program (``purchase_record(channel=...)``): a channel condition names some of these.
PURCHASE_CHANNELS = {"store": "In store", "online": "Online", "app": "Mobile app"}


@dataclass(frozen=True, slots=True)
class PurchaseLine:
    sku: str
    category: str
    amount: Decimal
    discount: Decimal = ZERO

    @property
    def base(self) -> Decimal:
        """What the line earns on: amount less its discount (as ``activity.rules.Line``)."""
        return self.amount - self.discount


@dataclass(frozen=True, slots=True)
class PurchaseContext:
    """One purchase as the conditions and benefits see it; ``occurred_at`` in the project's time
    zone (day of week and birthday month are local dates)."""

    lines: tuple[PurchaseLine, ...]
    partner_id: int | None
    channel: str
    occurred_at: dt.datetime
    total: Decimal | None = None

    @property
    def spend(self) -> Decimal:
        """Line amounts less line discounts (tax is not in line amounts)."""
        return sum((line.base for line in self.lines), ZERO)

    @classmethod
    def of(
        cls,
        *,
        lines: list[dict[str, Any]],
        partner_id: int | None,
        channel: str,
        occurred_at: dt.datetime,
        total: Any = None,
    ) -> PurchaseContext:
        """From the line dicts ``purchase_record`` takes."""
        return cls(
            lines=tuple(
                PurchaseLine(
                    sku=str(line.get("sku", "")),
                    category=str(line.get("category", "")),
                    amount=Decimal(str(line.get("amount", 0))),
                    discount=Decimal(str(line.get("discount", 0) or 0)),
                )
                for line in lines
            ),
            partner_id=partner_id,
            channel=channel,
            occurred_at=occurred_at,
            total=Decimal(str(total)) if total is not None else None,
        )


@dataclass(frozen=True, slots=True)
class BuyerFacts:
    """What conditions read about the member beyond the purchase itself.

    ``earlier_purchases``: when the member's earlier purchases in the program happened, newest
    first, as far back as the longest purchase-count window of the live offers (the workflow reads
    them only when such an offer is live); ``has_earlier_purchase``: whether any exists at all
    (first-purchase offers). ``birth_month``: 1–12, or None when unknown."""

    birth_month: int | None = None
    earlier_purchases: tuple[dt.datetime, ...] = ()
    has_earlier_purchase: bool = False


@dataclass(frozen=True, slots=True)
class ConditionSpec:
    """The condition fields of an offer (the model or its frozen configuration)."""

    kind: str
    min_spend: Decimal | None = None
    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    count: int | None = None
    window_days: int | None = None
    days_of_week: frozenset[int] = frozenset()
    channels: frozenset[str] = frozenset()

    @classmethod
    def of(cls, offer: Any) -> ConditionSpec:
        """From anything with the ``Offer`` model's ``condition_*`` attributes."""
        return cls(
            kind=offer.condition_kind,
            min_spend=offer.condition_min_spend,
            categories=frozenset(str(c) for c in offer.condition_categories or ()),
            skus=frozenset(str(s) for s in offer.condition_skus or ()),
            count=offer.condition_count,
            window_days=offer.condition_window_days,
            days_of_week=frozenset(int(d) for d in offer.condition_days_of_week or ()),
            channels=frozenset(str(c) for c in offer.condition_channels or ()),
        )


class ConditionStrategy:
    """One kind of condition. ``required``: the ``ConditionSpec`` fields it needs (each a field of
    the offer named ``condition_<field>``); ``reads_history``: it needs ``BuyerFacts`` read from
    the member's earlier purchases (the workflow reads them only when such an offer is live)."""

    required: tuple[str, ...] = ()
    reads_history: bool = False

    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        raise NotImplementedError

    def describe(self, spec: ConditionSpec) -> str:
        raise NotImplementedError

    def errors(self, spec: ConditionSpec) -> dict[str, list[str]]:
        """What is missing or wrong for this kind, per offer field (empty: valid)."""
        errors: dict[str, list[str]] = {}
        for name in self.required:
            if not getattr(spec, name):
                errors[f"condition_{name}"] = ["Required for this condition."]
        return errors


class Always(ConditionStrategy):
    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        return True

    def describe(self, spec: ConditionSpec) -> str:
        return "any purchase"


class MinSpend(ConditionStrategy):
    required = ("min_spend",)

    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        return spec.min_spend is not None and purchase.spend >= spec.min_spend

    def describe(self, spec: ConditionSpec) -> str:
        return f"spend at least {spec.min_spend}"

    def errors(self, spec: ConditionSpec) -> dict[str, list[str]]:
        if spec.min_spend is None or spec.min_spend <= 0:
            return {"condition_min_spend": ["A positive amount is required for this condition."]}
        return {}


class CategoryBought(ConditionStrategy):
    required = ("categories",)

    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        return any(line.category in spec.categories and line.base > 0 for line in purchase.lines)

    def describe(self, spec: ConditionSpec) -> str:
        return f"buy something in {', '.join(sorted(spec.categories))}"


class SkuBought(ConditionStrategy):
    required = ("skus",)

    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        return any(line.sku in spec.skus and line.base > 0 for line in purchase.lines)

    def describe(self, spec: ConditionSpec) -> str:
        return f"buy {', '.join(sorted(spec.skus))}"


class PurchaseCount(ConditionStrategy):
    """The purchase is at least the member's ``count``-th in the last ``window_days`` days
    (this purchase included): "shop 3 times in 30 days"."""

    required = ("count", "window_days")
    reads_history = True

    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        if not spec.count or not spec.window_days:
            return False
        since = purchase.occurred_at - dt.timedelta(days=spec.window_days)
        earlier = sum(1 for at in buyer.earlier_purchases if since < at <= purchase.occurred_at)
        return earlier + 1 >= spec.count

    def describe(self, spec: ConditionSpec) -> str:
        return f"shop {spec.count} times in {spec.window_days} days"


class FirstPurchase(ConditionStrategy):
    reads_history = True

    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        return not buyer.has_earlier_purchase

    def describe(self, spec: ConditionSpec) -> str:
        return "your first purchase"


class BirthdayMonth(ConditionStrategy):
    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        return buyer.birth_month is not None and buyer.birth_month == purchase.occurred_at.month

    def describe(self, spec: ConditionSpec) -> str:
        return "a purchase in your birthday month"


class DayOfWeek(ConditionStrategy):
    """On the named ISO weekdays (1 = Monday) of the purchase's local date."""

    required = ("days_of_week",)

    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        return purchase.occurred_at.isoweekday() in spec.days_of_week

    def describe(self, spec: ConditionSpec) -> str:
        return "on " + ", ".join(WEEKDAYS.get(d, str(d)) for d in sorted(spec.days_of_week))

    def errors(self, spec: ConditionSpec) -> dict[str, list[str]]:
        if not spec.days_of_week:
            return {"condition_days_of_week": ["Pick at least one day for this condition."]}
        if not spec.days_of_week <= set(WEEKDAYS):
            return {"condition_days_of_week": ["Days are 1 (Monday) to 7 (Sunday)."]}
        return {}


class Channel(ConditionStrategy):
    required = ("channels",)

    def is_met(self, spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
        return purchase.channel in spec.channels

    def describe(self, spec: ConditionSpec) -> str:
        return "bought " + " or ".join(PURCHASE_CHANNELS.get(c, c).lower() for c in sorted(spec.channels))

    def errors(self, spec: ConditionSpec) -> dict[str, list[str]]:
        if not spec.channels:
            return {"condition_channels": ["Pick at least one channel for this condition."]}
        unknown = spec.channels - set(PURCHASE_CHANNELS)
        if unknown:
            return {"condition_channels": [f"Unknown channel: {', '.join(sorted(unknown))}."]}
        return {}


# Keys are the ``offers.models.ConditionKind`` values (this module stays free of models).
CONDITIONS: dict[str, ConditionStrategy] = {
    "always": Always(),
    "min_spend": MinSpend(),
    "category_bought": CategoryBought(),
    "sku_bought": SkuBought(),
    "purchase_count": PurchaseCount(),
    "first_purchase": FirstPurchase(),
    "birthday_month": BirthdayMonth(),
    "day_of_week": DayOfWeek(),
    "channel": Channel(),
}


def condition_met(spec: ConditionSpec, purchase: PurchaseContext, buyer: BuyerFacts) -> bool:
    """Whether the purchase meets the condition (an unknown kind never does)."""
    strategy = CONDITIONS.get(spec.kind)
    return strategy is not None and strategy.is_met(spec, purchase, buyer)


def condition_describe(spec: ConditionSpec) -> str:
    strategy = CONDITIONS.get(spec.kind)
    return strategy.describe(spec) if strategy is not None else spec.kind


def condition_errors(spec: ConditionSpec) -> dict[str, list[str]]:
    strategy = CONDITIONS.get(spec.kind)
    if strategy is None:
        return {"condition_kind": ["Unknown condition."]}
    return strategy.errors(spec)
