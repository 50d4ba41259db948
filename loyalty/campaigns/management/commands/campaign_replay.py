from django.core.management.base import BaseCommand, CommandError

from loyalty.campaigns.selectors.replay import REPLAY_CAVEAT, replay_all


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


class Command(BaseCommand):
    help = (
        "Replay The Complete Journey's imported campaigns as campaign results: each campaign's targeted "
        "households against the program's other active members over the campaign's days (conversion and "
        "revenue per member, difference with its confidence interval and p-value)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bootstrap", type=int, default=2000, help="Bootstrap resamples (default 2000)")
        parser.add_argument("--seed", type=int, default=0, help="Bootstrap seed (default 0)")
        parser.add_argument("--confidence", type=float, default=0.95, help="Confidence level (default 0.95)")

    def handle(self, *args, bootstrap, seed, confidence, **options):
        if bootstrap < 1 or not 0 < confidence < 1:
            raise CommandError("--bootstrap must be at least 1 and --confidence between 0 and 1")
        replays = replay_all(confidence=confidence, bootstrap=bootstrap, seed=seed)
        if not replays:
            self.stdout.write("No imported Complete Journey campaigns (run load_demo or import_complete_journey).")
            return
        level = f"{confidence * 100:g}%"
        header = (
            f"{'campaign':<24} {'days':<23} {'targeted':>8} {'holdout':>8} {'conv T':>7} {'conv H':>7} "
            f"{'uplift (points) [' + level + ' CI]':<32} {'p':>8} {'rev/mbr T':>10} {'rev/mbr H':>10} "
            f"{'difference [' + level + ' CI, Welch]':<36} {'p':>8} {'bootstrap CI':<20} {'incremental':>12}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        significant = 0
        for replay in replays:
            days = f"{replay.starts_on} – {replay.ends_on}" if replay.starts_on else "no dates"
            if replay.results is None:
                self.stdout.write(f"{replay.name[:24]:<24} {days:<23} " + "; ".join(replay.notes))
                continue
            targeted, holdout = replay.results.arms
            (c,) = replay.results.comparisons
            if not c.available:
                self.stdout.write(
                    f"{replay.name[:24]:<24} {days:<23} {targeted.reach:>8} {holdout.reach:>8} " + " ".join(c.notes)
                )
                continue
            significant += c.conversion_p < 1 - confidence
            uplift = (
                f"{c.conversion_diff * 100:+.1f} [{c.conversion_ci.low * 100:+.1f}, {c.conversion_ci.high * 100:+.1f}]"
            )
            revenue = (
                f"{c.revenue_per_member_diff:+.2f} [{c.revenue_ci.low:+.2f}, {c.revenue_ci.high:+.2f}]"
                if c.revenue_ci
                else f"{c.revenue_per_member_diff:+.2f}"
            )
            boot = f"[{c.revenue_bootstrap_ci.low:+.2f}, {c.revenue_bootstrap_ci.high:+.2f}]"
            revenue_p = "—" if c.revenue_p is None else f"{c.revenue_p:.3g}"
            self.stdout.write(
                f"{replay.name[:24]:<24} {days:<23} {targeted.reach:>8} {holdout.reach:>8} "
                f"{_pct(targeted.conversion_rate):>7} {_pct(holdout.conversion_rate):>7} {uplift:<32} "
                f"{c.conversion_p:>8.3g} {targeted.revenue_per_member!s:>10} {holdout.revenue_per_member!s:>10} "
                f"{revenue:<36} {revenue_p:>8} {boot:<20} {c.incremental_revenue!s:>12}"
            )
        self.stdout.write(
            f"\n{len(replays)} campaigns; conversion difference significant at {level} in {significant}. "
            f"Conversion: at least one purchase in the campaign's days; revenue: kept spend in them; "
            f"holdout: the program's other members with purchases.\nCaveat: {REPLAY_CAVEAT}"
        )
