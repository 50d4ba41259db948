"""Hostile input: every refusal is a 4xx application/problem+json with a stable code, never a 500,
and nothing is written."""

import datetime as dt
import json

import pytest

from loyalty.core import clock
from loyalty.ledger.models import Purchase, Return
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import WebhookEndpoint
from members.models import Consent, Member
from tests.api.conftest import purchase_body
from tests.api.test_api import problem

pytestmark = pytest.mark.django_db
T = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def _raw(api, path, content: bytes | str, content_type="application/json"):
    return api.generic("POST", path, content, content_type=content_type)


# Bodies


def test_deeply_nested_json_is_400_json_too_deep(api):
    nested = "[" * 100_000 + "]" * 100_000
    problem(_raw(api, "/api/v1/purchases/", nested), 400, "json_too_deep")


def test_nesting_within_the_limit_is_an_ordinary_validation_error(api):
    body = {"member_number": {"a": {"b": {"c": 1}}}}
    problem(api.post("/api/v1/purchases/", body, format="json"), 400, "invalid_request")


def test_brackets_inside_strings_do_not_count_as_nesting(api, enrolled):
    body = purchase_body(enrolled, store="[" * 50)
    body["store"] = "[{" * 30
    response = api.post("/api/v1/purchases/", body, format="json")
    assert response.status_code == 400  # store is too long: a field error, not json_too_deep
    assert response.json()["code"] == "invalid_request"


def test_malformed_json_and_nan_are_400_malformed_request(api):
    problem(_raw(api, "/api/v1/purchases/", "{"), 400, "malformed_request")
    problem(_raw(api, "/api/v1/purchases/", '{"total": NaN}'), 400, "malformed_request")
    problem(_raw(api, "/api/v1/purchases/", b"\xff\xfe"), 400, "malformed_request")


def test_a_body_over_the_limit_is_413_problem_json(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"member_number": "1", "pad": "x" * 20_000})
    problem(_raw(api, "/api/v1/purchases/", body), 413, "request_too_large")
    assert not Purchase.objects.exists()


def test_the_parser_reads_no_more_than_the_limit_whatever_the_header_said(settings):
    """A stream longer than the limit (a Content-Length that lied) is cut by the parser: 413."""
    from io import BytesIO

    from loyalty.api.parsers import DepthLimitedJSONParser, RequestTooLarge

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    with pytest.raises(RequestTooLarge):
        DepthLimitedJSONParser().parse(BytesIO(b'{"a": "' + b"x" * 200 + b'"}'))


def test_unknown_api_url_is_404_problem_json(api):
    problem(api.get("/api/v1/nothing-here/"), 404, "not_found")
    problem(api.post("/api/v2/purchases/", {}, format="json"), 404, "not_found")


def test_an_unhandled_error_under_api_is_500_problem_json(api, enrolled, monkeypatch):
    from loyalty.activity import services as activity

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(activity, "purchase_record", broken)
    response = api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    problem(response, 500, "server_error")
    assert "boom" not in response.content.decode()


def test_an_error_page_django_makes_under_api_is_problem_json_with_its_status(api):
    """A host not allowed is refused by Django's middleware with an HTML 400: partners get a problem."""
    problem(api.get("/api/v1/members/?email=a@b.c", HTTP_HOST="evil.example"), 400, "bad_request")


