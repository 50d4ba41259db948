"""Set-based jobs: pending maturation and expiry, over all due lots in batches of accounts.

Each batch locks its accounts (primary-key order, like every service) and then runs a few
INSERT ... SELECT / UPDATE ... FROM statements: no Python loop over lots or accounts. The
same statements settle one account inside ``account_lock``, so the balance a service reads is
always exact, and a job run twice changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef, Q

from loyalty.core import clock
from loyalty.ledger.models import Account, AccountKind, Lot, Program

BATCH_ACCOUNTS = 5000


def _mature(cursor, lo: int, hi: int, now: dt.datetime) -> None:
    ids = [lo, hi]
    due = "is_pending AND available_at <= %s AND account_id BETWEEN %s AND %s"
    cursor.execute(
        f"""UPDATE ledger_account SET pending = pending - s.pts, available = available + s.pts
            FROM (SELECT account_id, SUM(remaining) AS pts FROM ledger_lot WHERE {due} GROUP BY account_id) AS s
            WHERE ledger_account.id = s.account_id""",  # noqa: S608 - placeholders only
        [now, *ids],
    )
    cursor.execute(f"UPDATE ledger_lot SET is_pending = %s WHERE {due}", [False, now, *ids])  # noqa: S608


def _expire(cursor, lo: int, hi: int, now: dt.datetime) -> None:
    ids = [lo, hi]
    due = "l.remaining > 0 AND l.expires_at <= %s AND l.account_id BETWEEN %s AND %s"
    stamp = uuid.uuid4().hex
    key = "'expire:' || l.account_id || ':' || %s"
    cursor.execute(
        f"""INSERT INTO ledger_ledgertransaction (program_id, kind, reason, idempotency_key, explanation, actor_label, created_at)
            SELECT a.program_id, 'expire', 'points expired', 'expire:' || a.id || ':' || %s, '[]', 'system', %s
            FROM ledger_account a WHERE a.id IN (SELECT DISTINCT l.account_id FROM ledger_lot l WHERE {due})""",  # noqa: S608
        [stamp, now, now, *ids],
    )
    cursor.execute(
        f"""INSERT INTO ledger_entry (transaction_id, account_id, lot_id, kind, points, created_at)
            SELECT t.id, l.account_id, l.id, 'expire', -l.remaining, %s
            FROM ledger_lot l JOIN ledger_ledgertransaction t ON t.idempotency_key = {key}
            WHERE {due}""",  # noqa: S608
        [now, stamp, now, *ids],
    )
    cursor.execute(
        f"""INSERT INTO ledger_entry (transaction_id, account_id, lot_id, kind, points, created_at)
            SELECT t.id, b.id, NULL, 'expire', SUM(l.remaining), %s
            FROM ledger_lot l
            JOIN ledger_ledgertransaction t ON t.idempotency_key = {key}
            JOIN ledger_account b ON b.program_id = t.program_id AND b.kind = 'breakage' AND b.partner_id IS NULL
            WHERE {due} GROUP BY t.id, b.id""",  # noqa: S608
        [now, stamp, now, *ids],
    )
    cursor.execute(
        f"""UPDATE ledger_account SET available = available - s.av, pending = pending - s.pe, expired = expired + s.av + s.pe
            FROM (SELECT l.account_id,
                         SUM(CASE WHEN l.is_pending THEN 0 ELSE l.remaining END) AS av,
                         SUM(CASE WHEN l.is_pending THEN l.remaining ELSE 0 END) AS pe
                  FROM ledger_lot l WHERE {due} GROUP BY l.account_id) AS s
            WHERE ledger_account.id = s.account_id""",  # noqa: S608
        [now, *ids],
    )
    json_object = "json_build_object" if connection.vendor == "postgresql" else "json_object"
    cursor.execute(
        f"""INSERT INTO partners_outboxevent (event_type, member_id, payload, created_at, published_at)
            SELECT 'points.expired', a.member_id,
                   {json_object}('member_number', m.member_number, 'program', p.name, 'points', s.pts), %s, NULL
            FROM (SELECT l.account_id, SUM(l.remaining) AS pts FROM ledger_lot l WHERE {due} GROUP BY l.account_id) AS s
            JOIN ledger_account a ON a.id = s.account_id
            JOIN members_member m ON m.id = a.member_id
            JOIN ledger_program p ON p.id = a.program_id""",  # noqa: S608
        [now, now, *ids],
    )
    cursor.execute(
        f"UPDATE ledger_lot SET remaining = 0 WHERE id IN (SELECT l.id FROM ledger_lot l WHERE {due})",  # noqa: S608
        [now, *ids],
    )


def settle_accounts(*, account_ids: list[int], now: dt.datetime) -> bool:
    """Mature and expire what is due on one locked account (``account_lock``). Returns whether
    anything changed."""
    (account_id,) = account_ids
    due = list(
        Lot.objects.filter(account_id=account_id)
        .filter(Q(is_pending=True, available_at__lte=now) | Q(remaining__gt=0, expires_at__lte=now))
        .values_list("is_pending", "available_at", "expires_at")[:1000]
    )
    if not due:
        return False
    with connection.cursor() as cursor:
        if any(pending and available_at <= now for pending, available_at, _ in due):
            _mature(cursor, account_id, account_id, now)
        if any(expires_at is not None and expires_at <= now for _, _, expires_at in due):
            _ensure_breakage_accounts()
            _expire(cursor, account_id, account_id, now)
    return True


def _ensure_breakage_accounts() -> None:
    from loyalty.ledger.services.accounts import system_account

    for program in Program.objects.exclude(accounts__kind=AccountKind.BREAKAGE):
        system_account(program=program, kind=AccountKind.BREAKAGE)


def _run(*, due_lots, step, now: dt.datetime, batch: int) -> int:
    """Walk member accounts in windows of primary keys. In each window, one transaction locks
    (in primary-key order) the accounts that have due lots, then ``step`` handles the window
    with a few set-based statements. Returns the number of accounts handled."""
    bounds = Account.objects.filter(kind=AccountKind.MEMBER).aggregate(lo=Min("pk"), hi=Max("pk"))
    if bounds["lo"] is None:
        return 0
    done = 0
    for lo in range(bounds["lo"], bounds["hi"] + 1, batch):
        hi = lo + batch - 1
        with transaction.atomic():
            locked = list(
                Account.objects.select_for_update()
                .filter(pk__gte=lo, pk__lte=hi)
                .filter(Exists(due_lots.filter(account_id=OuterRef("pk"))))
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            if locked:
                with connection.cursor() as cursor:
                    step(cursor, lo, hi, now)
        done += len(locked)
    return done


def mature_pending_lots(*, now: dt.datetime | None = None, batch: int = BATCH_ACCOUNTS) -> int:
    """Make pending points whose return window has passed spendable. Returns accounts touched."""
    now = now or clock.now()
    due = Lot.objects.filter(is_pending=True, available_at__lte=now)
    return _run(due_lots=due, step=_mature, now=now, batch=batch)


def expire_due_lots(*, now: dt.datetime | None = None, batch: int = BATCH_ACCOUNTS) -> int:
    """Expire every lot whose expiry has passed: one ``expire`` entry per lot and one breakage
    entry per account, in one transaction per account. Returns accounts touched."""
    now = now or clock.now()
    _ensure_breakage_accounts()
    due = Lot.objects.filter(remaining__gt=0, expires_at__lte=now)
    return _run(due_lots=due, step=_expire, now=now, batch=batch)


def expiring_notify(*, days: int = 7, now: dt.datetime | None = None) -> int:
    """Record one ``points.expiring`` event per account whose lots expire on the day that is
    ``days`` ahead (run daily: each lot is announced once). Set-based; returns events written."""
    now = now or clock.now()
    start = (now + dt.timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + dt.timedelta(days=1)
    json_object = "json_build_object" if connection.vendor == "postgresql" else "json_object"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO partners_outboxevent (event_type, member_id, payload, created_at, published_at)
                SELECT 'points.expiring', a.member_id,
                       {json_object}('member_number', m.member_number, 'program', p.name, 'points', s.pts, 'expires_on', %s), %s, NULL
                FROM (SELECT l.account_id, SUM(l.remaining) AS pts FROM ledger_lot l
                      WHERE l.remaining > 0 AND l.expires_at >= %s AND l.expires_at < %s GROUP BY l.account_id) AS s
                JOIN ledger_account a ON a.id = s.account_id AND a.kind = 'member'
                JOIN members_member m ON m.id = a.member_id
                JOIN ledger_program p ON p.id = a.program_id""",  # noqa: S608 - fixed function name only
            [start.date().isoformat(), now, start, end],
        )
        return cursor.rowcount
