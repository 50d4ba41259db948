from celery import shared_task

from loyalty.engagement.services.celebrations import celebrations_run
from loyalty.engagement.services.challenges import challenges_recompute


@shared_task(name="engagement.challenges_recompute")
def recompute_challenges() -> list[dict]:
    """Nightly safety net: every running challenge's progress from its purchases/events, set-based; awards found."""
    return [
        {"challenge": r.challenge_id, "rows": r.progress_rows, "completed": r.completed} for r in challenges_recompute()
    ]


@shared_task(name="engagement.celebrations")
def reward_celebrations() -> list[dict]:
    """Hourly: birthdays and enrollment anniversaries of each program's local today. Idempotent."""
    return [
        {"program": r.program_id, "kind": r.kind, "day": r.day.isoformat(), "awarded": r.awarded}
        for r in celebrations_run()
    ]
