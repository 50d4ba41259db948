from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction

from loyalty.core import clock
from loyalty.core.config import config_cached
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.services import audit_record
from loyalty.ledger.models import Account, AccountKind, Program
from members.models import Member, MemberStatus

SYSTEM_KINDS = (
    AccountKind.ISSUED,
    AccountKind.REDEMPTION,
    AccountKind.BREAKAGE,
    AccountKind.WRITE_OFF,
    AccountKind.ADJUSTMENT,
)


def program_create(**fields: Any) -> Program:
    """Create a program and its system accounts."""
    with transaction.atomic():
        program = Program(**fields)
        program.full_clean()
        program.save()
        for kind in SYSTEM_KINDS:
            system_account(program=program, kind=kind)
    return program


def program_update(*, program: Program, actor: Any, changed: list[str]) -> Program:
    """Save staff edits of a program's settings (``program`` carries the new values); audited."""
    program.full_clean()
    with transaction.atomic():
        before = Program.objects.select_for_update().get(pk=program.pk)
        program.save()
        if changed:
            audit_record(
                actor=actor,
                action="program.update",
                target=program,
                before={f: getattr(before, f) for f in changed},
                after={f: getattr(program, f) for f in changed},
            )
    return program


def system_account(*, program: Program, kind: str, partner: Any | None = None) -> Account:
    """The program's system account of ``kind`` (issued accounts exist per funding partner).
    Never locked: system accounts keep no cached balance. Configuration: found once per
    configuration stamp (``loyalty.core.config``)."""
    lookup = {"program": program, "kind": kind, "partner": partner}
    account = config_cached(
        ("system_account", program.pk, kind, getattr(partner, "pk", None)),
        lambda: Account.objects.filter(**lookup).first(),
    )
    if account is not None:
        return account  # shared: system accounts are only ever referenced
    try:
        with transaction.atomic():
            return Account.objects.create(**lookup, opened_at=clock.now())
    except IntegrityError:
        return Account.objects.get(**lookup)


def _check_may_hold_account(member: Member) -> None:
    if member.status in (MemberStatus.CLOSED, MemberStatus.ERASED):
        raise Conflict(f"A {member.status} member cannot open an account", code="member_inactive")


def account_open(*, member: Member, program: Program) -> Account:
    """The member's account in the program, opened if missing (idempotent, safe under races)."""
    _check_may_hold_account(member)
    account = Account.objects.filter(member=member, program=program, kind=AccountKind.MEMBER).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(
                member=member, program=program, kind=AccountKind.MEMBER, opened_at=clock.now()
            )
    except IntegrityError:
        return Account.objects.get(member=member, program=program, kind=AccountKind.MEMBER)


def account_lock(*, account: Account) -> Account:
    """Lock the member account row (SELECT ... FOR UPDATE) and bring it up to date: due pending
    lots mature and due lots expire before anything else reads the balance.

    Only the account row is locked: the program is configuration, read from memory, so accounts
    of one program never wait for each other. The instance returned remembers the lock
    (``account_lock_held``) while the atomic block that took it is open, so a service called
    with it in the same block (``points_credit``) neither locks nor settles again."""
    if account.kind != AccountKind.MEMBER:
        raise ValidationFailed("Only member accounts hold balances", code="not_a_member_account")
    locked = _lock_where("a.id = %s", [account.pk])
    if locked is None:
        raise Account.DoesNotExist(f"No account {account.pk}")
    return locked


def account_open_locked(*, member: Member, program: Program) -> Account:
    """``account_lock(account=account_open(member=..., program=...))``, with one query fewer when
    the account exists: it is found, locked and probed for due lots by one SELECT ... FOR UPDATE."""
    _check_may_hold_account(member)
    locked = _lock_where("a.member_id = %s AND a.program_id = %s AND a.kind = 'member'", [member.pk, program.pk])
    if locked is None:
        return account_lock(account=account_open(member=member, program=program))
    return locked


def account_lock_by_number(*, member_number: str, program: Program) -> Account | None:
    """``account_lock`` of the account of the member with this (clean) number in the program,
    found by the same SELECT ... FOR UPDATE that reads the member (``account.member``). None when
    no such member or account: the caller looks the member up and opens the account."""
    return _lock_where(
        "m.member_number = %s AND a.program_id = %s AND a.kind = 'member'", [member_number, program.pk], member=True
    )


