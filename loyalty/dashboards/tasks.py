"""Celery tasks of the dashboards: the nightly refresh of the summary tables."""

from celery import shared_task

from loyalty.dashboards.services import dashboards_refresh


@shared_task(name="dashboards.refresh")
def refresh() -> dict:
    run = dashboards_refresh()
    return {"since": run.since.isoformat(), "until": run.until.isoformat(), "timings": run.timings}
