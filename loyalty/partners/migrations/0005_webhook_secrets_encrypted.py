"""Webhook signing secrets encrypted at rest (Fernet, key WEBHOOK_SECRETS_KEY): the column is
renamed so that nothing reads it as plain text, and the secrets already stored are encrypted.
SQLite rebuilds the table to widen the column, which drops its configuration-stamp triggers: they
are made again after it (both ways)."""

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.db import migrations, models

from loyalty.core.config import stamp_trigger_sql

TABLE = "partners_webhookendpoint"


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
    drop, create = stamp_trigger_sql(schema_editor.connection.vendor, TABLE)[::-1]
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
