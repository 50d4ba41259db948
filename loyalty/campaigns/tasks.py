"""Celery tasks of campaigns: each calls one service. ``acks_late``: a task whose worker died is
delivered again, and a run already queued queues nothing the second time (its send keys)."""

from celery import shared_task

from loyalty.campaigns.models import Campaign
from loyalty.campaigns.services import campaigns as services


@shared_task(name="campaigns.run_due", acks_late=True)
def campaigns_run_due() -> dict[str, int]:
    """Every minute: scheduled launches, recurrences and ends."""
    return services.campaigns_run_due()


@shared_task(name="campaigns.run", acks_late=True)
def campaign_run(campaign_id: int, number: int) -> int:
    """Run ``number`` of one campaign (idempotent); returns the messages it queued."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    run = services.campaign_run(campaign=campaign, number=number)
    return run.queued if run is not None else 0


@shared_task(name="campaigns.dispatch", acks_late=True)
def campaign_dispatch(campaign_id: int) -> int:
    """After a run commits: its queued messages go to the send batches (tasks sent)."""
    return services.campaign_messages_dispatch(campaign_id=campaign_id)
