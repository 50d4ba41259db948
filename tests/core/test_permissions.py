"""Every admin screen x every staff role x every action, against the written-down matrix
(docs/permissions.md): Marketing designs the program, Support serves members, Analyst reads."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory

from loyalty.core.roles import ROLES

pytestmark = pytest.mark.django_db

READ = "view"
READ_EXPORT = "view export"
DESIGN = "view add change delete delete_selected"

# model -> role -> what the role may do on its admin screen. A model or role not named: nothing.
# delete_selected is Django's bulk delete; other names are the screen's own actions.
MATRIX: dict[str, dict[str, str]] = {
    "core.AuditEvent": {"Analyst": READ},
    "members.Member": {
        "Marketing": READ_EXPORT,
        "Support": "view add change import export suspend_members reactivate_members close_members erase_members",
        "Analyst": READ_EXPORT,
    },
    "partners.Partner": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "partners.PartnerMember": {"Support": READ, "Analyst": READ},
    "partners.PartnerAPIKey": {"Analyst": READ},
    "partners.WebhookEndpoint": {"Analyst": READ},
    "partners.WebhookDelivery": {"Analyst": READ},
    "partners.OutboxEvent": {"Analyst": READ},
    "ledger.Program": {"Marketing": "view change", "Support": READ, "Analyst": READ},
    "ledger.Account": {"Marketing": READ, "Support": "view adjust_points", "Analyst": READ},
    "ledger.Purchase": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "ledger.Return": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "ledger.LedgerTransaction": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "ledger.Redemption": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "tiers.TierPolicy": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
    "tiers.Tier": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
    "tiers.MemberTier": {
        "Marketing": READ,
        "Support": "view add set_manual_tier end_manual_tier",
        "Analyst": READ,
    },
    "activity.EarningRule": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
    "activity.EventRule": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
    "activity.EventType": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
    "activity.MemberEvent": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "activity.StaffJob": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "segments.Segment": {
        "Marketing": f"{DESIGN} export refresh_segments snapshot_segments export_members_csv",
        "Support": "view export export_members_csv",
        "Analyst": "view export export_members_csv",
    },
    "segments.SegmentMembership": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "segments.ScoreRun": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "segments.MemberScore": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "offers.Reward": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
    "offers.RewardRedemption": {"Marketing": "view cancel_reward_redemptions", "Support": READ, "Analyst": READ},
    "offers.CouponBatch": {"Marketing": "view add", "Support": READ, "Analyst": READ},
    "offers.Coupon": {"Marketing": "view import export cancel_coupons", "Support": READ_EXPORT, "Analyst": READ_EXPORT},
    "offers.CouponUse": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "offers.Offer": {
        "Marketing": f"{DESIGN} publish_offers pause_offers resume_offers end_offers",
        "Support": READ,
        "Analyst": READ,
    },
    "offers.OfferRedemption": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "offers.OfferActivation": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "messaging.Content": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
    "messaging.MessagingPolicy": {"Marketing": "view add change", "Support": READ, "Analyst": READ},
    "messaging.ContactPreference": {"Marketing": READ, "Support": "view change", "Analyst": READ},
    "messaging.Message": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "offers.MemberOfferRank": {"Marketing": READ, "Support": READ, "Analyst": READ},
    # engagement: surveys (with results and CSV export) and referrals
    "engagement.Survey": {"Marketing": "view add change delete", "Support": READ, "Analyst": READ},
    "engagement.ReferralSettings": {"Marketing": "view add change", "Support": READ, "Analyst": READ},
    "engagement.Referral": {"Marketing": READ, "Support": READ, "Analyst": READ},
    "campaigns.Campaign": {
        "Marketing": f"{DESIGN} launch_campaigns schedule_campaigns unschedule_campaigns finish_campaigns cancel_campaigns",
        "Support": READ,
        "Analyst": READ,
    },
}
# engagement: challenges and badges, community events, birthdays and anniversaries
MATRIX.update(
    {
        "engagement.Badge": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
        "engagement.Challenge": {"Marketing": f"{DESIGN} recompute_progress", "Support": READ, "Analyst": READ},
        "engagement.ChallengeProgress": {"Marketing": READ, "Support": READ, "Analyst": READ},
        "engagement.ChallengeCompletion": {"Marketing": READ, "Support": READ, "Analyst": READ},
        "engagement.MemberBadge": {"Marketing": READ, "Support": READ, "Analyst": READ},
        "engagement.CommunityEvent": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
        "engagement.EventRegistration": {"Marketing": "view check_in_attendance", "Support": READ, "Analyst": READ},
        "engagement.CelebrationPolicy": {"Marketing": DESIGN, "Support": READ, "Analyst": READ},
        "engagement.CelebrationAward": {"Marketing": READ, "Support": READ, "Analyst": READ},
    }
)
STAFF_ROLES = [*ROLES, "no role"]


def registered_models():
    return [model for model in apps.get_models() if admin.site.is_registered(model)]


def staff(role: str):
    user = get_user_model().objects.create_user(f"staff-{role}".replace(" ", "-"), is_staff=True)
    if role in ROLES:
        user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)  # fresh: no cached permissions


def allowed(model_admin: admin.ModelAdmin, user) -> set[str]:
    """What ``user`` may do on the screen: the admin's own permission checks and its actions."""
    request = RequestFactory().get("/admin/")
    request.user = user
    if not model_admin.has_view_or_change_permission(request) and not model_admin.has_add_permission(request):
        return set()
    actions = {
        name
        for name in ("view", "add", "change", "delete", "import", "export")
        if getattr(model_admin, f"has_{name}_permission", lambda request: False)(request)
    }
    if model_admin.has_view_or_change_permission(request):  # actions run from the list
        actions |= set(model_admin.get_actions(request))
    return actions


def test_the_matrix_names_only_registered_screens_and_known_roles():
    labels = {model._meta.label for model in registered_models()}

    assert set(MATRIX) <= labels
    assert {role for rules in MATRIX.values() for role in rules} <= set(ROLES)


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_each_role_may_do_on_every_admin_screen_exactly_what_the_matrix_says(role):
    user = staff(role)
    actual = {}
    expected = {}
    for model in registered_models():
        label = model._meta.label
        actual[label] = allowed(admin.site.get_model_admin(model), user)
        expected[label] = set(MATRIX.get(label, {}).get(role, "").split())

    differences = {label: (actual[label], expected[label]) for label in actual if actual[label] != expected[label]}
    assert differences == {}


def test_superuser_may_see_every_screen():
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    request = RequestFactory().get("/admin/")
    request.user = root

    assert all(admin.site.get_model_admin(m).has_view_permission(request) for m in registered_models())


@pytest.mark.parametrize("role", ["Marketing", "Analyst"])
def test_view_only_roles_cannot_import_members(role):
    client = Client()
    client.force_login(staff(role))

    assert client.get("/admin/members/member/import/").status_code == 403
    assert client.post("/admin/members/member/import/", {}).status_code == 403


def test_support_can_open_the_member_import():
    client = Client()
    client.force_login(staff("Support"))

    assert client.get("/admin/members/member/import/").status_code == 200


def test_support_cannot_change_tier_definitions():
    client = Client()
    client.force_login(staff("Support"))

    assert client.get("/admin/tiers/tier/add/").status_code == 403


@pytest.mark.parametrize("role", ["Support", "Analyst"])
def test_only_marketing_among_roles_changes_earning_rules(role):
    client = Client()
    client.force_login(staff(role))

    assert client.post("/admin/activity/earningrule/add/", {"name": "x"}).status_code == 403
