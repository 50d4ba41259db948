"""Promises 4 and 5: an Idempotency-Key gives one effect and byte-identical answers over real HTTP
(gunicorn, tests/verify/races_http.py), also when the worker holding it is killed; purchases,
returns, redemptions and messages are deduplicated by their natural key whichever way they come
in: the API, the importers (loyalty/imports) and Celery tasks delivered twice to a real worker."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum

from loyalty.activity.services import enrollment_record
from loyalty.core import clock
from loyalty.core.idempotency import LEASE
from loyalty.core.models import IdempotencyRecord
from loyalty.imports.complete_journey import Dataset, complete_journey_import, dataset_load
from loyalty.imports.opening_balances import opening_balances_import
from loyalty.ledger import services as ledger
from loyalty.ledger.models import (
    Account,
    Entry,
    LedgerTransaction,
    Program,
    Purchase,
    Redemption,
    Return,
    TransactionKind,
)
from loyalty.ledger.selectors import program_default
from loyalty.messaging.models import Content, Message, MessageStatus, Purpose, Trigger
from loyalty.partners.models import OutboxEvent
from loyalty.partners.services import partner_key_create
from members.models import EnrollmentSource, Member
from tests.api.conftest import just_now, purchase_body
from tests.importing.conftest import DATA
from tests.ledger.conftest import assert_ledger_invariants
from tests.verify.races_http import (
    call,
    celery_drained,
    celery_worker,
    database_url_of_tests,
    described,
    gunicorn_server,
    server_errors,
    tally,
    together,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), gunicorn_server(18111) as running:
        yield running


def shop(name: str):
    partner, _, key = partner_key_create(partner_name=name, scopes=["read", "write"])
    member = enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email=f"{name.lower()}@example.com")
    return partner, key, member


def earns_of(member) -> int:
    return Entry.objects.filter(account__member=member, kind="earn").count()


def test_one_idempotency_key_replayed_50_times_16_at_once_has_one_effect_and_one_answer(server, figure):
    """Rule (loyalty.core.idempotency): the first request runs, concurrent copies wait for its answer,
    later ones replay it byte for byte (Idempotent-Replayed: true); the key with another body is 422."""
    partner, key, member = shop("Replays")
    body = purchase_body(member.member_number, external_id="idem-1", occurred_at=just_now())
    url = f"{server.base}/api/v1/purchases/"

    def send(i):
        return call("POST", url, key=key, body=body, headers={"Idempotency-Key": "one-key"})

    answers = []
    for wave in (16, 16, 16, 2):  # 50 requests, 16 at once
        answers += together(wave, send)
    counts, fivexx = tally(answers), server_errors(answers)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 50}, counts
    assert len({a.content for a in answers}) == 1
    first = [a for a in answers if "Idempotent-Replayed" not in a.headers]
    assert len(first) == 1, len(first)
    assert Purchase.objects.filter(partner=partner).count() == 1 and earns_of(member) == 1
    assert OutboxEvent.objects.filter(event_type="points.earned", member_id=member.pk).count() == 1

    changed = call("POST", url, key=key, body={**body, "store": "S2"}, headers={"Idempotency-Key": "one-key"})
    assert (changed.status, changed.code) == (422, "idempotency_key_reused"), changed.content
    assert Purchase.objects.filter(partner=partner).count() == 1
    figure(
        4,
        "one Idempotency-Key replayed 50 times, 16 at once (HTTP)",
        f"{described(counts, fivexx)}; {len({a.content for a in answers})} distinct body, "
        f"{len(first)} run + {50 - len(first)} replayed; 1 purchase, {earns_of(member)} earn entry; "
        f"changed body → {changed.status} {changed.code}",
    )


def _waiting_backend(dbname: str, deadline: float) -> int:
    """The PostgreSQL backend of the request that waits on the account lock."""
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [dbname])
            rows = cursor.fetchall()
        if rows:
            assert len(rows) == 1, rows
            return rows[0][0]
        time.sleep(0.05)
    raise AssertionError("the request never waited on the account lock")


def test_a_key_whose_worker_is_killed_mid_request_runs_once_on_its_retry(server, figure):
    """Rule (loyalty.core.idempotency): a request that dies leaves its claim for at most LEASE; its
    work, not committed, left nothing; after the lease its retry runs once and the copies replay it.
    The worker is SIGKILLed while it holds the key: its purchase waits on the member's account lock,
    which this test holds from another connection."""
    partner, key, member = shop("Killed")
    body = purchase_body(member.member_number, external_id="kill-1", occurred_at=just_now())
    url = f"{server.base}/api/v1/purchases/"
    account = Account.objects.get(member=member)
    dbname = connection.settings_dict["NAME"]
    holder = psycopg.connect(database_url_of_tests())
    holder.execute("SELECT id FROM ledger_account WHERE id = %s FOR UPDATE", [account.pk])
    got = []
    request = threading.Thread(
        target=lambda: got.append(call("POST", url, key=key, body=body, headers={"Idempotency-Key": "k-kill"}))
    )
    request.start()
    try:
        backend = _waiting_backend(dbname, time.monotonic() + 30)
        claim = IdempotencyRecord.objects.get(scope=f"partner:{partner.pk}", key="k-kill")
        assert claim.state == IdempotencyRecord.RUNNING
        worker = server.worker_of_backend(backend)
        server.kill(worker)
        request.join(30)
        assert got and got[0].status == 0, got  # the client got no answer: its connection was cut
        # within the lease the key is still held: a retry waits (idempotency.WAIT), then is told so
        early = call("POST", url, key=key, body=body, headers={"Idempotency-Key": "k-kill"})
        assert (early.status, early.code) == (409, "idempotency_in_progress"), early.content
    finally:
        holder.rollback()  # the dead worker's backend gets the lock, cannot answer, and rolls back
        holder.close()
    deadline = time.monotonic() + 30
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [backend])
            if cursor.fetchone()[0] == 0:
                break
        assert time.monotonic() < deadline, "the killed worker's backend lives on"
        time.sleep(0.1)
    assert not Purchase.objects.filter(partner=partner).exists() and earns_of(member) == 0
    # the lease runs out (moved back instead of waited for: the server compares created_at with now - LEASE)
    IdempotencyRecord.objects.filter(pk=claim.pk).update(created_at=claim.created_at - LEASE - dt.timedelta(seconds=1))

    retries = together(3, lambda i: call("POST", url, key=key, body=body, headers={"Idempotency-Key": "k-kill"}))
    counts, fivexx = tally(retries), server_errors(retries)
    assert fivexx == 0, counts
    assert counts == {(201, ""): 3}, [a.content for a in retries]
    assert len({a.content for a in retries}) == 1
    assert sum("Idempotent-Replayed" not in a.headers for a in retries) == 1
    assert Purchase.objects.filter(partner=partner).count() == 1 and earns_of(member) == 1
    figure(
        4,
        "Idempotency-Key whose gunicorn worker was SIGKILLed holding it",
        f"killed request: no answer, 0 purchases; retry in the lease: {early.status} {early.code}; "
        f"3 retries after it: {described(counts, fivexx)}, 1 run + 2 replayed, "
        f"{Purchase.objects.filter(partner=partner).count()} purchase, {earns_of(member)} earn entry",
    )


def _basket_body(member: Member, basket) -> dict:
    """The basket as its partner would send it to the API (what the importer records)."""

    def money(value) -> Decimal:
        return Decimal(str(value or 0)).quantize(Decimal("0.01"))

    lines = [
        {
            "sku": str(line["sku"]),
            "category": str(line.get("category", "")),
            "quantity": str(line.get("quantity", 1)),
            "amount": str(money(line["amount"])),
            "discount": str(money(line.get("discount"))),
        }
        for line in basket.lines
    ]
    total = sum((Decimal(line["amount"]) - Decimal(line["discount"]) for line in lines), Decimal("0"))
    return {
        "member_number": member.member_number,
        "external_id": basket.external_id,
        "occurred_at": basket.occurred_at.isoformat().replace("+00:00", "Z"),
        "currency": "USD",
        "total": str(total),
        "store": basket.store,
        "lines": lines,
    }


def test_purchases_returns_and_redemptions_are_one_by_natural_key_across_api_and_import(server, figure):
    """Rule: a purchase is (partner, external_id) whoever sends it (ledger_purchase_insert; the
    importer skips baskets already recorded); a repeated return or redemption external id answers 200
    with the first answer; an opening balance row is credited once however often the file is run."""
    program = program_default()
    # the program ran before the data's baskets (the API refuses purchases from before its start)
    Program.objects.filter(pk=program.pk).update(created_at=clock.now() - dt.timedelta(days=400))
    program = program_default()
    dataset = dataset_load(data_dir=DATA)  # shifted: the last basket was yesterday
    household = max(dataset.households, key=lambda h: h.baskets[-1].occurred_at)
    head = Dataset(
        households=[type(household)(household.household_id, household.demographics, household.baskets[:-1])],
        campaigns=[],
        targets=[],
        redemptions=[],
        shift_days=dataset.shift_days,
    )
    complete_journey_import(dataset=head, program=program)  # all but the household's last basket
    member = Member.objects.get(external_id=f"cj-{household.household_id}")
    stores = Purchase.objects.filter(member=member).first().partner
    _stores, _, key = partner_key_create(partner_name=stores.name, scopes=["read", "write"])
    url = f"{server.base}/api/v1/purchases/"

    last = household.baskets[-1]
    api_first = [call("POST", url, key=key, body=_basket_body(member, last)) for _ in range(2)]
    imported_again = call("POST", url, key=key, body=_basket_body(member, household.baskets[-2]))
    report = complete_journey_import(dataset=dataset, program=program)  # the whole slice: the API's basket is known
    again = complete_journey_import(dataset=dataset, program=program)

    answers = [*api_first, imported_again]
    assert [a.status for a in answers] == [201, 200, 200], [a.content for a in answers]
    assert api_first[0].content == api_first[1].content
    baskets = sum(len(h.baskets) for h in dataset.households)
    purchases = Purchase.objects.filter(partner=stores)
    assert purchases.count() == baskets
    assert purchases.filter(external_id=last.external_id).count() == 1
    assert Entry.objects.filter(
        account__member__isnull=False, kind="earn", transaction__purchase__in=purchases
    ).count() == (purchases.filter(points_earned__gt=0).count())
    assert report.skipped_purchases == len(household.baskets) and again.new_purchases == 0

    # returns and redemptions: the same external id again is the first answer, one effect
    ret = {"purchase_external_id": last.external_id, "external_id": "ret-1", "amount": "1.00"}
    returns = [call("POST", f"{server.base}/api/v1/returns/", key=key, body=ret) for _ in range(3)]
    account = Account.objects.get(member=member, program=program)
    ledger.points_credit(account=account, points=50, reason="verify")
    burn = {"member_number": member.member_number, "points": 20, "external_id": "burn-1"}
    burns = [call("POST", f"{server.base}/api/v1/redemptions/", key=key, body=burn) for _ in range(3)]
    for group in (returns, burns):
        assert [a.status for a in group] == [201, 200, 200], [a.content for a in group]
        assert len({a.content for a in group}) == 1
    assert Return.objects.filter(external_id="ret-1").count() == 1
    assert LedgerTransaction.objects.filter(kind=TransactionKind.REVERSE, entries__account=account).count() <= 1
    assert Redemption.objects.filter(external_id="burn-1").count() == 1
    assert LedgerTransaction.objects.filter(kind=TransactionKind.REDEEM, entries__account=account).count() == 1

    rows = [{"member_number": member.member_number, "email": "", "points": "120", "expires_on": "", "reason": "old"}]
    first_run = opening_balances_import(rows=rows, program=program)
    second_run = opening_balances_import(rows=rows, program=program)
    opening = LedgerTransaction.objects.filter(
        kind=TransactionKind.ADJUST, entries__account=account, entries__points=120
    )
    assert opening.count() == 1
    assert_ledger_invariants(program)
    figure(
        5,
        "purchases, returns, redemptions by natural key across API and import",
        f"basket via API ×2: {api_first[0].status}, {api_first[1].status}; imported basket via API: "
        f"{imported_again.status}; import after the API: {report.new_purchases} new, {report.skipped_purchases} "
        f"skipped; import again: {again.new_purchases} new; {purchases.count()} purchases for {baskets} baskets; "
        f"return ×3: {', '.join(str(a.status) for a in returns)} → {Return.objects.filter(external_id='ret-1').count()} "
        f"return; redemption ×3: {', '.join(str(a.status) for a in burns)} → 1 debit; opening balance file ×2: "
        f"{first_run.credited}+{second_run.credited} credited → {opening.count()} credit",
    )


def test_message_tasks_delivered_twice_to_a_real_worker_send_each_message_once(tmp_path, figure):
    """Rule (loyalty.messaging): a message is one row per send key (event, content, channel); a batch is
    claimed before the provider is called, so the outbox sweep and the send task delivered twice (acks_late
    redelivery, or the beat and an admin action at once) send each message once."""
    clock.set_now(None)
    now = clock.now()
    Content.objects.create(
        name="Receipt",
        purpose=Purpose.SERVICE,
        trigger=Trigger.POINTS_EARNED,
        channels=["email", "inbox"],
        subject="You earned points",
        body="Thank you {{ first_name }}.",
        created_at=now,
        updated_at=now,
    )
    partner, _key, _ = partner_key_create(partner_name="Mailer", scopes=["read", "write"])
    people = [
        enrollment_record(source=EnrollmentSource.PARTNER, partner=partner, email=f"mail{i}@example.com")
        for i in range(8)
    ]
    mailbox = tmp_path / "mail"
    mailbox.mkdir()
    from loyalty.activity.services import purchase_record
    from loyalty.messaging import tasks

    with celery_worker(concurrency=2, EMAIL_URL=f"filemail:///{mailbox}"):
        for i, member in enumerate(people):
            purchase_record(
                partner=partner,
                member=member,
                external_id=f"mail-{i}",
                occurred_at=now - dt.timedelta(seconds=1),
                lines=[{"sku": "A", "category": "food", "amount": Decimal("10.00")}],
            )
        for _ in range(2):  # the same sweep twice at once
            tasks.outbox_sweep.delay()
        celery_drained()
        ids = list(Message.objects.filter(member__in=people).values_list("id", flat=True))
        for _ in range(2):  # the same batch delivered twice again
            tasks.messages_send_batch.delay(ids)
        celery_drained()

    messages = Message.objects.filter(member__in=people)
    statuses = sorted(set(messages.values_list("channel", "status")))
    assert messages.count() == 2 * len(people), messages.count()
    assert statuses == [("email", MessageStatus.SENT), ("inbox", MessageStatus.SENT)], statuses
    mail = "".join(path.read_text() for path in mailbox.iterdir())
    received = sorted(re.findall(r"^To: (\S+)$", mail, flags=re.M))
    assert received == sorted(m.email for m in people), received
    assert messages.aggregate(n=Sum("open_count"))["n"] == 0
    figure(
        5,
        "outbox sweep and send task each delivered twice to a real Celery worker",
        f"{len(people)} purchases → {messages.count()} messages ({len(people)} email + {len(people)} inbox), "
        f"all sent; {len(received)} emails in the mailbox, one per member",
    )
