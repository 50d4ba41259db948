"""Role groups get their permissions model by model (loyalty.core.roles): Support no longer changes
tier definitions, Marketing changes earning and event rules, tiers and the program."""

from django.db import migrations

from loyalty.core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_idempotency_response_bytes"),
        ("members", "0003_redemption_code"),
        ("partners", "0005_webhook_secrets_encrypted"),
        ("ledger", "0007_lot_pending_due_per_account"),
        ("tiers", "0004_config_stamp_triggers"),
        ("activity", "0004_config_stamp_triggers"),
        ("segments", "0004_membership_no_fk_checks"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
