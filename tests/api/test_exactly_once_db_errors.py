"""Database refusals map to the right problem, and a dropped connection costs no 500."""

import datetime as dt
import io
import sys

import psycopg
import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import IntegrityError, connection, transaction

from loyalty.core import clock
from loyalty.core.constraints import constraint_name, is_check_violation, is_external_id_repeat
from loyalty.ledger.models import Purchase, Return
from loyalty.partners.services import partner_key_create
from tests.api.conftest import purchase_body
from tests.api.test_api import problem

T = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def _now():
    clock.set_now(T)


@pytest.fixture
def cheap_line_bought(api, enrolled, _now):
    """A purchase whose line C costs 0.01 a unit: returning 0.001 of it is worth 0.00."""
    lines = [{"sku": "C", "quantity": "100", "unit_price": "0.01", "amount": "1.00"}]
    response = api.post("/api/v1/purchases/", purchase_body(enrolled, lines=lines, total="1.00"), format="json")
    assert response.status_code == 201, response.content
    return enrolled


@pytest.mark.django_db
def test_a_return_rounding_to_zero_is_422_with_its_own_code_not_duplicate_external_id(api, cheap_line_bought):
    body = {"purchase_external_id": "till-1", "external_id": "r-0", "lines": [{"sku": "C", "quantity": "0.001"}]}
    answer = problem(api.post("/api/v1/returns/", body, format="json"), 422, "return_amount_rounds_to_zero")
    assert answer["constraint"] == "return_amount_positive"
    assert not Return.objects.exists()
    assert Purchase.objects.get().lines.get().returned_quantity == 0  # rolled back with it


@pytest.mark.django_db
def test_the_same_return_external_id_for_another_content_is_still_duplicate_external_id(api, cheap_line_bought):
    first = {"purchase_external_id": "till-1", "external_id": "r-1", "amount": "0.50"}
    assert api.post("/api/v1/returns/", first, format="json").status_code == 201
    problem(api.post("/api/v1/returns/", {**first, "amount": "0.40"}, format="json"), 409, "duplicate_external_id")


def _violation(make) -> IntegrityError:
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        make()
    return caught.value


@pytest.mark.django_db
def test_constraints_are_told_apart_by_name_on_both_databases(api, cheap_line_bought):
    purchase = Purchase.objects.get()
    Return.objects.create(
        purchase=purchase, partner=api.partner, external_id="x", amount=1, occurred_at=T, created_at=T
    )
    repeat = _violation(
        lambda: Return.objects.create(
            purchase=purchase, partner=api.partner, external_id="x", amount=1, occurred_at=T, created_at=T
        )
    )
    assert constraint_name(repeat) == "return_external_id_per_partner"
    assert is_external_id_repeat(repeat) and not is_check_violation(repeat)
    zero = _violation(
        lambda: Return.objects.create(
            purchase=purchase, partner=api.partner, external_id="y", amount=0, occurred_at=T, created_at=T
        )
    )
    assert constraint_name(zero) == "return_amount_positive"
    assert is_check_violation(zero) and not is_external_id_repeat(zero)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_numeric_overflow_is_422_value_out_of_range(api, enrolled, monkeypatch, _now):
    from loyalty.activity import services as activity

    def overflowing(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT CAST(%s AS numeric(14, 2))", [10**20])

    monkeypatch.setattr(activity, "purchase_record", overflowing)
    problem(api.post("/api/v1/purchases/", purchase_body(enrolled), format="json"), 422, "value_out_of_range")


@pytest.mark.django_db
def test_another_unique_constraint_is_a_plain_conflict(api, enrolled, monkeypatch, _now):
    from loyalty.activity import services as activity
    from loyalty.partners.models import PartnerMember

    def twice(**kwargs):
        link = PartnerMember.objects.get(partner=api.partner)
        with transaction.atomic():
            PartnerMember.objects.create(partner=link.partner, member=link.member, linked_at=T)

    monkeypatch.setattr(activity, "purchase_record", twice)
    answer = problem(api.post("/api/v1/purchases/", purchase_body(enrolled), format="json"), 409, "conflict")
    assert answer["code"] != "duplicate_external_id"


def _wsgi_get(path: str, query: str, key: str) -> int:
    """One request through Django's WSGI handler, as gunicorn makes it: request_started (which
    checks persistent connections) and request_finished fire as in production (the test client
    leaves the connection check out)."""
    status = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_AUTHORIZATION": f"Api-Key {key}",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
    }
    response = WSGIHandler()(environ, lambda line, headers: status.append(int(line.split()[0])))
    try:
        b"".join(response)
    finally:
        response.close()
    return status[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("health_checks", [True, False])
def test_a_backend_killed_between_requests_costs_no_500(health_checks):
    """Persistent connections (CONN_MAX_AGE) with CONN_HEALTH_CHECKS on (the default): the
    connection a request left open is killed; the next request reconnects instead of failing.
    Off, the same sequence is a 500 (the test shows it can tell)."""
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
    _partner, _, key = partner_key_create(partner_name="Killed", scopes=["read"])
    saved = {name: connection.settings_dict[name] for name in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}
    connection.settings_dict.update(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=health_checks)
    connection.close()  # the next connection is made with these settings
    try:
        assert _wsgi_get("/api/v1/members/", "email=nobody@example.com", key) == 200
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            kept = cursor.fetchone()[0]
        params = connection.get_connection_params()
        with psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port")}) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", [kept])
        second = _wsgi_get("/api/v1/members/", "email=nobody@example.com", key)
        assert second == (200 if health_checks else 500)
    finally:
        connection.settings_dict.update(saved)
        connection.close()
