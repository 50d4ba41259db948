"""Promise 8: ledger entries and transactions cannot be changed or removed - not through the ORM, not
through the admin, not by raw SQL from another connection (UPDATE, DELETE and TRUNCATE are refused by
the database's triggers: ledger migrations 0002 and 0010) - and a transaction whose entries do not
sum to zero is refused when it commits.

The admin is driven in process (django.test.Client, a superuser): what is proved is its permission
checks, not concurrency. Raw SQL comes from a separate psycopg connection, as an operator's or a
buggy script's would, outside Django."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError, Sum
from django.test import Client

from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, AccountKind, Entry, LedgerTransaction
from loyalty.ledger.selectors import program_default
from tests.factories import MemberFactory
from tests.verify.races_http import database_url_of_tests

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LEDGER_TABLES = ("ledger_entry", "ledger_ledgertransaction", "ledger_lot", "ledger_allocation", "ledger_account")


@pytest.fixture
def credited():
    """A member credited 50 points: one transaction with two entries."""
    program = program_default()
    account = ledger.account_open(member=MemberFactory(), program=program)
    tx = ledger.points_credit(account=account, points=50, reason="verify")
    return program, account, tx


def ledger_rows() -> list[tuple]:
    """Every entry and transaction as stored (to compare before and after)."""
    entries = list(Entry.objects.order_by("pk").values_list("pk", "transaction_id", "account_id", "kind", "points"))
    txs = list(LedgerTransaction.objects.order_by("pk").values_list("pk", "kind", "reason", "created_at"))
    return entries + txs


def refused_by(attempt) -> str:
    """Who refused the ORM call: the database's trigger, or the ORM itself (PROTECT); "" if nobody."""
    try:
        with transaction.atomic():
            attempt()
    except ProtectedError:
        return "PROTECT"
    except DatabaseError as error:
        return "trigger" if "append-only" in str(error) else ""
    return ""


def test_entries_and_transactions_cannot_change_through_the_orm(credited, figure):
    """Rule: the append-only triggers refuse UPDATE and DELETE of entries and transactions, whatever
    the ORM call (save, update, delete, bulk_update)."""
    _program, account, tx = credited
    before = ledger_rows()
    entry = Entry.objects.filter(account=account).get()

    def save_changed():
        entry.points = 999
        entry.save()

    attempts = {
        "entry.save()": save_changed,
        "entries.update()": lambda: Entry.objects.filter(pk=entry.pk).update(points=1),
        "entries.delete()": lambda: Entry.objects.filter(transaction=tx).delete(),
        "entries.bulk_update()": lambda: Entry.objects.bulk_update([entry], ["points"]),
        "transaction.save()": lambda: LedgerTransaction.objects.get(pk=tx.pk).save(),
        "transactions.update()": lambda: LedgerTransaction.objects.filter(pk=tx.pk).update(reason="changed"),
        "transaction.delete()": lambda: LedgerTransaction.objects.get(pk=tx.pk).delete(),
    }
    refused = {name: refused_by(attempt) for name, attempt in attempts.items()}
    assert all(refused.values()), refused
    assert ledger_rows() == before
    by = Counter(refused.values())
    figure(
        8,
        "ledger rows changed through the ORM",
        f"{sum(by.values())} of {len(attempts)} calls refused ({by['trigger']} by the database's trigger, "
        f"{by['PROTECT']} by the ORM's PROTECT first), rows unchanged",
    )


def test_the_admin_shows_the_ledger_and_changes_nothing(credited, figure):
    """Rule (ReadOnlyAdminMixin): even a superuser may not add, change or delete a ledger
    transaction or an account in the admin; entries are shown only inside their transaction."""
    _program, account, tx = credited
    admin = get_user_model().objects.create_superuser("root", "root@example.com", password=None)
    client = Client()
    client.force_login(admin)
    before = ledger_rows()
    page = client.get(f"/admin/ledger/ledgertransaction/{tx.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    refused = {
        "change transaction (POST)": client.post(f"/admin/ledger/ledgertransaction/{tx.pk}/change/", {"reason": "x"}),
        "delete transaction": client.post(f"/admin/ledger/ledgertransaction/{tx.pk}/delete/", {"post": "yes"}),
        "add transaction": client.post("/admin/ledger/ledgertransaction/add/", {"reason": "x"}),
        "delete_selected": client.post(
            "/admin/ledger/ledgertransaction/",
            {"action": "delete_selected", "_selected_action": [tx.pk], "post": "yes"},
        ),
        "change account (POST)": client.post(f"/admin/ledger/account/{account.pk}/change/", {"available": "999"}),
        "delete account": client.post(f"/admin/ledger/account/{account.pk}/delete/", {"post": "yes"}),
        "entry admin": client.get("/admin/ledger/entry/"),
    }
    statuses = {name: response.status_code for name, response in refused.items()}
    # 403 for forbidden views; the changelist answers 200 with "no action selected" (delete_selected is not offered)
    assert all(code in (403, 404) for name, code in statuses.items() if name != "delete_selected"), statuses
    assert statuses["delete_selected"] in (200, 302, 403)
    assert ledger_rows() == before
    assert Account.objects.get(pk=account.pk).available == 50
    figure(
        8,
        "ledger changed through the admin (superuser)",
        ", ".join(f"{name} → {code}" for name, code in statuses.items()) + "; rows unchanged",
    )


