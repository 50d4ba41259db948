"""Tier benchmark on PostgreSQL: time of the nightly evaluation (``tiers_evaluate``) of
1,000,000 members whose calendar year just closed (target: under 60 s on 2 cores).

    .venv/bin/python bench/tiers_bench.py [--members 1000000] [--batch 10000] [--workers 2]
                                          [--scenario realistic|random] [--fresh]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/loyalty_bench) names the database;
it is created if missing and migrated. The members, accounts, purchases (1 to 5 per member in
2030, some partly returned) and earn entries are generated set-based (INSERT ... SELECT
generate_series) once and reused by later runs (``--fresh`` recreates the database); the tier
statuses are recreated before every timing, all due (period 2030 closing on 1 January 2031):
``realistic`` (default) has about a fifth of the members change tier, ``random`` about 60%.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

from _setup import insert_select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/loyalty_bench"
PROGRAM = "Tiers bench"
YEAR_START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
CLOSE = dt.datetime(2031, 1, 1, 2, 0, tzinfo=dt.UTC)


def prepare_database(url: str, fresh: bool) -> None:
    import environ
    import psycopg

    config = environ.Env.db_url_config(url)
    server = {"host": config["HOST"] or "127.0.0.1", "port": config["PORT"] or 5432, "user": config["USER"]}
    if config.get("PASSWORD"):
        server["password"] = config["PASSWORD"]
    name = config["NAME"]
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def generate(n: int) -> None:
    from django.db import connection, transaction

    from loyalty.ledger import services as ledger
    from loyalty.ledger.models import Account, Entry, LedgerTransaction, Program, Purchase
    from loyalty.tiers import services
    from members.models import Member

    program = Program.objects.filter(name=PROGRAM).first()
    if program is not None and Account.objects.filter(program=program, kind="member").count() == n:
        print(f"reusing {n:,} members, their accounts, purchases and entries")
        return
    if program is not None:
        sys.exit("the bench database holds another size: run with --fresh")
    started = time.perf_counter()
    with transaction.atomic():
        program = ledger.program_create(name=PROGRAM)
        services.tier_policy_set(program=program, window="calendar_year", downgrade_policy="requalify")
        services.tier_create(program=program, name="Base", rank=0)
        services.tier_create(program=program, name="Silver", rank=1, thresholds={"spend": 500})
        services.tier_create(program=program, name="Gold", rank=2, thresholds={"spend": 1500, "points": 1500})
        services.tier_create(
            program=program, name="Platinum", rank=3, combine="all", thresholds={"spend": 2500, "purchases": 5}
        )
        with connection.cursor() as cursor:
            # Generated rows are consistent by construction: skip the per-row foreign-key
            # triggers while loading (data generation only; the timed evaluation runs normally).
            cursor.execute("SET LOCAL session_replication_role = replica")
            insert_select(
                cursor,
                Member,
                {
                    "member_number": "'8' || lpad(i::text, 11, '0')",
                    "referral_code": "'T' || lpad(i::text, 10, '0')",
                    "first_name": "'Bench'",
                    "last_name": "'Member ' || i",
                    "status": "'active'",
                    "enrollment_source": "'import'",
                    "enrolled_at": ("%s::timestamptz - (i %% 1000) * interval '1 day'", [YEAR_START]),
                    "updated_at": ("%s", [YEAR_START]),
                },
                "generate_series(1, %s) AS i",
                [n],
            )
            members = "(SELECT id FROM members_member WHERE member_number LIKE '8%%') AS m"
            insert_select(
                cursor,
                Account,
                {
                    "program_id": ("%s", [program.pk]),
                    "kind": "'member'",
                    "member_id": "m.id",
                    "opened_at": ("%s", [YEAR_START]),
                },
                members,
                [],
            )
            insert_select(
                cursor,
                Purchase,
                {
                    "program_id": ("%s", [program.pk]),
                    "member_id": "m.id",
                    "external_id": "'tb-' || m.id || '-' || g",
                    "occurred_at": ("%s::timestamptz + ((m.id * 7 + g * 53) %% 360) * interval '1 day'", [YEAR_START]),
                    "currency": "'USD'",
                    "total": "((m.id * 31 + g * 17) %% 90000) / 100.0",
                    "eligible_amount": "((m.id * 31 + g * 17) %% 90000) / 100.0",
                    "returned_amount": "CASE WHEN (m.id + g) %% 10 = 0 THEN ((m.id * 31 + g * 17) %% 90000) / 400.0 ELSE 0 END",
                    "points_earned": "((m.id * 31 + g * 17) %% 90000) / 100",
                    "created_at": ("%s", [YEAR_START]),
                },
                f"{members} CROSS JOIN LATERAL generate_series(1, 1 + (m.id %% 5)) AS g",
                [],
            )
            seed = LedgerTransaction.objects.create(
                program=program, kind="earn", reason="bench seed", created_at=YEAR_START, actor_label="bench"
            )
            insert_select(
                cursor,
                Entry,
                {
                    "transaction_id": ("%s", [seed.pk]),
                    "account_id": "a.id",
                    "kind": "'earn'",
                    "points": "p.points_earned",
                    "created_at": "p.occurred_at",
                },
                "ledger_purchase p JOIN ledger_account a ON a.member_id = p.member_id AND a.program_id = p.program_id"
                " AND a.kind = 'member' WHERE p.program_id = %s AND p.points_earned > 0",
                [program.pk],
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"generated {n:,} members with accounts, purchases and entries in {time.perf_counter() - started:.0f} s")


def reset_statuses(scenario: str) -> None:
    """Every bench member holds a tier for the calendar year 2030, due to close.

    realistic: the tier the member's 2030 activity qualifies for, except 15% who hold one tier
    more (earned the year before: downgraded at the close) and 5% one tier less (upgrade
    missed: moved up at the close); about a fifth of the members change tier.
    random: a tier by member id, unrelated to activity (about 60% change tier: a worst case)."""
    from django.db import connection, transaction

    from loyalty.ledger.models import Program
    from loyalty.tiers.models import MemberTier
    from loyalty.tiers.selectors import program_tiers
    from loyalty.tiers.services.evaluation import qualified_rank_sql, tier_of_rank_sql

    program = Program.objects.get(name=PROGRAM)
    rules = program_tiers(program=program).rules
    top = max(r.rank for r in rules)
    if scenario == "random":
        rank = "(CASE WHEN a.member_id %% 10 < 4 THEN 0 WHEN a.member_id %% 10 < 7 THEN 1 WHEN a.member_id %% 10 < 9 THEN 2 ELSE 3 END)"
        source = "ledger_account a WHERE a.program_id = %s AND a.kind = 'member'"
        params = [program.pk]
    else:
        qualified = qualified_rank_sql(rules, "COALESCE(ps.spend, 0)", "COALESCE(es.points, 0)", "COALESCE(ps.n, 0)")
        rank = (
            f"(CASE WHEN a.member_id %% 100 < 15 THEN LEAST({qualified} + 1, {top})"
            f" WHEN a.member_id %% 100 < 20 THEN GREATEST({qualified} - 1, 0) ELSE {qualified} END)"
        )
        source = """ledger_account a
            LEFT JOIN (SELECT member_id, CAST(ROUND(SUM(eligible_amount - returned_amount) * 100) AS BIGINT) AS spend,
                              SUM(CASE WHEN eligible_amount > returned_amount THEN 1 ELSE 0 END) AS n
                       FROM ledger_purchase WHERE program_id = %s GROUP BY member_id) ps ON ps.member_id = a.member_id
            LEFT JOIN (SELECT account_id, SUM(points) AS points FROM ledger_entry WHERE kind = 'earn'
                       GROUP BY account_id) es ON es.account_id = a.id
            WHERE a.program_id = %s AND a.kind = 'member'"""
        params = [program.pk, program.pk]
    tier = tier_of_rank_sql(rules, rank)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE tiers_tierchange, tiers_membertier, partners_outboxevent CASCADE")
        insert_select(
            cursor,
            MemberTier,
            {
                "member_id": "a.member_id",
                "program_id": "a.program_id",
                "tier_id": tier,
                "earned_tier_id": tier,
                "tier_since": ("%s", [YEAR_START]),
                "period_start": ("%s", [YEAR_START]),
                "period_end": ("%s", [dt.datetime(2031, 1, 1, tzinfo=dt.UTC)]),
                "manual_reason": "''",
            },
            source,
            params,
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tiers_membertier")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=None, help="members per transaction (default: the job's)")
    parser.add_argument("--workers", type=int, default=None, help="parallel member ranges (default: the job's)")
    parser.add_argument("--scenario", choices=["realistic", "random"], default="realistic", help="see reset_statuses")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the bench database first")
    args = parser.parse_args()

    url = os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("the tiers bench needs PostgreSQL: DATABASE_URL=postgres://...")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    os.environ.pop("REDIS_URL", None)
    prepare_database(url, args.fresh)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from loyalty.core import clock
    from loyalty.ledger.models import Program, Purchase
    from loyalty.partners.models import OutboxEvent
    from loyalty.tiers import services
    from loyalty.tiers.models import MemberTier, TierChange
    from loyalty.tiers.selectors import tier_distribution, tier_progress
    from loyalty.tiers.services.evaluation import BATCH_MEMBERS

    call_command("migrate", verbosity=0)
    generate(args.members)
    reset_statuses(args.scenario)
    program = Program.objects.get(name=PROGRAM)
    purchases = Purchase.objects.filter(program=program).count()
    batch = args.batch or BATCH_MEMBERS
    workers = args.workers or settings.TIERS_EVALUATION_WORKERS

    started = time.perf_counter()
    result = services.tiers_evaluate(now=CLOSE, program=program, batch=batch, workers=workers)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = services.tiers_evaluate(now=CLOSE, program=program, batch=batch, workers=workers)
    rerun_seconds = time.perf_counter() - started
    clock.set_now(CLOSE)
    member = MemberTier.objects.filter(program=program).order_by("member_id").first().member
    started = time.perf_counter()
    tier_progress(member=member, program=program)
    progress_ms = (time.perf_counter() - started) * 1000

    print(
        f"members: {result['members']:,} ({purchases:,} purchases in the closed year), "
        f"batches of {batch:,}, {workers} worker(s), scenario {args.scenario}"
    )
    print(
        f"nightly evaluation of {result['members']:,} members: {seconds:.1f} s "
        f"({result['members'] / seconds:,.0f} members/s; target < 60 s)"
    )
    print(
        f"  periods closed {result['periods_closed']:,}, upgrades {result['upgrades']:,}, "
        f"downgrades {result['downgrades']:,}; history rows {TierChange.objects.count():,}, "
        f"outbox events {OutboxEvent.objects.count():,}"
    )
    print(f"second run at the same time (idempotent): {again['members']} members due, {rerun_seconds:.1f} s")
    print(f"tier_progress of one member: {progress_ms:.1f} ms")
    print(
        "distribution after: " + ", ".join(f"{r['tier']} {r['members']:,}" for r in tier_distribution(program=program))
    )


if __name__ == "__main__":
    main()
