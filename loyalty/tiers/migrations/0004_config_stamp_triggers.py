"""Tier policies, tiers, thresholds and perks are configuration: changes renew the stamp
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


TIERS_TIERPOLICY = {
    'postgresql': (
        [
            'CREATE TRIGGER tiers_tierpolicy_config_stamp_insert AFTER INSERT ON tiers_tierpolicy FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER tiers_tierpolicy_config_stamp_update AFTER UPDATE ON tiers_tierpolicy FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER tiers_tierpolicy_config_stamp_delete AFTER DELETE ON tiers_tierpolicy FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
        ],
        [
            'DROP TRIGGER IF EXISTS tiers_tierpolicy_config_stamp_insert ON tiers_tierpolicy',
            'DROP TRIGGER IF EXISTS tiers_tierpolicy_config_stamp_update ON tiers_tierpolicy',
            'DROP TRIGGER IF EXISTS tiers_tierpolicy_config_stamp_delete ON tiers_tierpolicy',
        ],
    ),
    'sqlite': (
        [
            'CREATE TRIGGER tiers_tierpolicy_config_stamp_insert AFTER INSERT ON tiers_tierpolicy FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER tiers_tierpolicy_config_stamp_update AFTER UPDATE ON tiers_tierpolicy FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER tiers_tierpolicy_config_stamp_delete AFTER DELETE ON tiers_tierpolicy FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
        ],
        [
            'DROP TRIGGER IF EXISTS tiers_tierpolicy_config_stamp_insert',
            'DROP TRIGGER IF EXISTS tiers_tierpolicy_config_stamp_update',
            'DROP TRIGGER IF EXISTS tiers_tierpolicy_config_stamp_delete',
        ],
    ),
}

TIERS_TIER = {
    'postgresql': (
        [
            'CREATE TRIGGER tiers_tier_config_stamp_insert AFTER INSERT ON tiers_tier FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER tiers_tier_config_stamp_update AFTER UPDATE ON tiers_tier FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER tiers_tier_config_stamp_delete AFTER DELETE ON tiers_tier FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
        ],
        [
            'DROP TRIGGER IF EXISTS tiers_tier_config_stamp_insert ON tiers_tier',
            'DROP TRIGGER IF EXISTS tiers_tier_config_stamp_update ON tiers_tier',
            'DROP TRIGGER IF EXISTS tiers_tier_config_stamp_delete ON tiers_tier',
        ],
    ),
    'sqlite': (
        [
            'CREATE TRIGGER tiers_tier_config_stamp_insert AFTER INSERT ON tiers_tier FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER tiers_tier_config_stamp_update AFTER UPDATE ON tiers_tier FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER tiers_tier_config_stamp_delete AFTER DELETE ON tiers_tier FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
        ],
        [
            'DROP TRIGGER IF EXISTS tiers_tier_config_stamp_insert',
            'DROP TRIGGER IF EXISTS tiers_tier_config_stamp_update',
            'DROP TRIGGER IF EXISTS tiers_tier_config_stamp_delete',
        ],
    ),
}

TIERS_TIERTHRESHOLD = {
    'postgresql': (
        [
            'CREATE TRIGGER tiers_tierthreshold_config_stamp_insert AFTER INSERT ON tiers_tierthreshold FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER tiers_tierthreshold_config_stamp_update AFTER UPDATE ON tiers_tierthreshold FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER tiers_tierthreshold_config_stamp_delete AFTER DELETE ON tiers_tierthreshold FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
        ],
        [
            'DROP TRIGGER IF EXISTS tiers_tierthreshold_config_stamp_insert ON tiers_tierthreshold',
            'DROP TRIGGER IF EXISTS tiers_tierthreshold_config_stamp_update ON tiers_tierthreshold',
            'DROP TRIGGER IF EXISTS tiers_tierthreshold_config_stamp_delete ON tiers_tierthreshold',
        ],
    ),
    'sqlite': (
        [
            'CREATE TRIGGER tiers_tierthreshold_config_stamp_insert AFTER INSERT ON tiers_tierthreshold FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER tiers_tierthreshold_config_stamp_update AFTER UPDATE ON tiers_tierthreshold FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER tiers_tierthreshold_config_stamp_delete AFTER DELETE ON tiers_tierthreshold FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
        ],
        [
            'DROP TRIGGER IF EXISTS tiers_tierthreshold_config_stamp_insert',
            'DROP TRIGGER IF EXISTS tiers_tierthreshold_config_stamp_update',
            'DROP TRIGGER IF EXISTS tiers_tierthreshold_config_stamp_delete',
        ],
    ),
}

TIERS_TIERPERK = {
    'postgresql': (
        [
            'CREATE TRIGGER tiers_tierperk_config_stamp_insert AFTER INSERT ON tiers_tierperk FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER tiers_tierperk_config_stamp_update AFTER UPDATE ON tiers_tierperk FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER tiers_tierperk_config_stamp_delete AFTER DELETE ON tiers_tierperk FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
        ],
        [
            'DROP TRIGGER IF EXISTS tiers_tierperk_config_stamp_insert ON tiers_tierperk',
            'DROP TRIGGER IF EXISTS tiers_tierperk_config_stamp_update ON tiers_tierperk',
            'DROP TRIGGER IF EXISTS tiers_tierperk_config_stamp_delete ON tiers_tierperk',
        ],
    ),
    'sqlite': (
        [
            'CREATE TRIGGER tiers_tierperk_config_stamp_insert AFTER INSERT ON tiers_tierperk FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER tiers_tierperk_config_stamp_update AFTER UPDATE ON tiers_tierperk FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER tiers_tierperk_config_stamp_delete AFTER DELETE ON tiers_tierperk FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
        ],
        [
            'DROP TRIGGER IF EXISTS tiers_tierperk_config_stamp_insert',
            'DROP TRIGGER IF EXISTS tiers_tierperk_config_stamp_update',
            'DROP TRIGGER IF EXISTS tiers_tierperk_config_stamp_delete',
        ],
    ),
}


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp"), ("tiers", "0003_fewer_indexes")]

    operations = [
        _triggers(TIERS_TIERPOLICY),
        _triggers(TIERS_TIER),
        _triggers(TIERS_TIERTHRESHOLD),
        _triggers(TIERS_TIERPERK),
    ]
