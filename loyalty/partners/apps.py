from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "loyalty.partners"
    label = "partners"
    verbose_name = "Partners"
