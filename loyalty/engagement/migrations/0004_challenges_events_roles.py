"""Challenges are configuration read by every purchase: changes renew the stamp ``loyalty.core.config``
caches them under (row triggers, as activity's 0004). The event type ``event_attended`` (community
events' check-in). Role groups get the permissions of the new models (``sync_roles``)."""

from django.db import migrations

from loyalty.core.roles import sync_roles

TABLES = ("engagement_challenge", "engagement_challenge_segments", "engagement_challenge_tiers")
ACTIONS = ("insert", "update", "delete")


def _statements(vendor: str, forward: bool) -> list[str]:
    out = []
    for table in TABLES:
        for action in ACTIONS:
            name = f"{table}_config_stamp_{action}"
            if not forward:
                out.append(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if vendor == "postgresql" else ""))
            elif vendor == "postgresql":
                out.append(
                    f"CREATE TRIGGER {name} AFTER {action.upper()} ON {table} FOR EACH ROW "
                    "EXECUTE FUNCTION core_config_stamp_renew()"
                )
            else:
                out.append(
                    f"CREATE TRIGGER {name} AFTER {action.upper()} ON {table} FOR EACH ROW "
                    "BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END"
                )
    return out


def triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor.connection.vendor, True):
        schema_editor.execute(statement)


def triggers_drop(apps, schema_editor) -> None:
    for statement in _statements(schema_editor.connection.vendor, False):
        schema_editor.execute(statement)


def event_types(apps, schema_editor) -> None:
    EventType = apps.get_model("activity", "EventType")
    EventType.objects.get_or_create(code="event_attended", defaults={"name": "Community event attended"})


class Migration(migrations.Migration):
    dependencies = [
        ("engagement", "0003_challenges_events"),
        ("core", "0005_staff_roles_by_model"),
        ("core", "0003_config_stamp"),
        ("activity", "0005_imported_campaigns_are_offers"),
    ]

    operations = [
        migrations.RunPython(triggers, triggers_drop),
        migrations.RunPython(event_types, migrations.RunPython.noop),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
