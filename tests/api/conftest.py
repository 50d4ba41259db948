import contextlib
from collections.abc import Iterator

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.test import APIClient

from loyalty.partners.services import partner_key_create


def key_client(name: str, scopes=("read", "write")) -> APIClient:
    _partner, _created, raw = partner_key_create(partner_name=name, scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    client.partner = _partner
    return client


@pytest.fixture
def api(db):
    return key_client("Acme")


@pytest.fixture
def other_api(db):
    return key_client("Rival")


@pytest.fixture
def enrolled(api):
    response = api.post("/api/v1/members/", {"email": "ann@example.com", "first_name": "Ann"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["member_number"]


def just_now() -> str:
    """A purchase time the API accepts now (within its window, after the program the test made
    started): now by the clock."""
    from loyalty.core import clock

    return clock.now().isoformat().replace("+00:00", "Z")


def purchase_body(member_number, external_id="till-1", amount="100.00", **extra):
    body = {
        "member_number": member_number,
        "external_id": external_id,
        "occurred_at": "2030-01-10T10:00:00Z",
        "currency": "USD",
        "total": amount,
        "tax": "0",
        "discount": "0",
        "store": "S1",
        "lines": [
            {"sku": "A", "category": "food", "quantity": "2", "unit_price": "25.00", "amount": "50.00"},
            {"sku": "B", "category": "drinks", "quantity": "1", "unit_price": "50.00", "amount": "50.00"},
        ],
    }
    body.update(extra)
    return body


@contextlib.contextmanager
def wsgi_partner_header() -> Iterator[str]:
    """The Authorization header of a partner with one enrolled member, for calls made straight to the
    WSGI app (schemathesis): inside the block the app does not close the test's database connection
    around each request, as Django's test client also does not (after its own calls here)."""
    from loyalty.core import clock

    clock.set_now(None)
    client = key_client("Fuzz Partner")
    response = client.post("/api/v1/members/", {"email": "fuzz@example.com"}, format="json")
    assert response.status_code == 201
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield client._credentials["HTTP_AUTHORIZATION"]
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
