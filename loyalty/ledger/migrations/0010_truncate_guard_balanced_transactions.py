"""The ledger guards itself on PostgreSQL (besides the append-only triggers of 0002 and 0005):

- its tables refuse TRUNCATE (a statement trigger; row triggers do not see a TRUNCATE), unless the
  session says ``SET loyalty.allow_ledger_truncate = 'on'`` - what the test suite does before it
  empties its database between transactional tests (tests/conftest.py). The application's role
  has no TRUNCATE right at all (``manage.py db_app_role``);
- a ledger transaction whose entries do not sum to zero is refused at commit (a deferred
  constraint trigger per transaction, SQLSTATE 23514 check_violation);
- entries join only a transaction that exists and was written in the same database transaction
  (a statement trigger): a balanced transaction cannot be unbalanced later.
"""

from django.db import migrations

TABLES = (
    "ledger_account",
    "ledger_ledgertransaction",
    "ledger_entry",
    "ledger_lot",
    "ledger_allocation",
    "ledger_redemption",
    "ledger_purchase",
    "ledger_purchaseline",
    "ledger_return",
)

GUARDS_SQL = (
    """
CREATE OR REPLACE FUNCTION ledger_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('loyalty.allow_ledger_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'ledger tables refuse TRUNCATE (% refused)', TG_TABLE_NAME
        USING HINT = 'only an emptied test database may: SET loyalty.allow_ledger_truncate = ''on''';
END;
$$ LANGUAGE plpgsql;
"""
    + "".join(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_truncate();\n"
        for table in TABLES
    )
    + """
CREATE OR REPLACE FUNCTION ledger_transaction_check_balanced() RETURNS trigger AS $$
DECLARE
    total numeric;
BEGIN
    SELECT coalesce(sum(points), 0) INTO total FROM ledger_entry WHERE transaction_id = NEW.id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: its entries sum to %', NEW.id, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transaction_balanced';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON ledger_ledgertransaction
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_check_balanced();

-- age(xmin) <= 0: the row was written by this database transaction (or one of its savepoints)
CREATE OR REPLACE FUNCTION ledger_entries_join_new_transactions() RETURNS trigger AS $$
DECLARE
    refused bigint;
BEGIN
    SELECT n.transaction_id INTO refused
    FROM (SELECT DISTINCT transaction_id FROM added_entries) n
    LEFT JOIN ledger_ledgertransaction t ON t.id = n.transaction_id
    WHERE t.id IS NULL OR age(t.xmin) > 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entries join only a transaction written with them (transaction % refused)', refused
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entry_joins_new_transaction';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_entry_joins_new_transaction AFTER INSERT ON ledger_entry
    REFERENCING NEW TABLE AS added_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_join_new_transactions();
"""
)

DROP_SQL = (
    "".join(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};\n" for table in TABLES)
    + """
DROP FUNCTION IF EXISTS ledger_refuse_truncate();
DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_ledgertransaction;
DROP FUNCTION IF EXISTS ledger_transaction_check_balanced();
DROP TRIGGER IF EXISTS ledger_entry_joins_new_transaction ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_entries_join_new_transactions();
"""
)


def guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARDS_SQL, None)


def drop_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0009_program_points_cap")]

    operations = [migrations.RunPython(guards, drop_guards)]
