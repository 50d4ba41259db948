"""Staff screens of engagement: completion rates on the challenge list and change page, the
check-in action, refusals as form errors, and what each role may not do (403)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from loyalty.activity.models import EventRule
from loyalty.core import clock
from loyalty.core.models import AuditEvent
from loyalty.engagement.models import CelebrationPolicy, Challenge, CommunityEvent, EventRegistration
from loyalty.engagement.services.events import event_register
from loyalty.ledger.models import Account
from loyalty.ledger.selectors import program_default
from tests.engagement.challenge_helpers import T, buy, challenge, event_type
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def _client(role: str) -> Client:
    user = get_user_model().objects.create_user(f"eng-{role}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_challenge_list_and_change_page_show_the_completion_rate():
    c = challenge(category="Dairy", target=Decimal("1"))
    buy(MemberFactory(), "a")
    challenge_two = challenge(name="Nobody yet")
    client = _client("Analyst")
    listing = client.get("/admin/engagement/challenge/")
    assert listing.status_code == 200
    assert "1 of 1 (100%)" in listing.content.decode() and "no participants yet" in listing.content.decode()
    page = client.get(f"/admin/engagement/challenge/{c.pk}/change/").content.decode()
    assert "1 members completed it, of 1 taking part" in page and "<svg" in page
    assert client.get(f"/admin/engagement/challenge/{challenge_two.pk}/change/").status_code == 200


def test_marketing_creates_a_challenge_and_it_is_audited():
    client = _client("Marketing")
    response = client.post(
        "/admin/engagement/challenge/add/",
        {
            "program": program_default().pk,
            "name": "Spend 200 this quarter",
            "kind": "spend",
            "target": "200",
            "starts_at_0": "2030-04-01",
            "starts_at_1": "00:00:00",
            "ends_at_0": "2030-07-01",
            "ends_at_1": "00:00:00",
            "reward_points": "150",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Challenge.objects.get(name="Spend 200 this quarter")
    assert created.created_at is not None
    assert AuditEvent.objects.filter(action="challenge.created", target_id=str(created.pk)).exists()


@pytest.mark.parametrize("role", ["Support", "Analyst"])
def test_only_marketing_designs_challenges_and_events(role):
    client = _client(role)
    assert client.post("/admin/engagement/challenge/add/", {"name": "x"}).status_code == 403
    assert client.post("/admin/engagement/communityevent/add/", {"title": "x"}).status_code == 403


def test_check_in_action_awards_the_event_rule_once_and_reports_refusals():
    EventRule.objects.create(program=program_default(), event_type=event_type("event_attended", "Attended"), points=25)
    event = CommunityEvent.objects.create(
        program=program_default(),
        title="Tasting",
        starts_at=T + dt.timedelta(days=1),
        place="Store",
        capacity=5,
        is_published=True,
        created_at=T,
    )
    member = MemberFactory()
    event_register(member=member, event_id=event.pk)
    registration = EventRegistration.objects.get()
    client = _client("Marketing")
    for _ in range(2):
        response = client.post(
            "/admin/engagement/eventregistration/",
            {"action": "check_in_attendance", "_selected_action": [registration.pk]},
            follow=True,
        )
        assert response.status_code == 200
    assert Account.objects.get(member=member).available == 25
    registration.refresh_from_db()
    assert registration.attended_at is not None
    assert AuditEvent.objects.filter(action="community_event.checked_in").count() == 1


def test_support_may_not_check_members_in():
    client = _client("Support")
    response = client.get("/admin/engagement/eventregistration/")
    assert response.status_code == 200 and "check_in_attendance" not in response.content.decode()


def test_capacity_below_the_places_taken_is_a_form_error():
    event = CommunityEvent.objects.create(
        program=program_default(),
        title="Opening",
        starts_at=T + dt.timedelta(days=1),
        place="Store",
        capacity=2,
        is_published=True,
        created_at=T,
    )
    event_register(member=MemberFactory(), event_id=event.pk)
    event_register(member=MemberFactory(), event_id=event.pk)
    client = _client("Marketing")
    response = client.post(
        f"/admin/engagement/communityevent/{event.pk}/change/",
        {
            "program": program_default().pk,
            "title": "Opening",
            "kind": "other",
            "starts_at_0": "2030-05-11",
            "starts_at_1": "12:00:00",
            "place": "Store",
            "capacity": "1",
            "is_published": "on",
        },
    )
    assert response.status_code == 200 and "2 places are taken" in response.content.decode()
    event.refresh_from_db()
    assert event.capacity == 2


def test_an_unknown_time_zone_is_a_form_error():
    client = _client("Marketing")
    response = client.post(
        "/admin/engagement/celebrationpolicy/add/",
        {
            "program": program_default().pk,
            "time_zone": "Mars/Olympus",
            "is_active": "on",
            "rewards-TOTAL_FORMS": "0",
            "rewards-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200 and "Not a time zone name" in response.content.decode()
    assert not CelebrationPolicy.objects.exists()
