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

import contextlib
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

RUNS = 20  # faulty runs per kind
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
        context = prepare(run)
        hits.append(act(context, delay, rng))
        got = snapshot(context)
        assert got == expected, f"{label} run {run}: fault at {delay:.3f} s (seed {SEED}) left another end state"
    return hits


# --- a) worker SIGKILLed mid-expiry ----------------------------------------------------------------

EXPIRY_ACCOUNTS = 500


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
            hit, recovery = worker.kill_mid_task(delay, rng)
            recoveries.append(recovery)
            return hit

        hits = faulty_runs(
            label="expiry",
            reference_seconds=reference_seconds,
            prepare=expiry_prepare,
            act=act,
            snapshot=expiry_snapshot,
            expected=expected,
        )
    with connection.cursor() as cursor:
        assert harness.ledger_invariant_breaches(cursor) == []
    assert sum(hits) >= RUNS // 4, f"only {sum(hits)} of {RUNS} kills hit the task while it ran"
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
                return worker.kill_mid_task(delay, rng)[0]

            hits = faulty_runs(
                label="webhooks",
                reference_seconds=reference_seconds,
                prepare=prepare,
                act=act,
                snapshot=snapshot,
                expected=expected,
            )
        repeats = sum(receiver.received().values()) - len(receiver.received())
    assert sum(hits) >= RUNS // 4, f"only {sum(hits)} of {RUNS} kills hit a task while it ran"
    figure(
        9,
        f"worker SIGKILLed mid-webhook-delivery ({WEBHOOK_EVENTS} events per run)",
        f"{RUNS} runs, {sum(hits)} kills mid-task; end state = fault-free in {RUNS}/{RUNS}; "
        f"{(RUNS + 1) * WEBHOOK_EVENTS} webhook-ids received, {repeats} repeats dropped by webhook-id",
    )


# --- b) worker SIGKILLed mid-campaign-send ---------------------------------------------------------

CAMPAIGN_MEMBERS = 60
SMS_BATCH = 10


def test_worker_killed_mid_campaign_send_leaves_the_fault_free_end_state(live_celery, database_url, settings, figure):
    """Rule: a campaign's hand-off (``campaigns.dispatch``) and its send batches
    (``messaging.send_batch``) are idempotent under redelivery. A worker process SIGKILLed at any
    moment of a campaign's send, every message still ends ``sent`` once, with the gateway's id, and
    the SMS gateway got every send key (a repeat dropped by its Idempotency-Key counts once)."""
    from loyalty.campaigns.models import CampaignRun
    from loyalty.campaigns.services import campaigns as campaign_services
    from loyalty.messaging.models import Message
    from tests.campaigns.conftest import make_campaign, make_content, make_program_member, make_segment
    from tests.messaging.conftest import set_policy

    set_policy(quiet_start=dt.time(0, 0), quiet_end=dt.time(0, 0), sms_weekly_cap=None)
    segment = make_segment("Faults", [make_program_member() for _ in range(CAMPAIGN_MEMBERS)])
    content = make_content()
    with harness.Receiver(RECEIVER_PORT) as receiver:

        def prepare(run: int) -> int:
            campaign = make_campaign(
                name=f"Faults {run}", include=[segment], channels=["sms"], holdout_percent=0, content=content
            )
            campaign_services.campaign_launch(campaign=campaign, actor="faults")  # dispatched after commit
            return campaign.pk

        def snapshot(campaign_id: int) -> dict:
            messages = list(Message.objects.filter(campaign_id=campaign_id))
            received = receiver.received()
            return {
                "messages": Counter((m.status, m.reason, m.provider_id == f"gw-{m.send_key}") for m in messages),
                "messages per member": Counter(Counter(m.member_id for m in messages).values()),
                "runs": list(CampaignRun.objects.filter(campaign_id=campaign_id).values_list("number", "queued")),
                "send keys received": sum(1 for m in messages if received[f"/sms {m.send_key}"]),
            }

        env = {
            "MESSAGING_SMS_URL": receiver.url("/sms"),
            "MESSAGING_SMS_TOKEN": "faults",
            "MESSAGING_BATCH_SIZE": str(SMS_BATCH),
        }
        with harness.worker(broker_url=settings.REDIS_URL, database_url=database_url, env=env) as worker:
            reference = prepare(0)
            started = worker.wait_busy()
            worker.wait_quiet(settle=0)
            reference_seconds = time.monotonic() - started
            expected = snapshot(reference)
            assert expected["messages"] == {("sent", "", True): CAMPAIGN_MEMBERS}, expected
            assert expected["send keys received"] == CAMPAIGN_MEMBERS

            def act(campaign_id, delay, rng):
                return worker.kill_mid_task(delay, rng)[0]

            hits = faulty_runs(
                label="campaign",
                reference_seconds=reference_seconds,
                prepare=prepare,
                act=act,
                snapshot=snapshot,
                expected=expected,
            )
        repeats = sum(receiver.received().values()) - len(receiver.received())
    assert sum(hits) >= RUNS // 4, f"only {sum(hits)} of {RUNS} kills hit a task while it ran"
    figure(
        9,
        f"worker SIGKILLed mid-campaign-send ({CAMPAIGN_MEMBERS} SMS per campaign, batches of {SMS_BATCH})",
        f"{RUNS} runs, {sum(hits)} kills mid-task; end state = fault-free in {RUNS}/{RUNS}; "
        f"{(RUNS + 1) * CAMPAIGN_MEMBERS} messages sent once, {repeats} gateway repeats dropped by Idempotency-Key",
    )


