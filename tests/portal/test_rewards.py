"""The portal's rewards: the catalog filtered to what the member may redeem (and how far they are
from the rest), redemption behind a confirmation step that acts once per form, the coupon wallet
with scannable codes, and cancelling while the coupon is unused. Refusals are messages on the
page and change nothing; another member's redemption or coupon is 404."""

from __future__ import annotations

import re

import pytest

from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account
from offers.models import Coupon, CouponStatus, RedemptionState, RewardRedemption
from offers.services.coupons import coupon_redeem
from offers.services.rewards import reward_redeem
from tests.offers.conftest import offer_make, reward_make
from tests.portal.conftest import logged_in

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def give(member, program, points: int) -> Account:
    account = ledger.account_open(member=member, program=program)
    ledger.points_credit(account=account, points=points, reason="test")
    return account


def balance(member, program) -> int:
    return Account.objects.get(member=member, program=program, kind="member").available


def token_of(response) -> str:
    return re.search(r'name="token" value="([0-9a-f]{32})"', response.content.decode()).group(1)


def redeem_in_portal(client, reward, token=None):
    token = token or token_of(client.get(f"/rewards/{reward.pk}/redeem/"))
    return client.post(f"/rewards/{reward.pk}/redeem/", {"token": token})


def test_catalog_splits_affordable_rewards_from_those_points_away_with_the_points_missing(
    program, member, member_client
):
    give(member, program, 300)
    reward_make(name="Coffee", points_cost=200)
    reward_make(name="Cinema", points_cost=1200)
    reward_make(name="Gold lounge", points_cost=100, tiers=[program.tiers.order_by("-rank").first()])

    page = text(member_client.get("/rewards/"))

    can, _, rest = page.partition("Keep collecting for these")
    assert "Coffee" in can and "Cinema" not in can
    assert "Cinema" in rest and "900 more points needed" in rest
    assert 'value="25"' in member_client.get("/rewards/").content.decode()  # 300 of 1,200
    assert "Gold lounge" not in page  # a reward for another tier is not offered


def test_redeeming_after_the_confirmation_debits_points_and_puts_the_coupon_in_the_wallet(
    program, member, member_client
):
    give(member, program, 300)
    reward = reward_make(name="Coffee", points_cost=200)

    confirm = member_client.get(f"/rewards/{reward.pk}/redeem/")
    assert "Yes, redeem for 200 points" in text(confirm) and RewardRedemption.objects.count() == 0
    response = member_client.post(f"/rewards/{reward.pk}/redeem/", {"token": token_of(confirm)}, follow=True)

    found = RewardRedemption.objects.get(member=member)
    assert found.channel == "portal" and found.points == 200
    assert balance(member, program) == 100
    page = text(response)
    assert response.redirect_chain[-1][0] == "/wallet/"
    assert f"Your coupon {found.coupon.code} is in your wallet" in page
    assert "data:image/svg+xml;base64," in response.content.decode()  # QR and barcode of the code


def test_a_double_submit_of_one_confirmation_redeems_once(program, member, member_client):
    give(member, program, 1000)
    reward = reward_make(points_cost=200)
    token = token_of(member_client.get(f"/rewards/{reward.pk}/redeem/"))

    first = redeem_in_portal(member_client, reward, token)
    second = redeem_in_portal(member_client, reward, token)

    assert first.status_code == second.status_code == 302
    assert RewardRedemption.objects.filter(member=member).count() == 1
    assert balance(member, program) == 800


def test_each_confirmation_page_redeems_anew(program, member, member_client):
    give(member, program, 1000)
    reward = reward_make(points_cost=200)

    redeem_in_portal(member_client, reward)
    redeem_in_portal(member_client, reward)

    assert RewardRedemption.objects.filter(member=member).count() == 2


@pytest.mark.parametrize(
    ("setup", "status", "words"),
    [
        ({"points_cost": 500}, 409, "You do not have enough points for this yet"),
        ({"points_cost": 100, "stock": 0}, 409, "out of stock"),
        ({"points_cost": 100, "per_member_limit": 0}, 409, "as often as it allows"),
    ],
)
def test_a_refused_redemption_is_a_form_error_and_changes_nothing(program, member, member_client, setup, status, words):
    give(member, program, 300)
    reward = reward_make(**setup)
    token = token_of(member_client.get(f"/rewards/{reward.pk}/redeem/"))

    response = member_client.post(f"/rewards/{reward.pk}/redeem/", {"token": token})

    assert response.status_code == status
    assert words.lower() in text(response).lower()
    assert balance(member, program) == 300
    assert not RewardRedemption.objects.exists() and not Coupon.objects.exists()


def test_a_reward_the_member_may_not_have_is_refused_with_the_reason(program, member, member_client):
    give(member, program, 300)
    reward = reward_make(points_cost=100, tiers=[program.tiers.order_by("-rank").first()])

    page = member_client.get(f"/rewards/{reward.pk}/redeem/")
    response = member_client.post(f"/rewards/{reward.pk}/redeem/", {"token": token_of(page)})

    assert "This reward is for other tiers" in text(page) and "disabled" in page.content.decode()
    assert response.status_code == 422 and "This reward is for other tiers" in text(response)
    assert balance(member, program) == 300


