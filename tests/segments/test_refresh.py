"""Materialized membership: refresh diffs, events, size history, static uploads, snapshots."""

import datetime as dt

import pytest
from django.core.management import call_command

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.selectors import audit_events_for
from members import services as members
from segments import selectors, services, tasks
from segments.models import Segment, SegmentEvent, SegmentMembership, SegmentRefresh, SegmentUpload
from tests.segments.conftest import T0, buy, dynamic, ids, member

pytestmark = pytest.mark.django_db

BUYERS = {"field": "purchase.count", "op": "gte", "value": 1, "window": {"last_days": 30}}


def open_members(segment) -> set:
    return set(
        SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).values_list("member_id", flat=True)
    )


def events(segment, kind) -> set:
    return set(SegmentEvent.objects.filter(segment=segment, kind=kind).values_list("member_id", flat=True))


def test_first_refresh_enters_every_match(program):
    a, b, _c = member(), member(), member()
    buy(a), buy(b)
    segment = dynamic("Buyers", BUYERS)
    refresh = services.segment_refresh(segment=segment)
    assert (refresh.size, refresh.entered, refresh.left) == (2, 2, 0)
    assert open_members(segment) == ids(a, b)
    assert events(segment, "entered") == ids(a, b)
    segment.refresh_from_db()
    assert (segment.size, segment.last_refreshed_at) == (2, T0)


def test_refresh_writes_only_the_difference(program):
    stays, leaves, joins = member(), member(), member()
    buy(stays, days_ago=1), buy(leaves, days_ago=25)
    segment = dynamic("Buyers", BUYERS)
    services.segment_refresh(segment=segment)
    stay_row = SegmentMembership.objects.get(segment=segment, member=stays)

    clock.set_now(T0 + dt.timedelta(days=10))  # leaves' purchase is now 35 days old
    buy(joins)
    refresh = services.segment_refresh(segment=segment)

    assert (refresh.size, refresh.entered, refresh.left) == (2, 1, 1)
    assert open_members(segment) == ids(stays, joins)
    assert SegmentMembership.objects.get(pk=stay_row.pk).entered_at == T0  # untouched
    left_row = SegmentMembership.objects.get(segment=segment, member=leaves)
    assert left_row.left_at == T0 + dt.timedelta(days=10)
    assert list(SegmentEvent.objects.filter(refresh=refresh).order_by("kind").values_list("kind", "member_id")) == [
        ("entered", joins.pk),
        ("left", leaves.pk),
    ]


def test_a_refresh_with_no_change_writes_nothing_but_the_size_row(program, django_assert_max_num_queries):
    buyer = member()
    buy(buyer)
    segment = dynamic("Buyers", BUYERS)
    services.segment_refresh(segment=segment)
    before = SegmentEvent.objects.count()
    refresh = services.segment_refresh(segment=segment)
    assert (refresh.size, refresh.entered, refresh.left) == (1, 0, 0)
    assert SegmentEvent.objects.count() == before
    assert SegmentMembership.objects.filter(segment=segment).count() == 1


def test_leaving_and_coming_back_opens_a_new_stay(program):
    buyer = member()
    buy(buyer)
    segment = dynamic("Buyers", BUYERS)
    services.segment_refresh(segment=segment)
    clock.set_now(T0 + dt.timedelta(days=40))
    services.segment_refresh(segment=segment)
    buy(buyer)
    services.segment_refresh(segment=segment)
    stays = list(
        SegmentMembership.objects.filter(segment=segment).order_by("entered_at").values_list("entered_at", "left_at")
    )
    assert stays == [(T0, T0 + dt.timedelta(days=40)), (T0 + dt.timedelta(days=40), None)]
    assert list(SegmentEvent.objects.filter(segment=segment).order_by("id").values_list("kind", flat=True)) == [
        "entered",
        "left",
        "entered",
    ]


def test_refresh_costs_the_same_number_of_queries_for_any_number_of_members(program, django_assert_max_num_queries):
    segment = dynamic("Buyers", BUYERS)
    for _ in range(3):
        buy(member())
    with django_assert_max_num_queries(16):
        services.segment_refresh(segment=segment)
    for _ in range(12):
        buy(member())
    with django_assert_max_num_queries(16):
        refresh = services.segment_refresh(segment=segment)
    assert refresh.entered == 12


def test_size_history_is_kept_for_charts(program):
    segment = dynamic("Buyers", BUYERS)
    services.segment_refresh(segment=segment)
    for day in (1, 2):
        clock.set_now(T0 + dt.timedelta(days=day))
        buy(member())
        services.segment_refresh(segment=segment)
    history = selectors.segment_size_history(segment=segment)
    assert [(h["size"], h["entered"], h["left"]) for h in history] == [(0, 0, 0), (1, 1, 0), (2, 1, 0)]
    assert [h["at"] for h in history] == [T0, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)]
    assert len(selectors.segment_size_history(segment=segment, since=T0 + dt.timedelta(days=1))) == 2