# --- d) PostgreSQL backends terminated mid-request -------------------------------------------------

BURST = 24  # purchases per run, from BURST_CLIENTS threads
BURST_CLIENTS = 4
BURST_MEMBERS = 6


def purchase_body(member_number: str, external_id: str) -> dict:
    return {
        "member_number": member_number,
        "external_id": external_id,
        "occurred_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "currency": "USD",
        "total": "100.00",
        "tax": "0",
        "discount": "0",
        "store": "S1",
        "lines": [{"sku": "A", "category": "food", "quantity": "2", "unit_price": "50.00", "amount": "100.00"}],
    }


def burst(partner: harness.Partner, members: list[str], run: int) -> list[tuple[int, int]]:
    """``BURST`` purchases at once; per purchase (final status, tries)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> tuple[int, int]:
        status, _body, tries = partner.post(
            "/api/v1/purchases/", purchase_body(members[i % len(members)], f"r{run}-{i}"), key=f"faults-r{run}-{i}"
        )
        return status, tries

    with ThreadPoolExecutor(BURST_CLIENTS) as pool:
        return list(pool.map(one, range(BURST)))


def purchases_snapshot(run: int) -> dict:
    """The run's purchases, their ledger transactions and entries, and their outbox events."""
    from loyalty.ledger.models import LedgerTransaction, Purchase

    purchases = {
        p.pk: int(p.external_id.split("-")[1]) for p in Purchase.objects.filter(external_id__startswith=f"r{run}-")
    }
    transactions = LedgerTransaction.objects.filter(purchase_id__in=purchases)
    return {
        "purchases": sorted(purchases.values()),
        "transactions": Counter((purchases[t.purchase_id], t.kind) for t in transactions),
        "entries": Counter(
            (purchases[e.transaction.purchase_id], e.kind, e.points)
            for e in Entry.objects.filter(transaction__in=transactions).select_related("transaction")
        ),
        "events": Counter(
            (e.event_type, int(e.payload["purchase_external_id"].split("-")[1]))
            for e in OutboxEvent.objects.filter(payload__purchase_external_id__startswith=f"r{run}-")
        ),
    }


