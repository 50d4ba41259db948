from django.core.mail.backends.base import BaseEmailBackend


class FailingBackend(BaseEmailBackend):
    """An email backend whose server refuses every message."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("refused by the test server")
