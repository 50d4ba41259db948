"""Partners and their webhook endpoints are configuration: changes renew the stamp
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


PARTNERS_PARTNER = {
    'postgresql': (
        [
            'CREATE TRIGGER partners_partner_config_stamp_insert AFTER INSERT ON partners_partner FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER partners_partner_config_stamp_update AFTER UPDATE ON partners_partner FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER partners_partner_config_stamp_delete AFTER DELETE ON partners_partner FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
        ],
        [
            'DROP TRIGGER IF EXISTS partners_partner_config_stamp_insert ON partners_partner',
            'DROP TRIGGER IF EXISTS partners_partner_config_stamp_update ON partners_partner',
            'DROP TRIGGER IF EXISTS partners_partner_config_stamp_delete ON partners_partner',
        ],
    ),
    'sqlite': (
        [
            'CREATE TRIGGER partners_partner_config_stamp_insert AFTER INSERT ON partners_partner FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER partners_partner_config_stamp_update AFTER UPDATE ON partners_partner FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER partners_partner_config_stamp_delete AFTER DELETE ON partners_partner FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
        ],
        [
            'DROP TRIGGER IF EXISTS partners_partner_config_stamp_insert',
            'DROP TRIGGER IF EXISTS partners_partner_config_stamp_update',
            'DROP TRIGGER IF EXISTS partners_partner_config_stamp_delete',
        ],
    ),
}

PARTNERS_WEBHOOKENDPOINT = {
    'postgresql': (
        [
            'CREATE TRIGGER partners_webhookendpoint_config_stamp_insert AFTER INSERT ON partners_webhookendpoint FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER partners_webhookendpoint_config_stamp_update AFTER UPDATE ON partners_webhookendpoint FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
            'CREATE TRIGGER partners_webhookendpoint_config_stamp_delete AFTER DELETE ON partners_webhookendpoint FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()',
        ],
        [
            'DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_insert ON partners_webhookendpoint',
            'DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_update ON partners_webhookendpoint',
            'DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_delete ON partners_webhookendpoint',
        ],
    ),
    'sqlite': (
        [
            'CREATE TRIGGER partners_webhookendpoint_config_stamp_insert AFTER INSERT ON partners_webhookendpoint FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER partners_webhookendpoint_config_stamp_update AFTER UPDATE ON partners_webhookendpoint FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
            'CREATE TRIGGER partners_webhookendpoint_config_stamp_delete AFTER DELETE ON partners_webhookendpoint FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
        ],
        [
            'DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_insert',
            'DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_update',
            'DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_delete',
        ],
    ),
}


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp"), ("partners", "0003_api_keys_links_webhooks")]

    operations = [_triggers(PARTNERS_PARTNER), _triggers(PARTNERS_WEBHOOKENDPOINT)]
