"""Portal pages of engagement: challenges with a progress bar and badges, events to book and
cancel; a member reaches only their own (another member's registration: 404), query counts pinned."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.core import clock
from loyalty.engagement.models import CommunityEvent, EventRegistration
from loyalty.engagement.services.events import event_register
from loyalty.ledger.selectors import program_default
from tests.engagement.challenge_helpers import T, badge, buy, challenge
from tests.portal.conftest import logged_in, make_member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def _event(**fields) -> CommunityEvent:
    fields.setdefault("program", program_default())
    fields.setdefault("title", "Cheese tasting")
    fields.setdefault("starts_at", T + dt.timedelta(days=2))
    fields.setdefault("place", "Main Street")
    fields.setdefault("capacity", 3)
    fields.setdefault("is_published", True)
    fields.setdefault("created_at", T)
    return CommunityEvent.objects.create(**fields)


def test_challenges_page_shows_progress_in_words_with_a_bar_and_the_badges(django_assert_max_num_queries):
    fan = badge("Dairy fan", "leaf")
    challenge(category="Dairy", target=Decimal("3"), badge=fan, reward_points=100)
    challenge(name="One dairy", category="Dairy", target=Decimal("1"), badge=badge("First sip", "star"))
    member = make_member()
    buy(member, "p1")
    client = logged_in(member)
    with django_assert_max_num_queries(14):
        page = client.get("/challenges/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Goal: 3 purchases in Dairy" in html and "1 of 3 done" in html
    assert '<progress id="progress-' in html and 'value="33"' in html
    assert "You get 100 points and the Dairy fan badge." in html
    assert "First sip</strong> — earned" in html  # earned by the one-purchase challenge
    assert "/static/engagement/badges/leaf.svg" in html


def test_an_opt_in_challenge_is_joined_from_the_page():
    c = challenge(category="Dairy", target=Decimal("2"), requires_opt_in=True)
    member = make_member()
    client = logged_in(member)
    assert "Join this challenge" in client.get("/challenges/").content.decode()
    response = client.post(f"/challenges/{c.pk}/join/", follow=True)
    assert "You joined the challenge" in response.content.decode()
    assert "0 of 2 done" in response.content.decode()
    assert client.post(f"/challenges/{c.pk + 99}/join/").status_code == 404
    assert client.get(f"/challenges/{c.pk}/join/").status_code == 405


def test_events_page_books_and_cancels_a_place(django_assert_max_num_queries):
    event = _event(capacity=3)
    member = make_member()
    client = logged_in(member)
    with django_assert_max_num_queries(8):
        page = client.get("/events/")
    assert "3 of 3 places left." in page.content.decode()
    booked = client.post(f"/events/{event.pk}/register/", follow=True).content.decode()
    assert "Your place is booked." in booked and "Cancel my place" in booked
    cancelled = client.post(f"/events/{event.pk}/cancel/", follow=True).content.decode()
    assert "Your place is cancelled." in cancelled and "3 of 3 places left." in cancelled


def test_a_full_event_says_so_and_books_nothing():
    event = _event(capacity=1)
    event_register(member=make_member(), event_id=event.pk)
    member = make_member()
    client = logged_in(member)
    assert "Full: no places left." in client.get("/events/").content.decode()
    response = client.post(f"/events/{event.pk}/register/", follow=True)
    assert "This event is full." in response.content.decode()
    assert not EventRegistration.objects.filter(member=member).exists()


def test_a_member_cannot_cancel_another_members_place_nor_see_unpublished_events():
    event = _event()
    draft = _event(title="Secret launch", is_published=False)
    owner, other = make_member(), make_member()
    event_register(member=owner, event_id=event.pk)
    client = logged_in(other)
    assert client.post(f"/events/{event.pk}/cancel/").status_code == 404
    assert EventRegistration.objects.get(member=owner).status == "registered"
    assert client.post(f"/events/{draft.pk}/register/").status_code == 404
    assert "Secret launch" not in client.get("/events/").content.decode()


def test_staff_without_a_member_gets_the_no_member_page_and_visitors_the_login():
    from django.contrib.auth import get_user_model
    from django.test import Client

    assert Client().get("/challenges/").status_code == 302
    staff = get_user_model().objects.create_user("staffer", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/events/").status_code == 403
