"""A reward's points come back only with the reward: the partner's points-redemption cancel
(``POST /api/v1/redemptions/{id}/cancel/``) refuses the ledger redemption that paid for a reward
(409 ``redemption_of_reward``), else the member would get the points back and keep the reward's
coupon and the item taken from stock. Found by the stateful ledger machine (promise 6)."""

from __future__ import annotations

import pytest

from loyalty.ledger import services as ledger
from loyalty.ledger.models import Redemption, RedemptionStatus
from offers.models import Coupon, CouponStatus, RedemptionState, RewardRedemption
from tests.api.conftest import key_client
from tests.offers.conftest import reward_make

pytestmark = pytest.mark.django_db


def test_the_ledger_redemption_of_a_reward_is_not_cancelled_as_points(program):
    api = key_client("Acme")
    enrolled = api.post("/api/v1/members/", {"email": "ann@example.com"}, format="json").json()["member_number"]
    account = program.accounts.get(member__member_number=enrolled)
    ledger.points_credit(account=account, points=500, reason="test")
    reward = reward_make(points_cost=200, stock=3)
    response = api.post(
        f"/api/v1/members/{enrolled}/rewards/{reward.pk}/redeem/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 201, response.content
    bought = RewardRedemption.objects.get(pk=response.json()["id"])

    refused = api.post(f"/api/v1/redemptions/{bought.redemption_id}/cancel/", format="json")

    assert refused.status_code == 409, refused.content
    assert refused.json()["code"] == "redemption_of_reward"
    assert Redemption.objects.get(pk=bought.redemption_id).status == RedemptionStatus.COMPLETED
    account.refresh_from_db()
    assert account.available == 300
    bought.refresh_from_db()
    assert bought.status == RedemptionState.COMPLETED
    assert Coupon.objects.get(pk=bought.coupon_id).status == CouponStatus.ACTIVE
    reward.refresh_from_db()
    assert reward.stock == 2


def test_a_points_redemption_is_still_cancelled(program):
    api = key_client("Acme")
    enrolled = api.post("/api/v1/members/", {"email": "bob@example.com"}, format="json").json()["member_number"]
    ledger.points_credit(account=program.accounts.get(member__member_number=enrolled), points=100, reason="test")
    made = api.post(
        "/api/v1/redemptions/", {"member_number": enrolled, "points": 40, "external_id": "d1"}, format="json"
    )
    assert made.status_code == 201, made.content
    cancelled = api.post(f"/api/v1/redemptions/{made.json()['id']}/cancel/", format="json")
    assert cancelled.status_code == 201, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
