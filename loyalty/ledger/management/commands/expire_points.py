from django.core.management.base import BaseCommand

from loyalty.ledger import services


class Command(BaseCommand):
    help = "Expire every lot whose expiry date has passed (safe to run again)."

    def handle(self, *args, **options):
        self.stdout.write(f"{services.expire_due_lots()} accounts had points expire.")
