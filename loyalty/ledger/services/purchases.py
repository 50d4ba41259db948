"""Purchases and returns. A return claws points back per the program's return policy,
proportional to the returned share of the eligible amount; what cannot be taken back is
written off (or becomes debt under ``allow_negative``), recorded, never silently dropped."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import F, Sum

from loyalty.core import clock
from loyalty.core.constraints import is_external_id_repeat
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.ledger.models import (
    AccountKind,
    Allocation,
    EntryKind,
    Lot,
    Program,
    Purchase,
    PurchaseLine,
    Return,
    ReturnPolicy,
    TransactionKind,
)
from loyalty.ledger.services.accounts import system_account
from loyalty.ledger.services.locking import LockedAccount, member_account_locked
from loyalty.ledger.services.points import _account_add, _consume, _new_transaction, _post

if TYPE_CHECKING:
    from loyalty.partners.models import Partner
    from members.models import Member

CENT = Decimal("0.01")


def _money(value: Any, field: str) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(CENT)
    except Exception:
        raise ValidationFailed(
            f"{field} must be an amount", code="invalid_amount", fields={field: ["Not a number."]}
        ) from None
    if not amount.is_finite():
        raise ValidationFailed(f"{field} must be an amount", code="invalid_amount", fields={field: ["Not a number."]})
    return amount


def purchase_create(
    *,
    program: Program,
    member: Member,
    external_id: str,
    occurred_at: dt.datetime,
    lines: list[dict[str, Any]],
    partner: Partner | None = None,
    currency: str | None = None,
    total: Any | None = None,
    tax: Any = 0,
    discount: Any = 0,
    store_code: str = "",
    eligible_amount: Any | None = None,
) -> Purchase:
    """Store a purchase and its lines. ``eligible_amount`` defaults to the sum of line amounts
    minus line discounts. Raises ``duplicate_external_id`` if (partner, external_id) exists."""
    if not external_id:
        raise ValidationFailed("external_id is required", code="external_id_required")
    parsed = []
    for number, line in enumerate(lines, start=1):
        amount = _money(line.get("amount", 0), f"lines[{number}].amount")
        line_discount = _money(line.get("discount", 0), f"lines[{number}].discount")
        quantity = Decimal(str(line.get("quantity", 1)))
        if quantity <= 0 or amount < 0 or line_discount < 0 or line_discount > amount:
            raise ValidationFailed(
                f"line {number}: quantity must be > 0 and 0 <= discount <= amount", code="invalid_line"
            )
        parsed.append(
            PurchaseLine(
                sku=str(line.get("sku", ""))[:64],
                category=str(line.get("category", ""))[:100],
                quantity=quantity,
                unit_price=_money(line.get("unit_price", 0), "unit_price"),
                amount=amount,
                discount=line_discount,
            )
        )
    eligible = (
        _money(eligible_amount, "eligible_amount")
        if eligible_amount is not None
        else sum((p.amount - p.discount for p in parsed), Decimal("0"))
    )
    if eligible < 0:
        raise ValidationFailed("eligible amount cannot be negative", code="invalid_amount")
    purchase = Purchase(
        program=program,
        member=member,
        partner=partner,
        external_id=external_id,
        store_code=store_code,
        occurred_at=occurred_at,
        currency=currency or program.currency,
        total=_money(total if total is not None else eligible, "total"),
        tax=_money(tax, "tax"),
        discount=_money(discount, "discount"),
        eligible_amount=eligible,
        created_at=clock.now(),
    )
    if not _purchase_write(purchase, parsed):
        raise Conflict("A purchase with this external_id exists", code="duplicate_external_id")
    return purchase


def _purchase_write(purchase: Purchase, lines: list[PurchaseLine]) -> bool:
    """INSERT the purchase and its lines; False (nothing written, the caller's transaction still
    usable) when its external id exists. PostgreSQL: one call of ``ledger_purchase_insert``
    (ledger migration 0008); elsewhere the ORM (``_purchase_write_orm``). Sets the purchase's
    primary key (the lines' are not read)."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        return _purchase_write_orm(purchase, lines)
    with db.cursor() as cursor:
        cursor.execute(
            LEDGER_PURCHASE_INSERT_CALL,
            [
                purchase.program_id,
                purchase.member_id,
                purchase.partner_id,
                purchase.external_id,
                purchase.store_code,
                purchase.occurred_at,
                purchase.currency,
                purchase.total,
                purchase.tax,
                purchase.discount,
                purchase.eligible_amount,
                purchase.returned_amount,
                purchase.points_earned,
                purchase.created_at,
                [line.sku for line in lines],
                [line.category for line in lines],
                [line.quantity for line in lines],
                [line.unit_price for line in lines],
                [line.amount for line in lines],
                [line.discount for line in lines],
                [line.returned_quantity for line in lines],
            ],
        )
        (purchase_id,) = cursor.fetchone()
    if purchase_id is None:
        return False
    purchase.pk = purchase_id
    for line in lines:
        line.purchase = purchase
    return True


def _purchase_write_orm(purchase: Purchase, lines: list[PurchaseLine]) -> bool:
    """``_purchase_write`` through the ORM: what ``ledger_purchase_insert`` does."""
    try:
        with transaction.atomic():
            purchase.save(force_insert=True)
    except IntegrityError:
        return False
    for line in lines:
        line.purchase = purchase
    PurchaseLine.objects.bulk_create(lines)
    return True


# Parameters in the order of ledger_purchase_insert's arguments, each cast to its type.
LEDGER_PURCHASE_INSERT_CALL = (
    "SELECT ledger_purchase_insert(%s::bigint, %s::bigint, %s::bigint, %s::varchar, %s::varchar, %s::timestamptz,"
    " %s::varchar, %s::numeric, %s::numeric, %s::numeric, %s::numeric, %s::numeric, %s::bigint, %s::timestamptz,"
    " %s::varchar[], %s::varchar[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[])"
)


def _returned_amount(
    purchase: Purchase, *, amount: Any | None, lines: list[dict[str, Any]] | None
) -> tuple[Decimal, list[dict]]:
    if (amount is None) == (not lines):
        raise ValidationFailed("Give either lines or amount", code="return_lines_or_amount")
    left = purchase.eligible_amount - purchase.returned_amount
    if left <= 0 and purchase.eligible_amount > 0:  # a second reversal of the whole purchase: a state clash
        raise Conflict("This purchase has already been returned in full", code="purchase_already_returned")
    if amount is not None:
        value = _money(amount, "amount")
        if value <= 0:
            raise ValidationFailed("amount must be positive", code="invalid_amount")
        if value > left:
            raise ValidationFailed(
                f"Only {left} of this purchase can still be returned", code="return_exceeds_purchase"
            )
        return value, []
    total = Decimal("0")
    recorded = []
    by_sku: dict[str, list[PurchaseLine]] = {}
    for line in purchase.lines.select_for_update().order_by("pk"):
        by_sku.setdefault(line.sku, []).append(line)
    for item in lines or []:
        sku, quantity = str(item.get("sku", "")), Decimal(str(item.get("quantity", 0)))
        if quantity <= 0:
            raise ValidationFailed("quantity must be positive", code="invalid_quantity")
        candidates = by_sku.get(sku)
        if not candidates:
            raise ValidationFailed(f"SKU {sku} is not in this purchase", code="return_unknown_sku")
        want = quantity
        for line in candidates:
            take = min(want, line.quantity - line.returned_quantity)
            if take <= 0:
                continue
            line.returned_quantity += take
            total += ((line.amount - line.discount) * take / line.quantity).quantize(CENT)
            want -= take
            if want == 0:
                break
        if want > 0:
            raise ValidationFailed(f"More of SKU {sku} returned than bought", code="return_exceeds_purchase")
        recorded.append({"sku": sku, "quantity": str(quantity)})
    PurchaseLine.objects.bulk_update([line for group in by_sku.values() for line in group], ["returned_quantity"])
    return min(total, left), recorded


def purchase_return_clawback(
    *,
    purchase: Purchase,
    external_id: str,
    amount: Any | None = None,
    lines: list[dict[str, Any]] | None = None,
    occurred_at: dt.datetime | None = None,
    partner: Partner | None = None,
) -> Return:
    """Record a return and take its share of the purchase's points back per the return policy.

    Points due = floor(points earned × returned so far ÷ eligible) − points already handled by
    earlier returns, so partial returns add up exactly to a full one."""
    if not external_id:
        raise ValidationFailed("external_id is required", code="external_id_required")
    with (
        transaction.atomic(),
        member_account_locked(member=purchase.member, program=purchase.program) as locked,
    ):
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        existing = Return.objects.filter(partner=partner, external_id=external_id).first()
        if existing is not None:
            if existing.purchase_id != purchase.pk:
                raise Conflict("This return external_id was used for another purchase", code="duplicate_external_id")
            return existing
        returned, recorded_lines = _returned_amount(purchase, amount=amount, lines=lines)
        now = clock.now()
        handled = (
            purchase.returns.aggregate(s=Sum(F("points_reversed") + F("points_written_off") + F("points_to_debt")))["s"]
            or 0
        )
        new_returned = purchase.returned_amount + returned
        target = (
            int(Decimal(purchase.points_earned) * new_returned / purchase.eligible_amount)
            if purchase.eligible_amount
            else 0
        )
        due = max(target - handled, 0)
        try:
            with transaction.atomic():
                ret = Return.objects.create(
                    purchase=purchase,
                    partner=partner,
                    external_id=external_id,
                    amount=returned,
                    lines=recorded_lines,
                    occurred_at=occurred_at or now,
                    created_at=now,
                )
        except IntegrityError as exc:
            if not is_external_id_repeat(exc):
                raise  # e.g. a check constraint: the API answers 422 with its own code
            raise Conflict("A return with this external_id exists", code="duplicate_external_id") from exc
        Purchase.objects.filter(pk=purchase.pk).update(returned_amount=F("returned_amount") + returned)
        if due:
            _clawback(locked, purchase, ret, due)
        ret.refresh_from_db()
    return ret


def _clawback(locked: LockedAccount, purchase: Purchase, ret: Return, due: int) -> None:
    account = locked.account
    program = account.program
    tx = _new_transaction(
        program=program,
        kind=TransactionKind.REVERSE,
        idempotency_key=f"return:{ret.pk}",
        reason=f"return {ret.external_id}",
        purchase=purchase,
        return_record=ret,
        partner=ret.partner,
    )
    own_lots = Lot.objects.filter(
        account=account, transaction__purchase=purchase, transaction__kind=TransactionKind.EARN, remaining__gt=0
    )
    took_available = took_pending = 0
    allocations, changed = [], []
    left = due
    for lot in own_lots.order_by("pk"):
        take = min(left, lot.remaining)
        lot.remaining -= take
        changed.append(lot)
        allocations.append(Allocation(transaction=tx, lot=lot, points=take))
        if lot.is_pending:
            took_pending += take
        else:
            took_available += take
        left -= take
        if not left:
            break
    Lot.objects.bulk_update(changed, ["remaining"])
    Allocation.objects.bulk_create(allocations)
    if left and program.return_policy in (ReturnPolicy.WITHIN_BALANCE, ReturnPolicy.ALLOW_NEGATIVE):
        more_available, more_pending = _consume(account, left, tx, include_pending=True)
        took_available += more_available
        took_pending += more_pending
        left -= more_available + more_pending
    to_debt = left if program.return_policy == ReturnPolicy.ALLOW_NEGATIVE else 0
    written_off = left - to_debt
    reversed_points = took_available + took_pending + to_debt
    issued = system_account(program=program, kind=AccountKind.ISSUED, partner=purchase.partner)
    rows = [
        (account, EntryKind.REVERSE, -reversed_points, None),
        (issued, EntryKind.REVERSE, reversed_points + written_off, None),
    ]
    if written_off:
        rows.append(
            (system_account(program=program, kind=AccountKind.WRITE_OFF), EntryKind.REVERSE, -written_off, None)
        )
    _post(tx, rows)
    _account_add(
        locked,
        increments={
            "available": -took_available,
            "pending": -took_pending,
            "debt": to_debt,
            "reversed": reversed_points,
        },
    )
    Return.objects.filter(pk=ret.pk).update(
        points_reversed=took_available + took_pending, points_to_debt=to_debt, points_written_off=written_off
    )
