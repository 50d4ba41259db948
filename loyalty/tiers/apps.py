from django.apps import AppConfig


class TiersConfig(AppConfig):
    name = "loyalty.tiers"
    label = "tiers"
    verbose_name = "Tiers"

    def ready(self) -> None:
        from loyalty.core import privacy
        from loyalty.tiers import privacy as tier_privacy

        privacy.register(section="tiers", exporter=tier_privacy.export_member, eraser=tier_privacy.erase_member)
