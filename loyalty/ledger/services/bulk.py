"""Set-based services of the ledger for bulk loaders: the Complete Journey import, opening balances
migrated from another program. Each writes, for many at once, the rows its one-by-one
counterpart writes (``account_open``, ``purchase_create``, ``points_credit``), with the same
rules, so a loader never writes ledger tables itself.

How rows are written: on PostgreSQL, ids are drawn from the tables' sequences and the rows go in
by ``COPY`` (one statement per table); elsewhere by the ORM's ``bulk_create``. Cached figures
are added to (``rows_update``: ``SET available = available + %s``) under the accounts' row
locks, taken in primary-key order.

What ``account_locked`` would do between credits of one account is folded in: a new lot that
``points_credit`` makes pending is left pending only when its ``available_at`` is after the time
the account was last settled (``settled_at``, by default its last credit), and under
``inactivity_months`` every earn moves the expiry of all open lots to the last earn + N months.
Credits whose lots would expire before the account is settled are refused: those belong to the
one-by-one services (``credits_span_expiry``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.rows import is_postgresql, rows_insert, rows_update
from loyalty.ledger import policy
from loyalty.ledger.models import (
    Account,
    AccountKind,
    Entry,
    EntryKind,
    ExpiryPolicy,
    LedgerTransaction,
    Lot,
    Program,
    Purchase,
    PurchaseLine,
    TransactionKind,
)
from loyalty.ledger.services.accounts import system_account
from loyalty.ledger.services.jobs import settle_accounts
from loyalty.partners.models import Partner
from members.models import Member, MemberStatus

CREDIT_KINDS = (TransactionKind.EARN, TransactionKind.ADJUST)


# --- writing rows ---------------------------------------------------------------------------------


# --- accounts -------------------------------------------------------------------------------------


def accounts_open_many(
    *, program: Program, members: Sequence[Member], opened_at: Sequence[dt.datetime]
) -> dict[int, Account]:
    """The members' accounts in ``program`` (member id -> account), opened where missing at the
    given times (one per member), as ``account_open`` opens one; existing accounts are kept."""
    if len(members) != len(opened_at):
        raise ValueError("one opened_at per member")
    if any(m.status in (MemberStatus.CLOSED, MemberStatus.ERASED) for m in members):
        raise Conflict("A closed or erased member cannot open an account", code="member_inactive")
    Account.objects.bulk_create(
        [
            Account(member=m, program=program, kind=AccountKind.MEMBER, opened_at=at)
            for m, at in zip(members, opened_at, strict=True)
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    return {
        a.member_id: a
        for a in Account.objects.filter(program=program, kind=AccountKind.MEMBER, member__in=[m.pk for m in members])
    }


# --- credits --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credit:
    """One credit for ``points_credit_many``: what ``points_credit`` takes, and when (``at``).
    ``expires_at``: when the lot expires, for balances carried over from another program;
    by default the program's expiry policy decides, as for ``points_credit``."""

    account: Account
    points: int
    reason: str
    at: dt.datetime
    kind: str = TransactionKind.EARN
    idempotency_key: str | None = None
    pending: bool = False
    partner: Partner | None = None
    explanation: list = field(default_factory=list)
    expires_at: dt.datetime | None = None


def _check_credits(credits: Sequence[Credit]) -> None:
    for number, credit in enumerate(credits, start=1):
        points = credit.points
        if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
            raise ValidationFailed(
                f"credit {number}: points must be a positive whole number",
                code="invalid_points",
                fields={"points": ["Must be > 0."]},
            )
        if credit.kind not in CREDIT_KINDS:
            raise ValidationFailed(f"credit {number}: kind must be earn or adjust", code="invalid_kind")
        if credit.account.kind != AccountKind.MEMBER:
            raise ValidationFailed("Only member accounts hold balances", code="not_a_member_account")
    keys = [c.idempotency_key for c in credits if c.idempotency_key]
    if len(keys) != len(set(keys)):
        raise ValidationFailed("An idempotency key appears twice in the batch", code="idempotency_key_reused")


