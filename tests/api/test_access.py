"""Coalition access rules: who may read a member's personal data, balance and entries, and who may
burn their points (loyalty.partners.selectors.partner_member_access)."""

import datetime as dt
import json

import pytest
from django.test import Client

from loyalty.core import clock
from loyalty.ledger.models import Account
from loyalty.partners.models import LinkVia, PartnerMember
from loyalty.partners.selectors import PARTNER_SHARING, Access, partner_member_access
from loyalty.partners.services import partner_key_create
from members.models import ConsentPurpose, Member, RedemptionCode
from members.services import consent_set, redemption_code_issue
from tests.api.conftest import purchase_body
from tests.concurrency import run_together

pytestmark = pytest.mark.django_db

READS = ("/api/v1/members/{}/", "/api/v1/members/{}/balance/", "/api/v1/members/{}/entries/")
UNKNOWN_NUMBER = "000000000000"  # a valid check digit, no member
T = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)  # purchase_body's purchases happen just before


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def share_with_partners(member_number: str, granted: bool = True) -> None:
    consent_set(
        member=Member.objects.get(member_number=member_number),
        purpose=ConsentPurpose.PARTNER_SHARING,
        granted=granted,
        source="portal",
    )


def test_the_partners_sharing_purpose_is_the_members_consent_purpose():
    assert PARTNER_SHARING == ConsentPurpose.PARTNER_SHARING


def test_the_partner_the_member_enrolled_with_reads_profile_balance_and_entries(api, enrolled):
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    assert api.get(f"/api/v1/members/{enrolled}/").json()["email"] == "ann@example.com"
    assert api.get(f"/api/v1/members/{enrolled}/balance/").json()["available"] == 100
    assert [e["points"] for e in api.get(f"/api/v1/members/{enrolled}/entries/").json()["results"]] == [100]


@pytest.mark.parametrize("path", READS)
def test_another_partner_gets_the_same_404_as_for_an_unknown_member(path, other_api, enrolled):
    hidden = other_api.get(path.format(enrolled))
    unknown = other_api.get(path.format(UNKNOWN_NUMBER))
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.content == unknown.content
    assert hidden.json()["code"] == "member_not_found"


def test_a_purchase_by_card_earns_but_the_card_link_never_widens_reads(api, other_api, enrolled):
    response = other_api.post("/api/v1/purchases/", purchase_body(enrolled, external_id="rival-1"), format="json")
    assert response.status_code == 201 and response.json()["points_earned"] == 100
    assert PartnerMember.objects.get(partner=other_api.partner).via == LinkVia.CARD
    for path in READS:
        assert other_api.get(path.format(enrolled)).status_code == 404
    assert other_api.get("/api/v1/members/?email=ann@example.com").json() == []
    member = Member.objects.get(member_number=enrolled)
    assert partner_member_access(partner=other_api.partner, member=member) == Access(earn=True, read=False, burn=False)
    assert partner_member_access(partner=api.partner, member=member) == Access(earn=True, read=True, burn=True)


def test_a_custom_event_by_card_earns_without_widening_reads(other_api, enrolled):
    response = other_api.post(
        "/api/v1/events/", {"member_number": enrolled, "event_type": "review_written"}, format="json"
    )
    assert response.status_code in (200, 201), response.content
    assert other_api.get(f"/api/v1/members/{enrolled}/").status_code == 404


def test_the_sharing_consent_opens_reads_to_every_partner_and_withdrawing_it_closes_them(other_api, enrolled):
    share_with_partners(enrolled)
    assert other_api.get(f"/api/v1/members/{enrolled}/").json()["first_name"] == "Ann"
    assert other_api.get(f"/api/v1/members/{enrolled}/balance/").status_code == 200
    assert [m["member_number"] for m in other_api.get("/api/v1/members/?email=ann@example.com").json()] == [enrolled]
    share_with_partners(enrolled, granted=False)
    assert other_api.get(f"/api/v1/members/{enrolled}/").status_code == 404
    assert other_api.get("/api/v1/members/?email=ann@example.com").json() == []


