"""The Complete Journey replay: an imported campaign's targeted households against the program's other
active members, over the campaign's days, on a fixture built through the real import path."""

import datetime as dt
import itertools
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command

from loyalty.campaigns.selectors.replay import REPLAY_CAVEAT, imported_campaigns, replay, replay_all, replay_arms
from loyalty.core import clock
from loyalty.ledger import services as ledger
from loyalty.ledger.selectors import program_default
from offers.models import Offer
from offers.services.bulk import CampaignIn, CouponUsed, campaign_offers_record
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

START = dt.date(2030, 3, 1)
END = dt.date(2030, 3, 14)  # last day of the campaign
_ids = itertools.count(1)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def buy(program, who, day: dt.date, amount: str, *, hour: int = 12):
    return ledger.purchase_create(
        program=program,
        member=who,
        external_id=f"r-{next(_ids)}",
        occurred_at=at(day, hour),
        lines=[{"sku": "SKU-1", "category": "grocery", "quantity": 1, "amount": Decimal(amount), "discount": 0}],
    )


@pytest.fixture
def world():
    """Campaign 8 targeted a and b; c and d are other active members; e never bought.

    a: 30.00 on the first day + 5.00 on the last (+ 40.00 the day after the window: outside) → 35.00, converted
    b: bought only before the window → 0.00, not converted
    c: 12.00 in the window, 2.00 of it returned → 10.00, converted
    d: 5.00 in the window, returned in full → 0.00, not converted
    a used the campaign's coupon twice in the window (coupon value 1.50 → reward cost 3.00).
    """
    clock.set_now(dt.datetime(2030, 6, 1, tzinfo=dt.UTC))
    program = program_default()
    a, b, c, d, e = (MemberFactory() for _ in range(5))
    buy(program, a, START, "30.00", hour=0)
    buy(program, a, END, "5.00", hour=23)
    buy(program, a, END + dt.timedelta(days=1), "40.00", hour=0)
    buy(program, b, START - dt.timedelta(days=1), "50.00", hour=23)
    returned = buy(program, c, START + dt.timedelta(days=3), "12.00")
    ledger.purchase_return_clawback(purchase=returned, external_id="ret-c", amount="2.00")
    full = buy(program, d, START + dt.timedelta(days=4), "5.00")
    ledger.purchase_return_clawback(purchase=full, external_id="ret-d", amount="5.00")
    campaign = CampaignIn(
        external_id="8",
        kind="Type A",
        starts_on=START,
        ends_on=END,
        skus=["SKU-1"],
        coupons={"111": 2},
        targeted=2,
        coupon_value=Decimal("1.50"),
    )
    campaign_offers_record(
        program=program,
        source="complete_journey",
        campaigns=[campaign],
        targets=[("8", a.pk), ("8", b.pk)],
        used=[CouponUsed("8", a.pk, "111", START), CouponUsed("8", a.pk, "111", END)],
    )
    offer = Offer.objects.get(source="complete_journey", external_id="8")
    return {"program": program, "offer": offer, "a": a, "b": b, "c": c, "d": d, "e": e}


def test_targeted_arm_is_the_campaign_segment_and_holdout_the_other_active_members(world):
    targeted, holdout = replay_arms(world["offer"])
    assert (targeted.name, targeted.is_holdout, len(targeted.revenue)) == ("targeted", False, 2)
    # e never bought: not an active member of the data, so in neither arm
    assert (holdout.name, holdout.is_holdout, len(holdout.revenue)) == ("holdout", True, 2)


def test_revenue_is_kept_spend_inside_the_campaign_days_and_conversion_a_purchase_not_fully_returned(world):
    targeted, holdout = replay_arms(world["offer"])
    # members in id order: a, b | c, d
    assert list(targeted.revenue) == [35.0, 0.0]
    assert targeted.converted == 1
    assert list(holdout.revenue) == [10.0, 0.0]
    assert holdout.converted == 1


def test_coupon_uses_count_as_clicks_and_their_value_as_reward_cost(world):
    targeted, holdout = replay_arms(world["offer"])
    assert (targeted.delivered, targeted.clicked) == (2, 1)
    assert targeted.reward_cost == Decimal("3.00")  # 2 uses × 1.50
    assert (holdout.delivered, holdout.clicked, holdout.reward_cost) == (0, 0, 0)


def test_replay_figures_come_from_campaign_results(world):
    result = replay(world["offer"], bootstrap=200)
    assert (result.external_id, result.starts_on, result.ends_on) == ("8", START, END)
    assert result.caveat == REPLAY_CAVEAT
    (comparison,) = result.results.comparisons
    # conversion 1/2 vs 1/2: no difference; revenue per member 17.50 vs 5.00: +12.50 × 2 = 25.00, less 3.00
    assert comparison.conversion_diff == 0
    assert comparison.revenue_per_member_diff == pytest.approx(12.5)
    assert comparison.incremental_revenue == Decimal("25.00")
    assert comparison.roi == Decimal("22.00")


def test_replay_all_reads_every_imported_campaign_in_number_order(world):
    campaign_offers_record(
        program=world["program"],
        source="complete_journey",
        campaigns=[CampaignIn(external_id="10", kind="Type B", starts_on=START, ends_on=END)],
        targets=[("10", world["c"].pk)],
    )
    assert [o.external_id for o in imported_campaigns()] == ["8", "10"]
    replays = replay_all(bootstrap=100)
    assert [r.external_id for r in replays] == ["8", "10"]
    targeted, holdout = replays[1].arms
    assert np.array_equal(targeted.revenue, [10.0])
    assert sorted(holdout.revenue) == [0.0, 0.0, 35.0]  # a, b, d


def test_replay_all_without_imported_campaigns_is_empty(db):
    assert replay_all() == []


def test_replay_all_runs_in_two_queries_plus_three_per_campaign(world, django_assert_num_queries):
    campaign_offers_record(
        program=world["program"],
        source="complete_journey",
        campaigns=[CampaignIn(external_id="9", kind="Type B", starts_on=START, ends_on=END)],
        targets=[("9", world["d"].pk)],
    )
    # the offers, the members with purchases; per campaign: kept spend, coupon uses, its segment's members
    with django_assert_num_queries(2 + 3 * 2):
        replay_all(bootstrap=50)


def test_campaign_replay_command_prints_one_row_per_campaign_and_the_caveat(world, capsys):
    call_command("campaign_replay", "--bootstrap", "100")
    out = capsys.readouterr().out
    assert "CJ campaign 8 (Type A)" in out
    assert "not randomized" in out
    assert "+12.50" in out  # revenue per member difference
