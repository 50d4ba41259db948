"""Offer limits under concurrency on PostgreSQL with real threads: a points budget, a total number
of redemptions and a per-member limit are never passed, and the counters, the redemptions and the
ledger agree. 200 earns run on 20 connections at once (10 each: the server allows 100 connections
and other tests share it)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum

from loyalty.activity.services import enrollment_record
from loyalty.activity.services.purchases import purchase_record
from loyalty.core import clock
from loyalty.ledger.models import Entry
from members.models import EnrollmentSource
from offers.models import OfferRedemption
from tests.concurrency import run_together
from tests.offers.conftest import offer_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS, EACH = 20, 10


def members(n: int, run: int):
    return [enrollment_record(source=EnrollmentSource.STAFF, email=f"m{run}-{i}@example.com") for i in range(n)]


def earn(member, external_id: str):
    """A purchase of 1.00 (1 point by the rules) that the offer under test gives its bonus on."""
    return purchase_record(
        partner=None,
        member=member,
        external_id=external_id,
        occurred_at=clock.now() - dt.timedelta(seconds=1),
        lines=[{"sku": "A", "category": "food", "amount": "1.00"}],
    )


def bonus_in_ledger(people) -> int:
    """Points earned beyond the rules' 1 per purchase."""
    earned = Entry.objects.filter(account__member__in=people, kind="earn").aggregate(s=Sum("points"))["s"] or 0
    purchases = Entry.objects.filter(account__member__in=people, kind="earn").count()
    return earned - purchases


def redeemed(offer) -> tuple[int, int]:
    rows = OfferRedemption.objects.filter(offer=offer)
    return rows.count(), rows.aggregate(s=Sum("points"))["s"] or 0


@pytest.mark.parametrize("run", range(3))
def test_a_1000_point_budget_under_200_concurrent_10_point_earns_issues_exactly_1000(run):
    offer = offer_make(name="Budgeted", benefit_points=10, points_budget=1000)
    people = members(THREADS, run)

    def work(i):
        return [earn(people[i], f"b{run}-{i}-{k}").points for k in range(EACH)]

    results = run_together(THREADS, work)
    assert all(isinstance(r, list) for r in results), [r for r in results if not isinstance(r, list)]
    assert sum(len(r) for r in results) == THREADS * EACH
    offer.refresh_from_db()
    count, points = redeemed(offer)
    assert offer.points_issued == points == bonus_in_ledger(people) == 1000
    assert offer.redemptions_count == count == 100


@pytest.mark.parametrize("run", range(3))
def test_max_redemptions_under_concurrent_earns_is_exact(run):
    offer = offer_make(name="First 30", benefit_points=10, max_redemptions=30)
    people = members(THREADS, run)
    results = run_together(THREADS, lambda i: [earn(people[i], f"r{run}-{i}-{k}") for k in range(5)])
    assert all(isinstance(r, list) for r in results), results
    offer.refresh_from_db()
    assert offer.redemptions_count == redeemed(offer)[0] == 30
    assert offer.points_issued == bonus_in_ledger(people) == 300


@pytest.mark.parametrize("run", range(3))
def test_max_per_member_under_concurrent_purchases_of_one_member_is_exact(run):
    offer = offer_make(name="Three each", benefit_points=10, max_per_member=3)
    (member,) = members(1, run)
    results = run_together(THREADS, lambda i: earn(member, f"p{run}-{i}"))
    assert all(not isinstance(r, BaseException) for r in results), results
    assert sorted(r.points for r in results) == [1] * (THREADS - 3) + [11] * 3
    assert redeemed(offer) == (3, 30) == (3, bonus_in_ledger([member]))
