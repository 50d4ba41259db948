"""Query budgets of the hot partner endpoints: an N+1 or a second lock cannot slip in unseen."""

import datetime as dt

import pytest
from django.db import connection

from loyalty.core import clock
from tests.api.conftest import purchase_body

pytestmark = pytest.mark.django_db

# A warm purchase (member, account, link, issued account and idempotency table already there,
# configuration cached), with an Idempotency-Key: key lookup (partner and configuration stamp
# joined); the key claimed in a transaction of its own (a lease: SAVEPOINT, INSERT, RELEASE here, BEGIN,
# INSERT, COMMIT in service), because the workflow's transaction is durable and cannot hold it; the
# workflow's transaction: member found and account locked and probed for due lots (one statement),
# purchase with its lines (one call of ledger_purchase_insert), the credit: ledger transaction, lot,
# entries, account and purchase updates (one call of ledger_credit), outbox event, partner link
# (INSERT ... ON CONFLICT DO NOTHING), inside the test's SAVEPOINT/RELEASE (BEGIN and COMMIT in
# service); then the key's answer stored. On SQLite the two functions are the ORM's statements: the
# purchase in a savepoint (2 more) and its lines, the ledger transaction in a savepoint (2 more), lot,
# entries, account and purchase updates (9 more).
WARM_PURCHASE_BUDGET = 12 if connection.vendor == "postgresql" else 21


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC))


@pytest.fixture
def warm(api, enrolled):
    """Two purchases: the first opens the partner's issued account (a configuration change), the
    second caches the configuration as it is now."""
    for external_id in ("warm-1", "warm-2"):
        response = api.post("/api/v1/purchases/", purchase_body(enrolled, external_id), format="json")
        assert response.status_code == 201, response.content
    return enrolled


def test_warm_purchase_with_idempotency_key_stays_within_its_query_budget(api, warm, django_assert_max_num_queries):
    with django_assert_max_num_queries(WARM_PURCHASE_BUDGET):
        response = api.post(
            "/api/v1/purchases/", purchase_body(warm, "till-2"), format="json", HTTP_IDEMPOTENCY_KEY="k2"
        )
    assert response.status_code == 201, response.content
    assert response.json()["points_earned"] == 100


def test_warm_purchase_without_key_costs_two_queries_less(api, warm, django_assert_max_num_queries):
    with django_assert_max_num_queries(WARM_PURCHASE_BUDGET - 2):
        response = api.post("/api/v1/purchases/", purchase_body(warm, "till-2"), format="json")
    assert response.status_code == 201, response.content


def test_repeated_purchase_is_answered_within_the_budget(api, warm, django_assert_max_num_queries):
    """Key lookup, lock, the purchase insert that finds the first one, reads of it, its lines,
    its earn and lot; plus the test's savepoint (on SQLite the insert runs in a savepoint rolled
    back: 3 more)."""
    first = api.post("/api/v1/purchases/", purchase_body(warm), format="json")
    with django_assert_max_num_queries(9 if connection.vendor == "postgresql" else 12):
        again = api.post("/api/v1/purchases/", purchase_body(warm), format="json")
    assert (again.status_code, again.json()) == (200, first.json())


def test_a_configuration_change_is_seen_by_the_next_purchase(api, warm):
    """Cached configuration is exact: a new earning rule counts at once (the stamp changed)."""
    from loyalty.activity.models import EarningRule
    from loyalty.ledger.selectors import program_default

    EarningRule.objects.create(program=program_default(), name="Bonus", kind="min_spend_bonus", bonus_points=50)
    response = api.post("/api/v1/purchases/", purchase_body(warm, "till-3"), format="json")
    assert response.json()["points_earned"] == 150, response.json()
