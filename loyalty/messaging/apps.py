from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "loyalty.messaging"
    label = "messaging"
    verbose_name = "Messaging"
