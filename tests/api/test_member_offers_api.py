"""GET /api/v1/members/{member_number}/offers/: the member's ranking from ``offers_for_member``,
only for a partner that may read the member, only what applies at that partner."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.core import clock
from members.models import ConsentPurpose, Member
from members.services import consent_set
from offers.selectors.ranking import offers_for_member
from tests.api.conftest import purchase_body
from tests.offers.conftest import offer_make, reward_make

pytestmark = pytest.mark.django_db

T = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)
UNKNOWN_NUMBER = "000000000000"


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def url(number: str, query: str = "") -> str:
    return f"/api/v1/members/{number}/offers/{query}"


def test_the_enrolling_partner_gets_the_ranked_items_with_reasons(api, enrolled):
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")  # 100 points
    big = offer_make(name="500 bonus points", benefit_points=500, description="On any purchase")
    small = offer_make(name="10 bonus points", benefit_points=10)
    reward = reward_make(name="Coffee", points_cost=120, value=3)
    response = api.get(url(enrolled))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["member_number"] == enrolled
    assert [(i["kind"], i["id"]) for i in body["items"]] == [
        ("offer", big.pk),
        ("reward", reward.pk),
        ("offer", small.pk),
    ]
    first = body["items"][0]
    assert first["rank"] == 1 and first["title"] == "500 bonus points" and first["gives"] == "500 bonus points"
    assert first["description"] == "On any purchase" and first["points_cost"] is None
    assert first["reasons"][0].startswith("Ranked without your purchase history"), "no consent on record"
    coffee = body["items"][1]
    assert coffee["points_cost"] == 120 and coffee["points_missing"] == 20
    member = Member.objects.get(member_number=enrolled)
    same = offers_for_member(member=member, channel="portal", partner=api.partner)
    assert [i["id"] for i in body["items"]] == [i.id for i in same], "every channel: the same order"


def test_limit_cuts_the_list_and_a_bad_limit_is_a_400_problem(api, enrolled):
    for i in range(3):
        offer_make(name=f"O{i}", benefit_points=10 * (i + 1))
    assert len(api.get(url(enrolled, "?limit=2")).json()["items"]) == 2
    bad = api.get(url(enrolled, "?limit=0"))
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/problem+json")
    assert bad.json()["code"] == "invalid_request"


def test_another_partner_gets_the_same_404_as_for_an_unknown_member(other_api, enrolled):
    offer_make()
    hidden = other_api.get(url(enrolled))
    unknown = other_api.get(url(UNKNOWN_NUMBER))
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.content == unknown.content and hidden.json()["code"] == "member_not_found"


def test_a_partner_sees_only_the_offers_that_apply_at_it(api, other_api, enrolled):
    member = Member.objects.get(member_number=enrolled)
    consent_set(member=member, purpose=ConsentPurpose.PARTNER_SHARING, granted=True, source="portal")
    everywhere = offer_make(name="Everywhere")
    at_acme = offer_make(name="At Acme only", partners=[api.partner], benefit_points=50)
    assert [i["id"] for i in api.get(url(enrolled)).json()["items"]] == [at_acme.pk, everywhere.pk]
    assert [i["id"] for i in other_api.get(url(enrolled)).json()["items"]] == [everywhere.pk]


def test_personalized_ranking_through_the_api_uses_history_with_consent(api, enrolled):
    member = Member.objects.get(member_number=enrolled)
    consent_set(member=member, purpose=ConsentPurpose.PERSONALIZATION, granted=True, source="portal")
    api.post("/api/v1/purchases/", purchase_body(enrolled), format="json")  # food 50, drinks 50
    offer_make(name="Bonus on tools", benefit_kind="bonus_multiplier", benefit_multiplier=3, scope_categories=["tools"])
    food = offer_make(
        name="Bonus on food", benefit_kind="bonus_multiplier", benefit_multiplier=3, scope_categories=["food"]
    )
    first = api.get(url(enrolled)).json()["items"][0]
    assert first["id"] == food.pk and "You buy a lot of food" in first["reasons"]


def test_the_endpoint_reads_a_bounded_number_of_statements(api, enrolled, django_assert_max_num_queries):
    for i in range(20):
        offer_make(name=f"O{i}", benefit_points=i)
    reward_make()
    api.get(url(enrolled))  # warm caches
    with django_assert_max_num_queries(11):
        assert len(api.get(url(enrolled)).json()["items"]) == 21
