"""Segments benchmark on PostgreSQL. Prints:
  - refresh time of a dynamic segment with three behaviour conditions (spend, number of
    purchases and days since the last purchase in the last 365 days) over 1,000,000 members
    and 20,000,000 purchases: the first refresh (everybody who matches enters) and the next
    day's refresh (a diff); target < 30 s,
  - RFM + CLV scoring time (``scores_compute``: read, BG/NBD + Gamma-Gamma fit, write) for the
    same base; target < 2 minutes.

    .venv/bin/python bench/segments_bench.py [--members 1000000 --purchases 20000000] [--reuse]

The data is generated in the database with INSERT ... SELECT generate_series (seeded random(),
purchases spread over two years, a few members buying much more than most); generation time
is printed separately and is not part of the figures. ``--reuse`` keeps the database of an
earlier run of the same size instead of recreating it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from _setup import insert_select, setup

DB_NAME = "loyalty_bench_segments"
NOW = dt.datetime(2031, 1, 1, 6, 0, tzinfo=dt.UTC)
RULES = {
    "all": [
        {"field": "purchase.spend", "op": "gte", "value": 400, "window": {"last_days": 365}},
        {"field": "purchase.count", "op": "gte", "value": 8, "window": {"last_days": 365}},
        {"field": "purchase.days_since_last", "op": "lte", "value": 30, "window": {"last_days": 365}},
    ]
}


def reuse_setup() -> None:
    server = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    os.environ["DATABASE_URL"] = f"{server}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def drop_indexes(cursor, table: str) -> list[str]:
    """Drop every index and unique constraint but the primary key; return how to rebuild them."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    )
    constraints = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    cursor.execute(
        """SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s
           AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)""",
        [table, table],
    )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {d}' for name, d in constraints] + [d for _, d in indexes]


