"""Dashboards benchmark on PostgreSQL. Prints:
  - each dashboard's server time (Django's test client in-process: view, selectors, SVG, template;
    median of 3 after one warm-up) on the demo data (``load_demo``); target < 500 ms,
  - the nightly summary refresh (``dashboards_refresh``: the last 95 days, and ``--full``) on a base
    of N members and M purchases (each with its earn transaction and two entries, tier changes, one
    segment, the RFM/CLV scores); target < 60 s at 1,000,000 / 20,000,000,
  - each dashboard's server time on that base (twelve months); target < 2 s.

    .venv/bin/python bench/dashboards_bench.py [--members 1000000 --purchases 20000000] [--demo-households 300]
        [--skip-demo] [--skip-base] [--reuse] [--skip-full]

The base is bench/segments_bench.py's generator (purchases over two years, skewed), plus accounts,
earn transactions and entries (member and issued account) written with INSERT ... SELECT; generation
time is printed separately and is not part of the figures. No redemptions or expiries are generated
(those rows are a small share of the entries the refresh reads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _setup import insert_select, setup

DEMO_DB = "loyalty_bench_dashboards_demo"
BASE_DB = "loyalty_bench_dashboards"
BOARDS = ["health", "tiers", "segments", "offers", "profitability"]


def page_times(query: str = "") -> dict[str, float]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    times = {}
    for board in BOARDS:
        samples = []
        for i in range(4):
            t = time.perf_counter()
            response = client.get(f"/staff/{board}/{query}")
            elapsed = time.perf_counter() - t
            assert response.status_code == 200, (board, response.status_code)
            if i:
                samples.append(elapsed)
        times[board] = statistics.median(samples) * 1000
    return times


def print_times(label: str, times: dict[str, float], target_ms: float) -> None:
    print(f"{label} (median of 3 after a warm-up; target < {target_ms:,.0f} ms):")
    for board, ms in times.items():
        print(f"  {board:<14} {ms:8.0f} ms  {'met' if ms < target_ms else 'MISSED'}")


def demo_part(households: int) -> None:
    setup(DEMO_DB)
    from django.core.management import call_command

    from loyalty.dashboards.services import dashboards_refresh

    t = time.perf_counter()
    call_command("load_demo", "--households", str(households), verbosity=0)
    print(f"demo: load_demo --households {households} in {time.perf_counter() - t:.0f} s (not part of the figures)")
    run = dashboards_refresh(full=True)
    print(f"demo: full refresh {sum(run.timings.values()):.2f} s ({run.timings})")
    print_times(f"demo data ({households} households), default range (last 12 months)", page_times(), 500)


def reuse_setup() -> None:
    server = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    os.environ["DATABASE_URL"] = f"{server}/{BASE_DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # a base kept from an older checkout gets the newer apps' tables


def generate_ledger(members: int) -> None:
    """Accounts, one earn transaction and two entries per purchase, three tiers with a status and
    an initial change per member and upgrades for a fifth of them."""
    from django.db import connection

    from loyalty.ledger import services as ledger
    from loyalty.ledger.models import Account, Entry, LedgerTransaction
    from loyalty.ledger.selectors import program_default
    from loyalty.tiers.models import MemberTier, Tier, TierChange

    program = program_default()
    issued = ledger.system_account(program=program, kind="issued")
    tiers = [
        Tier.objects.get_or_create(program=program, rank=r, defaults={"name": n})[0]
        for r, n in enumerate(("Member", "Silver", "Gold"))
    ]
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        insert_select(
            cursor,
            Account,
            {
                "program_id": ("%s", [program.pk]),
                "kind": "'member'",
                "member_id": "m.id",
                "opened_at": "m.enrolled_at",
                "earned": "0",
            },
            "members_member m",
            [],
        )
        insert_select(
            cursor,
            LedgerTransaction,
            {
                "program_id": "p.program_id",
                "kind": "'earn'",
                "purchase_id": "p.id",
                "explanation": "'[]'::jsonb",
                "created_at": "p.occurred_at",
                "reason": "''",
                "actor_label": "''",
            },
            "ledger_purchase p",
            [],
        )
        for account, sign in (("a.id", ""), ("%s", "-")):
            insert_select(
                cursor,
                Entry,
                {
                    "transaction_id": "t.id",
                    "account_id": (account, [issued.pk] if account == "%s" else []),
                    "kind": "'earn'",
                    "points": f"{sign}p.points_earned",
                    "created_at": "t.created_at",
                },
                "ledger_ledgertransaction t JOIN ledger_purchase p ON p.id = t.purchase_id"
                " JOIN ledger_account a ON a.member_id = p.member_id AND a.kind = 'member'",
                [],
                analyze=False,
            )
        ids = [t.pk for t in tiers]
        insert_select(
            cursor,
            MemberTier,
            {
                "member_id": "m.id",
                "program_id": ("%s", [program.pk]),
                "tier_id": (f"(ARRAY[{ids[0]}, {ids[0]}, {ids[0]}, {ids[1]}, {ids[2]}])[1 + m.id %% 5]", []),
                "earned_tier_id": (f"(ARRAY[{ids[0]}, {ids[0]}, {ids[0]}, {ids[1]}, {ids[2]}])[1 + m.id %% 5]", []),
                "tier_since": "m.enrolled_at",
                "manual_reason": "''",
            },
            "members_member m",
            [],
        )
        insert_select(
            cursor,
            TierChange,
            {
                "status_id": "s.id",
                "member_id": "s.member_id",
                "program_id": "s.program_id",
                "to_tier_id": (f"{ids[0]}", []),
                "reason": "'initial'",
                "note": "''",
                "changed_at": "m.enrolled_at",
            },
            "tiers_membertier s JOIN members_member m ON m.id = s.member_id",
            [],
        )
        insert_select(
            cursor,
            TierChange,
            {
                "status_id": "s.id",
                "member_id": "s.member_id",
                "program_id": "s.program_id",
                "from_tier_id": (f"{ids[0]}", []),
                "to_tier_id": "s.tier_id",
                "reason": "'upgrade'",
                "note": "''",
                "changed_at": "m.enrolled_at + (m.id %% 300) * interval '1 day'",
            },
            f"tiers_membertier s JOIN members_member m ON m.id = s.member_id WHERE s.tier_id <> {ids[0]}",
            [],
        )
        cursor.execute("SET session_replication_role = DEFAULT")
        for table in (
            "ledger_account",
            "ledger_ledgertransaction",
            "ledger_entry",
            "tiers_membertier",
            "tiers_tierchange",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"  ledger and tiers for {members:,} members generated")


def physical_time_order() -> None:
    """The generator writes two years of purchases in random time order; a live ledger appends
    purchases and transactions as they come, so their rows lie in time order on disk and a day range
    reads its own pages only. Put the base's rows in that order (not part of the figures)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table, column in (("ledger_purchase", "occurred_at"), ("ledger_ledgertransaction", "created_at")):
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
                [table, f"%btree ({column})"],
            )
            cursor.execute(f"CLUSTER {table} USING {cursor.fetchone()[0]}")
            cursor.execute(f"ANALYZE {table}")


