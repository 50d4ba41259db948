"""Refreshes of one segment from several threads on PostgreSQL: the row lock on the segment
serializes them, so there is never a duplicate open membership or a double event."""

import pytest

from loyalty.core import clock
from loyalty.ledger import services as ledger
from segments import services
from segments.models import SegmentEvent, SegmentMembership, SegmentRefresh
from tests.concurrency import run_together
from tests.segments.conftest import T0, buy, dynamic, member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("run", range(5))
def test_concurrent_refreshes_of_one_segment_write_each_change_once(run):
    clock.set_now(T0)
    program = ledger.program_create(name=f"Concurrency {run}")  # transactional tests flush the default one
    buyers = [member() for _ in range(6)]
    for person in buyers[:4]:
        buy(person, program=program)
    segment = dynamic(f"Buyers {run}", {"field": "purchase.count", "op": "gte", "value": 1})
    results = run_together(4, lambda i: services.segment_refresh(segment=segment))
    assert all(isinstance(r, SegmentRefresh) for r in results), results
    assert sorted(r.entered for r in results) == [0, 0, 0, 4]
    assert SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).count() == 4
    assert SegmentEvent.objects.filter(segment=segment).count() == 4
