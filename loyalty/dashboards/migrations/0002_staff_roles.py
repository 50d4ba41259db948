"""Role groups get the dashboards' permissions (loyalty.core.roles: Marketing and Analyst every
dashboard, Support program health)."""

from django.db import migrations

from loyalty.core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("dashboards", "0001_initial"),
        ("core", "0005_staff_roles_by_model"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
