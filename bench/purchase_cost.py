"""In-process cost of one partner purchase: N purchases through Django's test client (the whole
request: API-key auth, DRF parsing, the workflow, the response) in one process against
PostgreSQL, no HTTP server and no concurrency. A steadier figure than api_bench.py's throughput on
a shared machine: it is the CPU and round trips one purchase costs.

Prints the mean and median time per purchase and the statements one purchase sends.

    .venv/bin/python bench/purchase_cost.py [--purchases 2000 --rounds 3]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import statistics
import time

from _setup import setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--purchases", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="also print the N costliest functions (cProfile)")
    args = parser.parse_args()
    # as api_bench.py serves it: persistent connections, no throttling in the way
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    os.environ["API_THROTTLE_RATE"] = "1000000/min"
    setup("loyalty_bench_purchase_cost")

    from django.db import connection
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    from loyalty.activity.services import enrollment_record
    from loyalty.partners.services import partner_key_create
    from members.models import EnrollmentSource

    setup_test_environment()
    partner, _, key = partner_key_create(partner_name="Bench Partner", scopes=["read", "write"])
    members = [
        enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email=f"bench{i}@example.com").member_number
        for i in range(200)
    ]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    occurred_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")

    def body(n: int) -> str:
        return json.dumps(
            {
                "member_number": members[n % len(members)],
                "external_id": f"cost-{n}",
                "occurred_at": occurred_at,
                "total": "42.50",
                "store": "S1",
                "lines": [
                    {"sku": "A1", "category": "food", "quantity": "2", "amount": "30.00"},
                    {"sku": "B2", "category": "drinks", "quantity": "1", "amount": "12.50"},
                ],
            }
        )

    def post(n: int) -> None:
        response = client.post("/api/v1/purchases/", body(n), content_type="application/json")
        if response.status_code != 201:
            raise SystemExit(f"purchase {n}: {response.status_code} {response.content[:300]!r}")

    for n in range(200):  # warm: every member's account and link exist, configuration cached
        post(n)
    statements = []
    with connection.execute_wrapper(lambda execute, sql, *rest: statements.append(sql) or execute(sql, *rest)):
        post(10**6)
    number = 200
    per_round = []
    for _ in range(args.rounds):
        times = []
        cpu_start = time.process_time()
        for _ in range(args.purchases):
            number += 1
            start = time.perf_counter()
            post(number)
            times.append(time.perf_counter() - start)
        cpu = (time.process_time() - cpu_start) / args.purchases
        per_round.append((statistics.mean(times), statistics.median(times), cpu))
    print(f"{args.purchases} purchases x {args.rounds} rounds through the test client, PostgreSQL, one process")
    for index, (mean, median, cpu) in enumerate(per_round, 1):
        print(
            f"  round {index}: mean {mean * 1000:.2f} ms, median {median * 1000:.2f} ms per purchase,"
            f" Python CPU {cpu * 1000:.2f} ms"
        )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.purchases):
            number += 1
            post(number)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(args.profile)
    print(
        f"  median of rounds: mean {statistics.median(r[0] for r in per_round) * 1000:.2f} ms,"
        f" median {statistics.median(r[1] for r in per_round) * 1000:.2f} ms,"
        f" Python CPU {statistics.median(r[2] for r in per_round) * 1000:.2f} ms;"
        f" {len(statements)} statements per warm purchase"
    )


if __name__ == "__main__":
    main()
