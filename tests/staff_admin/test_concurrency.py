"""What two staff may do at once from the admin, on PostgreSQL with real threads: one effect."""

from __future__ import annotations

import pytest

from loyalty.core.models import AuditEvent
from loyalty.imports.opening_balances import opening_balances_import
from loyalty.ledger.models import Account, LedgerTransaction
from loyalty.ledger.selectors import program_default
from loyalty.ledger.services import expire_due_lots
from tests.concurrency import run_together
from tests.staff_admin.conftest import member_with_history, role_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_same_opening_balance_file_imported_by_four_staff_at_once_credits_once():
    ann = member_with_history(email="ann@example.com")
    staff = [role_user(r) for r in ("Support", "Marketing")]
    rows = [{"member_number": ann.member_number, "points": "300", "expires_on": "", "reason": "old program"}]
    program = program_default()

    def upload(i):
        return opening_balances_import(rows=rows, program=program, actor=staff[i % 2], filename="b.csv")

    results = run_together(4, upload)
    errors = [r for r in results if isinstance(r, BaseException)]
    credited = sum(r.credited for r in results if not isinstance(r, BaseException))
    assert errors == [] and credited == 1, (results, errors)
    assert LedgerTransaction.objects.filter(kind="adjust", reason="old program").count() == 1
    assert Account.objects.get(member=ann, kind="member").available == 50 + 300
    assert AuditEvent.objects.filter(action="opening_balances.imported", after__credited=1).count() == 1


def test_expiry_run_now_by_two_staff_and_the_schedule_at_once_expires_once():
    import datetime as dt

    from loyalty.core import clock
    from loyalty.ledger.models import Entry, Program

    Program.objects.filter(is_default=True).update(expiry_policy="fixed_months", expiry_months=1)
    member = member_with_history()
    clock.set_now(clock.now() + dt.timedelta(days=40))
    results = run_together(3, lambda i: expire_due_lots())
    assert not [r for r in results if isinstance(r, BaseException)], results
    account = Account.objects.get(member=member, kind="member")
    assert (account.available, account.expired) == (0, 50)
    assert Entry.objects.filter(account=account, kind="expire").count() == 1


def test_a_double_submitted_adjustment_form_adjusts_once():
    from django.test import Client
    from django.urls import reverse

    from loyalty.ledger.models import Entry

    member = member_with_history()
    account = Account.objects.get(member=member, kind="member")
    user = role_user("Support")
    url = reverse("admin:ledger_account_adjust", args=[account.pk])
    once = "6f1c1d2e-8a2b-4c3d-9e4f-0a1b2c3d4e5f"

    def submit(i):
        client = Client()
        client.force_login(user)
        return client.post(url, {"points": "25", "reason": "Goodwill", "once": once}).status_code

    assert run_together(4, submit) == [302, 302, 302, 302]
    assert Entry.objects.filter(account=account, kind="adjust").count() == 1
    assert Account.objects.get(pk=account.pk).available == 75
    assert AuditEvent.objects.filter(action="points.adjust").count() == 1
