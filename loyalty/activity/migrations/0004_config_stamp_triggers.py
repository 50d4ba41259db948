"""Earning rules are configuration: changes renew the stamp ``loyalty.core.config`` caches them under."""

from django.db import migrations

from loyalty.core.config import stamp_trigger


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp"), ("activity", "0003_imported_campaigns")]

    operations = [stamp_trigger("activity_earningrule")]
