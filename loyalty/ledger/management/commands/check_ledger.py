from django.core.management.base import BaseCommand, CommandError

from loyalty.ledger.selectors.invariants import ledger_invariant_checks


class Command(BaseCommand):
    help = (
        "Check the ledger's invariants over the whole database (balanced transactions, balances against "
        "entries and lots, no lot below zero, no event twice in the outbox); exits non-zero on any violation."
    )

    def handle(self, *args, **options):
        checks = ledger_invariant_checks()
        width = max(len(check.name) for check in checks)
        for check in checks:
            line = f"{check.name:<{width}}  {check.violations:>8} violations  ({check.rule})"
            if check.violations:
                self.stdout.write(self.style.ERROR(line))
                for example in check.examples:
                    self.stdout.write(f"    e.g. {example}")
            else:
                self.stdout.write(line)
        total = sum(check.violations for check in checks)
        if total:
            raise CommandError(f"{total} ledger invariant violations")
        self.stdout.write(self.style.SUCCESS("ledger invariants hold: 0 violations"))
