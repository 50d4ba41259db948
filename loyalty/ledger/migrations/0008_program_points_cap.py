from django.db import migrations, models

from loyalty.core.config import stamp_trigger_sql


def sqlite_stamp_triggers_again(apps, schema_editor) -> None:
    """SQLite adds a column by rebuilding the table, which drops its triggers: put the
    configuration stamp triggers of ledger_program back (PostgreSQL keeps them)."""
    if schema_editor.connection.vendor != "sqlite":
        return
    forward, reverse = stamp_trigger_sql("sqlite", "ledger_program")
    for statement in reverse + forward:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0007_lot_pending_due_per_account"),
    ]

    operations = [
        # backwards, removing the column rebuilds the table again: the triggers come back after it
        migrations.RunPython(migrations.RunPython.noop, sqlite_stamp_triggers_again),
        migrations.AddField(
            model_name="program",
            name="max_points_per_transaction",
            field=models.PositiveBigIntegerField(
                blank=True,
                default=1000000,
                help_text="A purchase that would earn more points than this is refused (points_cap_exceeded); empty: no cap",
                null=True,
            ),
        ),
        migrations.RunPython(sqlite_stamp_triggers_again, migrations.RunPython.noop),
    ]
