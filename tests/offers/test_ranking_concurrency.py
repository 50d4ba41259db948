"""Concurrency of the ranking's writes on PostgreSQL, with real threads: impressions of the same
item add up on one row; two batch runs at once leave one run's rows, not a mix or duplicates."""

from __future__ import annotations

import pytest

from offers.models import MemberOfferRank, OfferImpression
from offers.services.impressions import offer_impressions_record
from offers.services.ranking import RankRun, member_offer_ranks_compute
from tests.concurrency import run_together
from tests.factories import MemberFactory
from tests.offers.conftest import offer_make, reward_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Shown:
    def __init__(self, kind: str, pk: int):
        self.kind, self.id = kind, pk


@pytest.mark.parametrize("run", range(5))
def test_twenty_concurrent_showings_of_the_same_items_count_twenty(run):
    member = MemberFactory()
    offer, reward = offer_make(), reward_make()
    items = [Shown("offer", offer.pk), Shown("reward", reward.pk)]
    results = run_together(20, lambda i: offer_impressions_record(member=member, items=items, channel="portal"))
    assert results == [2] * 20, [r for r in results if r != 2]
    rows = OfferImpression.objects.filter(member=member)
    assert sorted(r.times for r in rows) == [20, 20] and rows.count() == 2


def test_two_batch_runs_at_once_leave_one_complete_ranking():
    for i in range(4):
        offer_make(name=f"O{i}", benefit_points=10 * (i + 1))
    members = [MemberFactory() for i in range(6)]
    results = run_together(2, lambda i: member_offer_ranks_compute(top=3))
    assert all(isinstance(r, RankRun) for r in results), results
    assert MemberOfferRank.objects.count() == 3 * len(members)
    assert set(MemberOfferRank.objects.values_list("member_id", "rank")) == {
        (m.pk, rank) for m in members for rank in (1, 2, 3)
    }
