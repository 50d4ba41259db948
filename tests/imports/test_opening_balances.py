"""Opening balances from another program: every row checked first, then credited in bulk once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from loyalty.core import clock
from loyalty.imports.opening_balances import opening_balances_import
from loyalty.ledger.models import Account, LedgerTransaction, Lot
from loyalty.ledger.selectors import program_default
from loyalty.ledger.services import account_open
from members.services import member_close
from tests.factories import MemberFactory
from tests.ledger.conftest import assert_ledger_invariants

pytestmark = pytest.mark.django_db
T = dt.datetime(2030, 5, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


@pytest.fixture
def members(db):
    program = program_default()
    ann, bob = MemberFactory(email="ann@example.com"), MemberFactory(email="bob@example.com")
    account_open(member=ann, program=program)  # bob has no account yet: the import opens it
    return ann, bob


def _csv(tmp_path, text: str):
    path = tmp_path / "balances.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_are_credited_once_even_when_the_file_is_run_again(members, tmp_path, capsys):
    ann, bob = members
    path = _csv(
        tmp_path,
        "member_number,email,points,expires_on,reason\n"
        f"{ann.member_number},,120,2031-01-31,old program\n"
        ",BOB@example.com,80,,\n",
    )

    call_command("import_opening_balances", str(path))
    call_command("import_opening_balances", str(path))

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2 balances credited (200 points)")
    assert out[1].startswith("0 balances credited (0 points)") and "2 already credited" in out[1]
    program = program_default()
    assert Account.objects.get(member=ann, program=program).available == 120
    assert Account.objects.get(member=bob, program=program).available == 80
    ann_lot = Lot.objects.get(account__member=ann)
    assert ann_lot.expires_at == dt.datetime(2031, 1, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert ann_lot.transaction.reason == "old program" and ann_lot.transaction.kind == "adjust"
    assert Lot.objects.get(account__member=bob).transaction.reason == "opening balance"
    assert LedgerTransaction.objects.count() == 2
    assert_ledger_invariants(program)


def test_bad_rows_are_reported_with_their_numbers_and_nothing_is_credited(members, tmp_path, capsys):
    ann, bob = members
    member_close(member=bob, actor=None, reason="left")
    path = _csv(
        tmp_path,
        "member_number,email,points,expires_on\n"
        f"{ann.member_number},,100,\n"  # fine
        ",nobody@example.com,5,\n"  # unknown member
        f"{ann.member_number},,12.5,\n"  # not a whole number
        f"{ann.member_number},,10,2020-01-01\n"  # expired already
        ",bob@example.com,10,\n"  # closed
        "123,,10,\n",  # not a valid card number
    )

    with pytest.raises(CommandError, match="5 of 6 rows are bad: nothing was credited"):
        call_command("import_opening_balances", str(path))

    errors = capsys.readouterr().err
    for row, code in (
        (3, "unknown_member"),
        (4, "invalid_points"),
        (5, "invalid_date"),
        (6, "member_inactive"),
        (7, "invalid_member_number"),
    ):
        assert f"row {row}: " in errors and code in errors, (row, code)
    assert "row 2:" not in errors
    assert not LedgerTransaction.objects.exists()


def test_the_same_row_twice_in_a_file_is_an_error(members):
    ann, _ = members
    row = {"member_number": ann.member_number, "points": "10"}

    report = opening_balances_import(rows=[row, dict(row)], program=program_default())

    assert [(n, "duplicate_row" in m) for n, m in report.errors] == [(3, True)]
    assert not LedgerTransaction.objects.exists()


def test_dry_run_checks_and_credits_nothing(members, tmp_path, capsys):
    ann, _ = members
    path = _csv(tmp_path, f"member_number,points\n{ann.member_number},10\n")

    call_command("import_opening_balances", str(path), "--dry-run")

    assert "1 rows are fine" in capsys.readouterr().out
    assert not LedgerTransaction.objects.exists()
