"""The row lock of a member account, said explicitly: a ``LockedAccount``.

Every change of a member's balance happens under a lock of its account row. The lock is taken
by one of the context managers here, inside the caller's ``transaction.atomic`` block; it yields
a ``LockedAccount`` that the ledger's ``*_locked`` services take as their argument, so the type
says what the caller holds. The ``LockedAccount`` is usable only inside the ``with`` block that
took the lock: once the block is left (the lock may be gone with its transaction or savepoint),
reading it raises ``LockReleased``. Nothing inspects the connection to find out.

Taking the lock also brings the account up to date: pending lots that are due mature and lots
that are due expire before anything reads the balance (the probe for due lots is part of the
locking statement, so an account with nothing due costs one query).

The locking statement is SQL written here (names quoted from the models' metadata) and read with
``Model.from_db``, not a queryset: the same query as ``select_for_update(of=("self",))`` with
``select_related("member")``, ``only()`` and two ``Exists`` annotations takes about 1.2 ms of
Python to build on every purchase on the 2-core machine it was measured on, against 6 us here.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.ledger.models import Account, AccountKind, Lot, Program
from loyalty.ledger.services.accounts import account_open, check_may_hold_account, program_get
from loyalty.ledger.services.jobs import settle_accounts
from members.models import Member
from members.selectors import member_get_by_number


class LockReleased(RuntimeError):
    """A ``LockedAccount`` was used outside the ``with`` block that locked it (a programming
    error: its row may no longer be locked and its figures may be stale)."""


class LockedAccount:
    """A member account whose row this transaction holds locked (SELECT ... FOR UPDATE) and whose
    cached figures are exact: the services that change them under the lock keep the instance in
    step. Given out by ``account_locked`` / ``member_account_locked``, valid inside their block."""

    __slots__ = ("_account", "_held")

    def __init__(self, account: Account) -> None:
        self._account = account
        self._held = True

    @property
    def account(self) -> Account:
        if not self._held:
            raise LockReleased(f"account {self._account.pk} was locked by a block that has ended")
        return self._account

    @property
    def pk(self) -> int:
        return self.account.pk

    @property
    def program(self) -> Program:
        return self.account.program

    @property
    def member(self) -> Member:
        return self.account.member

    @property
    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        """The block that took the lock ended (called by the context managers only)."""
        self._held = False

    def __repr__(self) -> str:
        return f"<LockedAccount {self._account.pk}{'' if self._held else ' (released)'}>"


@contextlib.contextmanager
def _held(account: Account) -> Iterator[LockedAccount]:
    locked = LockedAccount(account)
    try:
        yield locked
    finally:
        locked.release()


def _check_in_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("A member account is locked inside transaction.atomic()")


@contextlib.contextmanager
def account_locked(*, account: Account) -> Iterator[LockedAccount]:
    """Lock ``account`` (a member account) for the block, settled first (due lots mature or
    expire). Must run inside ``transaction.atomic``; the row stays locked until that transaction
    ends, the ``LockedAccount`` is usable until this block ends."""
    if account.kind != AccountKind.MEMBER:
        raise ValidationFailed("Only member accounts hold balances", code="not_a_member_account")
    _check_in_transaction()
    found = _lock_where("a.{id} = %s", [account.pk])
    if found is None:
        raise Account.DoesNotExist(f"No account {account.pk}")
    with _held(found) as locked:
        yield locked


@contextlib.contextmanager
def member_account_locked(
    *, program: Program, member: Member | None = None, member_number: str = ""
) -> Iterator[LockedAccount]:
    """Lock the member's account in ``program`` for the block, opening it if missing. By a
    (clean) ``member_number``, one statement finds the member and locks its account in the usual
    case (``locked.member`` is that member); an unknown number is ``member_not_found``."""
    _check_in_transaction()
    found = None
    if member is None:
        found = _lock_where(
            "m.{member_number} = %s AND a.{program_id} = %s AND a.{kind} = 'member'",
            [member_number, program.pk],
            member=True,
        )
        if found is None:
            member = member_get_by_number(member_number=member_number)
    if found is None:
        check_may_hold_account(member)
        found = _lock_where(
            "a.{member_id} = %s AND a.{program_id} = %s AND a.{kind} = 'member'", [member.pk, program.pk]
        )
        if found is None:
            opened = account_open(member=member, program=program)
            found = _lock_where("a.{id} = %s", [opened.pk])
        found.member = member
    with _held(found) as locked:
        yield locked


# The columns a balance change needs. The rest (timestamps, the member's profile) are left
# deferred (Django loads one when it is read): turning timestamps into Python costs more than
# PostgreSQL takes to find and lock the row.
_ACCOUNT_FIELDS = [f for f in Account._meta.concrete_fields if f.name not in ("last_activity_at", "opened_at")]
_MEMBER_FIELDS = [Member._meta.get_field(name) for name in ("id", "member_number", "status", "referred_by")]
_ACCOUNT_ATTNAMES = [f.attname for f in _ACCOUNT_FIELDS]
_MEMBER_ATTNAMES = [f.attname for f in _MEMBER_FIELDS]


@functools.cache
def _lock_sql(vendor: str, member: bool) -> str:
    """SELECT the account's columns (and its member's) with a probe for due lots: two ranges of
    one index each (lot_pending_due_per_account, lot_open_fefo), so the cost does not grow with
    the account's history of lots. Names quoted for ``vendor``; ``{where}`` is filled with
    column names of the account (alias ``a``) and member (``m``)."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    lot = {f.name: quote(f.column) for f in Lot._meta.concrete_fields}
    account_pk = quote(Account._meta.pk.column)
    columns = [f"a.{quote(f.column)}" for f in _ACCOUNT_FIELDS]
    join = ""
    if member:
        columns += [f"m.{quote(f.column)}" for f in _MEMBER_FIELDS]
        join = (
            f" JOIN {quote(Member._meta.db_table)} m"
            f" ON m.{quote(Member._meta.pk.column)} = a.{quote(Account._meta.get_field('member').column)}"
        )
    lots = quote(Lot._meta.db_table)
    return (
        f"SELECT {', '.join(columns)},"  # noqa: S608 - names from the models
        f" EXISTS (SELECT 1 FROM {lots} l WHERE l.{lot['account']} = a.{account_pk}"
        f" AND l.{lot['is_pending']} AND l.{lot['available_at']} <= %s)"
        f" OR EXISTS (SELECT 1 FROM {lots} l WHERE l.{lot['account']} = a.{account_pk}"
        f" AND l.{lot['remaining']} > 0 AND l.{lot['expires_at']} <= %s)"
        f" FROM {quote(Account._meta.db_table)} a{join} WHERE {{where}}"
    )


