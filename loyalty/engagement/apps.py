from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "loyalty.engagement"
    label = "engagement"
    verbose_name = "Engagement"

    def ready(self) -> None:
        from loyalty.core import privacy
        from loyalty.engagement import privacy_surveys_referrals

        privacy.register(
            section="surveys_referrals",
            exporter=privacy_surveys_referrals.export_member,
            eraser=privacy_surveys_referrals.erase_member,
        )
