"""Exactly once at the edges: 20 connections send the same redemption, return or cancel at the
same moment; there is one effect, one outbox event and exactly one 201, the others 200 with
the same body."""

import json

import pytest
from django.test import Client

from loyalty.ledger.models import LedgerTransaction, Redemption, Return, TransactionKind
from loyalty.partners.models import OutboxEvent
from loyalty.partners.services import partner_key_create
from tests.api.conftest import just_now, purchase_body
from tests.concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 20


def _post(raw_key, path, body, **headers):
    return Client().post(
        path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {raw_key}", **headers
    )


@pytest.fixture
def shop():
    """A partner, a member enrolled with it and a purchase of 100 points (spendable at once)."""
    partner, _, raw = partner_key_create(partner_name="Busy shop", scopes=["read", "write"])
    member_number = _post(raw, "/api/v1/members/", {"email": "once@example.com"}).json()["member_number"]
    bought = _post(raw, "/api/v1/purchases/", purchase_body(member_number, occurred_at=just_now()))
    assert bought.status_code == 201, bought.content
    return partner, raw, member_number


def _one_201_and_same_bodies(responses) -> dict:
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (THREADS - 1) + [201], codes
    bodies = {r.content for r in responses}
    assert len(bodies) == 1, bodies
    return responses[0].json()


def test_same_redemption_from_20_connections_burns_once_with_one_event_and_one_201(shop):
    partner, raw, member_number = shop
    body = {"member_number": member_number, "points": 30, "external_id": "burn-1"}
    responses = run_together(THREADS, lambda i: _post(raw, "/api/v1/redemptions/", body))
    answer = _one_201_and_same_bodies(responses)
    assert Redemption.objects.filter(partner=partner, external_id="burn-1").count() == 1
    assert LedgerTransaction.objects.filter(kind=TransactionKind.REDEEM, redemption_id=answer["id"]).count() == 1
    assert OutboxEvent.objects.filter(event_type="points.redeemed").count() == 1


def test_same_return_from_20_connections_claws_back_once_with_one_event_and_one_201(shop):
    partner, raw, _member_number = shop
    body = {"purchase_external_id": "till-1", "external_id": "ret-1", "amount": "50.00"}
    responses = run_together(THREADS, lambda i: _post(raw, "/api/v1/returns/", body))
    answer = _one_201_and_same_bodies(responses)
    assert answer["points_reversed"] == 50
    assert Return.objects.filter(partner=partner, external_id="ret-1").count() == 1
    assert LedgerTransaction.objects.filter(kind=TransactionKind.REVERSE).count() == 1
    assert OutboxEvent.objects.filter(event_type="points.reversed").count() == 1


def test_same_cancel_from_20_connections_refunds_once_with_one_event_and_one_201(shop):
    _partner, raw, member_number = shop
    burn = _post(raw, "/api/v1/redemptions/", {"member_number": member_number, "points": 30, "external_id": "b"})
    rid = burn.json()["id"]
    responses = run_together(THREADS, lambda i: _post(raw, f"/api/v1/redemptions/{rid}/cancel/", {}))
    answer = _one_201_and_same_bodies(responses)
    assert answer["status"] == "cancelled"
    assert LedgerTransaction.objects.filter(kind=TransactionKind.REFUND, redemption_id=rid).count() == 1
    assert OutboxEvent.objects.filter(event_type="points.reversed").count() == 1
    assert _post(raw, f"/api/v1/redemptions/{rid}/cancel/", {}).status_code == 200


def test_same_event_from_20_connections_awards_once_with_one_event_and_one_201(shop):
    from loyalty.activity.models import EventRule, EventType, MemberEvent
    from loyalty.ledger.selectors import program_default

    _partner, raw, member_number = shop
    EventRule.objects.create(
        program=program_default(), event_type=EventType.objects.get(code="review_written"), points=15
    )
    body = {"member_number": member_number, "event_type": "review_written", "external_id": "ev-1"}
    responses = run_together(THREADS, lambda i: _post(raw, "/api/v1/events/", body))
    answer = _one_201_and_same_bodies(responses)
    assert answer["points"] == 15
    assert MemberEvent.objects.filter(external_id="ev-1").count() == 1
    assert OutboxEvent.objects.filter(event_type="points.earned", payload__event_type="review_written").count() == 1
