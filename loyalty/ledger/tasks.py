from celery import shared_task

from loyalty.ledger import services


@shared_task(name="ledger.mature_pending_lots")
def mature_pending_lots() -> int:
    return services.mature_pending_lots()


@shared_task(name="ledger.expire_due_lots")
def expire_due_lots() -> int:
    return services.expire_due_lots()


@shared_task(name="ledger.expiring_notify")
def expiring_notify() -> int:
    return services.expiring_notify()
