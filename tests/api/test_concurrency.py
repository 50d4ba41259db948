import json

import pytest
from django.test import Client

from loyalty.ledger.models import Entry, Purchase
from loyalty.partners.services import partner_key_create
from tests.api.conftest import just_now, purchase_body
from tests.concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _post(raw_key, path, body, **headers):
    return Client().post(
        path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {raw_key}", **headers
    )


@pytest.mark.parametrize("run", range(3))
def test_same_purchase_from_20_connections_records_one_purchase_and_one_credit(run):
    _partner, _, raw = partner_key_create(partner_name=f"Busy {run}", scopes=["read", "write"])
    member_number = _post(raw, "/api/v1/members/", {"email": f"busy{run}@example.com"}).json()["member_number"]
    body = purchase_body(member_number, occurred_at=just_now())
    responses = run_together(20, lambda i: _post(raw, "/api/v1/purchases/", body))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 19 + [201], codes
    assert len({json.dumps(r.json(), sort_keys=True) for r in responses}) == 1
    assert Purchase.objects.filter(external_id="till-1", partner=_partner).count() == 1
    assert Entry.objects.filter(account__member__member_number=member_number, kind="earn").count() == 1


def test_one_idempotency_key_from_20_connections_runs_once():
    _partner, _, raw = partner_key_create(partner_name="Idem", scopes=["read", "write"])
    member_number = _post(raw, "/api/v1/members/", {"email": "idem@example.com"}).json()["member_number"]
    body = {**purchase_body(member_number, occurred_at=just_now()), "external_id": "idem-1"}
    responses = run_together(20, lambda i: _post(raw, "/api/v1/purchases/", body, HTTP_IDEMPOTENCY_KEY="same-key"))
    assert [r.status_code for r in responses] == [201] * 20  # one ran; the others waited for it and replay it
    assert len({r.content for r in responses}) == 1
    assert sum("Idempotent-Replayed" not in r for r in responses) == 1
    assert Entry.objects.filter(account__member__member_number=member_number, kind="earn").count() == 1