def _repeated(credits: Sequence[Credit]) -> set[str]:
    """Keys of ``credits`` already used: each by the same account (a repeat, skipped), else
    ``idempotency_key_reused``, as ``points_credit`` answers a repeat."""
    keys = [c.idempotency_key for c in credits if c.idempotency_key]
    if not keys:
        return set()
    used: dict[str, set[int]] = defaultdict(set)
    for key, account_id in Entry.objects.filter(transaction__idempotency_key__in=keys).values_list(
        "transaction__idempotency_key", "account_id"
    ):
        used[key].add(account_id)
    for credit in credits:
        if credit.idempotency_key in used and credit.account.pk not in used[credit.idempotency_key]:
            raise Conflict("This idempotency key was used for another account", code="idempotency_key_reused")
    return set(used)


def _lock(account_ids: set[int]) -> dict[int, Account]:
    """Lock the accounts (``select_for_update``, primary-key order); returns them as locked."""
    locked = {
        a.pk: a
        for a in Account.objects.select_for_update()
        .filter(pk__in=account_ids)
        .order_by("pk")
        .only("id", "program_id", "available", "pending", "debt")
    }
    if len(locked) != len(account_ids):
        raise ValidationFailed("An account to credit does not exist", code="account_not_found")
    return locked


def _settle(locked: dict[int, Account], first_at: dict[int, dt.datetime]) -> None:
    """Mature and expire what is due on accounts holding points at their first credit, what
    ``account_locked`` does before ``points_credit``: one probe finds the few with due lots."""
    holding = [pk for pk, a in locked.items() if a.available or a.pending]
    if not holding:
        return
    latest = max(first_at[pk] for pk in holding)
    probe = Lot.objects.filter(account_id__in=holding).filter(
        Q(is_pending=True, available_at__lte=latest) | Q(remaining__gt=0, expires_at__lte=latest)
    )
    for account_id in sorted(set(probe.values_list("account_id", flat=True))):
        if settle_accounts(account_ids=[account_id], now=first_at[account_id]):
            locked[account_id].refresh_from_db(fields=["available", "pending", "debt"])


def _actor_fields(actor: Any) -> tuple[int | None, str]:
    is_user = actor is not None and getattr(actor, "pk", None) is not None
    return (actor.pk if is_user else None), (actor.get_username() if is_user else str(actor or "system"))[:200]


