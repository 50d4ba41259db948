"""The ledger's two hot writes, a credit and a purchase with its lines: one call of a database
function on PostgreSQL (``ledger_credit``, ``ledger_purchase_insert``, ledger migration 0008),
the ORM elsewhere. Both paths write the same rows; a repeat writes nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict

from loyalty.core import clock
from loyalty.core.errors import Conflict
from loyalty.ledger import services
from loyalty.ledger.models import Entry, LedgerTransaction, Lot, Purchase, PurchaseLine
from loyalty.ledger.services import points as points_module
from loyalty.ledger.services import purchases as purchases_module
from tests.factories import MemberFactory
from tests.ledger.conftest import assert_ledger_invariants, fresh, make_account, make_program

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2030, 1, 10, 12, 0, tzinfo=dt.UTC)
LINES = [
    {"sku": "A", "category": "food", "quantity": "2", "unit_price": "12.50", "amount": "25.00", "discount": "5.00"},
    {"sku": "B", "category": "", "quantity": "1.5", "amount": "10.00"},
]


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T0)


@pytest.fixture
def orm_only(monkeypatch):
    """Write through the ORM path whatever the database."""
    monkeypatch.setattr(points_module, "_credit_write", points_module._credit_write_orm)
    monkeypatch.setattr(purchases_module, "_purchase_write", purchases_module._purchase_write_orm)


def _purchase(program, member, external_id):
    return services.purchase_create(
        program=program, member=member, external_id=external_id, occurred_at=T0, lines=LINES, store_code="S1"
    )


def _credit_story(account, purchase):
    """A pending earn for a purchase under the workflow's lock, then an adjustment."""
    with transaction.atomic(), services.account_locked(account=account) as locked:
        services.points_credit_locked(
            locked=locked,
            points=40,
            reason="purchase",
            purchase=purchase,
            pending=True,
            explanation=[{"rule": "Base rate", "points": 40}],
        )
    services.points_credit(account=account, points=7, reason="goodwill", kind="adjust", idempotency_key=None)


def _rows(account, purchase):
    """What the story wrote, without primary keys: transactions, lots, entries, account, purchase."""
    ignore = ["id", "transaction", "lot", "account", "purchase", "program", "partner"]
    txs = LedgerTransaction.objects.filter(entries__account=account).distinct().order_by("pk")
    return {
        "transactions": [model_to_dict(tx, exclude=ignore) for tx in txs],
        "lots": [model_to_dict(lot, exclude=ignore) for lot in Lot.objects.filter(account=account).order_by("pk")],
        "entries": [
            (e.kind, e.points, e.lot_id is not None, e.account_id == account.pk, e.created_at)
            for e in Entry.objects.filter(transaction__in=txs).order_by("transaction_id", "pk")
        ],
        "account": model_to_dict(fresh(account), exclude=["id", "member", "program"]),
        "purchase": model_to_dict(Purchase.objects.get(pk=purchase.pk), exclude=["id", "member", "external_id"]),
        "lines": [
            model_to_dict(line, exclude=["id", "purchase"]) for line in PurchaseLine.objects.filter(purchase=purchase)
        ],
    }


def _story(program):
    account = make_account(program)
    purchase = _purchase(program, account.member, f"till-{account.pk}")
    _credit_story(account, purchase)
    return _rows(account, purchase)


@pytest.mark.postgres
def test_the_database_functions_write_the_same_rows_as_the_orm(request):
    program = make_program(pending_days=14, expiry_policy="fixed_months", expiry_months=12)
    through_functions = _story(program)
    request.getfixturevalue("orm_only")
    through_orm = _story(program)
    assert through_functions == through_orm
    assert through_functions["lines"][0]["discount"] == Decimal("5.00")
    assert through_functions["purchase"]["points_earned"] == 40
    assert through_functions["account"]["pending"] == 40 and through_functions["account"]["available"] == 7
    assert_ledger_invariants(program)


def test_a_credit_pays_debt_before_it_opens_a_lot():
    program = make_program()
    account = make_account(program)
    account.debt = 30
    account.save(update_fields=["debt"])
    tx = services.points_credit(account=account, points=20, reason="pays debt")
    assert tx.credited_lot is None and not Lot.objects.filter(account=account).exists()
    tx = services.points_credit(account=account, points=25, reason="pays the rest")
    assert tx.credited_lot.points == 15
    account = fresh(account)
    assert (account.debt, account.available, account.earned) == (0, 15, 45)


def _write_credit_again(account, key):
    """A second credit with ``key`` reaching the write itself (a racing request would)."""
    with transaction.atomic(), services.account_locked(account=account) as locked:
        a = locked.account
        tx = points_module._transaction_build(
            program=a.program, kind="earn", idempotency_key=key, reason="repeat", purchase=None, explanation=[]
        )
        lot = points_module._lot_build(a, tx, 10, pending_until=None, expires_at=None)
        source = services.system_account(program=a.program, kind="issued")
        entries = points_module._entries_build(tx, [(a, "earn", 10, lot), (source, "earn", -10, None)])
        increments = {"available": 10, "pending": 0, "debt": 0, "earned": 10}
        written = points_module._credit_write(
            tx=tx, lot=lot, entries=entries, account=a, increments=increments, sets=None
        )
        assert Lot.objects.filter(account=a).count() == 1  # the caller's transaction is still usable
        return written


@pytest.mark.parametrize("path", ["database", "orm"])
def test_a_repeated_idempotency_key_writes_nothing(path, request):
    if path == "orm":
        request.getfixturevalue("orm_only")
    program = make_program()
    account = make_account(program)
    services.points_credit(account=account, points=10, reason="first", idempotency_key="credit-1")
    counts = (LedgerTransaction.objects.count(), Lot.objects.count(), Entry.objects.count())
    assert _write_credit_again(account, "credit-1") is False
    assert (LedgerTransaction.objects.count(), Lot.objects.count(), Entry.objects.count()) == counts
    assert (fresh(account).available, fresh(account).earned) == (10, 10)


@pytest.mark.parametrize("path", ["database", "orm"])
def test_a_repeated_purchase_writes_nothing_and_leaves_the_transaction_usable(path, request):
    if path == "orm":
        request.getfixturevalue("orm_only")
    program = make_program()
    member = MemberFactory()
    with transaction.atomic():
        first = _purchase(program, member, "till-9")
        with pytest.raises(Conflict) as error:
            _purchase(program, member, "till-9")
        assert error.value.code == "duplicate_external_id"
        assert Purchase.objects.filter(external_id="till-9").count() == 1  # still usable
    assert list(PurchaseLine.objects.filter(purchase=first).order_by("pk").values_list("sku", "quantity")) == [
        ("A", Decimal("2.000")),
        ("B", Decimal("1.500")),
    ]


@pytest.mark.postgres
def test_the_credit_function_is_called_for_a_credit_on_postgresql():
    from django.test.utils import CaptureQueriesContext

    program = make_program()
    account = make_account(program)
    services.points_credit(account=account, points=5, reason="warm")
    with CaptureQueriesContext(connection) as queries:
        services.points_credit(account=account, points=5, reason="one call")
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert any("ledger_credit(" in sql for sql in writes)
    assert not any(sql.startswith(("INSERT", "UPDATE")) for sql in writes), writes
