from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "loyalty.dashboards"
    label = "dashboards"
    verbose_name = "Dashboards"
