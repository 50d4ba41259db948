"""The member portal in a real browser (Debian's Chromium at phone width): join with the
confirmation email, log in, see the balance the partner API reports, change a consent, download
my data, erase; every page passes axe-core, fits 360 px and keeps the Content-Security-Policy."""

from __future__ import annotations

import json
import re

import pytest
from django.core import mail

from loyalty.imports.management.commands.load_demo import demo_program_configure
from members.models import ConsentEvent, Member, MemberStatus
from members.selectors import member_get_by_number
from tests.api.conftest import key_client, purchase_body
from tests.e2e.conftest import check_page, log_in, screenshot
from tests.portal.conftest import PASSWORD, make_member, shop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def program(transactional_db):
    return demo_program_configure()


def test_join_confirm_log_in_change_consent_download_and_erase(phone, program, tmp_path):
    page = phone
    page.goto("/")
    check_page(page, "welcome")
    page.get_by_role("link", name="Join for free").click()
    check_page(page, "join")
    page.get_by_label("First name:", exact=True).fill("Ada")
    page.get_by_label("Last name:", exact=True).fill("Lovelace")
    page.get_by_label("Email:", exact=True).fill("ada@example.com")
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password again:", exact=True).fill(PASSWORD)
    page.get_by_label("Send me offers and news by email").check()
    page.get_by_role("button", name="Join").click()
    page.wait_for_url("**/join/sent/")
    check_page(page, "join-sent")

    link = re.search(r"http://[^/]+(/join/confirm/\S+/)", mail.outbox[-1].body).group(1)
    page.goto(link)
    assert page.get_by_role("heading", name="Your email is confirmed").is_visible()
    log_in(page, "ada@example.com", PASSWORD)
    member = Member.objects.get(email="ada@example.com")
    assert page.get_by_test_id("available").inner_text().startswith("0")

    page.get_by_role("link", name="My data").click()
    page.get_by_role("link", name=re.compile("Change what you allow us")).click()
    page.get_by_label("Send me offers and news by text message (SMS)").check()
    page.get_by_label("Send me offers and news by email").uncheck()
    page.get_by_role("button", name="Save my choices").click()
    assert page.get_by_text("Your choices are saved.").is_visible()
    check_page(page, "consents")
    latest = {(e.channel, e.granted) for e in ConsentEvent.objects.filter(member=member, source="portal")}
    assert {("sms", True), ("email", False)} <= latest

    page.get_by_role("link", name="Back to my data").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="As JSON").click()
    saved = tmp_path / "my-data.json"
    download_info.value.save_as(saved)
    assert json.loads(saved.read_text())["member_number"] == member.member_number

    page.get_by_role("link", name="Erase my data").click()
    check_page(page, "erase")
    page.get_by_label("Your password:", exact=True).fill(PASSWORD)
    page.get_by_label("I understand this cannot be undone here").check()
    page.get_by_role("button", name="Erase my data").click()
    page.wait_for_url("**/goodbye/?erased=1")
    assert page.get_by_role("heading", name="Your data is erased").is_visible()
    member.refresh_from_db()
    assert member.status == MemberStatus.ERASED and member.email is None


def test_home_shows_the_balance_the_partner_api_reports(phone, program):
    api = key_client("Acme")
    number = api.post("/api/v1/members/", {"email": "ann@example.com", "first_name": "Ann"}, format="json").json()[
        "member_number"
    ]
    assert api.post("/api/v1/purchases/", purchase_body(number, occurred_at=_now()), format="json").status_code == 201
    balance = api.get(f"/api/v1/members/{number}/balance/").json()
    member = member_get_by_number(member_number=number)
    from django.contrib.auth import get_user_model

    from members.services import member_link_user

    user = get_user_model().objects.create_user("ann@example.com", "ann@example.com", PASSWORD)
    member_link_user(member=member, user=user)

    log_in(phone, "ann@example.com", PASSWORD)

    assert phone.get_by_test_id("available").locator(".figure").inner_text() == f"{balance['available']:,}"
    assert f"On the way: {balance['pending']:,}" in phone.locator("main").inner_text()


def _now() -> str:
    from loyalty.core import clock

    return clock.now().isoformat()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_member_page_passes_axe_fits_the_width_and_keeps_the_policy(request, program, size):
    page = request.getfixturevalue(size)
    member = make_member(email="mia@example.com")
    shop(member, amount="80.00", category="PRODUCE / APPLES")
    shop(member, amount="12.00")
    for name, url in [
        ("welcome", "/"),
        ("join", "/join/"),
        ("login", "/login/"),
        ("password-reset", "/password-reset/"),
    ]:
        page.goto(url)
        check_page(page, name)
    log_in(page, "mia@example.com", PASSWORD)

    for name, url in [
        ("home", "/home/"),
        ("card", "/card/"),
        ("history", "/history/"),
        ("my-data", "/my-data/"),
        ("consents", "/my-data/consents/"),
        ("close", "/my-data/close/"),
    ]:
        page.goto(url)
        check_page(page, name)
    page.goto("/card/")
    page.get_by_role("button", name="Show a one-time code").click()
    assert re.fullmatch(r"[A-Z0-9]{5} [A-Z0-9]{5}", page.get_by_test_id("redemption-code").inner_text())
    check_page(page, "card-code")
    page.goto("/history/")
    page.locator(".move a").first.click()
    check_page(page, "movement")
    page.goto("/login/")
    screenshot(page, "login-when-logged-in")
