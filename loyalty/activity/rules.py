"""Earning-rule evaluation: a pure function of (purchase lines, member context, rules).

Points = (earn base × program rate + multiplier extras) × partner multiplier × tier multiplier
+ fixed bonuses, rounded once per purchase in the program's rounding mode. The earn base is
line amount − line discount (tax is not in line amounts) over lines not in excluded categories.
A rule that is not stackable, when it applies, is the only rule that does (highest priority wins).
Every applied rule adds one explanation line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from loyalty.ledger.policy import points_text, round_points

ZERO = Decimal("0")


@dataclass(frozen=True)
class Line:
    sku: str
    category: str
    amount: Decimal
    discount: Decimal = ZERO

    @property
    def base(self) -> Decimal:
        return self.amount - self.discount


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    kind: str
    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    multiplier: Decimal = Decimal("1")
    bonus_points: int = 0
    min_spend: Decimal = ZERO
    priority: int = 0
    stackable: bool = True
    cap_left: int | None = None  # points this rule may still give the member now (caps per day/month)


@dataclass(frozen=True)
class Context:
    earn_rate: Decimal
    rounding: str = "ROUND_DOWN"
    partner_multiplier: Decimal = Decimal("1")
    tier_multiplier: Decimal = Decimal("1")
    tier_name: str = ""


@dataclass
class Result:
    points: int
    earn_base: Decimal
    explanation: list[dict] = field(default_factory=list)
    awards: dict[int, int] = field(default_factory=dict)  # rule id -> whole points it contributed


def _capped(rule: Rule, value: Decimal) -> Decimal:
    if rule.cap_left is None:
        return value
    return min(value, Decimal(max(rule.cap_left, 0)))


@dataclass(frozen=True)
class Award:
    """What one rule gives a purchase: ``value`` points (a fraction until the one rounding) and why."""

    value: Decimal
    detail: str


class RuleKindStrategy:
    """One kind of earning rule: what it looks at and what it gives. A new kind is a new subclass
    registered in ``STRATEGIES`` under its ``RuleKind`` value, not another branch in ``evaluate``.

    ``multiplies``: its points join the base points before the partner and tier multipliers (a
    multiplier on part of the spend); otherwise they are a fixed bonus added after them."""

    multiplies: bool = False

    def award(self, rule: Rule, eligible: list[Line], base: Decimal, context: Context) -> Award | None:
        """What ``rule`` gives for these eligible lines (earn base ``base``); None when it does not apply."""
        raise NotImplementedError


class _Multiplier(RuleKindStrategy):
    multiplies = True

    def matches(self, rule: Rule, line: Line) -> bool:
        raise NotImplementedError

    def award(self, rule: Rule, eligible: list[Line], base: Decimal, context: Context) -> Award | None:
        matched = sum((line.base for line in eligible if self.matches(rule, line)), ZERO)
        if not matched or rule.multiplier == 1:
            return None
        value = matched * context.earn_rate * (rule.multiplier - 1)
        return Award(
            value=value,
            detail=f"{matched} × {points_text(context.earn_rate)} × ({points_text(rule.multiplier)} − 1)"
            f" = {points_text(value)}",
        )


class _Bonus(RuleKindStrategy):
    def matches(self, rule: Rule, line: Line) -> bool:
        raise NotImplementedError

    def award(self, rule: Rule, eligible: list[Line], base: Decimal, context: Context) -> Award | None:
        if not any(self.matches(rule, line) for line in eligible):
            return None
        return Award(value=Decimal(rule.bonus_points), detail="fixed bonus")


class _ByCategory:
    def matches(self, rule: Rule, line: Line) -> bool:
        return line.category in rule.categories


class _BySku:
    def matches(self, rule: Rule, line: Line) -> bool:
        return line.sku in rule.skus


class CategoryMultiplier(_ByCategory, _Multiplier):
    """Spend in the rule's categories earns ``multiplier`` times the base rate."""


