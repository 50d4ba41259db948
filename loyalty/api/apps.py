from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "loyalty.api"
    label = "api"
    verbose_name = "Partner API"

    def ready(self):
        from loyalty.api import schema  # noqa: F401 - registers the OpenAPI field extensions
