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
        from loyalty.engagement import privacy_engagement

        # challenges, badges, community events, birthdays and anniversaries
        privacy.register(
            section="engagement", exporter=privacy_engagement.export_member, eraser=privacy_engagement.erase_member
        )
