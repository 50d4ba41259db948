import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.selectors import audit_events_for
from loyalty.ledger import selectors, services
from loyalty.ledger.models import Entry, LedgerTransaction, Lot, RedemptionStatus
from tests.factories import StaffFactory
from tests.ledger.conftest import assert_ledger_invariants, fresh, make_account, make_program

pytestmark = pytest.mark.django_db


def test_credit_creates_available_lot_and_balanced_transaction(account, t0):
    tx = services.points_credit(account=account, points=100, reason="welcome")
    account = fresh(account)
    assert (account.available, account.pending, account.earned) == (100, 0, 100)
    assert sorted(tx.entries.values_list("points", flat=True)) == [-100, 100]
    lot = Lot.objects.get(account=account)
    assert (lot.points, lot.remaining, lot.is_pending, lot.expires_at) == (100, 100, False, None)
    assert_ledger_invariants(account.program)


@pytest.mark.parametrize("points", [0, -5, 1.5, True, "10"])
def test_credit_rejects_non_positive_or_non_integer_points(account, points):
    with pytest.raises(ValidationFailed) as exc:
        services.points_credit(account=account, points=points, reason="x")
    assert exc.value.code == "invalid_points"
    assert not LedgerTransaction.objects.filter(program=account.program).exists()


def test_purchase_points_stay_pending_for_the_return_window_then_mature(t0):
    program = make_program(pending_days=14)
    account = make_account(program)
    services.points_credit(account=account, points=80, reason="purchase", pending=True)
    assert (fresh(account).available, fresh(account).pending) == (0, 80)
    with pytest.raises(Conflict):
        services.points_debit(account=account, points=10, reason="too early")
    clock.set_now(t0 + dt.timedelta(days=14))
    assert services.mature_pending_lots() == 1
    assert (fresh(account).available, fresh(account).pending) == (80, 0)
    assert services.mature_pending_lots() == 0  # second run changes nothing
    assert_ledger_invariants(program)


def test_a_service_matures_due_pending_points_of_its_account_before_reading_the_balance(t0):
    program = make_program(pending_days=1)
    account = make_account(program)
    services.points_credit(account=account, points=50, reason="purchase", pending=True)
    clock.set_now(t0 + dt.timedelta(days=1, seconds=1))
    services.points_debit(account=account, points=50, reason="spend")  # no job ran: still allowed
    assert fresh(account).available == 0
    assert_ledger_invariants(program)


def test_debit_consumes_lots_first_expiring_first_then_oldest(t0):
    program = make_program(expiry_policy="fixed_months", expiry_months=12)
    account = make_account(program)
    services.points_credit(account=account, points=30, reason="a")  # expires t0+12m
    clock.set_now(t0 + dt.timedelta(days=40))
    services.points_credit(account=account, points=30, reason="b")  # expires later
    services.points_adjust(account=account, points=30, reason="c", actor=StaffFactory())  # later still
    tx = services.points_debit(account=account, points=45, reason="spend")
    taken = list(tx.allocations.order_by("lot__expires_at").values_list("lot__transaction__reason", "points"))
    assert taken == [("a", 30), ("b", 15)]
    assert_ledger_invariants(program)


def test_lots_without_expiry_are_spent_after_lots_that_expire(t0):
    program = make_program(expiry_policy="fixed_months", expiry_months=6)
    account = make_account(program)
    Lot.objects.all()
    services.points_credit(account=account, points=10, reason="expiring")
    tx = services.points_debit(account=account, points=10, reason="spend")
    assert tx.allocations.get().lot.transaction.reason == "expiring"


def test_insufficient_points_fails_and_changes_nothing(account, t0):
    services.points_credit(account=account, points=40, reason="x")
    before = LedgerTransaction.objects.count()
    with pytest.raises(Conflict) as exc:
        services.points_debit(account=account, points=41, reason="too much")
    assert exc.value.code == "insufficient_points"
    assert LedgerTransaction.objects.count() == before and fresh(account).available == 40


def test_min_redeem_is_enforced(t0):
    program = make_program(min_redeem=100)
    account = make_account(program)
    services.points_credit(account=account, points=500, reason="x")
    with pytest.raises(ValidationFailed) as exc:
        services.points_redeem(account=account, points=99)
    assert exc.value.code == "below_min_redeem"


def test_same_idempotency_key_credits_once(account, t0):
    first = services.points_credit(account=account, points=25, reason="x", idempotency_key="k-1")
    again = services.points_credit(account=account, points=25, reason="x", idempotency_key="k-1")
    assert first.pk == again.pk
    assert fresh(account).available == 25 and Entry.objects.filter(account=account).count() == 1


