import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.core.errors import Conflict, NotFound, ValidationFailed
from loyalty.core.selectors import audit_events_for
from members import luhn, selectors, services
from members.models import ConsentEvent, EnrollmentSource, Member, MemberStatus
from tests.factories import MemberFactory, StaffFactory

pytestmark = pytest.mark.django_db


def test_enroll_assigns_valid_card_number_referral_code_and_enrollment_time():
    with clock.frozen(dt.datetime(2030, 3, 1, 9, tzinfo=dt.UTC)):
        member = services.member_enroll(source=EnrollmentSource.PORTAL, email="Ann@Example.COM", first_name=" Ann ")
    assert luhn.is_valid(member.member_number)
    assert len(member.referral_code) == 8
    assert member.enrolled_at == dt.datetime(2030, 3, 1, 9, tzinfo=dt.UTC)
    assert member.email == "Ann@example.com" and member.first_name == "Ann"
    assert member.status == MemberStatus.ACTIVE


def test_email_is_unique_ignoring_case():
    services.member_enroll(source="portal", email="ann@example.com")
    with pytest.raises(Conflict) as exc:
        services.member_enroll(source="portal", email="ANN@example.com")
    assert exc.value.code == "email_taken"
    assert Member.objects.count() == 1


def test_members_without_email_are_allowed_many_times():
    services.member_enroll(source="import", external_id="cj-1")
    services.member_enroll(source="import", external_id="cj-2")
    assert Member.objects.filter(email__isnull=True).count() == 2


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"email": "not-an-email"}, "invalid_email"),
        ({"birth_date": dt.date(2999, 1, 1)}, "invalid_birth_date"),
        ({"country": "USA"}, "invalid_country"),
        ({"source": "carrier-pigeon"}, "invalid_source"),
        ({"demographics": {"shoe_size": 42}}, "invalid_demographics"),
        ({"demographics": {"household_size": -1}}, "invalid_household_size"),
        ({"consents": [("telepathy", "", True)]}, "invalid_consent_purpose"),
        ({"consents": [("marketing", "fax", True)]}, "invalid_consent_channel"),
    ],
)
def test_enroll_rejects_bad_input_and_creates_nothing(kwargs, code):
    kwargs = {"source": "portal", **kwargs}
    with pytest.raises(ValidationFailed) as exc:
        services.member_enroll(**kwargs)
    assert exc.value.code == code
    assert Member.objects.count() == 0 and ConsentEvent.objects.count() == 0


def test_external_id_is_unique():
    services.member_enroll(source="import", external_id="cj-9")
    with pytest.raises(Conflict) as exc:
        services.member_enroll(source="import", external_id="cj-9")
    assert exc.value.code == "external_id_taken"


def test_consent_history_is_append_only_and_selector_reports_latest_state():
    member = services.member_enroll(
        source="portal", consents=[("marketing", "email", True)], consent_wording_version="v1"
    )
    assert selectors.consent_granted(member=member, purpose="marketing", channel="email")
    services.consent_set(
        member=member, purpose="marketing", channel="email", granted=False, source="portal", wording_version="v2"
    )
    assert not selectors.consent_granted(member=member, purpose="marketing", channel="email")
    assert not selectors.consent_granted(member=member, purpose="marketing", channel="sms")
    history = list(selectors.consent_history(member=member).values_list("granted", "wording_version"))
    assert history == [(False, "v2"), (True, "v1")]
    assert selectors.consent_state(member=member) == {("marketing", "email"): False}


def test_members_with_consent_filters_in_one_query(django_assert_num_queries):
    yes = services.member_enroll(source="portal", consents=[("personalization", "", True)])
    services.member_enroll(source="portal", consents=[("personalization", "", False)])
    services.member_enroll(source="portal")
    with django_assert_num_queries(1):
        found = list(selectors.members_with_consent(purpose="personalization"))
    assert found == [yes]


def test_update_changes_fields_and_audits_the_diff():
    staff = StaffFactory()
    member = MemberFactory(email="old@example.com")
    services.member_update(member=member, actor=staff, reason="moved", postal_code="12345", email="new@example.com")
    member.refresh_from_db()
    assert (member.postal_code, member.email) == ("12345", "new@example.com")
    event = audit_events_for(target=member).get(action="member.update")
    assert event.before == {"postal_code": "", "email": "old@example.com"}
    assert event.reason == "moved" and event.actor == staff


def test_update_refuses_email_of_another_member_and_changes_nothing():
    MemberFactory(email="taken@example.com")
    member = MemberFactory(email="mine@example.com")
    with pytest.raises(Conflict) as exc:
        services.member_update(member=member, email="TAKEN@example.com", first_name="Changed")
    assert exc.value.code == "email_taken"
    member.refresh_from_db()
    assert member.email == "mine@example.com" and member.first_name != "Changed"


