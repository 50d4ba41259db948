"""The staff admin in a real browser (Debian's Chromium, 1280 px) as a Marketing and a Support
user: the member 360 page, the account page, the segment builder and the earning rule form.
Screenshots in test-artifacts/e2e/ (admin-*.png)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group

from loyalty.activity.services import enrollment_record, purchase_record
from loyalty.core import clock
from loyalty.imports.management.commands.load_demo import demo_program_configure
from loyalty.ledger.models import Account
from members.models import EnrollmentSource
from tests.e2e.conftest import screenshot
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]
STAFF_PASSWORD = "staff-pass-2026-long"


@pytest.fixture
def data(transactional_db):
    demo_program_configure()
    member = enrollment_record(
        source=EnrollmentSource.STAFF, first_name="Jane", last_name="Doe", email="jane@example.com"
    )
    now = clock.now()
    for i in range(25):
        purchase_record(
            partner=None,
            member=member,
            external_id=f"till-{i}",
            occurred_at=now - dt.timedelta(days=i),
            lines=[
                {"sku": f"SKU-{i % 3}", "category": "DAIRY" if i % 2 else "BAKERY", "quantity": "1", "amount": "50.00"}
            ],
        )
    users = {}
    for role in ("Marketing", "Support"):
        user = UserFactory(username=role.lower(), is_staff=True, password=STAFF_PASSWORD)
        user.groups.add(Group.objects.get(name=role))
        users[role] = user
    return member


def admin_log_in(page, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


@pytest.mark.parametrize("role", ["Marketing", "Support"])
def test_member_360_page_shows_balance_tier_purchases_and_history(desktop, data, role):
    page = desktop
    admin_log_in(page, role.lower())
    assert "Loyalty platform" in page.title()
    page.goto(f"/admin/members/member/{data.pk}/change/")
    balance = page.locator("#m360-balance")
    assert "pending" in balance.inner_text()
    assert "Member" in page.locator("#m360-tier").inner_text()  # the demo's base tier
    assert page.locator("#m360-purchases").is_visible()
    assert "page 1 of 3" in page.content()  # 25 purchases, 10 a page
    assert "Points for 50.00 spent" in page.content()
    assert ("Adjust points" in balance.inner_text()) == (role == "Support")
    screenshot(page, f"admin-member-{role.lower()}")
    page.get_by_role("link", name="older ›").first.click()
    page.wait_for_url("**purchases_page=2**")
    page.wait_for_load_state()
    assert "page 2 of 3" in page.locator("#m360-purchases ~ nav").first.inner_text()
    assert page.csp.violations == []


def test_support_adjusts_points_from_the_account_page_with_a_reason(desktop, data):
    page = desktop
    admin_log_in(page, "support")
    account = Account.objects.get(member=data, kind="member")
    page.goto(f"/admin/ledger/account/{account.pk}/change/")
    assert "Entries (25)" in page.content()
    screenshot(page, "admin-account-support")
    page.get_by_role("link", name="Adjust points").first.click()
    assert "Jane Doe (member" in page.locator("#adjust-who").inner_text()
    page.fill("#id_points", "15")
    page.fill("#id_reason", "Goodwill: broken yoghurt")
    screenshot(page, "admin-adjust-support")
    page.get_by_role("button", name="Adjust points").click()
    page.wait_for_url(f"**/admin/ledger/account/{account.pk}/change/")
    assert "Goodwill: broken yoghurt" in page.content()
    assert page.csp.violations == []


def test_marketing_builds_a_segment_without_errors_before_typing(desktop, data):
    page = desktop
    admin_log_in(page, "marketing")
    page.goto("/admin/segments/segment/add/")
    page.get_by_role("button", name="+ condition").first.click()
    page.wait_for_timeout(900)  # the live preview runs 400 ms after a change
    preview = page.locator(".segment-preview, [class*=preview]").first
    text = preview.inner_text() if preview.count() else page.content()
    assert "not a number" not in text and "errorlist" not in (preview.inner_html() if preview.count() else "")
    screenshot(page, "admin-segment-builder-marketing")
    assert page.csp.violations == []


def test_marketing_earning_rule_form_has_pickers(desktop, data):
    page = desktop
    admin_log_in(page, "marketing")
    page.goto("/admin/activity/earningrule/add/")
    assert page.locator("#id_categories_from, #id_categories").first.is_visible()
    assert "DAIRY" in page.content() and "SKU-1" in page.content()
    screenshot(page, "admin-earning-rule-marketing")
    assert page.csp.violations == []
