import pytest
import tablib
from django.contrib.auth.models import Group
from django.urls import reverse

from loyalty.core.selectors import audit_events_for
from members.models import Member, MemberStatus
from members.resources import MemberResource
from tests.factories import MemberFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = StaffFactory(username="boss")
    client.force_login(staff)
    return client, staff


def test_admin_member_list_search_and_detail_render(staff_client):
    client, _ = staff_client
    member = MemberFactory(first_name="Zelda")
    url = reverse("admin:members_member_changelist")
    response = client.get(url, {"q": "Zelda"})
    assert response.status_code == 200 and member.member_number in response.content.decode()
    assert client.get(reverse("admin:members_member_change", args=[member.pk])).status_code == 200


def test_suspend_action_asks_for_reason_then_calls_the_service(staff_client):
    client, staff = staff_client
    member = MemberFactory()
    url = reverse("admin:members_member_changelist")
    page = client.post(url, {"action": "suspend_members", "_selected_action": [member.pk]})
    assert page.status_code == 200 and b"reason" in page.content
    member.refresh_from_db()
    assert member.status == MemberStatus.ACTIVE  # nothing until the reason is given
    client.post(
        url, {"action": "suspend_members", "_selected_action": [member.pk], "apply": "1", "reason": "chargebacks"}
    )
    member.refresh_from_db()
    assert member.status == MemberStatus.SUSPENDED
    event = audit_events_for(target=member).get(action="member.suspend")
    assert (event.actor, event.reason) == (staff, "chargebacks")


def test_erase_action_pseudonymizes(staff_client):
    client, _ = staff_client
    member = MemberFactory(email="bye@example.com")
    client.post(
        reverse("admin:members_member_changelist"),
        {"action": "erase_members", "_selected_action": [member.pk], "apply": "1", "reason": "request"},
    )
    member.refresh_from_db()
    assert member.status == MemberStatus.ERASED and member.email is None


def test_admin_edit_with_taken_email_shows_form_error_and_changes_nothing(staff_client):
    client, _ = staff_client
    MemberFactory(email="taken@example.com")
    member = MemberFactory(email="mine@example.com")
    url = reverse("admin:members_member_change", args=[member.pk])
    data = {
        "email": "Taken@example.com",
        "first_name": "X",
        "preferred_language": "en",
        "consent_events-TOTAL_FORMS": "0",
        "consent_events-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "email_taken" in response.content.decode()
    member.refresh_from_db()
    assert member.email == "mine@example.com"


def test_admin_add_member_goes_through_enroll(staff_client):
    client, staff = staff_client
    response = client.post(
        reverse("admin:members_member_add"),
        {
            "email": "new@example.com",
            "first_name": "New",
            "preferred_language": "en",
            "consent_events-TOTAL_FORMS": "0",
            "consent_events-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    member = Member.objects.get(email="new@example.com")
    assert member.enrollment_source == "staff" and len(member.member_number) == 12
    assert audit_events_for(target=member).get(action="member.enroll").actor == staff


def test_members_cannot_be_deleted_from_admin(staff_client):
    client, _ = staff_client
    member = MemberFactory()
    assert client.get(reverse("admin:members_member_delete", args=[member.pk])).status_code == 403


def _csv(rows):
    header = ["member_number", "external_id", "email", "first_name", "last_name", "birth_date", "country", "age_band"]
    return tablib.Dataset(*rows, headers=header)


def test_csv_import_creates_members_through_enroll():
    data = _csv(
        [["", "x-1", "a@example.com", "A", "One", "1990-01-01", "US", "25-34"], ["", "x-2", "", "B", "Two", "", "", ""]]
    )
    result = MemberResource().import_data(data, dry_run=False, rollback_on_validation_errors=True)
    assert not result.has_errors() and not result.has_validation_errors()
    created = Member.objects.get(external_id="x-1")
    assert created.enrollment_source == "import" and created.age_band == "25-34" and created.email == "a@example.com"
    assert Member.objects.get(external_id="x-2").email is None


def test_csv_import_with_a_bad_row_reports_row_and_reason_and_imports_nothing():
    MemberFactory(email="dup@example.com")
    data = _csv(
        [
            ["", "ok-1", "ok@example.com", "Ok", "Row", "", "US", ""],
            ["", "bad-1", "DUP@example.com", "Dup", "Row", "", "US", ""],
            ["", "bad-2", "not-an-email", "Bad", "Email", "", "US", ""],
        ]
    )
    result = MemberResource().import_data(data, dry_run=False, rollback_on_validation_errors=True)
    assert result.has_validation_errors()
    invalid = {row.number: row.error_dict for row in result.invalid_rows}
    assert set(invalid) == {2, 3}
    assert "email_taken" in str(invalid[2]) and "email" in str(invalid[3])
    assert not Member.objects.filter(external_id="ok-1").exists()
    assert Member.objects.count() == 1


def test_csv_import_updates_existing_member_by_number():
    member = MemberFactory(email="u@example.com", first_name="Old")
    data = _csv([[member.member_number, "", "u@example.com", "New", member.last_name, "", "", ""]])
    result = MemberResource().import_data(data, dry_run=False, rollback_on_validation_errors=True)
    assert not result.has_validation_errors(), [r.error_dict for r in result.invalid_rows]
    member.refresh_from_db()
    assert member.first_name == "New"


def test_csv_export_lists_members(staff_client):
    MemberFactory(email="e@example.com")
    dataset = MemberResource().export()
    assert "e@example.com" in dataset.csv and "member_number" in dataset.headers


def test_staff_roles_exist_with_fitting_permissions():
    marketing = set(Group.objects.get(name="Marketing").permissions.values_list("codename", flat=True))
    support = set(Group.objects.get(name="Support").permissions.values_list("codename", flat=True))
    analyst = set(Group.objects.get(name="Analyst").permissions.values_list("codename", flat=True))
    assert "view_member" in marketing and "change_member" not in marketing
    assert {"view_member", "change_member", "add_member"} <= support and "delete_member" not in support
    assert analyst and all(code.startswith(("view_", "dashboards")) for code in analyst)
