"""The staff dashboards in a real browser (Debian's Chromium) on demo data (load_demo, 25 households,
summaries refreshed): every dashboard renders its charts and tables for the Analyst, passes axe-core,
does not scroll sideways and keeps the Content-Security-Policy. Screenshots: test-artifacts/e2e/."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from loyalty.imports.management.commands.load_demo import DEMO_PASSWORD
from tests.e2e.conftest import check_page

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

BOARDS = {
    "health": "Program health",
    "tiers": "Tiers",
    "segments": "Segments",
    "offers": "Offers and campaigns",
    "profitability": "Profitability and settlement",
}


@pytest.fixture
def demo(transactional_db):
    call_command("load_demo", "--households", "25", verbosity=0)
    call_command("refresh_dashboards", "--full", verbosity=0)


def staff_log_in(page, username: str = "analyst", password: str = DEMO_PASSWORD) -> None:
    page.goto("/staff/")
    page.wait_for_url("**/admin/login/**")
    page.get_by_label("Username:").fill(username)
    page.get_by_label("Password:").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/staff/")


def test_every_dashboard_renders_on_demo_data_for_the_analyst(desktop, demo):
    page = desktop
    staff_log_in(page)
    check_page(page, "dashboards-index")
    for slug, title in BOARDS.items():
        page.get_by_role("navigation", name="Dashboards").get_by_role("link", name=title).click()
        page.wait_for_url(f"**/staff/{slug}/")
        assert page.get_by_role("heading", level=1, name=title).is_visible()
        charts = page.locator("svg.chart").count()
        assert charts >= 1
        assert page.locator("table").count() >= charts
        check_page(page, f"dashboards-{slug}")


def test_program_health_fits_a_phone_and_filters_by_dates(phone, demo):
    page = phone
    staff_log_in(page)
    page.goto("/staff/health/")
    check_page(page, "dashboards-health")
    page.get_by_label("To", exact=True).fill("2000-01-01")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_text("The end of the range must not be before its start.").is_visible()
    assert page.locator("svg.chart").count() == 0


def test_support_sees_only_program_health(desktop, demo):
    page = desktop
    staff_log_in(page, "support")
    links = page.get_by_role("navigation", name="Dashboards").get_by_role("link")
    assert [name for name in links.all_inner_texts() if name != "Admin"] == ["Program health"]
    response = page.goto("/staff/profitability/")
    assert response.status == 403
