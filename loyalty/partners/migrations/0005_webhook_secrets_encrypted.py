"""Webhook signing secrets encrypted at rest (Fernet, key WEBHOOK_SECRETS_KEY): the column is
renamed so that nothing reads it as plain text, and the secrets already stored are encrypted.
SQLite rebuilds the table to widen the column, which drops its configuration-stamp triggers: they
are made again after it (both ways)."""

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.db import migrations, models

# The configuration-stamp triggers of partners_webhookendpoint, as migration 0004 made them (verbatim):
# (create, drop) per database.
STAMP_TRIGGERS = {
    "postgresql": (
        [
            "CREATE TRIGGER partners_webhookendpoint_config_stamp_insert AFTER INSERT ON partners_webhookendpoint FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()",
            "CREATE TRIGGER partners_webhookendpoint_config_stamp_update AFTER UPDATE ON partners_webhookendpoint FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()",
            "CREATE TRIGGER partners_webhookendpoint_config_stamp_delete AFTER DELETE ON partners_webhookendpoint FOR EACH ROW  EXECUTE FUNCTION core_config_stamp_renew()",
        ],
        [
            "DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_insert ON partners_webhookendpoint",
            "DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_update ON partners_webhookendpoint",
            "DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_delete ON partners_webhookendpoint",
        ],
    ),
    "sqlite": (
        [
            "CREATE TRIGGER partners_webhookendpoint_config_stamp_insert AFTER INSERT ON partners_webhookendpoint FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END",
            "CREATE TRIGGER partners_webhookendpoint_config_stamp_update AFTER UPDATE ON partners_webhookendpoint FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END",
            "CREATE TRIGGER partners_webhookendpoint_config_stamp_delete AFTER DELETE ON partners_webhookendpoint FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END",
        ],
        [
            "DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_insert",
            "DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_update",
            "DROP TRIGGER IF EXISTS partners_webhookendpoint_config_stamp_delete",
        ],
    ),
}


def _box() -> MultiFernet:
    keys = [k.strip() for k in str(settings.WEBHOOK_SECRETS_KEY).split(",") if k.strip()]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt_existing(apps, schema_editor):
    WebhookEndpoint = apps.get_model("partners", "WebhookEndpoint")
    box = _box()
    for endpoint in WebhookEndpoint.objects.filter(secret_encrypted__startswith="whsec_").only("pk", "secret_encrypted"):
        endpoint.secret_encrypted = box.encrypt(endpoint.secret_encrypted.encode()).decode()
        endpoint.save(update_fields=["secret_encrypted"])


def decrypt_existing(apps, schema_editor):
    WebhookEndpoint = apps.get_model("partners", "WebhookEndpoint")
    box = _box()
    for endpoint in WebhookEndpoint.objects.exclude(secret_encrypted__startswith="whsec_").only("pk", "secret_encrypted"):
        endpoint.secret_encrypted = box.decrypt(endpoint.secret_encrypted.encode()).decode()
        endpoint.save(update_fields=["secret_encrypted"])


def stamp_triggers_renew(apps, schema_editor):
    create, drop = STAMP_TRIGGERS[schema_editor.connection.vendor]
    for statement in (*drop, *create):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("partners", "0004_config_stamp_triggers")]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, stamp_triggers_renew),
        migrations.RenameField("webhookendpoint", "secret", "secret_encrypted"),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret_encrypted",
            field=models.CharField(
                help_text="Standard Webhooks signing secret (whsec_...), encrypted with WEBHOOK_SECRETS_KEY (Fernet)",
                max_length=400,
            ),
        ),
        migrations.RunPython(stamp_triggers_renew, migrations.RunPython.noop),
        migrations.RunPython(encrypt_existing, decrypt_existing),
    ]
