"""Purchases through the API with 50 live bonus offers against the same without offers.

gunicorn on 127.0.0.1 against PostgreSQL, driven by wrk (as bench/api_bench.py, whose request
script it reuses). 50 offers of the default program: 46 bonus offers on categories the basket does
not hold (matched in memory, they cost no statement), and four the basket meets: double points on
food (with a points budget), a fixed bonus on drinks limited per member, one that members activated
(clip to card), and one for a segment every bench member is in. Rounds alternate: the offers are
paused (no live offer) for the "without" run and resumed for the "with" run, so that a slower minute
of the machine falls on both; the figures are the medians. Prints both throughputs and the ratio
(target >= 0.8).

    .venv/bin/python bench/offers_purchases.py [--seconds 10 --rounds 3 --clients 8 --workers 4 --threads 4]

``--in-process N``: instead, N purchases per round through Django's test client in one process (no
server, no concurrency: as bench/purchase_cost.py), with and without the offers, printing time,
Python CPU and statements per purchase: a steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from _setup import bench_server, setup
from api_bench import LUA, wrk

MEMBERS = 200


def _offers(partner, *, budget: bool) -> None:
    from decimal import Decimal

    from loyalty.core import clock
    from loyalty.ledger.selectors import program_default
    from members.models import Member
    from offers.models import BenefitKind, Offer, OfferActivation, OfferStatus
    from segments.models import Segment, SegmentMembership

    program, now = program_default(), clock.now()

    def offer(name: str, **fields) -> Offer:
        values = {
            "program": program,
            "name": name,
            "status": OfferStatus.ACTIVE,
            "benefit_kind": BenefitKind.BONUS_FIXED,
            "benefit_points": 5,
            "created_at": now,
            "updated_at": now,
        }
        values.update(fields)
        return Offer.objects.create(**values)

    for i in range(46):
        offer(f"Bonus on category {i}", scope_categories=[f"category-{i}"])
    offer(
        "Double points on food",
        benefit_kind=BenefitKind.BONUS_MULTIPLIER,
        benefit_multiplier=Decimal("2"),
        benefit_points=None,
        scope_categories=["food"],
        points_budget=10**12 if budget else None,
    )
    offer("Drinks bonus", scope_categories=["drinks"], max_per_member=10**6)
    clipped = offer("Clipped bonus", requires_activation=True)
    vip = Segment.objects.create(name="Bench VIP", kind="static", created_at=now, updated_at=now)
    offer("VIP bonus", benefit_points=3).segments_include.add(vip)
    members = list(Member.objects.all())
    OfferActivation.objects.bulk_create(
        [OfferActivation(offer=clipped, member=m, channel="bench", activated_at=now) for m in members]
    )
    SegmentMembership.objects.bulk_create([SegmentMembership(segment=vip, member=m, entered_at=now) for m in members])
    assert Offer.objects.filter(status=OfferStatus.ACTIVE).count() == 50


def _offers_live(live: bool) -> None:
    """Resume or pause every offer (a configuration change: the cache reloads), once requests
    still running from the previous run have finished."""
    from django.db import connection

    from offers.models import Offer, OfferStatus

    time.sleep(2)
    for pk in Offer.objects.order_by("pk").values_list("pk", flat=True):
        Offer.objects.filter(pk=pk).update(status=OfferStatus.ACTIVE if live else OfferStatus.PAUSED)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--in-process", type=int, default=0, help="N purchases per round in one process instead")
    parser.add_argument(
        "--no-budget", action="store_true", help="the food offer without its points budget (no offer row to wait for)"
    )
    parser.add_argument("--database", default="loyalty_bench_offers", help="PostgreSQL database (recreated)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        help="a Redis database the bench may flush (throttle counters, Celery broker)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    setup(args.database)

    from django.db import connection

    from loyalty.activity.services import enrollment_record
    from loyalty.partners.services import partner_key_create
    from members.models import EnrollmentSource

    partner, _, key = partner_key_create(partner_name="Bench Partner", scopes=["read", "write"])
    members = [
        enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email=f"bench{i}@example.com")
        for i in range(MEMBERS)
    ]
    _offers(partner, budget=not args.no_budget)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    _offers_live(False)
    if args.in_process:
        _in_process(args, [m.member_number for m in members], key)
        return

    runs: dict[str, list[dict]] = {"without offers": [], "50 live offers": []}
    with (
        bench_server(port=args.port, workers=args.workers, threads=args.threads, redis_url=args.redis_url),
        tempfile.TemporaryDirectory() as tmp,
    ):
        script = Path(tmp) / "purchase.lua"
        script.write_text(
            LUA
            % {
                "members": ",".join(f'"{m.member_number}"' for m in members),
                "accounts": "0",
                "mode": "purchase",
                "key": key,
            }
        )
        url = f"http://127.0.0.1:{args.port}/api/v1/purchases/"
        for live in (False, True):  # warm-up, both ways
            _offers_live(live)
            wrk(url, str(script), 4, 2)
        for _ in range(args.rounds):
            for name, live in (("without offers", False), ("50 live offers", True)):
                _offers_live(live)
                runs[name].append(wrk(url, str(script), args.clients, args.seconds))
    _report(args, runs)
    redis.Redis.from_url(args.redis_url).flushdb()


def _in_process(args: argparse.Namespace, members: list[str], key: str) -> None:
    import datetime as dt
    import json

    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from rest_framework.test import APIClient

    setup_test_environment()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    occurred_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    counter = [0]

    def post() -> None:
        counter[0] += 1
        body = {
            "member_number": members[counter[0] % len(members)],
            "external_id": f"cost-{counter[0]}",
            "occurred_at": occurred_at,
            "total": "42.50",
            "store": "S1",
            "lines": [
                {"sku": "A1", "category": "food", "quantity": "2", "amount": "30.00"},
                {"sku": "B2", "category": "drinks", "quantity": "1", "amount": "12.50"},
            ],
        }
        response = client.post("/api/v1/purchases/", json.dumps(body), content_type="application/json")
        if response.status_code != 201:
            raise SystemExit(f"purchase: {response.status_code} {response.content[:300]!r}")

    figures: dict[str, list[tuple[float, float]]] = {"without offers": [], "50 live offers": []}
    statements: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, live in (("without offers", False), ("50 live offers", True)):
            _offers_live(live)
            for _ in range(len(members)):  # warm: configuration cached, every member seen
                post()
            with CaptureQueriesContext(connection) as seen:
                post()
            statements[name] = len(seen.captured_queries)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.in_process):
                post()
            figures[name].append(
                ((time.perf_counter() - wall) / args.in_process, (time.process_time() - cpu) / args.in_process)
            )
    print(
        f"{args.in_process} purchases x {args.rounds} alternating rounds through the test client, PostgreSQL, one process"
    )
    for name, rounds in figures.items():
        print(
            f"  {name:<16} {statistics.median(w for w, _ in rounds) * 1000:6.2f} ms per purchase,"
            f" Python CPU {statistics.median(c for _, c in rounds) * 1000:5.2f} ms, {statements[name]} statements"
        )
    ratios = [b[0] / w[0] for b, w in zip(figures["without offers"], figures["50 live offers"], strict=True)]
    print(
        f"  with/without throughput (time per purchase) {statistics.median(ratios):.2f} (target >= 0.8); rounds: "
        + ", ".join(f"{r:.2f}" for r in ratios)
    )


def _report(args: argparse.Namespace, runs: dict[str, list[dict]]) -> None:
    from offers.models import OfferRedemption

    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads, PostgreSQL, Redis, wrk {args.clients} clients; "
        f"{args.rounds} alternating rounds of {args.seconds} s, medians"
        + ("; no points budget" if args.no_budget else "; one offer met by every purchase has a points budget")
    )
    for name, rs in runs.items():
        print(
            f"  {name:<16} {statistics.median(r['rps'] for r in rs):8.1f} purchases/s"
            f"  p50 {statistics.median(r['p50_ms'] for r in rs):6.1f} ms  p99 {statistics.median(r['p99_ms'] for r in rs):6.1f} ms"
            f"  ({sum(r['requests'] for r in rs)} requests, {sum(r['errors'] for r in rs)} errors)"
        )
    ratios = [w["rps"] / b["rps"] for b, w in zip(runs["without offers"], runs["50 live offers"], strict=True)]
    print(
        f"  with/without throughput {statistics.median(ratios):.2f} (target >= 0.8); rounds: "
        + ", ".join(f"{r:.2f}" for r in ratios)
    )
    print(
        f"  offer redemptions written: {OfferRedemption.objects.count()} "
        f"({OfferRedemption.objects.order_by().values('offer').distinct().count()} offers used)"
    )


if __name__ == "__main__":
    main()