def test_database_backends_terminated_mid_request_leave_the_fault_free_end_state(database_url, monkeypatch, figure):
    """Rule: a purchase whose PostgreSQL backend is terminated mid-request (``pg_terminate_backend``
    of the API server's connections during a burst) is retried by the partner with the same
    Idempotency-Key and takes effect once: one purchase, one ledger transaction with its entries,
    one ``points.earned`` event each, every purchase answered 201 in the end."""
    from bench._setup import bench_server
    from loyalty.partners.services import partner_key_create

    monkeypatch.setenv("DATABASE_URL", database_url)
    _partner, _created, raw = partner_key_create(partner_name="Faults", scopes=["read", "write"])
    database = connection.settings_dict["NAME"]
    with bench_server(port=SERVER_PORT, workers=2, threads=4, redis_url=settings.REDIS_URL) as base:
        partner = harness.Partner(base, raw)
        members = []
        for i in range(BURST_MEMBERS):
            status, body, _ = partner.post("/api/v1/members/", {"email": f"fault{i}@example.com"}, key=f"m{i}")
            assert status == 201, body
            members.append(body["member_number"])
        burst(partner, members, -1)  # warm: every server thread has its connection

        started = time.monotonic()
        answers = burst(partner, members, 0)
        reference_seconds = time.monotonic() - started
        assert answers == [(201, 1)] * BURST
        expected = purchases_snapshot(0)
        assert len(expected["purchases"]) == BURST

        terminated, tries = [], Counter()
        connection.ensure_connection()
        keep = [connection.connection.info.backend_pid]

        def act(run, delay, rng):
            import threading

            def kill():
                time.sleep(delay)
                import psycopg

                with psycopg.connect(database_url, autocommit=True) as killer_connection:
                    terminated.append(harness.terminate_backends(killer_connection.cursor(), database, keep))

            killer = threading.Thread(target=kill)
            killer.start()
            answers = burst(partner, members, run)
            killer.join()
            assert {status for status, _ in answers} == {201}, answers
            tries.update(t for _, t in answers)
            return terminated[-1] > 0

        hits = faulty_runs(
            label="backends",
            reference_seconds=reference_seconds,
            prepare=lambda run: run,
            act=act,
            snapshot=purchases_snapshot,
            expected=expected,
        )
    retried = sum(n for t, n in tries.items() if t > 1)
    assert sum(hits) == RUNS and retried > 0
    figure(
        9,
        f"PostgreSQL backends terminated mid-burst ({BURST} purchases per run, {BURST_CLIENTS} clients)",
        f"{RUNS} runs, {sum(terminated)} backends terminated, {retried} purchases retried with their key "
        f"(at most {max(tries)} tries); end state = fault-free in {RUNS}/{RUNS}",
    )


# --- e) Redis restarted mid-burst ------------------------------------------------------------------

REDIS_BURST = 12


