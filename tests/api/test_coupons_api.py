"""Partner API: POST /api/v1/coupons/validate/, /coupons/redeem/ and /coupons/{code}/cancel/
(what a coupon gives, its refusals as problem+json, idempotent use, another partner's key, and
64 concurrent uses of a 10-use code on PostgreSQL)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from loyalty.ledger.selectors import program_default
from loyalty.partners.services import partner_key_create
from members.models import Member
from offers.models import Coupon, CouponUse, RedemptionState
from offers.services.coupons import coupon_issue
from tests.concurrency import run_together
from tests.offers.conftest import reward_make


def issue(**kw) -> Coupon:
    return coupon_issue(program=program_default(), source=kw.pop("source", "batch"), **kw)


@pytest.mark.django_db
def test_validate_tells_what_the_coupon_gives_on_the_basket(api, enrolled):
    member = Member.objects.get(member_number=enrolled)
    coupon = issue(source="reward", reward=reward_make(kind="percent_coupon", value=10), member=member)
    response = api.post(
        "/api/v1/coupons/validate/",
        {"code": coupon.code.lower(), "member_number": enrolled, "basket_total": "25.05"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["code"], body["valid"], body["uses_left"]) == (coupon.code, True, 1)
    assert body["benefit"] == {"kind": "percent", "value": "10.00", "sku": "", "discount": "2.51"}
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 0  # validating uses nothing


@pytest.mark.django_db
def test_validate_refusals_are_problem_json(api, enrolled):
    used = issue()
    Coupon.objects.filter(pk=used.pk).update(uses_count=1)
    response = api.post("/api/v1/coupons/validate/", {"code": used.code}, format="json")
    assert (response.status_code, response["Content-Type"], response.json()["code"]) == (
        409,
        "application/problem+json",
        "coupon_exhausted",
    )
    response = api.post("/api/v1/coupons/validate/", {"code": "NO-SUCH"}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "coupon_not_found")


@pytest.mark.django_db
def test_coupon_of_a_member_another_partner_may_not_read_answers_404_to_it(api, other_api, enrolled):
    member = Member.objects.get(member_number=enrolled)
    coupon = issue(member=member)
    for path in ("/api/v1/coupons/validate/", "/api/v1/coupons/redeem/"):
        response = other_api.post(path, {"code": coupon.code, "member_number": enrolled}, format="json")
        assert (response.status_code, response.json()["code"]) == (404, "coupon_not_found")
    response = other_api.post(f"/api/v1/coupons/{coupon.code}/cancel/", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "coupon_not_found")
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 0


@pytest.mark.django_db
def test_redeem_counts_one_use_and_replays_with_the_same_key(api, enrolled):
    coupon = issue(source="reward", reward=reward_make(value=5), max_uses=3)
    body = {"code": coupon.code, "basket_total": "12.00", "purchase_external_id": "till-9"}
    first = api.post("/api/v1/coupons/redeem/", body, format="json", HTTP_IDEMPOTENCY_KEY="u-1")
    again = api.post("/api/v1/coupons/redeem/", body, format="json", HTTP_IDEMPOTENCY_KEY="u-1")
    assert first.status_code == 201, first.content
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    answer = first.json()
    assert (answer["discount"], answer["uses_left"], answer["purchase_external_id"]) == ("5.00", 2, "till-9")
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 1


@pytest.mark.django_db
def test_cancel_gives_this_partners_use_back_and_a_repeat_answers_200(api, other_api, enrolled):
    coupon = issue(max_uses=1)
    use = api.post("/api/v1/coupons/redeem/", {"code": coupon.code}, format="json").json()
    response = other_api.post(f"/api/v1/coupons/{coupon.code}/cancel/", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "coupon_use_not_found")  # not its use
    response = api.post(f"/api/v1/coupons/{coupon.code}/cancel/", {"use_id": use["use_id"]}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["uses_left"]) == ("cancelled", 1)
    repeat = api.post(f"/api/v1/coupons/{coupon.code}/cancel/", {}, format="json")
    assert (repeat.status_code, repeat.json()["use_id"]) == (200, use["use_id"])
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 0
    assert CouponUse.objects.get().status == RedemptionState.CANCELLED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run", range(2))
def test_64_concurrent_uses_of_a_10_use_code_exactly_10_pass(run):
    _partner, _, raw = partner_key_create(partner_name=f"Till {run}", scopes=["read", "write"])
    coupon = issue(max_uses=10)

    def use(i):
        return Client().post(
            "/api/v1/coupons/redeem/",
            json.dumps({"code": coupon.code, "basket_total": "10.00", "purchase_external_id": f"p-{i}"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {raw}",
            HTTP_IDEMPOTENCY_KEY=f"use-{i}",
        )

    responses = run_together(64, use)
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 10 + [409] * 54, codes
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"coupon_exhausted"}
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 10
    assert CouponUse.objects.filter(coupon=coupon, status="completed").count() == 10
    assert sum(Decimal(r.json()["discount"]) for r in responses if r.status_code == 201) == 0  # a plain code


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_same_use_from_20_connections_is_one_use():
    _partner, _, raw = partner_key_create(partner_name="Twice", scopes=["read", "write"])
    coupon = issue(max_uses=5)
    body = json.dumps({"code": coupon.code})

    def use(i):
        return Client().post(
            "/api/v1/coupons/redeem/",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {raw}",
            HTTP_IDEMPOTENCY_KEY="one",
        )

    responses = run_together(20, use)
    assert [r.status_code for r in responses] == [201] * 20
    assert len({r.json()["use_id"] for r in responses}) == 1
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 1


@pytest.mark.django_db
def test_a_255_character_idempotency_key_is_accepted(api, enrolled):
    coupon = issue(max_uses=2)
    reward = reward_make(points_cost=10)
    key = "k" * 255
    response = api.post("/api/v1/coupons/redeem/", {"code": coupon.code}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 201, response.content
    from loyalty.ledger import services as ledger

    account = ledger.account_open(member=Member.objects.get(member_number=enrolled), program=program_default())
    ledger.points_credit(account=account, points=50, reason="test")
    response = api.post(
        f"/api/v1/members/{enrolled}/rewards/{reward.pk}/redeem/", {}, format="json", HTTP_IDEMPOTENCY_KEY="r" * 255
    )
    assert response.status_code == 201, response.content
