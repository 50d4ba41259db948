from django.core.management.base import BaseCommand

from loyalty.ledger import services


class Command(BaseCommand):
    help = "Make pending points whose return window has passed spendable (safe to run again)."

    def handle(self, *args, **options):
        self.stdout.write(f"{services.mature_pending_lots()} accounts had points mature.")
