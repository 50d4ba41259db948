"""Challenges: progress from purchases and events, completion awarded once (points, a free reward,
a badge), opt-in, audience, and the nightly set-based recomputation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.activity.services import event_record
from loyalty.core import clock
from loyalty.engagement.models import ChallengeCompletion, ChallengeProgress, MemberBadge
from loyalty.engagement.selectors.challenges import challenge_completion_rates, member_badges, member_challenges
from loyalty.engagement.services.challenges import challenge_opt_in, challenge_progress_recompute
from loyalty.ledger.models import Account, LedgerTransaction
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import OutboxEvent, Partner
from offers.models import Coupon, Reward
from tests.engagement.challenge_helpers import T, badge, buy, challenge, event_type
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def _progress(c, member) -> Decimal | None:
    return ChallengeProgress.objects.filter(challenge=c, member=member).values_list("value", flat=True).first()


def _challenge_credits(member) -> int:
    return LedgerTransaction.objects.filter(
        idempotency_key__startswith="challenge:", entries__account__member=member
    ).count()


def test_three_dairy_purchases_complete_the_challenge_and_award_its_points_once():
    c = challenge(category="Dairy", reward_points=100)
    member = MemberFactory()
    buy(member, "p1")
    buy(member, "p2", category="Bakery")  # another category: does not count
    buy(member, "p3")
    assert _progress(c, member) == 2 and not ChallengeCompletion.objects.exists()
    buy(member, "p4")
    completion = ChallengeCompletion.objects.get(challenge=c, member=member)
    assert completion.points == 100 and completion.ledger_transaction is not None
    buy(member, "p5")  # after completion: nothing more
    assert ChallengeCompletion.objects.filter(member=member).count() == 1
    assert _challenge_credits(member) == 1
    assert OutboxEvent.objects.filter(event_type="challenge.completed", member=member).count() == 1
    account = Account.objects.get(member=member, program=program_default())
    assert account.earned == 5 * 10 + 100


def test_spend_challenge_counts_the_amounts_paid_and_completes_at_its_target():
    c = challenge(kind="spend", target=Decimal("200"), category="")
    member = MemberFactory()
    buy(member, "p1", amount="120.00")
    assert _progress(c, member) == Decimal("120.00")
    buy(member, "p2", amount="80.00")
    assert ChallengeCompletion.objects.filter(challenge=c, member=member).exists()


def test_partners_visited_counts_each_partner_once():
    c = challenge(kind="partners_visited", target=Decimal("2"), category="")
    a, b = Partner.objects.create(name="A shop"), Partner.objects.create(name="B shop")
    member = MemberFactory()
    buy(member, "p1", partner=a)
    buy(member, "p2", partner=a)
    assert _progress(c, member) == 1
    buy(member, "p3", partner=b)
    assert ChallengeCompletion.objects.filter(challenge=c, member=member).exists()


def test_stores_visited_counts_each_store_once():
    c = challenge(kind="stores_visited", target=Decimal("2"), category="")
    a = Partner.objects.create(name="A shop")
    member = MemberFactory()
    buy(member, "p1", partner=a, store="S1")
    buy(member, "p2", partner=a, store="S1")
    buy(member, "p3", partner=a)  # no store code: not a store visit
    assert _progress(c, member) == 1
    buy(member, "p4", partner=a, store="S2")
    assert ChallengeCompletion.objects.filter(challenge=c, member=member).exists()


def test_event_count_challenge_counts_events_of_its_type_only():
    survey = event_type("survey_completed")
    event_type("app_login", "App login")
    c = challenge(kind="event_count", event_type=survey, target=Decimal("1"), category="", reward_points=30)
    member = MemberFactory()
    event_record(partner=None, member_number=member.member_number, event_type="app_login")
    assert _progress(c, member) is None
    event_record(partner=None, member_number=member.member_number, event_type="survey_completed")
    assert ChallengeCompletion.objects.get(challenge=c, member=member).points == 30


def test_purchases_outside_the_window_do_not_count():
    c = challenge(category="Dairy", target=Decimal("1"))
    member = MemberFactory()
    buy(member, "april", at=dt.datetime(2030, 4, 30, 23, tzinfo=dt.UTC))
    assert _progress(c, member) is None


def test_opt_in_challenge_counts_only_what_the_member_does_after_joining():
    c = challenge(category="Dairy", target=Decimal("2"), requires_opt_in=True)
    member = MemberFactory()
    buy(member, "before")
    assert _progress(c, member) is None
    clock.set_now(T + dt.timedelta(hours=1))
    _row, created = challenge_opt_in(member=member, challenge_id=c.pk)
    assert created and challenge_opt_in(member=member, challenge_id=c.pk)[1] is False
    buy(member, "after-1")
    assert _progress(c, member) == 1
    buy(member, "after-2")
    assert ChallengeCompletion.objects.filter(challenge=c, member=member).exists()


def test_opt_in_refused_for_unknown_or_not_opt_in_challenges():
    from loyalty.core.errors import Conflict, NotFound

    c = challenge()
    member = MemberFactory()
    with pytest.raises(Conflict) as refused:
        challenge_opt_in(member=member, challenge_id=c.pk)
    assert refused.value.code == "challenge_opt_in_not_required"
    with pytest.raises(NotFound):
        challenge_opt_in(member=member, challenge_id=c.pk + 999)


def test_challenge_for_a_segment_ignores_members_outside_it():
    from segments.models import Segment, SegmentMembership

    segment = Segment.objects.create(name="Dairy lovers", kind="static", created_at=T, updated_at=T)
    c = challenge(category="Dairy", target=Decimal("1"), segments=[segment])
    inside, outside = MemberFactory(), MemberFactory()
    SegmentMembership.objects.create(segment=segment, member=inside, entered_at=T)
    buy(inside, "in-1")
    buy(outside, "out-1")
    assert ChallengeCompletion.objects.filter(challenge=c, member=inside).exists()
    assert _progress(c, outside) is None


def test_completion_issues_the_reward_free_and_takes_one_from_stock():
    reward = Reward.objects.create(
        program=program_default(),
        name="Free cheese",
        kind="free_product",
        points_cost=500,
        stock=1,
        created_at=T,
        updated_at=T,
    )
    c = challenge(category="Dairy", target=Decimal("1"), reward=reward, reward_points=0)
    first, second = MemberFactory(), MemberFactory()
    buy(first, "f1")
    buy(second, "s1")
    done = ChallengeCompletion.objects.get(challenge=c, member=first)
    assert done.coupon.reward == reward and done.coupon.member == first and done.points == 0
    missed = ChallengeCompletion.objects.get(challenge=c, member=second)
    assert missed.coupon is None and "out of stock" in missed.note
    reward.refresh_from_db()
    assert reward.stock == 0 and Coupon.objects.filter(reward=reward).count() == 1
    assert Account.objects.get(member=first).available == 10  # the purchase's points only: nothing debited


def test_completion_gives_the_badge_and_the_portal_lists_earned_and_available_badges():
    earned_badge, other = badge("Dairy fan", "leaf"), badge("Explorer", "star")
    c = challenge(category="Dairy", target=Decimal("1"), badge=earned_badge)
    challenge(name="Explore", kind="partners_visited", target=Decimal("3"), badge=other)
    member = MemberFactory()
    buy(member, "p1")
    assert MemberBadge.objects.filter(member=member, badge=earned_badge, challenge=c).exists()
    earned, available = member_badges(member=member)
    assert [b.name for b in earned] == ["Dairy fan"] and [b.name for b in available] == ["Explorer"]
    assert earned[0].picture.endswith("engagement/badges/leaf.svg")


def test_portal_cards_show_progress_in_words_and_a_percentage():
    challenge(category="Dairy", target=Decimal("3"), reward_points=100)
    member = MemberFactory()
    buy(member, "p1")
    [card] = member_challenges(member=member, program=program_default(), now=T)
    assert (card.goal, card.progress_text, card.percent) == ("3 purchases in Dairy", "1 of 3 done", 33)
    assert card.reward_text == "100 points"


def test_nightly_recomputation_finds_purchases_made_before_the_challenge_existed_and_awards_once():
    member, other = MemberFactory(), MemberFactory()
    for i in range(3):
        buy(member, f"m{i}")
    buy(other, "o1")
    c = challenge(category="Dairy", target=Decimal("3"))
    report = challenge_progress_recompute(challenge=c)
    assert report.completed == 1
    assert _progress(c, member) == 3 and _progress(c, other) == 1
    assert ChallengeCompletion.objects.get(challenge=c, member=member).ledger_transaction is not None
    again = challenge_progress_recompute(challenge=c)
    assert again.completed == 0 and _challenge_credits(member) == 1
    assert OutboxEvent.objects.filter(event_type="challenge.completed").count() == 1


def test_recomputation_gives_the_same_figures_as_the_workflow_for_every_kind():
    a, b = Partner.objects.create(name="A shop"), Partner.objects.create(name="B shop")
    survey = event_type("survey_completed")
    kinds = [
        challenge(name="count", kind="purchase_count", category="Dairy", target=Decimal("50")),
        challenge(name="spend", kind="spend", category="", target=Decimal("5000")),
        challenge(name="spend dairy", kind="spend", category="Dairy", target=Decimal("5000")),
        challenge(name="partners", kind="partners_visited", category="", target=Decimal("50")),
        challenge(name="stores", kind="stores_visited", category="", target=Decimal("50")),
        challenge(name="surveys", kind="event_count", event_type=survey, category="", target=Decimal("50")),
    ]
    member = MemberFactory()
    buy(member, "1", partner=a, store="S1", amount="12.50")
    buy(member, "2", partner=b, store="S1", category="Bakery", amount="3.00")
    buy(member, "3", partner=a, store="S2")
    event_record(partner=None, member_number=member.member_number, event_type="survey_completed")
    live = {c.name: _progress(c, member) for c in kinds}
    for c in kinds:
        challenge_progress_recompute(challenge=c)
    assert {c.name: _progress(c, member) for c in kinds} == live
    assert live == {
        "count": 2,
        "spend": Decimal("25.50"),
        "spend dairy": Decimal("22.50"),
        "partners": 2,
        "stores": 3,
        "surveys": 1,
    }


def test_completion_rates_count_participants_and_completions():
    c = challenge(category="Dairy", target=Decimal("2"))
    done, halfway = MemberFactory(), MemberFactory()
    buy(done, "d1")
    buy(done, "d2")
    buy(halfway, "h1")
    rate = challenge_completion_rates(challenge_ids=[c.pk])[c.pk]
    assert (rate.participants, rate.completed, rate.text) == (2, 1, "1 of 2 (50%)")


def test_recomputation_never_lowers_progress():
    c = challenge(category="Dairy", target=Decimal("5"))
    member = MemberFactory()
    buy(member, "p1")
    ChallengeProgress.objects.filter(challenge=c, member=member).update(value=2)  # e.g. counted by a workflow meanwhile
    report = challenge_progress_recompute(challenge=c)
    assert report.progress_rows == 0 and _progress(c, member) == 2


def test_the_members_data_export_lists_challenges_badges_and_events():
    from members.services import member_export

    fan = badge("Dairy fan", "leaf")
    challenge(category="Dairy", target=Decimal("1"), badge=fan)
    member = MemberFactory()
    buy(member, "p1")
    exported = member_export(member=member)["engagement"]
    assert exported["challenges_completed"][0]["challenge"] == "Dairy in May"
    assert exported["badges"] == [{"badge": "Dairy fan", "earned_at": T.isoformat()}]


def _taken_back(member) -> int:
    from django.db.models import Sum

    from loyalty.ledger.models import Entry

    return -(
        Entry.objects.filter(
            account__member=member, transaction__idempotency_key__endswith=":reverse", points__lt=0
        ).aggregate(s=Sum("points"))["s"]
        or 0
    )


def test_a_full_return_of_the_purchase_that_completed_a_challenge_takes_its_points_back_once():
    from loyalty.activity.services import return_record

    c = challenge(category="Dairy", reward_points=100)
    member = MemberFactory()
    for external_id in ("p1", "p2", "p3"):
        buy(member, external_id)
    completion = ChallengeCompletion.objects.get(challenge=c, member=member)
    assert completion.purchase.external_id == "p3"

    return_record(partner=None, purchase_external_id="p1", external_id="r1", amount="10.00")  # not the completing one
    return_record(partner=None, purchase_external_id="p3", external_id="r3", amount="4.00")  # partial
    assert _taken_back(member) == 0
    return_record(partner=None, purchase_external_id="p3", external_id="r3b", amount="6.00")  # now in full
    return_record(partner=None, purchase_external_id="p3", external_id="r3b", amount="6.00")  # a repeat

    completion.refresh_from_db()
    assert completion.reversed_at is not None and _taken_back(member) == 100
    assert OutboxEvent.objects.filter(event_type="challenge.reversed", member=member).count() == 1
    assert Account.objects.get(member=member, program=program_default()).available == 3 * 10 + 100 - 20 - 100
    buy(member, "p4")  # completed once: not awarded again
    assert ChallengeCompletion.objects.filter(member=member).count() == 1 and _challenge_credits(member) == 2


def test_a_return_after_the_return_window_keeps_the_challenges_points():
    from loyalty.activity.services import return_record

    program = program_default()
    program.pending_days = 14
    program.save()
    challenge(category="Dairy", reward_points=100, target=Decimal("1"))
    member = MemberFactory()
    buy(member, "p1")
    clock.set_now(T + dt.timedelta(days=15))
    return_record(partner=None, purchase_external_id="p1", external_id="r1", amount="10.00")
    assert _taken_back(member) == 0 and ChallengeCompletion.objects.get(member=member).reversed_at is None
