from django.db import migrations, models

# The function the configuration stamp triggers call, verbatim as ``loyalty.core.config`` built it
# when this migration was written (a migration must not change when runtime code does).
PG_RENEW_FUNCTION = """
CREATE OR REPLACE FUNCTION core_config_stamp_renew() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_configstamp (id, stamp) VALUES (1, (random() * 9.2e18 - 4.6e18)::bigint)
    ON CONFLICT (id) DO UPDATE SET stamp = EXCLUDED.stamp;
    RETURN NULL;
END $$
"""


def stamp_create(apps, schema_editor) -> None:
    schema_editor.execute("INSERT INTO core_configstamp (id, stamp) VALUES (1, 0)")
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
