from celery import shared_task

from loyalty.partners import webhooks
from loyalty.partners.models import DeliveryStatus, OutboxEvent, WebhookDelivery


@shared_task(name="partners.webhooks_dispatch_event", bind=True)
def webhooks_dispatch_event(self, event_id: int) -> int:
    """Fan one event out and queue its deliveries. Redelivered (its worker died: ``acks_late``,
    ``reject_on_worker_lost``) after the fan-out committed, it queues the event's deliveries never
    attempted, so none waits for the sweep; a delivery queued twice is sent once (the second task
    finds it delivered; receivers drop a repeat by its ``webhook-id`` in any case)."""
    event = OutboxEvent.objects.filter(pk=event_id).first()
    if event is None:
        return 0
    if event.published_at is None:
        deliveries = webhooks.deliveries_create(event=event)
    elif (self.request.delivery_info or {}).get("redelivered"):
        deliveries = list(
            WebhookDelivery.objects.filter(event=event, status=DeliveryStatus.PENDING, attempts=0).values_list(
                "pk", flat=True
            )
        )
    else:
        return 0
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
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "event")
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .first()
    )
    if delivery is not None:
        webhooks.delivery_attempt(delivery=delivery)
