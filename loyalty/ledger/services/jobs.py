"""Set-based jobs: pending maturation and expiry, over all due lots in batches of accounts.

Each batch locks its accounts (primary-key order, like every service) and then runs a few
INSERT ... SELECT / UPDATE ... FROM statements: no Python loop over lots or accounts. The
same statements settle one account inside ``account_locked``, so the balance a service reads is
always exact, and a job run twice changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef, Q

from loyalty.core import clock
from loyalty.core.parallel import job_workers, parallel_drain
from loyalty.ledger.models import Account, AccountKind, Lot, Program
from loyalty.ledger.services.accounts import system_account
from loyalty.partners.services import webhook_event_types_wanted

BATCH_ACCOUNTS = 5000


def _published_at(event_type: str, now: dt.datetime) -> dt.datetime | None:
    """An event no active webhook endpoint subscribes to is written already published (as
    ``outbox_record`` writes it): nothing waits in the outbox for a fan-out that has no receiver."""
    return None if event_type in webhook_event_types_wanted() else now


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


_EXPIRE_POSTGRESQL = """
WITH due AS MATERIALIZED (
    SELECT l.id, l.account_id, l.remaining, l.is_pending FROM ledger_lot l
    WHERE l.remaining > 0 AND l.expires_at <= %(now)s AND l.account_id BETWEEN %(lo)s AND %(hi)s
), per_account AS MATERIALIZED (
    SELECT d.account_id, a.program_id, a.member_id,
           nextval(pg_get_serial_sequence('ledger_ledgertransaction', 'id')) AS tx_id,
           SUM(d.remaining) AS pts,
           SUM(CASE WHEN d.is_pending THEN 0 ELSE d.remaining END) AS av,
           SUM(CASE WHEN d.is_pending THEN d.remaining ELSE 0 END) AS pe
    FROM due d JOIN ledger_account a ON a.id = d.account_id
    GROUP BY d.account_id, a.program_id, a.member_id
), transactions AS (
    INSERT INTO ledger_ledgertransaction
        (id, program_id, kind, reason, idempotency_key, explanation, actor_label, created_at)
    SELECT tx_id, program_id, 'expire', 'points expired', 'expire:' || account_id || ':' || %(stamp)s, '[]',
           'system', %(now)s
    FROM per_account
), entries AS (
    INSERT INTO ledger_entry (transaction_id, account_id, lot_id, kind, points, created_at)
    SELECT p.tx_id, d.account_id, d.id, 'expire', -d.remaining, %(now)s
    FROM due d JOIN per_account p ON p.account_id = d.account_id
    UNION ALL
    SELECT p.tx_id, b.id, NULL, 'expire', p.pts, %(now)s
    FROM per_account p
    JOIN ledger_account b ON b.program_id = p.program_id AND b.kind = 'breakage' AND b.partner_id IS NULL
), balances AS (
    UPDATE ledger_account SET available = available - p.av, pending = pending - p.pe, expired = expired + p.pts
    FROM per_account p WHERE ledger_account.id = p.account_id
), events AS (
    INSERT INTO partners_outboxevent (event_type, member_id, payload, created_at, published_at)
    SELECT 'points.expired', p.member_id,
           json_build_object('member_number', m.member_number, 'program', g.name, 'points', p.pts), %(now)s,
           %(published)s
    FROM per_account p JOIN members_member m ON m.id = p.member_id JOIN ledger_program g ON g.id = p.program_id
)
UPDATE ledger_lot SET remaining = 0 WHERE id = ANY (ARRAY (SELECT id FROM due))
"""


def _expire(cursor, lo: int, hi: int, now: dt.datetime) -> None:
    """Expire the due lots of accounts ``lo``..``hi`` (locked by the caller): per account one
    ``expire`` transaction with an entry per lot and one breakage entry, the cached balance,
    a ``points.expired`` event, and the lots emptied."""
    stamp = uuid.uuid4().hex
    if connection.vendor == "postgresql":
        # one statement: the due lots are read once; transaction ids come from the sequence
        published = _published_at("points.expired", now)
        cursor.execute(_EXPIRE_POSTGRESQL, {"now": now, "lo": lo, "hi": hi, "stamp": stamp, "published": published})
        return
    ids = [lo, hi]
    due = "l.remaining > 0 AND l.expires_at <= %s AND l.account_id BETWEEN %s AND %s"
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
    cursor.execute(
        f"""INSERT INTO partners_outboxevent (event_type, member_id, payload, created_at, published_at)
            SELECT 'points.expired', a.member_id,
                   json_object('member_number', m.member_number, 'program', p.name, 'points', s.pts), %s, %s
            FROM (SELECT l.account_id, SUM(l.remaining) AS pts FROM ledger_lot l WHERE {due} GROUP BY l.account_id) AS s
            JOIN ledger_account a ON a.id = s.account_id
            JOIN members_member m ON m.id = a.member_id
            JOIN ledger_program p ON p.id = a.program_id""",  # noqa: S608
        [now, _published_at("points.expired", now), now, *ids],
    )
    cursor.execute(
        f"UPDATE ledger_lot SET remaining = 0 WHERE id IN (SELECT l.id FROM ledger_lot l WHERE {due})",  # noqa: S608
        [now, *ids],
    )


def settle_accounts(*, account_ids: list[int], now: dt.datetime) -> bool:
    """Mature and expire what is due on one locked account (``locking.account_locked``). Returns whether
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
    for program in Program.objects.exclude(accounts__kind=AccountKind.BREAKAGE):
        system_account(program=program, kind=AccountKind.BREAKAGE)


