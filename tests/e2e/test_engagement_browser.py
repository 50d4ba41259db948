"""Challenges, badges and community events in a real browser (Debian's Chromium, phone and
desktop): progress bar, joining a challenge, booking and cancelling a place; every page passes
axe-core, fits the width and keeps the Content-Security-Policy."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.core import clock
from loyalty.engagement.models import Badge, Challenge, CommunityEvent, EventRegistration
from loyalty.imports.management.commands.load_demo import demo_program_configure
from tests.e2e.conftest import check_page, log_in
from tests.portal.conftest import PASSWORD, make_member, shop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def program(transactional_db):
    return demo_program_configure()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_challenges_with_progress_and_badges_then_book_and_cancel_an_event(request, program, size):
    page = request.getfixturevalue(size)
    now = clock.now()
    fan = Badge.objects.create(name="Grocery regular", icon="leaf", created_at=now)
    Challenge.objects.create(
        program=program,
        name="Three grocery trips",
        kind="purchase_count",
        category="GROCERY",
        target=Decimal("3"),
        starts_at=now - dt.timedelta(days=1),
        ends_at=now + dt.timedelta(days=30),
        reward_points=100,
        badge=fan,
        created_at=now,
    )
    joinable = Challenge.objects.create(
        program=program,
        name="Try the bakery",
        kind="purchase_count",
        category="BAKERY",
        target=Decimal("1"),
        starts_at=now - dt.timedelta(days=1),
        ends_at=now + dt.timedelta(days=30),
        requires_opt_in=True,
        reward_points=20,
        created_at=now,
    )
    event = CommunityEvent.objects.create(
        program=program,
        title="Cheese tasting",
        kind="tasting",
        starts_at=now + dt.timedelta(days=5),
        place="Main Street store",
        capacity=12,
        is_published=True,
        created_at=now,
    )
    member = make_member(email=f"eng-{size}@example.com")
    shop(member, category="GROCERY", amount="20.00")

    log_in(page, member.email, PASSWORD)
    page.get_by_role("link", name="Challenges").click()
    page.wait_for_url("**/challenges/")
    assert page.get_by_text("1 of 3 done").is_visible()
    assert page.locator("progress").first.get_attribute("value") == "33"
    check_page(page, "challenges")
    page.get_by_role("button", name="Join this challenge").click()
    assert page.get_by_text("You joined the challenge").is_visible()
    assert page.locator(f"#progress-{joinable.pk}").is_visible()

    page.get_by_role("link", name="Events").click()
    page.wait_for_url("**/events/")
    assert page.get_by_text("12 of 12 places left.").is_visible()
    check_page(page, "events")
    page.get_by_role("button", name="Book a place").click()
    assert page.get_by_text("Your place is booked.").first.is_visible()
    assert EventRegistration.objects.get(event=event, member=member).status == "registered"
    check_page(page, "events-booked")
    page.get_by_role("button", name="Cancel my place").click()
    assert page.get_by_text("Your place is cancelled.").is_visible()
    assert EventRegistration.objects.get(event=event, member=member).status == "cancelled"
