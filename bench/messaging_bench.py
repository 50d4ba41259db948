"""Messaging benchmark on PostgreSQL and Redis. Prints:
- time to queue N marketing messages (messages_queue, one call),
- the send rate through Celery: a real worker process (started here, on REDIS_URL's database) takes
  the batches (MESSAGING_BATCH_SIZE per task) and sends them with the logging provider, every
  message checked at send time (consent, preferences, quiet hours, weekly cap). Target: >= 2,000
  messages per second on this machine.

  REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/messaging_bench.py [--messages 100000 --concurrency 2 --db NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from _setup import SQL_MEMBERS, celery_worker, setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--batch", type=int, default=500, help="messages per task")
    parser.add_argument("--db", default="loyalty_bench_messaging", help="bench database (dropped and recreated)")
    parser.add_argument(
        "--conn-max-age", type=int, default=None, help="CONN_MAX_AGE of the worker (default: the environment's, 0)"
    )
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/8")
    db_name = args.db
    setup(db_name)

    from django.conf import settings
    from django.db import connection

    from loyalty.celery import app
    from loyalty.core import clock
    from loyalty.ledger import selectors as ledger_selectors
    from loyalty.messaging import services
    from loyalty.messaging.models import Content, Message, MessageStatus, MessagingPolicy
    from members.models import Member

    settings.MESSAGING_BATCH_SIZE = args.batch
    app.conf.broker_url = redis_url
    app.conf.task_always_eager = False

    now = clock.now()
    n = args.messages
    with connection.cursor() as cursor:
        cursor.execute(SQL_MEMBERS, {"now": now, "n": n})
        cursor.execute("UPDATE members_member SET phone = '+1555' || lpad(id::text, 7, '0')")
        cursor.execute(
            "INSERT INTO members_consent (member_id, purpose, channel, granted, updated_at) "
            "SELECT id, 'marketing', '', true, %s FROM members_member",
            [now],
        )
        cursor.execute("ANALYZE members_member; ANALYZE members_consent")
    program = ledger_selectors.program_default()
    # no quiet hours and no caps: every message goes, whatever the time of the run
    MessagingPolicy.objects.update_or_create(
        program=program,
        defaults=dict(quiet_start=dt.time(0), quiet_end=dt.time(0), sms_weekly_cap=None, updated_at=now),
    )
    content = Content.objects.create(
        name="Bench",
        subject="Hi {{ first_name }}",
        body="{{ first_name }}, double points this week. You have {{ balance }} points.",
        link_url="https://shop.example/double",
        created_at=now,
        updated_at=now,
    )
    member_ids = list(Member.objects.order_by("pk").values_list("pk", flat=True))

    started = time.perf_counter()
    ids = services.messages_queue(
        content=content, member_ids=member_ids, channels=["sms"], source="campaign", key="bench", dispatch=False
    )
    queue_seconds = time.perf_counter() - started
    print(f"queue {len(ids):,} messages: {queue_seconds:.1f} s ({len(ids) / queue_seconds:,.0f} messages/s)")

    env = {
        **os.environ,
        "DATABASE_URL": f"{os.environ['DATABASE_URL']}",
        "REDIS_URL": redis_url,
        "MESSAGING_BATCH_SIZE": str(args.batch),
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",  # as in production: no query log, cached template loader
    }
    if args.conn_max_age is not None:  # 0 (the default): Celery closes the worker's connection after each task
        env["CONN_MAX_AGE"] = str(args.conn_max_age)
    app.control.purge()
    with celery_worker(app=app, env=env, concurrency=args.concurrency) as worker:
        started = time.perf_counter()
        tasks = services.messages_dispatch(message_ids=ids)
        pending = len(ids)
        while pending:
            time.sleep(0.5)
            pending = Message.objects.filter(status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]).count()
            if worker.poll() is not None:
                raise SystemExit("the Celery worker died")
        seconds = time.perf_counter() - started
    sent = Message.objects.filter(status=MessageStatus.SENT).count()
    other = Message.objects.exclude(status=MessageStatus.SENT).count()
    print(
        f"send {sent:,} messages through Celery on Redis ({tasks} tasks of {args.batch}, "
        f"{args.concurrency} worker processes, logging provider, CONN_MAX_AGE {env.get('CONN_MAX_AGE', '0')}): {seconds:.1f} s = {sent / seconds:,.0f} messages/s "
        f"(target >= 2,000); not sent: {other}"
    )


if __name__ == "__main__":
    main()
