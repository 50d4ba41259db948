"""The purchase workflow locks the member account once and credits under that lock; the lock
it hands on is honoured only inside the transaction that took it."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from loyalty.activity.services import purchase_record
from loyalty.core import clock
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, Program
from loyalty.ledger.selectors import program_default
from loyalty.ledger.services.accounts import account_lock_held, account_open_locked
from tests.concurrency import run_together
from tests.factories import MemberFactory

T = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)
LINES = [{"sku": "A", "category": "food", "quantity": "1", "amount": "40.00"}]


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def _purchase(member, external_id="till-1"):
    return purchase_record(partner=None, member=member, external_id=external_id, occurred_at=T, lines=LINES)


@pytest.mark.django_db
def test_purchase_credits_pending_points_and_reports_when_they_become_available():
    program = program_default()
    program.pending_days = 14
    program.save()
    member = MemberFactory()
    outcome = _purchase(member)
    assert (outcome.created, outcome.points, outcome.pending_until) == (True, 40, T + dt.timedelta(days=14))
    assert outcome.purchase.points_earned == 40 and outcome.explanation[-1]["rule"] == "Total"
    assert _purchase(member) == _purchase(member)  # a repeat reads the same outcome back
    repeat = _purchase(member)
    assert (repeat.created, repeat.points, repeat.pending_until) == (False, 40, T + dt.timedelta(days=14))
    account = Account.objects.get(member=member, program=program)
    assert (account.pending, account.available, account.earned) == (40, 0, 40)


@pytest.mark.postgres
@pytest.mark.django_db
def test_purchase_locks_the_member_account_once_and_never_the_program_row():
    member = MemberFactory()
    _purchase(member, "warm")
    with CaptureQueriesContext(connection) as queries:
        _purchase(member, "till-2")
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert len(locks) == 1, locks
    assert locks[0].endswith("FOR UPDATE OF a") and "FROM ledger_account a" in locks[0]


@pytest.mark.django_db(transaction=True)
def test_a_locked_account_counts_as_held_only_inside_the_transaction_that_locked_it():
    account = ledger.account_open(member=MemberFactory(), program=ledger.program_create(name="Lock held"))
    with transaction.atomic():
        locked = ledger.account_lock(account=account)
        assert account_lock_held(locked)
        assert not account_lock_held(account)  # not the instance the lock returned
    assert not account_lock_held(locked)  # committed: the row lock is gone
    with transaction.atomic():
        assert not account_lock_held(locked)  # a later transaction does not inherit it
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = ledger.account_lock(account=account)
        raise RuntimeError
    with transaction.atomic():
        assert not account_lock_held(rolled_back)


@pytest.mark.django_db
def test_a_lock_taken_in_a_rolled_back_savepoint_is_not_held_and_a_released_one_is():
    account = ledger.account_open(member=MemberFactory(), program=program_default())
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            rolled_back = ledger.account_lock(account=account)
            raise RuntimeError
        assert not account_lock_held(rolled_back)
        with transaction.atomic():
            released = ledger.account_lock(account=account)
        assert account_lock_held(released)  # the outer transaction still holds the row


@pytest.mark.django_db
def test_a_later_lock_or_a_credit_makes_an_earlier_locked_instance_stale():
    account = ledger.account_open(member=MemberFactory(), program=program_default())
    with transaction.atomic():
        first = ledger.account_lock(account=account)
        ledger.points_credit(account=account, points=10, reason="locks again inside")
        assert not account_lock_held(first)  # its balances are out of date now
        second = ledger.account_lock(account=account)
        ledger.points_credit(account=second, points=5, reason="uses the held lock")
        assert not account_lock_held(second)
        third = ledger.account_lock(account=account)
        assert (third.available, third.earned) == (15, 15)
        ledger.points_debit(account=third, points=15, reason="spend")
        ledger.points_credit(account=third, points=7, reason="re-reads after the debit")
    account.refresh_from_db()
    assert (account.available, account.earned, account.redeemed) == (7, 22, 15)


@pytest.mark.django_db
def test_a_locked_instance_handed_to_another_thread_is_not_held_there():
    account = ledger.account_open(member=MemberFactory(), program=program_default())
    seen = []

    def elsewhere(locked):
        try:
            with transaction.atomic():
                seen.append(account_lock_held(locked))
        finally:
            connections.close_all()

    with transaction.atomic():
        locked = ledger.account_lock(account=account)
        thread = threading.Thread(target=elsewhere, args=(locked,))
        thread.start()
        thread.join(10)
        assert account_lock_held(locked)
    assert seen == [False]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_purchases_of_two_members_do_not_wait_for_each_other_on_the_program_row():
    from tests.conftest import _seed_reference_data

    _seed_reference_data()
    program = program_default()
    members = [MemberFactory(), MemberFactory()]
    ledger.account_open(member=members[0], program=program)
    locked, release = threading.Event(), threading.Event()

    def hold(i):
        if i == 0:
            with transaction.atomic():
                account_open_locked(member=members[0], program=program)
                locked.set()
                release.wait(10)
            return "held"
        locked.wait(10)
        try:
            with transaction.atomic():
                Program.objects.select_for_update(nowait=True).get(pk=program.pk)
                return "program free"
        finally:
            release.set()

    assert sorted(map(str, run_together(2, hold))) == ["held", "program free"]
