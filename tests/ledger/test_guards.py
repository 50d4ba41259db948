"""The database guards the ledger itself (PostgreSQL): no TRUNCATE, no unbalanced transaction at
commit, no entry joining an old transaction; and the application's role cannot change the schema,
truncate, or rewrite entries and transactions."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from loyalty.ledger import services
from loyalty.ledger.models import Account, AccountKind, Entry, LedgerTransaction
from tests.ledger.conftest import make_account, make_program

pytestmark = pytest.mark.postgres

LEDGER_TABLES = [
    "ledger_account",
    "ledger_ledgertransaction",
    "ledger_entry",
    "ledger_lot",
    "ledger_allocation",
    "ledger_redemption",
    "ledger_purchase",
    "ledger_purchaseline",
    "ledger_return",
]


def run(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def raw_transaction(program, entries: list[tuple[Account, int]]) -> int:
    """A ledger transaction with the given entries, written by hand (as a bug would)."""
    (tx_id,) = run(
        "INSERT INTO ledger_ledgertransaction (program_id, kind, reason, explanation, actor_label, created_at) "
        "VALUES (%s, 'adjust', 'raw', '[]', 'test', now()) RETURNING id",
        [program.pk],
    )[0]
    for account, points in entries:
        run(
            "INSERT INTO ledger_entry (transaction_id, account_id, kind, points, created_at) "
            "VALUES (%s, %s, 'adjust', %s, now())",
            [tx_id, account.pk, points],
        )
    return tx_id


def system_account(program) -> Account:
    return Account.objects.get(program=program, kind=AccountKind.ADJUSTMENT, partner=None)


@pytest.mark.django_db
@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_ledger_tables_refuse_truncate(table):
    with pytest.raises(DatabaseError, match="refuse TRUNCATE"), transaction.atomic():
        run("SET LOCAL loyalty.allow_ledger_truncate = 'off'")
        run(f"TRUNCATE {table} CASCADE")


@pytest.mark.django_db
def test_truncating_members_cannot_empty_the_ledger_through_cascade():
    with pytest.raises(DatabaseError, match="refuse TRUNCATE"), transaction.atomic():
        run("SET LOCAL loyalty.allow_ledger_truncate = 'off'")
        run("TRUNCATE members_member CASCADE")


@pytest.mark.django_db(transaction=True)
def test_the_test_suite_setting_lets_truncate_empty_the_ledger():
    account = make_account(make_program())
    services.points_credit(account=account, points=5, reason="x")
    with transaction.atomic():
        run("SET LOCAL loyalty.allow_ledger_truncate = 'on'")
        run("TRUNCATE ledger_entry")
        assert not Entry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_transaction_whose_entries_do_not_sum_to_zero_is_refused_at_commit():
    program = make_program()
    account = make_account(program)

    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        tx_id = raw_transaction(program, [(account, 5)])  # credit without its counter-entry

    assert not LedgerTransaction.objects.filter(pk=tx_id).exists()
    assert not Entry.objects.filter(account=account).exists()


@pytest.mark.django_db(transaction=True)
def test_balanced_transaction_commits():
    program = make_program()
    account = make_account(program)

    with transaction.atomic():
        tx_id = raw_transaction(program, [(account, 5), (system_account(program), -5)])

    assert LedgerTransaction.objects.filter(pk=tx_id).exists()


@pytest.mark.django_db
def test_unbalanced_transaction_is_refused_when_constraints_are_checked():
    program = make_program()
    account = make_account(program)

    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        raw_transaction(program, [(account, 5), (system_account(program), -4)])
        run("SET CONSTRAINTS ledger_transaction_balanced IMMEDIATE")


@pytest.mark.django_db(transaction=True)
def test_entries_cannot_join_a_transaction_committed_before():
    program = make_program()
    account = make_account(program)
    tx = services.points_credit(account=account, points=5, reason="x")

    with pytest.raises(IntegrityError, match="join only a transaction written with them"), transaction.atomic():
        run(
            "INSERT INTO ledger_entry (transaction_id, account_id, kind, points, created_at) "
            "VALUES (%s, %s, 'adjust', 0, now())",
            [tx.pk, account.pk],
        )


@pytest.mark.django_db
def test_entries_cannot_name_a_transaction_that_does_not_exist():
    account = make_account(make_program())

    with pytest.raises(IntegrityError, match="join only a transaction written with them"), transaction.atomic():
        run(
            "INSERT INTO ledger_entry (transaction_id, account_id, kind, points, created_at) "
            "VALUES (%s, %s, 'adjust', 0, now())",
            [10**12, account.pk],
        )


@pytest.mark.django_db(transaction=True)
def test_ledger_services_still_write_balanced_transactions_through_the_guards():
    program = make_program()
    account = make_account(program)
    services.points_credit(account=account, points=50, reason="x")
    services.points_adjust(account=account, points=-20, reason="y", actor=None)

    assert Account.objects.get(pk=account.pk).available == 30


# -- the application's role ---------------------------------------------------------------------


@pytest.fixture
def app_role(transactional_db):
    name = f"loyalty_app_test_{uuid.uuid4().hex[:8]}"
    call_command("db_app_role", name, stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings = connection.settings_dict
    conn = psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        dbname=settings["NAME"],
        user=name,
        autocommit=True,
    )
    yield conn
    conn.close()
    run(f'DROP OWNED BY "{name}"; DROP ROLE "{name}"')


def refused(conn, statement: str, params=None) -> bool:
    try:
        conn.execute(statement, params)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE loyalty_app_made (id int)",
        "ALTER TABLE members_member ADD COLUMN note text",
        "DROP TABLE ledger_entry",
        "CREATE INDEX app_idx ON ledger_entry (points)",
        "DROP TRIGGER ledger_entry_append_only ON ledger_entry",
        "TRUNCATE ledger_entry",
        "TRUNCATE members_member CASCADE",
        "TRUNCATE core_auditevent",
        "UPDATE ledger_entry SET points = 0",
        "DELETE FROM ledger_entry",
        "UPDATE ledger_ledgertransaction SET reason = 'x'",
        "DELETE FROM ledger_ledgertransaction",
    ],
)
def test_application_role_may_not(app_role, statement):
    assert refused(app_role, statement)


def test_application_role_reads_and_writes_rows(app_role):
    app_role.execute(
        "INSERT INTO core_auditevent (actor_label, action, target_type, target_id, target_repr, reason, created_at) "
        "VALUES ('app', 'role.check', 'x', '1', 'x', '', now())"
    )
    app_role.execute("UPDATE core_auditevent SET reason = 'checked' WHERE action = 'role.check'")
    count = app_role.execute("SELECT count(*) FROM core_auditevent WHERE reason = 'checked'").fetchone()[0]
    app_role.execute("DELETE FROM core_auditevent WHERE action = 'role.check'")

    assert count == 1


def test_application_role_writes_the_ledger_through_its_services(app_role):
    program = make_program()
    account = make_account(program)
    credit = system_account(program)
    with app_role.transaction():
        tx_id = app_role.execute(
            "INSERT INTO ledger_ledgertransaction (program_id, kind, reason, explanation, actor_label, created_at) "
            "VALUES (%s, 'adjust', 'app', '[]', 'app', now()) RETURNING id",
            [program.pk],
        ).fetchone()[0]
        for acc, points in ((account, 3), (credit, -3)):
            app_role.execute(
                "INSERT INTO ledger_entry (transaction_id, account_id, kind, points, created_at) "
                "VALUES (%s, %s, 'adjust', %s, now())",
                [tx_id, acc.pk, points],
            )

    assert Entry.objects.filter(transaction_id=tx_id).count() == 2


def test_db_app_role_can_run_again_and_sets_a_password_from_the_environment(app_role, monkeypatch):
    name = app_role.info.user
    monkeypatch.setenv("APP_DB_PASSWORD", "s3cret'pw")
    out = __import__("io").StringIO()

    call_command("db_app_role", name, "--password-env", "APP_DB_PASSWORD", stdout=out)

    assert "s3cret" not in out.getvalue() and "PASSWORD '***'" in out.getvalue()
    assert run("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", [name]) == [(True,)]
