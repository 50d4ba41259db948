"""Property-based run of schemathesis against our own OpenAPI schema: no request, however
malformed, gets a 5xx, and every documented response matches the schema."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from loyalty.core import clock
from tests.api.conftest import key_client

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def auth_header(db):
    clock.set_now(None)
    client = key_client("Fuzz Partner")
    response = client.post("/api/v1/members/", {"email": "fuzz@example.com"}, format="json")
    assert response.status_code == 201
    # Calls below go straight to the WSGI app: keep it from closing the test's database
    # connection around each request, as Django's test client does (after its own calls above).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield client._credentials["HTTP_AUTHORIZATION"]
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx_and_matches_its_schema(case, auth_header):
    case.call_and_validate(
        headers={"Authorization": auth_header}, checks=[not_a_server_error, response_schema_conformance]
    )