def test_a_tampered_token_redeems_nothing(program, member, member_client):
    give(member, program, 300)
    reward = reward_make(points_cost=100)

    response = member_client.post(f"/rewards/{reward.pk}/redeem/", {"token": "not-a-token"})

    assert response.status_code == 400 and "Please confirm again" in text(response)
    assert not RewardRedemption.objects.exists()


def test_an_inactive_or_unknown_reward_is_404(program, member_client):
    gone = reward_make(is_active=False)

    assert member_client.get(f"/rewards/{gone.pk}/redeem/").status_code == 404
    assert member_client.get("/rewards/999999/redeem/").status_code == 404


def test_cancelling_an_unused_reward_gives_the_points_back_and_cancels_the_coupon(program, member, member_client):
    give(member, program, 300)
    done = reward_redeem(
        member=member, reward=reward_make(name="Coffee", points_cost=200), channel="portal", idempotency_key="k1"
    )

    assert "Yes, cancel" in text(member_client.get(f"/wallet/rewards/{done.pk}/cancel/"))
    response = member_client.post(f"/wallet/rewards/{done.pk}/cancel/", follow=True)

    done.refresh_from_db()
    assert done.status == RedemptionState.CANCELLED
    assert Coupon.objects.get(pk=done.coupon_id).status == CouponStatus.CANCELLED
    assert balance(member, program) == 300
    assert "Coffee cancelled: 200 points are back" in text(response)
    assert done.coupon.code not in text(response).split("Rewards you redeemed")[0]  # no longer in the wallet


def test_a_reward_whose_coupon_was_used_cannot_be_cancelled(program, member, member_client):
    give(member, program, 300)
    done = reward_redeem(member=member, reward=reward_make(points_cost=200), channel="portal", idempotency_key="k2")
    coupon_redeem(code=done.coupon.code, member=member)

    response = member_client.post(f"/wallet/rewards/{done.pk}/cancel/", follow=True)

    done.refresh_from_db()
    assert done.status == RedemptionState.COMPLETED and balance(member, program) == 100
    assert "The coupon of this redemption was used" in text(response)


def test_the_wallet_offers_cancel_only_for_unused_reward_coupons(program, member, member_client):
    give(member, program, 300)
    done = reward_redeem(member=member, reward=reward_make(points_cost=100), channel="portal", idempotency_key="k3")

    page = member_client.get("/wallet/").content.decode()

    assert f"/wallet/rewards/{done.pk}/cancel/" in page
    assert f"/wallet/{done.coupon_id}/" in page
    coupon = member_client.get(f"/wallet/{done.coupon_id}/")
    assert coupon.status_code == 200 and done.coupon.code in text(coupon) and coupon["Cache-Control"] == "no-store"


def test_another_members_redemption_and_coupon_are_404(program, member, other_member):
    give(member, program, 300)
    done = reward_redeem(member=member, reward=reward_make(points_cost=100), channel="portal", idempotency_key="k4")
    intruder = logged_in(other_member)

    assert intruder.get(f"/wallet/{done.coupon_id}/").status_code == 404
    assert intruder.get(f"/wallet/rewards/{done.pk}/cancel/").status_code == 404
    assert intruder.post(f"/wallet/rewards/{done.pk}/cancel/").status_code == 404
    done.refresh_from_db()
    assert done.status == RedemptionState.COMPLETED and balance(member, program) == 200
    assert done.coupon.code not in intruder.get("/wallet/").content.decode()


# Queries per page, pinned with offers, rewards and coupons in the ranking, the catalog and the wallet: the same with
# three times as many.
REWARD_PAGE_BUDGET = {"/home/": 40, "/offers/": 19, "/rewards/": 16, "/wallet/": 5}


@pytest.mark.parametrize(("url", "budget"), REWARD_PAGE_BUDGET.items())
def test_reward_pages_make_a_constant_number_of_queries(
    program, member, member_client, django_assert_num_queries, url, budget
):
    give(member, program, 10_000)

    def more():
        for n in range(2):
            reward_make(name=f"Cheap {n}", points_cost=100, stock=5, per_member_limit=3)
            reward_make(name=f"Dear {n}", points_cost=50_000)
            offer_make(name=f"Offer {n}", requires_activation=n == 0)
            reward_redeem(
                member=member,
                reward=reward_make(points_cost=10),
                channel="portal",
                idempotency_key=f"q{n}-{Coupon.objects.count()}",
            )

    more()
    member_client.get(url)  # warm the configuration cache
    with django_assert_num_queries(budget):
        assert member_client.get(url).status_code == 200
    more()
    more()
    with django_assert_num_queries(budget):
        member_client.get(url)
