"""Partners and their webhook endpoints are configuration: changes renew the stamp
``loyalty.core.config`` caches them under."""

from django.db import migrations

from loyalty.core.config import stamp_trigger


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp"), ("partners", "0003_api_keys_links_webhooks")]

    operations = [stamp_trigger("partners_partner"), stamp_trigger("partners_webhookendpoint")]
