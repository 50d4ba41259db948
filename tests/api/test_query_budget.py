"""Query budgets of the hot partner endpoints: an N+1 or a second lock cannot slip in unseen."""

import datetime as dt

import pytest

from loyalty.core import clock
from tests.api.conftest import purchase_body

pytestmark = pytest.mark.django_db

# A warm purchase (member, account, link and idempotency table already there), with an
# Idempotency-Key: key lookup (partner joined), key claim, member, program, account lock,
# due-lots probe, same-external_id check, link check, purchase and lines (savepoint), tier policy
# and tiers, earning rules, ledger transaction, lot, issued account, entries, account and
# purchase updates, outbox event, key answer stored; plus the test's savepoint around the work.
WARM_PURCHASE_BUDGET = 25


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC))


def test_warm_purchase_with_idempotency_key_stays_within_its_query_budget(api, enrolled, django_assert_max_num_queries):
    first = api.post("/api/v1/purchases/", purchase_body(enrolled, "till-1"), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201, first.content
    with django_assert_max_num_queries(WARM_PURCHASE_BUDGET):
        response = api.post(
            "/api/v1/purchases/", purchase_body(enrolled, "till-2"), format="json", HTTP_IDEMPOTENCY_KEY="k2"
        )
    assert response.status_code == 201, response.content
    assert response.json()["points_earned"] == 100


def test_warm_purchase_without_key_costs_two_queries_less(api, enrolled, django_assert_max_num_queries):
    api.post("/api/v1/purchases/", purchase_body(enrolled, "till-1"), format="json")
    with django_assert_max_num_queries(WARM_PURCHASE_BUDGET - 2):
        response = api.post("/api/v1/purchases/", purchase_body(enrolled, "till-2"), format="json")
    assert response.status_code == 201, response.content


def test_repeated_purchase_is_answered_within_the_budget(api, enrolled, django_assert_max_num_queries):
    first = api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    with django_assert_max_num_queries(WARM_PURCHASE_BUDGET - 2):
        again = api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    assert (again.status_code, again.json()) == (200, first.json())
