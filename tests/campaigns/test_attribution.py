"""Attribution of a campaign's arms, on a fixture worked out by hand: purchases (net of returns)
inside [launch, launch + attribution days) count for the buyer's arm, the holdout included; offer
points and reward costs of the campaign's offers and rewards in the window; message counts."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from loyalty.activity.services.purchases import purchase_record, return_record
from loyalty.campaigns import assignment
from loyalty.campaigns.models import HOLDOUT, Campaign
from loyalty.campaigns.selectors.attribution import attribution_window, campaign_arms
from loyalty.campaigns.services import campaigns as services
from loyalty.core import clock
from loyalty.messaging.models import Message
from offers.services.rewards import reward_redeem
from tests.campaigns.conftest import NOON, make_campaign, make_program_member, make_segment
from tests.offers.conftest import offer_make, reward_make

pytestmark = pytest.mark.django_db
_purchases = itertools.count()


def buy(member, amount, at):
    clock.set_now(at)
    return purchase_record(
        partner=None,
        member=member,
        external_id=f"p{next(_purchases)}",
        occurred_at=at,
        lines=[{"sku": "x", "amount": str(amount)}],
    ).purchase


def key_splitting(member_ids, treated, holdout_percent):
    """A campaign key that puts the first ``treated`` members in A and the rest in the holdout."""
    arms = assignment.Arms.of(holdout_percent=holdout_percent, variants=[("A", 1)])
    for n in itertools.count():
        key = f"key-{n}"
        got = [assignment.arm_of(key=key, member_id=m, arms=arms) for m in member_ids]
        if got == ["A"] * treated + [HOLDOUT] * (len(member_ids) - treated):
            return key
    return None


@pytest.fixture
def campaign_with_activity(django_capture_on_commit_callbacks):
    clock.set_now(NOON - dt.timedelta(days=1))
    m1, m2, m3, h1, h2 = (make_program_member() for _ in range(5))
    offer = offer_make(benefit_points=10)  # 10 bonus points on any purchase
    reward = reward_make(points_cost=5, cost_to_business=Decimal("3.00"))
    campaign = make_campaign(
        include=[make_segment("all", [m1, m2, m3, h1, h2])], holdout_percent=50, attribution_days=7
    )
    campaign.offers.set([offer])
    campaign.rewards.set([reward])
    Campaign.objects.filter(pk=campaign.pk).update(secret_key=key_splitting([m1.pk, m2.pk, m3.pk, h1.pk, h2.pk], 3, 50))
    campaign.refresh_from_db()
    buy(m1, 50, NOON - dt.timedelta(hours=1))  # before the launch: not counted

    clock.set_now(NOON)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_launch(campaign=campaign, actor="test")

    first = buy(m1, 100, NOON + dt.timedelta(days=1))  # counted, then 30 returned: 70
    clock.set_now(NOON + dt.timedelta(days=1, hours=2))
    return_record(partner=None, purchase_external_id=first.external_id, external_id="r1", amount="30")
    clock.set_now(NOON + dt.timedelta(days=2))
    reward_redeem(member=m1, reward=reward, channel="test", idempotency_key="m1-reward")  # counted: 3.00
    buy(m2, 40, NOON + dt.timedelta(days=6, hours=23))  # counted: 40
    buy(m2, 60, NOON + dt.timedelta(days=7))  # the window's end is excluded
    buy(h1, 20, NOON + dt.timedelta(days=2))  # holdout, counted: 20
    clock.set_now(NOON + dt.timedelta(days=8))
    reward_redeem(member=h1, reward=reward, channel="test", idempotency_key="h1-reward")  # after the window
    Message.objects.filter(campaign_id=campaign.pk, member=m1).update(opened_at=NOON, clicked_at=NOON)
    Message.objects.filter(campaign_id=campaign.pk, member=m2).update(opened_at=NOON)
    return campaign


def test_window_is_launch_plus_attribution_days(campaign_with_activity):
    assert attribution_window(campaign_with_activity) == (NOON, NOON + dt.timedelta(days=7))


def test_arms_count_purchases_net_of_returns_inside_the_window(campaign_with_activity):
    holdout, treated = campaign_arms(campaign_with_activity)

    assert (holdout.name, holdout.is_holdout) == (HOLDOUT, True)
    assert sorted(holdout.revenue) == [0.0, 20.0]
    assert holdout.converted == 1
    assert (treated.name, treated.is_holdout) == ("A", False)
    assert sorted(treated.revenue) == [0.0, 40.0, 70.0]
    assert treated.converted == 2


def test_message_figures_come_from_the_campaigns_messages(campaign_with_activity):
    holdout, treated = campaign_arms(campaign_with_activity)

    assert (treated.delivered, treated.opened, treated.clicked) == (3, 2, 1)
    assert (holdout.delivered, holdout.opened, holdout.clicked) == (0, 0, 0)
    assert treated.message_cost == Decimal("0.003")  # 3 emails at 0.001
    assert holdout.message_cost == 0


def test_costs_are_offer_points_at_point_value_and_rewards_in_the_window(campaign_with_activity):
    holdout, treated = campaign_arms(campaign_with_activity)

    # bonus points in the window: m1's 100 and m2's 40 (10 each) for A, h1's 20 for the holdout; 0.01 a point
    assert treated.points_cost == Decimal("0.20")
    assert holdout.points_cost == Decimal("0.10")
    assert treated.reward_cost == Decimal("3.00")
    assert holdout.reward_cost == 0  # redeemed after the window


def test_a_draft_has_empty_arms():
    campaign = make_campaign(holdout_percent=10)

    arms = campaign_arms(campaign)

    assert [(a.name, len(a.revenue), a.converted) for a in arms] == [(HOLDOUT, 0, 0), ("A", 0, 0)]
