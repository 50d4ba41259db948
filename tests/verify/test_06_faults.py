"""Promise 9: fault injection. A Celery worker SIGKILLed mid-task, PostgreSQL backends terminated
mid-request and Redis restarted mid-burst leave the same end state as a fault-free run: no lost and
no duplicate ledger entries, outbox events, messages or webhook deliveries (a webhook or gateway
message received twice with the same webhook-id / Idempotency-Key counts once: receivers drop
repeats by that key).

Each kind runs once fault-free (the reference, which also times it) and then ``RUNS`` times with
the fault at a moment drawn from ``[0, reference time]`` (seeded: the moment is printed on failure).
Each run works on its own data; its end state, with ids replaced by the position of the row in its
run, must equal the reference's."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench._setup import insert_select
from loyalty.core import clock
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Account, AccountKind, Entry, Lot
from loyalty.ledger.services import Credit, accounts_open_many, points_credit_many
from loyalty.partners.models import OutboxEvent
from members.models import Member
from tests.verify import faults_harness as harness

RUNS = 4  # faulty runs per kind
SEED = 906
RECEIVER_PORT = 18121
SERVER_PORT = 18122
REDIS_PORT = 6390

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def live_celery():
    """Tasks go to the broker (a real worker runs them), not in-process."""
    from loyalty.celery import app

    app.conf.task_always_eager = False
    return app


@pytest.fixture
def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


def moments(reference_seconds: float, label: str) -> list[float]:
    """When to strike, from the start of the work: within its first 80 % (the end of the reference
    time is the wait for the broker's acknowledgement, after the work)."""
    rng = random.Random(f"{SEED}:{label}")
    return [round(rng.uniform(0.0, 0.8 * reference_seconds), 3) for _ in range(RUNS)]


def faulty_runs(*, label: str, reference_seconds: float, prepare, act, snapshot, expected) -> list[bool]:
    """``RUNS`` runs: ``prepare(run)`` makes the run's data, ``act(run, delay)`` starts it and injects
    the fault ``delay`` seconds in (returns whether it hit work in progress); the run's ``snapshot``
    must equal ``expected``."""
    hits = []
    rng = random.Random(SEED)
    for run, delay in enumerate(moments(reference_seconds, label), start=1):
        t0 = time.monotonic()
        context = prepare(run)
        t1 = time.monotonic()
        hits.append(act(context, delay, rng))
        t2 = time.monotonic()
        got = snapshot(context)
        print(f"TIMING prepare {t1 - t0:.2f} act {t2 - t1:.2f} snapshot {time.monotonic() - t2:.2f} delay {delay}")
        assert got == expected, f"{label} run {run}: fault at {delay:.3f} s (seed {SEED}) left another end state"
    return hits


# --- a) worker SIGKILLed mid-expiry ----------------------------------------------------------------

EXPIRY_ACCOUNTS = 1000


def _members(run: int, n: int, prefix: str) -> list[Member]:
    """``n`` members inserted set-based (member numbers ``<run><prefix>...``)."""
    with connection.cursor() as cursor:
        insert_select(
            cursor,
            Member,
            {
                "member_number": (f"'{prefix}' || lpad(%s::text, 3, '0') || lpad(i::text, 6, '0')", [run]),
                "external_id": (f"'{prefix}-' || %s || '-' || i", [run]),
                "email": "NULL",
                "first_name": "'Fault'",
                "last_name": "'Member ' || i",
                "country": "'US'",
                "status": "'active'",
                "enrolled_at": "now()",
                "enrollment_source": "'import'",
                "referral_code": (f"'{prefix}' || lpad(%s::text, 3, '0') || lpad(i::text, 6, '0')", [run]),
                "updated_at": "now()",
            },
            "generate_series(1, %s) AS i",
            [n],
            analyze=False,
        )
    return list(Member.objects.filter(external_id__startswith=f"{prefix}-{run}-").order_by("member_number"))


def expiry_prepare(run: int) -> list[int]:
    """Accounts with an expired lot of 50 and a live lot of 30 (debt-free), written in the past."""
    program = ledger_selectors.program_default()
    members = _members(run, EXPIRY_ACCOUNTS, "E")
    past = timezone.now() - dt.timedelta(days=2)
    accounts = accounts_open_many(program=program, members=members, opened_at=[past] * len(members))
    clock.set_now(past)
    try:
        points_credit_many(
            credits=[
                credit
                for m in members
                for credit in (
                    Credit(
                        account=accounts[m.pk],
                        points=50,
                        reason="faults",
                        at=past,
                        expires_at=past + dt.timedelta(days=1),
                    ),
                    Credit(
                        account=accounts[m.pk],
                        points=30,
                        reason="faults",
                        at=past,
                        expires_at=past + dt.timedelta(days=400),
                    ),
                )
            ]
        )
    finally:
        clock.set_now(None)
    return [accounts[m.pk].pk for m in members]


def expiry_snapshot(account_ids: list[int]) -> dict:
    position = {pk: i for i, pk in enumerate(account_ids)}
    accounts = Account.objects.filter(pk__in=account_ids)
    member_position = {a.member_id: position[a.pk] for a in accounts}
    entries = Entry.objects.filter(account_id__in=account_ids)
    expire_txs = entries.filter(kind="expire").values_list("transaction_id", flat=True)
    return {
        "balances": sorted((position[a.pk], a.available, a.pending, a.expired) for a in accounts),
        "entries": Counter((position[e.account_id], e.kind, e.points) for e in entries),
        "expire transactions": Counter(Counter(expire_txs).values()),  # entries per expire transaction
        "breakage entries": Entry.objects.filter(transaction_id__in=expire_txs, account__kind=AccountKind.BREAKAGE)
        .values_list("points", flat=True)
        .count(),
        "lots": Counter(
            (position[lot.account_id], lot.points, lot.remaining)
            for lot in Lot.objects.filter(account_id__in=account_ids)
        ),
        "events": Counter(
            (member_position[e.member_id], e.payload["points"])
            for e in OutboxEvent.objects.filter(event_type="points.expired", member_id__in=member_position)
        ),
    }


def test_worker_killed_mid_expiry_leaves_the_fault_free_end_state(live_celery, database_url, figure):
    """Rule: the expiry job (``ledger.expire_due_lots``) is idempotent under redelivery. Its worker
    process SIGKILLed at any moment, the task is redelivered at once (acks_late +
    reject_on_worker_lost) and the run ends with every due lot expired exactly once: one expire
    entry per lot, one breakage entry and one ``points.expired`` event per account."""
    from loyalty.ledger.tasks import expire_due_lots

    with harness.worker(broker_url=settings.REDIS_URL, database_url=database_url) as worker:
        reference_ids = expiry_prepare(0)
        expire_due_lots.delay()
        started = worker.wait_busy()
        worker.wait_quiet(settle=0)
        reference_seconds = time.monotonic() - started
        expected = expiry_snapshot(reference_ids)
        assert expected["entries"][(0, "expire", -50)] == 1 and len(expected["events"]) == EXPIRY_ACCOUNTS

        recoveries: list[float] = []

        def act(account_ids, delay, rng):
            expire_due_lots.delay()
            worker.wait_busy()
            time.sleep(delay)
            hit = worker.kill_pool_process(rng)
            recoveries.append(worker.wait_quiet())
            return hit

        hits = faulty_runs(
            label="expiry",
            reference_seconds=reference_seconds,
            prepare=expiry_prepare,
            act=act,
            snapshot=expiry_snapshot,
            expected=expected,
        )
    t = time.monotonic()
    with connection.cursor() as cursor:
        assert harness.ledger_invariant_breaches(cursor) == []
    print("INV", time.monotonic() - t)
    assert sum(hits) >= RUNS // 2, f"only {sum(hits)} of {RUNS} kills hit the task while it ran"
    figure(
        9,
        f"worker SIGKILLed mid-expiry ({EXPIRY_ACCOUNTS:,} accounts per run)",
        f"{RUNS} runs, {sum(hits)} kills mid-task; end state = fault-free in {RUNS}/{RUNS}; "
        f"redelivered and done within {max(recoveries):.1f} s (reference {reference_seconds:.2f} s)",
    )


# --- c) worker SIGKILLed mid-webhook-delivery ------------------------------------------------------

WEBHOOK_EVENTS = 16


def test_worker_killed_mid_webhook_delivery_leaves_the_fault_free_end_state(
    live_celery, database_url, settings, figure
):
    """Rule: webhook fan-out and delivery (``partners.webhooks_dispatch_event``,
    ``partners.webhooks_deliver``) are idempotent under redelivery. A worker process SIGKILLed at
    any moment of a burst of events, every event still ends published with one delivery per
    endpoint, delivered, one attempt recorded, and the receiver got every webhook-id (a repeat
    dropped by its webhook-id counts once) -- without waiting for the sweep."""
    from loyalty.partners.models import WebhookAttempt, WebhookDelivery
    from loyalty.partners.services import outbox_record, partner_key_create, webhook_endpoint_create

    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    partner, _created, _raw = partner_key_create(partner_name="Faults", scopes=["read", "write"])
    with harness.Receiver(RECEIVER_PORT) as receiver:
        webhook_endpoint_create(partner=partner, url=receiver.url("/hooks"), event_types=["points.earned"])

        def prepare(run: int) -> int:
            from django.db import transaction

            with transaction.atomic():  # each event's dispatch task is sent after commit
                for n in range(WEBHOOK_EVENTS):
                    outbox_record(
                        event_type="points.earned", member=None, payload={"partner_id": partner.pk, "run": run, "n": n}
                    )
            return run

        def snapshot(run: int) -> dict:
            events = list(OutboxEvent.objects.filter(payload__run=run).order_by("pk"))
            received = receiver.received()
            deliveries = WebhookDelivery.objects.filter(event__in=events)
            return {
                "published": sum(e.published_at is not None for e in events),
                "deliveries": Counter((d.status, d.attempts) for d in deliveries),
                "deliveries per event": Counter(Counter(d.event_id for d in deliveries).values()),
                "attempts": WebhookAttempt.objects.filter(delivery__in=deliveries).count(),
                "webhook-ids received": sum(1 for e in events if received[f"/hooks msg_{e.pk}"]),
            }

        with harness.worker(broker_url=settings.REDIS_URL, database_url=database_url) as worker:
            prepare(0)
            started = worker.wait_busy()
            worker.wait_quiet(settle=0)
            reference_seconds = time.monotonic() - started
            expected = snapshot(0)
            assert expected["webhook-ids received"] == expected["published"] == WEBHOOK_EVENTS

            def act(run, delay, rng):
                worker.wait_busy()
                time.sleep(delay)
                hit = worker.kill_pool_process(rng)
                worker.wait_quiet()
                return hit

            hits = faulty_runs(
                label="webhooks",
                reference_seconds=reference_seconds,
                prepare=prepare,
                act=act,
                snapshot=snapshot,
                expected=expected,
            )
        repeats = sum(receiver.received().values()) - len(receiver.received())
    assert sum(hits) >= RUNS // 2, f"only {sum(hits)} of {RUNS} kills hit a task while it ran"
    figure(
        9,
        f"worker SIGKILLed mid-webhook-delivery ({WEBHOOK_EVENTS} events per run)",
        f"{RUNS} runs, {sum(hits)} kills mid-task; end state = fault-free in {RUNS}/{RUNS}; "
        f"{(RUNS + 1) * WEBHOOK_EVENTS} webhook-ids received, {repeats} repeats dropped by webhook-id",
    )