def base_part(members: int, purchases: int, reuse: bool, skip_full: bool = False) -> None:
    import segments_bench

    started = time.perf_counter()
    if reuse:
        reuse_setup()
    else:
        setup(BASE_DB)
    from loyalty.core import clock
    from loyalty.dashboards.services import dashboards_refresh
    from loyalty.ledger.models import Purchase
    from members.models import Member
    from segments import services as segments

    clock.set_now(segments_bench.NOW)
    have = (Member.objects.count(), Purchase.objects.count())
    if have != (members, purchases):
        if reuse and have != (0, 0):
            raise SystemExit(f"the database holds {have[0]:,} members / {have[1]:,} purchases: run without --reuse")
        segments_bench.generate(members, purchases)
        generate_ledger(members)
        segment = segments.segment_create(name="Bench: frequent recent big spenders", rules=segments_bench.RULES)
        segments.segment_refresh(segment=segment)
        segments.scores_compute()
        physical_time_order()
        print(f"generated the base in {time.perf_counter() - started:.0f} s (not part of the figures)")
    else:
        print(f"reusing {members:,} members and {purchases:,} purchases")

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ledger_entry")
        entries = cursor.fetchone()[0]
    print(
        f"base: {members:,} members, {purchases:,} purchases, {entries:,} entries (PostgreSQL, {os.cpu_count()} cores)"
    )
    t = time.perf_counter()
    run = dashboards_refresh()
    nightly = time.perf_counter() - t
    print(f"nightly refresh (last 95 days): {nightly:.1f} s {run.timings}; target < 60 s")
    if not skip_full:
        t = time.perf_counter()
        run = dashboards_refresh(full=True)
        full = time.perf_counter() - t
        print(f"full refresh ({run.since} to {run.until}): {full:.1f} s {run.timings}")
    print_times(f"base of {members:,} members / {purchases:,} purchases, last 12 months", page_times(), 2000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=20_000_000)
    parser.add_argument("--demo-households", type=int, default=300)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-base", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep the base of an earlier run of the same size")
    parser.add_argument("--skip-full", action="store_true", help="no full refresh (pages read what is summarised)")
    args = parser.parse_args()
    print(
        f"command: bench/dashboards_bench.py --members {args.members} --purchases {args.purchases} "
        f"--demo-households {args.demo_households}"
    )
    if not args.skip_demo:
        demo_part(args.demo_households)
    if not args.skip_base:
        if not args.skip_demo:  # a fresh Django for the other database
            raise SystemExit("run the base part on its own: --skip-demo (one database per process)")
        base_part(args.members, args.purchases, args.reuse, args.skip_full)


if __name__ == "__main__":
    main()
