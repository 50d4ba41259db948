"""Admin pages benchmark: the member page (member 360) and the points account page of one member
with thousands of ledger entries: server time, response size and queries.

    .venv/bin/python bench/admin_bench.py [--entries 5000] [--requests 10]

Builds its own PostgreSQL database (bench/_setup.py: BENCH_PG_URL, default 127.0.0.1:5432,
database ``loyalty_admin_bench``, recreated), enrolls one member and credits ``--entries``
earnings with explanations through the ledger's bulk service (one transaction, one lot and two
entries each; the member's account then holds ``--entries`` entries and lots). Each page is
requested through Django's test client in this process as a superuser (whole request: middleware,
session, admin, templates; no network), once to warm up, then ``--requests`` times: median and
max, bytes and queries of the last request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from _setup import setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--db", default="loyalty_admin_bench")
    args = parser.parse_args()
    setup(args.db)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from loyalty.activity.services import enrollment_record
    from loyalty.ledger.models import Account
    from loyalty.ledger.services import Credit, points_credit_many
    from members.models import EnrollmentSource

    member = enrollment_record(source=EnrollmentSource.STAFF, first_name="Bench", last_name="Member", email="b@x.io")
    account = Account.objects.get(member=member, kind="member")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
    explanation = [
        {"rule": "Base rate", "detail": "50.00 × 1 = 50", "points": "50"},
        {"rule": "Total", "detail": "rounded down once", "points": "50"},
    ]
    credits = [
        Credit(
            account=account,
            points=50,
            reason=f"purchase bench-{i}",
            at=start + dt.timedelta(minutes=i),
            idempotency_key=f"bench-{i}",
            explanation=explanation,
        )
        for i in range(args.entries)
    ]
    points_credit_many(credits=credits)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    user = get_user_model().objects.create_superuser("bench", "bench@x.io", "bench-pass-2026")
    client = Client()
    client.force_login(user)
    pages = {
        "account page": f"/admin/ledger/account/{account.pk}/change/",
        "member page": f"/admin/members/member/{member.pk}/change/",
    }
    print(f"admin pages, one member with {args.entries} ledger entries and lots, {args.requests} requests each")
    print("command: .venv/bin/python bench/admin_bench.py " + f"--entries {args.entries} --requests {args.requests}")
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        times, counted = [], [0]

        def count(execute, sql, params, many, context, counted=counted):
            counted[0] += 1
            return execute(sql, params, many, context)

        for _ in range(args.requests):
            counted[0] = 0
            with connection.execute_wrapper(count):
                began = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - began) * 1000)
        print(
            f"{name:13s} median {statistics.median(times):8.1f} ms  max {max(times):8.1f} ms  "
            f"{len(response.content) / 1024:8.1f} KiB  {counted[0]} queries"
        )


if __name__ == "__main__":
    main()
