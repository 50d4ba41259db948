"""Promises 1-3: races over real HTTP (gunicorn, tests/verify/races_http.py) on PostgreSQL. Clients
start together (a barrier); every figure counts the status codes, 5xx included, and the outcome is
read back from the database (counters, rows, ledger), not only from the answers."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.test import Client

from loyalty.activity.services import enrollment_record
from loyalty.core import clock
from loyalty.engagement.models import CommunityEvent, EventRegistration
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, Entry, LedgerTransaction, TransactionKind
from loyalty.ledger.selectors import program_default
from loyalty.partners.services import partner_key_create
from members.models import EnrollmentSource
from members.services import member_link_user
from offers.models import Coupon, CouponUse, OfferRedemption, Reward, RewardRedemption
from offers.services.coupons import coupon_issue
from tests.api.conftest import just_now
from tests.ledger.conftest import assert_ledger_invariants
from tests.offers.conftest import offer_make, reward_make
from tests.verify.races_http import call, described, gunicorn_server, server_errors, tally, together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), gunicorn_server(18110) as running:
        yield running


def shop(name: str):
    partner, _, key = partner_key_create(partner_name=name, scopes=["read", "write"])
    return partner, key


def enrolled(partner, n: int, tag: str, points: int = 0):
    """``n`` members of ``partner`` (linked: it may burn their points), each with ``points`` available."""
    people = []
    for i in range(n):
        member = enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email=f"{tag}{i}@example.com")
        if points:
            account = Account.objects.get(member=member, program=program_default())
            ledger.points_credit(account=account, points=points, reason="verify")
        people.append(member)
    return people


def test_64_concurrent_uses_of_a_10_use_coupon_pass_exactly_10(server, figure):
    """Rule: a coupon's uses never pass max_uses (coupon row lock + conditional UPDATE,
    offers.services.coupons.coupon_redeem)."""
    _partner, key = shop("Till")
    coupon = coupon_issue(program=program_default(), source="batch", max_uses=10)
    answers = together(
        64,
        lambda i: call(
            "POST",
            f"{server.base}/api/v1/coupons/redeem/",
            key=key,
            body={"code": coupon.code, "basket_total": "10.00", "purchase_external_id": f"p-{i}"},
            headers={"Idempotency-Key": f"use-{i}"},
        ),
    )
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 10, (409, "coupon_exhausted"): 54}, counts
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 10
    assert CouponUse.objects.filter(coupon=coupon, status="completed").count() == 10
    figure(1, "64 concurrent uses of a 10-use coupon (HTTP)", described(counts, fivexx))


def test_64_members_racing_for_the_last_10_reward_items_get_exactly_10(server, figure):
    """Rule: stock never goes below 0 (conditional UPDATE stock - 1 WHERE stock > 0 after the debit,
    offers.services.rewards.reward_redeem); a member refused out_of_stock keeps their points."""
    partner, key = shop("Gift shop")
    people = enrolled(partner, 64, "gift", points=10)
    reward = reward_make(points_cost=10, stock=10)
    answers = together(
        64,
        lambda i: call(
            "POST",
            f"{server.base}/api/v1/members/{people[i].member_number}/rewards/{reward.pk}/redeem/",
            key=key,
            body={},
            headers={"Idempotency-Key": f"gift-{i}"},
        ),
    )
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 10, (409, "out_of_stock"): 54}, counts
    assert Reward.objects.get(pk=reward.pk).stock == 0
    assert RewardRedemption.objects.filter(reward=reward, status="completed").count() == 10
    redeems = Entry.objects.filter(account__member__in=people, kind="redeem")
    assert redeems.count() == 10 and redeems.aggregate(s=Sum("points"))["s"] == -100
    accounts = Account.objects.filter(member__in=people)
    assert sorted(a.available for a in accounts) == [0] * 10 + [10] * 54
    assert_ledger_invariants(program_default())
    figure(
        1,
        "64 members racing for the last 10 reward items (HTTP)",
        f"{described(counts, fivexx)}; stock 10 → {Reward.objects.get(pk=reward.pk).stock}, "
        f"{redeems.count()} redeem entries",
    )


def test_20_concurrent_100_point_redemptions_on_a_100_point_balance_pass_once(server, figure):
    """Rule: a balance never goes below 0 (every debit under the account's row lock,
    ledger.services.locking); the others are insufficient_points."""
    partner, key = shop("Burner")
    (member,) = enrolled(partner, 1, "burn", points=100)
    answers = together(
        20,
        lambda i: call(
            "POST",
            f"{server.base}/api/v1/redemptions/",
            key=key,
            body={"member_number": member.member_number, "points": 100, "external_id": f"burn-{i}"},
        ),
    )
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 1, (409, "insufficient_points"): 19}, counts
    account = Account.objects.get(member=member)
    assert (account.available, account.pending, account.debt) == (0, 0, 0)
    assert LedgerTransaction.objects.filter(kind=TransactionKind.REDEEM, entries__account=account).count() == 1
    assert_ledger_invariants(program_default())
    figure(2, "20 concurrent 100-point redemptions on a 100-point balance (HTTP)", described(counts, fivexx))


def test_an_offer_budget_of_1000_under_200_concurrent_10_point_earns_is_never_passed(server, figure):
    """Rule: an offer's points_budget is checked on its locked counters (offer_uses_claim); the
    budget used equals the bonus points in the ledger and the redemptions."""
    partner, key = shop("Budget shop")
    people = enrolled(partner, 40, "budget")
    offer = offer_make(name="Ten on anything", benefit_points=10, points_budget=1000)
    occurred = just_now()

    def earn(i):
        member = people[i % len(people)]
        body = {
            "member_number": member.member_number,
            "external_id": f"earn-{i}",
            "occurred_at": occurred,
            "currency": "USD",
            "total": "1.00",
            "tax": "0",
            "discount": "0",
            "lines": [{"sku": "A", "category": "food", "quantity": "1", "unit_price": "1.00", "amount": "1.00"}],
        }
        return call("POST", f"{server.base}/api/v1/purchases/", key=key, body=body)

    answers = together(200, earn)
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 200}, counts
    offer.refresh_from_db()
    earned = Entry.objects.filter(account__member__in=people, kind="earn")
    bonus = (earned.aggregate(s=Sum("points"))["s"] or 0) - earned.count()  # the rules give 1 point per 1.00
    redeemed = OfferRedemption.objects.filter(offer=offer).aggregate(s=Sum("points"))["s"] or 0
    assert earned.count() == 200
    assert bonus <= 1000
    assert offer.points_issued == redeemed == bonus == 1000
    assert_ledger_invariants(program_default())
    figure(
        3,
        "1,000-point offer budget under 200 concurrent 10-point earns (HTTP)",
        f"{described(counts, fivexx)}; bonus in ledger {bonus}, budget used {offer.points_issued}, "
        f"{OfferRedemption.objects.filter(offer=offer).count()} redemptions",
    )


def portal_session(member) -> dict[str, str]:
    """Cookies of a logged-in portal session (made in the database as a login would) and a CSRF secret."""
    user = get_user_model().objects.create_user(username=member.email, email=member.email, password=None)
    member_link_user(member=member, user=user)
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value, "csrftoken": secrets.token_hex(16)}


def test_50_concurrent_registrations_for_10_places_take_exactly_10(server, figure):
    """Rule: places move by UPDATE ... SET registered = registered + 1 WHERE registered < capacity
    (engagement.services.events.event_register), checked by a database constraint."""
    partner, _key = shop("Events")
    people = enrolled(partner, 50, "event")
    now = clock.now()
    event = CommunityEvent.objects.create(
        program=program_default(),
        title="Charity day",
        kind="charity_day",
        starts_at=now + dt.timedelta(days=2),
        place="Park",
        capacity=10,
        is_published=True,
        created_at=now,
    )
    sessions = [portal_session(m) for m in people]
    answers = together(
        50,
        lambda i: call(
            "POST",
            f"{server.base}/events/{event.pk}/register/",
            cookies=sessions[i],
            headers={"X-CSRFToken": sessions[i]["csrftoken"], "Referer": server.base},
        ),
    )
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(302, ""): 50}, counts  # the portal redirects to the events page, booked or full
    assert all(a.headers["Location"].endswith("/events/") for a in answers)
    event.refresh_from_db()
    registered = EventRegistration.objects.filter(event=event, status="registered").count()
    assert event.registered == registered == 10
    figure(
        3,
        "community event of 10 places under 50 concurrent portal registrations (HTTP)",
        f"{described(counts, fivexx)}; places taken {event.registered}/{event.capacity}, {registered} registrations",
    )
