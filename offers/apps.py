from django.apps import AppConfig


class OffersConfig(AppConfig):
    name = "offers"
    label = "offers"
    verbose_name = "Offers and rewards"
