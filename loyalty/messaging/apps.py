from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "loyalty.messaging"
    label = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from loyalty.core import privacy
        from loyalty.messaging import privacy as messaging_privacy

        privacy.register(
            section="messaging", exporter=messaging_privacy.export_member, eraser=messaging_privacy.erase_member
        )
