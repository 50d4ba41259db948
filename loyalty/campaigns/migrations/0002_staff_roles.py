"""Role groups get the permissions of the campaigns models (loyalty.core.roles: Marketing all and
launch_campaign, Support and Analyst view)."""

from django.db import migrations

from loyalty.core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("core", "0005_staff_roles_by_model"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
