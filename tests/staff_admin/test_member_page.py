"""The member 360 page: everything about a member at a glance, a fixed query count, and the
account page paginated; adjusting points names the member, their balance and the reason."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, Entry
from members.models import Member
from tests.factories import StaffFactory
from tests.staff_admin.conftest import member_with_history, role_user

pytestmark = pytest.mark.django_db


def _account(member: Member) -> Account:
    return Account.objects.get(member=member, kind="member")


def test_member_page_shows_balance_tier_purchases_and_points_history_in_words(client):
    member = member_with_history(purchases=2)
    client.force_login(StaffFactory())
    page = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert 'id="m360-balance"' in page
    assert "100 <span>available" in page  # 2 × 50.00 at the base rate (no return window by default)
    assert 'id="m360-tier"' in page
    assert "till-jane@example.com-1" in page  # purchases listed
    assert "Points for 50.00 spent: +50" in page  # the explanation in words
    assert "E+" not in page
    assert f"member__id__exact={member.pk}" in page  # links to the filtered lists


def test_member_page_pages_its_points_history(client):
    member = member_with_history(purchases=25)
    client.force_login(StaffFactory())
    url = reverse("admin:members_member_change", args=[member.pk])
    first = client.get(url).content.decode()
    assert "page 1 of 2" in first and "page 1 of 3" in first  # entries (20 a page), purchases (10 a page)
    last = client.get(url, {"purchases_page": 3}).content.decode()
    assert "page 3 of 3" in last


def test_member_page_query_count_is_pinned_and_does_not_grow_with_history(client, django_assert_max_num_queries):
    small = member_with_history(purchases=1, email="small@example.com")
    big = member_with_history(purchases=30, email="big@example.com")
    client.force_login(StaffFactory())
    client.get(reverse("admin:members_member_change", args=[small.pk]))  # configuration read once
    with django_assert_max_num_queries(30) as captured:  # 26 today: one read per panel, pages counted once
        client.get(reverse("admin:members_member_change", args=[small.pk]))
    baseline = len(captured.captured_queries)
    with django_assert_max_num_queries(baseline):
        client.get(reverse("admin:members_member_change", args=[big.pk]))


def test_marketing_sees_the_member_page_without_the_adjust_link_support_has_it(client):
    member = member_with_history()
    url = reverse("admin:members_member_change", args=[member.pk])
    adjust = reverse("admin:ledger_account_adjust", args=[_account(member).pk])
    client.force_login(role_user("Marketing"))
    page = client.get(url)
    assert page.status_code == 200 and adjust not in page.content.decode()
    client.force_login(role_user("Support"))
    assert adjust in client.get(url).content.decode()


def test_member_page_of_a_role_without_view_is_refused(client):
    member = member_with_history()
    client.force_login(role_user("no role"))
    assert client.get(reverse("admin:members_member_change", args=[member.pk])).status_code in (302, 403)


def test_external_id_is_read_only_on_the_member_page(client):
    member = member_with_history()
    client.force_login(StaffFactory())
    page = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert 'name="external_id"' not in page


def test_account_page_pages_entries_and_lots(client):
    member = member_with_history(purchases=30)
    account = _account(member)
    client.force_login(StaffFactory())
    url = reverse("admin:ledger_account_change", args=[account.pk])
    page = client.get(url).content.decode()
    assert "Entries (30)" in page and "page 1 of 2" in page
    assert page.count('class="num">50<') >= 25
    second = client.get(url, {"entries_page": 2}).content.decode()
    assert "page 2 of 2" in second


def test_adjust_form_names_member_balance_and_keeps_the_reason_in_history(client):
    member = member_with_history()
    account = _account(member)
    client.force_login(role_user("Support"))
    url = reverse("admin:ledger_account_adjust", args=[account.pk])
    form = client.get(url).content.decode()
    assert "Jane Doe (member " in form and "50 available, 0 pending" in form
    response = client.post(url, {"points": "25", "reason": "Goodwill: late delivery", "once": str(uuid.uuid4())})
    assert response.status_code == 302
    entry = Entry.objects.filter(account=account, kind="adjust").select_related("transaction").get()
    assert (entry.points, entry.transaction.reason) == (25, "Goodwill: late delivery")
    history = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "Goodwill: late delivery" in history


def test_adjust_without_reason_or_with_zero_changes_nothing(client):
    member = member_with_history()
    account = _account(member)
    client.force_login(role_user("Support"))
    url = reverse("admin:ledger_account_adjust", args=[account.pk])
    once = str(uuid.uuid4())
    assert client.post(url, {"points": "25", "reason": "", "once": once}).status_code == 200
    assert client.post(url, {"points": "0", "reason": "x", "once": once}).status_code == 200
    page = client.post(url, {"points": "-1000", "reason": "oops", "once": once})
    assert page.status_code == 200 and "insufficient_points" in page.content.decode()
    assert not Entry.objects.filter(account=account, kind="adjust").exists()


@pytest.mark.parametrize("role", ["Marketing", "Analyst"])
def test_adjust_page_is_refused_to_roles_without_adjust(client, role):
    account = _account(member_with_history())
    client.force_login(role_user(role))
    url = reverse("admin:ledger_account_adjust", args=[account.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"points": "5", "reason": "x"}).status_code == 403
    assert Account.objects.get(pk=account.pk).available == 50


def test_member_list_filters_by_segment(client):
    from segments import services as segment_services

    inside = member_with_history(email="in@example.com")
    member_with_history(email="out@example.com")
    staff = StaffFactory()
    segment = segment_services.segment_create(name="VIP list", kind="static", actor=staff)
    segment_services.segment_static_upload(
        segment=segment, content=f"member_number\n{inside.member_number}\n".encode(), filename="x.csv", actor=staff
    )
    client.force_login(staff)
    page = client.get(reverse("admin:members_member_changelist"), {"segment": segment.pk}).content.decode()
    assert "in@example.com" in page and "out@example.com" not in page
    assert "VIP list" in page


def test_points_adjust_service_reason_is_kept_on_the_transaction():
    member = member_with_history()
    tx = ledger.points_adjust(account=_account(member), points=5, reason="why", actor=StaffFactory())
    assert tx.reason == "why"


def test_ledger_transaction_page_explains_the_points_in_words(client):
    member = member_with_history()
    entry = Entry.objects.filter(account=_account(member), kind="earn").get()
    client.force_login(StaffFactory())
    page = client.get(reverse("admin:ledger_ledgertransaction_change", args=[entry.transaction_id])).content.decode()
    assert "Points for 50.00 spent: +50" in page and "Total: 50 points" in page
    assert "E+" not in page
