"""Segments in the admin: rule builder, live preview, uploads, actions, roles."""

import json

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from loyalty.core.clock import now as now_time
from loyalty.core.selectors import audit_events_for
from segments import services
from segments.admin import builder_catalogue
from segments.models import MemberScore, ScoreRun, Segment, SegmentMembership, SegmentUpload
from tests.factories import StaffFactory, UserFactory
from tests.segments.conftest import buy, dynamic, member

pytestmark = pytest.mark.django_db

RULES = {"all": [{"field": "purchase.count", "op": "gte", "value": 1, "window": {"last_days": 30}}]}


@pytest.fixture
def staff(client, now):
    user = StaffFactory(username="boss")
    client.force_login(user)
    return user


def marketing_user(username="mark"):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name="Marketing"))
    return user


def test_add_page_has_the_rule_builder_and_its_catalogue(client, staff):
    page = client.get(reverse("admin:segments_segment_add"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "data-rule-builder" in html and 'id="segment-rule-catalogue"' in html
    assert "segments/rule_builder.js" in html
    assert reverse("admin:segments_segment_preview") in html
    catalogue = page.context["adminform"].form.fields["rules"].widget.catalogue
    assert any(f["name"] == "purchase.spend" for f in catalogue["fields"])


def test_saving_a_dynamic_segment_goes_through_the_service_and_refreshes_it(
    client, staff, program, django_capture_on_commit_callbacks
):
    buyer = member()
    buy(buyer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:segments_segment_add"),
            {
                "name": "Recent buyers",
                "description": "",
                "kind": "dynamic",
                "rules": json.dumps(RULES),
                "auto_refresh": "on",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    segment = Segment.objects.get(name="Recent buyers")
    assert segment.created_by == staff
    assert audit_events_for(target=segment).get().action == "segment.create"
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("member_id", flat=True)) == {buyer.pk}


def test_invalid_rules_show_which_condition_is_wrong(client, staff):
    rules = {
        "all": [
            {"field": "purchase.count", "op": "gte", "value": 1},
            {"field": "member.mood", "op": "eq", "value": "x"},
        ]
    }
    response = client.post(
        reverse("admin:segments_segment_add"),
        {"name": "Bad", "kind": "dynamic", "rules": json.dumps(rules), "auto_refresh": "on"},
    )
    assert response.status_code == 200
    assert "all[1] (member.mood): unknown field" in response.content.decode()
    assert not Segment.objects.exists()


def test_live_preview_returns_count_and_sample_or_errors(client, staff, program):
    buyer = member(first_name="Ann", last_name="Lee")
    buy(buyer)
    member()
    url = reverse("admin:segments_segment_preview")
    data = client.post(url, {"rules": json.dumps(RULES)}).json()
    assert data["count"] == 1
    assert data["sample"] == [
        {
            "id": buyer.pk,
            "member_number": buyer.member_number,
            "status": "active",
            "name": "Ann Lee",
            "url": reverse("admin:members_member_change", args=[buyer.pk]),
        }
    ]
    errors = client.post(url, {"rules": json.dumps({"all": [{"field": "purchase.count", "op": "is"}]})}).json()
    assert errors["errors"][0].startswith("all[0] (purchase.count): operator 'is' is not allowed")
    assert client.post(url, {"rules": "{oops"}).json() == {"errors": ["The rules are not valid JSON."]}
    assert client.get(url).status_code == 405


def test_a_static_segment_is_filled_by_uploading_a_csv(client, staff):
    known = member(external_id="crm-1")
    upload = SimpleUploadedFile("list.csv", b"external_id\ncrm-1\ncrm-404\n", content_type="text/csv")
    response = client.post(
        reverse("admin:segments_segment_add"),
        {"name": "Guests", "kind": "static", "rules": "", "upload": upload, "upload_mode": "replace"},
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Uploaded 2 ids: 1 matched, 1 unknown; unknown ids: crm-404" in html
    segment = Segment.objects.get(name="Guests")
    assert segment.size == 1 and segment.rules is None
    assert SegmentUpload.objects.get(segment=segment).unknown_ids == ["crm-404"]
    change = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    assert "crm-404" in change and "Upload reports" in change
    assert known.pk in SegmentMembership.objects.filter(segment=segment).values_list("member_id", flat=True)


def test_refresh_and_snapshot_actions(client, staff, program):
    buy(member())
    segment = dynamic("Buyers", RULES)
    url = reverse("admin:segments_segment_changelist")
    page = client.post(url, {"action": "refresh_segments", "_selected_action": [segment.pk]}, follow=True)
    assert "Buyers: 1 members (+1 entered, -0 left)" in page.content.decode()
    page = client.post(url, {"action": "snapshot_segments", "_selected_action": [segment.pk]}, follow=True)
    assert "holds 1 members" in page.content.decode()
    assert Segment.objects.filter(kind="snapshot", source=segment).count() == 1


def test_change_page_shows_size_history_and_links_composition(client, staff, program):
    buy(member())
    segment = dynamic("Buyers", RULES)
    services.segment_refresh(segment=segment)
    buy(member())
    services.segment_refresh(segment=segment)
    html = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    assert "<svg" in html and "1 → 2 members" in html
    composition = client.get(reverse("admin:segments_segment_composition", args=[segment.pk]))
    assert composition.status_code == 200 and "Tier mix" in composition.content.decode()


def test_a_segment_used_by_another_cannot_be_deleted_from_the_admin(client, staff):
    used = dynamic("Used", {"all": []})
    dynamic("User", {"field": "segment", "op": "in", "value": [used.pk]})
    response = client.post(reverse("admin:segments_segment_delete", args=[used.pk]), {"post": "yes"}, follow=True)
    assert "cannot be deleted" in response.content.decode()
    assert Segment.objects.filter(pk=used.pk).exists()


def test_marketing_role_manages_segments_and_support_only_reads(client, now):
    client.force_login(marketing_user())
    response = client.post(
        reverse("admin:segments_segment_add"),
        {"name": "By marketing", "kind": "dynamic", "rules": json.dumps({"all": []}), "auto_refresh": "on"},
    )
    assert response.status_code == 302
    support = UserFactory(username="sup", is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    client.force_login(support)
    assert client.get(reverse("admin:segments_segment_changelist")).status_code == 200
    assert client.get(reverse("admin:segments_segment_add")).status_code == 403
    assert client.post(reverse("admin:segments_segment_preview"), {"rules": "{}"}).status_code == 200


def test_scores_are_read_only_in_the_admin(client, staff, program):
    for days in (1, 20):
        buy(member(), days_ago=days)
    services.scores_compute()
    page = client.get(reverse("admin:segments_memberscore_changelist"))
    assert page.status_code == 200 and MemberScore.objects.count() == 2
    assert client.get(reverse("admin:segments_scorerun_changelist")).status_code == 200
    assert client.get(reverse("admin:segments_memberscore_add")).status_code == 403


def test_a_degenerate_score_run_is_flagged_in_its_list_and_on_the_composition_page(client, staff, program):
    buy(member())
    segment = dynamic("Buyers", RULES)
    services.segment_refresh(segment=segment)
    ScoreRun.objects.create(
        as_of=now_time(),
        window_days=365,
        horizon_days=365,
        margin=1,
        started_at=now_time(),
        finished_at=now_time(),
        clv_basis="historic",
        degenerate=True,
        fit_members=300,
        fit_log_likelihood=-1234.5,
    )
    listing = client.get(reverse("admin:segments_scorerun_changelist") + "?degenerate__exact=1").content.decode()
    assert "Historic value per day (model fit degenerate)" in listing and "-1234.5" in listing
    page = client.get(reverse("admin:segments_segment_composition", args=[segment.pk])).content.decode()
    assert 'class="errornote"' in page and "not a model prediction" in page
    fields = {spec["name"]: spec for spec in builder_catalogue()["fields"]}
    assert "not a model prediction" in fields["score.predicted_clv"]["help"]
    assert "not a model prediction" not in fields["score.r"].get("help", "")


def test_marketing_scores_the_base_from_the_admin_and_the_run_is_audited(client, program):
    for days in (1, 20):
        buy(member(), days_ago=days)
    mark = marketing_user()
    client.force_login(mark)
    listing = client.get(reverse("admin:segments_scorerun_changelist")).content.decode()
    assert "Score all members now" in listing
    response = client.post(reverse("admin:segments_scorerun_compute"), follow=True)
    assert "Scored 2 members." in response.content.decode()
    run = ScoreRun.objects.get()
    assert MemberScore.objects.count() == 2
    event = audit_events_for(target=run).get()
    assert (event.action, event.actor, event.after["members_scored"]) == ("scores.compute", mark, 2)


def test_support_cannot_start_a_scoring(client, now):
    support = UserFactory(username="sue", is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    client.force_login(support)
    assert "Score all members now" not in client.get(reverse("admin:segments_scorerun_changelist")).content.decode()
    assert client.post(reverse("admin:segments_scorerun_compute")).status_code == 403
    assert client.get(reverse("admin:segments_scorerun_compute")).status_code == 405
    assert not ScoreRun.objects.exists()
