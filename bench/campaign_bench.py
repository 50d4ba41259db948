"""Campaign benchmark on PostgreSQL and Redis. Builds (or, with ``--reuse``, keeps) a base of N members
with accounts in the default program, marketing consent and a phone, a static segment holding all of
them and an exclusion segment of 1%, then prints:

- the launch of a campaign (holdout 10%, variants A and B, SMS) to that audience: the audience
  snapshot with arms assigned in the same INSERT ... SELECT, the messages queued (one INSERT ...
  SELECT per arm), in one transaction, then one dispatch task handed to Celery on Redis.
  Target: < 60 s for 1,000,000 members;
- the send rate of those messages through Celery on Redis: a real worker process (started here, on
  REDIS_URL's database, default 3) runs the campaign's dispatch task (the run's messages to batches of
  MESSAGING_BATCH_SIZE) and the batches, with the logging provider, every message checked at send time
  (consent, preferences, quiet hours, weekly caps). Target: >= 2,000 messages/s.

  REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/campaign_bench.py [--members 1000000] [--reuse]
      [--concurrency 2] [--batch 500] [--no-send]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from _setup import SQL_MEMBERS, celery_worker, insert_select, setup

DB_NAME = "loyalty_bench_campaigns"


def reuse_setup() -> None:
    server = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    os.environ["DATABASE_URL"] = f"{server}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def build(n: int, now: dt.datetime) -> None:
    from django.db import connection

    from loyalty.ledger import selectors as ledger_selectors
    from loyalty.ledger.models import Account
    from segments.models import Segment, SegmentKind, SegmentMembership

    program = ledger_selectors.program_default()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(SQL_MEMBERS, {"now": now, "n": n})
        cursor.execute("UPDATE members_member SET phone = '+1555' || lpad(id::text, 7, '0')")
        cursor.execute(
            "INSERT INTO members_consent (member_id, purpose, channel, granted, updated_at) "
            "SELECT id, 'marketing', '', true, %s FROM members_member",
            [now],
        )
        insert_select(
            cursor,
            Account,
            {"program_id": ("%s", [program.pk]), "kind": "'member'", "member_id": "m.id", "opened_at": "now()"},
            "members_member m",
            [],
        )
        for name, where in (("Bench: everyone", ""), ("Bench: do not contact", "WHERE m.id %% 100 = 0")):
            segment = Segment.objects.create(
                name=name, kind=SegmentKind.STATIC, created_at=now, updated_at=now, last_refreshed_at=now
            )
            insert_select(
                cursor,
                SegmentMembership,
                {"segment_id": ("%s", [segment.pk]), "member_id": "m.id", "entered_at": "now()"},
                f"members_member m {where}",
                [],
            )
        cursor.execute("ANALYZE members_member; ANALYZE members_consent")
    print(f"(base of {n:,} members built in {time.perf_counter() - started:.1f} s; not part of the figures)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the base of an earlier run of the same size")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--batch", type=int, default=500, help="messages per task")
    parser.add_argument("--no-send", action="store_true", help="launch only")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/3")
    if args.reuse:
        reuse_setup()
    else:
        setup(DB_NAME)

    from django.conf import settings
    from django.db import connection

    from loyalty.campaigns.models import Campaign, Variant
    from loyalty.campaigns.services import campaigns as services
    from loyalty.celery import app
    from loyalty.core import clock
    from loyalty.ledger import selectors as ledger_selectors
    from loyalty.messaging.models import Content, Message, MessageStatus, MessagingPolicy
    from members.models import Member
    from segments.models import Segment

    settings.MESSAGING_BATCH_SIZE = args.batch
    app.conf.broker_url = redis_url
    app.conf.task_always_eager = False
    now = clock.now()
    have = Member.objects.count()
    if args.reuse and have not in (0, args.members):
        raise SystemExit(f"the database holds {have:,} members: run without --reuse")
    if have == 0:
        build(args.members, now)
    with connection.cursor() as cursor:  # an earlier run's campaign and messages
        cursor.execute(
            "TRUNCATE campaigns_campaignmember, campaigns_campaignrun, campaigns_variant, messaging_message, "
            "messaging_contactpreference, campaigns_campaign_segments_include, campaigns_campaign_segments_exclude, "
            "campaigns_campaign_offers, campaigns_campaign_rewards, campaigns_campaign"
        )
    program = ledger_selectors.program_default()
    # no quiet hours and no caps: every message goes, whatever the time of the run
    MessagingPolicy.objects.update_or_create(
        program=program,
        defaults=dict(quiet_start=dt.time(0), quiet_end=dt.time(0), sms_weekly_cap=None, updated_at=now),
    )
    content = Content.objects.create(
        name="Bench campaign",
        subject="Hi {{ first_name }}",
        body="{{ first_name }}, double points this week. You have {{ balance }} points.",
        link_url="https://shop.example/double",
        created_at=now,
        updated_at=now,
    )
    campaign = Campaign(
        program=program, name="Bench", content=content, channels=["sms"], holdout_percent=10, attribution_days=14
    )
    services.campaign_save(campaign=campaign, actor="bench")
    campaign.segments_include.set([Segment.objects.get(name="Bench: everyone")])
    campaign.segments_exclude.set([Segment.objects.get(name="Bench: do not contact")])
    Variant.objects.create(campaign=campaign, name="A", weight=1)
    Variant.objects.create(campaign=campaign, name="B", weight=1)

    statements: dict[str, float] = {"snapshot": 0.0, "queue": 0.0}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if sql.startswith("INSERT INTO campaigns_campaignmember"):
                statements["snapshot"] += time.perf_counter() - started
            elif sql.lstrip().startswith("INSERT INTO messaging_message"):
                statements["queue"] += time.perf_counter() - started

    app.control.purge()  # nothing left over from an earlier run on this Redis database
    started = time.perf_counter()
    with connection.execute_wrapper(timed):
        services.campaign_launch(campaign=campaign, actor="bench")
    launch_seconds = time.perf_counter() - started
    campaign.refresh_from_db()
    queued = Message.objects.filter(campaign_id=campaign.pk).count()
    print(
        f"launch to {campaign.audience_size:,} members (holdout 10%, A/B, sms): {launch_seconds:.1f} s in all "
        f"(target < 60 s for 1M) = snapshot with arms {statements['snapshot']:.1f} s + queue {queued:,} messages "
        f"{statements['queue']:.1f} s + the rest (checks, arm sizes, run row, audit, commit, one dispatch task to "
        f"Redis) {launch_seconds - statements['snapshot'] - statements['queue']:.1f} s"
    )
    if args.no_send:
        return

    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "MESSAGING_BATCH_SIZE": str(args.batch),
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",  # as in production: no query log, cached template loader
    }
    with celery_worker(app=app, env=env, concurrency=args.concurrency) as worker:
        started = time.perf_counter()
        sent_before = Message.objects.filter(status=MessageStatus.SENT).count()  # taken while the worker started
        pending = queued
        while pending:
            time.sleep(0.5)
            pending = Message.objects.filter(status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]).count()
            if worker.poll() is not None:
                raise SystemExit("the Celery worker died")
        seconds = time.perf_counter() - started
    sent = Message.objects.filter(status=MessageStatus.SENT).count()
    rate = (sent - sent_before) / seconds
    other = Message.objects.exclude(status=MessageStatus.SENT).count()
    print(
        f"send {sent:,} campaign messages through Celery on Redis ({args.concurrency} worker processes, batches of "
        f"{args.batch}, logging provider): {seconds:.1f} s = {rate:,.0f} messages/s (target >= 2,000); "
        f"not sent: {other}"
    )


if __name__ == "__main__":
    main()
