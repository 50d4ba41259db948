"""Staff screens: tiers with inline thresholds and perks, member tier status with history,
manual tier action. Every change goes through a service and is audited."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from loyalty.core import clock
from loyalty.core.models import AuditEvent
from loyalty.tiers.models import MemberTier, Tier, TierPolicy
from tests.factories import MemberFactory, StaffFactory, UserFactory
from tests.tiers.conftest import at, buy, make_program, status_of, tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = StaffFactory(username="boss")
    client.force_login(staff)
    return client, staff


def _inline(prefix, rows):
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": "0"}
    for number, row in enumerate(rows):
        data.update({f"{prefix}-{number}-{key}": value for key, value in row.items()})
    return data


def test_tier_is_defined_with_inline_thresholds_and_perks_and_audited(staff_client):
    client, staff = staff_client
    program = make_program(tiers=[("Base", "any", {})])
    assert client.get(reverse("admin:tiers_tier_add")).status_code == 200
    response = client.post(
        reverse("admin:tiers_tier_add"),
        {
            "program": program.pk,
            "name": "Gold",
            "rank": "3",
            "combine": "all",
            "description": "",
            "earn_multiplier": "1.25",
            "exclusive_rewards": "on",
            **_inline("thresholds", [{"metric": "spend", "minimum": "1000"}, {"metric": "purchases", "minimum": "12"}]),
            **_inline("perks", [{"position": "0", "title": "Lounge access", "description": ""}]),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    gold = Tier.objects.get(program=program, name="Gold")
    assert gold.combine == "all" and gold.exclusive_rewards and not gold.early_access
    assert {t.metric: t.minimum for t in gold.thresholds.all()} == {"spend": 1000, "purchases": 12}
    assert [p.title for p in gold.perks.all()] == ["Lounge access"]
    audit = AuditEvent.objects.get(action="tier.create", target_id=str(gold.pk))
    assert audit.actor == staff and "spend >= 1000.00" in audit.after["thresholds"]
    assert client.get(reverse("admin:tiers_tier_change", args=[gold.pk])).status_code == 200


def test_fractional_points_threshold_is_refused_with_a_form_error(staff_client):
    client, _ = staff_client
    program = make_program(tiers=[("Base", "any", {})])
    response = client.post(
        reverse("admin:tiers_tier_add"),
        {
            "program": program.pk,
            "name": "Odd",
            "rank": "1",
            "combine": "any",
            "earn_multiplier": "1",
            **_inline("thresholds", [{"metric": "points", "minimum": "10.5"}]),
            **_inline("perks", []),
        },
    )
    assert response.status_code == 200 and "whole numbers" in response.content.decode()
    assert not Tier.objects.filter(name="Odd").exists()


def test_tier_policy_is_saved_through_the_service(staff_client):
    client, staff = staff_client
    program = make_program()
    policy = TierPolicy.objects.get(program=program)
    response = client.post(
        reverse("admin:tiers_tierpolicy_change", args=[policy.pk]),
        {"window": "rolling_12_months", "downgrade_policy": "one_step", "grace_days": "30"},
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.window, policy.downgrade_policy, policy.grace_days) == ("rolling_12_months", "one_step", 30)
    audit = AuditEvent.objects.filter(action="tier.policy_set", actor=staff).get()
    assert audit.before["window"] == "calendar_year" and audit.after["window"] == "rolling_12_months"


def test_member_tier_status_page_shows_history_inline(staff_client):
    client, _ = staff_client
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "600.00")
    status = status_of(member, program)
    page = client.get(reverse("admin:tiers_membertier_change", args=[status.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Tier history" in body and "Upgrade" in body and "Initial" in body
    assert client.get(reverse("admin:tiers_membertier_changelist")).status_code == 200


def test_manual_tier_action_asks_for_tier_end_date_and_reason_then_calls_the_service(staff_client):
    client, staff = staff_client
    program = make_program()
    member = MemberFactory()
    buy(member, program, "10.00")
    status = status_of(member, program)
    url = reverse("admin:tiers_membertier_changelist")
    page = client.post(url, {"action": "set_manual_tier", "_selected_action": [status.pk]})
    assert page.status_code == 200 and b"reason" in page.content and b"until" in page.content
    until = (clock.today() + dt.timedelta(days=90)).isoformat()
    client.post(
        url,
        {
            "action": "set_manual_tier",
            "_selected_action": [status.pk],
            "apply": "1",
            "tier": tier(program, "Gold").pk,
            "until": until,
            "reason": "status match",
        },
    )
    status.refresh_from_db()
    assert status.tier.name == "Gold" and status.manual_reason == "status match"
    assert AuditEvent.objects.get(action="tier.manual_set").actor == staff


def test_manual_tier_from_another_program_becomes_a_message_not_an_error(staff_client):
    client, _ = staff_client
    program, other = make_program(), make_program()
    member = MemberFactory()
    buy(member, program, "10.00")
    status = status_of(member, program)
    page = client.post(
        reverse("admin:tiers_membertier_changelist"),
        {
            "action": "set_manual_tier",
            "_selected_action": [status.pk],
            "apply": "1",
            "tier": tier(other, "Gold").pk,
            "until": "2099-01-01",
            "reason": "x",
        },
        follow=True,
    )
    assert "tier_program_mismatch" in page.content.decode()
    status.refresh_from_db()
    assert status.tier.name == "Base"


def test_add_page_sets_a_manual_tier_for_a_member_without_status(staff_client):
    client, _ = staff_client
    program = make_program()
    member = MemberFactory()
    assert client.get(reverse("admin:tiers_membertier_add")).status_code == 200
    data = {"member": member.pk, "program": program.pk, "tier_choice": tier(program, "Silver").pk, "reason": "vip"}
    bad = client.post(reverse("admin:tiers_membertier_add"), {**data, "until": "2001-01-01"})
    assert bad.status_code == 200 and "invalid_until" in bad.content.decode()
    assert not MemberTier.objects.exists()
    response = client.post(reverse("admin:tiers_membertier_add"), {**data, "until": "2099-01-01"})
    assert response.status_code == 302
    assert status_of(member, program).tier.name == "Silver"


def test_support_role_can_set_manual_tiers_marketing_cannot(client):
    program = make_program()
    member = MemberFactory()
    buy(member, program, "10.00")
    status = status_of(member, program)
    support = Group.objects.get(name="Support")
    assert support.permissions.filter(codename="manual_tier", content_type__app_label="tiers").exists()
    marketing = Group.objects.get(name="Marketing")
    assert not marketing.permissions.filter(codename="manual_tier").exists()
    request = {
        "action": "set_manual_tier",
        "_selected_action": [status.pk],
        "apply": "1",
        "tier": tier(program, "Gold").pk,
        "until": "2099-01-01",
        "reason": "match",
    }
    url = reverse("admin:tiers_membertier_changelist")
    for username, group, expected in (("mia", marketing, "Base"), ("sam", support, "Gold")):
        user = UserFactory(username=username, is_staff=True)
        user.groups.add(group)
        client.force_login(user)
        client.post(url, request)
        status.refresh_from_db()
        assert status.tier.name == expected
