from celery import shared_task

from loyalty.partners import webhooks
from loyalty.partners.models import OutboxEvent


@shared_task(name="partners.webhooks_dispatch_event")
def webhooks_dispatch_event(event_id: int) -> int:
    event = OutboxEvent.objects.filter(pk=event_id, published_at__isnull=True).first()
    if event is None:
        return 0
    deliveries = webhooks.deliveries_create(event=event)
    for delivery_id in deliveries:
        webhooks_deliver.delay(delivery_id)
    return len(deliveries)


@shared_task(name="partners.webhooks_sweep")
def webhooks_sweep() -> int:
    """Safety net and retries: dispatch events missed after commit, then send what is due."""
    for event in webhooks.outbox_undispatched():
        webhooks.deliveries_create(event=event)
    due = webhooks.deliveries_due()
    for delivery in due:
        webhooks_deliver.delay(delivery.pk)
    return len(due)


@shared_task(name="partners.webhooks_deliver")
def webhooks_deliver(delivery_id: int) -> None:
    from loyalty.partners.models import DeliveryStatus, WebhookDelivery

    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "event")
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .first()
    )
    if delivery is not None:
        webhooks.delivery_attempt(delivery=delivery)
