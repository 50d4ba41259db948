"""With a replica configured, dashboards and their exports read through it; everything else, and
every write, stays on the primary."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from loyalty.dashboards.models import DailyFact
from loyalty.dashboards.routers import DashboardsReplicaRouter, replica_reads
from tests.dashboards.conftest import REPLICA, staff_user

ALIAS = REPLICA


@pytest.fixture
def replica(settings):
    """The second alias of tests/dashboards/conftest.py, used for the dashboards' reads."""
    settings.DASHBOARDS_READ_DATABASE = ALIAS
    return ALIAS


def test_router_sends_reads_to_the_replica_only_inside_replica_reads(settings):
    settings.DASHBOARDS_READ_DATABASE = ALIAS
    router = DashboardsReplicaRouter()
    assert router.db_for_read(DailyFact) is None
    with replica_reads() as alias:
        assert alias == ALIAS
        assert router.db_for_read(DailyFact) == ALIAS
        assert router.db_for_write(DailyFact) is None
    assert router.db_for_read(DailyFact) is None
    assert router.allow_migrate(ALIAS, "dashboards") is False


def test_without_a_replica_everything_reads_the_primary(settings):
    settings.DASHBOARDS_READ_DATABASE = None
    with replica_reads() as alias:
        assert alias == "default"
        assert DashboardsReplicaRouter().db_for_read(DailyFact) is None


@pytest.mark.django_db(transaction=True, databases=["default", ALIAS])
def test_dashboard_page_and_export_read_from_the_replica(replica, story):
    client = Client()
    client.force_login(staff_user("Analyst"))
    query = f"program={story['program'].pk}&start=2030-01-01&end=2030-03-31"
    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        page = client.get(f"/staff/health/?{query}")
        export = client.get(f"/staff/profitability/?{query}&export=settlement")
    assert page.status_code == 200 and export.status_code == 200
    tables = " ".join(q["sql"] for q in on_replica.captured_queries)
    assert "dashboards_dailyfact" in tables and "dashboards_activesnapshot" in tables
    assert "Coffee" in export.content.decode()
