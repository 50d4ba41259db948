"""The send path's cost does not grow with the batch or with the table: a fixed number of statements
per batch, and on PostgreSQL the batch's rows found by primary key whatever the planner's statistics."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loyalty.messaging import services
from loyalty.messaging.models import Message, MessageStatus, Reason
from loyalty.messaging.services import sending
from tests.messaging.conftest import make_content, make_member

pytestmark = pytest.mark.django_db


def queue_and_count_statements(members, content, key):
    ids = services.messages_queue(
        content=content, member_ids=[m.pk for m in members], channels=["sms"], source="staff", key=key, dispatch=False
    )
    with CaptureQueriesContext(connection) as captured:
        result = services.messages_send(message_ids=ids)
    return result, len(captured.captured_queries)


def test_statements_per_batch_do_not_grow_with_its_size(noon):
    content = make_content()
    few = [make_member(marketing=("sms",)) for _ in range(2)]
    many = [make_member(marketing=("sms",)) for _ in range(12)]
    queue_and_count_statements(few, content, "warm")  # the policy and program caches

    small, small_statements = queue_and_count_statements(few, content, "small")
    large, large_statements = queue_and_count_statements(many, content, "large")

    assert (small.sent, large.sent) == (2, 12)
    assert large_statements == small_statements


def test_claim_writes_subject_body_links_and_time_and_a_suppressed_row_keeps_no_claim(noon):
    content = make_content(link_url="https://shop.example/x")
    member, without_consent = make_member(first_name="Ada", marketing=("sms",)), make_member()
    ids = services.messages_queue(
        content=content,
        member_ids=[member.pk, without_consent.pk],
        channels=["sms"],
        source="staff",
        key="k",
        dispatch=False,
    )

    services.messages_send(message_ids=ids)

    sent = Message.objects.get(member=member)
    assert (sent.status, sent.subject, sent.claimed_at, sent.sent_at) == (MessageStatus.SENT, "Hello Ada", noon, noon)
    assert sent.body.startswith("Ada, you have") and sent.links == ["https://shop.example/x"]
    suppressed = Message.objects.get(member=without_consent)
    assert (suppressed.status, suppressed.reason, suppressed.claimed_at) == (
        MessageStatus.SUPPRESSED,
        Reason.NO_CONSENT,
        None,
    )
    assert (suppressed.subject, suppressed.links) == ("", [])


def test_a_provider_failure_is_recorded_per_message_with_its_error(noon, monkeypatch):
    from loyalty.messaging import providers

    class Half:
        def send_many(self, messages):
            return [providers.Sent("p-1"), providers.Failed("gateway said no")][: len(messages)]

    monkeypatch.setattr(providers, "provider_for", lambda channel: Half())
    members = [make_member(marketing=("sms",)) for _ in range(2)]
    ids = services.messages_queue(
        content=make_content(),
        member_ids=[m.pk for m in members],
        channels=["sms"],
        source="staff",
        key="f",
        dispatch=False,
    )

    result = services.messages_send(message_ids=ids)

    assert (result.sent, result.failed) == (1, 1)
    rows = list(Message.objects.filter(pk__in=ids).order_by("member_id").values_list("status", "provider_id", "error"))
    assert rows == [("sent", "p-1", ""), ("failed", "", "gateway said no")]


def plan(sql, params):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # an empty test table: make the planner pick an index
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
def test_batch_take_and_weekly_counts_cannot_scan_the_status_index(noon):
    """Right after a big queue the planner's statistics are stale; a plan through the status index
    would read every queued (or sent) row of the table for each batch. The statements find the
    batch's rows by primary key and the counts by (member, channel, claimed_at)."""
    take = plan(sending._TAKE_SQL.format(message="messaging_message", member="members_member"), [[1, 2, 3], ["queued"]])
    counts = plan(
        sending._COUNTS_SQL.format(message="messaging_message"),
        [[1, 2], ["sms"], noon, "marketing", ["sending", "sent", "bounced"]],
    )

    assert "message_status_created" not in take and "messaging_message_pkey" in take
    assert "message_status_created" not in counts and "message_member_channel_claimed" in counts
