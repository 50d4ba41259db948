"""Partner API: GET /api/v1/rewards/ and POST /api/v1/members/{member_number}/rewards/{id}/redeem/
(access as for point redemptions, Idempotency-Key, problem+json codes)."""

from __future__ import annotations

import pytest

from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account
from loyalty.ledger.selectors import program_default
from members.models import Member
from members.services import redemption_code_issue
from offers.models import Reward, RewardRedemption
from tests.offers.conftest import reward_make

pytestmark = pytest.mark.django_db


def give_points(member_number: str, points: int) -> Account:
    member = Member.objects.get(member_number=member_number)
    account = ledger.account_open(member=member, program=program_default())
    ledger.points_credit(account=account, points=points, reason="test")
    return account


def redeem_path(member_number, reward_id):
    return f"/api/v1/members/{member_number}/rewards/{reward_id}/redeem/"


def test_rewards_lists_what_this_partner_honours(api, other_api):
    mine = reward_make(name="Mine", partner=api.partner, points_cost=50)
    shared = reward_make(name="Shared", points_cost=80)
    reward_make(name="Theirs", partner=other_api.partner)
    reward_make(name="Off", is_active=False)
    response = api.get("/api/v1/rewards/")
    assert response.status_code == 200
    body = {r["name"]: r for r in response.json()}
    assert set(body) == {"Mine", "Shared"}
    assert (body["Mine"]["id"], body["Mine"]["partner_only"], body["Shared"]["partner_only"]) == (mine.pk, True, False)
    assert body["Shared"]["points_cost"] == shared.points_cost and body["Shared"]["stock"] is None


def test_redeem_answers_201_with_the_redemption_and_the_coupon_code(api, enrolled):
    account = give_points(enrolled, 300)
    reward = reward_make(points_cost=120, stock=5)
    response = api.post(redeem_path(enrolled, reward.pk), {}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert response.status_code == 201, response.content
    body = response.json()
    found = RewardRedemption.objects.get()
    assert (body["id"], body["reward_id"], body["points"], body["member_number"]) == (
        found.pk,
        reward.pk,
        120,
        enrolled,
    )
    assert body["coupon"]["code"] == found.coupon.code
    assert Account.objects.get(pk=account.pk).available == 180
    assert Reward.objects.get(pk=reward.pk).stock == 4


def test_redeem_replayed_with_the_same_key_debits_once(api, enrolled):
    account = give_points(enrolled, 300)
    reward = reward_make(points_cost=100)
    first = api.post(redeem_path(enrolled, reward.pk), {}, format="json", HTTP_IDEMPOTENCY_KEY="same")
    again = api.post(redeem_path(enrolled, reward.pk), {}, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert Account.objects.get(pk=account.pk).available == 200


def test_redeem_errors_are_problem_json_with_codes(api, enrolled):
    give_points(enrolled, 50)
    sold_out = reward_make(points_cost=10, stock=0)
    dear = reward_make(points_cost=100)
    response = api.post(redeem_path(enrolled, sold_out.pk), {}, format="json")
    assert (response.status_code, response["Content-Type"], response.json()["code"]) == (
        409,
        "application/problem+json",
        "out_of_stock",
    )
    response = api.post(redeem_path(enrolled, dear.pk), {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "insufficient_points")
    response = api.post(redeem_path(enrolled, 999999), {}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "reward_not_found")
    assert not RewardRedemption.objects.exists()


def test_another_partner_may_not_redeem_without_the_members_code(api, other_api, enrolled):
    give_points(enrolled, 300)
    reward = reward_make(points_cost=100)
    response = other_api.post(redeem_path(enrolled, reward.pk), {}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "member_not_found")
    assert not RewardRedemption.objects.exists()


def test_another_partner_redeems_with_the_members_one_time_code_once(api, other_api, enrolled):
    give_points(enrolled, 300)
    reward = reward_make(points_cost=100)
    code = redemption_code_issue(member=Member.objects.get(member_number=enrolled))
    first = other_api.post(redeem_path(enrolled, reward.pk), {"redemption_code": code}, format="json")
    assert first.status_code == 201, first.content
    again = other_api.post(redeem_path(enrolled, reward.pk), {"redemption_code": code}, format="json")
    assert (again.status_code, again.json()["code"]) == (404, "redemption_code_invalid")  # used up
    assert RewardRedemption.objects.count() == 1


def test_reward_another_partner_honours_is_not_found(api, other_api, enrolled):
    give_points(enrolled, 300)
    theirs = reward_make(points_cost=100, partner=other_api.partner)
    response = api.post(redeem_path(enrolled, theirs.pk), {}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "reward_not_found")


def test_rewards_list_reads_the_same_number_of_queries_for_2_or_20_rewards(api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/api/v1/rewards/").status_code == 200
        return len(captured)

    for i in range(2):
        reward_make(name=f"R{i}")
    api.get("/api/v1/rewards/")  # warm: the key's configuration
    few = queries()
    for i in range(2, 20):
        reward_make(name=f"R{i}")
    api.get("/api/v1/rewards/")
    assert queries() == few


def test_reward_events_of_a_partners_call_go_to_that_partner_only(api, other_api, enrolled):
    from loyalty.partners.models import OutboxEvent
    from loyalty.partners.webhooks import event_recipient_partner_ids

    give_points(enrolled, 300)
    reward = reward_make(points_cost=100)
    assert api.post(redeem_path(enrolled, reward.pk), {}, format="json").status_code == 201
    partners = {api.partner.pk, other_api.partner.pk}
    for event_type in ("reward.redeemed", "coupon.issued"):
        event = OutboxEvent.objects.get(event_type=event_type)
        assert event_recipient_partner_ids(event=event, partner_ids=partners) == {api.partner.pk}