def test_idempotency_key_of_another_account_is_refused(program, t0):
    a, b = make_account(program), make_account(program)
    services.points_credit(account=a, points=5, reason="x", idempotency_key="shared")
    with pytest.raises(Conflict) as exc:
        services.points_credit(account=b, points=5, reason="x", idempotency_key="shared")
    assert exc.value.code == "idempotency_key_reused"


def test_fixed_months_expiry_expires_lot_with_entry_and_breakage(t0):
    program = make_program(expiry_policy="fixed_months", expiry_months=3)
    account = make_account(program)
    services.points_credit(account=account, points=70, reason="x")
    services.points_debit(account=account, points=20, reason="spend")
    lot = Lot.objects.get(account=account)
    assert lot.expires_at == dt.datetime(2030, 4, 10, 12, tzinfo=dt.UTC)
    clock.set_now(lot.expires_at - dt.timedelta(seconds=1))
    assert services.expire_due_lots() == 0
    clock.set_now(lot.expires_at)
    assert services.expire_due_lots() == 1
    account = fresh(account)
    assert (account.available, account.expired) == (0, 50)
    expire_entry = Entry.objects.get(account=account, kind="expire")
    assert (expire_entry.points, expire_entry.lot_id) == (-50, lot.pk)
    assert selectors.system_totals(program=program)["breakage"] == 50
    assert services.expire_due_lots() == 0  # idempotent
    assert Entry.objects.filter(kind="expire").count() == 2
    assert_ledger_invariants(program)


