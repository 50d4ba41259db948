"""Join (through the enrollment workflow, consent per purpose and channel, email confirmation),
log in by email, lockout by username and address, and the password reset that lifts it."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from loyalty.ledger.models import Account
from loyalty.partners.models import OutboxEvent
from loyalty.portal.forms import CONSENT_OPTIONS, consent_field_name
from loyalty.tiers.models import MemberTier
from members.models import Consent, ConsentEvent, EnrollmentSource, Member
from tests.portal.conftest import PASSWORD, make_member

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-pass-77"
ATTACKER = "203.0.113.66"
MEMBER_PHONE = "198.51.100.10"


def join_data(**extra):
    data = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "Ada@Example.com",
        "password": PASSWORD,
        "password_again": PASSWORD,
        consent_field_name("marketing", "email"): "on",
        consent_field_name("partner_sharing", ""): "on",
    }
    data.update(extra)
    return data


def confirmation_link() -> str:
    return re.search(r"http://testserver(/join/confirm/\S+/)", mail.outbox[-1].body).group(1)


def test_join_form_asks_each_consent_as_its_own_unticked_box(client, program):
    html = client.get("/join/").content.decode()

    boxes = re.findall(r'<input type="checkbox" name="(consent_[a-z_]+)"[^>]*>', html)
    assert boxes == [consent_field_name(p, c) for p, c, _ in CONSENT_OPTIONS]
    assert "checked" not in "".join(re.findall(r'<input type="checkbox"[^>]*>', html))


def test_join_enrolls_through_the_workflow_with_consents_and_wording_version(client, program):
    response = client.post("/join/", join_data())

    assert response.status_code == 302 and response["Location"] == "/join/sent/"
    member = Member.objects.get(email="ada@example.com")
    assert member.enrollment_source == EnrollmentSource.PORTAL
    assert Account.objects.filter(member=member, program=program).exists()
    assert MemberTier.objects.filter(member=member, program=program).exists()
    assert OutboxEvent.objects.filter(event_type="member.enrolled", member=member).count() == 1
    granted = {(c.purpose, c.channel) for c in Consent.objects.filter(member=member, granted=True)}
    assert granted == {("marketing", "email"), ("partner_sharing", "")}
    events = ConsentEvent.objects.filter(member=member)
    assert events.count() == len(CONSENT_OPTIONS)  # the unticked ones are recorded as not given
    assert set(events.values_list("wording_version", flat=True)) == {settings.PORTAL_CONSENT_WORDING_VERSION}
    assert set(events.values_list("source", flat=True)) == {"portal"}


def test_new_login_works_only_after_the_email_is_confirmed(client, program):
    client.post("/join/", join_data())
    user = get_user_model().objects.get(username="ada@example.com")
    assert not user.is_active
    assert mail.outbox[-1].to == ["ada@example.com"]
    assert Client().post("/login/", {"username": "ada@example.com", "password": PASSWORD}).status_code == 200

    link = confirmation_link()
    assert client.get(link).status_code == 200
    assert client.get(link).status_code == 400  # used: the token covers is_active

    response = Client().post("/login/", {"username": "ADA@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/home/"


def test_a_wrong_confirmation_token_activates_nothing(client, program):
    client.post("/join/", join_data())
    link = confirmation_link()

    response = client.get(link[:-3] + "xx/")

    assert response.status_code == 400
    assert not get_user_model().objects.get(username="ada@example.com").is_active


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"password_again": "something-else-99"}, "password_again", "not the same"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"password": "short", "password_again": "short"}, "password", "too short"),
        ({"first_name": ""}, "first_name", "required"),
    ],
)
def test_bad_join_input_is_a_form_error_and_creates_nothing(client, program, extra, field, message):
    response = client.post("/join/", join_data(**extra))

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Member.objects.exists() and not get_user_model().objects.exists() and not mail.outbox


def test_joining_with_a_taken_email_is_a_form_error(client, program):
    make_member(email="ada@example.com")
    members_before = Member.objects.count()

    response = client.post("/join/", join_data())

    assert response.status_code == 200
    assert "already" in " ".join(response.context["form"].errors["email"])
    assert Member.objects.count() == members_before and not mail.outbox


def log_in(address: str, password: str, username: str = "mia@example.com"):
    return Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password})


def test_repeated_wrong_passwords_lock_that_email_out_from_that_address_only(program):
    make_member(email="mia@example.com")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(ATTACKER, "wrong-password")

    locked = log_in(ATTACKER, PASSWORD)
    elsewhere = log_in(MEMBER_PHONE, PASSWORD)

    assert locked.status_code == 429 and b"reset your password" in locked.content
    assert elsewhere.status_code == 302  # the attacker cannot lock the member out everywhere


def test_a_successful_password_reset_lifts_the_lockout(program):
    make_member(email="mia@example.com")
    for address in (ATTACKER, MEMBER_PHONE):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            log_in(address, "wrong-password")
    assert log_in(MEMBER_PHONE, PASSWORD).status_code == 429

    Client().post("/password-reset/", {"email": "mia@example.com"})
    link = re.search(r"http://testserver(/password-reset/\S+/)", mail.outbox[-1].body).group(1)
    client = Client(REMOTE_ADDR=MEMBER_PHONE)
    form_url = client.get(link)["Location"]  # Django swaps the token for a session value
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert done.status_code == 302 and done["Location"] == "/password-reset/done/"
    assert not AccessAttempt.objects.filter(username="mia@example.com").exists()
    assert log_in(MEMBER_PHONE, NEW_PASSWORD).status_code == 302


def test_logging_out_ends_the_session(member, member_client):
    assert member_client.get("/home/").status_code == 200

    member_client.post("/logout/")

    assert member_client.get("/home/")["Location"].startswith("/login/")
