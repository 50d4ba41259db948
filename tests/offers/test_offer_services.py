"""Offer services (offers.services.offers): members activating offers, staff saves and status
changes (audited), and that a staff save never undoes the counters purchases moved."""

from __future__ import annotations

import pytest

from loyalty.core import clock
from loyalty.core.errors import Conflict
from loyalty.core.models import AuditEvent
from offers.models import Offer, OfferActivation, OfferStatus
from offers.services.offers import offer_activate, offer_end, offer_pause, offer_publish, offer_resume, offer_save
from segments.models import Segment
from tests.factories import MemberFactory, StaffFactory
from tests.offers.conftest import offer_make

pytestmark = pytest.mark.django_db


def test_activating_twice_keeps_the_first_activation(program):
    member = MemberFactory()
    offer = offer_make(requires_activation=True)
    first, created = offer_activate(member=member, offer=offer, channel="portal")
    again, created_again = offer_activate(member=member, offer=offer, channel="api")
    assert (created, created_again) == (True, False)
    assert first.pk == again.pk and again.channel == "portal"
    assert OfferActivation.objects.filter(offer=offer, member=member).count() == 1


def test_activation_is_refused_with_the_eligibility_code(program):
    member = MemberFactory()
    vip = Segment.objects.create(name="VIP", kind="static", created_at=clock.now(), updated_at=clock.now())
    offer = offer_make(requires_activation=True, segments_include=[vip])
    with pytest.raises(Conflict) as refused:
        offer_activate(member=member, offer=offer, channel="portal")
    assert refused.value.code == "offer_segment_excluded"
    assert not OfferActivation.objects.exists()


def test_activating_a_paused_offer_is_refused(program):
    offer = offer_make(requires_activation=True, status=OfferStatus.PAUSED)
    with pytest.raises(Conflict) as refused:
        offer_activate(member=MemberFactory(), offer=offer, channel="portal")
    assert refused.value.code == "offer_not_active"


def test_activating_an_offer_that_needs_no_activation_is_refused(program):
    with pytest.raises(Conflict) as refused:
        offer_activate(member=MemberFactory(), offer=offer_make(), channel="portal")
    assert refused.value.code == "offer_activation_not_required"


def test_draft_is_published_paused_resumed_and_ended_each_audited(program):
    staff = StaffFactory()
    offer = offer_make(status=OfferStatus.DRAFT)
    for change in (offer_publish, offer_pause, offer_resume, offer_end):
        change(offer=offer, actor=staff, reason="plan")
    assert Offer.objects.get(pk=offer.pk).status == OfferStatus.ENDED
    audits = AuditEvent.objects.filter(target_type="offers.offer", target_id=str(offer.pk)).order_by("id")
    assert [a.action for a in audits] == ["offer.published", "offer.paused", "offer.resumed", "offer.ended"]
    assert audits[0].before == {"status": "draft"} and audits[0].after == {"status": "active"}
    assert {a.actor_id for a in audits} == {staff.pk}


@pytest.mark.parametrize(
    ("status", "change"),
    [(OfferStatus.ENDED, offer_resume), (OfferStatus.DRAFT, offer_pause), (OfferStatus.ACTIVE, offer_publish)],
)
def test_a_status_change_the_offer_cannot_make_is_refused_and_changes_nothing(program, status, change):
    offer = offer_make(status=status)
    with pytest.raises(Conflict) as refused:
        change(offer=offer, actor="staff")
    assert refused.value.code == "offer_status_invalid"
    assert Offer.objects.get(pk=offer.pk).status == status
    assert not AuditEvent.objects.filter(action__startswith="offer.").exists()


def test_staff_save_keeps_the_counters_purchases_moved(program):
    offer = offer_make(points_budget=1000)
    stale = Offer.objects.get(pk=offer.pk)  # the admin form read it
    Offer.objects.filter(pk=offer.pk).update(points_issued=300, redemptions_count=30)  # purchases meanwhile
    stale.name = "Renamed"
    offer_save(offer=stale, actor=StaffFactory())
    stored = Offer.objects.get(pk=offer.pk)
    assert (stored.name, stored.points_issued, stored.redemptions_count) == ("Renamed", 300, 30)


def test_staff_save_is_audited_with_what_changed(program):
    staff = StaffFactory()
    offer = Offer(
        program=program, name="Weekend", benefit_kind="bonus_fixed", benefit_points=10, status=OfferStatus.DRAFT
    )
    offer_save(offer=offer, actor=staff)
    offer.benefit_points = 25
    offer_save(offer=offer, actor=staff, reason="richer")
    created, changed = AuditEvent.objects.filter(target_type="offers.offer").order_by("id")
    assert created.action == "offer.created"
    assert (changed.action, changed.before, changed.after, changed.reason) == (
        "offer.changed",
        {"benefit_points": 10},
        {"benefit_points": 25},
        "richer",
    )
