"""Personalized ranking benchmark on PostgreSQL. Prints:
  - ranking for one member (``offers_for_member``) with 200 live offers and 20 rewards: p50 / p99
    server time of the selector (inside a configuration scope, as a request runs it) and of the
    whole API call ``GET /api/v1/members/{n}/offers/`` through Django (no network); target p99 < 20 ms,
  - ranking every member of a 1,000,000-member base in batch (``member_offer_ranks_compute``,
    top 5 per member written with COPY); target < 2 minutes.

    .venv/bin/python bench/offers_ranking.py [--members 1000000 --purchases 4000000] [--samples 500] [--reuse]

The data is generated in the database with INSERT ... SELECT generate_series (seeded random()):
members (60% with personalization consent), tier statuses over three tiers, a VIP segment
(10%), purchases over the last 400 days with two lines each in 30 categories, accounts with a
balance, recent impressions; 200 live offers (bonus multipliers and fixed bonuses, coupons; some
for a tier, the segment, or to activate) and 20 rewards. Balances are written to the accounts
directly, with no ledger transactions (the ranking reads ``available`` only): this database is
for this bench only. Generation time is printed separately and is not part of the figures.
``--reuse`` keeps the data of an earlier run of the same size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import time

from _setup import insert_select, setup

DB_NAME = "loyalty_bench_offers_ranking"
NOW = dt.datetime(2031, 1, 1, 6, 0, tzinfo=dt.UTC)
CATEGORIES = [f"Category {i:02d}" for i in range(30)]


def reuse_setup() -> None:
    server = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    os.environ["DATABASE_URL"] = f"{server}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def generate(members: int, purchases: int) -> None:
    from django.db import connection, transaction

    from loyalty.ledger.models import Account, Purchase, PurchaseLine
    from loyalty.ledger.selectors import program_default
    from loyalty.tiers.models import MemberTier, Tier
    from members.models import Consent, Member
    from offers.models import OfferImpression
    from segments.models import Segment, SegmentMembership

    program = program_default()
    categories = "ARRAY[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # no FK triggers while loading
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cursor.execute("SELECT setseed(0.42)")
        insert_select(
            cursor,
            Member,
            {
                "member_number": "'7' || lpad(i::text, 11, '0')",
                "referral_code": "'R' || lpad(i::text, 10, '0')",
                "first_name": "'Bench'",
                "last_name": "'Member ' || i",
                "status": "'active'",
                "enrollment_source": "'import'",
                "enrolled_at": ("%s::timestamptz - (i %% 1000) * interval '1 day'", [NOW]),
                "updated_at": ("%s", [NOW]),
            },
            "generate_series(1, %s) AS i",
            [members],
        )
        cursor.execute("SELECT min(id) FROM members_member")
        first = cursor.fetchone()[0]
        base = Tier.objects.create(program=program, name="Base", rank=0)
        silver = Tier.objects.create(program=program, name="Silver", rank=1)
        gold = Tier.objects.create(program=program, name="Gold", rank=2, exclusive_rewards=True)
        member_rows = "members_member m"
        insert_select(
            cursor,
            Account,
            {
                "program_id": ("%s", [program.pk]),
                "kind": "'member'",
                "member_id": "m.id",
                "available": "floor(power(random(), 2) * 3000)::bigint",
                "opened_at": ("%s", [NOW]),
            },
            member_rows,
            [],
        )
        insert_select(
            cursor,
            MemberTier,
            {
                "member_id": "m.id",
                "program_id": ("%s", [program.pk]),
                "tier_id": (
                    "CASE WHEN m.id %% 20 = 0 THEN %s WHEN m.id %% 5 = 0 THEN %s ELSE %s END",
                    [gold.pk, silver.pk, base.pk],
                ),
                "earned_tier_id": "NULL",
                "tier_since": ("%s", [NOW]),
            },
            member_rows,
            [],
        )
        insert_select(
            cursor,
            Consent,
            {
                "member_id": "m.id",
                "purpose": "'personalization'",
                "channel": "''",
                "granted": "true",
                "updated_at": ("%s", [NOW]),
            },
            "members_member m WHERE m.id %% 5 < 3",
            [],
        )
        vip = Segment.objects.create(name="VIP", kind="static", created_at=NOW, updated_at=NOW)
        insert_select(
            cursor,
            SegmentMembership,
            {"segment_id": ("%s", [vip.pk]), "member_id": "m.id", "entered_at": ("%s", [NOW])},
            "members_member m WHERE m.id %% 10 = 3",
            [],
        )
        # purchases: member k picked with a skew (power 1.5), times uniform over 400 days
        insert_select(
            cursor,
            Purchase,
            {
                "program_id": ("%s", [program.pk]),
                "member_id": ("%s + floor(%s * power(random(), 1.5))::bigint", [first, members]),
                "external_id": "'or-' || g",
                "store_code": "'S' || (g %% 40)",
                "occurred_at": ("%s::timestamptz - random() * 400 * interval '1 day'", [NOW]),
                "currency": "'USD'",
                "total": "round((8 + 90 * random())::numeric, 2)",
                "eligible_amount": "round((8 + 90 * random())::numeric, 2)",
                "returned_amount": "0",
                "points_earned": "40",
                "created_at": ("%s", [NOW]),
            },
            "generate_series(1, %s) AS g",
            [purchases],
        )
        # two lines a purchase; a member's lines lean to the categories of their id
        insert_select(
            cursor,
            PurchaseLine,
            {
                "purchase_id": "p.id",
                "sku": "'SKU-' || ((p.member_id * 7 + n * 13 + (random() * 3)::int) %% 300)",
                "category": (
                    f"({categories})[1 + ((p.member_id * 7 + n * (1 + (random() * 4)::int)) %% {len(CATEGORIES)})]",
                    [],
                ),
                "quantity": "1",
                "unit_price": "round((2 + 40 * random())::numeric, 2)",
                "amount": "round((2 + 40 * random())::numeric, 2)",
                "discount": "0",
                "returned_quantity": "0",
            },
            "ledger_purchase p CROSS JOIN generate_series(1, 2) AS n",
            [],
        )
        print("  members, tiers, consent, purchases and lines generated", flush=True)
    make_offers(program, vip, gold, silver)
    from offers.models import Offer, Reward

    offer_ids = list(Offer.objects.values_list("pk", flat=True))
    reward_ids = list(Reward.objects.values_list("pk", flat=True))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        insert_select(
            cursor,
            OfferImpression,
            {
                "member_id": "m.id",
                "offer_id": ("(%s::bigint[])[1 + (m.id %% %s)]", [offer_ids, len(offer_ids)]),
                "channel": "'portal'",
                "times": "1",
                "last_shown_at": ("%s::timestamptz - (m.id %% 30) * interval '1 day'", [NOW]),
            },
            "members_member m WHERE m.id %% 2 = 0",
            [],
        )
        insert_select(
            cursor,
            OfferImpression,
            {
                "member_id": "m.id",
                "reward_id": ("(%s::bigint[])[1 + (m.id %% %s)]", [reward_ids, len(reward_ids)]),
                "channel": "'portal'",
                "times": "1",
                "last_shown_at": ("%s::timestamptz - (m.id %% 20) * interval '1 day'", [NOW]),
            },
            "members_member m WHERE m.id %% 3 = 0",
            [],
        )
    with connection.cursor() as cursor:
        for table in (
            "members_member",
            "ledger_account",
            "ledger_purchase",
            "ledger_purchaseline",
            "members_consent",
            "tiers_membertier",
            "segments_segmentmembership",
            "offers_offerimpression",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


def make_offers(program, vip, gold, silver) -> None:
    from decimal import Decimal

    from offers.models import BenefitKind, Offer, OfferStatus, Reward, RewardKind

    rng = random.Random(7)
    offers = []
    for i in range(200):
        kind = [
            BenefitKind.BONUS_MULTIPLIER,
            BenefitKind.BONUS_FIXED,
            BenefitKind.PERCENT_COUPON,
            BenefitKind.AMOUNT_COUPON,
        ][i % 4]
        scope = rng.sample(CATEGORIES, k=1 + i % 3) if kind == BenefitKind.BONUS_MULTIPLIER else []
        offers.append(
            Offer(
                program=program,
                name=f"Bench offer {i}",
                status=OfferStatus.ACTIVE,
                priority=rng.choice([0, 0, 0, 1, 2]),
                condition_kind="category_bought" if i % 7 == 0 else "always",
                condition_categories=rng.sample(CATEGORIES, k=1) if i % 7 == 0 else [],
                benefit_kind=kind,
                benefit_multiplier=Decimal(rng.choice(["1.5", "2", "3"]))
                if kind == BenefitKind.BONUS_MULTIPLIER
                else None,
                benefit_points=rng.choice([10, 50, 100, 250]) if kind == BenefitKind.BONUS_FIXED else None,
                benefit_value=Decimal(rng.choice([5, 10, 15]))
                if kind in (BenefitKind.PERCENT_COUPON, BenefitKind.AMOUNT_COUPON)
                else None,
                scope_categories=scope,
                requires_activation=i % 11 == 0,
                max_per_member=3 if i % 13 == 0 else None,
                valid_from=NOW - dt.timedelta(days=10),
                valid_until=NOW + dt.timedelta(days=20 + i),
                redemptions_count=rng.randint(0, 5000),
                created_at=NOW,
                updated_at=NOW,
            )
        )
    Offer.objects.bulk_create(offers)
    saved = list(Offer.objects.filter(name__startswith="Bench offer").order_by("pk"))
    for i, offer in enumerate(saved):
        if i % 17 == 0:
            offer.tiers.set([gold])
        elif i % 19 == 0:
            offer.tiers.set([silver, gold])
        if i % 23 == 0:
            offer.segments_include.set([vip])
    for i in range(20):
        reward = Reward.objects.create(
            program=program,
            name=f"Bench reward {i}",
            kind=RewardKind.AMOUNT_COUPON if i % 2 else RewardKind.PERCENT_COUPON,
            points_cost=100 * (i + 1),
            value=Decimal(5 + i) if i % 2 else Decimal(10),
            exclusive=i % 10 == 9,
            created_at=NOW,
            updated_at=NOW,
        )
        if i == 7:
            reward.tiers.set([gold])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def one_member(samples: int) -> tuple[list[float], list[float], list[float]]:
    from django.test import Client

    from loyalty.core.config import config_scope
    from loyalty.partners.services import partner_key_create
    from members import luhn
    from members.models import Member
    from members.services import consent_set
    from offers.selectors.ranking import offers_for_member

    rng = random.Random(11)
    low, high = (
        Member.objects.order_by("pk").values_list("pk", flat=True)[0],
        Member.objects.order_by("-pk").values_list("pk", flat=True)[0],
    )
    picks = [rng.randint(low, high) for _ in range(samples)]
    members = Member.objects.in_bulk(picks)
    for pk in picks[:20]:  # warm caches and the connection
        with config_scope():
            offers_for_member(member=members[pk], channel="api")
    selector, cpu = [], []
    for pk in picks:
        t, c = time.perf_counter(), time.process_time()
        with config_scope():
            offers_for_member(member=members[pk], channel="api")
        selector.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    partner, _, raw = partner_key_create(partner_name="Bench partner", scopes=["read"])
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    api = []
    shared = picks[: min(samples, 200)]
    for pk in shared:  # the partner may read members who share their data with partners
        member = members[pk]
        if not luhn.is_valid(member.member_number):  # generated numbers: give them their check digit
            digits = f"6{pk:010d}"  # a prefix no generated number has
            member.member_number = digits + luhn.check_digit(digits)
            Member.objects.filter(pk=pk).update(member_number=member.member_number)
        consent_set(member=member, purpose="partner_sharing", granted=True, source="bench")
    for pk in shared[:10]:
        client.get(f"/api/v1/members/{members[pk].member_number}/offers/")
    for pk in shared:
        t = time.perf_counter()
        response = client.get(f"/api/v1/members/{members[pk].member_number}/offers/")
        api.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, response.content[:300]
    return selector, cpu, api


def print_one(selector: list[float], cpu: list[float], api: list[float]) -> None:
    print(
        f"one member, offers_for_member: p50 {statistics.median(selector):.1f} ms, p99 {percentile(selector, 0.99):.1f} ms "
        f"over {len(selector)} members (target p99 < 20 ms); this process's CPU per call p50 "
        f"{statistics.median(cpu):.1f} ms, p99 {percentile(cpu, 0.99):.1f} ms"
    )
    print(
        f"one member, GET /api/v1/members/{{n}}/offers/ through Django: p50 {statistics.median(api):.1f} ms, "
        f"p99 {percentile(api, 0.99):.1f} ms over {len(api)} calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=4_000_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run of the same size")
    parser.add_argument("--skip-batch", action="store_true", help="measure one member only")
    args = parser.parse_args()

    started = time.perf_counter()
    if args.reuse:
        reuse_setup()
    else:
        setup(DB_NAME)
    from loyalty.core import clock
    from loyalty.ledger.models import Purchase, PurchaseLine
    from members.models import Member
    from offers.models import MemberOfferRank, Offer
    from offers.services.ranking import member_offer_ranks_compute

    clock.set_now(NOW)
    have = (Member.objects.count(), Purchase.objects.count())
    if have == (args.members, args.purchases) and Offer.objects.count() == 200:
        print(f"reusing {have[0]:,} members and {have[1]:,} purchases")
    else:
        if args.reuse and have != (0, 0):
            raise SystemExit(f"the database holds {have[0]:,} members / {have[1]:,} purchases: run without --reuse")
        generate(args.members, args.purchases)
        print(
            f"generated {args.members:,} members, {args.purchases:,} purchases, {PurchaseLine.objects.count():,} "
            f"lines in {time.perf_counter() - started:.0f} s (not part of the figures)"
        )

    selector, cpu, api = one_member(args.samples)
    if args.skip_batch:
        print_one(selector, cpu, api)
        return
    t = time.perf_counter()
    run = member_offer_ranks_compute(top=args.top)
    batch_s = time.perf_counter() - t
    assert MemberOfferRank.objects.count() == run.rows
    print(
        f"base: {args.members:,} members, {args.purchases:,} purchases, 200 live offers, 20 rewards "
        f"(PostgreSQL, {os.cpu_count()} cores)"
    )
    print_one(selector, cpu, api)
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run.timings.items())
    print(
        f"batch ranking of {run.members:,} members ({run.personalized:,} personalized, {run.profiles} eligibility "
        f"profiles), top {args.top} stored ({run.rows:,} rows): {batch_s:.1f} s (target < 120 s; {timings})"
    )


if __name__ == "__main__":
    main()
