"""Referrals: a friend's code at enrollment records the referral; the friend's first qualifying
purchase rewards both once; the guards (self-referral by email, household or card, the monthly cap,
the spend and days) each hold; a full return within the return window reverses both rewards."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.activity.services import purchase_record, return_record
from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.engagement.models import CardFingerprint, Referral, ReferralSettings, ReferralStatus
from loyalty.engagement.selectors.referrals import referral_invites
from loyalty.engagement.services.referrals import card_fingerprint_digest, email_identity
from loyalty.ledger.models import Account, LedgerTransaction
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import OutboxEvent
from members.models import Member
from tests.engagement.conftest import T

pytestmark = pytest.mark.django_db


@pytest.fixture
def settings_on(now):
    program = program_default()
    program.pending_days = 14
    program.save()
    return ReferralSettings.objects.create(
        program=program,
        min_spend=Decimal("30"),
        within_days=30,
        referrer_points=500,
        referee_points=250,
        updated_at=now,
    )


def _buy(member, external_id, amount="40.00", at=None, card=""):
    lines = [{"sku": "A", "category": "food", "quantity": "1", "amount": amount}]
    return purchase_record(
        partner=None,
        member=member,
        external_id=external_id,
        occurred_at=at or clock.now(),
        lines=lines,
        card_fingerprint=card,
    )


def _available(member):
    return Account.objects.get(member=member).available


def test_enrolling_with_a_code_records_the_referral_and_the_referrer(enroll, settings_on):
    referrer = enroll()

    friend = enroll(referral_code=referrer.referral_code.lower(), referral_channel="link")

    referral = Referral.objects.get(referee=friend)
    assert (referral.referrer, referral.status, referral.channel) == (referrer, ReferralStatus.JOINED, "link")
    assert Member.objects.get(pk=friend.pk).referred_by == referrer


def test_an_unknown_code_is_refused_and_enrolls_nobody(enroll, settings_on):
    with pytest.raises(ValidationFailed) as refused:
        enroll(email="new@example.com", referral_code="NOPE1234")

    assert refused.value.code == "referral_code_invalid" and "referral_code" in refused.value.fields
    assert not Member.objects.filter(email="new@example.com").exists()


def test_the_same_mailbox_cannot_refer_itself(enroll, settings_on):
    referrer = enroll(email="ann.lee@gmail.com")

    with pytest.raises(ValidationFailed) as refused:
        enroll(email="annlee+friend@googlemail.com", referral_code=referrer.referral_code)

    assert refused.value.code == "self_referral" and not Referral.objects.exists()
    assert email_identity("Ann.Lee+x@Gmail.com") == "annlee@gmail.com"


def test_the_same_household_cannot_refer_itself(enroll, settings_on):
    referrer = enroll(last_name="Lee", postal_code="AB1 2CD")

    with pytest.raises(ValidationFailed) as refused:
        enroll(last_name="lee", postal_code="ab12cd", referral_code=referrer.referral_code)

    assert refused.value.code == "self_referral"
    enroll(last_name="Lee", postal_code="ZZ9 9ZZ", referral_code=referrer.referral_code)  # another household


def test_the_first_qualifying_purchase_rewards_both_once_with_lines_saying_why(enroll, settings_on):
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)

    _buy(friend, "p1")
    _buy(friend, "p2")

    referral = Referral.objects.get(referee=friend)
    assert (referral.status, referral.referrer_points, referral.referee_points) == ("rewarded", 500, 250)
    assert _available(referrer) == 500 and _available(friend) == 250  # the purchases' own points are pending
    referrer_tx = LedgerTransaction.objects.get(idempotency_key=f"referral:{referral.pk}:referrer")
    assert "your friend" in referrer_tx.reason and referrer_tx.explanation[0]["rule"] == "Referral bonus"
    assert OutboxEvent.objects.filter(event_type="referral.qualified").count() == 1


def test_a_purchase_below_the_minimum_spend_does_not_qualify_but_a_later_one_does(enroll, settings_on):
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)

    _buy(friend, "small", amount="10.00")
    assert Referral.objects.get(referee=friend).status == "joined"

    _buy(friend, "big", amount="35.00")
    assert Referral.objects.get(referee=friend).status == "rewarded"


def test_a_purchase_after_the_qualifying_days_does_not_qualify(enroll, settings_on):
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)
    clock.set_now(T + dt.timedelta(days=31))

    _buy(friend, "late")

    assert Referral.objects.get(referee=friend).status == "joined" and _available(referrer) == 0


def test_paying_with_the_referrers_card_qualifies_without_rewards(enroll, settings_on):
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)
    _buy(referrer, "own", card="card-fp-1")

    _buy(friend, "with-the-same-card", card="card-fp-1")

    referral = Referral.objects.get(referee=friend)
    assert (referral.status, referral.referrer_points) == ("qualified", 0) and "card" in referral.note
    assert _available(friend) == 0
    assert set(CardFingerprint.objects.values_list("digest", flat=True)) == {card_fingerprint_digest("card-fp-1")}
    assert not CardFingerprint.objects.filter(digest="card-fp-1").exists()  # stored hashed only


def test_the_monthly_cap_stops_rewards_for_that_referrer(enroll, settings_on):
    settings_on.monthly_cap = 1
    settings_on.save()
    referrer = enroll()
    first, second = enroll(referral_code=referrer.referral_code), enroll(referral_code=referrer.referral_code)

    _buy(first, "a")
    _buy(second, "b")

    statuses = dict(Referral.objects.values_list("referee_id", "status"))
    assert statuses == {first.pk: "rewarded", second.pk: "qualified"} and _available(referrer) == 500
    clock.set_now(T + dt.timedelta(days=25))  # April: a new month
    third = enroll(referral_code=referrer.referral_code)
    _buy(third, "c")
    assert Referral.objects.get(referee=third).status == "rewarded"


def test_a_full_return_within_the_window_reverses_both_rewards_once(enroll, settings_on):
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)
    _buy(friend, "p1")

    return_record(partner=None, purchase_external_id="p1", external_id="r1", amount="40.00")
    return_record(partner=None, purchase_external_id="p1", external_id="r1", amount="40.00")  # a repeat

    referral = Referral.objects.get(referee=friend)
    assert referral.status == "reversed" and _available(referrer) == 0 and _available(friend) == 0
    assert OutboxEvent.objects.filter(event_type="referral.reversed").count() == 1


def test_a_partial_return_keeps_the_rewards(enroll, settings_on):
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)
    _buy(friend, "p1")

    return_record(partner=None, purchase_external_id="p1", external_id="r1", amount="10.00")

    assert Referral.objects.get(referee=friend).status == "rewarded" and _available(referrer) == 500


def test_a_return_after_the_return_window_keeps_the_rewards(enroll, settings_on):
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)
    _buy(friend, "p1")
    clock.set_now(T + dt.timedelta(days=20))

    return_record(partner=None, purchase_external_id="p1", external_id="r1", amount="40.00")

    assert Referral.objects.get(referee=friend).status == "rewarded"


def test_the_reversal_takes_back_only_what_is_left_and_says_so(enroll, settings_on):
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)
    _buy(friend, "p1")
    from loyalty.ledger import services as ledger

    ledger.points_debit(account=Account.objects.get(member=referrer), points=300, reason="spent", kind="adjust")

    return_record(partner=None, purchase_external_id="p1", external_id="r1", amount="40.00")

    referral = Referral.objects.get(referee=friend)
    assert referral.status == "reversed" and _available(referrer) == 0
    assert referral.note == "300 points already spent were not taken back"


def test_the_referrer_sees_each_invite_by_first_name_and_status(enroll, settings_on):
    referrer = enroll()
    friend = enroll(first_name="Maya", referral_code=referrer.referral_code)
    _buy(friend, "p1")

    invites = referral_invites(member=referrer)

    assert [(i.first_name, i.status, i.points) for i in invites] == [("Maya", "rewarded", 500)]


def test_purchases_of_members_without_referral_nor_card_cost_no_statement_more(enroll, settings_on):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member = enroll()
    _buy(member, "warm")
    with CaptureQueriesContext(connection) as queries:
        _buy(member, "p2")
    assert not [q for q in queries.captured_queries if "engagement_" in q["sql"]]


def test_referral_events_name_the_friend_but_never_the_referrer(enroll, settings_on):
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)
    _buy(friend, "p1")
    return_record(partner=None, purchase_external_id="p1", external_id="r1", amount="40.00")

    for event in OutboxEvent.objects.filter(event_type__startswith="referral."):
        assert event.member_id == friend.pk and event.payload["member_number"] == friend.member_number
        assert referrer.member_number not in str(event.payload)
