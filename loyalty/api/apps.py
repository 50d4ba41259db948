from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "loyalty.api"
    label = "api"
    verbose_name = "Partner API"