def _credit(
    credits: Sequence[Credit],
    *,
    purchase_ids: Sequence[int | None],
    settled_at: Mapping[int, dt.datetime] | None,
    actor: Any,
) -> list[int | None]:
    """Write ``credits`` (the caller holds a transaction); returns each one's ledger transaction
    id, None for a repeat of an idempotency key."""
    _check_credits(credits)
    repeated = _repeated(credits)
    todo = [(i, c) for i, c in enumerate(credits) if not (c.idempotency_key and c.idempotency_key in repeated)]
    result: list[int | None] = [None] * len(credits)
    if not todo:
        return result
    todo.sort(key=lambda ic: (ic[1].account.pk, ic[1].at, ic[0]))
    first_at: dict[int, dt.datetime] = {}
    last_at: dict[int, dt.datetime] = {}
    last_earn: dict[int, dt.datetime] = {}
    for _, c in todo:
        first_at.setdefault(c.account.pk, c.at)
        last_at[c.account.pk] = c.at
        if c.kind == TransactionKind.EARN:
            last_earn[c.account.pk] = c.at
    locked = _lock(set(first_at))
    _settle(locked, first_at)
    by_id = Program.objects.in_bulk({a.program_id for a in locked.values()})
    programs = {pk: by_id[a.program_id] for pk, a in locked.items()}
    actor_id, actor_label = _actor_fields(actor)

    debt = {pk: a.debt for pk, a in locked.items()}
    deltas: dict[int, dict[str, int]] = defaultdict(lambda: {"available": 0, "pending": 0, "debt": 0, "earned": 0})
    transactions, lots, lot_of = [], [], []  # lot_of: per credit, the index of its lot or None
    for index, credit in todo:
        pk, program, now = credit.account.pk, programs[credit.account.pk], credit.at
        settled = (settled_at or {}).get(pk, last_at[pk])
        pay = min(credit.points, debt[pk])
        debt[pk] -= pay
        lot_points = credit.points - pay
        earning = credit.kind == TransactionKind.EARN
        transactions.append(
            (
                program.pk,
                credit.kind,
                credit.reason[:255],
                credit.idempotency_key or None,
                purchase_ids[index],
                credit.partner.pk if credit.partner is not None else None,
                actor_id,
                actor_label,
                list(credit.explanation),
                now,
            )
        )
        bucket = "available"
        if lot_points:
            pending_until = (
                now + dt.timedelta(days=program.pending_days) if credit.pending and program.pending_days else None
            )
            available_at = pending_until if pending_until is not None and pending_until > now else now
            expires_at = credit.expires_at or policy.lot_expires_at(
                policy=program.expiry_policy, months=program.expiry_months, years=program.expiry_years, credited_at=now
            )
            if program.expiry_policy == ExpiryPolicy.INACTIVITY_MONTHS and pk in last_earn:
                expires_at = policy.add_months(last_earn[pk], program.expiry_months)
            if expires_at is not None and expires_at <= settled:
                raise ValidationFailed(
                    "Points of this batch would expire before its last credit: credit them one by one",
                    code="credits_span_expiry",
                )
            is_pending = available_at > settled
            bucket = "pending" if is_pending else "available"
            lot_of.append(len(lots))
            lots.append([pk, None, lot_points, lot_points, is_pending, available_at, expires_at, now])
        else:
            lot_of.append(None)
        figures = deltas[pk]
        figures[bucket] += lot_points
        figures["debt"] -= pay
        figures["earned"] += credit.points if earning else 0

    tx_ids = rows_insert(
        LedgerTransaction,
        [
            "program_id",
            "kind",
            "reason",
            "idempotency_key",
            "purchase_id",
            "partner_id",
            "actor_id",
            "actor_label",
            "explanation",
            "created_at",
        ],
        transactions,
        ids=True,
    )
    for tx_id, lot_index in zip(tx_ids, lot_of, strict=True):
        if lot_index is not None:
            lots[lot_index][1] = tx_id
    lot_ids = rows_insert(
        Lot,
        [
            "account_id",
            "transaction_id",
            "points",
            "remaining",
            "is_pending",
            "available_at",
            "expires_at",
            "created_at",
        ],
        [tuple(lot) for lot in lots],
        ids=True,
    )
    sources: dict[tuple[int, str, int | None], int] = {}  # the system account each credit is funded from

    def source_of(credit: Credit, program: Program) -> int:
        earning = credit.kind == TransactionKind.EARN
        partner = credit.partner if earning else None
        key = (program.pk, credit.kind, partner.pk if partner is not None else None)
        if key not in sources:
            kind = AccountKind.ISSUED if earning else AccountKind.ADJUSTMENT
            sources[key] = system_account(program=program, kind=kind, partner=partner).pk
        return sources[key]

    entries = []
    for (index, credit), tx_id, lot_index in zip(todo, tx_ids, lot_of, strict=True):
        result[index] = tx_id
        kind = (EntryKind.EARN if credit.kind == TransactionKind.EARN else EntryKind.ADJUST).value
        lot_id = lot_ids[lot_index] if lot_index is not None else None
        entries.append((tx_id, credit.account.pk, lot_id, kind, credit.points, credit.at))
        entries.append((tx_id, source_of(credit, programs[credit.account.pk]), None, kind, -credit.points, credit.at))
    rows_insert(Entry, ["transaction_id", "account_id", "lot_id", "kind", "points", "created_at"], entries, ids=False)

    # the cached figures move by what was credited (counters added to, under the lock)
    rows_update(
        Account,
        rows=[
            (pk, f["available"], f["pending"], f["debt"], f["earned"], last_earn.get(pk))
            for pk, f in sorted(deltas.items())
        ],
        add_fields=["available", "pending", "debt", "earned"],
        set_fields=["last_activity_at"],
    )
    _touch_activity(locked, last_earn, programs)
    return result


def _touch_activity(
    locked: dict[int, Account], last_earn: dict[int, dt.datetime], programs: dict[int, Program]
) -> None:
    """Under ``inactivity_months`` an earn moves the expiry of every open lot of the account to
    the earn + N months: for accounts that held lots before the batch, one UPDATE per distinct
    last earn (the batch's own lots have it already)."""
    by_time: dict[dt.datetime, list[int]] = defaultdict(list)
    for pk, at in last_earn.items():
        program = programs[pk]
        if program.expiry_policy == ExpiryPolicy.INACTIVITY_MONTHS and (locked[pk].available or locked[pk].pending):
            by_time[policy.add_months(at, program.expiry_months)].append(pk)
    for expires_at, account_ids in by_time.items():
        Lot.objects.filter(account_id__in=account_ids, remaining__gt=0).update(expires_at=expires_at)


