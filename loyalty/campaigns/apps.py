from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "loyalty.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"
