"""webhook_secrets_rotate

After putting a new Fernet key first in WEBHOOK_SECRETS_KEY (``new,old``), re-encrypts every
webhook signing secret with it; then the old key can be dropped from the setting."""

from django.core.management.base import BaseCommand, CommandError

from loyalty.core.errors import ApplicationError
from loyalty.partners import webhooks


class Command(BaseCommand):
    help = "Re-encrypt webhook signing secrets with the first key of WEBHOOK_SECRETS_KEY."

    def handle(self, *args, **options):
        try:
            rotated = webhooks.webhook_secrets_rotate()
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stdout.write(f"{rotated} webhook secret(s) re-encrypted with the first key")
