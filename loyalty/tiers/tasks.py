from celery import shared_task

from loyalty.tiers import services


@shared_task(name="tiers.evaluate")
def evaluate_tiers() -> dict[str, int]:
    """Nightly: period closes, downgrades after grace, ended manual tiers. Idempotent."""
    return services.tiers_evaluate()
