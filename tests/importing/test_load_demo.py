"""``load_demo`` leaves scores behind: rules on RFM segments and predicted CLV match right away."""

import pytest
from django.core.management import call_command
from django.db.models import Sum

from loyalty.core.models import AuditEvent
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Purchase
from members.models import Member
from offers.models import Coupon, CouponUse, Offer, OfferRedemption, Reward, RewardKind
from segments.models import MemberScore, ScoreRun, Segment

pytestmark = pytest.mark.django_db


def test_load_demo_scores_every_member_with_purchases(capsys):
    call_command("load_demo", "--households", "25")
    out = capsys.readouterr().out
    buyers = set(Purchase.objects.values_list("member_id", flat=True))
    assert len(buyers) == 25
    assert set(MemberScore.objects.values_list("member_id", flat=True)) == buyers
    run = ScoreRun.objects.get()
    assert run.members_scored == 25 and run.fit_members == 25
    assert "Scores: RFM and CLV of 25 members, predicted value by" in out
    assert not MemberScore.objects.filter(predicted_clv__isnull=True).exists()


def test_load_demo_brings_campaign_offers_rewards_and_bonus_offers_once(capsys):
    """The demo has the data's campaigns as offers, one reward of each kind with stock, the
    bonus-point offers, and a reward within reach of the demo member; a rerun adds nothing."""
    call_command("load_demo", "--households", "25")
    counts = [m.objects.count() for m in (Offer, Reward, Coupon, CouponUse, OfferRedemption, Segment, AuditEvent)]
    program = ledger_selectors.program_default()

    assert Offer.objects.filter(program=program, source="complete_journey").count() == 27
    assert CouponUse.objects.exists() and OfferRedemption.objects.exists()
    assert {r.kind for r in Reward.objects.filter(program=program)} == set(RewardKind.values)
    assert Reward.objects.filter(stock__isnull=False).count() >= 4
    bonus = Offer.objects.filter(program=program, source="")
    assert {o.benefit_kind for o in bonus} == {"bonus_multiplier", "bonus_fixed"}
    assert bonus.filter(requires_activation=True).exists() and bonus.filter(points_budget__isnull=False).exists()
    assert bonus.filter(condition_kind="birthday_month").exists()
    assert bonus.get(name="Gold: triple points on seafood").tiers.get().name == "Gold"
    dairy = bonus.get(name="Double points on dairy").segments_include.get()
    assert dairy.size > 0  # refreshed: the demo's households buy dairy
    assert AuditEvent.objects.filter(actor_label="load_demo", action="reward.created").count() == Reward.objects.count()
    assert AuditEvent.objects.filter(actor_label="load_demo", action="offer.created").count() == bonus.count()

    member = Member.objects.get(external_id="cj-1")
    balance = ledger_selectors.member_account(member=member, program=program).available
    near = Reward.objects.get(name="Weekend brunch for two")
    assert balance < near.points_cost <= max(100, balance * 1.08 + 50)
    assert Reward.objects.filter(points_cost__lte=balance).exists()  # and some are already affordable

    call_command("load_demo", "--households", "25")
    assert [m.objects.count() for m in (Offer, Reward, Coupon, CouponUse, OfferRedemption, Segment)] == counts[:-1]
    assert (
        AuditEvent.objects.filter(action__in=["reward.created", "offer.created"]).count() == Reward.objects.count() + 5
    )


def test_load_demo_fills_the_dashboards_summaries(capsys):
    """After `make run` the staff dashboards show the demo's history, not "no summary yet": load_demo
    runs the dashboards refresh over every day with data."""
    from loyalty.dashboards.models import DailyFact

    call_command("load_demo", "--households", "25")
    assert "Dashboards refreshed from" in capsys.readouterr().out
    assert DailyFact.objects.aggregate(n=Sum("purchases"))["n"] == Purchase.objects.count() > 0
