"""What the OpenAPI schema says matches what the API does (found by the full schemathesis run of
`make verify`, tests/verify/test_09_schemathesis.py): errors are documented as
application/problem+json, request text is non-blank, decimals need a digit, and a query
parameter the operation does not document, or one given twice, is refused."""

import re

import pytest

from tests.api.test_api import problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def spec(client):
    return client.get("/api/schema/?format=json").json()


def test_error_answers_are_documented_as_problem_json(spec):
    for methods in spec["paths"].values():
        for operation in methods.values():
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (operation["operationId"], code)


def test_every_operation_taking_an_idempotency_key_documents_its_422(spec):
    for methods in spec["paths"].values():
        for operation in methods.values():
            if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])):
                assert "422" in operation["responses"], operation["operationId"]


def test_request_schemas_refuse_what_the_serializers_refuse(spec):
    components = spec["components"]["schemas"]
    amount = components["ReturnInRequest"]["properties"]["amount"]["pattern"]
    basket = components["CouponInRequest"]["properties"]["basket_total"]["pattern"]
    code = components["CouponInRequest"]["properties"]["code"]
    assert [bool(re.match(amount, v)) for v in ("", "0", "0.00", "-1", "0.01", "12.5")] == [False] * 4 + [True] * 2
    assert [bool(re.match(basket, v)) for v in ("", "-1", "0", ".5")] == [False, False, True, True]
    assert code["minLength"] == 1 and not re.match(code["pattern"], " ") and not re.match(code["pattern"], "a\x00")
    assert components["PurchaseInRequest"]["properties"]["lines"]["minItems"] == 1
    assert components["ReturnInRequest"]["oneOf"] == [{"required": ["lines"]}, {"required": ["amount"]}]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/members/?email=a@b.c&emial=x",
        "/api/v1/members/?email=a@b.c&email=b@c.d",
        "/api/v1/members/?email=a%00b",
    ],
)
def test_an_unknown_or_repeated_query_parameter_or_a_nul_is_400(api, url):
    problem(api.get(url), 400, "invalid_request")


def test_entries_and_offers_refuse_an_unknown_filter(api, enrolled):
    problem(api.get(f"/api/v1/members/{enrolled}/entries/?kinds=earn"), 400, "invalid_request")
    problem(api.get(f"/api/v1/members/{enrolled}/offers/?limt=3"), 400, "invalid_request")
    assert api.get(f"/api/v1/members/{enrolled}/entries/?kind=earn&page_size=5").status_code == 200


def test_a_webhook_url_that_is_no_url_is_422_invalid_webhook_url(api):
    response = api.post("/api/v1/webhooks/", {"url": "not a url", "event_types": ["points.earned"]}, format="json")
    problem(response, 422, "invalid_webhook_url")


def test_a_coupon_code_with_a_nul_is_an_unknown_coupon(api):
    problem(api.post("/api/v1/coupons/a%00b/cancel/", {}, format="json"), 404, "coupon_not_found")
