"""Property-based run of schemathesis against our own OpenAPI schema: no request, however
malformed, gets a 5xx, and every documented response matches the schema."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.conftest import wsgi_partner_header

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def auth_header(db):
    with wsgi_partner_header() as header:
        yield header


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx_and_matches_its_schema(case, auth_header):
    case.call_and_validate(
        headers={"Authorization": auth_header}, checks=[not_a_server_error, response_schema_conformance]
    )
