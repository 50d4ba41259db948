import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from loyalty.ledger import services
from loyalty.ledger.models import Entry
from tests.factories import StaffFactory, UserFactory
from tests.ledger.conftest import fresh, make_account, make_program

pytestmark = pytest.mark.django_db


def test_adjust_points_action_asks_reason_and_points_then_calls_the_service(client, t0):
    staff = StaffFactory(username="boss")
    client.force_login(staff)
    account = make_account(make_program())
    url = reverse("admin:ledger_account_changelist")
    client.post(
        url,
        {
            "action": "adjust_points",
            "_selected_action": [account.pk],
            "apply": "1",
            "reason": "goodwill",
            "points": "25",
        },
    )
    assert fresh(account).available == 25
    page = client.post(
        url,
        {"action": "adjust_points", "_selected_action": [account.pk], "apply": "1", "reason": "oops", "points": "-100"},
        follow=True,
    )
    assert "insufficient_points" in page.content.decode()
    assert fresh(account).available == 25


def test_support_role_can_adjust_but_analyst_cannot(client, t0):
    account = make_account(make_program())
    url = reverse("admin:ledger_account_changelist")
    analyst = UserFactory(username="ana", is_staff=True)
    analyst.groups.add(Group.objects.get(name="Analyst"))
    client.force_login(analyst)
    client.post(
        url, {"action": "adjust_points", "_selected_action": [account.pk], "apply": "1", "reason": "x", "points": "5"}
    )
    assert fresh(account).available == 0
    support = UserFactory(username="sup", is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    client.force_login(support)
    client.post(
        url, {"action": "adjust_points", "_selected_action": [account.pk], "apply": "1", "reason": "x", "points": "5"}
    )
    assert fresh(account).available == 5


def test_nothing_in_the_ledger_can_be_edited_or_deleted_from_the_admin(client, t0):
    client.force_login(StaffFactory(username="root"))
    account = make_account(make_program())
    services.points_credit(account=account, points=5, reason="x")
    entry = Entry.objects.filter(account=account).first()
    assert client.get(reverse("admin:ledger_account_change", args=[account.pk])).status_code == 200
    assert client.post(reverse("admin:ledger_account_change", args=[account.pk]), {"available": 999}).status_code == 403
    assert client.get(reverse("admin:ledger_account_delete", args=[account.pk])).status_code == 403
    assert client.get(reverse("admin:ledger_ledgertransaction_delete", args=[entry.transaction_id])).status_code == 403
    assert fresh(account).available == 5


def test_admin_pages_render(client, t0):
    client.force_login(StaffFactory(username="root"))
    make_account(make_program())
    for name in ("program", "account", "ledgertransaction", "purchase", "return", "redemption"):
        assert client.get(reverse(f"admin:ledger_{name}_changelist")).status_code == 200, name


def test_jobs_run_from_management_commands(capsys, t0):
    call_command("mature_points")
    call_command("expire_points")
    out = capsys.readouterr().out
    assert "accounts had points mature" in out and "accounts had points expire" in out


def test_a_fresh_install_has_a_default_program():
    from loyalty.ledger.selectors import program_default

    assert program_default().name == "Default program"
