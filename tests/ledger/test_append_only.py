import pytest
from django.db import DatabaseError, connection, transaction

from loyalty.ledger import services
from loyalty.ledger.models import Entry
from tests.ledger.conftest import make_account, make_program


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_trigger_rejects_update_and_delete_of_entries():
    account = make_account(make_program())
    services.points_credit(account=account, points=5, reason="x")
    entry = Entry.objects.filter(account=account).get()
    for sql in ("UPDATE ledger_entry SET points = 999 WHERE id = %s", "DELETE FROM ledger_entry WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])
    assert Entry.objects.get(pk=entry.pk).points == 5


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_triggers_reject_deleting_the_transactions_and_lots_entries_name():
    """Entries name their transaction and lot without a per-row foreign-key check; what keeps
    those references valid is that neither can be deleted."""
    from loyalty.ledger.models import LedgerTransaction, Lot

    account = make_account(make_program())
    tx = services.points_credit(account=account, points=5, reason="x")
    lot = Lot.objects.get(transaction=tx)
    for sql, pk in (
        ("DELETE FROM ledger_lot WHERE id = %s", lot.pk),
        ("DELETE FROM ledger_ledgertransaction WHERE id = %s", tx.pk),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [pk])
    assert Lot.objects.filter(pk=lot.pk).exists() and LedgerTransaction.objects.filter(pk=tx.pk).exists()
    with transaction.atomic(), connection.cursor() as cursor:  # a lot's remainder still changes
        cursor.execute("UPDATE ledger_lot SET remaining = 4 WHERE id = %s", [lot.pk])
    assert Lot.objects.get(pk=lot.pk).remaining == 4
