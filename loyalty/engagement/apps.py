from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "loyalty.engagement"
    label = "engagement"
    verbose_name = "Engagement"
