"""Each offer condition and benefit on fixtures, without the database (offers.conditions, offers.benefits)."""

import datetime as dt
from decimal import Decimal

import pytest

from offers.benefits import BENEFITS, BenefitSpec, benefit_coupon, benefit_errors, benefit_points
from offers.conditions import (
    CONDITIONS,
    BuyerFacts,
    ConditionSpec,
    PurchaseContext,
    PurchaseLine,
    condition_errors,
    condition_met,
)
from offers.models import BenefitKind, ConditionKind

D = Decimal
WEDNESDAY = dt.datetime(2030, 3, 13, 10, 0, tzinfo=dt.UTC)


def purchase(*lines, channel="store", partner_id=1, at=WEDNESDAY):
    return PurchaseContext(
        lines=tuple(PurchaseLine(sku=s, category=c, amount=D(a), discount=D(d)) for s, c, a, d in lines),
        partner_id=partner_id,
        channel=channel,
        occurred_at=at,
    )


BASKET = purchase(("MILK", "dairy", "20.00", "0"), ("BEER", "drinks", "30.00", "5.00"))
NOBODY = BuyerFacts()


def test_every_condition_and_benefit_kind_has_a_strategy():
    assert set(CONDITIONS) == set(ConditionKind.values)
    assert set(BENEFITS) == set(BenefitKind.values)


def test_always_is_met_by_any_purchase():
    assert condition_met(ConditionSpec(kind="always"), BASKET, NOBODY)


@pytest.mark.parametrize(("minimum", "met"), [("45.00", True), ("45.01", False)])
def test_min_spend_counts_line_amounts_less_line_discounts(minimum, met):
    # 20 + (30 − 5) = 45
    assert condition_met(ConditionSpec(kind="min_spend", min_spend=D(minimum)), BASKET, NOBODY) is met


def test_category_bought_needs_a_line_in_the_category():
    assert condition_met(ConditionSpec(kind="category_bought", categories=frozenset({"dairy"})), BASKET, NOBODY)
    assert not condition_met(ConditionSpec(kind="category_bought", categories=frozenset({"meat"})), BASKET, NOBODY)


def test_category_bought_ignores_a_line_fully_discounted():
    free = purchase(("MILK", "dairy", "2.00", "2.00"))
    assert not condition_met(ConditionSpec(kind="category_bought", categories=frozenset({"dairy"})), free, NOBODY)


def test_sku_bought_needs_the_sku():
    assert condition_met(ConditionSpec(kind="sku_bought", skus=frozenset({"BEER"})), BASKET, NOBODY)
    assert not condition_met(ConditionSpec(kind="sku_bought", skus=frozenset({"WINE"})), BASKET, NOBODY)


def test_purchase_count_counts_this_purchase_and_earlier_ones_inside_the_window():
    spec = ConditionSpec(kind="purchase_count", count=3, window_days=30)
    two_inside = BuyerFacts(earlier_purchases=(WEDNESDAY - dt.timedelta(days=1), WEDNESDAY - dt.timedelta(days=29)))
    one_inside = BuyerFacts(earlier_purchases=(WEDNESDAY - dt.timedelta(days=1), WEDNESDAY - dt.timedelta(days=31)))
    assert condition_met(spec, BASKET, two_inside)
    assert not condition_met(spec, BASKET, one_inside)


def test_first_purchase_only_without_any_earlier_purchase():
    spec = ConditionSpec(kind="first_purchase")
    assert condition_met(spec, BASKET, BuyerFacts(has_earlier_purchase=False))
    assert not condition_met(spec, BASKET, BuyerFacts(has_earlier_purchase=True))


def test_birthday_month_compares_the_purchase_month_with_the_birth_month():
    spec = ConditionSpec(kind="birthday_month")
    assert condition_met(spec, BASKET, BuyerFacts(birth_month=3))
    assert not condition_met(spec, BASKET, BuyerFacts(birth_month=4))
    assert not condition_met(spec, BASKET, BuyerFacts(birth_month=None))


def test_day_of_week_uses_iso_weekdays():
    assert condition_met(ConditionSpec(kind="day_of_week", days_of_week=frozenset({3})), BASKET, NOBODY)  # Wednesday
    assert not condition_met(ConditionSpec(kind="day_of_week", days_of_week=frozenset({6, 7})), BASKET, NOBODY)


def test_channel_matches_the_purchase_channel():
    spec = ConditionSpec(kind="channel", channels=frozenset({"online"}))
    assert condition_met(spec, purchase(("A", "x", "1", "0"), channel="online"), NOBODY)
    assert not condition_met(spec, BASKET, NOBODY)