def generate(members: int, purchases: int) -> None:
    from django.db import connection

    from loyalty.ledger.models import Purchase
    from loyalty.ledger.selectors import program_default
    from members.models import Member

    program = program_default()
    bands = "(ARRAY['19-24','25-34','35-44','45-54','55-64','65+'])[1 + (i %% 6)]"
    incomes = "(ARRAY['Under 15K','15-24K','25-34K','35-49K','50-74K','75-99K','100-124K','125K+'])[1 + (i %% 8)]"
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no FK triggers while loading
        cursor.execute("SET maintenance_work_mem = '1GB'")
        insert_select(
            cursor,
            Member,
            {
                "member_number": "'9' || lpad(i::text, 11, '0')",
                "referral_code": "'S' || lpad(i::text, 10, '0')",
                "external_id": "'seg-' || i",
                "first_name": "'Bench'",
                "last_name": "'Member ' || i",
                "country": "'US'",
                "postal_code": "lpad((i %% 99999)::text, 5, '0')",
                "age_band": bands,
                "income_band": incomes,
                "household_size": "1 + (i %% 5)",
                "kids_count": "i %% 4",
                "status": "'active'",
                "enrollment_source": "'import'",
                "enrolled_at": ("%s::timestamptz - (i %% 1095) * interval '1 day'", [NOW]),
                "updated_at": ("%s", [NOW]),
            },
            "generate_series(1, %s) AS i",
            [members],
        )
        cursor.execute("SELECT min(id) FROM members_member")
        first = cursor.fetchone()[0]
        rebuild = drop_indexes(cursor, "ledger_purchase")
        cursor.execute("SELECT setseed(0.42)")
        chunk = 2_000_000
        for low in range(1, purchases + 1, chunk):
            high = min(low + chunk - 1, purchases)
            # Member k (0-based) is picked with a skew to low k (power 1.5); each member has a
            # first-possible day (uniform over the 730 days), an active life of 30-730 days
            # (some drop out) and a basket level (skewed to small), from k by golden-ratio
            # hashing; purchase times are uniform in the member's active span; 1% partly returned.
            insert_select(
                cursor,
                Purchase,
                {
                    "program_id": ("%s", [program.pk]),
                    "member_id": ("%s + pick.k", [first]),
                    "external_id": "'sb-' || g",
                    "store_code": "'S' || (g %% 40)",
                    "occurred_at": (
                        "%s::timestamptz - (730 * u.birth) * interval '1 day'"
                        " + random() * least(730 * u.birth, 30 + 700 * sqrt(u.life)) * interval '1 day'",
                        [NOW],
                    ),
                    "currency": "'USD'",
                    "total": "a.amount",
                    "eligible_amount": "a.amount",
                    "returned_amount": "CASE WHEN g %% 100 = 0 THEN round(a.amount / 4, 2) ELSE 0 END",
                    "points_earned": "floor(a.amount)",
                    "created_at": ("%s", [NOW]),
                },
                "generate_series(%s::bigint, %s::bigint) AS g"
                " CROSS JOIN LATERAL (SELECT floor(%s * power(random(), 1.5))::bigint + g * 0 AS k) AS pick"
                " CROSS JOIN LATERAL (SELECT pick.k * 0.6180339887 - floor(pick.k * 0.6180339887) AS birth,"
                "   pick.k * 0.4142135623 - floor(pick.k * 0.4142135623) AS life,"
                "   pick.k * 0.7320508075 - floor(pick.k * 0.7320508075) AS level) AS u"
                " CROSS JOIN LATERAL (SELECT round(((8 + 120 * power(u.level, 2)) * (0.5 + random()))::numeric, 2)"
                "   AS amount) AS a",
                [low, high, members],
                analyze=False,
            )
            print(f"  purchases {high:,} / {purchases:,}", flush=True)
        for statement in rebuild:
            cursor.execute(statement)
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("VACUUM ANALYZE members_member")
        cursor.execute("VACUUM ANALYZE ledger_purchase")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=20_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run of the same size")
    args = parser.parse_args()

    started = time.perf_counter()
    if args.reuse:
        reuse_setup()
    else:
        setup(DB_NAME)
    from django.db import connection

    from loyalty.core import clock
    from loyalty.ledger.models import Purchase
    from members.models import Member
    from segments import services
    from segments.models import MemberScore, Segment, SegmentEvent, SegmentMembership, SegmentRefresh

    clock.set_now(NOW)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_purchase WHERE external_id LIKE 'sb-next-%%'")
    have = (Member.objects.count(), Purchase.objects.count())
    if have == (args.members, args.purchases):
        print(f"reusing {have[0]:,} members and {have[1]:,} purchases")
    else:
        if args.reuse and have != (0, 0):
            raise SystemExit(f"the database holds {have[0]:,} members / {have[1]:,} purchases: run without --reuse")
        generate(args.members, args.purchases)
        print(
            f"generated {args.members:,} members and {args.purchases:,} purchases in "
            f"{time.perf_counter() - started:.0f} s (not part of the figures)"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE segments_segmentevent, segments_segmentmembership, segments_segmentrefresh, "
            "segments_segmentupload, segments_memberscore, segments_scorerun, segments_segment CASCADE"
        )

    segment = services.segment_create(name="Bench: frequent recent big spenders", rules=RULES)
    t = time.perf_counter()
    first = services.segment_refresh(segment=segment)
    first_s = time.perf_counter() - t

    # the next day: 20,000 new purchases, time moves on, some members enter and some leave
    clock.set_now(NOW + dt.timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM members_member")
        low = cursor.fetchone()[0]
        cursor.execute(
            """INSERT INTO ledger_purchase (program_id, member_id, partner_id, external_id, store_code, occurred_at,
                   currency, total, tax, discount, eligible_amount, returned_amount, points_earned, created_at)
               SELECT p.id, %s + floor(%s * random())::bigint, NULL, 'sb-next-' || g, 'S1', %s, 'USD', 80, 0, 0, 80, 0,
                   80, %s
               FROM generate_series(1, 20000) g CROSS JOIN (SELECT id FROM ledger_program WHERE is_default) p""",
            [low, args.members, NOW + dt.timedelta(hours=12), NOW + dt.timedelta(hours=12)],
        )
    t = time.perf_counter()
    second = services.segment_refresh(segment=segment)
    second_s = time.perf_counter() - t

    t = time.perf_counter()
    run = services.scores_compute()
    scoring_s = time.perf_counter() - t

    assert SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).count() == second.size
    assert SegmentEvent.objects.filter(refresh_id=second.pk).count() == second.entered + second.left
    assert Segment.objects.get(pk=segment.pk).size == second.size
    assert SegmentRefresh.objects.filter(segment=segment).count() == 2
    scored = MemberScore.objects.count()
    print(f"base: {args.members:,} members, {args.purchases:,} purchases (PostgreSQL, {os.cpu_count()} cores)")
    print("segment refresh, 3 behaviour conditions (spend >= 400, >= 8 purchases, last purchase <= 30 days; 365 days):")
    print(f"  first refresh: {first_s:.1f} s ({first.size:,} members, all entered; target < 30 s)")
    print(
        f"  next-day refresh: {second_s:.1f} s (+{second.entered:,} entered, -{second.left:,} left, "
        f"{second.size:,} members; target < 30 s)"
    )
    timings = run.timings
    print(
        f"RFM + CLV scoring of {scored:,} members: {scoring_s:.1f} s (read {timings['read_s']:.1f} s, "
        f"compute and fit {timings['compute_s']:.1f} s, write {timings['write_s']:.1f} s; target < 120 s)"
    )
    bg = run.bgnbd or {}
    gg = run.gamma_gamma or {}
    print(
        f"  BG/NBD r={bg.get('r', 0):.3f} alpha={bg.get('alpha', 0):.3f} a={bg.get('a', 0):.3f} b={bg.get('b', 0):.3f}; "
        f"Gamma-Gamma p={gg.get('p', 0):.3f} q={gg.get('q', 0):.3f} gamma={gg.get('gamma', 0):.3f}; "
        f"predicted value by {run.clv_basis}{' (degenerate fit)' if run.degenerate else ''}, "
        f"BG/NBD on {run.fit_members or 0:,} members, log-likelihood {run.fit_log_likelihood or 0:.1f}"
        + (f"; note: {run.note}" if run.note else "")
    )


if __name__ == "__main__":
    main()