# The columns a balance change needs. The rest (timestamps, the member's profile) are left
# deferred (Django loads one when it is read): turning timestamps into Python costs more than
# PostgreSQL takes to find and lock the row.
_ACCOUNT_FIELDS = [f for f in Account._meta.concrete_fields if f.name not in ("last_activity_at", "opened_at")]
_MEMBER_FIELDS = [Member._meta.get_field(name) for name in ("id", "member_number", "status")]
_ACCOUNT_ATTNAMES = [f.attname for f in _ACCOUNT_FIELDS]
_MEMBER_ATTNAMES = [f.attname for f in _MEMBER_FIELDS]
# Two probes, each a range of one index (lot_pending_due_per_account, lot_open_fefo): the cost
# does not grow with the account's history of lots.
_LOCK_SQL = """SELECT {columns},
        EXISTS (SELECT 1 FROM ledger_lot l WHERE l.account_id = a.id AND l.is_pending AND l.available_at <= %s)
        OR EXISTS (SELECT 1 FROM ledger_lot l WHERE l.account_id = a.id AND l.remaining > 0 AND l.expires_at <= %s)
    FROM ledger_account a {join} WHERE {{where}}"""
_LOCK_ACCOUNT_SQL = _LOCK_SQL.format(columns=", ".join(f"a.{f.column}" for f in _ACCOUNT_FIELDS), join="")
_LOCK_WITH_MEMBER_SQL = _LOCK_SQL.format(
    columns=", ".join([f"a.{f.column}" for f in _ACCOUNT_FIELDS] + [f"m.{f.column}" for f in _MEMBER_FIELDS]),
    join="JOIN members_member m ON m.id = a.member_id",
)


def _lock_where(where: str, params: list, *, member: bool = False) -> Account | None:
    """Lock one member account (``where`` on alias ``a``, and ``m`` for its member when
    ``member``), probing in the same statement whether lots are due on it; settle them if so.
    None when no account matches."""
    db = connections[DEFAULT_DB_ALIAS]  # not the proxy: read a dozen times below
    now = clock.now()
    sql = (_LOCK_WITH_MEMBER_SQL if member else _LOCK_ACCOUNT_SQL).format(where=where)
    if db.features.has_select_for_update:
        sql += " FOR UPDATE OF a"  # SQLite: one writer at a time already
    with db.cursor() as cursor:
        cursor.execute(sql, [now, now, *params])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(_ACCOUNT_FIELDS)
    locked = Account.from_db(DEFAULT_DB_ALIAS, _ACCOUNT_ATTNAMES, row[:split])
    if row[-1]:
        from loyalty.ledger.services.jobs import settle_accounts

        settle_accounts(account_ids=[locked.pk], now=now)
        locked.refresh_from_db()
    locked.program = program_get(locked.program_id)
    if member:
        locked.member = Member.from_db(DEFAULT_DB_ALIAS, _MEMBER_ATTNAMES, row[split:-1])
    _lock_remember(locked)
    return locked


def program_get(pk: int) -> Program:
    """A program by id: configuration, read once per configuration stamp. Shared between
    requests: read it; to change a program, go through ``program_update``."""
    return config_cached(("program", pk), lambda: Program.objects.get(pk=pk))


class _LockHeld:
    """A commit hook that does nothing, one per ``account_lock``: while it waits in the
    connection's commit hooks, the transaction (or savepoint) that took the lock is open."""

    __slots__ = ("account_id",)

    def __init__(self, account_id: int):
        self.account_id = account_id

    def __call__(self) -> None:
        return None


def _lock_remember(account: Account) -> None:
    token = _LockHeld(account.pk)
    transaction.on_commit(token)
    account._lock_token = token


def account_lock_held(account: Account) -> bool:
    """Whether ``account`` is the instance the latest ``account_lock`` of its row returned, in the
    transaction still open on this thread's connection, and no balance of it changed since.

    Django drops the commit hooks of a transaction when it commits or rolls back, and those of a
    savepoint rolled back (which releases a lock taken in it), so an instance from another
    transaction, another thread or a rolled-back savepoint never counts as locked; a later
    ``account_lock`` of the same row (every balance-changing service takes one) supersedes it."""
    token = getattr(account, "_lock_token", None)
    if token is None or not connection.in_atomic_block:
        return False
    latest = None
    for _sids, hook, _robust in connection.run_on_commit:
        if isinstance(hook, _LockHeld) and hook.account_id == account.pk:
            latest = hook
    return latest is token


def account_lock_spent(account: Account) -> None:
    """The balances of ``account`` were just changed in the database (added to in SQL): its cached
    figures are stale, so the next service must lock and read it again."""
    account._lock_token = None