def test_segment_events_can_be_read_in_order_after_a_cursor(program):
    a, b = member(), member()
    buy(a)
    segment = dynamic("Buyers", BUYERS)
    services.segment_refresh(segment=segment)
    [first] = selectors.segment_events(segment=segment)
    buy(b)
    services.segment_refresh(segment=segment)
    later = list(selectors.segment_events(after_id=first.pk))
    assert [(e.member_id, e.kind) for e in later] == [(b.pk, "entered")]


def test_only_dynamic_segments_refresh_from_rules(now):
    static = services.segment_create(name="List", kind="static")
    with pytest.raises(Conflict) as exc:
        services.segment_refresh(segment=static)
    assert exc.value.code == "segment_not_dynamic"


def test_scheduled_refresh_does_segments_that_others_use_first(program):
    buyer = member()
    buy(buyer)
    users = dynamic("Buyers without kids", {"all": []})  # created first...
    base = dynamic("Buyers", BUYERS)
    services.segment_update(segment=users, rules={"field": "segment", "op": "in", "value": [base.pk]})
    manual = dynamic("Manual", {"all": []}, auto_refresh=False)
    done = services.segments_refresh_all()
    assert [r.segment_id for r in done] == [base.pk, users.pk]
    assert open_members(users) == ids(buyer)
    assert not SegmentRefresh.objects.filter(segment=manual).exists()
    assert tasks.refresh_dynamic_segments.delay().get() == 2


def test_refresh_command_refreshes_named_or_all_segments(program, capsys):
    buy(member())
    segment = dynamic("Buyers", BUYERS)
    call_command("refresh_segments", str(segment.pk))
    call_command("refresh_segments")
    assert "Buyers: 1 members" in capsys.readouterr().out
    assert SegmentRefresh.objects.filter(segment=segment).count() == 2


# Creating and editing -------------------------------------------------------------------------------


def test_create_validates_rules_and_audits(now):
    with pytest.raises(ValidationFailed) as exc:
        dynamic("Bad", {"all": [{"field": "purchase.spend", "op": "gte", "value": "lots"}]})
    assert exc.value.code == "invalid_rules" and "all[0] (purchase.spend)" in exc.value.message
    with pytest.raises(ValidationFailed) as exc:
        services.segment_create(name="No rules")
    assert exc.value.code == "rules_required"
    segment = dynamic("Good", {"all": [{"field": "member.country", "op": "eq", "value": "fr"}]})
    assert segment.rules == {"all": [{"field": "member.country", "op": "eq", "value": "FR"}]}
    assert audit_events_for(target=segment).get().action == "segment.create"
    with pytest.raises(Conflict) as exc:
        dynamic("Good", {"all": []})
    assert exc.value.code == "segment_name_taken"


def test_rules_cannot_refer_to_unknown_segments_or_make_a_cycle(now):
    a = dynamic("A", {"all": []})
    b = dynamic("B", {"field": "segment", "op": "in", "value": [a.pk]})
    with pytest.raises(ValidationFailed) as exc:
        services.segment_update(segment=a, rules={"field": "segment", "op": "in", "value": [b.pk]})
    assert "refers back to this segment" in exc.value.message
    with pytest.raises(ValidationFailed) as exc:
        services.segment_update(segment=a, rules={"any": [{"field": "segment", "op": "in", "value": [a.pk]}]})
    assert "any[0] (segment): a segment cannot refer to itself" in exc.value.message
    with pytest.raises(ValidationFailed) as exc:
        dynamic("C", {"field": "segment", "op": "in", "value": [999999]})
    assert "unknown segment 999999" in exc.value.message


def test_rules_cannot_name_unknown_programs_or_partners(now):
    with pytest.raises(ValidationFailed) as exc:
        dynamic(
            "X",
            {
                "all": [
                    {"field": "loyalty.available_points", "op": "gte", "value": 1, "program": 424242},
                    {"field": "purchase.spend", "op": "gte", "value": 1, "partner": [777]},
                ]
            },
        )
    assert [e["path"] for e in exc.value.extra["errors"]] == ["all[0]", "all[1]"]


def test_update_changes_rules_and_audits_the_change(now):
    segment = dynamic("Kids", {"field": "member.has_kids", "op": "is", "value": True})
    services.segment_update(
        segment=segment, rules={"field": "member.has_kids", "op": "is", "value": False}, name="No kids"
    )
    segment.refresh_from_db()
    assert segment.name == "No kids" and segment.rules["value"] is False
    assert audit_events_for(target=segment).filter(action="segment.update").count() == 1
    with pytest.raises(ValidationFailed):
        services.segment_update(segment=segment, kind="static")


