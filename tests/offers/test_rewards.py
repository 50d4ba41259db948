"""Reward redemption (offers.services.rewards): points through the ledger (FEFO), stock, the
coupon, the per-member limit, idempotency, and the cancel that refunds the exact lots."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db.models import Sum

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, Allocation, Lot, Program, RedemptionStatus
from loyalty.partners.models import OutboxEvent
from loyalty.partners.services import partner_ensure
from offers.models import Coupon, CouponStatus, RedemptionState, Reward, RewardRedemption
from offers.selectors.catalog import coupon_wallet, reward_catalog
from offers.services.coupons import coupon_redeem
from offers.services.rewards import reward_redeem, reward_redemption_cancel
from tests.concurrency import run_together
from tests.factories import MemberFactory
from tests.ledger.conftest import assert_ledger_invariants
from tests.offers.conftest import reward_make

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


def member_with(program: Program, *points: int):
    """A member whose account got one lot per number in ``points`` (in that order)."""
    member = MemberFactory()
    account = ledger.account_open(member=member, program=program)
    for n in points:
        ledger.points_credit(account=account, points=n, reason="test")
    return member


def account_of(member, program) -> Account:
    return Account.objects.get(member=member, program=program, kind="member")


def redeem(member, reward, key=None, **kw) -> RewardRedemption:
    return reward_redeem(member=member, reward=reward, channel="test", idempotency_key=key or uuid.uuid4().hex, **kw)


@pytest.mark.django_db
def test_redeem_debits_points_takes_stock_issues_coupon_and_records_events(program):
    member = member_with(program, 500)
    reward = reward_make(points_cost=120, stock=3, coupon_valid_days=10)
    found = redeem(member, reward)
    assert account_of(member, program).available == 380
    assert Reward.objects.get(pk=reward.pk).stock == 2
    coupon = found.coupon
    assert (coupon.member_id, coupon.reward_id, coupon.source, coupon.max_uses) == (member.pk, reward.pk, "reward", 1)
    assert coupon.expires_at == coupon.issued_at + dt.timedelta(days=10)
    assert (found.points, found.redemption.points, found.status) == (120, 120, RedemptionState.COMPLETED)
    events = {e.event_type: e.payload for e in OutboxEvent.objects.filter(member=member)}
    assert events["reward.redeemed"]["reward_redemption_id"] == found.pk
    assert events["coupon.issued"]["coupon_id"] == coupon.pk
    assert coupon.code not in str(events)  # the code is a bearer secret: never in a webhook payload
    assert_ledger_invariants(program)


@pytest.mark.django_db
def test_redeem_spends_the_lots_that_expire_first(program):
    Program.objects.filter(pk=program.pk).update(expiry_policy="fixed_months", expiry_months=12)
    program.refresh_from_db()
    clock.set_now(NOW)
    member = MemberFactory()
    account = ledger.account_open(member=member, program=program)
    ledger.points_credit(account=account, points=60, reason="older")
    clock.set_now(NOW + dt.timedelta(days=40))
    ledger.points_credit(account=account, points=60, reason="newer")
    older, newer = Lot.objects.filter(account=account).order_by("expires_at")
    found = redeem(member, reward_make(points_cost=100))
    taken = dict(Allocation.objects.filter(transaction__redemption=found.redemption).values_list("lot_id", "points"))
    assert taken == {older.pk: 60, newer.pk: 40}


@pytest.mark.django_db
def test_same_idempotency_key_returns_the_first_redemption_without_a_second_debit(program):
    member = member_with(program, 500)
    reward = reward_make(points_cost=100)
    first = redeem(member, reward, key="k-1")
    again = redeem(member, reward, key="k-1")
    assert again.pk == first.pk
    assert account_of(member, program).available == 400
    assert OutboxEvent.objects.filter(event_type="reward.redeemed").count() == 1


@pytest.mark.django_db
def test_idempotency_key_of_another_member_is_refused(program):
    reward = reward_make(points_cost=100)
    redeem(member_with(program, 500), reward, key="k-1")
    with pytest.raises(Conflict) as caught:
        redeem(member_with(program, 500), reward, key="k-1")
    assert caught.value.code == "idempotency_key_reused"


@pytest.mark.django_db
def test_insufficient_points_passes_the_ledger_code_through_and_changes_nothing(program):
    member = member_with(program, 50)
    reward = reward_make(points_cost=100, stock=5)
    with pytest.raises(Conflict) as caught:
        redeem(member, reward)
    assert caught.value.code == "insufficient_points"
    assert Reward.objects.get(pk=reward.pk).stock == 5
    assert not Coupon.objects.exists() and not RewardRedemption.objects.exists()
    assert account_of(member, program).available == 50


@pytest.mark.django_db
def test_no_stock_left_is_out_of_stock_and_no_points_move(program):
    member = member_with(program, 500)
    reward = reward_make(points_cost=100, stock=0)
    with pytest.raises(Conflict) as caught:
        redeem(member, reward)
    assert caught.value.code == "out_of_stock"
    assert account_of(member, program).available == 500
    assert not Coupon.objects.exists()


@pytest.mark.django_db
def test_unlimited_stock_stays_unlimited(program):
    reward = reward_make(points_cost=100, stock=None)
    redeem(member_with(program, 500), reward)
    assert Reward.objects.get(pk=reward.pk).stock is None


@pytest.mark.django_db
def test_per_member_limit_is_counted_and_cancelled_ones_do_not_count(program):
    member = member_with(program, 1000)
    reward = reward_make(points_cost=100, per_member_limit=2)
    first = redeem(member, reward)
    redeem(member, reward)
    with pytest.raises(Conflict) as caught:
        redeem(member, reward)
    assert caught.value.code == "reward_member_limit_reached"
    reward_redemption_cancel(reward_redemption=first)
    redeem(member, reward)  # the cancelled one gave its place back
    assert RewardRedemption.objects.filter(member=member, status="completed").count() == 2


@pytest.mark.django_db
def test_ineligible_member_gets_the_eligibility_code(program):
    clock.set_now(NOW)
    member = member_with(program, 500)
    reward = reward_make(points_cost=100, valid_from=NOW + dt.timedelta(days=3))
    with pytest.raises(ValidationFailed) as caught:
        redeem(member, reward)
    assert caught.value.code == "reward_not_started"
    assert account_of(member, program).available == 500


@pytest.mark.django_db
def test_reward_of_another_partner_is_refused_at_this_partner(program):
    honours = partner_ensure(name="Honours")
    elsewhere = partner_ensure(name="Elsewhere")
    reward = reward_make(points_cost=100, partner=honours)
    with pytest.raises(ValidationFailed) as caught:
        redeem(member_with(program, 500), reward, partner=elsewhere)
    assert caught.value.code == "reward_partner_excluded"


@pytest.mark.django_db
def test_cancel_refunds_the_exact_lots_returns_stock_and_cancels_the_coupon(program):
    member = member_with(program, 70, 70)
    account = account_of(member, program)
    before = dict(Lot.objects.filter(account=account).values_list("pk", "remaining"))
    reward = reward_make(points_cost=100, stock=4)
    found = redeem(member, reward)
    assert dict(Lot.objects.filter(account=account).values_list("pk", "remaining")) != before
    cancelled = reward_redemption_cancel(reward_redemption=found)
    assert cancelled.status == RedemptionState.CANCELLED and cancelled.cancelled_at is not None
    assert dict(Lot.objects.filter(account=account).values_list("pk", "remaining")) == before
    assert account_of(member, program).available == 140
    assert Reward.objects.get(pk=reward.pk).stock == 4
    assert Coupon.objects.get(pk=found.coupon_id).status == CouponStatus.CANCELLED
    assert found.redemption.__class__.objects.get(pk=found.redemption_id).status == RedemptionStatus.CANCELLED
    assert OutboxEvent.objects.filter(event_type="reward.cancelled").count() == 1
    assert_ledger_invariants(program)


@pytest.mark.django_db
def test_cancel_twice_refunds_once(program):
    member = member_with(program, 300)
    found = redeem(member, reward_make(points_cost=100))
    reward_redemption_cancel(reward_redemption=found)
    reward_redemption_cancel(reward_redemption=found)
    assert account_of(member, program).available == 300
    assert OutboxEvent.objects.filter(event_type="reward.cancelled").count() == 1


@pytest.mark.django_db
def test_cancel_is_refused_once_the_coupon_was_used(program):
    member = member_with(program, 300)
    found = redeem(member, reward_make(points_cost=100, stock=2))
    coupon_redeem(code=found.coupon.code, member=member, idempotency_key="use-1")
    with pytest.raises(Conflict) as caught:
        reward_redemption_cancel(reward_redemption=found)
    assert caught.value.code == "coupon_already_used"
    assert account_of(member, program).available == 200
    assert Reward.objects.get(pk=found.reward_id).stock == 1


@pytest.mark.django_db
def test_catalog_says_affordable_points_missing_limit_left_and_stock(program):
    member = member_with(program, 150)
    cheap = reward_make(name="Cheap", points_cost=100, per_member_limit=3, stock=7)
    dear = reward_make(name="Dear", points_cost=400)
    reward_make(name="Off", points_cost=10, is_active=False)
    redeem(member, cheap)
    items = {i.reward.name: i for i in reward_catalog(member=member, program=program)}
    assert set(items) == {"Cheap", "Dear"}
    assert (items["Cheap"].affordable, items["Cheap"].limit_left, items["Cheap"].stock) == (False, 2, 6)
    assert (items["Dear"].affordable, items["Dear"].points_missing) == (False, 350)
    assert items["Cheap"].points_missing == 50 and items["Cheap"].eligible
    assert not dear.per_member_limit and items["Dear"].limit_left is None


@pytest.mark.django_db
def test_wallet_lists_usable_coupons_with_what_they_give(program):
    member = member_with(program, 500)
    used = redeem(member, reward_make(name="A", points_cost=100, value=5))
    kept = redeem(member, reward_make(name="B", kind="percent_coupon", points_cost=100, value=10))
    coupon_redeem(code=used.coupon.code, member=member)
    wallet = coupon_wallet(member=member)
    assert [w.coupon.pk for w in wallet] == [kept.coupon_id]
    assert (wallet[0].benefit.kind, wallet[0].benefit.value, wallet[0].uses_left) == ("percent", 10, 1)


# --- concurrency (PostgreSQL, real threads) ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run", range(2))
def test_64_members_racing_for_the_last_10_items_exactly_10_redeem(run):
    from loyalty.ledger.selectors import program_default

    program = program_default()
    members = [member_with(program, 200) for _ in range(64)]
    reward = reward_make(points_cost=100, stock=10)
    results = run_together(64, lambda i: redeem(members[i], reward))
    won = [r for r in results if isinstance(r, RewardRedemption)]
    lost = [r for r in results if isinstance(r, Conflict) and r.code == "out_of_stock"]
    assert (len(won), len(lost)) == (10, 54), [r for r in results if not isinstance(r, RewardRedemption | Conflict)]
    assert Reward.objects.get(pk=reward.pk).stock == 0
    assert RewardRedemption.objects.filter(reward=reward).count() == Coupon.objects.filter(reward=reward).count() == 10
    spent = Account.objects.filter(program=program, kind="member").aggregate(s=Sum("redeemed"))["s"]
    assert spent == 10 * 100
    assert OutboxEvent.objects.filter(event_type="reward.redeemed").count() == 10
    assert_ledger_invariants(program)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_member_same_key_from_20_threads_debits_once():
    from loyalty.ledger.selectors import program_default

    program = program_default()
    member = member_with(program, 1000)
    reward = reward_make(points_cost=100)
    results = run_together(20, lambda i: redeem(member, reward, key="same"))
    assert all(isinstance(r, RewardRedemption) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert account_of(member, program).available == 900


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_refund_once():
    from loyalty.ledger.selectors import program_default

    program = program_default()
    member = member_with(program, 300)
    found = redeem(member, reward_make(points_cost=100, stock=1))
    results = run_together(10, lambda i: reward_redemption_cancel(reward_redemption=found))
    assert all(isinstance(r, RewardRedemption) for r in results), results
    assert account_of(member, program).available == 300
    assert Reward.objects.get(pk=found.reward_id).stock == 1
    assert OutboxEvent.objects.filter(event_type="reward.cancelled").count() == 1
    assert_ledger_invariants(program)


@pytest.mark.django_db
def test_catalog_reads_the_same_number_of_queries_for_2_or_20_rewards(program):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member = member_with(program, 500)

    def queries() -> int:
        reward_catalog(member=member, program=program)  # warm the configuration cache
        with CaptureQueriesContext(connection) as captured:
            reward_catalog(member=member, program=program)
        return len(captured)

    for i in range(2):
        reward_make(name=f"R{i}", per_member_limit=2)
    few = queries()
    for i in range(2, 20):
        reward_make(name=f"R{i}", per_member_limit=2)
    assert queries() == few


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run", range(5))
def test_cancel_racing_a_use_of_its_coupon_ends_one_way_only(run):
    from loyalty.ledger.selectors import program_default

    program = program_default()
    member = member_with(program, 300)
    found = redeem(member, reward_make(points_cost=100, stock=1))

    def work(i):
        if i == 0:
            return reward_redemption_cancel(reward_redemption=found)
        return coupon_redeem(code=found.coupon.code, member=member)

    cancelled, used = run_together(2, work)
    coupon = Coupon.objects.get(pk=found.coupon_id)
    if isinstance(cancelled, RewardRedemption):  # the cancel went first: the use was refused
        assert isinstance(used, Conflict) and used.code == "coupon_cancelled"
        assert (coupon.uses_count, account_of(member, program).available) == (0, 300)
    else:  # the use went first: the cancel was refused, nothing refunded
        assert isinstance(cancelled, Conflict) and cancelled.code == "coupon_already_used", cancelled
        assert (coupon.uses_count, account_of(member, program).available) == (1, 200)
    assert_ledger_invariants(program)


@pytest.mark.django_db
def test_member_export_lists_rewards_and_coupons_and_erasure_cancels_active_coupons(program):
    from members.services import member_erase, member_export
    from tests.factories import StaffFactory

    member = member_with(program, 500)
    found = redeem(member, reward_make(name="Mug", points_cost=100))
    document = member_export(member=member)
    assert document["rewards"]["reward_redemptions"][0]["reward"] == "Mug"
    assert document["rewards"]["coupons"][0]["code"] == found.coupon.code
    member_erase(member=member, actor=StaffFactory(), reason="asked")
    assert Coupon.objects.get(pk=found.coupon_id).status == CouponStatus.CANCELLED
    assert RewardRedemption.objects.filter(pk=found.pk).exists()  # the record stays
