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
