"""Exactly once under concurrency (PostgreSQL, real threads): a challenge's completion is awarded
by one purchase of many at once, and by one of a purchase and a nightly run."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loyalty.core import clock
from loyalty.engagement.models import ChallengeCompletion, ChallengeProgress
from loyalty.engagement.services.challenges import challenge_progress_recompute
from loyalty.ledger.models import LedgerTransaction
from loyalty.partners.models import OutboxEvent
from tests.concurrency import run_together
from tests.engagement.challenge_helpers import T, buy, challenge
from tests.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def test_sixteen_concurrent_qualifying_purchases_award_the_challenge_once():
    c = challenge(category="Dairy", target=Decimal("3"), reward_points=100)
    member = MemberFactory()
    buy(member, "warm")  # the account exists: the 16 compete for its lock only

    results = run_together(16, lambda i: buy(member, f"till-{i}"))

    assert all(not isinstance(r, BaseException) for r in results), results
    assert ChallengeProgress.objects.get(challenge=c, member=member).value == 17
    assert ChallengeCompletion.objects.filter(challenge=c, member=member).count() == 1
    credits = LedgerTransaction.objects.filter(idempotency_key=f"challenge:{c.pk}:{member.pk}")
    assert credits.count() == 1 and credits.get().entries.filter(account__member=member).get().points == 100
    assert OutboxEvent.objects.filter(event_type="challenge.completed", member=member).count() == 1


def test_a_purchase_and_the_nightly_run_at_once_award_once():
    member = MemberFactory()
    buy(member, "one")
    buy(member, "two")
    c = challenge(category="Dairy", target=Decimal("3"), reward_points=50)
    c = type(c).objects.select_related("program").prefetch_related("tiers", "segments").get(pk=c.pk)
    buy(member, "three")  # the workflow gets to 1 (it counts from the challenge's creation) ...

    def act(i: int):
        if i == 0:
            return challenge_progress_recompute(challenge=c)  # ... the nightly run finds 3
        return buy(member, f"till-{i}")

    results = run_together(4, act)
    assert all(not isinstance(r, BaseException) for r in results), results
    challenge_progress_recompute(challenge=c)
    assert ChallengeCompletion.objects.filter(challenge=c, member=member).count() == 1
    assert LedgerTransaction.objects.filter(idempotency_key=f"challenge:{c.pk}:{member.pk}").count() == 1
    assert OutboxEvent.objects.filter(event_type="challenge.completed", member=member).count() == 1
