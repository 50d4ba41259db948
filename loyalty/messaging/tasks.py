"""Celery tasks of messaging: each calls one service. ``acks_late`` (the project default, stated
here because sending relies on it): a task whose worker dies is delivered again, and the send key
and the claim make the second run send nothing already sent."""

from celery import shared_task

from loyalty.messaging import selectors, services


@shared_task(name="messaging.send_batch", acks_late=True, bind=True)
def messages_send_batch(self, message_ids: list[int]) -> dict[str, int]:
    """Redelivered after its worker died, it sends its claims again where the provider drops
    repeats by send key (``sending``'s module docstring)."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    result = services.messages_send(message_ids=message_ids, resume=redelivered)
    return {"sent": result.sent, "failed": result.failed, "suppressed": result.suppressed, "skipped": result.skipped}


@shared_task(name="messaging.outbox_sweep", acks_late=True)
def outbox_sweep() -> int:
    """Transactional messages of new outbox events (every 30 seconds)."""
    return services.outbox_consume()


@shared_task(name="messaging.send_sweep", acks_late=True)
def send_sweep() -> int:
    """Safety net: queued messages no task took are dispatched; stale claims are closed."""
    services.messages_claims_expire()
    return services.messages_dispatch(message_ids=selectors.messages_stale_queued_ids())


@shared_task(name="messaging.expiring_reminders", acks_late=True)
def expiring_reminders() -> int:
    return services.expiring_reminders_queue()