class SkuMultiplier(_BySku, _Multiplier):
    """Spend on the rule's SKUs earns ``multiplier`` times the base rate."""


class CategoryBonus(_ByCategory, _Bonus):
    """A fixed bonus when any line is in the rule's categories."""


class SkuBonus(_BySku, _Bonus):
    """A fixed bonus when any line is one of the rule's SKUs."""


class MinSpendBonus(RuleKindStrategy):
    """A fixed bonus when the earn base reaches ``min_spend``."""

    def award(self, rule: Rule, eligible: list[Line], base: Decimal, context: Context) -> Award | None:
        if base < rule.min_spend or not rule.bonus_points:
            return None
        return Award(
            value=Decimal(rule.bonus_points), detail=f"spend {base} ≥ {rule.min_spend}: {rule.bonus_points} bonus"
        )


# Values are the ``RuleKind`` choices of loyalty.activity.models (this module stays free of models).
EXCLUDE_CATEGORIES = "exclude_categories"  # not a strategy: it shapes the earn base before any rule
STRATEGIES: dict[str, RuleKindStrategy] = {
    "category_multiplier": CategoryMultiplier(),
    "sku_multiplier": SkuMultiplier(),
    "category_bonus": CategoryBonus(),
    "sku_bonus": SkuBonus(),
    "min_spend_bonus": MinSpendBonus(),
}


def evaluate(lines: list[Line], context: Context, rules: list[Rule]) -> Result:
    excluded = set().union(*(r.categories for r in rules if r.kind == EXCLUDE_CATEGORIES)) if rules else set()
    eligible = [line for line in lines if line.category not in excluded]
    base = sum((line.base for line in eligible), ZERO)
    explanation: list[dict] = []
    if excluded and len(eligible) != len(lines):
        skipped = sum((line.base for line in lines if line.category in excluded), ZERO)
        explanation.append(
            {
                "rule": "Excluded categories",
                "detail": f"{skipped} of spend in {', '.join(sorted(excluded))} earns nothing",
            }
        )

    rated = base * context.earn_rate
    explanation.append(
        {
            "rule": "Base rate",
            "detail": f"{base} × {points_text(context.earn_rate)} = {points_text(rated)}",
            "points": points_text(rated),
        }
    )
    extras, bonuses = ZERO, ZERO
    awards: dict[int, int] = {}
    applied_any, exclusive_applied = False, False
    for rule in sorted((r for r in rules if r.kind in STRATEGIES), key=lambda r: (-r.priority, r.id)):
        if exclusive_applied:
            break
        strategy = STRATEGIES[rule.kind]
        award = strategy.award(rule, eligible, base, context)
        if award is None:
            continue
        if not rule.stackable and applied_any:
            continue
        value = _capped(rule, award.value)
        if value <= 0:
            explanation.append({"rule": rule.name, "detail": "cap reached", "points": "0"})
            continue
        if strategy.multiplies:
            extras += value
        else:
            bonuses += value
        awards[rule.id] = int(value)
        explanation.append({"rule": rule.name, "detail": award.detail, "points": points_text(value)})
        applied_any = True
        exclusive_applied = not rule.stackable

    multiplied = (rated + extras) * context.partner_multiplier * context.tier_multiplier
    if context.partner_multiplier != 1:
        explanation.append({"rule": "Partner multiplier", "detail": f"× {points_text(context.partner_multiplier)}"})
    if context.tier_multiplier != 1:
        explanation.append(
            {"rule": f"Tier {context.tier_name}".strip(), "detail": f"× {points_text(context.tier_multiplier)}"}
        )
    total = round_points(multiplied + bonuses, context.rounding)
    explanation.append(
        {
            "rule": "Total",
            "detail": f"rounded {context.rounding.lower().replace('round_', '')} once",
            "points": str(total),
        }
    )
    return Result(points=max(total, 0), earn_base=base, explanation=explanation, awards=awards)
