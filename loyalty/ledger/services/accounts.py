from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from loyalty.core import clock
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
    Never locked: system accounts keep no cached balance."""
    lookup = {"program": program, "kind": kind, "partner": partner}
    account = Account.objects.filter(**lookup).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(**lookup, opened_at=clock.now())
    except IntegrityError:
        return Account.objects.get(**lookup)


def account_open(*, member: Member, program: Program) -> Account:
    """The member's account in the program, opened if missing (idempotent, safe under races)."""
    if member.status in (MemberStatus.CLOSED, MemberStatus.ERASED):
        raise Conflict(f"A {member.status} member cannot open an account", code="member_inactive")
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
    """Lock the member account row (select_for_update) and bring it up to date: due pending
    lots mature and due lots expire before anything else reads the balance."""
    from loyalty.ledger.services.jobs import settle_accounts

    if account.kind != AccountKind.MEMBER:
        raise ValidationFailed("Only member accounts hold balances", code="not_a_member_account")
    locked = Account.objects.select_for_update().select_related("program").get(pk=account.pk)
    if settle_accounts(account_ids=[locked.pk], now=clock.now()):
        locked = Account.objects.select_related("program").get(pk=account.pk)
    return locked
