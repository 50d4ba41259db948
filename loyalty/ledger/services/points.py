"""Credits, debits (FEFO), adjustments, transfers, redemptions and refunds.

Every service locks the member account (``account_lock``: select_for_update, then settle),
runs in ``transaction.atomic`` and writes one ledger transaction whose entries sum to zero.
An idempotency key is a unique column: a repeat returns the first result and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import F, Q

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.services import audit_record
from loyalty.core.sql import Writes, row_add, row_insert, rows_insert
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
from loyalty.ledger.services.accounts import account_lock, account_lock_held, account_lock_spent, system_account

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
    *, program: Program, kind: str, idempotency_key: str | None, actor: Any = None, **fields: Any
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


def _new_transaction(
    *, program: Program, kind: str, idempotency_key: str | None, actor: Any = None, **fields: Any
) -> LedgerTransaction:
    tx = _transaction_build(program=program, kind=kind, idempotency_key=idempotency_key, actor=actor, **fields)
    if not row_insert(tx, skip_if_exists=True):
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
    rows_insert(_entries_build(tx, rows))


def _account_add(account: Account, *, increments: dict[str, int], sets: dict | None = None) -> None:
    """Add to the cached figures of a locked member account (one UPDATE) and mark its instance
    stale (``account_lock_spent``)."""
    row_add(Account, account.pk, increments=increments, sets=sets)
    account_lock_spent(account)


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
    row_insert(lot)
    return lot


def points_credit(
    *,
    account: Account,
    points: int,
    reason: str,
    kind: str = TransactionKind.EARN,
    idempotency_key: str | None = None,
    pending: bool = False,
    purchase: Any | None = None,
    partner: Any | None = None,
    explanation: list | None = None,
    actor: Any | None = None,
) -> LedgerTransaction:
    """Credit points into a new lot (pending for the program's return window when ``pending``).
    Debt from earlier clawbacks is paid off first. The funding partner's issued account is debited.

    Given the very instance ``account_lock`` returned in the caller's still-open atomic block
    (``account_lock_held``), the account is used as locked and settled there: no second lock, no
    second settle, and no savepoint of its own (the caller's block is the unit of work; an error
    here fails it). Any other instance is locked here, as always.
    A transaction written by this call carries ``credited_lot``: the new lot, or None when the
    points all paid debt (an ``idempotency_key`` repeat returns the stored transaction as read)."""
    _check_points(points)
    held = account_lock_held(account)
    with transaction.atomic(savepoint=not held):
        if not held:
            account = account_lock(account=account)
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
        # one unit of work (one statement on PostgreSQL): transaction, lot, entries, balances
        writes = Writes()
        writes.insert(tx, skip_if_exists=True)  # the idempotency key is its only unique column
        if lot is not None:
            writes.insert(lot)
        writes.insert_many(
            _entries_build(tx, [(account, entry_kind, points, lot), (source, entry_kind, -points, None)])
        )
        writes.add(
            Account,
            account.pk,
            increments={bucket: lot_points, "debt": -pay_debt, "earned": points if earning else 0},
            sets={"last_activity_at": tx.created_at} if earning else None,
        )
        if purchase is not None:
            writes.add(Purchase, purchase.pk, increments={"points_earned": points})
        if not writes.run():
            raise _key_used()
        account_lock_spent(account)
        if earning:
            _touch_activity(account, tx.created_at)
    tx.credited_lot = lot
    return tx


def points_debit(
    *,
    account: Account,
    points: int,
    reason: str,
    kind: str = TransactionKind.REDEEM,
    idempotency_key: str | None = None,
    redemption: Redemption | None = None,
    actor: Any | None = None,
) -> LedgerTransaction:
    """Spend available points FEFO. Fails with ``insufficient_points`` and changes nothing."""
    _check_points(points)
    with transaction.atomic():
        account = account_lock(account=account)
        if (found := _existing(idempotency_key, account)) is not None:
            return found
        return _debit_locked(
            account,
            points,
            reason=reason,
            kind=kind,
            idempotency_key=idempotency_key,
            redemption=redemption,
            actor=actor,
        )


def _debit_locked(
    account: Account, points: int, *, reason: str, kind: str, idempotency_key: str | None, redemption=None, actor=None
) -> LedgerTransaction:
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
        account,
        increments={"available": -points, "redeemed": points if redeeming else 0},
        sets={"last_activity_at": tx.created_at} if redeeming else None,
    )
    if kind == TransactionKind.REDEEM:
        _touch_activity(account, clock.now())
    return tx


def points_adjust(
    *, account: Account, points: int, reason: str, actor: Any, idempotency_key: str | None = None
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


def points_transfer(
    *,
    source: Account,
    target: Account,
    points: int,
    reason: str,
    idempotency_key: str | None = None,
    actor: Any | None = None,
) -> LedgerTransaction:
    """Move available points between two members of one program. Both accounts are locked in
    primary-key order; the target gets lots with the expiry dates of the lots consumed."""
    _check_points(points)
    if source.pk == target.pk:
        raise ValidationFailed("Cannot transfer to the same account", code="same_account")
    if source.program_id != target.program_id:
        raise ValidationFailed("Both accounts must be in the same program", code="program_mismatch")
    with transaction.atomic():
        first, second = sorted([source, target], key=lambda a: a.pk)
        locked = {a.pk: account_lock(account=a) for a in (first, second)}
        source, target = locked[source.pk], locked[target.pk]
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
        _account_add(source, increments={"available": -points})
        _account_add(target, increments={"available": points})
    return tx


def points_redeem(
    *,
    account: Account,
    points: int,
    description: str = "",
    partner: Any | None = None,
    external_id: str | None = None,
    idempotency_key: str | None = None,
    actor: Any | None = None,
) -> Redemption:
    """Burn points (at a partner or for a reward). The same (partner, external_id) again returns
    the first redemption when it asked the same thing, else ``duplicate_external_id``."""
    _check_points(points)
    with transaction.atomic():
        account = account_lock(account=account)
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
            account,
            points,
            reason=description or "redemption",
            kind=TransactionKind.REDEEM,
            idempotency_key=idempotency_key,
            redemption=redemption,
            actor=actor,
        )
    return redemption


def points_refund(
    *, redemption: Redemption, reason: str = "redemption cancelled", actor: Any | None = None
) -> LedgerTransaction:
    """Cancel a redemption: give its points back to the exact lots they came from. A lot that
    expired meanwhile is restored as a new lot living the program's ``refund_grace_days``."""
    with transaction.atomic():
        account = account_lock(account=redemption.account)
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
        _account_add(account, increments={"available": redemption.points, "redeemed": -redemption.points})
        Redemption.objects.filter(pk=redemption.pk).update(status=RedemptionStatus.CANCELLED, cancelled_at=now)
    return tx
