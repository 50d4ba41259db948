"""Tier policies, tiers, thresholds and perks are configuration: changes renew the stamp
``loyalty.core.config`` caches them under."""

from django.db import migrations

from loyalty.core.config import stamp_trigger


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp"), ("tiers", "0003_fewer_indexes")]

    operations = [
        stamp_trigger("tiers_tierpolicy"),
        stamp_trigger("tiers_tier"),
        stamp_trigger("tiers_tierthreshold"),
        stamp_trigger("tiers_tierperk"),
    ]
