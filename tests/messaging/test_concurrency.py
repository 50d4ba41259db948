"""Concurrent sends on PostgreSQL with real threads: weekly caps hold, a batch taken by several
workers is sent once, a key queued from several callers is one message, an event consumed by
several sweeps is messaged once."""

import pytest

from loyalty.core import clock
from loyalty.messaging import services
from loyalty.messaging.models import Message, MessageStatus, Purpose, Reason, Trigger
from loyalty.partners.services import outbox_record
from tests.concurrency import run_together
from tests.messaging.conftest import NOON, make_content, make_member, set_policy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
RUNS = range(5)


@pytest.fixture(autouse=True)
def _noon():
    clock.set_now(NOON)


@pytest.mark.parametrize("run", RUNS)
def test_weekly_cap_holds_under_concurrent_sends_to_one_member(run):
    set_policy(sms_weekly_cap=3)
    member = make_member(marketing=("sms",))
    content = make_content()

    def send(i):
        ids = services.messages_queue(
            content=content, member_ids=[member.pk], channels=["sms"], source="staff", key=f"c{i}", dispatch=False
        )
        return services.messages_send(message_ids=ids)

    results = run_together(10, send)

    assert all(isinstance(r, services.BatchResult) for r in results), results
    statuses = sorted(Message.objects.filter(member=member).values_list("status", "reason"))
    assert statuses == [("sent", "")] * 3 + [("suppressed", Reason.FREQUENCY_CAP)] * 7


@pytest.mark.parametrize("run", RUNS)
def test_a_batch_taken_by_several_workers_is_sent_once(run):
    members = [make_member(marketing=("sms",)) for _ in range(5)]
    ids = services.messages_queue(
        content=make_content(),
        member_ids=[m.pk for m in members],
        channels=["sms"],
        source="staff",
        key="b",
        dispatch=False,
    )

    results = run_together(6, lambda i: services.messages_send(message_ids=ids))

    assert all(isinstance(r, services.BatchResult) for r in results), results
    assert sum(r.sent for r in results) == 5
    assert sum(r.skipped for r in results) == 5 * 5
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.SENT}


@pytest.mark.parametrize("run", RUNS)
def test_one_key_queued_from_several_callers_is_one_message(run):
    member = make_member(marketing=("sms",))
    content = make_content(purpose=Purpose.SERVICE)

    results = run_together(
        8,
        lambda i: services.messages_queue(
            content=content, member_ids=[member.pk], channels=["sms"], source="staff", key="same", dispatch=False
        ),
    )

    assert all(isinstance(r, list) for r in results), results
    assert Message.objects.count() == 1


@pytest.mark.parametrize("run", RUNS)
def test_an_event_consumed_by_concurrent_sweeps_is_messaged_once(run):
    member = make_member()
    make_content(purpose=Purpose.SERVICE, trigger=Trigger.COUPON_ISSUED, channels=["sms", "inbox"], subject="c")
    outbox_record(event_type="coupon.issued", member=member, payload={"code": "X"})

    results = run_together(4, lambda i: services.outbox_consume(dispatch=False))

    assert all(isinstance(r, int) for r in results), results
    assert sorted(Message.objects.values_list("channel", flat=True)) == ["inbox", "sms"]