def test_redis_restarted_mid_burst_leaves_the_fault_free_end_state(
    live_celery, database_url, monkeypatch, settings, figure
):
    """Rule: Redis (broker and cache, in memory only) restarted during a burst of API purchases loses
    its queued tasks, never an effect: purchases answered 5xx meanwhile are retried with their key
    and take effect once, and the webhook sweep (every minute in production: sent here once after
    the burst) fans out and delivers what the lost tasks did not. End state: one purchase, one
    ledger transaction and one ``points.earned`` event each, one delivery per event, delivered,
    every webhook-id received."""
    from celery import Celery

    from bench._setup import bench_server
    from loyalty.partners.models import WebhookDelivery
    from loyalty.partners.services import partner_key_create, webhook_endpoint_create

    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("WEBHOOKS_ALLOW_HTTP_LOCALHOST", "true")
    partner_row, _created, raw = partner_key_create(partner_name="Faults", scopes=["read", "write"])
    redis_server = harness.RedisServer(REDIS_PORT)
    redis_server.start()
    broker = Celery("loyalty-faults-sweep", broker=redis_server.url())
    workers = contextlib.ExitStack()
    state = {"restarts": 0}

    def start_worker() -> None:
        import redis

        for attempt in range(3):  # the broker may drop the first connections after its restart
            try:
                state["worker"] = workers.enter_context(
                    harness.worker(broker_url=redis_server.url(), database_url=database_url)
                )
                return
            except redis.ConnectionError:
                if attempt == 2:
                    raise
                time.sleep(1)

    try:
        with (
            workers,
            harness.Receiver(RECEIVER_PORT) as receiver,
            bench_server(port=SERVER_PORT, workers=2, threads=4, redis_url=redis_server.url()) as base,
        ):
            start_worker()
            webhook_endpoint_create(partner=partner_row, url=receiver.url("/hooks"), event_types=["points.earned"])
            partner = harness.Partner(base, raw)
            members = []
            for i in range(BURST_MEMBERS):
                status, body, _ = partner.post("/api/v1/members/", {"email": f"fault{i}@example.com"}, key=f"m{i}")
                assert status == 201, body
                members.append(body["member_number"])

            def run_burst(run: int) -> list[tuple[int, int]]:
                from concurrent.futures import ThreadPoolExecutor

                def one(i: int) -> tuple[int, int]:
                    status, _body, tries = partner.post(
                        "/api/v1/purchases/",
                        purchase_body(members[i % len(members)], f"r{run}-{i}"),
                        key=f"e-r{run}-{i}",
                    )
                    return status, tries

                with ThreadPoolExecutor(BURST_CLIENTS) as pool:
                    return list(pool.map(one, range(REDIS_BURST)))

            def sweep() -> None:
                """One webhook sweep, run to the end. A worker that died of the restart (kombu 5.7
                can fail to reconnect: "Unrecoverable error" in ``restore_unacked``) is started
                again, as its supervisor would, and counted."""
                for _ in range(3):
                    broker.send_task("partners.webhooks_sweep")
                    try:
                        state["worker"].wait_quiet(timeout=60, settle=0.3)
                        return
                    except harness.WorkerDied:
                        state["restarts"] += 1
                        start_worker()
                raise AssertionError("the worker kept dying")

            def snapshot(run: int) -> dict:
                state = purchases_snapshot(run)
                events = OutboxEvent.objects.filter(payload__purchase_external_id__startswith=f"r{run}-")
                deliveries = WebhookDelivery.objects.filter(event__in=events)
                received = receiver.received()
                state["deliveries"] = Counter((d.status, d.attempts) for d in deliveries)
                state["webhook-ids received"] = sum(1 for e in events if received[f"/hooks msg_{e.pk}"])
                return state

            started = time.monotonic()
            assert {status for status, _ in run_burst(0)} == {201}
            reference_seconds = time.monotonic() - started
            sweep()
            expected = snapshot(0)
            assert expected["webhook-ids received"] == REDIS_BURST and len(expected["purchases"]) == REDIS_BURST

            downtimes, tries, statuses = [], Counter(), Counter()

            def act(run, delay, rng):
                import threading

                def restart():
                    time.sleep(delay)
                    downtimes.append(redis_server.restart())

                restarter = threading.Thread(target=restart)
                restarter.start()
                answers = run_burst(run)
                restarter.join()
                statuses.update(status for status, _ in answers)
                tries.update(t for _, t in answers)
                sweep()
                return True

            faulty_runs(
                label="redis",
                reference_seconds=reference_seconds,
                prepare=lambda run: run,
                act=act,
                snapshot=snapshot,
                expected=expected,
            )
    finally:
        redis_server.stop()
    assert set(statuses) <= {200, 201}, statuses
    retried = sum(n for t, n in tries.items() if t > 1)
    figure(
        9,
        f"Redis (broker and cache) restarted mid-burst ({REDIS_BURST} purchases per run, webhooks on)",
        f"{RUNS} restarts (down {min(downtimes) * 1000:.0f}-{max(downtimes) * 1000:.0f} ms), {retried} purchases "
        f"retried with their key, {state['restarts']} worker restarts (it died reconnecting); end state = "
        f"fault-free in {RUNS}/{RUNS} after one webhook sweep",
    )
