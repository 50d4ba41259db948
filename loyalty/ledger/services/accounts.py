from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from loyalty.core import clock
from loyalty.core.config import config_cached_row
from loyalty.core.errors import Conflict
from loyalty.core.services import audit_record
from loyalty.ledger.models import Account, AccountKind, Program
from members.models import Member, MemberStatus

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from loyalty.partners.models import Partner

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


def program_update(*, program: Program, actor: AbstractBaseUser, changed: list[str]) -> Program:
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


def system_account(*, program: Program, kind: str, partner: Partner | None = None) -> Account:
    """The program's system account of ``kind`` (issued accounts exist per funding partner).
    Never locked: system accounts keep no cached balance. Configuration: found once per
    configuration stamp (``loyalty.core.config``)."""
    lookup = {"program": program, "kind": kind, "partner": partner}
    account = config_cached_row(
        ("system_account", program.pk, kind, getattr(partner, "pk", None)),
        lambda: Account.objects.filter(**lookup).first(),
    )
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(**lookup, opened_at=clock.now())
    except IntegrityError:
        return Account.objects.get(**lookup)


def check_may_hold_account(member: Member) -> None:
    if member.status in (MemberStatus.CLOSED, MemberStatus.ERASED):
        raise Conflict(f"A {member.status} member cannot open an account", code="member_inactive")


def account_open(*, member: Member, program: Program) -> Account:
    """The member's account in the program, opened if missing (idempotent, safe under races)."""
    check_may_hold_account(member)
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


def program_get(pk: int) -> Program:
    """A program by id: configuration, read once per configuration stamp; the caller's own
    instance (to change a program, go through ``program_update``)."""
    return config_cached_row(("program", pk), lambda: Program.objects.get(pk=pk))
