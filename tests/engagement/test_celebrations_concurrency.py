"""Two runs of the birthday job at once (two beat ticks, a retry) reward each member once (PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.engagement.models import CelebrationAward, CelebrationPolicy, CelebrationReward
from loyalty.engagement.services.celebrations import celebrations_run
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, LedgerTransaction
from loyalty.ledger.selectors import program_default
from tests.concurrency import run_together
from tests.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_runs_reward_each_birthday_once():
    clock.set_now(dt.datetime(2030, 3, 5, 12, tzinfo=dt.UTC))
    policy = CelebrationPolicy.objects.create(program=program_default())
    CelebrationReward.objects.create(policy=policy, kind="birthday", points=100)
    members = [MemberFactory(birth_date=dt.date(1990 + i, 3, 5)) for i in range(5)]
    for member in members:
        ledger.account_open(member=member, program=program_default())

    results = run_together(4, lambda i: celebrations_run())

    assert all(not isinstance(r, BaseException) for r in results), results
    assert sum(r[0].awarded for r in results) == 5
    assert CelebrationAward.objects.count() == 5
    assert LedgerTransaction.objects.filter(idempotency_key__startswith="celebration:").count() == 5
    assert sorted(Account.objects.filter(member__in=members).values_list("available", flat=True)) == [100] * 5
