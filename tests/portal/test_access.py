"""Who reaches which portal page: logged-out visitors are sent to the login, a staff login
without a member gets a page that says so, a member reaches only their own objects (another
member's answer 404), and each page's query count is pinned (the same with more history)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from loyalty.ledger.models import Entry
from tests.core.test_csp import assert_scripts_only_from_self, inline_scripts
from tests.portal.conftest import logged_in, shop

pytestmark = pytest.mark.django_db

MEMBER_PAGES = [
    "/home/",
    "/card/",
    "/history/",
    "/my-data/",
    "/my-data/consents/",
    "/my-data/export.json",
    "/my-data/export.zip",
    "/my-data/close/",
    "/my-data/erase/",
    "/offers/",
    "/rewards/",
    "/wallet/",
]
PUBLIC_PAGES = ["/", "/join/", "/join/sent/", "/login/", "/password-reset/", "/password-reset/sent/", "/goodbye/"]


@pytest.mark.parametrize(
    "url", MEMBER_PAGES + ["/history/1/", "/rewards/1/redeem/", "/wallet/1/", "/wallet/rewards/1/cancel/"]
)
def test_logged_out_visitors_are_sent_to_the_login(client, program, url):
    response = client.get(url)

    assert response.status_code == 302 and response["Location"] == f"/login/?next={url}"


@pytest.mark.parametrize("url", MEMBER_PAGES)
def test_a_staff_login_without_a_member_gets_a_clear_page(program, url):
    staff = get_user_model().objects.create_user("sam", password="pw-staff-123456", is_staff=True)
    client = Client()
    client.force_login(staff)

    response = client.get(url)

    assert response.status_code == 403
    assert b"This login has no membership" in response.content


def test_a_members_movement_is_404_for_another_member(member, other_member):
    shop(member)
    transaction_id = Entry.objects.get(account__member=member).transaction_id

    assert logged_in(member).get(f"/history/{transaction_id}/").status_code == 200
    assert logged_in(other_member).get(f"/history/{transaction_id}/").status_code == 404


def test_an_unknown_movement_is_404(member, member_client):
    assert member_client.get("/history/999999/").status_code == 404


@pytest.mark.parametrize("url", PUBLIC_PAGES + ["/manifest.webmanifest"])
def test_public_pages_need_no_login(client, program, url):
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", MEMBER_PAGES[:5] + ["/my-data/close/", "/offers/", "/rewards/", "/wallet/"])
def test_member_pages_carry_the_policy_and_run_no_inline_script(member_client, url):
    response = member_client.get(url)

    assert_scripts_only_from_self(response)
    if response["Content-Type"].startswith("text/html"):
        assert inline_scripts(response.content.decode()) == []


@pytest.mark.parametrize("url", PUBLIC_PAGES)
def test_public_pages_carry_the_policy_and_run_no_inline_script(client, program, url):
    response = client.get(url)

    assert_scripts_only_from_self(response)
    assert inline_scripts(response.content.decode()) == []


# Queries per page, pinned: the session and its user, the member, then the page's own reads
# (configuration reads are cached; the first request in a test warms them).
QUERY_BUDGET = {
    "/home/": 25,
    "/offers/": 13,
    "/card/": 3,
    "/history/": 7,
    "/history/?kind=earn&since=2020-01-01": 7,
    "/my-data/": 3,
    "/my-data/consents/": 5,
    "/my-data/export.json": 26,  # every app's export section (offers: 3, messaging: 2, surveys and referrals: 4, engagement: 5) reads its own tables
}


@pytest.mark.parametrize(("url", "budget"), QUERY_BUDGET.items())
def test_each_page_makes_a_constant_number_of_queries(member, django_assert_num_queries, url, budget):
    client = logged_in(member)
    shop(member)
    client.get(url)  # warm the configuration cache
    with django_assert_num_queries(budget):
        assert client.get(url).status_code == 200
    for _ in range(4):
        shop(member, amount="90.00", category="PRODUCE / APPLES")
    with django_assert_num_queries(budget):
        client.get(url)
