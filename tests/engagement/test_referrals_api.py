"""The partner API: enrollment takes a friend's ``referral_code`` (a bad one is a 422 problem+json
that enrolls nobody); a purchase may carry a ``card_fingerprint``, stored only as a keyed hash."""

from __future__ import annotations

import pytest

from loyalty.core import clock
from loyalty.engagement.models import CardFingerprint, Referral
from members.models import Member
from tests.api.conftest import just_now, key_client, purchase_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db):
    return key_client("Acme")


def test_api_enrollment_with_a_referral_code_records_the_referral(api):
    first = api.post("/api/v1/members/", {"email": "ann@example.com", "first_name": "Ann"}, format="json").json()
    referrer = Member.objects.get(member_number=first["member_number"])

    response = api.post(
        "/api/v1/members/",
        {"email": "bo@example.com", "first_name": "Bo", "referral_code": referrer.referral_code},
        format="json",
    )

    assert response.status_code == 201
    referral = Referral.objects.get(referee__member_number=response.json()["member_number"])
    assert (referral.referrer, referral.channel) == (referrer, "api")


def test_api_enrollment_with_a_bad_referral_code_is_a_422_and_enrolls_nobody(api):
    response = api.post("/api/v1/members/", {"email": "bo@example.com", "referral_code": "WRONG123"}, format="json")

    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "referral_code_invalid"
    assert not Member.objects.filter(email="bo@example.com").exists()


def test_a_purchase_card_fingerprint_is_stored_hashed_only(api):
    clock.set_now(None)
    number = api.post("/api/v1/members/", {"email": "ann@example.com"}, format="json").json()["member_number"]

    body = purchase_body(number, occurred_at=just_now(), card_fingerprint="fp_live_123")
    response = api.post("/api/v1/purchases/", body, format="json")

    assert response.status_code == 201, response.content
    stored = CardFingerprint.objects.get(member__member_number=number)
    assert stored.digest != "fp_live_123" and "fp_live_123" not in stored.digest
