from django.core.management.base import BaseCommand

from segments import selectors, services
from segments.models import RefreshTrigger


class Command(BaseCommand):
    help = "Refresh dynamic segments (all with auto refresh, or the ids given)."

    def add_arguments(self, parser):
        parser.add_argument("segment_ids", nargs="*", type=int)

    def handle(self, *args, segment_ids, **options):
        if segment_ids:
            refreshes = [
                services.segment_refresh(segment=selectors.segment_get(pk=pk), trigger=RefreshTrigger.MANUAL)
                for pk in segment_ids
            ]
        else:
            refreshes = services.segments_refresh_all()
        for refresh in refreshes:
            self.stdout.write(
                f"{refresh.segment}: {refresh.size} members (+{refresh.entered} / -{refresh.left}) in {refresh.duration_ms} ms"
            )
