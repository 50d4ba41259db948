from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "loyalty.imports"
    label = "imports"
    verbose_name = "Bulk imports"
