"""Referral pages: the member's invite page (code, link, share button without inline script, each
friend's status, nothing of other members), joining through a link or a typed code, and the admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from loyalty.core.models import AuditEvent
from loyalty.engagement.models import Referral, ReferralSettings
from loyalty.ledger.selectors import program_default
from members.models import Member
from tests.portal.conftest import logged_in, make_member
from tests.portal.test_join_and_login import join_data

pytestmark = pytest.mark.django_db


def test_the_invite_page_shows_the_members_link_and_each_friends_status(now):
    ReferralSettings.objects.create(program=program_default(), updated_at=now)
    member = make_member()
    make_member(referral_code=member.referral_code)
    stranger = make_member()
    make_member(referral_code=stranger.referral_code)

    page = logged_in(member).get("/invite/")

    html = page.content.decode()
    assert page.status_code == 200
    assert f"/join/?ref={member.referral_code}" in html and "data-share-link" in html
    assert "Joined: waiting for a first purchase" in html and html.count("<tr>") == 2  # header + one friend
    assert stranger.referral_code not in html
    assert "<script>" not in html  # the share button's JS is static/portal/portal.js (CSP)


def test_joining_through_a_link_records_the_referral_as_a_link(client):
    referrer = make_member()

    form = client.get(f"/join/?ref={referrer.referral_code}")
    assert referrer.referral_code in form.content.decode()  # the field comes filled in

    joined = client.post(f"/join/?ref={referrer.referral_code}", join_data(referral_code=referrer.referral_code))

    assert joined.status_code == 302
    referral = Referral.objects.get(referee__email="ada@example.com")
    assert (referral.referrer, referral.channel) == (referrer, "link")


def test_a_typed_code_that_does_not_exist_is_an_error_on_the_field_and_nobody_joins(client):
    page = client.post("/join/", join_data(referral_code="NOTACODE"))

    assert page.status_code == 200 and "Not a valid referral code." in page.content.decode()
    assert not Member.objects.filter(email="ada@example.com").exists()


def _staff(role):
    user = get_user_model().objects.create_user(f"staff-{role}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_marketing_edits_referral_settings_audited_and_support_may_not(now):
    data = {
        "program": program_default().pk,
        "is_active": "on",
        "min_spend": "25.00",
        "within_days": "30",
        "referrer_points": "400",
        "referee_points": "200",
        "monthly_cap": "5",
    }

    assert _staff("Support").post("/admin/engagement/referralsettings/add/", data).status_code == 403
    assert _staff("Marketing").post("/admin/engagement/referralsettings/add/", data).status_code == 302

    assert ReferralSettings.objects.get().min_spend == Decimal("25.00")
    assert AuditEvent.objects.filter(action="referral_settings.created").count() == 1


def test_referrals_are_read_only_in_the_admin():
    marketing = _staff("Marketing")
    assert marketing.get("/admin/engagement/referral/").status_code == 200
    assert marketing.get("/admin/engagement/referral/add/").status_code == 403


def test_the_invite_page_takes_a_fixed_number_of_queries(now, django_assert_max_num_queries):
    ReferralSettings.objects.create(program=program_default(), updated_at=now)
    member = make_member()
    for _ in range(5):
        make_member(referral_code=member.referral_code)
    client = logged_in(member)
    client.get("/invite/")

    with django_assert_max_num_queries(6):
        client.get("/invite/")
