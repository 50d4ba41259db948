"""Credits, debits (FEFO), adjustments, transfers, redemptions and refunds.

Every service locks the member account (``locking.account_locked``: select_for_update, then
settle), runs in ``transaction.atomic`` and writes one ledger transaction whose entries sum to
zero. An idempotency key is a unique column: a repeat returns the first result and changes
nothing. A workflow that already holds the lock calls the ``*_locked`` variant with its
``LockedAccount``.

A credit is the ledger's hot path (every purchase): on PostgreSQL its five writes (transaction,
lot, entries, account and purchase figures) are one call of the ``ledger_credit`` database
function (created by migration 0008), from ``_credit_write`` only; elsewhere they go through
the ORM, one statement each.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dateutil.relativedelta import relativedelta
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import F, Q

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.services import audit_record
from loyalty.ledger import policy
from loyalty.ledger.models import (
    Account,
    AccountKind,
    Allocation,
    Entry,
    EntryKind,
    ExpiryPolicy,
    LedgerTransaction,
    Lot,
    Program,
    Purchase,
    Redemption,
    RedemptionStatus,
    TransactionKind,
)
from loyalty.ledger.services.accounts import system_account
from loyalty.ledger.services.locking import LockedAccount, account_locked

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from loyalty.core.services import Actor
    from loyalty.partners.models import Partner

FEFO_ORDER = (F("expires_at").asc(nulls_last=True), "id")


def _key_used() -> Conflict:
    """A ledger transaction with this idempotency key exists (its only unique column)."""
    return Conflict("This idempotency key was already used", code="idempotency_key_reused")


def _check_points(points: int) -> None:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise ValidationFailed(
            "points must be a positive whole number", code="invalid_points", fields={"points": ["Must be > 0."]}
        )


def _existing(idempotency_key: str | None, account: Account) -> LedgerTransaction | None:
    if not idempotency_key:
        return None
    found = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
    if found is not None and not found.entries.filter(account=account).exists():
        raise Conflict("This idempotency key was used for another account", code="idempotency_key_reused")
    return found


def _transaction_build(
    *, program: Program, kind: str, idempotency_key: str | None, actor: Actor = None, **fields: Any
) -> LedgerTransaction:
    is_user = actor is not None and getattr(actor, "pk", None) is not None
    return LedgerTransaction(
        program=program,
        kind=kind,
        idempotency_key=idempotency_key or None,
        actor=actor if is_user else None,
        actor_label=(actor.get_username() if is_user else str(actor or "system"))[:200],
        created_at=clock.now(),
        **fields,
    )


def _transaction_insert(tx: LedgerTransaction) -> bool:
    """INSERT ``tx``; False (nothing written, the caller's transaction still usable) when its
    idempotency key exists, its only unique column."""
    try:
        with transaction.atomic():
            tx.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def _new_transaction(
    *, program: Program, kind: str, idempotency_key: str | None, actor: Actor = None, **fields: Any
) -> LedgerTransaction:
    tx = _transaction_build(program=program, kind=kind, idempotency_key=idempotency_key, actor=actor, **fields)
    if not _transaction_insert(tx):
        raise _key_used()
    return tx


def _entries_build(tx: LedgerTransaction, rows: Iterable[tuple[Account, str, int, Lot | None]]) -> list[Entry]:
    """The entries of ``tx``; refuses anything that does not sum to zero."""
    entries = [
        Entry(transaction=tx, account=a, kind=k, points=p, lot=lot, created_at=tx.created_at)
        for a, k, p, lot in rows
        if p
    ]
    if sum(e.points for e in entries) != 0:
        raise AssertionError(f"ledger transaction {tx.pk} does not balance")
    return entries


def _post(tx: LedgerTransaction, rows: Iterable[tuple[Account, str, int, Lot | None]]) -> None:
    """Write the entries of ``tx``; refuses anything that does not sum to zero."""
    Entry.objects.bulk_create(_entries_build(tx, rows))


def _account_add(locked: LockedAccount, *, increments: dict[str, int], sets: dict[str, Any] | None = None) -> None:
    """Add to the cached figures of a locked member account (one UPDATE with ``F()``) and keep the
    ``LockedAccount`` in step (nobody else may change the row while it is locked)."""
    account = locked.account
    changes: dict[str, Any] = {name: F(name) + delta for name, delta in increments.items() if delta}
    changes.update(sets or {})
    if not changes:
        return
    Account.objects.filter(pk=account.pk).update(**changes)
    _account_added(account, increments, sets)


def _account_added(account: Account, increments: dict[str, int], sets: dict[str, Any] | None) -> None:
    """What ``_account_add`` wrote, on the instance."""
    for name, delta in increments.items():
        setattr(account, name, getattr(account, name) + delta)
    for name, value in (sets or {}).items():
        setattr(account, name, value)


def _touch_activity(account: Account, now: dt.datetime) -> None:
    """An earn or redeem (the caller sets ``last_activity_at``): under ``inactivity_months`` it
    pushes the expiry of all open lots of the account."""
    program = account.program
    if program.expiry_policy == ExpiryPolicy.INACTIVITY_MONTHS:
        Lot.objects.filter(account=account, remaining__gt=0).update(
            expires_at=now + relativedelta(months=program.expiry_months)
        )


def _consume(account: Account, points: int, tx: LedgerTransaction, *, include_pending: bool = False) -> tuple[int, int]:
    """Take up to ``points`` from the account's open lots, FEFO (earliest expiry, then oldest),
    available lots first (then pending ones if asked). Records allocations.
    Returns (taken from available, taken from pending)."""
    now = clock.now()
    lots = Lot.objects.filter(account=account, remaining__gt=0).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    if not include_pending:
        lots = lots.filter(is_pending=False)
    left, taken_available, taken_pending = points, 0, 0
    changed, allocations = [], []
    for lot in lots.order_by("is_pending", *FEFO_ORDER).iterator(chunk_size=100):
        take = min(left, lot.remaining)
        lot.remaining -= take
        changed.append(lot)
        allocations.append(Allocation(transaction=tx, lot=lot, points=take))
        if lot.is_pending:
            taken_pending += take
        else:
            taken_available += take
        left -= take
        if left == 0:
            break
    Lot.objects.bulk_update(changed, ["remaining"])
    Allocation.objects.bulk_create(allocations)
    return taken_available, taken_pending


def _lot_build(
    account: Account,
    tx: LedgerTransaction,
    points: int,
    *,
    pending_until: dt.datetime | None,
    expires_at: dt.datetime | None,
) -> Lot:
    now = tx.created_at
    is_pending = pending_until is not None and pending_until > now
    return Lot(
        account=account,
        transaction=tx,
        points=points,
        remaining=points,
        is_pending=is_pending,
        available_at=pending_until if is_pending else now,
        expires_at=expires_at,
        created_at=now,
    )


def _new_lot(*args: Any, **kwargs: Any) -> Lot:
    """``_lot_build``, inserted now."""
    lot = _lot_build(*args, **kwargs)
    lot.save(force_insert=True)
    return lot


def points_credit(
    *,
    account: Account,
    points: int,
    reason: str,
    kind: str = TransactionKind.EARN,
    idempotency_key: str | None = None,
    pending: bool = False,
    purchase: Purchase | None = None,
    partner: Partner | None = None,
    explanation: list | None = None,
    actor: Actor = None,
) -> LedgerTransaction:
    """Credit points into a new lot (pending for the program's return window when ``pending``).
    Debt from earlier clawbacks is paid off first. The funding partner's issued account is debited.
    Locks the account; a caller that holds the lock already calls ``points_credit_locked``."""
    _check_points(points)
    with transaction.atomic(), account_locked(account=account) as locked:
        return points_credit_locked(
            locked=locked,
            points=points,
            reason=reason,
            kind=kind,
            idempotency_key=idempotency_key,
            pending=pending,
            purchase=purchase,
            partner=partner,
            explanation=explanation,
            actor=actor,
        )


def points_credit_locked(
    *,
    locked: LockedAccount,
    points: int,
    reason: str,
    kind: str = TransactionKind.EARN,
    idempotency_key: str | None = None,
    pending: bool = False,
    purchase: Purchase | None = None,
    partner: Partner | None = None,
    explanation: list | None = None,
    actor: Actor = None,
) -> LedgerTransaction:
    """``points_credit`` on an account the caller locked in its still-open block: no second lock,
    no second settle, no savepoint (the caller's atomic block is the unit of work; an error here
    fails it). ``locked`` and ``purchase`` are brought up to date with what was written.
    A transaction written by this call carries ``credited_lot``: the new lot, or None when the
    points all paid debt (an ``idempotency_key`` repeat returns the stored transaction as read)."""
    _check_points(points)
    account = locked.account
    if (found := _existing(idempotency_key, account)) is not None:
        return found
    program = account.program
    tx = _transaction_build(
        program=program,
        kind=kind,
        idempotency_key=idempotency_key,
        actor=actor,
        reason=reason,
        purchase=purchase,
        partner=partner,
        explanation=explanation or [],
    )
    pay_debt = min(points, account.debt)
    lot_points = points - pay_debt
    pending_until = (
        tx.created_at + dt.timedelta(days=program.pending_days) if pending and program.pending_days else None
    )
    lot = None
    if lot_points:
        lot = _lot_build(
            account,
            tx,
            lot_points,
            pending_until=pending_until,
            expires_at=policy.lot_expires_at(
                policy=program.expiry_policy,
                months=program.expiry_months,
                years=program.expiry_years,
                credited_at=tx.created_at,
            ),
        )
    entry_kind = EntryKind.EARN if kind == TransactionKind.EARN else EntryKind(kind)
    system_kind = AccountKind.ISSUED if kind == TransactionKind.EARN else AccountKind.ADJUSTMENT
    source = system_account(
        program=program, kind=system_kind, partner=partner if system_kind == AccountKind.ISSUED else None
    )
    bucket = "pending" if lot is not None and lot.is_pending else "available"
    earning = kind == TransactionKind.EARN
    entries = _entries_build(tx, [(account, entry_kind, points, lot), (source, entry_kind, -points, None)])
    increments = {"available": 0, "pending": 0, "debt": -pay_debt, "earned": points if earning else 0}
    increments[bucket] += lot_points
    sets = {"last_activity_at": tx.created_at} if earning else None
    if not _credit_write(tx=tx, lot=lot, entries=entries, account=account, increments=increments, sets=sets):
        raise _key_used()  # a concurrent request with the same key committed first
    _account_added(account, increments, sets)
    if purchase is not None:
        purchase.points_earned += points
    if earning:
        _touch_activity(account, tx.created_at)
    tx.credited_lot = lot
    return tx


def _credit_write(
    *,
    tx: LedgerTransaction,
    lot: Lot | None,
    entries: list[Entry],
    account: Account,
    increments: dict[str, int],
    sets: dict[str, Any] | None,
) -> bool:
    """Write a credit: the transaction (skipped, and then nothing else, when its idempotency key
    exists: returns False), its lot, its entries, the account's figures and the purchase's points.
    PostgreSQL: one call of ``ledger_credit``; elsewhere the ORM (``_credit_write_orm``). The
    primary keys of ``tx`` and ``lot`` are set; ``account`` is not changed (the caller adds)."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        return _credit_write_orm(tx=tx, lot=lot, entries=entries, account=account, increments=increments, sets=sets)
    account_entry, source_entry = entries  # the member's and the system account's
    with db.cursor() as cursor:
        cursor.execute(
            LEDGER_CREDIT_CALL,
            [
                tx.program_id,
                tx.kind,
                tx.reason,
                tx.idempotency_key,
                _EXPLANATION.get_db_prep_save(tx.explanation, db),
                tx.actor_id,
                tx.actor_label,
                tx.purchase_id,
                tx.partner_id,
                tx.created_at,
                account.pk,
                source_entry.account_id,
                account_entry.kind,
                account_entry.points,
                lot.points if lot is not None else 0,
                lot.is_pending if lot is not None else False,
                lot.available_at if lot is not None else None,
                lot.expires_at if lot is not None else None,
                increments["available"],
                increments["pending"],
                increments["debt"],
                increments["earned"],
                (sets or {}).get("last_activity_at"),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    tx.pk = row[0]
    if lot is not None:
        lot.pk = row[1]
    return True


def _credit_write_orm(
    *,
    tx: LedgerTransaction,
    lot: Lot | None,
    entries: list[Entry],
    account: Account,
    increments: dict[str, int],
    sets: dict[str, Any] | None,
) -> bool:
    """``_credit_write`` through the ORM: what ``ledger_credit`` does, one statement at a time."""
    if not _transaction_insert(tx):
        return False
    if lot is not None:
        lot.save(force_insert=True)
    Entry.objects.bulk_create(entries)  # they take the primary keys of tx and lot as saved now
    changes: dict[str, Any] = {name: F(name) + delta for name, delta in increments.items() if delta}
    changes.update(sets or {})
    if changes:
        Account.objects.filter(pk=account.pk).update(**changes)
    if tx.purchase_id is not None:
        Purchase.objects.filter(pk=tx.purchase_id).update(points_earned=F("points_earned") + entries[0].points)
    return True


_EXPLANATION = LedgerTransaction._meta.get_field("explanation")
# Parameters in the order of ledger_credit's arguments (ledger migration 0008), each cast to
# the argument's type (an unknown-typed NULL would not choose the function).
LEDGER_CREDIT_CALL = (
    "SELECT transaction_id, lot_id FROM ledger_credit("
    "%s::bigint, %s::varchar, %s::varchar, %s::varchar, %s::jsonb, %s::integer, %s::varchar, %s::bigint,"
    " %s::bigint, %s::timestamptz, %s::bigint, %s::bigint, %s::varchar, %s::bigint, %s::bigint, %s::boolean,"
    " %s::timestamptz, %s::timestamptz, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::timestamptz)"
)


def points_debit(
    *,
    account: Account,
    points: int,
    reason: str,
    kind: str = TransactionKind.REDEEM,
    idempotency_key: str | None = None,
    redemption: Redemption | None = None,
    actor: Actor = None,
) -> LedgerTransaction:
    """Spend available points FEFO. Fails with ``insufficient_points`` and changes nothing."""
    _check_points(points)
    with transaction.atomic(), account_locked(account=account) as locked:
        if (found := _existing(idempotency_key, locked.account)) is not None:
            return found
        return _debit_locked(
            locked,
            points,
            reason=reason,
            kind=kind,
            idempotency_key=idempotency_key,
            redemption=redemption,
            actor=actor,
        )


def _debit_locked(
    locked: LockedAccount,
    points: int,
    *,
    reason: str,
    kind: str,
    idempotency_key: str | None,
    redemption: Redemption | None = None,
    actor: Actor = None,
) -> LedgerTransaction:
    account = locked.account
    program = account.program
    if kind == TransactionKind.REDEEM and points < program.min_redeem:
        raise ValidationFailed(f"At least {program.min_redeem} points per redemption", code="below_min_redeem")
    if account.available < points:
        raise Conflict(
            f"Only {account.available} points available, {points} asked",
            code="insufficient_points",
            extra={"available": account.available, "requested": points},
        )
    tx = _new_transaction(
        program=program,
        kind=kind,
        idempotency_key=idempotency_key,
        actor=actor,
        reason=reason,
        redemption=redemption,
        partner=redemption.partner if redemption is not None else None,
    )
    taken, _ = _consume(account, points, tx)
    if taken != points:  # pragma: no cover - cached balance and lots disagree: refuse, never guess
        raise AssertionError(f"account {account.pk}: cached available {account.available} but lots gave {taken}")
    entry_kind = EntryKind(kind) if kind in EntryKind.values else EntryKind.REDEEM
    sink = system_account(
        program=program, kind=AccountKind.REDEMPTION if kind == TransactionKind.REDEEM else AccountKind.ADJUSTMENT
    )
    _post(tx, [(account, entry_kind, -points, None), (sink, entry_kind, points, None)])
    redeeming = kind == TransactionKind.REDEEM
    _account_add(
        locked,
        increments={"available": -points, "redeemed": points if redeeming else 0},
        sets={"last_activity_at": tx.created_at} if redeeming else None,
    )
    if kind == TransactionKind.REDEEM:
        _touch_activity(account, clock.now())
    return tx


def points_adjust(
    *, account: Account, points: int, reason: str, actor: AbstractBaseUser, idempotency_key: str | None = None
) -> LedgerTransaction:
    """Staff correction, positive (a new lot) or negative (FEFO debit); needs a reason; audited."""
    if not reason or not reason.strip():
        raise ValidationFailed("A reason is required", code="reason_required", fields={"reason": ["Required."]})
    if not isinstance(points, int) or points == 0:
        raise ValidationFailed("points must be a non-zero whole number", code="invalid_points")
    with transaction.atomic():
        before = Account.objects.get(pk=account.pk)
        if points > 0:
            tx = points_credit(
                account=account,
                points=points,
                reason=reason,
                kind=TransactionKind.ADJUST,
                idempotency_key=idempotency_key,
                actor=actor,
            )
        else:
            tx = points_debit(
                account=account,
                points=-points,
                reason=reason,
                kind=TransactionKind.ADJUST,
                idempotency_key=idempotency_key,
                actor=actor,
            )
        if idempotency_key and _adjust_audited(account, tx):
            return tx  # a repeat (double click, resent form): the first call wrote and audited it
        after = Account.objects.get(pk=account.pk)
        audit_record(
            actor=actor,
            action="points.adjust",
            target=after,
            reason=reason,
            before={"available": before.available, "pending": before.pending},
            after={"available": after.available, "pending": after.pending, "points": points, "transaction": tx.pk},
        )
    return tx


def _adjust_audited(account: Account, tx: LedgerTransaction) -> bool:
    """Whether the adjustment ``tx`` already has its audit row (read after the account lock, so a
    concurrent first call has committed both)."""
    from loyalty.core.models import AuditEvent

    return AuditEvent.objects.filter(
        action="points.adjust", target_type="ledger.account", target_id=str(account.pk), after__transaction=tx.pk
    ).exists()


def points_transfer(
    *,
    source: Account,
    target: Account,
    points: int,
    reason: str,
    idempotency_key: str | None = None,
    actor: Actor = None,
) -> LedgerTransaction:
    """Move available points between two members of one program. Both accounts are locked in
    primary-key order; the target gets lots with the expiry dates of the lots consumed."""
    _check_points(points)
    if source.pk == target.pk:
        raise ValidationFailed("Cannot transfer to the same account", code="same_account")
    if source.program_id != target.program_id:
        raise ValidationFailed("Both accounts must be in the same program", code="program_mismatch")
    with transaction.atomic(), contextlib.ExitStack() as stack:
        first, second = sorted([source, target], key=lambda a: a.pk)
        locked = {a.pk: stack.enter_context(account_locked(account=a)) for a in (first, second)}
        source_locked, target_locked = locked[source.pk], locked[target.pk]
        source, target = source_locked.account, target_locked.account
        if (found := _existing(idempotency_key, source)) is not None:
            return found
        if source.available < points:
            raise Conflict(f"Only {source.available} points available", code="insufficient_points")
        tx = _new_transaction(
            program=source.program,
            kind=TransactionKind.TRANSFER,
            idempotency_key=idempotency_key,
            actor=actor,
            reason=reason,
        )
        _consume(source, points, tx)
        by_expiry: dict[dt.datetime | None, int] = {}
        for expires_at, taken in tx.allocations.values_list("lot__expires_at", "points"):
            by_expiry[expires_at] = by_expiry.get(expires_at, 0) + taken
        rows = [(source, EntryKind.TRANSFER_OUT, -points, None)]
        for expires_at, taken in by_expiry.items():
            rows.append(
                (
                    target,
                    EntryKind.TRANSFER_IN,
                    taken,
                    _new_lot(target, tx, taken, pending_until=None, expires_at=expires_at),
                )
            )
        _post(tx, rows)
        _account_add(source_locked, increments={"available": -points})
        _account_add(target_locked, increments={"available": points})
    return tx


def points_redeem(
    *,
    account: Account,
    points: int,
    description: str = "",
    partner: Partner | None = None,
    external_id: str | None = None,
    idempotency_key: str | None = None,
    actor: Actor = None,
) -> Redemption:
    """Burn points (at a partner or for a reward). The same (partner, external_id) again returns
    the first redemption when it asked the same thing, else ``duplicate_external_id``."""
    _check_points(points)
    with transaction.atomic(), account_locked(account=account) as locked:
        account = locked.account
        if external_id:
            existing = Redemption.objects.filter(partner=partner, external_id=external_id).first()
            if existing is not None:
                if existing.account_id == account.pk and existing.points == points:
                    return existing
                raise Conflict("This external_id was used for another redemption", code="duplicate_external_id")
        if idempotency_key and (found := _existing(idempotency_key, account)) is not None:
            return found.redemption
        redemption = Redemption.objects.create(
            account=account,
            partner=partner,
            external_id=external_id or None,
            description=description,
            points=points,
            created_at=clock.now(),
        )
        _debit_locked(
            locked,
            points,
            reason=description or "redemption",
            kind=TransactionKind.REDEEM,
            idempotency_key=idempotency_key,
            redemption=redemption,
            actor=actor,
        )
    return redemption


def points_refund(
    *, redemption: Redemption, reason: str = "redemption cancelled", actor: Actor = None
) -> LedgerTransaction:
    """Cancel a redemption: give its points back to the exact lots they came from. A lot that
    expired meanwhile is restored as a new lot living the program's ``refund_grace_days``."""
    with transaction.atomic(), account_locked(account=redemption.account) as locked:
        account = locked.account
        redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
        key = f"refund:redemption:{redemption.pk}"
        if redemption.status == RedemptionStatus.CANCELLED:
            return LedgerTransaction.objects.get(idempotency_key=key)
        debit = redemption.transactions.get(kind=TransactionKind.REDEEM)
        program = account.program
        now = clock.now()
        tx = _new_transaction(
            program=program,
            kind=TransactionKind.REFUND,
            idempotency_key=key,
            actor=actor,
            reason=reason,
            redemption=redemption,
            reverses=debit,
            partner=redemption.partner,
        )
        rows = []
        for allocation in debit.allocations.select_related("lot").order_by("pk"):
            lot = allocation.lot
            if lot.expires_at is None or lot.expires_at > now:
                Lot.objects.filter(pk=lot.pk).update(remaining=F("remaining") + allocation.points)
                rows.append((account, EntryKind.REFUND, allocation.points, lot))
            else:
                restored = _new_lot(
                    account,
                    tx,
                    allocation.points,
                    pending_until=None,
                    expires_at=now + dt.timedelta(days=program.refund_grace_days),
                )
                rows.append((account, EntryKind.REFUND, allocation.points, restored))
        sink = system_account(program=program, kind=AccountKind.REDEMPTION)
        rows.append((sink, EntryKind.REFUND, -redemption.points, None))
        _post(tx, rows)
        _account_add(locked, increments={"available": redemption.points, "redeemed": -redemption.points})
        Redemption.objects.filter(pk=redemption.pk).update(status=RedemptionStatus.CANCELLED, cancelled_at=now)
    return tx
