"""Capacity is exact under concurrency (PostgreSQL, real threads)."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.core.errors import Conflict
from loyalty.engagement.models import CommunityEvent, EventRegistration
from loyalty.engagement.services.events import event_register
from loyalty.ledger.selectors import program_default
from tests.concurrency import run_together
from tests.engagement.challenge_helpers import T
from tests.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_fifty_concurrent_registrations_for_ten_places_take_exactly_ten():
    clock.set_now(T)
    event = CommunityEvent.objects.create(
        program=program_default(),
        title="Charity day",
        kind="charity_day",
        starts_at=T + dt.timedelta(days=2),
        place="Park",
        capacity=10,
        is_published=True,
        created_at=T,
    )
    members = [MemberFactory() for _ in range(50)]

    results = run_together(50, lambda i: event_register(member=members[i], event_id=event.pk))

    taken = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(taken) == 10 and len(refused) == 40, [r for r in results if not isinstance(r, tuple | Conflict)]
    assert {r.code for r in refused} == {"community_event_full"}
    event.refresh_from_db()
    assert event.registered == 10 == EventRegistration.objects.filter(event=event, status="registered").count()


def test_one_member_registering_twice_at_once_holds_one_place():
    clock.set_now(T)
    event = CommunityEvent.objects.create(
        program=program_default(),
        title="Opening",
        kind="store_opening",
        starts_at=T + dt.timedelta(days=2),
        place="New store",
        capacity=5,
        is_published=True,
        created_at=T,
    )
    member = MemberFactory()
    results = run_together(8, lambda i: event_register(member=member, event_id=event.pk))
    assert all(isinstance(r, tuple) for r in results), results
    assert sum(1 for _, created in results if created) == 1
    event.refresh_from_db()
    assert event.registered == 1
