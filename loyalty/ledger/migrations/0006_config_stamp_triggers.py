"""Programs, their partners and the system accounts are configuration: changes renew the stamp
``loyalty.core.config`` caches them under."""

from django.db import migrations


# The statements ``loyalty.core.config.stamp_trigger`` built for this migration, kept verbatim:
# a migration must not change when runtime code does. Per table: (forward, reverse) per database.
def _triggers(statements: dict[str, tuple[list[str], list[str]]]) -> migrations.RunPython:
    def run(direction: int):
        def apply(apps, schema_editor) -> None:
            vendor = schema_editor.connection.vendor
            if vendor not in statements:
                raise NotImplementedError(f"No configuration stamp triggers for {vendor}")
            for statement in statements[vendor][direction]:
                schema_editor.execute(statement)

        return apply

    return migrations.RunPython(run(0), run(1))


LEDGER_PROGRAM = {
    'postgresql': (
        [
            'CREATE TRIGGER ledger_program_config_stamp_insert AFTER INSERT ON ledger_program FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER ledger_program_config_stamp_update AFTER UPDATE ON ledger_program FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER ledger_program_config_stamp_delete AFTER DELETE ON ledger_program FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
        ],
        [
            'DROP TRIGGER IF EXISTS ledger_program_config_stamp_insert ON ledger_program',
            'DROP TRIGGER IF EXISTS ledger_program_config_stamp_update ON ledger_program',
            'DROP TRIGGER IF EXISTS ledger_program_config_stamp_delete ON ledger_program',
        ],
    ),
    'sqlite': (
        [
            'CREATE TRIGGER ledger_program_config_stamp_insert AFTER INSERT ON ledger_program FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER ledger_program_config_stamp_update AFTER UPDATE ON ledger_program FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER ledger_program_config_stamp_delete AFTER DELETE ON ledger_program FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
        ],
        [
            'DROP TRIGGER IF EXISTS ledger_program_config_stamp_insert',
            'DROP TRIGGER IF EXISTS ledger_program_config_stamp_update',
            'DROP TRIGGER IF EXISTS ledger_program_config_stamp_delete',
        ],
    ),
}

LEDGER_PROGRAM_PARTNERS = {
    'postgresql': (
        [
            'CREATE TRIGGER ledger_program_partners_config_stamp_insert AFTER INSERT ON ledger_program_partners FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER ledger_program_partners_config_stamp_update AFTER UPDATE ON ledger_program_partners FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER ledger_program_partners_config_stamp_delete AFTER DELETE ON ledger_program_partners FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
        ],
        [
            'DROP TRIGGER IF EXISTS ledger_program_partners_config_stamp_insert ON ledger_program_partners',
            'DROP TRIGGER IF EXISTS ledger_program_partners_config_stamp_update ON ledger_program_partners',
            'DROP TRIGGER IF EXISTS ledger_program_partners_config_stamp_delete ON ledger_program_partners',
        ],
    ),
    'sqlite': (
        [
            'CREATE TRIGGER ledger_program_partners_config_stamp_insert AFTER INSERT ON ledger_program_partners FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER ledger_program_partners_config_stamp_update AFTER UPDATE ON ledger_program_partners FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER ledger_program_partners_config_stamp_delete AFTER DELETE ON ledger_program_partners FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
        ],
        [
            'DROP TRIGGER IF EXISTS ledger_program_partners_config_stamp_insert',
            'DROP TRIGGER IF EXISTS ledger_program_partners_config_stamp_update',
            'DROP TRIGGER IF EXISTS ledger_program_partners_config_stamp_delete',
        ],
    ),
}

LEDGER_ACCOUNT = {
    'postgresql': (
        [
            "CREATE TRIGGER ledger_account_config_stamp_insert AFTER INSERT ON ledger_account FOR EACH ROW WHEN (NEW.kind <> 'member') EXECUTE FUNCTION core_config_stamp_renew()",
            "CREATE TRIGGER ledger_account_config_stamp_update AFTER UPDATE ON ledger_account FOR EACH ROW WHEN (NEW.kind <> 'member') EXECUTE FUNCTION core_config_stamp_renew()",
            "CREATE TRIGGER ledger_account_config_stamp_delete AFTER DELETE ON ledger_account FOR EACH ROW WHEN (OLD.kind <> 'member') EXECUTE FUNCTION core_config_stamp_renew()",
        ],
        [
            'DROP TRIGGER IF EXISTS ledger_account_config_stamp_insert ON ledger_account',
            'DROP TRIGGER IF EXISTS ledger_account_config_stamp_update ON ledger_account',
            'DROP TRIGGER IF EXISTS ledger_account_config_stamp_delete ON ledger_account',
        ],
    ),
    'sqlite': (
        [
            "CREATE TRIGGER ledger_account_config_stamp_insert AFTER INSERT ON ledger_account FOR EACH ROW WHEN (NEW.kind <> 'member') BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END",
            "CREATE TRIGGER ledger_account_config_stamp_update AFTER UPDATE ON ledger_account FOR EACH ROW WHEN (NEW.kind <> 'member') BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END",
            "CREATE TRIGGER ledger_account_config_stamp_delete AFTER DELETE ON ledger_account FOR EACH ROW WHEN (OLD.kind <> 'member') BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END",
        ],
        [
            'DROP TRIGGER IF EXISTS ledger_account_config_stamp_insert',
            'DROP TRIGGER IF EXISTS ledger_account_config_stamp_update',
            'DROP TRIGGER IF EXISTS ledger_account_config_stamp_delete',
        ],
    ),
}


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp"), ("ledger", "0005_entry_references_lots_never_deleted")]

    operations = [
        _triggers(LEDGER_PROGRAM),
        _triggers(LEDGER_PROGRAM_PARTNERS),
        _triggers(LEDGER_ACCOUNT),  # system accounts only
    ]
