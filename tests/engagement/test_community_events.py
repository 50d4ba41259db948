"""Community events: registration within capacity, cancel, and attendance checked in once by a
partner through POST /api/v1/events/ (event_attended) or by staff, awarding the event rule's points."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.activity.models import EventRule, MemberEvent
from loyalty.activity.services import event_record
from loyalty.core import clock
from loyalty.core.errors import Conflict, NotFound
from loyalty.engagement.models import CommunityEvent, EventRegistration
from loyalty.engagement.selectors.events import community_event_figures, member_community_events
from loyalty.engagement.services.events import event_register, event_registration_cancel
from loyalty.ledger.models import Account
from loyalty.ledger.selectors import program_default
from tests.api.conftest import key_client
from tests.engagement.challenge_helpers import T, event_type
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def community_event(**fields) -> CommunityEvent:
    fields.setdefault("program", program_default())
    fields.setdefault("title", "Cheese tasting")
    fields.setdefault("kind", "tasting")
    fields.setdefault("starts_at", T + dt.timedelta(days=3))
    fields.setdefault("place", "Main Street store")
    fields.setdefault("capacity", 2)
    fields.setdefault("is_published", True)
    fields.setdefault("created_at", T)
    return CommunityEvent.objects.create(**fields)


def test_members_take_places_until_the_event_is_full():
    event = community_event(capacity=2)
    first, second, third = MemberFactory(), MemberFactory(), MemberFactory()
    assert event_register(member=first, event_id=event.pk)[1] is True
    assert event_register(member=first, event_id=event.pk)[1] is False  # again: the same place
    event_register(member=second, event_id=event.pk)
    with pytest.raises(Conflict) as full:
        event_register(member=third, event_id=event.pk)
    assert full.value.code == "community_event_full"
    event.refresh_from_db()
    assert event.registered == 2


def test_cancelling_gives_the_place_back_and_the_member_may_register_again():
    event = community_event(capacity=1)
    member, other = MemberFactory(), MemberFactory()
    event_register(member=member, event_id=event.pk)
    event_registration_cancel(member=member, event_id=event.pk)
    event.refresh_from_db()
    assert event.registered == 0
    event_register(member=other, event_id=event.pk)
    with pytest.raises(Conflict):
        event_register(member=member, event_id=event.pk)
    event_registration_cancel(member=other, event_id=event.pk)
    registration, created = event_register(member=member, event_id=event.pk)
    assert created and registration.status == "registered" and registration.cancelled_at is None
    with pytest.raises(NotFound):
        event_registration_cancel(member=other, event_id=event.pk)


def test_unpublished_events_are_not_found_and_started_ones_are_closed():
    draft = community_event(is_published=False)
    started = community_event(starts_at=T - dt.timedelta(hours=1))
    member = MemberFactory()
    with pytest.raises(NotFound):
        event_register(member=member, event_id=draft.pk)
    with pytest.raises(Conflict) as closed:
        event_register(member=member, event_id=started.pk)
    assert closed.value.code == "community_event_started"


def test_portal_list_shows_places_left_and_the_members_own_registration():
    event = community_event(capacity=5)
    community_event(title="Draft", is_published=False)
    member = MemberFactory()
    event_register(member=member, event_id=event.pk)
    [card] = member_community_events(member=member, program=program_default(), now=T)
    assert (card.title, card.places_left, card.registered, card.attended) == ("Cheese tasting", 4, True, False)


# --- attendance ------------------------------------------------------------------------------------


@pytest.fixture
def attended_rule():
    kind = event_type("event_attended", "Community event attended")
    return EventRule.objects.create(program=program_default(), event_type=kind, points=40)


def _check_in(client, member, event_id, external_id="door-1"):
    return client.post(
        "/api/v1/events/",
        {
            "member_number": member.member_number,
            "event_type": "event_attended",
            "external_id": external_id,
            "community_event_id": event_id,
        },
        format="json",
    )


def test_partner_checks_in_a_registered_member_at_its_own_event_once(attended_rule):
    acme = key_client("Acme")
    event = community_event(partner=acme.partner)
    member = MemberFactory()
    event_register(member=member, event_id=event.pk)
    first = _check_in(acme, member, event.pk)
    assert first.status_code == 201, first.content
    assert first.json()["points"] == 40
    second = _check_in(acme, member, event.pk, external_id="door-2")  # scanned again at another door
    assert second.status_code == 200 and second.json()["event_id"] == first.json()["event_id"]
    assert MemberEvent.objects.filter(member=member, event_type__code="event_attended").count() == 1
    assert Account.objects.get(member=member).available == 40
    registration = EventRegistration.objects.get(event=event, member=member)
    assert registration.attended_at is not None and registration.attendance_id == first.json()["event_id"]
    assert community_event_figures(event_ids=[event.pk])[event.pk] == {"registered": 1, "attended": 1}


def test_another_partners_event_is_not_found_for_a_partner(attended_rule):
    acme, rival = key_client("Acme"), key_client("Rival")
    event = community_event(partner=acme.partner)
    member = MemberFactory()
    event_register(member=member, event_id=event.pk)
    refused = _check_in(rival, member, event.pk)
    assert refused.status_code == 404 and refused.json()["code"] == "community_event_not_found"
    assert refused["Content-Type"].startswith("application/problem+json")
    assert not MemberEvent.objects.filter(member=member).exists()
    unknown = _check_in(acme, member, event.pk + 1000)
    assert unknown.status_code == 404 and unknown.json()["code"] == "community_event_not_found"


def test_any_partner_of_the_program_checks_in_at_a_coalition_event(attended_rule):
    rival = key_client("Rival")
    event = community_event(partner=None)
    member = MemberFactory()
    event_register(member=member, event_id=event.pk)
    assert _check_in(rival, member, event.pk).status_code == 201


def test_a_member_without_a_place_is_refused_and_nothing_is_recorded(attended_rule):
    acme = key_client("Acme")
    event = community_event(partner=acme.partner)
    member = MemberFactory()
    refused = _check_in(acme, member, event.pk)
    assert refused.status_code == 409 and refused.json()["code"] == "community_event_not_registered"
    event_register(member=member, event_id=event.pk)
    event_registration_cancel(member=member, event_id=event.pk)
    assert _check_in(acme, member, event.pk, "door-2").status_code == 409
    assert not MemberEvent.objects.filter(member=member).exists()


def test_event_attended_needs_the_community_event_and_other_types_refuse_it(attended_rule):
    acme = key_client("Acme")
    member = MemberFactory()
    missing = acme.post(
        "/api/v1/events/",
        {"member_number": member.member_number, "event_type": "event_attended"},
        format="json",
    )
    assert missing.status_code == 422 and missing.json()["code"] == "community_event_required"
    event_type("app_login", "App login")
    other = acme.post(
        "/api/v1/events/",
        {"member_number": member.member_number, "event_type": "app_login", "community_event_id": 1},
        format="json",
    )
    assert other.status_code == 422 and other.json()["code"] == "community_event_unexpected"
    bad = acme.post(
        "/api/v1/events/",
        {"member_number": member.member_number, "event_type": "event_attended", "community_event_id": "x"},
        format="json",
    )
    assert bad.status_code == 400


def test_staff_check_in_awards_once_and_is_audited(attended_rule):
    from loyalty.core.models import AuditEvent
    from tests.factories import StaffFactory

    event = community_event()
    member = MemberFactory()
    event_register(member=member, event_id=event.pk)
    staff = StaffFactory()
    _event, created = event_record(
        partner=None,
        member_number=member.member_number,
        event_type="event_attended",
        community_event_id=event.pk,
        actor=staff,
    )
    again = event_record(
        partner=None, member_number=member.member_number, event_type="event_attended", community_event_id=event.pk
    )
    assert created and again[1] is False
    assert Account.objects.get(member=member).available == 40
    assert AuditEvent.objects.filter(action="community_event.checked_in").count() == 1
