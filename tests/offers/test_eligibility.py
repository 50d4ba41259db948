"""Eligibility of offers and rewards (offers.selectors.eligibility): the one place that decides who
may use an offer or redeem a reward, and the configuration cache it reads offers from."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.core.config import config_stamp
from loyalty.tiers.models import Tier
from members.models import ConsentPurpose, MemberStatus
from members.services import consent_set
from offers.models import BenefitKind, Offer, OfferActivation, OfferStatus
from offers.selectors.eligibility import (
    MemberFacts,
    early_access_reward_ids,
    member_facts,
    offer_eligibility,
    offers_eligible,
    offers_live,
    reward_eligibility,
)
from segments.models import Segment, SegmentMembership
from tests.factories import MemberFactory
from tests.offers.conftest import offer_make, reward_make

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


def facts(**kw) -> MemberFacts:
    values = dict(
        member_id=1,
        active=True,
        tier_id=None,
        tier_early_access=False,
        tier_exclusive_rewards=False,
        segment_ids=frozenset(),
        activated=frozenset(),
        used=(),
        exhausted=frozenset(),
        birth_month=None,
        personalization=False,
    )
    values.update(kw)
    return MemberFacts(**values)


def segment(name: str) -> Segment:
    return Segment.objects.create(name=name, kind="static", created_at=clock.now(), updated_at=clock.now())


def tier(program, name: str, rank: int, **kw) -> Tier:
    return Tier.objects.create(program=program, name=name, rank=rank, **kw)


@pytest.mark.django_db
def test_offer_window_status_and_partner_decide_with_stable_codes(program):
    clock.set_now(NOW)
    base = dict(program=program)
    cases = [
        (offer_make(**base, valid_from=NOW + dt.timedelta(days=1)), "offer_not_started"),
        (offer_make(**base, valid_until=NOW), "offer_ended"),
        (offer_make(**base, status=OfferStatus.PAUSED), "offer_not_active"),
    ]
    offers = {o.pk: o for o in Offer.objects.prefetch_related("partners", "tiers")}
    from offers.selectors.eligibility import OfferConfig

    for offer, code in cases:
        answer = offer_eligibility(offer=OfferConfig.of(offers[offer.pk]), facts=facts(), now=NOW)
        assert not answer and answer.code == code
    open_offer = OfferConfig.of(offer_make(**base))
    assert offer_eligibility(offer=open_offer, facts=facts(), now=NOW).ok
    assert offer_eligibility(offer=open_offer, facts=facts(active=False), now=NOW).code == "member_inactive"


@pytest.mark.django_db
def test_segments_include_and_exclude_and_tiers_pick_the_audience(program):
    from offers.selectors.eligibility import OfferConfig

    vip, churned = segment("VIP"), segment("Churned")
    gold = tier(program, "Gold", 5)
    offer = OfferConfig.of(
        offer_make(program=program, segments_include=[vip], segments_exclude=[churned], tiers=[gold])
    )
    assert offer_eligibility(offer=offer, facts=facts(tier_id=gold.pk, segment_ids=frozenset({vip.pk})), now=NOW).ok
    assert (
        offer_eligibility(offer=offer, facts=facts(tier_id=gold.pk, segment_ids=frozenset()), now=NOW).code
        == "offer_segment_excluded"
    ), "not in an included segment"
    assert (
        offer_eligibility(
            offer=offer, facts=facts(tier_id=gold.pk, segment_ids=frozenset({vip.pk, churned.pk})), now=NOW
        ).code
        == "offer_segment_excluded"
    ), "in an excluded segment, even when also included"
    assert (
        offer_eligibility(offer=offer, facts=facts(tier_id=None, segment_ids=frozenset({vip.pk})), now=NOW).code
        == "offer_tier_excluded"
    )


@pytest.mark.django_db
def test_limits_and_activation_read_from_the_facts(program):
    from offers.selectors.eligibility import OfferConfig

    offer = OfferConfig.of(offer_make(program=program, max_per_member=2, requires_activation=True))
    answer = offer_eligibility(offer=offer, facts=facts(), now=NOW)
    assert answer.ok and answer.needs_activation, "eligible, but the member must clip it first"
    assert not offer_eligibility(offer=offer, facts=facts(activated=frozenset({offer.pk})), now=NOW).needs_activation
    assert (
        offer_eligibility(offer=offer, facts=facts(used=((offer.pk, 2),)), now=NOW).code == "offer_member_limit_reached"
    )
    assert (
        offer_eligibility(offer=offer, facts=facts(exhausted=frozenset({offer.pk})), now=NOW).code == "offer_exhausted"
    )


@pytest.mark.django_db
def test_member_facts_read_segments_activations_uses_exhaustion_and_consent(program):
    clock.set_now(NOW)
    member = MemberFactory(birth_date=dt.date(1990, 6, 3))
    vip = segment("VIP")
    SegmentMembership.objects.create(segment=vip, member=member, entered_at=NOW)
    clip = offer_make(program=program, requires_activation=True, segments_include=[vip])
    spent = offer_make(program=program, points_budget=100)
    Offer.objects.filter(pk=spent.pk).update(points_issued=100)
    OfferActivation.objects.create(offer=clip, member=member, activated_at=NOW)
    consent_set(member=member, purpose=ConsentPurpose.PERSONALIZATION, granted=True, source="test")
    found = member_facts(member=member, program=program)
    assert found.segment_ids == {vip.pk}
    assert found.activated == {clip.pk}
    assert found.exhausted == {spent.pk}
    assert found.birth_month == 6 and found.personalization and found.active
    eligible = [offer.pk for offer, _ in offers_eligible(member=member, program=program, now=NOW)]
    assert eligible == [clip.pk], "the exhausted offer is not offered"


@pytest.mark.django_db
def test_an_inactive_member_is_eligible_for_nothing(program):
    member = MemberFactory()
    member.status = MemberStatus.SUSPENDED
    offer_make(program=program)
    assert offers_eligible(member=member, program=program) == []


@pytest.mark.django_db
def test_rewards_early_access_exclusive_tier_and_partner(program):
    clock.set_now(NOW)
    gold = tier(program, "Gold", 5, exclusive_rewards=True)
    early = reward_make(
        program=program,
        valid_from=NOW + dt.timedelta(days=7),
        early_access_from=NOW - dt.timedelta(days=1),
    )
    assert reward_eligibility(reward=early, facts=facts(), now=NOW).code == "reward_early_access_only"
    assert reward_eligibility(reward=early, facts=facts(tier_early_access=True), now=NOW).ok
    opener = offer_make(program=program, benefit_kind=BenefitKind.EXCLUSIVE_ACCESS, benefit_reward=early)
    opened = early_access_reward_ids(offers=offers_live(program=program, now=NOW), facts=facts(), now=NOW)
    assert opened == {early.pk}, f"offer {opener.pk} opens the reward early"
    assert reward_eligibility(reward=early, facts=facts(), now=NOW, early_access=opened).ok
    not_yet = reward_make(program=program, valid_from=NOW + dt.timedelta(days=7))
    assert reward_eligibility(reward=not_yet, facts=facts(tier_early_access=True), now=NOW).code == "reward_not_started"
    exclusive = reward_make(program=program, exclusive=True, tiers=[gold])
    assert reward_eligibility(reward=exclusive, facts=facts(), now=NOW).code == "reward_exclusive_tier"
    assert reward_eligibility(reward=exclusive, facts=facts(tier_id=gold.pk, tier_exclusive_rewards=True), now=NOW).ok
    assert reward_eligibility(reward=reward_make(program=program, is_active=False), facts=facts(), now=NOW).code == (
        "reward_inactive"
    )


@pytest.mark.django_db
def test_offers_are_cached_until_an_offer_or_its_audience_changes_but_not_when_counters_move(program):
    first = offer_make(program=program, name="A")
    assert [o.pk for o in offers_live(program=program)] == [first.pk]
    stamp = config_stamp()
    Offer.objects.filter(pk=first.pk).update(points_issued=5, redemptions_count=1)
    assert config_stamp() == stamp, "spending a budget is not a configuration change"
    second = offer_make(program=program, name="B")
    assert {o.pk for o in offers_live(program=program)} == {first.pk, second.pk}
    stamp = config_stamp()
    first.tiers.add(tier(program, "Silver", 2))
    assert config_stamp() != stamp, "a change of audience renews the stamp"


@pytest.mark.django_db
def test_every_offer_column_but_the_counters_renews_the_stamp(program):
    """The UPDATE trigger of offers_offer names its columns (to leave the counters out): a column
    added later and forgotten there would leave stale offers in the cache."""
    offer = offer_make(program=program)
    counters = {"redemptions_count", "points_issued"}
    for field in Offer._meta.concrete_fields:
        if field.primary_key or field.name in counters:
            continue
        stamp = config_stamp()
        Offer.objects.filter(pk=offer.pk).update(**{field.attname: getattr(offer, field.attname)})
        assert config_stamp() != stamp, f"updating {field.name} must renew the configuration stamp"
