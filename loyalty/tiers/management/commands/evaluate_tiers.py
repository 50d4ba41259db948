from django.core.management.base import BaseCommand, CommandError

from loyalty.ledger.models import Program
from loyalty.tiers import services
from loyalty.tiers.services.evaluation import BATCH_MEMBERS


class Command(BaseCommand):
    help = "Evaluate tiers now (what the nightly job does): period closes, downgrades, ended manual tiers."

    def add_arguments(self, parser):
        parser.add_argument("--program", type=int, help="only this program id")
        parser.add_argument("--batch", type=int, default=BATCH_MEMBERS, help="members per transaction")
        parser.add_argument("--workers", type=int, default=None, help="parallel member ranges (PostgreSQL)")

    def handle(self, *args, program=None, batch=BATCH_MEMBERS, workers=None, **options):
        target = Program.objects.filter(pk=program).first() if program else None
        if program and target is None:
            raise CommandError(f"No program {program}")
        result = services.tiers_evaluate(program=target, batch=batch, workers=workers)
        self.stdout.write(", ".join(f"{key}: {value}" for key, value in result.items()))
