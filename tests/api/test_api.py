import datetime as dt

import pytest
from django.core.management import call_command

from loyalty.activity.models import EarningRule, EventRule, EventType
from loyalty.core import clock
from loyalty.ledger.models import Account, Purchase
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import OutboxEvent
from tests.api.conftest import key_client, purchase_body

pytestmark = pytest.mark.django_db
T = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status and {"type", "title", "detail"} <= set(body)
    return body


def test_partner_key_create_prints_the_key_last_and_it_authenticates(capsys, client):
    call_command("partner_key_create", "New Partner", "--scope", "read")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert client.get("/api/v1/members/?email=x@example.com", HTTP_AUTHORIZATION=f"Api-Key {key}").status_code == 200
    problem(
        client.post("/api/v1/members/", {}, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {key}"),
        403,
        "permission_denied",
    )


def test_no_key_is_401_and_bad_key_is_401(client):
    problem(client.get("/api/v1/members/?email=a@b.c"), 401, "not_authenticated")
    problem(
        client.get("/api/v1/members/?email=a@b.c", HTTP_AUTHORIZATION="Api-Key nope.nope"), 401, "authentication_failed"
    )


def test_enroll_opens_account_links_partner_and_records_event(api, enrolled):
    account = Account.objects.get(member__member_number=enrolled, program=program_default())
    assert account.available == 0
    assert OutboxEvent.objects.filter(event_type="member.enrolled", member=account.member).exists()
    body = api.get(f"/api/v1/members/{enrolled}/").json()
    assert body["email"] == "ann@example.com"
    assert [m["member_number"] for m in api.get("/api/v1/members/?email=ANN@example.com").json()] == [enrolled]


def test_enroll_with_taken_email_is_409_and_bad_email_400(api, enrolled):
    problem(api.post("/api/v1/members/", {"email": "ann@example.com"}, format="json"), 409, "email_taken")
    problem(api.post("/api/v1/members/", {"email": "nope"}, format="json"), 400, "invalid_request")


def test_another_partner_cannot_see_an_unlinked_member(other_api, enrolled):
    problem(other_api.get(f"/api/v1/members/{enrolled}/"), 404, "member_not_found")
    problem(other_api.get(f"/api/v1/members/{enrolled}/balance/"), 404, "member_not_found")
    assert other_api.get("/api/v1/members/?email=ann@example.com").json() == []
    problem(other_api.get("/api/v1/members/000000000000/"), 404, "member_not_found")


def test_purchase_by_card_earns_pending_points_at_any_partner_without_widening_its_reads(api, other_api, enrolled):
    program = program_default()
    program.pending_days = 14
    program.save()
    response = other_api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["points_earned"] == 100 and body["points_pending_until"] == "2030-01-24T12:00:00Z"
    assert body["explanation"][0]["rule"] == "Base rate"
    assert other_api.get(f"/api/v1/members/{enrolled}/balance/").status_code == 404  # the card link is earn-only
    assert api.get(f"/api/v1/members/{enrolled}/balance/").json()["pending"] == 100


def test_same_purchase_again_is_200_with_same_body_and_different_body_is_409(api, enrolled):
    first = api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    again = api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    assert (first.status_code, again.status_code) == (201, 200) and first.json() == again.json()
    problem(
        api.post(
            "/api/v1/purchases/",
            purchase_body(enrolled, total="99.00", lines=[{"sku": "A", "amount": "99.00"}]),
            format="json",
        ),
        409,
        "duplicate_external_id",
    )
    assert Purchase.objects.count() == 1


def test_earning_rules_exclusions_multipliers_and_bonus_are_explained(api, enrolled):
    program = program_default()
    EarningRule.objects.create(
        program=program, name="Drinks x3", kind="category_multiplier", categories=["drinks"], multiplier=3
    )
    EarningRule.objects.create(program=program, name="No tobacco", kind="exclude_categories", categories=["tobacco"])
    EarningRule.objects.create(
        program=program, name="Big basket", kind="min_spend_bonus", min_spend=50, bonus_points=25
    )
    body = purchase_body(
        enrolled,
        lines=[
            {"sku": "A", "category": "food", "amount": "10.00", "discount": "2.00"},
            {"sku": "B", "category": "drinks", "amount": "20.00"},
            {"sku": "C", "category": "tobacco", "amount": "30.00"},
        ],
        total="58.00",
        tax="5.00",
    )
    out = api.post("/api/v1/purchases/", body, format="json").json()
    # base 28 (tobacco excluded, discount off) + drinks 20 x 2 extra = 68; spend 28 < 50 so no bonus
    assert out["points_earned"] == 68
    assert [line["rule"] for line in out["explanation"]] == ["Excluded categories", "Base rate", "Drinks x3", "Total"]


def test_return_reverses_points_and_returning_too_much_is_422(api, enrolled):
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    response = api.post(
        "/api/v1/returns/",
        {"purchase_external_id": "till-1", "external_id": "ret-1", "lines": [{"sku": "B", "quantity": "1"}]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["points_reversed"], response.json()["points_written_off"]) == (50, 0)
    problem(
        api.post(
            "/api/v1/returns/",
            {"purchase_external_id": "till-1", "external_id": "ret-2", "lines": [{"sku": "A", "quantity": "3"}]},
            format="json",
        ),
        422,
        "return_exceeds_purchase",
    )
    problem(
        api.post(
            "/api/v1/returns/",
            {"purchase_external_id": "nope", "external_id": "ret-3", "amount": "1.00"},
            format="json",
        ),
        404,
        "purchase_not_found",
    )
    assert api.get(f"/api/v1/members/{enrolled}/balance/").json()["available"] == 50


def test_redeem_insufficient_duplicate_and_cancel(api, enrolled):
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    body = {"member_number": enrolled, "points": 60, "external_id": "burn-1", "description": "coffee"}
    first = api.post("/api/v1/redemptions/", body, format="json")
    assert first.status_code == 201
    again = api.post("/api/v1/redemptions/", body, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    problem(api.post("/api/v1/redemptions/", {**body, "points": 61}, format="json"), 409, "duplicate_external_id")
    problem(
        api.post("/api/v1/redemptions/", {**body, "external_id": "burn-2"}, format="json"), 409, "insufficient_points"
    )
    cancel = api.post(f"/api/v1/redemptions/{first.json()['id']}/cancel/", {}, format="json")
    assert cancel.status_code == 201 and cancel.json()["status"] == "cancelled"
    assert api.get(f"/api/v1/members/{enrolled}/balance/").json()["available"] == 100


def test_another_partner_cannot_cancel_a_redemption(api, other_api, enrolled):
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    rid = api.post(
        "/api/v1/redemptions/", {"member_number": enrolled, "points": 10, "external_id": "b"}, format="json"
    ).json()["id"]
    problem(other_api.post(f"/api/v1/redemptions/{rid}/cancel/", {}, format="json"), 404, "redemption_not_found")


def test_entries_show_only_the_partners_own_activity_with_filters(api, other_api, enrolled):
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    other_api.post("/api/v1/purchases/", purchase_body(enrolled, external_id="rival-1"), format="json")
    mine = api.get(f"/api/v1/members/{enrolled}/entries/").json()
    assert [e["points"] for e in mine["results"]] == [100]
    assert api.get(f"/api/v1/members/{enrolled}/entries/?kind=redeem").json()["results"] == []
    problem(api.get(f"/api/v1/members/{enrolled}/entries/?kind=bogus"), 400, "invalid_request")


def test_events_award_points_within_limits(api, enrolled):
    EventRule.objects.create(
        program=program_default(), event_type=EventType.objects.get(code="review_written"), points=15, limit_per_day=1
    )
    first = api.post(
        "/api/v1/events/",
        {"member_number": enrolled, "event_type": "review_written", "external_id": "e1"},
        format="json",
    )
    second = api.post(
        "/api/v1/events/",
        {"member_number": enrolled, "event_type": "review_written", "external_id": "e2"},
        format="json",
    )
    assert (first.json()["points"], second.json()["points"]) == (15, 0)
    assert "daily limit" in second.json()["note"]
    problem(
        api.post("/api/v1/events/", {"member_number": enrolled, "event_type": "moon_landing"}, format="json"),
        422,
        "unknown_event_type",
    )


def test_idempotency_key_replays_first_response_and_refuses_reuse_with_another_body(api, enrolled):
    headers = {"HTTP_IDEMPOTENCY_KEY": "idem-1"}
    first = api.post(
        "/api/v1/redemptions/", {"member_number": enrolled, "points": 5, "external_id": "x"}, format="json", **headers
    )
    problem(first, 409, "insufficient_points")
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    replay = api.post(
        "/api/v1/redemptions/", {"member_number": enrolled, "points": 5, "external_id": "x"}, format="json", **headers
    )
    assert replay.status_code == 409 and replay.json() == first.json()  # the first answer, not a new run
    problem(
        api.post(
            "/api/v1/redemptions/",
            {"member_number": enrolled, "points": 6, "external_id": "x"},
            format="json",
            **headers,
        ),
        422,
        "idempotency_key_reused",
    )


def test_read_only_fields_sent_by_a_client_are_ignored(api):
    response = api.post(
        "/api/v1/members/",
        {"email": "ro@example.com", "status": "erased", "available": 10**6, "member_number": "1"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "active" and body["member_number"] != "1"
    assert Account.objects.get(member__member_number=body["member_number"]).available == 0


@pytest.mark.parametrize("payload", [b"{", b"[]", b'{"member_number": null}', b'{"lines": "x"}', "\u0000".encode()])
def test_malformed_bodies_get_problem_json_never_500(api, payload):
    response = api.generic("POST", "/api/v1/purchases/", payload, content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/problem+json")


def test_invalid_member_number_in_purchase_is_a_clear_error(api):
    problem(api.post("/api/v1/purchases/", purchase_body("123"), format="json"), 422, "invalid_member_number")


def test_throttling_answers_429_with_retry_after(settings, db):
    from django.core.cache import cache
    from rest_framework.settings import api_settings

    cache.clear()
    from loyalty.api.auth import PerKeyThrottle

    old = PerKeyThrottle.THROTTLE_RATES
    PerKeyThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "partner": "2/min"}
    try:
        client = key_client("Throttled")
        codes = [client.get("/api/v1/members/?email=a@b.c").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = client.get("/api/v1/members/?email=a@b.c")
        problem(limited, 429, "throttled")
        assert int(limited["Retry-After"]) > 0
    finally:
        PerKeyThrottle.THROTTLE_RATES = old
        cache.clear()


def test_schema_and_docs_are_served_offline(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/purchases/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"cdn" not in docs.content.lower()
