"""Role groups get the permissions of the offers models (loyalty.core.roles: Marketing all, Support view)."""

from django.db import migrations

from loyalty.core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("offers", "0001_initial"),
        ("core", "0005_staff_roles_by_model"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
