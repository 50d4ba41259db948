from django.db import migrations, models

# SQLite adds a column by rebuilding the table, which drops its triggers: the configuration stamp
# triggers of ledger_program (migration 0006, same statements, verbatim) are put back after it.
# PostgreSQL keeps them.
SQLITE_PROGRAM_TRIGGERS = [
    'CREATE TRIGGER ledger_program_config_stamp_insert AFTER INSERT ON ledger_program FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
    'CREATE TRIGGER ledger_program_config_stamp_update AFTER UPDATE ON ledger_program FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
    'CREATE TRIGGER ledger_program_config_stamp_delete AFTER DELETE ON ledger_program FOR EACH ROW  BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
]
SQLITE_PROGRAM_TRIGGERS_DROP = [
    'DROP TRIGGER IF EXISTS ledger_program_config_stamp_insert',
    'DROP TRIGGER IF EXISTS ledger_program_config_stamp_update',
    'DROP TRIGGER IF EXISTS ledger_program_config_stamp_delete',
]


def sqlite_stamp_triggers_again(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in SQLITE_PROGRAM_TRIGGERS_DROP + SQLITE_PROGRAM_TRIGGERS:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_ledger_write_functions"),
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