@functools.cache
def _names(vendor: str) -> dict[str, str]:
    """Quoted column names for the ``where`` of ``_lock_where``."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return {
        "id": quote(Account._meta.pk.column),
        "member_id": quote(Account._meta.get_field("member").column),
        "program_id": quote(Account._meta.get_field("program").column),
        "kind": quote(Account._meta.get_field("kind").column),
        "member_number": quote(Member._meta.get_field("member_number").column),
    }


def _lock_where(where: str, params: list, *, member: bool = False) -> Account | None:
    """Lock one member account (``where`` on alias ``a``, and ``m`` for its member when
    ``member``; ``{name}`` placeholders are quoted column names), probing in the same statement
    whether lots are due on it; settle them if so. None when no account matches."""
    db = connections[DEFAULT_DB_ALIAS]
    now = clock.now()
    sql = _lock_sql(db.vendor, member).format(where=where.format(**_names(db.vendor)))
    if db.features.has_select_for_update_of:
        sql += " FOR UPDATE OF a"  # SQLite: one writer at a time already
    with db.cursor() as cursor:
        cursor.execute(sql, [now, now, *params])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(_ACCOUNT_FIELDS)
    locked = Account.from_db(DEFAULT_DB_ALIAS, _ACCOUNT_ATTNAMES, row[:split])
    if row[-1]:
        settle_accounts(account_ids=[locked.pk], now=now)
        locked.refresh_from_db()
    locked.program = program_get(locked.program_id)
    if member:
        locked.member = Member.from_db(DEFAULT_DB_ALIAS, _MEMBER_ATTNAMES, row[split:-1])
    return locked
