"""Every way in enrolls through the one workflow and writes the same rows: the API, the admin's
"add member", the members CSV import and the bulk import (demo / Complete Journey)."""

from __future__ import annotations

import datetime as dt

import pytest
import tablib
from django.urls import reverse

from loyalty.core import clock
from loyalty.imports.complete_journey import PARTNER_NAME, Dataset, Household, complete_journey_import
from loyalty.ledger.models import Account, AccountKind
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import OutboxEvent, PartnerMember
from loyalty.tiers.models import MemberTier, TierChange
from loyalty.tiers.services import tier_create, tier_policy_set
from members import luhn
from members.models import Member
from members.resources import MemberResource
from tests.api.conftest import key_client
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db
T = dt.datetime(2030, 3, 4, 10, 30, tzinfo=dt.UTC)


@pytest.fixture
def program(db):
    clock.set_now(T)
    program = program_default()
    tier_policy_set(program=program, window="rolling_12_months", downgrade_policy="one_step")
    tier_create(program=program, name="Member", rank=0)
    tier_create(program=program, name="Silver", rank=1, thresholds={"spend": 100})
    return program


def _rows(member: Member, program) -> dict:
    """What enrolling ``member`` wrote, without ids, numbers and the path's own source/partner;
    times as offsets from the enrollment."""
    at = member.enrolled_at

    def since(value: dt.datetime | None) -> dt.timedelta | None:
        return None if value is None else value - at

    account = Account.objects.get(member=member, program=program)
    status = MemberTier.objects.select_related("tier", "earned_tier").get(member=member, program=program)
    events = OutboxEvent.objects.filter(member=member)
    return {
        "member": (
            member.status,
            len(member.member_number) == 12 and luhn.is_valid(member.member_number),
            len(member.referral_code),
        ),
        "account": (
            account.kind,
            account.available,
            account.pending,
            account.debt,
            account.earned,
            account.last_activity_at,
            since(account.opened_at),
        ),
        "tier": (
            status.tier.name,
            status.earned_tier.name,
            since(status.tier_since),
            since(status.period_start),
            status.period_end == status.period_start.replace(year=status.period_start.year + 1),
        ),
        "history": [
            (from_tier, to_tier, reason, since(changed_at))
            for from_tier, to_tier, reason, changed_at in TierChange.objects.filter(status=status).values_list(
                "from_tier", "to_tier__name", "reason", "changed_at"
            )
        ],
        "events": [
            (
                e.event_type,
                sorted(e.payload),
                e.payload["member_number"] == member.member_number,
                e.payload["program"],
                since(e.created_at),
            )
            for e in events
        ],
        "links": [
            (via, since(linked))
            for via, linked in PartnerMember.objects.filter(member=member).values_list("via", "linked_at")
        ],
    }


def _source_and_partner(member: Member) -> tuple[str, str | None, list[str]]:
    event = OutboxEvent.objects.get(member=member, event_type="member.enrolled")
    partner_names = list(PartnerMember.objects.filter(member=member).values_list("partner__name", flat=True))
    return member.enrollment_source, event.payload["source"], partner_names


def _by_api() -> Member:
    api = key_client("Acme")
    response = api.post("/api/v1/members/", {"email": "api@example.com", "first_name": "Api"}, format="json")
    assert response.status_code == 201, response.content
    return Member.objects.get(member_number=response.json()["member_number"])


def _by_admin(client) -> Member:
    client.force_login(StaffFactory(username="boss"))
    response = client.post(
        reverse("admin:members_member_add"),
        {
            "email": "admin@example.com",
            "first_name": "Admin",
            "preferred_language": "en",
            "consent_events-TOTAL_FORMS": "0",
            "consent_events-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return Member.objects.get(email="admin@example.com")


def _by_csv() -> Member:
    data = tablib.Dataset(
        ["", "csv-1", "csv@example.com", "Csv"], headers=["member_number", "external_id", "email", "first_name"]
    )
    result = MemberResource().import_data(data, dry_run=False, rollback_on_validation_errors=True)
    assert not result.has_errors() and not result.has_validation_errors()
    return Member.objects.get(external_id="csv-1")


def _by_bulk_import(program) -> Member:
    household = Household(household_id=99, demographics={"age_band": "25-34"}, baskets=[])
    dataset = Dataset(households=[household], campaigns=[], targets=[], redemptions=[], shift_days=0)
    report = complete_journey_import(dataset=dataset, program=program)
    assert report.new_members == 1
    return Member.objects.get(external_id="cj-99")


def test_every_way_in_writes_member_account_base_tier_link_and_enrolled_event_alike(program, client):
    members = {
        "api": _by_api(),
        "admin": _by_admin(client),
        "csv": _by_csv(),
        "bulk import": _by_bulk_import(program),
    }

    rows = {path: _rows(member, program) for path, member in members.items()}
    zero = dt.timedelta(0)
    expected = {
        "member": ("active", True, 8),
        "account": (AccountKind.MEMBER, 0, 0, 0, 0, None, zero),
        "tier": ("Member", "Member", zero, zero, True),
        "history": [(None, "Member", "initial", zero)],
        "events": [
            ("member.enrolled", ["member_number", "partner_id", "program", "source"], True, program.name, zero),
        ],
    }
    for path, found in rows.items():
        assert {k: v for k, v in found.items() if k != "links"} == expected, path
    assert rows["api"]["links"] == rows["bulk import"]["links"] == [("enrolled", zero)]
    assert rows["admin"]["links"] == rows["csv"]["links"] == []
    # enrolled now; an imported household a minute before its first basket (it has none: before now)
    assert [m.enrolled_at for m in members.values()] == [T, T, T, T - dt.timedelta(minutes=1)]
    assert _source_and_partner(members["api"]) == ("partner", "partner", ["Acme"])
    assert _source_and_partner(members["admin"]) == ("staff", "staff", [])
    assert _source_and_partner(members["csv"]) == ("import", "import", [])
    assert _source_and_partner(members["bulk import"]) == ("import", "import", [PARTNER_NAME])
