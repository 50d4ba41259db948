import datetime as dt

from django.core.management.base import BaseCommand

from segments import services


class Command(BaseCommand):
    help = "Compute RFM scores and predicted CLV (BG/NBD + Gamma-Gamma) for every member with purchases."

    def add_arguments(self, parser):
        parser.add_argument("--window-days", type=int, default=365, help="RFM window (default 365)")
        parser.add_argument("--horizon-days", type=int, default=365, help="Prediction horizon (default 365)")
        parser.add_argument("--margin", default="1", help="Margin applied to predicted spend (0-1, default 1)")
        parser.add_argument("--as-of", type=dt.datetime.fromisoformat, help="ISO datetime with time zone (default now)")

    def handle(self, *args, window_days, horizon_days, margin, as_of, **options):
        run = services.scores_compute(as_of=as_of, window_days=window_days, horizon_days=horizon_days, margin=margin)
        self.stdout.write(
            f"scored {run.members_scored} members as of {run.as_of:%Y-%m-%d %H:%M}; "
            f"BG/NBD {run.bgnbd}; Gamma-Gamma {run.gamma_gamma}; timings {run.timings}"
            + (f"; {run.note}" if run.note else "")
        )
