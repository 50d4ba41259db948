"""Two refreshes at once (the nightly task and a staff member's manage.py) take turns: the summary
tables hold each fact once, exactly what one refresh writes."""

from __future__ import annotations

import pytest

from loyalty.dashboards.models import ActiveSnapshot, DailyFact, MonthlyActivity, TierFlowDaily
from loyalty.dashboards.services import dashboards_refresh
from tests.concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def snapshot():
    return (
        sorted(DailyFact.objects.values_list("day", "program_id", "partner_id", "purchases", "points_earned")),
        sorted(MonthlyActivity.objects.values_list("month", "partner_key", "cohort", "active_members")),
        sorted(ActiveSnapshot.objects.values_list("day", "partner_key", "enrolled", "active_90d")),
        sorted(TierFlowDaily.objects.values_list("day", "from_tier_id", "to_tier_id", "members")),
    )


@pytest.mark.parametrize("run", range(2))
def test_concurrent_refreshes_write_every_summary_row_once(story, run):
    once = snapshot()
    results = run_together(4, lambda i: dashboards_refresh(full=True))
    assert all(not isinstance(r, Exception) for r in results), results
    assert snapshot() == once
