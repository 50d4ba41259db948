"""Engagement benchmark on PostgreSQL: the daily birthday / anniversary job and the nightly
challenge recomputation over 1,000,000 members (targets: under 60 s each on 2 cores).

    .venv/bin/python bench/engagement_bench.py [--members 1000000] [--fresh]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/loyalty_bench_engagement) names the
database; it is created if missing and migrated. Members (90% with a birth date spread over the
calendar, 29 February included; enrolled over the last three years), their accounts, 1 to 3
purchases each in March 2030 (a line each, a third in DAIRY, at one of 20 partners) are generated
set-based (INSERT ... SELECT generate_series) once and reused (``--fresh`` recreates them).

Timed, at 2030-03-05 12:00 UTC:
- the birthday and anniversary job (``celebrations_run``: one INSERT ... SELECT per program and
  kind over all members, the credits by ``points_credit_many``), then the same again (idempotent);
- the nightly recomputation of three challenges (``challenge_progress_recompute``: 3 purchases in
  DAIRY, spend 400, 4 stores visited): one upsert over all members each, then the awards of the
  completions it finds (set-based: accounts locked, completions, ``points_credit_many``, events;
  a few percent of the members reach the spend target, nobody the other two: the workflows award
  live, so the nightly run finds few), then a second run (nothing changed: a usual night).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

from _setup import insert_select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/loyalty_bench_engagement"
PROGRAM = "Engagement bench"
NOW = dt.datetime(2030, 3, 5, 12, tzinfo=dt.UTC)
MARCH = (dt.datetime(2030, 3, 1, tzinfo=dt.UTC), dt.datetime(2030, 4, 1, tzinfo=dt.UTC))


def prepare_database(url: str, fresh: bool) -> None:
    import environ
    import psycopg

    config = environ.Env.db_url_config(url)
    server = {"host": config["HOST"] or "127.0.0.1", "port": config["PORT"] or 5432, "user": config["USER"]}
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
    from loyalty.ledger.models import Account, Program, Purchase, PurchaseLine
    from loyalty.partners.models import Partner
    from members.models import Member

    program = Program.objects.filter(name=PROGRAM).first()
    if program is not None and Account.objects.filter(program=program, kind="member").count() == n:
        print(f"reusing {n:,} members, their accounts and purchases")
        return
    if program is not None:
        sys.exit("the bench database holds another size: run with --fresh")
    started = time.perf_counter()
    with transaction.atomic():
        program = ledger.program_create(name=PROGRAM)
        partners = [Partner.objects.create(name=f"Bench partner {i}").pk for i in range(20)]
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")  # generation only: no FK triggers
            insert_select(
                cursor,
                Member,
                {
                    "member_number": "'7' || lpad(i::text, 11, '0')",
                    "referral_code": "'E' || lpad(i::text, 10, '0')",
                    "first_name": "'Bench'",
                    "last_name": "'Member ' || i",
                    "status": "'active'",
                    "enrollment_source": "'import'",
                    # 29 February 2000 plus a spread of days: every calendar day, the leap day included
                    "birth_date": "CASE WHEN i %% 10 = 0 THEN NULL ELSE date '2000-02-29' - ((i::bigint * 7919) %% 20000)::int END",
                    "enrolled_at": (
                        "%s::timestamptz - (i %% 1100) * interval '1 day' - (i %% 24) * interval '1 hour'",
                        [NOW],
                    ),
                    "updated_at": ("%s", [NOW]),
                },
                "generate_series(1, %s) AS i",
                [n],
            )
            members = "(SELECT id FROM members_member WHERE member_number LIKE '7%%') AS m"
            insert_select(
                cursor,
                Account,
                {
                    "program_id": ("%s", [program.pk]),
                    "kind": "'member'",
                    "member_id": "m.id",
                    "opened_at": ("%s", [NOW]),
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
                    "partner_id": ("(%s::bigint[])[1 + ((m.id * 13 + g * 7) %% 20)]", [partners]),
                    "external_id": "'eb-' || m.id || '-' || g",
                    "store_code": "'S' || ((m.id + g) %% 50)",
                    "occurred_at": ("%s::timestamptz + ((m.id * 7 + g * 5) %% 30) * interval '1 day'", [MARCH[0]]),
                    "currency": "'USD'",
                    "total": "((m.id * 31 + g * 17) %% 15000) / 100.0",
                    "eligible_amount": "((m.id * 31 + g * 17) %% 15000) / 100.0",
                    "created_at": ("%s", [NOW]),
                },
                f"{members} CROSS JOIN LATERAL generate_series(1, 1 + (m.id %% 3)) AS g",
                [],
            )
            insert_select(
                cursor,
                PurchaseLine,
                {
                    "purchase_id": "p.id",
                    "sku": "'SKU' || (p.id %% 100)",
                    "category": "CASE WHEN p.id %% 3 = 0 THEN 'DAIRY' ELSE 'GROCERY' END",
                    "amount": "p.total",
                },
                "ledger_purchase p WHERE p.program_id = %s",
                [program.pk],
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"generated {n:,} members with accounts and purchases in {time.perf_counter() - started:.0f} s")


def reset(program) -> None:
    """Before the timed runs: no awards, no progress, no completions, no credits of earlier runs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET loyalty.allow_ledger_truncate = 'on'")
        cursor.execute(
            "TRUNCATE engagement_celebrationaward, engagement_challengecompletion, engagement_memberbadge, "
            "engagement_challengeprogress, partners_outboxevent CASCADE"
        )
        # credits of earlier runs: their entries, lots and transactions go, the accounts are zeroed
        cursor.execute("TRUNCATE ledger_entry, ledger_lot, ledger_ledgertransaction CASCADE")
        cursor.execute(
            "UPDATE ledger_account SET available = 0, pending = 0, earned = 0, debt = 0 WHERE program_id = %s",
            [program.pk],
        )
        cursor.execute("VACUUM ANALYZE ledger_account")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the bench database first")
    args = parser.parse_args()

    url = os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("the engagement bench needs PostgreSQL: DATABASE_URL=postgres://...")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    os.environ.pop("REDIS_URL", None)
    prepare_database(url, args.fresh)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from loyalty.core import clock
    from loyalty.engagement.models import (
        CelebrationAward,
        CelebrationPolicy,
        CelebrationReward,
        Challenge,
        ChallengeProgress,
    )
    from loyalty.engagement.services.celebrations import celebrations_run
    from loyalty.engagement.services.challenges import challenge_progress_recompute
    from loyalty.ledger.models import Program, Purchase

    call_command("migrate", verbosity=0)
    generate(args.members)
    program = Program.objects.get(name=PROGRAM)
    reset(program)
    clock.set_now(NOW)
    purchases = Purchase.objects.filter(program=program).count()
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
        cursor.execute("SHOW max_wal_size")
        wal = cursor.fetchone()[0]
    print(
        f"members: {args.members:,}, purchases: {purchases:,}; PostgreSQL shared_buffers {buffers}, max_wal_size {wal}"
    )

    CelebrationPolicy.objects.exclude(program=program).update(is_active=False)
    policy, _ = CelebrationPolicy.objects.get_or_create(program=program, defaults={"time_zone": "Europe/Paris"})
    CelebrationReward.objects.get_or_create(policy=policy, kind="birthday", tier=None, defaults={"points": 100})
    CelebrationReward.objects.get_or_create(policy=policy, kind="anniversary", tier=None, defaults={"points": 50})

    started = time.perf_counter()
    reports = celebrations_run(now=NOW)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = celebrations_run(now=NOW)
    rerun = time.perf_counter() - started
    by_kind = {r.kind: r.awarded for r in reports}
    print(
        f"birthdays and anniversaries of {NOW.date()}: {seconds:.1f} s "
        f"({by_kind.get('birthday', 0):,} birthdays incl. 29 Feb ones on 28 Feb in other years, "
        f"{by_kind.get('anniversary', 0):,} anniversaries, credited; target < 60 s)"
    )
    print(
        f"  same day again (idempotent): {rerun:.1f} s, {sum(r.awarded for r in again)} more; "
        f"award rows {CelebrationAward.objects.count():,}"
    )

    Challenge.objects.filter(program=program).delete()
    made = [
        Challenge.objects.create(
            program=program,
            name="Dairy x3 in March",
            kind="purchase_count",
            category="DAIRY",
            target=Decimal("3"),
            starts_at=MARCH[0],
            ends_at=MARCH[1],
            reward_points=100,
            created_at=NOW,
        ),
        Challenge.objects.create(
            program=program,
            name="Spend 400 in March",
            kind="spend",
            target=Decimal("400"),
            starts_at=MARCH[0],
            ends_at=MARCH[1],
            reward_points=50,
            created_at=NOW,
        ),
        Challenge.objects.create(
            program=program,
            name="Four stores in March",
            kind="stores_visited",
            target=Decimal("4"),
            starts_at=MARCH[0],
            ends_at=MARCH[1],
            reward_points=30,
            created_at=NOW,
        ),
    ]
    for run in ("first run (no progress yet)", "second run (nothing changed)"):
        total = 0.0
        for challenge in made:
            challenge = (
                Challenge.objects.select_related("program").prefetch_related("tiers", "segments").get(pk=challenge.pk)
            )
            started = time.perf_counter()
            report = challenge_progress_recompute(challenge=challenge, now=NOW)
            took = time.perf_counter() - started
            total += took
            rows = ChallengeProgress.objects.filter(challenge=challenge).count()
            print(
                f"  {run}: {challenge.name}: {took:.1f} s, {report.progress_rows:,} rows written "
                f"({rows:,} members with progress), {report.completed:,} completions awarded"
            )
        print(f"nightly recomputation, {run}: {total:.1f} s for {len(made)} challenges (target < 60 s each)")


if __name__ == "__main__":
    main()
