"""Batch ranking (offers.services.ranking.member_offer_ranks_compute): the rows it stores are the
ranking ``offers_for_member`` gives each member, one by one, on a fixture where every factor and
every eligibility rule is in play; the management command and the Celery task run it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from loyalty.core import clock
from loyalty.tiers.models import MemberTier, Tier, TierThreshold
from members.models import ConsentPurpose, MemberStatus
from members.services import consent_set
from offers import tasks
from offers.models import BenefitKind, MemberOfferRank, Offer, OfferActivation, OfferRedemption, Reward
from offers.selectors.ranking import offers_for_member
from offers.services.impressions import offer_impressions_record
from offers.services.ranking import member_offer_ranks_compute
from segments.models import Segment, SegmentMembership
from tests.factories import MemberFactory
from tests.offers.conftest import offer_make, reward_make
from tests.offers.test_ranking import NOW, buy


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(NOW)


def stored(member) -> list[tuple[str, int, float]]:
    return [
        (r.kind, r.offer_id or r.reward_id, r.score)
        for r in MemberOfferRank.objects.filter(member=member).order_by("rank")
    ]


def one_by_one(member, top: int | None = None) -> list[tuple[str, int, float]]:
    return [(i.kind, i.id, i.score) for i in offers_for_member(member=member, channel="email", limit=top)]


@pytest.fixture
def base(program):
    """Members and offers where each factor and each eligibility rule changes something."""
    Tier.objects.create(program=program, name="Base", rank=0)
    gold = Tier.objects.create(program=program, name="Gold", rank=5, exclusive_rewards=True)
    TierThreshold.objects.create(tier=gold, metric="spend", minimum=10_000)  # reached only by hand here
    vip = Segment.objects.create(name="VIP", kind="static", created_at=NOW, updated_at=NOW)
    offers = [
        offer_make(
            name="Dairy x2", benefit_kind=BenefitKind.BONUS_MULTIPLIER, benefit_multiplier=2, scope_categories=["Dairy"]
        ),
        offer_make(
            name="Meat x3", benefit_kind=BenefitKind.BONUS_MULTIPLIER, benefit_multiplier=3, scope_categories=["Meat"]
        ),
        offer_make(name="Buy SKU milk-1", condition_kind="sku_bought", condition_skus=["milk-1"], benefit_points=30),
        offer_make(name="10% off", benefit_kind=BenefitKind.PERCENT_COUPON, benefit_value=10, benefit_points=None),
        offer_make(name="Gold only", tiers=[gold], benefit_points=50),
        offer_make(name="VIP only", segments_include=[vip], benefit_points=40),
        offer_make(name="Not for VIP", segments_exclude=[vip], benefit_points=40, priority=1),
        offer_make(name="Clip", requires_activation=True, benefit_points=70),
        offer_make(name="Once", max_per_member=1, benefit_points=60),
        offer_make(name="Spent budget", points_budget=10, benefit_points=5),
        offer_make(name="Plain A", benefit_points=20),
        offer_make(name="Plain B", benefit_points=20),
    ]
    Offer.objects.filter(name="Spent budget").update(points_issued=10)
    Offer.objects.filter(name="Plain B").update(redemptions_count=30)
    rewards = [
        reward_make(name="Coffee", points_cost=100, value=3),
        reward_make(name="Bag", points_cost=400, value=10),
        reward_make(name="Gold lounge", points_cost=300, exclusive=True, value=20),
        reward_make(name="10% voucher", kind="percent_coupon", points_cost=250, value=10),
        reward_make(name="Gold members' gift", points_cost=150, value=4, tiers=[gold]),
    ]
    members = [MemberFactory() for _ in range(8)]
    for member in members[:5]:
        consent_set(member=member, purpose=ConsentPurpose.PERSONALIZATION, granted=True, source="test")
    buy(members[0], ("milk-1", "Dairy", "80.00"), ("beef", "Meat", "20.00"))
    buy(members[0], ("milk-2", "Dairy", "30.00"), days_ago=40)
    buy(members[1], ("beef", "Meat", "300.00"))
    buy(members[2], ("apple", "Fruit", "90.00"), days_ago=400)  # outside the history window
    buy(members[5], ("milk-1", "Dairy", "250.00"))  # no consent: history unused
    MemberTier.objects.update_or_create(
        member=members[1], program=program, defaults={"tier": gold, "earned_tier": gold, "tier_since": NOW}
    )
    MemberTier.objects.update_or_create(
        member=members[6], program=program, defaults={"tier": gold, "earned_tier": gold, "tier_since": NOW}
    )
    SegmentMembership.objects.create(segment=vip, member=members[2], entered_at=NOW)
    SegmentMembership.objects.create(segment=vip, member=members[5], entered_at=NOW)
    clip = Offer.objects.get(name="Clip")
    OfferActivation.objects.create(offer=clip, member=members[3], activated_at=NOW)
    once = Offer.objects.get(name="Once")
    OfferRedemption.objects.create(offer=once, member=members[4], points=60, created_at=NOW - dt.timedelta(days=2))
    shown = [
        type("Shown", (), {"kind": "offer", "id": offers[10].pk})(),
        type("S", (), {"kind": "reward", "id": rewards[0].pk})(),
    ]
    offer_impressions_record(member=members[0], items=shown, channel="portal")
    offer_impressions_record(member=members[5], items=shown, channel="portal")
    members[7].status = MemberStatus.SUSPENDED
    members[7].save(update_fields=["status"])
    return members


@pytest.mark.django_db
def test_batch_stores_what_offers_for_member_gives_each_member(base):
    run = member_offer_ranks_compute(top=50, chunk=3)  # small chunks: members straddle them
    assert run.members == 7 and run.personalized == 5
    for member in base:
        assert [r[:2] for r in stored(member)] == [r[:2] for r in one_by_one(member)], member.pk
        for (_, _, batch_score), (_, _, single_score) in zip(stored(member), one_by_one(member), strict=True):
            assert batch_score == pytest.approx(single_score, abs=1e-9)
    assert stored(base[7]) == [], "a suspended member is eligible for nothing"
    gift = [("reward", r.pk) for r in Reward.objects.filter(name="Gold members' gift")]
    assert set(gift) <= {r[:2] for r in stored(base[1])} and not set(gift) & {r[:2] for r in stored(base[0])}
    assert len({tuple(r[:2] for r in stored(m)) for m in base}) >= 6, "the fixture gives members different rankings"
    assert run.rows == MemberOfferRank.objects.count() == sum(len(one_by_one(m)) for m in base)


@pytest.mark.django_db
def test_batch_keeps_the_top_n_and_a_new_run_replaces_the_last(base):
    member_offer_ranks_compute(top=3)
    assert [r[:2] for r in stored(base[0])] == [r[:2] for r in one_by_one(base[0], top=3)]
    assert MemberOfferRank.objects.count() == 3 * 7
    member_offer_ranks_compute(top=2)
    assert MemberOfferRank.objects.count() == 2 * 7, "the earlier run's rows are gone"


@pytest.mark.django_db
def test_the_command_and_the_task_run_the_batch(base, capsys):
    call_command("rank_offers", "--top", "4")
    assert "ranked 7 members" in capsys.readouterr().out
    assert MemberOfferRank.objects.count() == 4 * 7
    assert tasks.rank_offers_for_members(top=1) == 7
    assert MemberOfferRank.objects.count() == 7
