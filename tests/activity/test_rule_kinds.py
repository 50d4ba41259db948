"""Earning-rule kinds are strategy classes: every kind staff can choose has one, and each gives what
its description says (the pure evaluation, no database)."""

from decimal import Decimal

from loyalty.activity import rules
from loyalty.activity.models import RuleKind

CTX = rules.Context(earn_rate=Decimal("1"))
LINES = [
    rules.Line(sku="A1", category="dairy", amount=Decimal("10.00")),
    rules.Line(sku="B2", category="bakery", amount=Decimal("5.00"), discount=Decimal("1.00")),
    rules.Line(sku="C3", category="tobacco", amount=Decimal("20.00")),
]


def rule(kind, **fields):
    return rules.Rule(id=fields.pop("id", 1), name=kind, kind=kind, **fields)


def test_every_rule_kind_staff_can_choose_has_a_strategy():
    assert set(rules.STRATEGIES) | {rules.EXCLUDE_CATEGORIES} == set(RuleKind.values)


def test_category_multiplier_adds_the_extra_rate_on_matching_spend_only():
    result = rules.evaluate(
        LINES, CTX, [rule("category_multiplier", categories=frozenset({"dairy"}), multiplier=Decimal("3"))]
    )
    assert result.points == 34 + 20  # base 34 (10 + 4 + 20) plus 2 × 10 on dairy
    assert result.awards == {1: 20}


def test_sku_multiplier_matches_skus_not_categories():
    result = rules.evaluate(LINES, CTX, [rule("sku_multiplier", skus=frozenset({"B2"}), multiplier=Decimal("2"))])
    assert result.points == 34 + 4


def test_bonus_kinds_give_their_fixed_points_once_when_a_line_matches():
    by_category = rule("category_bonus", categories=frozenset({"bakery"}), bonus_points=50)
    by_sku = rule("sku_bonus", id=2, skus=frozenset({"ZZ"}), bonus_points=70)
    result = rules.evaluate(LINES, CTX, [by_category, by_sku])
    assert result.points == 34 + 50
    assert result.awards == {1: 50}


def test_min_spend_bonus_needs_the_earn_base_to_reach_the_minimum():
    reached = rules.evaluate(LINES, CTX, [rule("min_spend_bonus", min_spend=Decimal("34"), bonus_points=10)])
    missed = rules.evaluate(LINES, CTX, [rule("min_spend_bonus", min_spend=Decimal("34.01"), bonus_points=10)])
    assert (reached.points, missed.points) == (44, 34)


def test_excluded_categories_leave_the_earn_base_before_any_strategy_runs():
    exclude = rule("exclude_categories", id=9, categories=frozenset({"tobacco"}))
    minimum = rule("min_spend_bonus", min_spend=Decimal("20"), bonus_points=10)
    result = rules.evaluate(LINES, CTX, [exclude, minimum])
    assert result.earn_base == Decimal("14.00")
    assert result.points == 14  # 14 < 20: no bonus


def test_multipliers_are_scaled_by_the_tier_but_bonuses_are_not():
    ctx = rules.Context(earn_rate=Decimal("1"), tier_multiplier=Decimal("2"), tier_name="Gold")
    multiplier = rule("category_multiplier", categories=frozenset({"dairy"}), multiplier=Decimal("2"))
    bonus = rule("category_bonus", id=2, categories=frozenset({"dairy"}), bonus_points=5)
    result = rules.evaluate(LINES, ctx, [multiplier, bonus])
    assert result.points == (34 + 10) * 2 + 5