def test_end_of_year_expiry_is_31_december_n_years_after_earning(t0):
    program = make_program(expiry_policy="end_of_year", expiry_years=1)
    account = make_account(program)
    services.points_credit(account=account, points=5, reason="x")
    assert Lot.objects.get(account=account).expires_at == dt.datetime(2031, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def test_inactivity_expiry_is_pushed_by_each_earn_or_redeem(t0):
    program = make_program(expiry_policy="inactivity_months", expiry_months=6)
    account = make_account(program)
    services.points_credit(account=account, points=100, reason="x")
    clock.set_now(t0 + dt.timedelta(days=150))
    services.points_redeem(account=account, points=10)
    clock.set_now(t0 + dt.timedelta(days=200))  # 6 months after the earn, 50 days after the redeem
    services.expire_due_lots()
    assert fresh(account).available == 90
    clock.set_now(t0 + dt.timedelta(days=150 + 185))
    services.expire_due_lots()
    assert (fresh(account).available, fresh(account).expired) == (0, 90)
    assert_ledger_invariants(program)


def test_a_debit_never_consumes_an_expired_lot_even_before_the_job_runs(t0):
    program = make_program(expiry_policy="fixed_months", expiry_months=1)
    account = make_account(program)
    services.points_credit(account=account, points=10, reason="x")
    clock.set_now(t0 + dt.timedelta(days=40))
    with pytest.raises(Conflict):
        services.points_debit(account=account, points=10, reason="late")
    assert fresh(account).expired == 0  # the failed debit changed nothing, its settling included
    services.expire_due_lots()
    assert (fresh(account).available, fresh(account).expired) == (0, 10)
    assert_ledger_invariants(program)


def test_expiring_soon_selector_groups_points_by_date(t0):
    program = make_program(expiry_policy="fixed_months", expiry_months=1)
    account = make_account(program)
    services.points_credit(account=account, points=10, reason="x")
    clock.set_now(t0 + dt.timedelta(days=2))
    services.points_credit(account=account, points=5, reason="y")
    assert selectors.points_expiring(account=account, within_days=30) == [{"date": dt.date(2030, 2, 10), "points": 10}]
    assert [row["points"] for row in selectors.points_expiring(account=account, within_days=40)] == [10, 5]
    assert list(selectors.accounts_expiring(within_days=30, program=program).values_list("points", flat=True)) == [10]


def test_adjust_needs_reason_is_audited_and_can_remove_points(account, t0):
    staff = StaffFactory()
    with pytest.raises(ValidationFailed):
        services.points_adjust(account=account, points=10, reason="", actor=staff)
    services.points_adjust(account=account, points=60, reason="goodwill", actor=staff)
    services.points_adjust(account=account, points=-15, reason="correction", actor=staff)
    account = fresh(account)
    assert (account.available, account.earned) == (45, 0)
    events = audit_events_for(target=account)
    assert [e.reason for e in events] == ["correction", "goodwill"]
    assert selectors.system_totals(program=account.program)["adjustment"] == -45
    with pytest.raises(Conflict):
        services.points_adjust(account=account, points=-46, reason="too much", actor=staff)
    assert_ledger_invariants(account.program)


def test_transfer_moves_points_keeping_expiry_dates(t0):
    program = make_program(expiry_policy="fixed_months", expiry_months=12)
    source, target = make_account(program), make_account(program)
    services.points_credit(account=source, points=100, reason="x")
    services.points_transfer(source=source, target=target, points=60, reason="gift")
    assert (fresh(source).available, fresh(target).available) == (40, 60)
    target_lot = Lot.objects.get(account=target)
    assert target_lot.expires_at == Lot.objects.get(account=source).expires_at
    kinds = set(Entry.objects.filter(account__in=[source, target]).values_list("kind", flat=True))
    assert {"transfer_in", "transfer_out"} <= kinds
    assert_ledger_invariants(program)


def test_transfer_refuses_other_program_same_account_and_overdraft(t0):
    program = make_program()
    a, b = make_account(program), make_account(program)
    other = make_account(make_program())
    services.points_credit(account=a, points=10, reason="x")
    with pytest.raises(ValidationFailed):
        services.points_transfer(source=a, target=other, points=1, reason="x")
    with pytest.raises(ValidationFailed):
        services.points_transfer(source=a, target=a, points=1, reason="x")
    with pytest.raises(Conflict):
        services.points_transfer(source=a, target=b, points=11, reason="x")


def test_refund_restores_the_exact_lots_a_redemption_consumed(t0):
    program = make_program(expiry_policy="fixed_months", expiry_months=12)
    account = make_account(program)
    services.points_credit(account=account, points=30, reason="a")
    clock.set_now(t0 + dt.timedelta(days=1))
    services.points_credit(account=account, points=30, reason="b")
    redemption = services.points_redeem(account=account, points=50, description="blender")
    services.points_refund(redemption=redemption)
    assert sorted(Lot.objects.filter(account=account).values_list("remaining", flat=True)) == [30, 30]
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.CANCELLED
    assert (fresh(account).available, fresh(account).redeemed) == (60, 0)
    services.points_refund(redemption=redemption)  # idempotent
    assert fresh(account).available == 60
    assert_ledger_invariants(program)


def test_refund_of_points_from_a_lot_that_expired_meanwhile_gets_a_grace_lot(t0):
    program = make_program(expiry_policy="fixed_months", expiry_months=1, refund_grace_days=30)
    account = make_account(program)
    services.points_credit(account=account, points=40, reason="a")
    redemption = services.points_redeem(account=account, points=40)
    clock.set_now(t0 + dt.timedelta(days=45))
    services.expire_due_lots()
    services.points_refund(redemption=redemption)
    restored = Lot.objects.get(account=account, transaction__kind="refund")
    assert (restored.remaining, restored.expires_at) == (40, t0 + dt.timedelta(days=75))
    assert fresh(account).available == 40
    assert_ledger_invariants(program)


def test_redeem_with_same_external_id_returns_first_or_conflicts(account, t0):
    services.points_credit(account=account, points=100, reason="x")
    first = services.points_redeem(account=account, points=10, external_id="r-1")
    assert services.points_redeem(account=account, points=10, external_id="r-1").pk == first.pk
    with pytest.raises(Conflict) as exc:
        services.points_redeem(account=account, points=20, external_id="r-1")
    assert exc.value.code == "duplicate_external_id"
    assert fresh(account).available == 90


def test_ledger_export_lists_accounts_entries_and_purchases(account, t0):
    from members.services import member_export

    services.points_credit(account=account, points=12, reason="hello")
    document = member_export(member=account.member)
    assert document["points"]["accounts"][0]["available"] == 12
    assert document["points"]["entries"][0]["reason"] == "hello"


def test_liability_is_outstanding_points_times_point_value(t0):
    program = make_program(point_value="0.0100", pending_days=10)
    account = make_account(program)
    services.points_credit(account=account, points=1000, reason="x")
    services.points_credit(account=account, points=500, reason="y", pending=True)
    figures = selectors.points_liability(program=program)
    assert (figures["points"], str(figures["value"])) == (1500, "15.00")


def test_expiry_and_expiring_soon_record_outbox_events(t0):
    from loyalty.partners.models import OutboxEvent

    program = make_program(expiry_policy="fixed_months", expiry_months=1)
    account = make_account(program)
    services.points_credit(account=account, points=30, reason="x")
    expires_at = Lot.objects.get(account=account).expires_at
    clock.set_now(expires_at - dt.timedelta(days=7))
    assert services.expiring_notify(days=7) == 1
    expiring = OutboxEvent.objects.get(event_type="points.expiring")
    assert expiring.member_id == account.member_id and expiring.payload["points"] == 30
    clock.set_now(expires_at)
    services.expire_due_lots()
    expired = OutboxEvent.objects.get(event_type="points.expired")
    assert expired.payload == {"member_number": account.member.member_number, "program": program.name, "points": 30}