def test_a_sharing_consent_on_one_channel_only_does_not_open_reads(other_api, enrolled):
    consent_set(
        member=Member.objects.get(member_number=enrolled),
        purpose=ConsentPurpose.PARTNER_SHARING,
        channel="email",
        granted=True,
        source="portal",
    )
    assert other_api.get(f"/api/v1/members/{enrolled}/").status_code == 404


def test_email_lookup_answers_only_members_the_partner_may_read(api, other_api, enrolled):
    assert [m["member_number"] for m in api.get("/api/v1/members/?email=ANN@example.com").json()] == [enrolled]
    assert other_api.get("/api/v1/members/?email=ann@example.com").json() == []
    assert other_api.get("/api/v1/members/?email=nobody@example.com").json() == []


def test_enrolling_a_taken_email_answers_the_same_whether_or_not_the_partner_may_see_the_member(api, other_api):
    """README, Partner API: a neutral 409 with nothing about the member, byte for byte the same for
    a member the partner enrolled (visible) and one another partner enrolled (hidden)."""
    assert api.post("/api/v1/members/", {"email": "mine@example.com"}, format="json").status_code == 201
    assert other_api.post("/api/v1/members/", {"email": "theirs@example.com"}, format="json").status_code == 201
    visible = api.post("/api/v1/members/", {"email": "mine@example.com", "first_name": "X"}, format="json")
    hidden = api.post("/api/v1/members/", {"email": "theirs@example.com", "first_name": "X"}, format="json")
    hidden_other_case = api.post("/api/v1/members/", {"email": "THEIRS@example.com", "first_name": "X"}, format="json")
    assert visible.status_code == hidden.status_code == hidden_other_case.status_code == 409
    assert visible.content == hidden.content == hidden_other_case.content
    body = hidden.json()
    assert body["code"] == "email_taken" and "errors" not in body
    assert "theirs" not in hidden.content.decode() and "member_number" not in body
    assert not PartnerMember.objects.filter(partner=api.partner, member__email="theirs@example.com").exists()


# --- burning -----------------------------------------------------------------------------------


@pytest.fixture
def earned(api, enrolled):
    """The member enrolled at Acme (``api``) with 100 points available."""
    assert api.post("/api/v1/purchases/", purchase_body(enrolled), format="json").status_code == 201
    return enrolled


def redeem(client, member_number, external_id="burn-1", points=10, **extra):
    body = {"member_number": member_number, "points": points, "external_id": external_id, **extra}
    return client.post("/api/v1/redemptions/", body, format="json")


def balance(api, member_number):
    return api.get(f"/api/v1/members/{member_number}/balance/").json()["available"]


def test_the_partner_the_member_enrolled_with_burns_without_a_code(api, earned):
    assert redeem(api, earned).status_code == 201
    assert balance(api, earned) == 90


def test_another_partner_cannot_burn_without_a_code_and_gets_404_like_an_unknown_member(api, other_api, earned):
    other_api.post("/api/v1/purchases/", purchase_body(earned, external_id="rival-1"), format="json")  # a card link
    hidden = redeem(other_api, earned)
    unknown = redeem(other_api, UNKNOWN_NUMBER)
    assert hidden.status_code == unknown.status_code == 404 and hidden.content == unknown.content
    assert balance(api, earned) == 200


def test_the_sharing_consent_lets_every_partner_burn(api, other_api, earned):
    share_with_partners(earned)
    assert redeem(other_api, earned).status_code == 201
    assert balance(api, earned) == 90


def test_a_one_time_code_lets_another_partner_burn_once(api, other_api, earned):
    code = redemption_code_issue(member=Member.objects.get(member_number=earned))
    first = redeem(other_api, earned, redemption_code=code)
    assert first.status_code == 201, first.content
    assert balance(api, earned) == 90
    again = redeem(other_api, earned, redemption_code=code)  # the same request again: the same answer
    assert again.status_code == 200 and again.json() == first.json()
    reused = redeem(other_api, earned, external_id="burn-2", redemption_code=code)
    assert reused.status_code == 404 and reused.json()["code"] == "redemption_code_invalid"
    assert balance(api, earned) == 90


