"""Opening balances from another program (see ``loyalty.imports.opening_balances``).

python manage.py import_opening_balances balances.csv [--program NAME] [--dry-run]
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from loyalty.core.errors import ApplicationError
from loyalty.imports.opening_balances import opening_balances_import_file
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Program


class Command(BaseCommand):
    help = (
        "Credit opening balances from a CSV (member_number or email, points, expires_on, reason). "
        "Checks every row first and writes nothing if one is bad; rerunning the same file credits nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv", help="CSV file with a header row")
        parser.add_argument("--program", default=None, help="Program to credit (default: the default program)")
        parser.add_argument("--dry-run", action="store_true", help="Only check the rows")

    def handle(self, *args, csv: str, program: str | None, dry_run: bool, **options):
        target = Program.objects.filter(name=program).first() if program else ledger_selectors.program_default()
        if target is None:
            raise CommandError(f"No program named '{program}'")
        try:
            report = opening_balances_import_file(path=csv, program=target, dry_run=dry_run)
        except (ApplicationError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        for number, message in report.errors:
            self.stderr.write(f"row {number}: {message}")
        if report.errors:
            raise CommandError(f"{len(report.errors)} of {report.rows} rows are bad: nothing was credited.")
        if dry_run:
            self.stdout.write(f"{report.rows} rows are fine (dry run: nothing credited).")
            return
        self.stdout.write(
            f"{report.credited} balances credited ({report.points} points) to '{target.name}', "
            f"{report.repeated} already credited by an earlier run."
        )
