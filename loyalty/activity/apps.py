from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "loyalty.activity"
    label = "activity"
    verbose_name = "Earning rules and activity"