@dataclass(frozen=True)
class CreditResult:
    """Per credit given, the id of its ledger transaction, or None when its idempotency key was
    used before (nothing written for it)."""

    transaction_ids: list[int | None]

    @property
    def credited(self) -> int:
        return sum(1 for t in self.transaction_ids if t is not None)

    @property
    def repeated(self) -> int:
        return len(self.transaction_ids) - self.credited


def points_credit_many(
    *, credits: Sequence[Credit], settled_at: Mapping[int, dt.datetime] | None = None, actor: Any | None = None
) -> CreditResult:
    """``points_credit`` for many credits at once, in one transaction: a new lot each (pending for
    the return window when ``pending``), debt paid first, the funding partner's issued account
    (or, for ``adjust``, the adjustment account) debited, the accounts' figures moved, all
    set-based. A credit whose idempotency key was used by its account before writes nothing (a
    repeat); used by another account, or twice in the batch, it is ``idempotency_key_reused``.
    ``settled_at``: per account id, when ``account_locked`` last ran on it (default: its last
    credit), for lots whose return window ends before then."""
    with transaction.atomic():
        return CreditResult(_credit(credits, purchase_ids=[None] * len(credits), settled_at=settled_at, actor=actor))


# --- purchases ------------------------------------------------------------------------------------


def money_text(cents: int) -> str:
    """Cents as the text of a 2-place decimal ("-0.05", "12.30"), exact."""
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _money_texts(cents: np.ndarray) -> list[str]:
    unique, inverse = np.unique(cents, return_inverse=True)
    texts = np.array([money_text(int(c)) for c in unique], dtype=object)
    return texts[inverse.reshape(-1)].tolist()


