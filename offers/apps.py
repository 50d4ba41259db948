from django.apps import AppConfig


class OffersConfig(AppConfig):
    name = "offers"
    label = "offers"
    verbose_name = "Offers and rewards"

    def ready(self) -> None:
        from loyalty.core import privacy
        from offers import privacy as offers_privacy

        privacy.register(section="rewards", exporter=offers_privacy.export_member, eraser=offers_privacy.erase_member)
