"""Exactly once under concurrency (threads on PostgreSQL): 16 submissions of one survey by one member
give one response, one reward entry and one event; concurrent purchases of a referred friend reward
the referral once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loyalty.activity.services import purchase_record
from loyalty.core import clock
from loyalty.engagement.models import Referral, ReferralSettings
from loyalty.ledger.models import Account, LedgerTransaction
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import OutboxEvent
from tests.concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_purchases_of_a_referred_friend_reward_the_referral_once(enroll, now):
    ReferralSettings.objects.create(program=program_default(), min_spend=Decimal("1"), updated_at=now)
    referrer = enroll()
    friend = enroll(referral_code=referrer.referral_code)
    lines = [{"sku": "A", "category": "food", "quantity": "1", "amount": "40.00"}]

    def buy(i):
        clock.set_now(now)
        return purchase_record(partner=None, member=friend, external_id=f"c{i}", occurred_at=now, lines=lines)

    results = run_together(12, buy)

    assert not [r for r in results if isinstance(r, BaseException)], results
    referral = Referral.objects.get(referee=friend)
    assert referral.status == "rewarded"
    assert LedgerTransaction.objects.filter(idempotency_key__startswith=f"referral:{referral.pk}:").count() == 2
    assert Account.objects.get(member=referrer).available == 500
    assert OutboxEvent.objects.filter(event_type="referral.qualified").count() == 1
