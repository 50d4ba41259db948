"""Rewrite the dashboards' summary tables: ``manage.py refresh_dashboards [--full | --days N]``."""

from django.core.management.base import BaseCommand, CommandError

from loyalty.dashboards.services import dashboards_refresh


class Command(BaseCommand):
    help = "Rewrite the dashboards' summary tables (the last DASHBOARDS_REFRESH_DAYS days, or all with --full)."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="rewrite every day with data")
        parser.add_argument("--days", type=int, help="rewrite this many days up to today")

    def handle(self, *args, full: bool = False, days: int | None = None, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be 1 or more")
        run = dashboards_refresh(full=full, days=days)
        timings = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in run.timings.items())
        self.stdout.write(f"Dashboards refreshed from {run.since} to {run.until}: {timings}")
