"""Idempotency-Key: replays are the first answer byte for byte, a concurrent copy waits for the
first answer, a request that failed frees its key at once, and one whose worker died blocks its
retry for no longer than the claim's lease."""

import datetime as dt
import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client

from loyalty.activity import services as activity
from loyalty.core import clock, idempotency
from loyalty.core.idempotency import request_hash
from loyalty.core.models import IdempotencyRecord
from loyalty.ledger.models import Entry, Purchase
from loyalty.partners.services import partner_key_create
from tests.api.conftest import just_now, purchase_body
from tests.api.test_api import problem
from tests.concurrency import run_together

T = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def _now():
    clock.set_now(T)


@pytest.mark.django_db
@pytest.mark.usefixtures("_now")
def test_replay_is_the_first_answer_byte_for_byte_and_says_it_is_a_replay(api, enrolled):
    headers = {"HTTP_IDEMPOTENCY_KEY": "k-1"}
    first = api.post("/api/v1/purchases/", purchase_body(enrolled), format="json", **headers)
    again = api.post("/api/v1/purchases/", purchase_body(enrolled), format="json", **headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert Purchase.objects.filter(external_id="till-1").count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("_now")
def test_same_key_with_a_changed_body_is_idempotency_key_reused(api, enrolled):
    headers = {"HTTP_IDEMPOTENCY_KEY": "k-2"}
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json", **headers)
    changed = purchase_body(enrolled, store="S2")
    problem(api.post("/api/v1/purchases/", changed, format="json", **headers), 422, "idempotency_key_reused")


@pytest.mark.django_db
@pytest.mark.usefixtures("_now")
def test_a_claim_whose_lease_ran_out_is_taken_over_and_the_retry_runs_once(api, enrolled):
    body = purchase_body(enrolled)
    IdempotencyRecord.objects.create(
        scope=f"partner:{api.partner.pk}",
        key="k-dead",
        endpoint="/api/v1/purchases/",
        request_hash="whatever the dead request sent",
        state=IdempotencyRecord.RUNNING,
        created_at=T - dt.timedelta(seconds=61),
    )
    retry = api.post("/api/v1/purchases/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-dead")
    assert retry.status_code == 201, retry.content
    again = api.post("/api/v1/purchases/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-dead")
    assert (again.status_code, again.content) == (201, retry.content)
    assert Entry.objects.filter(account__member__member_number=enrolled, kind="earn").count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("_now")
def test_a_claim_within_its_lease_is_idempotency_in_progress_once_the_wait_is_over(api, enrolled, monkeypatch):
    monkeypatch.setattr(idempotency, "WAIT", 0.2)
    IdempotencyRecord.objects.create(
        scope=f"partner:{api.partner.pk}",
        key="k-busy",
        endpoint="/api/v1/purchases/",
        request_hash=request_hash(purchase_body(enrolled)),
        state=IdempotencyRecord.RUNNING,
        created_at=T - dt.timedelta(seconds=5),
    )
    busy = api.post("/api/v1/purchases/", purchase_body(enrolled), format="json", HTTP_IDEMPOTENCY_KEY="k-busy")
    problem(busy, 409, "idempotency_in_progress")
    assert not Purchase.objects.exists()


def _post(raw_key, path, body, **headers):
    return Client(raise_request_exception=False).post(
        path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {raw_key}", **headers
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_whose_connection_is_killed_mid_work_leaves_the_key_free_for_its_retry(monkeypatch):
    _partner, _, raw = partner_key_create(partner_name="Dies", scopes=["read", "write"])
    member_number = _post(raw, "/api/v1/members/", {"email": "dies@example.com"}).json()["member_number"]
    body = purchase_body(member_number, occurred_at=just_now())
    working, killed, backend = threading.Event(), threading.Event(), []
    real_purchase_record = activity.purchase_record

    def dies_midway(**kwargs):
        if not backend:  # the first request only: it stops after claiming the key, until killed
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend.append(cursor.fetchone()[0])
            working.set()
            assert killed.wait(30)
        return real_purchase_record(**kwargs)

    monkeypatch.setattr(activity, "purchase_record", dies_midway)

    def first_request():
        try:
            _post(raw, "/api/v1/purchases/", body, HTTP_IDEMPOTENCY_KEY="k-kill")
        finally:
            connections.close_all()

    first = threading.Thread(target=first_request)
    first.start()
    assert working.wait(30)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend[0]])
    killed.set()
    first.join(30)

    # the failed request gave its claim up (on a new connection): no lease to wait for
    retries = run_together(3, lambda i: _post(raw, "/api/v1/purchases/", body, HTTP_IDEMPOTENCY_KEY="k-kill"))
    assert sorted(r.status_code for r in retries) == [201, 201, 201], [r.content for r in retries]
    assert len({r.content for r in retries}) == 1
    assert sum("Idempotent-Replayed" not in r for r in retries) == 1  # one ran, two waited and replayed it
    assert Purchase.objects.filter(partner=_partner).count() == 1
    assert Entry.objects.filter(account__member__member_number=member_number, kind="earn").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_whose_database_connection_is_terminated_frees_its_key_for_the_retry():
    """The server ends the connection mid-request (failover, pg_terminate_backend): the claim is
    given up on a new connection, so the partner's retry runs at once instead of waiting for the
    lease with ``idempotency_in_progress``."""
    from django.db import OperationalError

    def killed() -> tuple[int, bytes]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return 201, b"{}"

    with pytest.raises(OperationalError):
        idempotency.idempotent(scope="partner:1", key="k", endpoint="/x", body={}, run=killed)
    assert not IdempotencyRecord.objects.exists()
    answer = idempotency.idempotent(scope="partner:1", key="k", endpoint="/x", body={}, run=lambda: (201, b"{}"))
    assert (answer.status, answer.replayed) == (201, False)