def test_a_segment_used_by_another_cannot_be_deleted(now):
    a = dynamic("A", {"all": []})
    b = dynamic("B", {"field": "segment", "op": "in", "value": [a.pk]})
    with pytest.raises(Conflict) as exc:
        services.segment_delete(segment=a)
    assert exc.value.code == "segment_in_use"
    services.segment_delete(segment=b)
    services.segment_delete(segment=a)
    assert not Segment.objects.exists()


# Static lists -------------------------------------------------------------------------------------


@pytest.fixture
def listed(now):
    return {
        "by_number": member(),
        "by_external": member(external_id="crm-42"),
        "other": member(external_id="crm-7"),
    }


def test_static_upload_matches_numbers_and_external_ids_and_reports_unknown_ids(listed):
    segment = services.segment_create(name="Event guests", kind="static")
    number = listed["by_number"].member_number
    content = (
        f"member_number,name\n{number[:4]}-{number[4:]},Ann\ncrm-42,Bob\nNOPE-1,Carl\n\n{number},dup\n99999999999,Dan\n"
    )
    upload = services.segment_static_upload(segment=segment, content=content.encode(), filename="guests.csv")
    assert (upload.rows, upload.matched, upload.unknown) == (5, 3, 2)  # two spellings of one number
    assert upload.unknown_ids == ["99999999999", "NOPE-1"]
    assert open_members(segment) == ids(listed["by_number"], listed["by_external"])
    assert (upload.refresh.entered, upload.refresh.size) == (2, 2)
    assert audit_events_for(target=segment).filter(action="segment.upload").exists()


def test_static_upload_without_header_uses_the_first_column(listed):
    segment = services.segment_create(name="List", kind="static")
    upload = services.segment_static_upload(segment=segment, content="crm-7;x\ncrm-42;y\n")
    assert (upload.rows, upload.matched, upload.unknown) == (2, 2, 0)
    assert open_members(segment) == ids(listed["other"], listed["by_external"])


def test_replacing_a_list_diffs_and_adding_keeps_it(listed):
    segment = services.segment_create(name="List", kind="static")
    services.segment_static_upload(segment=segment, content="external_id\ncrm-7\ncrm-42\n")
    replaced = services.segment_static_upload(segment=segment, content="external_id\ncrm-42\n")
    assert (replaced.refresh.entered, replaced.refresh.left) == (0, 1)
    assert open_members(segment) == ids(listed["by_external"])
    added = services.segment_static_upload(segment=segment, content=listed["by_number"].member_number, mode="add")
    assert (added.refresh.entered, added.refresh.left, added.refresh.size) == (1, 0, 2)
    assert open_members(segment) == ids(listed["by_external"], listed["by_number"])


def test_erased_members_are_not_matched_by_an_upload(listed):
    members.member_erase(member=listed["other"], actor=None, reason="request")
    segment = services.segment_create(name="List", kind="static")
    number = listed["other"].member_number
    upload = services.segment_static_upload(segment=segment, content=f"{number}\n")
    assert (upload.matched, upload.unknown, upload.unknown_ids) == (0, 1, [number])


@pytest.mark.parametrize(
    ("content", "code"),
    [("", "empty_upload"), ("member_number\n", "empty_upload"), (b"\xff\xfe\x00bad", "invalid_upload")],
)
def test_bad_uploads_are_refused(listed, content, code):
    segment = services.segment_create(name="List", kind="static")
    with pytest.raises(ValidationFailed) as exc:
        services.segment_static_upload(segment=segment, content=content)
    assert exc.value.code == code
    assert not SegmentUpload.objects.exists()


def test_only_static_segments_take_uploads(now):
    segment = dynamic("Dynamic", {"all": []})
    with pytest.raises(Conflict) as exc:
        services.segment_static_upload(segment=segment, content="1")
    assert exc.value.code == "segment_not_static"


def test_parse_member_ids_finds_the_id_columns():
    assert services.parse_member_ids("external_id,member_number\na,123\nb,\n,456\n") == ["a", "123", "b", "456"]
    assert services.parse_member_ids("\ufeff111\n222\n111\n") == ["111", "222"]


# Snapshots ----------------------------------------------------------------------------------------


def test_a_snapshot_freezes_the_current_members(program):
    early, late = member(), member()
    buy(early)
    segment = dynamic("Buyers", BUYERS)
    with clock.frozen(T0 + dt.timedelta(hours=1)):
        snapshot = services.segment_snapshot_create(segment=segment, name="Summer campaign")
    assert (snapshot.kind, snapshot.source, snapshot.frozen_at, snapshot.size) == (
        "snapshot",
        segment,
        T0 + dt.timedelta(hours=1),
        1,
    )
    buy(late)
    services.segment_refresh(segment=segment)
    assert open_members(segment) == ids(early, late)
    assert open_members(snapshot) == ids(early)
    with pytest.raises(Conflict):
        services.segment_refresh(segment=snapshot)
    with pytest.raises(Conflict):
        services.segment_snapshot_create(segment=snapshot)
    assert services.segment_snapshot_create(segment=segment).name == "Buyers @ 2030-06-15 12:00"
