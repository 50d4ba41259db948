from django.db import migrations

from loyalty.core.roles import sync_roles

BUILTIN = {
    "app_login": "App login",
    "review_written": "Review written",
    "survey_completed": "Survey completed",
    "referral_completed": "Referral completed",
    "social_share": "Social share",
}


def seed(apps, schema_editor):
    EventType = apps.get_model("activity", "EventType")
    for code, name in BUILTIN.items():
        EventType.objects.get_or_create(code=code, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("activity", "0001_initial"), ("partners", "0003_api_keys_links_webhooks"), ("core", "0002_idempotency")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop), migrations.RunPython(sync_roles, migrations.RunPython.noop)]
