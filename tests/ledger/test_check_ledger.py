"""The ledger invariant check (``ledger.selectors.invariants``, ``manage.py check_ledger``): a ledger
written by the services has 0 violations; each kind of corruption, written by raw SQL past the
guards (the constraints dropped inside the test's own transaction, rolled back after it), is
counted by its own check, and the command exits non-zero."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from loyalty.core import clock
from loyalty.ledger import services
from loyalty.ledger.models import AccountKind, Allocation, Entry, LedgerTransaction, Lot
from loyalty.ledger.selectors.invariants import ledger_invariant_checks, ledger_invariant_violations
from loyalty.partners.services import outbox_record
from tests.ledger.conftest import T0, make_account, make_program

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def counts() -> dict[str, int]:
    return {check.name: check.violations for check in ledger_invariant_checks()}


@pytest.fixture
def ledger():
    """Two members with credits, a redemption, a refund, a purchase, a partial return, and a lot
    that expires (fixed 1 month): the ledger as the services write it."""
    clock.set_now(T0)
    program = make_program(return_policy="allow_negative", expiry_policy="fixed_months", expiry_months=1)
    ann, bob = make_account(program), make_account(program)
    services.points_credit(account=ann, points=300, reason="earn")
    services.points_credit(account=bob, points=50, reason="earn", pending=True)
    redemption = services.points_redeem(account=ann, points=120)
    services.points_refund(redemption=redemption)
    services.points_redeem(account=ann, points=80)
    purchase = services.purchase_create(
        program=program,
        member=bob.member,
        external_id="p-1",
        occurred_at=clock.now(),
        lines=[{"sku": "A", "quantity": 4, "amount": "40"}],
    )
    services.points_credit(account=bob, points=40, reason="purchase", purchase=purchase, pending=True)
    services.purchase_return_clawback(purchase=purchase, external_id="r-1", lines=[{"sku": "A", "quantity": 1}])
    return {"program": program, "ann": ann, "bob": bob}


@pytest.fixture
def guards_off():
    """Drop a constraint or disable a trigger for this test only: DDL is transactional, the test's
    rollback restores them."""

    def drop(table: str, constraint: str = "", trigger: str = "") -> None:
        with connection.cursor() as cursor:
            # fire what is pending first: a table with pending trigger events cannot be altered
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            if constraint:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")
            if trigger:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    return drop


def test_a_ledger_written_by_the_services_has_no_violation(ledger):
    checks = ledger_invariant_checks()
    assert {c.name for c in checks} == {
        "transactions_unbalanced",
        "balance_not_entries",
        "balance_not_lots",
        "account_figures_negative",
        "lots_out_of_range",
        "lots_spent_after_expiry",
        "outbox_duplicate_events",
    }
    assert [c for c in checks if c.violations] == []
    assert ledger_invariant_violations() == 0
    out = io.StringIO()
    call_command("check_ledger", stdout=out)
    assert "0 violations" in out.getvalue()


def test_an_unbalanced_transaction_is_counted(ledger, guards_off):
    guards_off("ledger_ledgertransaction", trigger="ledger_transaction_balanced")  # checked at commit
    program = ledger["program"]
    issued = services.system_account(program=program, kind=AccountKind.ISSUED)
    tx = LedgerTransaction.objects.create(program=program, kind="adjust", created_at=clock.now())
    Entry.objects.create(transaction=tx, account=issued, kind="adjust", points=-7, created_at=clock.now())
    assert counts() == {**dict.fromkeys(counts(), 0), "transactions_unbalanced": 1}
    check = next(c for c in ledger_invariant_checks() if c.name == "transactions_unbalanced")
    assert check.examples == [(tx.pk, -7)]


def test_a_cached_balance_off_its_entries_is_counted(ledger):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET debt = debt + 5 WHERE id = %s", [ledger["ann"].pk])
    assert counts() == {**dict.fromkeys(counts(), 0), "balance_not_entries": 1}


def test_lots_off_the_balance_are_counted(ledger):
    lot = Lot.objects.filter(account=ledger["ann"], remaining__gt=0).first()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_lot SET remaining = remaining - 1 WHERE id = %s", [lot.pk])
    assert counts() == {**dict.fromkeys(counts(), 0), "balance_not_lots": 1}
    with connection.cursor() as cursor:  # pending figure against pending lots
        cursor.execute(
            "UPDATE ledger_account SET pending = pending + 1, available = available - 1 WHERE id = %s",
            [ledger["bob"].pk],
        )
    assert counts()["balance_not_lots"] == 2


def test_negative_account_figures_are_counted(ledger, guards_off):
    guards_off("ledger_account", "account_debt_non_negative")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_account SET debt = -3, available = available - 3 WHERE id = %s", [ledger["ann"].pk]
        )
    found = counts()
    assert found["account_figures_negative"] == 1
    assert found["balance_not_entries"] == 0  # the balance itself did not move


def test_a_lot_below_zero_is_counted(ledger, guards_off):
    guards_off("ledger_lot", "lot_remaining_in_range")
    lot = Lot.objects.filter(account=ledger["bob"]).first()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_lot SET remaining = -1 WHERE id = %s", [lot.pk])
    assert counts()["lots_out_of_range"] == 1


def test_a_lot_spent_after_its_expiry_is_counted(ledger):
    allocation = Allocation.objects.filter(lot__account=ledger["ann"]).select_related("transaction").first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_lot SET expires_at = %s WHERE id = %s",
            [allocation.transaction.created_at - dt.timedelta(seconds=1), allocation.lot_id],
        )
    spent = Allocation.objects.filter(lot_id=allocation.lot_id).count()  # every debit of the lot, all at T0
    assert spent >= 1
    assert counts() == {**dict.fromkeys(counts(), 0), "lots_spent_after_expiry": spent}


def test_an_event_twice_in_the_outbox_is_counted_and_the_command_fails(ledger):
    member = ledger["ann"].member
    payload = {"member_number": member.member_number, "points": 80, "redemption_id": 424242, "partner_id": None}
    outbox_record(event_type="points.redeemed", member=member, payload=payload)
    outbox_record(event_type="points.redeemed", member=member, payload={**payload, "redemption_id": 424243})
    purchase = {"member_number": member.member_number, "purchase_external_id": "till-9", "partner_id": 3, "points": 1}
    outbox_record(event_type="points.earned", member=member, payload=purchase)
    outbox_record(event_type="points.earned", member=member, payload={**purchase, "partner_id": 4})  # another partner
    assert counts()["outbox_duplicate_events"] == 0
    outbox_record(event_type="points.redeemed", member=member, payload=payload)
    outbox_record(event_type="points.earned", member=member, payload=purchase)
    assert counts() == {**dict.fromkeys(counts(), 0), "outbox_duplicate_events": 2}
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 ledger invariant violations"):
        call_command("check_ledger", stdout=out)
    assert "outbox_duplicate_events" in out.getvalue() and "'points.redeemed', '424242', 2" in out.getvalue()