def test_the_code_is_typed_as_the_member_reads_it(api, other_api, earned):
    code = redemption_code_issue(member=Member.objects.get(member_number=earned))
    typed = f" {code[:5].lower()}-{code[5:]} "
    assert redeem(other_api, earned, redemption_code=typed).status_code == 201


def test_an_expired_code_is_refused(api, other_api, earned, settings):
    settings.REDEMPTION_CODE_TTL_SECONDS = 600
    start = T
    code = redemption_code_issue(member=Member.objects.get(member_number=earned))
    clock.set_now(start + dt.timedelta(seconds=600))
    response = redeem(other_api, earned, redemption_code=code)
    assert response.status_code == 404 and response.json()["code"] == "redemption_code_invalid"
    assert RedemptionCode.objects.get().used_at is None


def test_another_members_code_is_refused(api, other_api, earned):
    bob = api.post("/api/v1/members/", {"email": "bob@example.com"}, format="json").json()["member_number"]
    bobs_code = redemption_code_issue(member=Member.objects.get(member_number=bob))
    response = redeem(other_api, earned, redemption_code=bobs_code)
    assert response.status_code == 404 and response.json()["code"] == "redemption_code_invalid"
    assert RedemptionCode.objects.get().used_at is None


def test_a_made_up_code_is_refused(other_api, earned):
    response = redeem(other_api, earned, redemption_code="AAAAAAAAAA")
    assert response.status_code == 404 and response.json()["code"] == "redemption_code_invalid"


def test_a_redemption_that_fails_does_not_use_up_the_code(api, other_api, earned):
    code = redemption_code_issue(member=Member.objects.get(member_number=earned))
    too_much = redeem(other_api, earned, points=1000, redemption_code=code)
    assert too_much.status_code == 409 and too_much.json()["code"] == "insufficient_points"
    assert redeem(other_api, earned, external_id="burn-2", redemption_code=code).status_code == 201


def test_a_code_is_stored_only_as_a_keyed_hash_and_expires(earned, settings):
    settings.REDEMPTION_CODE_TTL_SECONDS = 300
    code = redemption_code_issue(member=Member.objects.get(member_number=earned))
    row = RedemptionCode.objects.get()
    assert code not in row.code_hash and len(row.code_hash) == 64
    assert row.expires_at - row.created_at == dt.timedelta(seconds=300)
    assert len(code) == 10 and redemption_code_issue(member=row.member) != code


def test_another_partner_cannot_cancel_a_redemption_made_with_a_code(api, other_api, earned):
    share_with_partners(earned)
    rid = redeem(api, earned).json()["id"]
    response = other_api.post(f"/api/v1/redemptions/{rid}/cancel/", {}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "redemption_not_found"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_redemptions_racing_with_one_code_burn_once():
    def post(raw, path, body):
        return Client().post(
            path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {raw}"
        )

    _home, _, home_key = partner_key_create(partner_name="Home", scopes=["read", "write"])
    _away, _, away_key = partner_key_create(partner_name="Away", scopes=["read", "write"])
    number = post(home_key, "/api/v1/members/", {"email": "race@example.com"}).json()["member_number"]
    assert post(home_key, "/api/v1/purchases/", purchase_body(number)).status_code == 201
    for _round in range(3):
        code = redemption_code_issue(member=Member.objects.get(member_number=number))
        responses = run_together(
            8,
            lambda i, code=code: post(
                away_key,
                "/api/v1/redemptions/",
                {"member_number": number, "points": 5, "external_id": f"race-{code}-{i}", "redemption_code": code},
            ),
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [404] * 7, codes
    assert sum(Account.objects.filter(member__member_number=number).values_list("available", flat=True)) == 85


@pytest.mark.parametrize("reader", ["enrolled", "sharing"])
def test_reading_a_member_costs_one_query_for_the_access_rule(
    reader, api, other_api, enrolled, django_assert_num_queries
):
    """Key lookup, the member, the access rule (enrollment link or sharing consent: one query)."""
    client = api if reader == "enrolled" else other_api
    if reader == "sharing":
        share_with_partners(enrolled)
    client.get(f"/api/v1/members/{enrolled}/")  # warm: configuration cached
    with django_assert_num_queries(3):
        assert client.get(f"/api/v1/members/{enrolled}/").status_code == 200
