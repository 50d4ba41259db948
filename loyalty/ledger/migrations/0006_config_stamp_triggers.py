"""Programs, their partners and the system accounts are configuration: changes renew the stamp
``loyalty.core.config`` caches them under."""

from django.db import migrations

from loyalty.core.config import stamp_trigger


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp"), ("ledger", "0005_entry_references_lots_never_deleted")]

    operations = [
        stamp_trigger("ledger_program"),
        stamp_trigger("ledger_program_partners"),
        stamp_trigger("ledger_account", when="ROW.kind <> 'member'"),  # system accounts only
    ]