def test_update_refuses_read_only_fields():
    member = MemberFactory()
    with pytest.raises(ValidationFailed) as exc:
        services.member_update(member=member, status="active", member_number="1")
    assert exc.value.code == "field_not_updatable"


def test_suspend_and_close_need_a_reason_follow_transitions_and_are_audited():
    staff = StaffFactory()
    member = MemberFactory()
    with pytest.raises(ValidationFailed) as exc:
        services.member_suspend(member=member, actor=staff, reason=" ")
    assert exc.value.code == "reason_required"
    services.member_suspend(member=member, actor=staff, reason="fraud check")
    services.member_close(member=member, actor=staff, reason="asked to leave")
    with pytest.raises(Conflict) as exc:
        services.member_suspend(member=member, actor=staff, reason="again")
    assert exc.value.code == "invalid_status_transition"
    member.refresh_from_db()
    assert member.status == MemberStatus.CLOSED
    assert list(audit_events_for(target=member).values_list("action", flat=True)) == ["member.close", "member.suspend"]


def test_lookup_by_number_checks_luhn_before_querying():
    member = MemberFactory()
    assert selectors.member_get_by_number(member_number=member.member_number) == member
    spaced = " ".join([member.member_number[:4], member.member_number[4:8], member.member_number[8:]])
    assert selectors.member_get_by_number(member_number=spaced) == member
    typo = member.member_number[:-1] + str((int(member.member_number[-1]) + 1) % 10)
    with pytest.raises(ValidationFailed) as exc:
        selectors.member_get_by_number(member_number=typo)
    assert exc.value.code == "invalid_member_number"
    payload = "99999999999"
    with pytest.raises(NotFound) as exc:
        selectors.member_get_by_number(member_number=payload + luhn.check_digit(payload))
    assert exc.value.code == "member_not_found"


def test_export_contains_profile_demographics_consents_and_history():
    member = services.member_enroll(
        source="portal",
        email="exp@example.com",
        first_name="Exa",
        birth_date=dt.date(1990, 5, 4),
        demographics={"age_band": "25-34", "kids_count": 2},
        consents=[("marketing", "sms", True)],
        consent_wording_version="v3",
    )
    document = services.member_export(member=member)
    profile = document["member"]["profile"]
    assert profile["email"] == "exp@example.com" and profile["birth_date"] == "1990-05-04"
    assert profile["age_band"] == "25-34" and profile["kids_count"] == 2
    assert document["member"]["consents"] == [
        {
            "purpose": "marketing",
            "channel": "sms",
            "granted": True,
            "updated_at": member.consents.get().updated_at.isoformat(),
        }
    ]
    assert document["member"]["consent_history"][0]["wording_version"] == "v3"
    assert document["member_number"] == member.member_number


def test_erase_removes_personal_data_keeps_the_number_withdraws_consent_and_is_audited():
    staff = StaffFactory()
    user = StaffFactory(username="portal-user", is_staff=False, is_superuser=False)
    member = services.member_enroll(
        source="portal",
        email="gone@example.com",
        first_name="Gone",
        last_name="Soon",
        phone="+100",
        birth_date=dt.date(1980, 1, 1),
        postal_code="999",
        demographics={"income_band": "50-74K"},
        consents=[("marketing", "email", True)],
        user=user,
    )
    services.member_erase(member=member, actor=staff, reason="GDPR art. 17 request")
    member.refresh_from_db()
    assert member.status == MemberStatus.ERASED
    assert (
        member.email,
        member.first_name,
        member.last_name,
        member.phone,
        member.birth_date,
        member.postal_code,
        member.income_band,
        member.user,
    ) == (None, "", "", "", None, "", "", None)
    assert member.member_number  # kept: accounting records still point at it
    assert not selectors.consent_granted(member=member, purpose="marketing", channel="email")
    assert audit_events_for(target=member).get(action="member.erase").reason == "GDPR art. 17 request"
    profile = services.member_export(member=member)["member"]["profile"]
    assert profile["email"] is None and profile["first_name"] == ""
    with pytest.raises(Conflict):
        services.member_update(member=member, first_name="Back")
    with pytest.raises(Conflict):
        services.member_erase(member=member, actor=staff, reason="twice")


def test_erased_email_can_enroll_again():
    member = MemberFactory(email="again@example.com")
    services.member_erase(member=member, actor=None, reason="request")
    assert services.member_enroll(source="portal", email="again@example.com").pk != member.pk


def test_link_user_refuses_a_second_login():
    member = MemberFactory()
    first = StaffFactory(username="a1", is_staff=False)
    services.member_link_user(member=member, user=first)
    with pytest.raises(Conflict) as exc:
        services.member_link_user(member=member, user=StaffFactory(username="a2", is_staff=False))
    assert exc.value.code == "member_has_login"
