from django.db import migrations
from django.utils import timezone

from loyalty.core.roles import sync_roles

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION ledger_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON ledger_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS ledger_entry_append_only ON ledger_entry;
DROP TRIGGER IF EXISTS ledger_transaction_append_only ON ledger_ledgertransaction;
DROP FUNCTION IF EXISTS ledger_reject_change();
"""
SYSTEM_KINDS = ("issued", "redemption", "breakage", "write_off", "adjustment")


def append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, None)


def drop_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, None)


def default_program(apps, schema_editor):
    Program = apps.get_model("ledger", "Program")
    Account = apps.get_model("ledger", "Account")
    program, _ = Program.objects.get_or_create(is_default=True, defaults={"name": "Default program", "currency_name": "Points"})
    for kind in SYSTEM_KINDS:
        Account.objects.get_or_create(program=program, kind=kind, partner=None, defaults={"opened_at": timezone.now()})


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial"), ("members", "0002_staff_roles")]

    operations = [
        migrations.RunPython(append_only, drop_append_only),
        migrations.RunPython(default_program, migrations.RunPython.noop),
        migrations.AlterModelOptions(
            name="account", options={"permissions": [("adjust_points", "Can adjust points with a reason")]}
        ),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
