"""What each member page shows, worked out from purchases made through the purchase workflow,
and that forms refuse bad input without changing anything."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import zipfile

import pytest
from django.contrib.auth import get_user_model

from loyalty.core import clock
from loyalty.core.models import AuditEvent
from loyalty.ledger.services import mature_pending_lots
from loyalty.portal.forms import consent_field_name
from loyalty.tiers.selectors import tier_progress
from members.models import ConsentEvent, MemberStatus
from members.selectors import consent_granted
from members.services import redemption_code_consume
from tests.portal.conftest import PASSWORD, make_member, shop

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def history(member):
    """An old purchase (available, expiring within 90 days), a recent one (still pending) with
    double points on produce."""
    clock.set_now(NOW - dt.timedelta(days=300))
    shop(member, amount="40.00", category="GROCERY")
    clock.set_now(NOW - dt.timedelta(days=3))
    shop(member, amount="80.00", category="PRODUCE / APPLES")
    clock.set_now(NOW)
    mature_pending_lots()
    return member


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_home_shows_available_pending_with_its_date_and_expiring_points(history, member_client):
    page = text(member_client.get("/home/"))

    assert "40 points to spend" in page
    assert "On the way: 210" in page  # 80 base + 80 double produce + 50 big basket bonus
    assert "210 available on 12 Jun 2030" in page  # 14-day return window from 29 May
    assert "40 expire on 5 Aug 2030" in page  # 12 months after earning (5 Aug 2029)


def test_home_shows_what_is_missing_for_the_next_tier(history, member, member_client):
    progress = tier_progress(member=member)

    page = text(member_client.get("/home/"))

    assert progress.next_tier.name == "Silver" and progress.to_next == {"spend": 1380}
    assert "Your tier: Member" in page
    assert "120.00 of 1,500.00 spent — 1,380.00 to go" in page


def test_history_explains_each_earn_in_plain_words(history, member_client):
    page = text(member_client.get("/history/"))

    assert "Fresh produce double points: +80" in page
    assert "Big basket bonus: +50" in page
    assert "Points for 80.00 spent: +80" in page
    assert "E+" not in page and "Total" not in page


def test_history_filters_by_kind_and_date(history, member, member_client):
    clock.set_now(NOW + dt.timedelta(days=100))  # the old lot expires
    from loyalty.ledger.services import expire_due_lots

    expire_due_lots()

    expired = member_client.get("/history/", {"kind": "expire"})
    recent = member_client.get("/history/", {"since": (NOW - dt.timedelta(days=10)).date().isoformat()})

    assert [line.kind for line in expired.context["lines"]] == ["expire"]
    assert expired.context["lines"][0].points == -40
    assert [line.points for line in recent.context["lines"]] == [-40, 210]


def test_history_with_a_bad_date_range_is_a_form_error_not_a_failure(history, member_client):
    response = member_client.get("/history/", {"since": "2030-06-01", "until": "2030-05-01"})

    assert response.status_code == 200
    assert "before the start date" in text(response)
    assert len(response.context["lines"]) == 2  # unfiltered


def test_history_is_paginated(member, member_client):
    for _ in range(25):
        shop(member, amount="1.00")

    first = member_client.get("/history/")
    second = member_client.get("/history/", {"page": 2})

    assert len(first.context["lines"]) == 20 and len(second.context["lines"]) == 5
    assert "Page 1 of 2" in text(first)


def test_card_shows_the_member_number_as_barcode_and_qr_svg(member, member_client):
    html = member_client.get("/card/").content.decode()

    images = dict(re.findall(r'<img class="(barcode|qr)" src="data:image/svg\+xml;base64,([^"]+)"', html))
    assert set(images) == {"barcode", "qr"}
    for encoded in images.values():
        assert b"<svg" in base64.b64decode(encoded)
    assert member.member_number in html


def test_card_gives_a_one_time_code_a_partner_can_use_once(member, member_client):
    response = member_client.post("/card/")

    code = re.search(r'data-testid="redemption-code">([A-Z0-9 ]+)<', response.content.decode()).group(1)
    assert response["Cache-Control"] == "no-store"
    redemption_code_consume(member=member, code=code)  # accepted once


def test_profile_change_is_saved_audited_and_moves_the_login_email(member, member_client):
    response = member_client.post(
        "/my-data/", {"first_name": "Mia", "last_name": "Rossi", "email": "Mia.Rossi@Example.com", "country": "it"}
    )

    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.last_name, member.email, member.country) == ("Rossi", "Mia.Rossi@example.com", "IT")
    user = member.user
    assert (user.username, user.email) == ("mia.rossi@example.com", "Mia.Rossi@example.com")
    assert AuditEvent.objects.filter(action="member.update", target_id=str(member.pk)).exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "nope"}, "email"),
        ({"email": "x@example.com", "birth_date": "2999-01-01"}, "birth_date"),
        ({"email": "x@example.com", "country": "1X"}, "country"),
    ],
)
def test_bad_profile_input_is_a_form_error_and_changes_nothing(member, member_client, data, field):
    before = (member.email, member.birth_date, member.country)

    response = member_client.post("/my-data/", data)

    assert response.status_code == 200 and response.context["form"].errors[field]
    member.refresh_from_db()
    assert (member.email, member.birth_date, member.country) == before


def test_taking_another_members_email_is_a_form_error(member, other_member, member_client):
    response = member_client.post("/my-data/", {"email": other_member.email})

    assert "already in use" in " ".join(response.context["form"].errors["email"]).lower()
    member.refresh_from_db()
    assert member.email != other_member.email


def test_consents_are_granted_and_withdrawn_with_history_and_wording(member, member_client, settings):
    sms = consent_field_name("marketing", "sms")
    member_client.post("/my-data/consents/", {sms: "on"})
    member_client.post("/my-data/consents/", {})

    events = list(ConsentEvent.objects.filter(member=member, purpose="marketing", channel="sms").order_by("id"))
    assert [e.granted for e in events] == [True, False]
    assert {e.wording_version for e in events} == {settings.PORTAL_CONSENT_WORDING_VERSION}
    assert not consent_granted(member=member, purpose="marketing", channel="sms")
    page = text(member_client.get("/my-data/consents/"))
    assert "Withdrawn: Send me offers and news by text message (SMS)" in page
    assert "Allowed: Send me offers and news by text message (SMS)" in page


def test_saving_consents_unchanged_records_nothing(member, member_client):
    member_client.post("/my-data/consents/", {})

    assert not ConsentEvent.objects.filter(member=member).exists()


def test_download_my_data_as_json_and_as_csv_files_in_a_zip(history, member, member_client):
    as_json = member_client.get("/my-data/export.json")
    as_zip = member_client.get("/my-data/export.zip")

    document = json.loads(as_json.content)
    assert document["member_number"] == member.member_number
    assert as_json["Content-Disposition"].startswith("attachment;")
    archive = zipfile.ZipFile(io.BytesIO(as_zip.content))
    names = archive.namelist()
    assert "member_profile.csv" in names and "points_accounts.csv" in names
    profile = archive.read("member_profile.csv").decode()
    assert member.member_number in profile and member.email in profile


def test_closing_needs_the_password_and_the_confirmation(member, member_client):
    wrong = member_client.post("/my-data/close/", {"password": "not-it", "confirm": "on"})
    unconfirmed = member_client.post("/my-data/close/", {"password": PASSWORD})

    assert wrong.context["form"].errors["password"] and unconfirmed.context["form"].errors["confirm"]
    member.refresh_from_db()
    assert member.status == MemberStatus.ACTIVE and member.user.is_active


def test_closing_closes_the_membership_and_switches_the_login_off(member, member_client):
    response = member_client.post("/my-data/close/", {"password": PASSWORD, "confirm": "on"})

    assert response["Location"] == "/goodbye/"
    member.refresh_from_db()
    assert member.status == MemberStatus.CLOSED and not member.user.is_active
    assert member_client.get("/home/")["Location"].startswith("/login/")


def test_erasing_removes_personal_data_and_the_login(history, member, member_client):
    user_id = member.user_id

    response = member_client.post("/my-data/erase/", {"password": PASSWORD, "confirm": "on"})

    assert response["Location"] == "/goodbye/?erased=1"
    member.refresh_from_db()
    assert member.status == MemberStatus.ERASED and member.email is None and member.first_name == ""
    assert not get_user_model().objects.filter(pk=user_id).exists()
    assert AuditEvent.objects.filter(action="member.erase", target_id=str(member.pk)).exists()


def test_a_suspended_member_sees_the_page_but_gets_no_spending_code(member, member_client):
    from members.services import member_suspend

    member_suspend(member=member, actor=None, reason="fraud check")

    assert "membership is suspended" in text(member_client.get("/home/"))
    assert member_client.post("/card/").status_code == 409


def test_manifest_names_icons_that_exist(client):
    from django.contrib.staticfiles import finders

    manifest = client.get("/manifest.webmanifest")

    assert manifest["Content-Type"] == "application/manifest+json"
    body = manifest.json()
    assert body["display"] == "standalone" and body["start_url"] == "/home/"
    for icon in body["icons"]:
        assert finders.find(icon["src"].removeprefix("/static/")), icon["src"]


def test_public_home_says_what_the_program_is_and_links_join_and_login(client):
    html = client.get("/").content.decode()

    assert 'href="/join/"' in html and 'href="/login/"' in html


def test_every_member_has_an_unrelated_page_per_login(program):
    """Two members side by side: each page of one never shows the other's number."""
    first, second = make_member(), make_member()
    from tests.portal.conftest import logged_in

    for url in ("/home/", "/card/", "/history/", "/my-data/", "/my-data/consents/", "/my-data/export.json"):
        body = logged_in(first).get(url).content.decode()
        assert second.member_number not in body and (second.email not in body), url
