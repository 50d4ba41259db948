"""Earning rules are configuration: changes renew the stamp ``loyalty.core.config`` caches them under."""

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


ACTIVITY_EARNINGRULE = {
    'postgresql': (
        [
            'CREATE TRIGGER activity_earningrule_config_stamp_insert AFTER INSERT ON activity_earningrule FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER activity_earningrule_config_stamp_update AFTER UPDATE ON activity_earningrule FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER activity_earningrule_config_stamp_delete AFTER DELETE ON activity_earningrule FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
        ],
        [
            'DROP TRIGGER IF EXISTS activity_earningrule_config_stamp_insert ON activity_earningrule',
            'DROP TRIGGER IF EXISTS activity_earningrule_config_stamp_update ON activity_earningrule',
            'DROP TRIGGER IF EXISTS activity_earningrule_config_stamp_delete ON activity_earningrule',
        ],
    ),
    'sqlite': (
        [
            'CREATE TRIGGER activity_earningrule_config_stamp_insert AFTER INSERT ON activity_earningrule FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER activity_earningrule_config_stamp_update AFTER UPDATE ON activity_earningrule FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER activity_earningrule_config_stamp_delete AFTER DELETE ON activity_earningrule FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
        ],
        [
            'DROP TRIGGER IF EXISTS activity_earningrule_config_stamp_insert',
            'DROP TRIGGER IF EXISTS activity_earningrule_config_stamp_update',
            'DROP TRIGGER IF EXISTS activity_earningrule_config_stamp_delete',
        ],
    ),
}


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp"), ("activity", "0003_imported_campaigns")]

    operations = [_triggers(ACTIVITY_EARNINGRULE)]
