"""Personalized ranking (offers.ranking, offers.selectors.ranking.offers_for_member): each factor
moves the order as it should and names itself in the reasons; without personalization consent no
purchase history is read; ties are broken the same way every time; impressions add up."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loyalty.activity.services.purchases import purchase_record
from loyalty.core import clock
from loyalty.core.config import config_scope
from loyalty.core.errors import ValidationFailed
from loyalty.tiers.models import MemberTier, Tier
from members.models import ConsentPurpose
from members.services import consent_set
from offers import ranking
from offers.models import BenefitKind, Offer, OfferImpression, OfferStatus
from offers.selectors.ranking import offers_for_member, offers_ranking_explained
from offers.services.impressions import offer_impressions_record
from tests.factories import MemberFactory
from tests.offers.conftest import offer_make, reward_make

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)
_n = iter(range(10**6))


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(NOW)


def consenting(**kw):
    member = MemberFactory(**kw)
    consent_set(member=member, purpose=ConsentPurpose.PERSONALIZATION, granted=True, source="test")
    return member


def buy(member, *lines: tuple[str, str, str], days_ago: int = 10):
    """A purchase of (sku, category, amount) lines ``days_ago`` days before NOW."""
    return purchase_record(
        partner=None,
        member=member,
        external_id=f"rank-{next(_n)}",
        occurred_at=NOW - dt.timedelta(days=days_ago),
        lines=[{"sku": sku, "category": cat, "quantity": "1", "amount": amount} for sku, cat, amount in lines],
    )


def order(items) -> list[tuple[str, int]]:
    return [(item.kind, item.id) for item in items]


def ranked(member, **kw):
    return offers_for_member(member=member, channel="api", **kw)


@pytest.mark.django_db
def test_category_affinity_puts_what_the_member_buys_first_and_says_so(program):
    meat = offer_make(
        name="Double points on meat",
        benefit_kind=BenefitKind.BONUS_MULTIPLIER,
        benefit_multiplier=2,
        scope_categories=["Meat"],
    )
    dairy = offer_make(
        name="Double points on dairy",
        benefit_kind=BenefitKind.BONUS_MULTIPLIER,
        benefit_multiplier=2,
        scope_categories=["Dairy"],
    )
    member = consenting()
    buy(member, ("milk", "Dairy", "60.00"), ("steak", "Meat", "10.00"))
    items = ranked(member)
    assert order(items)[:2] == [("offer", dairy.pk), ("offer", meat.pk)]
    assert "You buy a lot of Dairy" in items[0].reasons
    assert not any(r.startswith("You buy a lot") for r in items[1].reasons), "Meat is 1/7 of spend: under 15%"
    assert items[0].score > items[1].score


@pytest.mark.django_db
def test_without_consent_no_history_is_read_and_the_reasons_say_so(program):
    meat = offer_make(
        name="Meat", benefit_kind=BenefitKind.BONUS_MULTIPLIER, benefit_multiplier=2, scope_categories=["Meat"]
    )
    dairy = offer_make(
        name="Dairy", benefit_kind=BenefitKind.BONUS_MULTIPLIER, benefit_multiplier=2, scope_categories=["Dairy"]
    )
    member = MemberFactory()
    buy(member, ("milk", "Dairy", "60.00"))
    offer_impressions_record(member=member, items=[type("I", (), {"kind": "offer", "id": meat.pk})()], channel="web")
    with CaptureQueriesContext(connection) as queries:
        items = ranked(member)
    read = " ".join(q["sql"] for q in queries.captured_queries)
    assert "ledger_purchaseline" not in read and "ledger_purchase" not in read, "no purchase history read"
    assert "offers_offerimpression" not in read, "no behaviour read either"
    assert order(items) == [("offer", meat.pk), ("offer", dairy.pk)], "equal without history: lower id first"
    assert items[0].score == items[1].score
    assert all(item.reasons[0] == ranking.NO_CONSENT_REASON for item in items)


@pytest.mark.django_db
def test_expected_value_ranks_the_bigger_benefit_higher(program):
    small = offer_make(name="10 bonus points", benefit_points=10)
    big = offer_make(name="500 bonus points", benefit_points=500)
    coupon = offer_make(name="2.00 off", benefit_kind=BenefitKind.AMOUNT_COUPON, benefit_value=2, benefit_points=None)
    items = ranked(MemberFactory())
    assert order(items) == [("offer", big.pk), ("offer", coupon.pk), ("offer", small.pk)]
    assert "Worth about 5.00 USD to you" in items[0].reasons, "500 points x 0.01"


@pytest.mark.django_db
def test_percent_coupon_is_worth_more_to_a_member_with_big_baskets(program):
    ten_off = offer_make(name="10% off", benefit_kind=BenefitKind.PERCENT_COUPON, benefit_value=10, benefit_points=None)
    fixed = offer_make(name="6.00 off", benefit_kind=BenefitKind.AMOUNT_COUPON, benefit_value=6, benefit_points=None)
    big_spender = consenting()
    buy(big_spender, ("tv", "Electronics", "200.00"))
    assert order(ranked(big_spender)) == [("offer", ten_off.pk), ("offer", fixed.pk)], "10% of 200 beats 6.00"
    small = consenting()
    buy(small, ("gum", "Sweets", "20.00"))
    assert order(ranked(small)) == [("offer", fixed.pk), ("offer", ten_off.pk)], "10% of 20 is 2.00"


@pytest.mark.django_db
def test_staff_priority_moves_an_offer_up(program):
    first = offer_make(name="A")
    second = offer_make(name="B")
    member = MemberFactory()
    assert order(ranked(member)) == [("offer", first.pk), ("offer", second.pk)]
    Offer.objects.filter(pk=second.pk).update(priority=2)
    items = ranked(member)
    assert order(items) == [("offer", second.pk), ("offer", first.pk)]
    assert "Recommended by the program" in items[0].reasons


@pytest.mark.django_db
def test_popularity_ranks_the_more_redeemed_offer_higher(program):
    quiet = offer_make(name="Quiet")
    popular = offer_make(name="Popular")
    Offer.objects.filter(pk=popular.pk).update(redemptions_count=40)
    Offer.objects.filter(pk=quiet.pk).update(redemptions_count=1)
    items = ranked(MemberFactory())
    assert order(items) == [("offer", popular.pk), ("offer", quiet.pk)]
    assert "Popular with members" in items[0].reasons and "Popular with members" not in items[1].reasons


@pytest.mark.django_db
def test_a_tier_only_offer_ranks_up_for_that_tier(program):
    Tier.objects.create(program=program, name="Base", rank=0)
    gold = Tier.objects.create(program=program, name="Gold", rank=5)
    everyone = offer_make(name="Everyone")
    golden = offer_make(name="Gold only", tiers=[gold])
    member = consenting()
    MemberTier.objects.create(member=member, program=program, tier=gold, earned_tier=gold, tier_since=NOW)
    items = ranked(member)
    assert order(items) == [("offer", golden.pk), ("offer", everyone.pk)]
    assert "For Gold members" in items[0].reasons


@pytest.mark.django_db
def test_novelty_an_offer_shown_recently_drops_below_a_new_one(program):
    first = offer_make(name="A")
    second = offer_make(name="B")
    member = consenting()
    items = ranked(member)
    assert order(items) == [("offer", first.pk), ("offer", second.pk)]
    assert "New for you" in items[0].reasons
    offer_impressions_record(member=member, items=items[:1], channel="portal")
    items = ranked(member)
    assert order(items) == [("offer", second.pk), ("offer", first.pk)], "shown in the portal: not new in the API"
    assert "New for you" not in items[1].reasons
    clock.set_now(NOW + dt.timedelta(days=ranking.NOVELTY_SHOWN_DAYS + 1))
    assert order(ranked(member)) == [("offer", first.pk), ("offer", second.pk)], "new again after two weeks"


@pytest.mark.django_db
def test_a_reward_the_member_can_almost_afford_ranks_up_with_points_to_go(program):
    far = reward_make(name="Far", points_cost=5000, value=5)
    near = reward_make(name="Near", points_cost=1000, value=5)
    member = consenting()
    buy(member, ("x", "Misc", "880.00"))  # 880 points at the default rate
    items = ranked(member)
    assert order(items) == [("reward", near.pk), ("reward", far.pk)]
    assert items[0].points_missing == 120 and items[0].points_cost == 1000
    assert "Only 120 points to go" in items[0].reasons
    assert items[1].points_missing == 4120 and not any("to go" in r for r in items[1].reasons)


@pytest.mark.django_db
def test_ineligible_offers_are_left_out_and_staff_see_their_codes(program):
    open_offer = offer_make(name="Open")
    paused = offer_make(name="Paused", valid_from=NOW + dt.timedelta(days=3))
    member = MemberFactory()
    assert order(ranked(member)) == [("offer", open_offer.pk)]
    explained = offers_ranking_explained(member=member)
    assert [(n.id, n.code) for n in explained.not_eligible] == [], "not live yet: not even considered"
    Offer.objects.filter(pk=paused.pk).update(valid_from=None, max_per_member=0)
    explained = offers_ranking_explained(member=member)
    assert [(n.kind, n.id, n.code) for n in explained.not_eligible] == [
        ("offer", paused.pk, "offer_member_limit_reached")
    ]
    assert [i.id for i in explained.items] == [open_offer.pk]


@pytest.mark.django_db
def test_activation_flags_and_limit(program):
    clip = offer_make(name="Clip me", requires_activation=True, benefit_points=400)
    plain = offer_make(name="Plain")
    member = MemberFactory()
    items = ranked(member, limit=1)
    assert len(items) == 1 and items[0].id == clip.pk
    assert items[0].needs_activation and not items[0].activated
    assert items[0].gives == "400 bonus points"
    assert [i.id for i in ranked(member)] == [clip.pk, plain.pk]


@pytest.mark.django_db
def test_every_channel_gets_the_same_order(program):
    for i in range(6):
        offer_make(name=f"O{i}", benefit_points=10 * (i % 3), priority=i % 2)
    reward_make(name="R", points_cost=50)
    member = consenting()
    assert (
        order(ranked(member))
        == order(offers_for_member(member=member, channel="portal"))
        == order(offers_for_member(member=member, channel="email"))
    )
    with pytest.raises(ValidationFailed):
        offers_for_member(member=member, channel="")


@pytest.mark.django_db
def test_impressions_count_showings_per_channel(program):
    offer = offer_make()
    reward = reward_make()
    member = MemberFactory()
    items = ranked(member)
    assert offer_impressions_record(member=member, items=items, channel="portal") == 2
    offer_impressions_record(member=member, items=items + items, channel="portal")
    offer_impressions_record(member=member, items=items[:1], channel="email")
    rows = {(r.offer_id, r.reward_id, r.channel): r.times for r in OfferImpression.objects.filter(member=member)}
    first = items[0]
    assert rows[(offer.pk, None, "portal")] == 2 and rows[(None, reward.pk, "portal")] == 2
    assert (
        len(rows) == 3 and rows[(first.id, None, "email") if first.kind == "offer" else (None, first.id, "email")] == 1
    )


@pytest.mark.django_db
def test_one_member_ranking_reads_a_bounded_number_of_statements(program, django_assert_max_num_queries):
    for i in range(30):
        offer_make(name=f"O{i}", benefit_points=i, scope_categories=[f"C{i % 4}"], status=OfferStatus.ACTIVE)
    for i in range(5):
        reward_make(name=f"R{i}", points_cost=100 * (i + 1))
    member = consenting()
    buy(member, ("a", "C1", "10.00"), ("b", "C2", "5.00"))
    ranked(member)  # warm the configuration cache
    with config_scope(), django_assert_max_num_queries(8):  # as in a request: one stamp read
        items = ranked(member)
    assert len(items) == 35