def test_unknown_condition_is_never_met():
    assert not condition_met(ConditionSpec(kind="moon_phase"), BASKET, NOBODY)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ConditionSpec(kind="min_spend"), "condition_min_spend"),
        (ConditionSpec(kind="category_bought"), "condition_categories"),
        (ConditionSpec(kind="sku_bought"), "condition_skus"),
        (ConditionSpec(kind="purchase_count", count=3), "condition_window_days"),
        (ConditionSpec(kind="day_of_week", days_of_week=frozenset({8})), "condition_days_of_week"),
        (ConditionSpec(kind="channel", channels=frozenset({"fax"})), "condition_channels"),
    ],
)
def test_condition_fields_missing_for_the_kind_are_errors_on_that_field(spec, field):
    assert field in condition_errors(spec)


def test_complete_conditions_have_no_errors():
    assert condition_errors(ConditionSpec(kind="purchase_count", count=3, window_days=30)) == {}
    assert condition_errors(ConditionSpec(kind="always")) == {}


def test_double_points_on_dairy_gives_dairy_spend_times_rate_once_more():
    spec = BenefitSpec(kind="bonus_multiplier", multiplier=D("2"), scope_categories=frozenset({"dairy"}))
    grant = benefit_points(spec, BASKET, D("2"), "ROUND_DOWN")
    assert grant.points == 40  # 20.00 × 2 × (2 − 1)
    assert grant.detail == "20.00 on dairy × 2 × (2 − 1)"


def test_multiplier_without_scope_counts_the_whole_spend_rounded_down():
    spec = BenefitSpec(kind="bonus_multiplier", multiplier=D("1.5"))
    assert benefit_points(spec, BASKET, D("1"), "ROUND_DOWN").points == 22  # 45 × 0.5 = 22.5


def test_multiplier_with_sku_scope_counts_the_sku_net_of_discount():
    spec = BenefitSpec(kind="bonus_multiplier", multiplier=D("3"), scope_skus=frozenset({"BEER"}))
    assert benefit_points(spec, BASKET, D("1"), "ROUND_DOWN").points == 50  # 25 × 2


def test_multiplier_scoped_to_other_categories_gives_nothing():
    spec = BenefitSpec(kind="bonus_multiplier", multiplier=D("2"), scope_categories=frozenset({"meat"}))
    assert benefit_points(spec, BASKET, D("1"), "ROUND_DOWN") is None


def test_bonus_scoped_to_partners_gives_nothing_at_another_partner():
    spec = BenefitSpec(kind="bonus_fixed", points=100, scope_partner_ids=frozenset({7}))
    assert benefit_points(spec, BASKET, D("1"), "ROUND_DOWN") is None
    assert benefit_points(spec, purchase(("A", "x", "1", "0"), partner_id=7), D("1"), "ROUND_DOWN").points == 100


def test_fixed_bonus_needs_a_line_in_scope():
    spec = BenefitSpec(kind="bonus_fixed", points=75, scope_categories=frozenset({"drinks"}))
    grant = benefit_points(spec, BASKET, D("1"), "ROUND_DOWN")
    assert (grant.points, grant.detail) == (75, "fixed bonus on drinks")
    assert (
        benefit_points(
            BenefitSpec(kind="bonus_fixed", points=75, scope_skus=frozenset({"X"})), BASKET, D("1"), "ROUND_DOWN"
        )
        is None
    )


@pytest.mark.parametrize(
    ("kind", "value", "sku"),
    [("percent_coupon", D("10"), ""), ("amount_coupon", D("5.00"), ""), ("free_item", None, "COFFEE")],
)
def test_coupon_benefits_issue_a_coupon_and_give_no_points(kind, value, sku):
    spec = BenefitSpec(kind=kind, value=value, sku=sku, coupon_valid_days=14)
    assert benefit_points(spec, BASKET, D("1"), "ROUND_DOWN") is None
    grant = benefit_coupon(spec)
    assert (grant.kind, grant.value, grant.sku, grant.valid_days) == (kind, value, sku, 14)


def test_exclusive_access_gives_nothing_on_a_purchase():
    spec = BenefitSpec(kind="exclusive_access", reward_id=3)
    assert benefit_points(spec, BASKET, D("1"), "ROUND_DOWN") is None
    assert benefit_coupon(spec) is None


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (BenefitSpec(kind="bonus_multiplier", multiplier=D("1")), "benefit_multiplier"),
        (BenefitSpec(kind="bonus_fixed"), "benefit_points"),
        (BenefitSpec(kind="percent_coupon", value=D("120")), "benefit_value"),
        (BenefitSpec(kind="amount_coupon"), "benefit_value"),
        (BenefitSpec(kind="free_item"), "benefit_sku"),
        (BenefitSpec(kind="exclusive_access"), "benefit_reward"),
    ],
)
def test_benefit_fields_missing_for_the_kind_are_errors_on_that_field(spec, field):
    assert field in benefit_errors(spec)
