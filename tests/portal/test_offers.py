"""The portal's offers: "For you" on the home page and the Offers page list the ranking's items
(``offers_for_member`` for the portal) with the reasons in plain words, record what was shown as
impressions, and activate an offer with one tap (POST), once however often it is tapped. A
refusal is a message and changes nothing; an offer of another program or an unknown id is 404."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from loyalty.core import clock
from offers.models import OfferActivation, OfferImpression, OfferStatus
from offers.selectors.ranking import offers_for_member
from tests.offers.conftest import offer_make, reward_make
from tests.portal.conftest import logged_in

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_home_shows_the_top_three_offers_for_you_with_their_reasons_and_no_rewards(program, member, member_client):
    for n in range(5):
        offer_make(name=f"Offer {n}", priority=n, benefit_points=10 * (n + 1))
    reward_make(name="Coffee", points_cost=10)  # in its own panel, "Rewards within reach"
    ranked = [i for i in offers_for_member(member=member, channel="portal") if i.kind == "offer"][:3]

    page = text(member_client.get("/home/"))

    for_you = page.split("For you")[1].split("All offers")[0]
    for item in ranked:
        assert item.title in for_you and item.reasons[0] in for_you
    assert sum(f"Offer {n}" in for_you for n in range(5)) == 3 and "Coffee" not in for_you


def test_the_offers_page_lists_every_ranked_item(program, member, member_client):
    for n in range(5):
        offer_make(name=f"Offer {n}")
    reward_make(name="Coffee", points_cost=100)

    page = text(member_client.get("/offers/"))

    assert all(f"Offer {n}" in page for n in range(5)) and "Coffee" in page
    assert "100 more points needed" in page  # the member has no points yet


def test_showing_offers_records_one_impression_per_item_and_page_view(program, member, member_client):
    offer = offer_make(name="Shown")

    member_client.get("/offers/")
    member_client.get("/home/")

    seen = OfferImpression.objects.get(member=member, offer=offer, channel="portal")
    assert seen.times == 2


def test_an_offer_that_needs_activation_is_activated_with_one_tap(program, member, member_client):
    offer = offer_make(name="Clip me", requires_activation=True)
    assert "Activate" in text(member_client.get("/home/"))

    response = member_client.post(f"/offers/{offer.pk}/activate/", {"back": "home"}, follow=True)

    activation = OfferActivation.objects.get(member=member, offer=offer)
    assert activation.channel == "portal"
    assert response.redirect_chain[-1][0] == "/home/"
    page = text(response)
    assert "Clip me is active" in page and "Active on your card" in page


def test_tapping_activate_twice_activates_once(program, member, member_client):
    offer = offer_make(requires_activation=True)

    member_client.post(f"/offers/{offer.pk}/activate/")
    member_client.post(f"/offers/{offer.pk}/activate/")

    assert OfferActivation.objects.filter(member=member, offer=offer).count() == 1


def test_activating_an_offer_that_ended_is_a_message_and_changes_nothing(program, member, member_client):
    offer = offer_make(requires_activation=True, valid_until=clock.now() - dt.timedelta(days=1))

    response = member_client.post(f"/offers/{offer.pk}/activate/", follow=True)

    assert "This offer is not running" in text(response) or "This offer has ended" in text(response)
    assert not OfferActivation.objects.exists()


def test_activating_an_offer_for_another_tier_is_refused(program, member, member_client):
    offer = offer_make(requires_activation=True, tiers=[program.tiers.order_by("-rank").first()])

    response = member_client.post(f"/offers/{offer.pk}/activate/", follow=True)

    assert "This offer is for other tiers" in text(response)
    assert not OfferActivation.objects.exists()


def test_an_unknown_or_draft_offer_is_404_or_refused(program, member_client):
    draft = offer_make(status=OfferStatus.DRAFT, requires_activation=True)

    assert member_client.post("/offers/999999/activate/").status_code == 404
    assert "not running" in text(member_client.post(f"/offers/{draft.pk}/activate/", follow=True))
    assert not OfferActivation.objects.exists()


def test_activate_is_post_only(program, member_client):
    offer = offer_make(requires_activation=True)

    assert member_client.get(f"/offers/{offer.pk}/activate/").status_code == 405
    assert not OfferActivation.objects.exists()


def test_one_members_activation_is_not_another_members(program, member, other_member):
    offer = offer_make(name="Clip me", requires_activation=True)
    logged_in(member).post(f"/offers/{offer.pk}/activate/")

    page = text(logged_in(other_member).get("/offers/"))

    assert "Active on your card" not in page and "Activate" in page
    assert OfferActivation.objects.filter(member=other_member).count() == 0
