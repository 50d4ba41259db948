from celery import shared_task

from segments import services
from segments.models import RefreshTrigger, Segment


@shared_task(name="segments.refresh_dynamic_segments")
def refresh_dynamic_segments() -> int:
    return len(services.segments_refresh_all(trigger=RefreshTrigger.SCHEDULE))


@shared_task(name="segments.refresh_segment")
def refresh_segment(segment_id: int) -> int:
    return services.segment_refresh(segment=Segment.objects.get(pk=segment_id), trigger=RefreshTrigger.MANUAL).size


@shared_task(name="segments.compute_scores")
def compute_scores() -> int:
    return services.scores_compute().members_scored
