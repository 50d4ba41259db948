"""The segment builder for people: rules in plain words, no error for an untouched new row,
"last N days" needs N, members exported to CSV (audited)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from loyalty.core.errors import ValidationFailed
from loyalty.core.models import AuditEvent
from segments import rules as R
from segments import services as segment_services
from tests.factories import StaffFactory
from tests.staff_admin.conftest import member_with_history, role_user

pytestmark = pytest.mark.django_db

SPENT_AND_GOLD = {
    "all": [
        {"field": "purchase.spend", "op": "gte", "value": 500, "window": {"last_days": 90}},
        {"field": "loyalty.tier", "op": "eq", "value": "Gold"},
    ]
}


def test_rules_read_in_plain_language():
    assert R.describe(R.validate(SPENT_AND_GOLD)) == "spent at least 500 in the last 90 days and tier is Gold"


def test_rules_name_categories_consent_and_segments_in_words():
    tree = R.validate(
        {
            "any": [
                {"field": "purchase.count", "op": "gte", "value": 3, "category": ["DAIRY", "BAKERY"]},
                {"field": "consent", "op": "is", "value": True, "purpose": "marketing"},
                {"field": "segment", "op": "in", "value": [7]},
            ]
        }
    )
    words = R.describe(tree, segment_names={7: "VIP list"})
    assert words == (
        "(made at least 3 purchases in BAKERY or DAIRY or gave consent to marketing or is in segment VIP list)"
    )
    assert "{" not in words and "[" not in words


def test_last_n_days_without_n_is_refused_not_all_history():
    with pytest.raises(ValidationFailed) as exc:
        R.validate({"field": "purchase.spend", "op": "gte", "value": 1, "window": {"last_days": None}})
    assert "needs the number of days" in str(exc.value.fields["rules"])


def test_a_condition_without_value_says_fill_in_a_value():
    with pytest.raises(ValidationFailed) as exc:
        R.validate({"all": [{"field": "purchase.spend", "op": "gte", "value": ""}]})
    assert "fill in a value" in str(exc.value.fields["rules"])


def test_preview_of_a_new_empty_row_is_not_an_error(client):
    member_with_history()
    client.force_login(StaffFactory())
    rules = {"all": [{"field": "member.age_band", "op": "eq", "value": ""}]}
    data = client.post(reverse("admin:segments_segment_preview"), {"rules": json.dumps(rules)}).json()
    assert "errors" not in data
    assert data["incomplete"] == 1 and data["count"] == 1


def test_saving_last_n_days_without_n_is_a_form_error_and_nothing_is_created(client):
    client.force_login(StaffFactory())
    rules = {"all": [{"field": "purchase.spend", "op": "gte", "value": 10, "window": {"last_days": None}}]}
    response = client.post(
        reverse("admin:segments_segment_add"),
        {"name": "Recent", "description": "", "kind": "dynamic", "rules": json.dumps(rules), "auto_refresh": "on"},
    )
    assert response.status_code == 200
    assert "needs the number of days" in response.content.decode()
    from segments.models import Segment

    assert not Segment.objects.filter(name="Recent").exists()


def test_segment_list_and_page_show_the_rules_in_words(client):
    staff = StaffFactory()
    rules = {
        "all": [
            {"field": "purchase.spend", "op": "gte", "value": 500, "window": {"last_days": 90}},
            {"field": "member.country", "op": "eq", "value": "nl"},
        ]
    }
    segment = segment_services.segment_create(name="Big spenders", kind="dynamic", rules=rules, actor=staff)
    client.force_login(staff)
    listing = client.get(reverse("admin:segments_segment_changelist")).content.decode()
    assert "spent at least 500 in the last 90 days and country is NL" in listing
    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    assert "spent at least 500 in the last 90 days and country is NL" in page
    assert segment.name in listing


def _static_segment(staff, *members):
    segment = segment_services.segment_create(name="VIP list", kind="static", actor=staff)
    numbers = "\n".join(m.member_number for m in members)
    segment_services.segment_static_upload(
        segment=segment, content=f"member_number\n{numbers}\n".encode(), filename="x.csv", actor=staff
    )
    return segment


@pytest.mark.parametrize("role", ["Marketing", "Support", "Analyst"])
def test_export_members_csv_is_audited_and_lists_the_members(client, role):
    staff = StaffFactory()
    a = member_with_history(email="a@example.com")
    member_with_history(email="b@example.com")
    segment = _static_segment(staff, a)
    user = role_user(role)
    client.force_login(user)
    response = client.post(
        reverse("admin:segments_segment_changelist"),
        {"action": "export_members_csv", "_selected_action": [segment.pk]},
    )
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["member_number", "external_id", "first_name"]
    assert [r[0] for r in rows[1:]] == [a.member_number]
    event = AuditEvent.objects.get(action="segment.members_exported")
    assert (event.actor, event.after["members"]) == (user, 1)


def test_export_is_refused_to_staff_without_a_role(client):
    staff = StaffFactory()
    segment = _static_segment(staff, member_with_history())
    client.force_login(role_user("no role"))
    response = client.post(
        reverse("admin:segments_segment_changelist"),
        {"action": "export_members_csv", "_selected_action": [segment.pk]},
    )
    assert response.status_code in (302, 403)
    assert not AuditEvent.objects.filter(action="segment.members_exported").exists()
