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

from loyalty.ledger.policy import round_points

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


def _matches(rule: Rule, line: Line) -> bool:
    if rule.kind.startswith("category"):
        return line.category in rule.categories
    if rule.kind.startswith("sku"):
        return line.sku in rule.skus
    return False


def _capped(rule: Rule, value: Decimal) -> Decimal:
    if rule.cap_left is None:
        return value
    return min(value, Decimal(max(rule.cap_left, 0)))


def evaluate(lines: list[Line], context: Context, rules: list[Rule]) -> Result:
    excluded = set().union(*(r.categories for r in rules if r.kind == "exclude_categories")) if rules else set()
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
        {"rule": "Base rate", "detail": f"{base} × {context.earn_rate}", "points": str(rated.normalize())}
    )
    extras, bonuses = ZERO, ZERO
    awards: dict[int, int] = {}
    applied_any, exclusive_applied = False, False
    for rule in sorted((r for r in rules if r.kind != "exclude_categories"), key=lambda r: (-r.priority, r.id)):
        if exclusive_applied:
            break
        if rule.kind in ("category_multiplier", "sku_multiplier"):
            matched = sum((line.base for line in eligible if _matches(rule, line)), ZERO)
            if not matched or rule.multiplier == 1:
                continue
            value = matched * context.earn_rate * (rule.multiplier - 1)
            detail = f"{matched} × {context.earn_rate} × ({rule.multiplier} − 1)"
        elif rule.kind in ("category_bonus", "sku_bonus"):
            if not any(_matches(rule, line) for line in eligible):
                continue
            value, detail = Decimal(rule.bonus_points), "fixed bonus"
        elif rule.kind == "min_spend_bonus":
            if base < rule.min_spend or not rule.bonus_points:
                continue
            value, detail = Decimal(rule.bonus_points), f"spend {base} ≥ {rule.min_spend}"
        else:
            continue
        if not rule.stackable and applied_any:
            continue
        value = _capped(rule, value)
        if value <= 0:
            explanation.append({"rule": rule.name, "detail": "cap reached", "points": "0"})
            continue
        if rule.kind.endswith("multiplier"):
            extras += value
        else:
            bonuses += value
        awards[rule.id] = int(value)
        explanation.append({"rule": rule.name, "detail": detail, "points": str(value.normalize())})
        applied_any = True
        exclusive_applied = not rule.stackable

    multiplied = (rated + extras) * context.partner_multiplier * context.tier_multiplier
    if context.partner_multiplier != 1:
        explanation.append({"rule": "Partner multiplier", "detail": f"× {context.partner_multiplier}"})
    if context.tier_multiplier != 1:
        explanation.append({"rule": f"Tier {context.tier_name}".strip(), "detail": f"× {context.tier_multiplier}"})
    total = round_points(multiplied + bonuses, context.rounding)
    explanation.append(
        {
            "rule": "Total",
            "detail": f"rounded {context.rounding.lower().replace('round_', '')} once",
            "points": str(total),
        }
    )
    return Result(points=max(total, 0), earn_base=base, explanation=explanation, awards=awards)