def test_pages_outside_api_keep_their_html_errors(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and not response["Content-Type"].startswith("application/problem+json")


# Sizes


def test_more_than_1000_lines_is_refused(api, enrolled):
    line = {"sku": "A", "amount": "1.00"}
    body = purchase_body(enrolled, lines=[line] * 1001, total="1001.00")
    body = problem(api.post("/api/v1/purchases/", body, format="json"), 400, "invalid_request")
    assert "lines" in body["errors"]
    assert not Purchase.objects.exists()


def test_more_than_50_consents_is_refused_without_writing(api):
    consent = {"purpose": "marketing", "channel": "email", "granted": True}
    body = {"email": "many@example.com", "consents": [consent] * 51}
    body = problem(api.post("/api/v1/members/", body, format="json"), 400, "invalid_request")
    assert "consents" in body["errors"]
    assert not Member.objects.filter(email="many@example.com").exists() and not Consent.objects.exists()


def test_more_event_types_than_exist_is_refused(api):
    from loyalty.partners.models import WEBHOOK_EVENT_TYPES

    body = {"url": "https://hooks.example.com/x", "event_types": list(WEBHOOK_EVENT_TYPES) * 2}
    body = problem(api.post("/api/v1/webhooks/", body, format="json"), 400, "invalid_request")
    assert "event_types" in body["errors"]
    assert not WebhookEndpoint.objects.exists()


def test_an_amount_beyond_its_column_is_refused(api, enrolled):
    line = {"sku": "A", "amount": "100000000000.00"}  # 12 digits before the point
    body = purchase_body(enrolled, lines=[line], total="100000000000.00")
    body = problem(api.post("/api/v1/purchases/", body, format="json"), 400, "invalid_request")
    assert "lines" in body["errors"] and not Purchase.objects.exists()


def test_points_over_the_programs_cap_per_purchase_are_refused_whole(api, enrolled):
    program = program_default()
    assert program.max_points_per_transaction == 1_000_000  # the default cap
    line = {"sku": "A", "amount": "9999999999.99"}
    body = purchase_body(enrolled, lines=[line], total="9999999999.99")
    body = problem(api.post("/api/v1/purchases/", body, format="json"), 422, "points_cap_exceeded")
    assert body["max_points_per_transaction"] == 1_000_000
    assert not Purchase.objects.exists()


def test_the_cap_is_configurable_per_program_and_empty_means_none(api, enrolled):
    from loyalty.ledger.services import program_update

    program = program_default()
    program.max_points_per_transaction = 99
    program_update(program=program, actor=None, changed=["max_points_per_transaction"])
    problem(api.post("/api/v1/purchases/", purchase_body(enrolled), format="json"), 422, "points_cap_exceeded")
    program.max_points_per_transaction = None
    program_update(program=program, actor=None, changed=["max_points_per_transaction"])
    assert api.post("/api/v1/purchases/", purchase_body(enrolled), format="json").json()["points_earned"] == 100


# Dates


def test_occurred_at_without_time_zone_is_refused(api, enrolled):
    body = purchase_body(enrolled, occurred_at="2030-01-10T10:00:00")
    problem(api.post("/api/v1/purchases/", body, format="json"), 422, "occurred_at_without_time_zone")
    body = purchase_body(enrolled, occurred_at="2030-01-10")
    problem(api.post("/api/v1/purchases/", body, format="json"), 422, "occurred_at_without_time_zone")
    assert not Purchase.objects.exists()


def test_year_one_earns_nothing_it_is_too_old(api, enrolled):
    body = purchase_body(enrolled, occurred_at="0001-01-01T00:00:00Z")
    problem(api.post("/api/v1/purchases/", body, format="json"), 422, "occurred_at_too_old")
    body = purchase_body(enrolled, occurred_at="0001-01-01T00:00:00+14:00")
    assert api.post("/api/v1/purchases/", body, format="json").status_code in (400, 422)
    assert not Purchase.objects.exists()


def test_occurred_at_older_than_the_max_age_is_refused(api, enrolled, settings):
    settings.PURCHASE_MAX_AGE_DAYS = 30
    old = (T - dt.timedelta(days=31)).isoformat()
    problem(
        api.post("/api/v1/purchases/", purchase_body(enrolled, occurred_at=old), format="json"),
        422,
        "occurred_at_too_old",
    )
    recent = (T - dt.timedelta(days=29)).isoformat()
    assert api.post("/api/v1/purchases/", purchase_body(enrolled, occurred_at=recent), format="json").status_code == 201


def test_occurred_at_beyond_the_clock_skew_is_refused_within_it_accepted(api, enrolled, settings):
    settings.PURCHASE_MAX_CLOCK_SKEW_SECONDS = 300
    ahead = (T + dt.timedelta(seconds=301)).isoformat()
    problem(
        api.post("/api/v1/purchases/", purchase_body(enrolled, occurred_at=ahead), format="json"),
        422,
        "occurred_at_in_future",
    )
    slightly = (T + dt.timedelta(seconds=299)).isoformat()
    response = api.post("/api/v1/purchases/", purchase_body(enrolled, occurred_at=slightly), format="json")
    assert response.status_code == 201


def test_occurred_at_before_the_program_started_is_refused(api, enrolled):
    program = program_default()
    before = (program.created_at - dt.timedelta(seconds=1)).isoformat()
    clock.set_now(program.created_at + dt.timedelta(days=1))
    problem(
        api.post("/api/v1/purchases/", purchase_body(enrolled, occurred_at=before), format="json"),
        422,
        "occurred_at_before_program_start",
    )
    assert not Purchase.objects.exists()


def test_event_and_return_times_follow_the_same_window(api, enrolled):
    problem(
        api.post(
            "/api/v1/events/",
            {"member_number": enrolled, "event_type": "review_written", "occurred_at": "0001-01-01T00:00:00Z"},
            format="json",
        ),
        422,
        "occurred_at_too_old",
    )
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    body = {"purchase_external_id": "till-1", "external_id": "r", "amount": "1.00", "occurred_at": "2030-01-10T10:00"}
    problem(api.post("/api/v1/returns/", body, format="json"), 422, "occurred_at_without_time_zone")


# Consistency


def test_total_must_be_the_lines_less_discounts(api, enrolled):
    body = problem(
        api.post("/api/v1/purchases/", purchase_body(enrolled, amount="1000000.00"), format="json"),
        422,
        "total_mismatch",
    )
    assert body["errors"] == {"total": ["Expected 100.00."]}
    lines = [{"sku": "A", "amount": "50.00", "discount": "5.00"}, {"sku": "B", "amount": "50.00"}]
    good = purchase_body(enrolled, lines=lines, total="90.00", discount="5.00")
    assert api.post("/api/v1/purchases/", good, format="json").status_code == 201
    assert Purchase.objects.count() == 1


def test_tax_cannot_exceed_the_total(api, enrolled):
    body = purchase_body(enrolled, tax="100.01")
    problem(api.post("/api/v1/purchases/", body, format="json"), 422, "tax_exceeds_total")
    assert not Purchase.objects.exists()


def test_return_lines_are_capped_too(api, enrolled):
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")
    body = {"purchase_external_id": "till-1", "external_id": "r", "lines": [{"sku": "A", "quantity": "0.001"}] * 1001}
    problem(api.post("/api/v1/returns/", body, format="json"), 400, "invalid_request")
    assert not Return.objects.exists()
