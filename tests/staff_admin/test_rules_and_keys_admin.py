"""Earning rules with pickers (categories and SKUs from the purchases), API key scopes as
checkboxes with "last used" read-only, and the partner's keys listed on its page."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from loyalty.activity.models import EarningRule
from loyalty.ledger.models import Program
from loyalty.partners.models import Partner, PartnerAPIKey
from loyalty.partners.services import partner_key_create
from tests.factories import StaffFactory
from tests.staff_admin.conftest import member_with_history, role_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def _rule_form(program, **changes):
    form = {
        "program": program.pk,
        "name": "Dairy double",
        "kind": "category_multiplier",
        "is_active": "on",
        "priority": "0",
        "stackable": "on",
        "partner": "",
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
    form.update(changes)
    return form


def test_rule_form_offers_categories_and_skus_seen_in_purchases_not_json(client):
    member_with_history()
    client.force_login(role_user("Marketing"))
    page = client.get(reverse("admin:activity_earningrule_add")).content.decode()
    assert '<option value="DAIRY">DAIRY</option>' in page
    assert '<option value="MILK-1">MILK-1</option>' in page
    assert "selectfilter" in page  # the admin's two-pane picker
    assert '["' not in page.split('id="id_categories"')[1][:300]


def test_rule_saved_with_picked_category_and_typed_sku(client):
    member_with_history()
    client.force_login(role_user("Marketing"))
    program = Program.objects.get(is_default=True)
    response = client.post(
        reverse("admin:activity_earningrule_add"),
        _rule_form(program, categories=["DAIRY"], more_categories="NEW CAT", more_skus="SKU-9, SKU-8"),
    )
    assert response.status_code == 302
    rule = EarningRule.objects.get(name="Dairy double")
    assert (rule.categories, rule.skus) == (["DAIRY", "NEW CAT"], ["SKU-8", "SKU-9"])


def test_category_rule_without_a_category_is_a_form_error(client):
    client.force_login(role_user("Marketing"))
    program = Program.objects.get(is_default=True)
    response = client.post(reverse("admin:activity_earningrule_add"), _rule_form(program))
    assert response.status_code == 200 and "Pick at least one category" in response.content.decode()
    assert not EarningRule.objects.exists()


def test_support_may_read_rules_but_not_add_them(client):
    client.force_login(role_user("Support"))
    program = Program.objects.get(is_default=True)
    assert (
        client.post(reverse("admin:activity_earningrule_add"), _rule_form(program, categories=["X"])).status_code == 403
    )
    assert not EarningRule.objects.exists()


def test_api_key_scopes_are_checkboxes_and_last_used_is_read_only(client):
    partner = Partner.objects.create(name="Grocer")
    client.force_login(StaffFactory())
    page = client.get(reverse("admin:partners_partnerapikey_add") + f"?partner={partner.pk}").content.decode()
    assert 'type="checkbox" name="scopes" value="read"' in page
    assert 'type="checkbox" name="scopes" value="write"' in page
    response = client.post(
        reverse("admin:partners_partnerapikey_add"),
        {"name": "till", "partner": partner.pk, "scopes": ["write", "read"], "expiry_date_0": "", "expiry_date_1": ""},
    )
    assert response.status_code == 302
    key = PartnerAPIKey.objects.get(partner=partner)
    assert key.scopes == ["read", "write"]
    change = client.get(reverse("admin:partners_partnerapikey_change", args=[key.pk])).content.decode()
    assert 'name="last_used_at"' not in change


def test_api_key_without_a_scope_is_refused(client):
    partner = Partner.objects.create(name="Grocer")
    client.force_login(StaffFactory())
    response = client.post(
        reverse("admin:partners_partnerapikey_add"),
        {"name": "till", "partner": partner.pk, "expiry_date_0": "", "expiry_date_1": ""},
    )
    assert response.status_code == 200
    assert not PartnerAPIKey.objects.exists()


def test_partner_page_lists_its_keys_and_links_to_create_one(client):
    partner_key_create(partner_name="Acme Stores", scopes=["read"])
    partner = Partner.objects.get(name="Acme Stores")
    client.force_login(role_user("Analyst"))
    page = client.get(reverse("admin:partners_partner_change", args=[partner.pk])).content.decode()
    assert 'id="partner-keys"' in page and "<td>read</td>" in page and "never" in page
    assert f"partnerapikey/add/?partner={partner.pk}" in page


@pytest.mark.parametrize("role", ["Marketing", "Support"])
def test_partner_page_hides_the_keys_from_roles_that_may_not_view_keys(client, role):
    partner_key_create(partner_name="Acme Stores", scopes=["read"])
    partner = Partner.objects.get(name="Acme Stores")
    client.force_login(role_user(role))
    page = client.get(reverse("admin:partners_partner_change", args=[partner.pk]))
    assert page.status_code == 200 and 'id="partner-keys"' not in page.content.decode()
