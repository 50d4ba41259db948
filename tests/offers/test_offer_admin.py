"""Offers in the admin: created through the audited service with per-kind form errors, published
and paused by actions, the audience preview, per-offer figures, and what each role may do."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from loyalty.activity.services import enrollment_record
from loyalty.core.models import AuditEvent
from members.models import EnrollmentSource
from offers.models import Offer, OfferRedemption, OfferStatus
from segments.models import Segment, SegmentMembership
from tests.factories import UserFactory
from tests.offers.conftest import offer_make

pytestmark = pytest.mark.django_db


def role_user(role: str):
    user = UserFactory(username=f"{role.lower()}-user", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def marketing(client):
    user = role_user("Marketing")
    client.force_login(user)
    return user


def form(program, **fields):
    data = {
        "program": program.pk,
        "name": "Double points on dairy",
        "description": "",
        "priority": "0",
        "condition_kind": "always",
        "benefit_kind": "bonus_multiplier",
        "benefit_multiplier": "2",
        "coupon_valid_days": "30",
        "scope_categories": "dairy, cheese",
        "max_redemptions": "",
        "max_per_member": "",
        "points_budget": "5000",
    }
    data.update(fields)
    return data


def test_marketing_creates_a_draft_offer_through_the_audited_service(client, marketing, program):
    response = client.post(reverse("admin:offers_offer_add"), form(program))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    offer = Offer.objects.get()
    assert (offer.status, offer.scope_categories, offer.benefit_multiplier) == (
        OfferStatus.DRAFT,
        ["dairy", "cheese"],
        Decimal("2.00"),
    )
    assert offer.created_by == marketing
    assert AuditEvent.objects.filter(action="offer.created", target_id=str(offer.pk), actor=marketing).exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"benefit_multiplier": ""}, "benefit_multiplier"),
        ({"benefit_kind": "percent_coupon", "benefit_value": "150"}, "benefit_value"),
        ({"condition_kind": "min_spend"}, "condition_min_spend"),
        ({"condition_kind": "purchase_count", "condition_count": "3"}, "condition_window_days"),
        ({"condition_kind": "day_of_week"}, "condition_days_of_week"),
    ],
)
def test_fields_a_kind_needs_are_form_errors_and_nothing_is_saved(client, marketing, program, fields, field):
    response = client.post(reverse("admin:offers_offer_add"), form(program, **fields))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Offer.objects.exists()


def test_day_of_week_condition_is_picked_from_weekdays(client, marketing, program):
    response = client.post(
        reverse("admin:offers_offer_add"),
        form(program, condition_kind="day_of_week", condition_days_of_week=["6", "7"]),
    )
    assert response.status_code == 302
    assert Offer.objects.get().condition_days_of_week == [6, 7]


def test_publish_and_pause_actions_change_the_status_audited(client, marketing, program):
    offer = offer_make(status=OfferStatus.DRAFT)
    url = reverse("admin:offers_offer_changelist")
    client.post(url, {"action": "publish_offers", "_selected_action": [offer.pk]})
    assert Offer.objects.get(pk=offer.pk).status == OfferStatus.ACTIVE
    client.post(url, {"action": "pause_offers", "_selected_action": [offer.pk]})
    assert Offer.objects.get(pk=offer.pk).status == OfferStatus.PAUSED
    assert list(
        AuditEvent.objects.filter(target_id=str(offer.pk), action__in=["offer.published", "offer.paused"])
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["offer.published", "offer.paused"]


def test_an_impossible_status_change_is_a_warning_not_an_error(client, marketing, program):
    offer = offer_make(status=OfferStatus.ENDED)
    response = client.post(
        reverse("admin:offers_offer_changelist"),
        {"action": "resume_offers", "_selected_action": [offer.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "cannot become active" in response.content.decode()
    assert Offer.objects.get(pk=offer.pk).status == OfferStatus.ENDED


def test_change_page_previews_who_is_eligible_with_a_sample_and_shows_figures(client, marketing, program):
    vip = Segment.objects.create(
        name="VIP", kind="static", created_at=program.created_at, updated_at=program.created_at
    )
    members = [
        enrollment_record(source=EnrollmentSource.STAFF, email=f"p{i}@example.com", first_name=f"P{i}")
        for i in range(3)
    ]
    for m in members[:2]:
        SegmentMembership.objects.create(segment=vip, member=m, entered_at=program.created_at)
    offer = offer_make(segments_include=[vip], points_budget=1000)
    Offer.objects.filter(pk=offer.pk).update(points_issued=250, redemptions_count=2)
    for m, points in ((members[0], 100), (members[1], 150)):
        OfferRedemption.objects.create(offer=offer, member=m, points=points, created_at=program.created_at)
    html = client.get(reverse("admin:offers_offer_change", args=[offer.pk])).content.decode()
    assert "2 member(s)" in html
    assert members[0].member_number in html and members[2].member_number not in html
    assert "750 of 1000" in html
    listing = client.get(reverse("admin:offers_offer_changelist"))
    row = listing.context["cl"].result_list.get(pk=offer.pk)
    assert (row.used, row.given) == (2, 250)


def test_staff_change_form_does_not_overwrite_the_counters(client, marketing, program):
    offer = offer_make(points_budget=1000)
    Offer.objects.filter(pk=offer.pk).update(points_issued=250, redemptions_count=25)
    data = form(program, name="Renamed", benefit_kind="bonus_fixed", benefit_points="10", benefit_multiplier="")
    response = client.post(reverse("admin:offers_offer_change", args=[offer.pk]), data)
    assert response.status_code == 302
    stored = Offer.objects.get(pk=offer.pk)
    assert (stored.name, stored.points_issued, stored.redemptions_count) == ("Renamed", 250, 25)


@pytest.mark.parametrize("role", ["Support", "Analyst"])
def test_support_and_analysts_see_offers_but_cannot_change_them(client, program, role):
    client.force_login(role_user(role))
    offer = offer_make()
    assert client.get(reverse("admin:offers_offer_changelist")).status_code == 200
    assert client.get(reverse("admin:offers_offer_change", args=[offer.pk])).status_code == 200
    response = client.post(reverse("admin:offers_offer_change", args=[offer.pk]), form(program, name="Hacked"))
    assert response.status_code == 403
    assert Offer.objects.get(pk=offer.pk).name == "Test offer"
    assert client.get(reverse("admin:offers_offerredemption_changelist")).status_code == 200
    assert client.get(reverse("admin:offers_offeractivation_changelist")).status_code == 200
