from django.core.management.base import BaseCommand

from offers.services.ranking import CHUNK, TOP_DEFAULT, member_offer_ranks_compute


class Command(BaseCommand):
    help = (
        "Rank the live offers and rewards for every active member of the default program (as offers_for_member "
        "does) and store each member's top N (MemberOfferRank), replacing the last run's rows."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--top", type=int, default=TOP_DEFAULT, help=f"Items kept per member (default {TOP_DEFAULT})"
        )
        parser.add_argument("--chunk", type=int, default=CHUNK, help=f"Members scored at once (default {CHUNK})")

    def handle(self, *args, top, chunk, **options):
        run = member_offer_ranks_compute(top=top, chunk=chunk)
        timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run.timings.items())
        self.stdout.write(
            f"ranked {run.members} members ({run.personalized} with personalization consent) over {run.items} "
            f"offers and rewards, {run.profiles} eligibility profiles; {run.rows} rows stored; {timings}"
        )
