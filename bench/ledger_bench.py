"""Ledger benchmark on PostgreSQL. Prints:
- credits per second through points_credit (one client),
- FEFO debits per second on accounts holding 50 lots each,
- time to expire 1,000,000 lots across 100,000 accounts with expire_due_lots (target < 30 s).

  .venv/bin/python bench/ledger_bench.py [--lots 1000000 --accounts 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import Counter
from contextlib import nullcontext

from _setup import SQL_MEMBERS, setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--credits", type=int, default=3000)
    parser.add_argument("--expiry-only", action="store_true", help="skip the credit and debit figures")
    parser.add_argument("--trace", action="store_true", help="print where the expiry spends its time, by statement")
    parser.add_argument("--workers", type=int, default=None, help="connections for the expiry (LEDGER_JOB_WORKERS)")
    args = parser.parse_args()
    setup("loyalty_bench_ledger")

    from django.conf import settings
    from django.db import connection, transaction

    from loyalty.core import clock
    from loyalty.ledger import services
    from loyalty.ledger.models import Account, Entry, Lot
    from members.models import Member

    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    clock.set_now(start)
    with connection.cursor() as cur:
        cur.execute(SQL_MEMBERS, {"now": start, "n": args.accounts})
    program = services.program_create(name="Bench", expiry_policy="fixed_months", expiry_months=12)
    members = list(Member.objects.order_by("pk")[:200])

    # 1. credits through the service
    accounts = [services.account_open(member=m, program=program) for m in members]
    if args.expiry_only:
        args.credits = 0
    t = time.perf_counter()
    for i in range(args.credits):
        services.points_credit(account=accounts[i % len(accounts)], points=10, reason="bench credit")
    credit_rate = args.credits / max(time.perf_counter() - t, 1e-9)

    # 2. FEFO debits, 50 lots per account
    fefo_accounts = [] if args.expiry_only else accounts[:100]
    for account in fefo_accounts:
        for _lot in range(50 - args.credits // len(accounts)):
            services.points_credit(account=account, points=10, reason="lot")
    debits = 0
    t = time.perf_counter()
    for _round in range(10):
        for account in fefo_accounts:
            services.points_debit(account=account, points=35, reason="bench debit")  # spans several lots
            debits += 1
    debit_rate = debits / max(time.perf_counter() - t, 1e-9)

    # 3. expiry of lots_total lots over accounts_total accounts (generated set-based)
    lots_per_account = args.lots // args.accounts
    # one database transaction: the ledger's guards accept entries only with the transaction they join
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """INSERT INTO ledger_account (program_id, kind, member_id, partner_id, available, pending, debt, earned, redeemed, expired, reversed, opened_at)
               SELECT %s, 'member', m.id, NULL, %s, 0, 0, %s, 0, 0, 0, %s FROM members_member m
               WHERE NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.member_id = m.id)""",
            [program.pk, 10 * lots_per_account, 10 * lots_per_account, start],
        )
        cur.execute(
            """INSERT INTO ledger_ledgertransaction (program_id, kind, reason, idempotency_key, explanation, actor_label, created_at)
               SELECT %s, 'earn', 'bench seed', 'seed:' || a.id, '[]', 'bench', %s FROM ledger_account a
               WHERE a.program_id = %s AND a.kind = 'member' AND a.earned = %s AND a.available = %s
                 AND NOT EXISTS (SELECT 1 FROM ledger_lot l WHERE l.account_id = a.id)""",
            [program.pk, start, program.pk, 10 * lots_per_account, 10 * lots_per_account],
        )
        cur.execute(
            """INSERT INTO ledger_lot (account_id, transaction_id, points, remaining, is_pending, available_at, expires_at, created_at)
               SELECT a.id, t.id, 10, 10, false, %s, %s, %s
               FROM ledger_ledgertransaction t JOIN ledger_account a ON t.idempotency_key = 'seed:' || a.id
               CROSS JOIN generate_series(1, %s)""",
            [start, start + dt.timedelta(days=30), start, lots_per_account],
        )
        cur.execute(
            """INSERT INTO ledger_entry (transaction_id, account_id, lot_id, kind, points, created_at)
               SELECT t.id, a.id, NULL::bigint, 'earn', %s, %s FROM ledger_ledgertransaction t JOIN ledger_account a ON t.idempotency_key = 'seed:' || a.id
               UNION ALL
               SELECT t.id, i.id, NULL, 'earn', -%s, %s FROM ledger_ledgertransaction t
               JOIN ledger_account i ON i.program_id = t.program_id AND i.kind = 'issued' AND i.partner_id IS NULL
               WHERE t.idempotency_key LIKE 'seed:%%'""",
            [10 * lots_per_account, start, 10 * lots_per_account, start],
        )
        cur.execute("ANALYZE")
    due = Lot.objects.filter(remaining__gt=0, expires_at__lte=start + dt.timedelta(days=31)).count()
    due_accounts = Account.objects.filter(lots__expires_at__lte=start + dt.timedelta(days=31)).distinct().count()
    clock.set_now(start + dt.timedelta(days=31))
    spent: Counter[str] = Counter()

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent[" ".join(sql.split())[:100]] += time.perf_counter() - started

    t = time.perf_counter()
    with connection.execute_wrapper(timed) if args.trace else nullcontext():
        # --trace sees only this connection's statements: the job then runs on it alone
        touched = services.expire_due_lots(workers=1 if args.trace else args.workers)
    expire_seconds = time.perf_counter() - t
    expired_entries = Entry.objects.filter(kind="expire", lot__isnull=False).count()

    if not args.expiry_only:
        print(f"credits through points_credit: {credit_rate:,.0f} /s ({args.credits} credits, 1 client)")
        print(f"FEFO debits (50 lots per account, each debit spans 4 lots): {debit_rate:,.0f} /s ({debits} debits)")
    workers = 1 if args.trace else (args.workers or settings.LEDGER_JOB_WORKERS)
    print(
        f"expire {due:,} due lots across {due_accounts:,} accounts ({workers} connections): {expire_seconds:.1f} s "
        f"({touched:,} accounts touched, {expired_entries:,} expire entries written; target < 30 s)"
    )
    for statement, seconds in spent.most_common(8):
        print(f"  {seconds:6.2f} s  {statement}")


if __name__ == "__main__":
    main()
