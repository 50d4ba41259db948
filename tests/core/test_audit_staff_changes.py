"""Every change staff make in the admin to partners, API keys, earning rules, event rules, webhook
endpoints, users and groups goes through a service and leaves an AuditEvent: who, what, before, after."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from loyalty.activity.models import EarningRule, EventRule, EventType
from loyalty.core.models import AuditEvent
from loyalty.ledger.models import Program
from loyalty.partners.models import Partner, PartnerAPIKey, WebhookEndpoint
from loyalty.partners.services import partner_key_create
from loyalty.partners.webhooks import webhook_secret_encrypt
from tests.core.test_permissions import staff

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def root():
    return User.objects.create_superuser("root", "root@example.com", "x")


@pytest.fixture
def admin_client(root):
    client = Client()
    client.force_login(root)
    return client


def audit(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("id")


def posted(response):
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


def delete_via_admin(client, url: str):
    return posted(client.post(url, {"post": "yes"}))


PARTNER_FORM = {
    "name": "Bookshop",
    "kind": "coalition",
    "status": "active",
    "earn_multiplier": "1",
    "cost_per_point": "0.01",
}


def test_partner_added_changed_and_deleted_in_the_admin_are_audited(admin_client, root):
    posted(admin_client.post("/admin/partners/partner/add/", PARTNER_FORM))
    partner = Partner.objects.get(name="Bookshop")
    posted(admin_client.post(f"/admin/partners/partner/{partner.pk}/change/", {**PARTNER_FORM, "status": "suspended"}))
    delete_via_admin(admin_client, f"/admin/partners/partner/{partner.pk}/delete/")

    created, changed, deleted = audit("partner.created"), audit("partner.changed"), audit("partner.deleted")
    assert created.actor == root and created.after["status"] == "active" and created.target_id == str(partner.pk)
    assert (changed.before, changed.after) == ({"status": "active"}, {"status": "suspended"})
    assert deleted.before["name"] == "Bookshop" and not Partner.objects.filter(pk=partner.pk).exists()


def test_api_key_issued_revoked_and_deleted_in_the_admin_are_audited_without_the_secret(admin_client, root):
    partner = Partner.objects.create(name="Grocer")
    response = posted(
        admin_client.post(
            "/admin/partners/partnerapikey/add/",
            {"name": "till", "partner": partner.pk, "scopes": ["read"], "expiry_date_0": "", "expiry_date_1": ""},
            follow=False,
        )
    )
    key = PartnerAPIKey.objects.get(partner=partner)
    posted(
        admin_client.post(
            f"/admin/partners/partnerapikey/{key.pk}/change/",
            {
                "name": "till",
                "partner": partner.pk,
                "scopes": ["read"],
                "revoked": "on",
                "expiry_date_0": "",
                "expiry_date_1": "",
            },
        )
    )
    delete_via_admin(admin_client, f"/admin/partners/partnerapikey/{key.pk}/delete/")

    issued = audit("api_key.created")
    assert response.status_code == 302 and issued.actor == root and issued.after["scopes"] == ["read"]
    assert audit("api_key.changed").after == {"revoked": True}
    assert audit("api_key.deleted").before["prefix"] == key.prefix
    assert {e.target_id for e in AuditEvent.objects.filter(action__startswith="api_key.")} == {key.prefix}
    trail = str(list(AuditEvent.objects.values_list("target_id", "target_repr", "before", "after")))
    assert key.hashed_key not in trail


def earning_rule_form(program: Program, **changes) -> dict:
    form = {
        "program": program.pk,
        "name": "Double on books",
        "kind": "category_multiplier",
        "is_active": "on",
        "priority": "0",
        "stackable": "on",
        "partner": "",
        "categories": ["books"],
        "min_spend": "0",
        "multiplier": "2",
        "bonus_points": "0",
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_until_0": "",
        "valid_until_1": "",
        "cap_per_day": "",
        "cap_per_month": "",
    }
    return {**form, **changes}


def test_earning_rule_added_changed_and_deleted_in_the_admin_are_audited(admin_client):
    program = Program.objects.get(is_default=True)
    posted(admin_client.post("/admin/activity/earningrule/add/", earning_rule_form(program)))
    rule = EarningRule.objects.get(name="Double on books")
    posted(
        admin_client.post(f"/admin/activity/earningrule/{rule.pk}/change/", earning_rule_form(program, multiplier="3"))
    )
    delete_via_admin(admin_client, f"/admin/activity/earningrule/{rule.pk}/delete/")

    assert audit("earning_rule.created").after["categories"] == ["books"]
    assert audit("earning_rule.changed").before == {"multiplier": "2.000"}
    assert audit("earning_rule.changed").after == {"multiplier": "3.000"}
    assert audit("earning_rule.deleted").target_id == str(rule.pk)


def test_event_rule_added_changed_and_deleted_in_the_admin_are_audited(admin_client):
    program = Program.objects.get(is_default=True)
    event_type = EventType.objects.get(code="app_login")
    form = {
        "program": program.pk,
        "event_type": event_type.pk,
        "points": "10",
        "limit_per_day": "1",
        "limit_per_week": "",
        "limit_lifetime": "",
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_until_0": "",
        "valid_until_1": "",
        "is_active": "on",
    }
    posted(admin_client.post("/admin/activity/eventrule/add/", form))
    rule = EventRule.objects.get(event_type=event_type, points=10)
    posted(admin_client.post(f"/admin/activity/eventrule/{rule.pk}/change/", {**form, "points": "15"}))
    delete_via_admin(admin_client, f"/admin/activity/eventrule/{rule.pk}/delete/")

    assert audit("event_rule.created").after["points"] == 10
    assert (audit("event_rule.changed").before, audit("event_rule.changed").after) == ({"points": 10}, {"points": 15})
    assert audit("event_rule.deleted").before["event_type"] == event_type.pk


def test_webhook_endpoint_switched_off_and_deleted_in_the_admin_is_audited_and_kept(admin_client):
    partner, _, _ = partner_key_create(partner_name="Hooked", scopes=["read"])
    endpoint = WebhookEndpoint.objects.create(
        partner=partner,
        url="https://hooks.example.com/x",
        event_types=["points.earned"],
        secret_encrypted=webhook_secret_encrypt("whsec_x"),
        created_at="2030-01-01T00:00Z",
    )
    posted(admin_client.post(f"/admin/partners/webhookendpoint/{endpoint.pk}/change/", {}))  # is_active unticked
    delete_via_admin(admin_client, f"/admin/partners/webhookendpoint/{endpoint.pk}/delete/")

    endpoint.refresh_from_db()
    assert audit("webhook_endpoint.changed").after["is_active"] is False
    assert audit("webhook_endpoint.deleted").after["deleted_at"] is not None
    assert endpoint.deleted_at is not None and endpoint.disabled_reason == "deleted by staff"
    assert "whsec_x" not in str(list(AuditEvent.objects.values_list("before", "after")))


def test_staff_user_created_given_a_role_and_deleted_in_the_admin_is_audited(admin_client, root):
    marketing = Group.objects.get(name="Marketing")
    posted(
        admin_client.post(
            "/admin/auth/user/add/",
            {
                "username": "mia",
                "password1": "a long pass phrase 42",
                "password2": "a long pass phrase 42",
                "usable_password": "true",
            },
        )
    )
    mia = User.objects.get(username="mia")
    posted(
        admin_client.post(
            f"/admin/auth/user/{mia.pk}/change/",
            {
                "username": "mia",
                "is_active": "on",
                "is_staff": "on",
                "groups": [marketing.pk],
                "last_login_0": "",
                "last_login_1": "",
                "date_joined_0": "2030-01-01",
                "date_joined_1": "00:00:00",
            },
        )
    )
    delete_via_admin(admin_client, f"/admin/auth/user/{mia.pk}/delete/")

    assert audit("user.created").after["username"] == "mia" and "password" not in audit("user.created").after
    changed = audit("user.changed")
    assert changed.actor == root
    assert changed.before == {"is_staff": False, "groups": []}
    assert changed.after == {"is_staff": True, "groups": ["Marketing"]}
    assert audit("user.deleted").before["groups"] == ["Marketing"]


def test_password_set_in_the_admin_is_audited_without_the_hash(admin_client):
    sam = staff("Support")
    posted(
        admin_client.post(
            f"/admin/auth/user/{sam.pk}/password/",
            {
                "password1": "another long phrase 7",
                "password2": "another long phrase 7",
                "usable_password": "true",
                "set-password": "1",
            },
        )
    )

    sam.refresh_from_db()
    event = audit("user.changed")
    assert sam.check_password("another long phrase 7")
    assert event.after == {"password": "changed"} and sam.password not in str(event.before) + str(event.after)


def test_role_group_permissions_changed_in_the_admin_are_audited(admin_client):
    analyst = Group.objects.get(name="Analyst")
    before = sorted(analyst.permissions.values_list("pk", flat=True))
    posted(admin_client.post(f"/admin/auth/group/{analyst.pk}/change/", {"name": "Analyst", "permissions": before[:1]}))
    posted(admin_client.post("/admin/auth/group/add/", {"name": "Auditors", "permissions": []}))
    delete_via_admin(admin_client, f"/admin/auth/group/{Group.objects.get(name='Auditors').pk}/delete/")

    changed = audit("group.changed")
    assert len(changed.before["permissions"]) == len(before) and len(changed.after["permissions"]) == 1
    assert audit("group.created").after == {"name": "Auditors", "permissions": []}
    assert audit("group.deleted").before["name"] == "Auditors"


def test_bulk_delete_action_goes_through_the_service_for_each_row(admin_client):
    a, b = Partner.objects.create(name="A"), Partner.objects.create(name="B")
    posted(
        admin_client.post(
            "/admin/partners/partner/", {"action": "delete_selected", "_selected_action": [a.pk, b.pk], "post": "yes"}
        )
    )

    assert set(AuditEvent.objects.filter(action="partner.deleted").values_list("target_id", flat=True)) == {
        str(a.pk),
        str(b.pk),
    }


def test_partner_and_key_made_by_the_partner_key_create_command_are_audited_without_the_secret():
    partner, created, raw = partner_key_create(partner_name="Cli Shop", scopes=["write"])
    key = PartnerAPIKey.objects.get(partner=partner)
    made = audit("api_key.created")
    assert created and audit("partner.created").target_id == str(partner.pk)
    assert made.actor_label == "manage.py partner_key_create" and made.target_id == key.prefix
    assert made.after["scopes"] == ["write"]
    assert raw not in str(made.after) and key.pk not in str(made.after) and key.pk != made.target_id


def test_webhook_endpoint_added_in_the_admin_is_registered_checked_and_audited(admin_client, settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = False
    partner, _, _ = partner_key_create(partner_name="Hooks by staff", scopes=["read"])
    form = {"partner": partner.pk, "url": "https://1.1.1.1/hook", "event_types": ["points.earned"]}
    posted(admin_client.post("/admin/partners/webhookendpoint/add/", form))
    refused = admin_client.post("/admin/partners/webhookendpoint/add/", {**form, "url": "https://10.0.0.1/hook"})

    endpoint = WebhookEndpoint.objects.get()
    made = audit("webhook_endpoint.created")
    assert made.target_id == str(endpoint.pk) and made.after["url"] == "https://1.1.1.1/hook"
    assert "whsec_" not in str(made.after) and endpoint.secret_encrypted not in str(made.after)
    assert refused.status_code == 200 and WebhookEndpoint.objects.count() == 1  # the form error, nothing written