def _copy_escape(text: str) -> str:
    """Text as a field of PostgreSQL's COPY text format."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@dataclass
class PurchaseLineColumns:
    """Purchase lines as columns (money in cents), for ``purchases_record_many``: a purchase's
    lines are a range of rows."""

    sku: np.ndarray  # int64 product ids (stored as text)
    category: np.ndarray  # int64 codes into ``categories``
    categories: list[str]
    quantity: np.ndarray  # int64
    amount: np.ndarray  # int64 cents
    discount: np.ndarray  # int64 cents

    def bases(self) -> np.ndarray:
        """Prefix sums of the rows' earn bases (amount - discount): a range's base is a difference."""
        return np.concatenate([[0], np.cumsum(self.amount - self.discount)])

    def line(self, i: int) -> dict[str, Any]:
        """Row ``i`` as ``purchase_create`` takes a line."""
        from decimal import Decimal

        return {
            "sku": str(int(self.sku[i])),
            "category": self.categories[int(self.category[i])],
            "quantity": int(self.quantity[i]),
            "amount": Decimal(money_text(int(self.amount[i]))),
            "discount": Decimal(money_text(int(self.discount[i]))),
        }


@dataclass(frozen=True)
class NewPurchase:
    """One purchase for ``purchases_record_many``: what ``purchase_create`` takes (lines: rows
    ``start:stop`` of the columns), when it was recorded (default: when it occurred), and the
    points it earns with their explanation (``points_credit`` with the purchase, pending)."""

    account: Account
    external_id: str
    occurred_at: dt.datetime
    start: int
    stop: int
    store_code: str = ""
    recorded_at: dt.datetime | None = None
    points: int = 0
    explanation: list = field(default_factory=list)


def _check_lines(columns: PurchaseLineColumns, rows: np.ndarray) -> None:
    quantity, amount, discount = columns.quantity[rows], columns.amount[rows], columns.discount[rows]
    if (quantity <= 0).any() or (amount < 0).any() or (discount < 0).any() or (discount > amount).any():
        raise ValidationFailed("lines: quantity must be > 0 and 0 <= discount <= amount", code="invalid_line")


def _lines_insert(columns: PurchaseLineColumns, rows: np.ndarray, purchase_of_row: np.ndarray) -> None:
    attnames = ["purchase_id", "sku", "category", "quantity", "unit_price", "amount", "discount", "returned_quantity"]
    if is_postgresql():
        # the rows as COPY text, built column-wise (1.5M lines a year: no Python loop per line)
        categories = np.array([_copy_escape(c) for c in columns.categories], dtype=object)
        text = "".join(
            purchase_of_row.astype(str).astype(object)
            + "\t"
            + columns.sku[rows].astype(str).astype(object)
            + "\t"
            + categories[columns.category[rows]]
            + "\t"
            + columns.quantity[rows].astype(str).astype(object)
            + "\t0\t"
            + np.array(_money_texts(columns.amount[rows]), dtype=object)
            + "\t"
            + np.array(_money_texts(columns.discount[rows]), dtype=object)
            + "\t0\n"
        )
        table = connection.ops.quote_name(PurchaseLine._meta.db_table)
        names = ", ".join(connection.ops.quote_name(PurchaseLine._meta.get_field(a).column) for a in attnames)
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            copy.write(text.encode())
        return
    categories = np.array(columns.categories, dtype=object)
    rows_insert(
        PurchaseLine,
        attnames,
        list(
            zip(
                purchase_of_row.tolist(),
                columns.sku[rows].astype(str).tolist(),
                categories[columns.category[rows]].tolist(),
                columns.quantity[rows].tolist(),
                [0] * len(rows),
                _money_texts(columns.amount[rows]),
                _money_texts(columns.discount[rows]),
                [0] * len(rows),
                strict=True,
            )
        ),
        ids=False,
    )


def purchases_record_many(
    *,
    program: Program,
    partner: Partner | None,
    purchases: Sequence[NewPurchase],
    lines: PurchaseLineColumns,
    settled_at: Mapping[int, dt.datetime] | None = None,
) -> list[int]:
    """``purchase_create`` and, where a purchase earns, ``points_credit`` with it (pending, reason
    "purchase <external id>", from ``partner``'s issued account), for many purchases at once;
    the eligible amount (and total) of each is the sum of its lines' amount - discount. A purchase
    whose (partner, external id) exists is ``duplicate_external_id`` (the unique constraint
    decides; nothing of the batch is written). Returns the purchases' ids
    in the given order. ``settled_at`` as for ``points_credit_many``."""
    if not purchases:
        return []
    if any(not p.external_id for p in purchases):
        raise ValidationFailed("external_id is required", code="external_id_required")
    if any(p.stop <= p.start for p in purchases):
        raise ValidationFailed("A purchase needs at least one line", code="lines_required")
    starts = np.array([p.start for p in purchases], dtype="int64")
    sizes = np.array([p.stop for p in purchases], dtype="int64") - starts
    rows = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes) + np.arange(int(sizes.sum()))
    _check_lines(lines, rows)
    bases = lines.bases()
    with transaction.atomic():
        values = []
        for p in purchases:
            eligible = money_text(int(bases[p.stop] - bases[p.start]))
            values.append(
                (
                    program.pk,
                    p.account.member_id,
                    partner.pk if partner is not None else None,
                    p.external_id,
                    p.store_code,
                    p.occurred_at,
                    program.currency,
                    eligible,
                    "0.00",
                    "0.00",
                    eligible,
                    "0.00",
                    p.points,
                    p.recorded_at or p.occurred_at,
                )
            )
        try:
            ids = rows_insert(
                Purchase,
                [
                    "program_id",
                    "member_id",
                    "partner_id",
                    "external_id",
                    "store_code",
                    "occurred_at",
                    "currency",
                    "total",
                    "tax",
                    "discount",
                    "eligible_amount",
                    "returned_amount",
                    "points_earned",
                    "created_at",
                ],
                values,
                ids=True,
            )
        except IntegrityError as exc:  # the unique (partner, external id) decides: no query per purchase
            raise Conflict("A purchase with this external_id exists", code="duplicate_external_id") from exc
        _lines_insert(lines, rows, np.repeat(np.array(ids, dtype="int64"), sizes))
        earning = [(p, pid) for p, pid in zip(purchases, ids, strict=True) if p.points > 0]
        _credit(
            [
                Credit(
                    account=p.account,
                    points=p.points,
                    reason=f"purchase {p.external_id}",
                    at=p.recorded_at or p.occurred_at,
                    pending=True,
                    partner=partner,
                    explanation=p.explanation,
                )
                for p, _ in earning
            ],
            purchase_ids=[pid for _, pid in earning],
            settled_at=settled_at,
            actor=None,
        )
    return ids


__all__ = [
    "Credit",
    "CreditResult",
    "NewPurchase",
    "PurchaseLineColumns",
    "accounts_open_many",
    "points_credit_many",
    "purchases_record_many",
]