def test_raw_sql_update_delete_and_truncate_are_refused_by_the_database(credited, figure):
    """Rule (ledger migrations 0002, 0010): row triggers refuse UPDATE and DELETE of entries and
    transactions; statement triggers refuse TRUNCATE of every ledger table."""
    _program, account, tx = credited
    before = ledger_rows()
    statements = [
        ("UPDATE ledger_entry SET points = points + 1 WHERE transaction_id = %s", [tx.pk]),
        ("DELETE FROM ledger_entry WHERE transaction_id = %s", [tx.pk]),
        ("UPDATE ledger_ledgertransaction SET reason = 'changed' WHERE id = %s", [tx.pk]),
        ("DELETE FROM ledger_ledgertransaction WHERE id = %s", [tx.pk]),
        *((f"TRUNCATE {table} CASCADE", []) for table in LEDGER_TABLES),
    ]
    refused = []
    with psycopg.connect(database_url_of_tests()) as outsider:
        for sql, params in statements:
            try:
                with outsider.transaction():
                    outsider.execute(sql, params)
            except psycopg.errors.RaiseException as error:
                refused.append(("append-only" in str(error) or "refuse TRUNCATE" in str(error), sql))
            else:
                refused.append((False, sql))
    assert all(ok for ok, _ in refused), [sql for ok, sql in refused if not ok]
    assert ledger_rows() == before
    figure(
        8,
        "ledger changed by raw SQL from another connection",
        f"{sum(ok for ok, _ in refused)} of {len(statements)} statements refused by the database "
        f"(UPDATE/DELETE of entries and transactions, TRUNCATE of {len(LEDGER_TABLES)} tables); rows unchanged",
    )


def test_a_raw_unbalanced_transaction_is_refused_at_commit(credited, figure):
    """Rule (ledger migration 0010): a deferred constraint trigger checks at COMMIT that each new
    transaction's entries sum to zero; entries cannot join a transaction committed before."""
    program, account, tx = credited
    issued = Account.objects.filter(program=program).exclude(kind=AccountKind.MEMBER).first()
    insert_tx = (
        "INSERT INTO ledger_ledgertransaction (program_id, kind, reason, explanation, actor_label, created_at) "
        "VALUES (%s, 'adjust', 'raw', '[]', 'verify', now()) RETURNING id"
    )
    insert_entry = "INSERT INTO ledger_entry (transaction_id, account_id, kind, points, created_at) VALUES (%s, %s, 'adjust', %s, now())"
    outcomes = {}
    with psycopg.connect(database_url_of_tests()) as outsider:
        for name, entries in (
            ("unbalanced +5", [(account.pk, 5)]),
            ("unbalanced +5 −4", [(account.pk, 5), (issued.pk, -4)]),
        ):
            tx_id = outsider.execute(insert_tx, [program.pk]).fetchone()[0]
            for account_id, points in entries:
                outsider.execute(insert_entry, [tx_id, account_id, points])  # accepted until COMMIT
            try:
                outsider.commit()
            except psycopg.errors.CheckViolation as error:
                outcomes[name] = ("refused at COMMIT", "does not balance" in str(error))
                outsider.rollback()
            else:
                outcomes[name] = ("committed", False)
            assert not LedgerTransaction.objects.filter(pk=tx_id).exists()
        try:  # an entry added later to a committed, balanced transaction
            outsider.execute(insert_entry, [tx.pk, account.pk, 5])
            outsider.commit()
            outcomes["entry joining an old transaction"] = ("committed", False)
        except psycopg.errors.CheckViolation:
            outcomes["entry joining an old transaction"] = ("refused", True)
            outsider.rollback()
        tx_id = outsider.execute(insert_tx, [program.pk]).fetchone()[0]
        outsider.execute(insert_entry, [tx_id, account.pk, 5])
        outsider.execute(insert_entry, [tx_id, issued.pk, -5])
        outsider.commit()  # balanced: accepted (the guard refuses only what is wrong)
    assert all(ok for _, ok in outcomes.values()), outcomes
    assert LedgerTransaction.objects.filter(pk=tx_id).exists()
    unbalanced = (
        LedgerTransaction.objects.annotate(total=Sum("entries__points")).exclude(total=0).exclude(total=None).count()
    )
    assert unbalanced == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ledger_ledgertransaction")
        total = cursor.fetchone()[0]
    figure(
        8,
        "raw INSERT of unbalanced ledger transactions",
        ", ".join(f"{name}: {outcome}" for name, (outcome, _) in outcomes.items())
        + f"; a balanced raw one commits; {unbalanced} unbalanced of {total} transactions in the database",
    )
