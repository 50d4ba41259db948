"""Promise 7: returns and reversals are exact and never happen twice, over real HTTP (gunicorn,
tests/verify/races_http.py): partial returns add up to the full one by docs/domain.md's rule
(floor(points × returned so far ÷ eligible) − points already taken back), concurrent returns never
pass what was bought, a cancelled redemption is refunded once, and a referral's rewards are reversed
with their qualifying purchase, once."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from django.db.models import Sum

from loyalty.activity.services import enrollment_record
from loyalty.core import clock
from loyalty.engagement.models import Referral, ReferralSettings
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, Entry, LedgerTransaction, Program, Return, TransactionKind
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import OutboxEvent
from loyalty.partners.services import partner_key_create
from members.models import EnrollmentSource
from tests.api.conftest import just_now
from tests.ledger.conftest import assert_ledger_invariants
from tests.verify.races_http import call, described, gunicorn_server, server_errors, tally, together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), gunicorn_server(18112) as running:
        yield running


@pytest.fixture
def program():
    """The default program with a 14-day return window (points pending meanwhile)."""
    Program.objects.filter(pk=program_default().pk).update(pending_days=14)
    return program_default()


def shop(name: str):
    partner, _, key = partner_key_create(partner_name=name, scopes=["read", "write"])
    return partner, key


def buy(server, key, member_number: str, external_id: str, amount: str):
    body = {
        "member_number": member_number,
        "external_id": external_id,
        "occurred_at": just_now(),
        "currency": "USD",
        "total": amount,
        "lines": [{"sku": "A", "category": "food", "quantity": "1", "amount": amount}],
    }
    answer = call("POST", f"{server.base}/api/v1/purchases/", key=key, body=body)
    assert answer.status == 201, answer.content
    return answer.json()


def reversed_of(member) -> int:
    """Points taken back from the member by returns (reverse entries, as a positive number)."""
    return -(Entry.objects.filter(account__member=member, kind="reverse").aggregate(s=Sum("points"))["s"] or 0)


def test_partial_returns_add_up_exactly_and_a_second_full_return_is_refused(server, program, figure):
    """Rule (docs/domain.md "Reversal / clawback"): after each return the points due back are
    floor(points earned × returned so far ÷ eligible amount) − points already taken back."""
    partner, key = shop("Returns")
    member = enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email="back@example.com")
    bought = buy(server, key, member.member_number, "till-1", "99.99")
    earned, eligible = bought["points_earned"], Decimal("99.99")
    assert earned == 99  # 99.99 × 1, rounded down once

    returns_url = f"{server.base}/api/v1/returns/"
    amounts, got, expected, so_far, taken = ["10.00", "10.00", "79.99"], [], [], Decimal("0"), 0
    for i, amount in enumerate(amounts):
        so_far += Decimal(amount)
        due = math.floor(Decimal(earned) * so_far / eligible) - taken
        taken += due
        answer = call(
            "POST",
            returns_url,
            key=key,
            body={"purchase_external_id": "till-1", "external_id": f"r-{i}", "amount": amount},
        )
        assert answer.status == 201, answer.content
        got.append(answer.json()["points_reversed"])
        expected.append(due)
    assert got == expected == [9, 10, 80], got
    assert sum(got) == earned == reversed_of(member)

    again = call(
        "POST", returns_url, key=key, body={"purchase_external_id": "till-1", "external_id": "r-0", "amount": "10.00"}
    )
    other = call(
        "POST", returns_url, key=key, body={"purchase_external_id": "till-1", "external_id": "r-0", "amount": "5.00"}
    )
    more = call(
        "POST", returns_url, key=key, body={"purchase_external_id": "till-1", "external_id": "r-9", "amount": "0.01"}
    )
    assert (again.status, again.json()["points_reversed"]) == (200, 9), again.content
    assert (other.status, other.code) == (409, "duplicate_external_id"), other.content
    assert (more.status, more.code) == (409, "purchase_already_returned"), more.content
    assert reversed_of(member) == earned and Return.objects.filter(purchase__member=member).count() == 3
    account = Account.objects.get(member=member)
    assert (account.available, account.pending, account.debt) == (0, 0, 0)
    assert_ledger_invariants(program)
    figure(
        7,
        "partial returns of a 99-point purchase of 99.99 (HTTP)",
        f"returns of {' + '.join(amounts)} took back {' + '.join(map(str, got))} = {sum(got)} of {earned} points "
        f"(rule: {' + '.join(map(str, expected))}); same return again → {again.status}, same id other amount → "
        f"{other.status} {other.code}, one cent more → {more.status} {more.code}",
    )


def test_16_concurrent_returns_never_return_more_than_was_bought(server, program, figure):
    """Rule: returned amounts are counted under the member's account lock; what is left is checked
    against them (return_exceeds_purchase), so concurrent returns never take back more than earned."""
    partner, key = shop("Rush returns")
    member = enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email="rush@example.com")
    earned = buy(server, key, member.member_number, "till-2", "99.99")["points_earned"]
    answers = together(
        16,
        lambda i: call(
            "POST",
            f"{server.base}/api/v1/returns/",
            key=key,
            body={"purchase_external_id": "till-2", "external_id": f"rush-{i}", "amount": "10.00"},
        ),
    )
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 9, (422, "return_exceeds_purchase"): 7}, counts
    due = math.floor(Decimal(earned) * Decimal("90.00") / Decimal("99.99"))
    assert reversed_of(member) == sum(a.json()["points_reversed"] for a in answers if a.status == 201) == due == 89
    assert_ledger_invariants(program)
    figure(
        7,
        "16 concurrent returns of 10.00 on a purchase of 99.99 (HTTP)",
        f"{described(counts, fivexx)}; {reversed_of(member)} points taken back (rule: {due})",
    )


def test_a_cancelled_redemption_is_refunded_once_under_16_concurrent_cancels(server, program, figure):
    """Rule (ledger points_refund): a cancel gives the redeemed points back to the lots they came
    from, once; copies of the cancel answer the first refund."""
    partner, key = shop("Refunds")
    member = enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email="refund@example.com")
    account = Account.objects.get(member=member)
    ledger.points_credit(account=account, points=100, reason="verify")
    burn = call(
        "POST",
        f"{server.base}/api/v1/redemptions/",
        key=key,
        body={"member_number": member.member_number, "points": 30, "external_id": "burn-1"},
    )
    assert burn.status == 201, burn.content
    rid = burn.json()["id"]
    answers = together(16, lambda i: call("POST", f"{server.base}/api/v1/redemptions/{rid}/cancel/", key=key, body={}))
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 1, (200, ""): 15}, counts
    assert len({a.content for a in answers}) == 1
    refunds = LedgerTransaction.objects.filter(kind=TransactionKind.REFUND, redemption_id=rid)
    assert refunds.count() == 1
    assert Account.objects.get(pk=account.pk).available == 100
    assert_ledger_invariants(program)
    figure(
        7,
        "16 concurrent cancels of one 30-point redemption (HTTP)",
        f"{described(counts, fivexx)}; {refunds.count()} refund, balance 100 → 70 → "
        f"{Account.objects.get(pk=account.pk).available}",
    )


def test_a_referrals_rewards_are_reversed_once_with_their_qualifying_purchase(server, program, figure):
    """Rule (docs/domain.md "Reversal", referral_return_check): a full return of the qualifying
    purchase within the return window takes both bonuses back, once, even when the return is sent
    16 times at once."""
    now = clock.now()
    ReferralSettings.objects.create(
        program=program,
        min_spend=Decimal("30"),
        within_days=30,
        referrer_points=500,
        referee_points=250,
        updated_at=now,
    )
    partner, key = shop("Referrals")
    referrer = enrollment_record(
        source=EnrollmentSource.PARTNER, partner=partner, email="ref@example.com", last_name="Ash", postal_code="10001"
    )
    joined = call(
        "POST",
        f"{server.base}/api/v1/members/",
        key=key,
        body={"email": "friend@example.com", "last_name": "Birch", "referral_code": referrer.referral_code},
    )
    assert joined.status == 201, joined.content
    friend_number = joined.json()["member_number"]
    buy(server, key, friend_number, "first-buy", "40.00")
    referral = Referral.objects.get(referrer=referrer)
    assert referral.status == "rewarded"
    friend = referral.referee
    assert Account.objects.get(member=referrer).available == 500
    assert Account.objects.get(member=friend).available == 250

    answers = together(
        16,
        lambda i: call(
            "POST",
            f"{server.base}/api/v1/returns/",
            key=key,
            body={"purchase_external_id": "first-buy", "external_id": "all-back", "amount": "40.00"},
        ),
    )
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 1, (200, ""): 15}, counts
    referral.refresh_from_db()
    assert referral.status == "reversed"
    taken = {
        who: -(
            Entry.objects.filter(account__member=m, kind="adjust", points__lt=0).aggregate(s=Sum("points"))["s"] or 0
        )
        for who, m in (("referrer", referrer), ("friend", friend))
    }
    assert taken == {"referrer": 500, "friend": 250}, taken
    assert Account.objects.get(member=referrer).available == 0 and Account.objects.get(member=friend).available == 0
    assert OutboxEvent.objects.filter(event_type="referral.reversed").count() == 1
    assert reversed_of(friend) == 40
    assert_ledger_invariants(program)
    figure(
        7,
        "referral rewards reversed with their qualifying purchase, return sent 16 times at once (HTTP)",
        f"{described(counts, fivexx)}; referral {referral.status}, taken back {taken['referrer']} from the referrer "
        f"and {taken['friend']} from the friend (their bonuses), purchase's 40 points reversed, 1 referral.reversed",
    )


def test_a_challenges_reward_is_reversed_once_with_the_purchase_that_completed_it(server, program, figure):
    """Rule (docs/domain.md "Challenges", challenges_return_check): a full return of the purchase that
    completed a challenge, within the return window, takes the challenge's points back once, even when
    the return is sent 16 times at once; the completion is marked reversed and not awarded again."""
    import datetime as dt

    from loyalty.engagement.models import Challenge, ChallengeCompletion

    now = clock.now()
    challenge = Challenge.objects.create(
        program=program,
        name="First basket",
        kind="purchase_count",
        target=Decimal("1"),
        starts_at=now - dt.timedelta(days=1),
        ends_at=now + dt.timedelta(days=30),
        reward_points=100,
        created_at=now,
    )
    partner, key = shop("Challenges")
    member = enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email="goal@example.com")
    earned = buy(server, key, member.member_number, "goal-1", "20.00")["points_earned"]
    completion = ChallengeCompletion.objects.get(challenge=challenge, member=member)
    assert completion.purchase.external_id == "goal-1" and completion.ledger_transaction_id is not None
    answers = together(
        16,
        lambda i: call(
            "POST",
            f"{server.base}/api/v1/returns/",
            key=key,
            body={"purchase_external_id": "goal-1", "external_id": "goal-back", "amount": "20.00"},
        ),
    )
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 1, (200, ""): 15}, counts
    completion.refresh_from_db()
    taken = -(
        Entry.objects.filter(account__member=member, kind="adjust", points__lt=0).aggregate(s=Sum("points"))["s"] or 0
    )
    assert completion.reversed_at is not None and taken == 100
    assert reversed_of(member) == earned
    assert OutboxEvent.objects.filter(event_type="challenge.reversed", member_id=member.pk).count() == 1
    account = Account.objects.get(member=member)
    assert account.available + account.pending == 0
    buy(server, key, member.member_number, "goal-2", "20.00")  # completed once: not awarded again
    assert ChallengeCompletion.objects.filter(member=member).count() == 1
    assert_ledger_invariants(program)
    figure(
        7,
        "challenge reward reversed with the purchase that completed it, return sent 16 times at once (HTTP)",
        f"{described(counts, fivexx)}; {taken} challenge points taken back of {completion.points}, purchase's "
        f"{reversed_of(member)} points reversed, 1 challenge.reversed, not awarded again",
    )
