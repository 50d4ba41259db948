"""Role groups get the permissions of the survey and referral models (loyalty.core.roles: Marketing all,
Support view, Analyst view)."""

from django.db import migrations

from loyalty.core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("engagement", "0001_surveys_referrals"),
        ("core", "0005_staff_roles_by_model"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
