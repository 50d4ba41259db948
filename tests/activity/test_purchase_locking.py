"""The purchase workflow locks the member account once and credits under that lock; the lock
it hands on is honoured only inside the transaction that took it."""

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from loyalty.activity.services import purchase_record
from loyalty.core import clock
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, Program
from loyalty.ledger.selectors import program_default
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
    assert locks[0].endswith("FOR UPDATE OF a") and 'FROM "ledger_account" a' in locks[0]


@pytest.mark.django_db(transaction=True)
def test_a_locked_account_cannot_be_used_after_the_block_that_locked_it():
    account = ledger.account_open(member=MemberFactory(), program=ledger.program_create(name="Lock held"))
    with transaction.atomic():
        with ledger.account_locked(account=account) as locked:
            assert locked.held and locked.account.pk == account.pk
            ledger.points_credit_locked(locked=locked, points=5, reason="under the lock")
        with pytest.raises(ledger.LockReleased):
            ledger.points_credit_locked(locked=locked, points=5, reason="the block has ended")
    with pytest.raises(ledger.LockReleased), transaction.atomic():
        locked.account  # noqa: B018 - a later transaction does not inherit it
    with (
        pytest.raises(RuntimeError, match="boom"),
        transaction.atomic(),
        ledger.account_locked(account=account) as rolled_back,
    ):
        raise RuntimeError("boom")
    with pytest.raises(ledger.LockReleased):
        rolled_back.account  # noqa: B018 - rolled back with its transaction
    account.refresh_from_db()
    assert account.available == 5


@pytest.mark.django_db(transaction=True)
def test_an_account_is_locked_only_inside_a_transaction():
    account = ledger.account_open(member=MemberFactory(), program=program_default())
    with pytest.raises(RuntimeError, match=r"transaction\.atomic"), ledger.account_locked(account=account):
        pass


@pytest.mark.django_db
def test_credits_under_one_lock_keep_the_locked_figures_exact():
    account = ledger.account_open(member=MemberFactory(), program=program_default())
    with transaction.atomic():
        ledger.points_credit(account=account, points=10, reason="locks by itself")
        with ledger.account_locked(account=account) as locked:
            assert (locked.account.available, locked.account.earned) == (10, 10)
            ledger.points_credit_locked(locked=locked, points=5, reason="uses the held lock")
            ledger.points_credit_locked(locked=locked, points=2, reason="and again")
            assert (locked.account.available, locked.account.earned) == (17, 17)
        ledger.points_debit(account=account, points=15, reason="spend")
        ledger.points_credit(account=account, points=5, reason="re-reads after the debit")
    account.refresh_from_db()
    assert (account.available, account.earned, account.redeemed) == (7, 22, 15)


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
            with transaction.atomic(), ledger.member_account_locked(member=members[0], program=program):
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


@pytest.mark.django_db(transaction=True)
def test_a_purchase_is_its_own_transaction_never_part_of_a_callers():
    from loyalty.ledger.models import Purchase

    member = MemberFactory()
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        _purchase(member)
    assert not Purchase.objects.exists()
    assert _purchase(member).created
