import datetime as dt
import itertools

import pytest
from django.db.models import Sum

from loyalty.core import clock
from loyalty.ledger import services
from loyalty.ledger.models import Account, AccountKind, Entry, LedgerTransaction, Lot
from tests.factories import MemberFactory

T0 = dt.datetime(2030, 1, 10, 12, 0, tzinfo=dt.UTC)
_names = itertools.count()


def make_program(**fields):
    fields.setdefault("name", f"Program {next(_names)}")
    return services.program_create(**fields)


def make_account(program, **member_fields):
    return services.account_open(member=MemberFactory(**member_fields), program=program)


def fresh(account):
    return Account.objects.get(pk=account.pk)


def assert_ledger_invariants(program):
    """The rules every test ends with: transactions balance; member accounts agree with their
    entries and lots; no lot out of range; no allocation taken from a lot past its expiry."""
    unbalanced = (
        LedgerTransaction.objects.filter(program=program)
        .annotate(total=Sum("entries__points"))
        .exclude(total=0)
        .exclude(total=None)
    )
    assert not unbalanced.exists(), list(unbalanced.values("id", "kind", "total"))
    for account in Account.objects.filter(program=program, kind=AccountKind.MEMBER):
        entries = Entry.objects.filter(account=account).aggregate(s=Sum("points"))["s"] or 0
        lots = Lot.objects.filter(account=account).aggregate(s=Sum("remaining"))["s"] or 0
        pending_lots = Lot.objects.filter(account=account, is_pending=True).aggregate(s=Sum("remaining"))["s"] or 0
        assert account.available >= 0 and account.pending >= 0 and account.debt >= 0
        assert account.available + account.pending - account.debt == entries, (
            account.pk,
            account.available,
            account.pending,
            account.debt,
            entries,
        )
        assert account.available + account.pending == lots
        assert account.pending == pending_lots
    assert not Lot.objects.filter(account__program=program, remaining__lt=0).exists()
    for lot in Lot.objects.filter(account__program=program, expires_at__isnull=False):
        for allocation in lot.allocations.select_related("transaction"):
            assert allocation.transaction.created_at < lot.expires_at, "lot consumed past its expiry"


@pytest.fixture
def t0():
    clock.set_now(T0)
    return T0


@pytest.fixture
def program(db):
    return make_program()


@pytest.fixture
def account(program):
    return make_account(program)