def _window(*, due_lots, step, now: dt.datetime, lo: int, hi: int) -> int:
    """One window of member accounts: one transaction locks (in primary-key order) the accounts
    that have due lots, then ``step`` handles them with set-based statements."""
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
                if connection.vendor == "postgresql":
                    # a few big statements: compiling them (JIT) costs more than it saves
                    cursor.execute("SET LOCAL jit = off")
                step(cursor, lo, hi, now)
    return len(locked)


def _run(*, due_lots, step, now: dt.datetime, batch: int, workers: int | None = None) -> int:
    """Walk member accounts in windows of primary keys, ``workers`` windows at a time on their
    own connections (settings.LEDGER_JOB_WORKERS; windows are disjoint, so they never wait on
    each other). Returns the number of accounts handled."""
    bounds = Account.objects.filter(kind=AccountKind.MEMBER).aggregate(lo=Min("pk"), hi=Max("pk"))
    if bounds["lo"] is None:
        return 0
    windows = [(lo, lo + batch - 1) for lo in range(bounds["lo"], bounds["hi"] + 1, batch)]
    workers = job_workers(workers if workers is not None else settings.LEDGER_JOB_WORKERS)
    return sum(
        parallel_drain(
            windows,
            lambda window: _window(due_lots=due_lots, step=step, now=now, lo=window[0], hi=window[1]),
            workers=workers,
        )
    )


def mature_pending_lots(
    *, now: dt.datetime | None = None, batch: int = BATCH_ACCOUNTS, workers: int | None = None
) -> int:
    """Make pending points whose return window has passed spendable. Returns accounts touched."""
    now = now or clock.now()
    due = Lot.objects.filter(is_pending=True, available_at__lte=now)
    return _run(due_lots=due, step=_mature, now=now, batch=batch, workers=workers)


def expire_due_lots(*, now: dt.datetime | None = None, batch: int = BATCH_ACCOUNTS, workers: int | None = None) -> int:
    """Expire every lot whose expiry has passed: one ``expire`` entry per lot and one breakage
    entry per account, in one transaction per account. Returns accounts touched."""
    now = now or clock.now()
    _ensure_breakage_accounts()
    due = Lot.objects.filter(remaining__gt=0, expires_at__lte=now)
    return _run(due_lots=due, step=_expire, now=now, batch=batch, workers=workers)


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
                       {json_object}('member_number', m.member_number, 'program', p.name, 'points', s.pts, 'expires_on', CAST(%s AS TEXT)), %s, %s
                FROM (SELECT l.account_id, SUM(l.remaining) AS pts FROM ledger_lot l
                      WHERE l.remaining > 0 AND l.expires_at >= %s AND l.expires_at < %s GROUP BY l.account_id) AS s
                JOIN ledger_account a ON a.id = s.account_id AND a.kind = 'member'
                JOIN members_member m ON m.id = a.member_id
                JOIN ledger_program p ON p.id = a.program_id""",  # noqa: S608 - fixed function name only
            [start.date().isoformat(), now, _published_at("points.expiring", now), start, end],
        )
        return cursor.rowcount
