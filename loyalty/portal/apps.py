from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "loyalty.portal"
    label = "portal"
    verbose_name = "Member portal"
