"""Birthdays and enrollment anniversaries: the daily set-based job rewards today's (in the
program's time zone), once per member, kind and year; 29 February on 28 February in other years."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.engagement.models import CelebrationAward, CelebrationPolicy, CelebrationReward
from loyalty.engagement.services.celebrations import celebration_days, celebrations_run
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import OutboxEvent
from loyalty.tiers.models import MemberTier, Tier, TierThreshold
from offers.models import Offer, OfferActivation
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

MAR5_NOON = dt.datetime(2030, 3, 5, 12, tzinfo=dt.UTC)


def _policy(time_zone="UTC", birthday=100, anniversary=None) -> CelebrationPolicy:
    policy = CelebrationPolicy.objects.create(program=program_default(), time_zone=time_zone)
    if birthday:
        CelebrationReward.objects.create(policy=policy, kind="birthday", points=birthday)
    if anniversary:
        CelebrationReward.objects.create(policy=policy, kind="anniversary", points=anniversary)
    return policy


def _member(birth_date=None, enrolled_at=None):
    if enrolled_at is not None:
        clock.set_now(enrolled_at)
    member = MemberFactory(birth_date=birth_date)
    ledger.account_open(member=member, program=program_default())
    return member


def _balance(member) -> int:
    return Account.objects.get(member=member, program=program_default()).available


def test_birthday_today_gets_its_points_once_even_when_the_job_runs_again():
    _policy(birthday=100)
    clock.set_now(MAR5_NOON)
    born_today, born_tomorrow, no_date = _member(dt.date(1990, 3, 5)), _member(dt.date(1990, 3, 6)), _member()
    [birthdays, anniversaries] = celebrations_run()
    assert (birthdays.awarded, birthdays.points, anniversaries.awarded) == (1, 100, 0)
    celebrations_run()  # the hourly re-run the same day
    assert _balance(born_today) == 100 and _balance(born_tomorrow) == 0 and _balance(no_date) == 0
    assert CelebrationAward.objects.get().year == 2030
    assert OutboxEvent.objects.filter(event_type="celebration.rewarded").count() == 1


def test_next_year_the_birthday_is_rewarded_again():
    _policy(birthday=100)
    clock.set_now(MAR5_NOON)
    member = _member(dt.date(1990, 3, 5))
    celebrations_run()
    clock.set_now(MAR5_NOON.replace(year=2031))
    celebrations_run()
    assert _balance(member) == 200
    assert sorted(CelebrationAward.objects.values_list("year", flat=True)) == [2030, 2031]


def test_29_february_birthdays_are_celebrated_on_28_february_in_other_years():
    assert celebration_days(dt.date(2031, 2, 28)) == ["02-28", "02-29"]
    assert celebration_days(dt.date(2032, 2, 28)) == ["02-28"]
    _policy(birthday=50)
    clock.set_now(dt.datetime(2031, 2, 28, 12, tzinfo=dt.UTC))
    leapling = _member(dt.date(2000, 2, 29))
    celebrations_run()
    assert _balance(leapling) == 50
    clock.set_now(dt.datetime(2032, 2, 28, 12, tzinfo=dt.UTC))  # a leap year: not yet ...
    celebrations_run()
    assert _balance(leapling) == 50
    clock.set_now(dt.datetime(2032, 2, 29, 12, tzinfo=dt.UTC))  # ... but on the day itself
    celebrations_run()
    assert _balance(leapling) == 100


def test_today_is_the_programs_local_day():
    _policy(time_zone="Asia/Tokyo", birthday=100)
    late_utc = dt.datetime(2030, 3, 4, 20, tzinfo=dt.UTC)  # 5 March, 05:00 in Tokyo
    clock.set_now(late_utc)
    born_5th, born_4th = _member(dt.date(1990, 3, 5)), _member(dt.date(1990, 3, 4))
    celebrations_run()
    assert _balance(born_5th) == 100 and _balance(born_4th) == 0
    assert CelebrationAward.objects.get().day == dt.date(2030, 3, 5)


def _gold(program) -> Tier:
    """Gold above a base tier (members without a tier status are in the base tier)."""
    Tier.objects.create(program=program, name="Member", rank=1)
    gold = Tier.objects.create(program=program, name="Gold", rank=3)
    TierThreshold.objects.create(tier=gold, metric="spend", minimum=1000)
    return gold


def test_the_reward_follows_the_members_tier_with_the_default_for_other_tiers():
    program = program_default()
    gold = _gold(program)
    policy = _policy(birthday=100)
    CelebrationReward.objects.create(policy=policy, kind="birthday", tier=gold, points=500)
    clock.set_now(MAR5_NOON)
    golden, plain = _member(dt.date(1980, 3, 5)), _member(dt.date(1981, 3, 5))
    MemberTier.objects.create(member=golden, program=program, tier=gold, earned_tier=gold, tier_since=MAR5_NOON)
    celebrations_run()
    assert _balance(golden) == 500 and _balance(plain) == 100


def test_without_a_default_row_only_the_named_tiers_are_rewarded():
    program = program_default()
    gold = _gold(program)
    policy = _policy(birthday=None)
    CelebrationReward.objects.create(policy=policy, kind="birthday", tier=gold, points=500)
    clock.set_now(MAR5_NOON)
    golden, plain = _member(dt.date(1980, 3, 5)), _member(dt.date(1981, 3, 5))
    MemberTier.objects.create(member=golden, program=program, tier=gold, earned_tier=gold, tier_since=MAR5_NOON)
    celebrations_run()
    assert _balance(golden) == 500 and _balance(plain) == 0


def test_enrollment_anniversary_is_rewarded_from_the_first_year_on_not_on_the_day_of_joining():
    _policy(birthday=None, anniversary=250)
    veteran = _member(enrolled_at=dt.datetime(2028, 3, 5, 9, tzinfo=dt.UTC))
    newcomer = _member(enrolled_at=dt.datetime(2030, 3, 5, 8, tzinfo=dt.UTC))
    clock.set_now(MAR5_NOON)
    [_, anniversaries] = celebrations_run()
    assert anniversaries.awarded == 1
    assert _balance(veteran) == 250 and _balance(newcomer) == 0


def test_a_birthday_offer_is_activated_for_the_member():
    program = program_default()
    offer = Offer.objects.create(
        program=program,
        name="Birthday treat",
        status="active",
        benefit_kind="bonus_fixed",
        benefit_points=10,
        requires_activation=True,
        created_at=MAR5_NOON,
        updated_at=MAR5_NOON,
    )
    policy = _policy(birthday=None)
    CelebrationReward.objects.create(policy=policy, kind="birthday", offer=offer)
    clock.set_now(MAR5_NOON)
    member = _member(dt.date(1990, 3, 5))
    celebrations_run()
    celebrations_run()
    assert OfferActivation.objects.filter(offer=offer, member=member, channel="birthday").count() == 1
    assert _balance(member) == 0


def test_inactive_members_and_inactive_policies_get_nothing():
    from members.models import Member

    policy = _policy(birthday=100)
    clock.set_now(MAR5_NOON)
    suspended = _member(dt.date(1990, 3, 5))
    Member.objects.filter(pk=suspended.pk).update(status="suspended")
    celebrations_run()
    assert _balance(suspended) == 0
    Member.objects.filter(pk=suspended.pk).update(status="active")
    policy.is_active = False
    policy.save()
    assert celebrations_run() == []
