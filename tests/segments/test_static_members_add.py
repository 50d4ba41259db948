"""``segment_static_members_add``: loaders add members they know (by id) to a static list."""

import pytest

from loyalty.core.errors import Conflict
from loyalty.core.models import AuditEvent
from members import services as members
from segments import services
from segments.models import SegmentEvent, SegmentMembership, SegmentRefresh
from tests.segments.conftest import dynamic, ids, member

pytestmark = pytest.mark.django_db


def open_members(segment) -> set:
    return set(
        SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).values_list("member_id", flat=True)
    )


def test_members_are_added_and_those_already_in_stay(now):
    a, b, c = member(), member(), member()
    segment = services.segment_create(name="Targeted", kind="static")

    first = services.segment_static_members_add(segment=segment, member_ids=[a.pk, b.pk, a.pk], actor="import")
    second = services.segment_static_members_add(segment=segment, member_ids=[b.pk, c.pk])

    assert (first.entered, first.size, second.entered, second.left, second.size) == (2, 2, 1, 0, 3)
    assert open_members(segment) == ids(a, b, c)
    assert set(SegmentEvent.objects.filter(segment=segment).values_list("kind", flat=True)) == {"entered"}
    segment.refresh_from_db()
    assert segment.size == 3
    audit = AuditEvent.objects.filter(action="segment.members_add", target_id=str(segment.pk))
    assert [e.after["added"] for e in audit.order_by("id")] == [2, 1]


def test_adding_nobody_new_writes_nothing(now):
    a = member()
    segment = services.segment_create(name="Targeted", kind="static")
    services.segment_static_members_add(segment=segment, member_ids=[a.pk])
    written = [m.objects.count() for m in (SegmentRefresh, SegmentEvent, SegmentMembership, AuditEvent)]

    assert services.segment_static_members_add(segment=segment, member_ids=[a.pk]) is None
    assert services.segment_static_members_add(segment=segment, member_ids=[]) is None
    assert [m.objects.count() for m in (SegmentRefresh, SegmentEvent, SegmentMembership, AuditEvent)] == written


def test_erased_and_unknown_members_are_left_out(now):
    kept, erased = member(), member()
    members.member_erase(member=erased, actor=None, reason="request")
    segment = services.segment_create(name="Targeted", kind="static")

    refresh = services.segment_static_members_add(segment=segment, member_ids=[kept.pk, erased.pk, 987654321])

    assert (refresh.entered, refresh.size) == (1, 1)
    assert open_members(segment) == ids(kept)


def test_only_static_segments_take_members(now):
    segment = dynamic("Dynamic", {"all": []})
    with pytest.raises(Conflict) as exc:
        services.segment_static_members_add(segment=segment, member_ids=[member().pk])
    assert exc.value.code == "segment_not_static"
    assert not SegmentMembership.objects.filter(segment=segment).exists()
