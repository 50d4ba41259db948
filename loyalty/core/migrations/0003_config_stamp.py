from django.db import migrations, models

from loyalty.core.config import PG_RENEW_FUNCTION, STAMP_TABLE


def stamp_create(apps, schema_editor) -> None:
    schema_editor.execute(f"INSERT INTO {STAMP_TABLE} (id, stamp) VALUES (1, 0)")  # noqa: S608 - constant
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_RENEW_FUNCTION)


def stamp_drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS core_config_stamp_renew()")


class Migration(migrations.Migration):
    dependencies = [("core", "0002_idempotency")]

    operations = [
        migrations.CreateModel(
            name="ConfigStamp",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("stamp", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "core_configstamp"},
        ),
        migrations.RunPython(stamp_create, stamp_drop),
    ]
