"""Staff "why" screen of the ranking (offers.admin.ranking): Marketing, Support and Analyst open a
member and see each item's score, factor points and reasons, and the eligibility code of what the
member may not use; a staff user without a role may not; the member's page links to it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from loyalty.core import clock
from offers.models import Offer
from offers.services.ranking import member_offer_ranks_compute
from tests.core.test_permissions import staff
from tests.factories import MemberFactory
from tests.offers.conftest import offer_make, reward_make

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


@pytest.fixture
def member(program):
    clock.set_now(NOW)
    offer_make(name="Big bonus", benefit_points=500)
    limited = offer_make(name="Used up", max_per_member=0)
    Offer.objects.filter(pk=limited.pk).update(max_per_member=0)
    reward_make(name="Coffee", points_cost=100)
    return MemberFactory()


def why(member) -> str:
    return f"/admin/offers/memberofferrank/member/{member.pk}/why/"


@pytest.mark.parametrize("role", ["Marketing", "Support", "Analyst"])
def test_each_staff_role_sees_why_each_offer_ranks_where_it_does(role, member):
    member_offer_ranks_compute()
    client = Client()
    client.force_login(staff(role))
    page = client.get(why(member))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Big bonus" in text and "Worth about 5.00 USD to you" in text
    assert "Ranked without your purchase history" in text, "no consent: the reasons say so"
    assert "offer_member_limit_reached" in text, "what the member may not use, with its code"
    assert "The batch has not ranked this member yet" not in text, "the stored batch rows are shown"


def test_staff_without_a_role_may_not_open_it(member):
    client = Client()
    client.force_login(staff("no role"))
    assert client.get(why(member)).status_code == 403


@pytest.mark.parametrize("role", ["Support", "Analyst"])
def test_the_member_page_links_to_the_ranking(role, member):
    client = Client()
    client.force_login(staff(role))
    page = client.get(f"/admin/members/member/{member.pk}/change/")
    assert page.status_code == 200
    assert why(member) in page.content.decode()


def test_the_stored_ranks_list_links_each_row_to_the_why_screen(member):
    member_offer_ranks_compute()
    client = Client()
    client.force_login(staff("Analyst"))
    page = client.get("/admin/offers/memberofferrank/", {"q": member.member_number})
    assert page.status_code == 200 and why(member) in page.content.decode()
