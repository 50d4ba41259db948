"""Queue messages and send them in batches.

A message is queued as a row whose ``send_key`` is unique (``INSERT ... ON CONFLICT DO NOTHING``:
queuing the same thing twice queues it once). A batch then, in one transaction, takes the queued
rows it was given (rows another worker holds are skipped), locks the recipients' contact
preferences (primary-key order), decides per message whether it may go (``suppression``), renders
it and **claims** it (status ``sending``), and commits; only then are providers called, and the
outcome (``sent`` / ``failed``) written. A task run twice, or a retried task, finds its messages no
longer queued and sends nothing again. A claim whose worker died before the outcome was written is
marked failed (``interrupted``) by the sweep, never sent twice.

Weekly caps hold under concurrent sends: the cap count and the claim happen under the row lock of
the member's contact preferences, so two batches sending to the same member see each other."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Count, QuerySet

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Program
from loyalty.messaging import providers, rendering
from loyalty.messaging.models import (
    Channel,
    ContactPreference,
    Content,
    Message,
    MessageStatus,
    MessagingPolicy,
    Purpose,
    Reason,
)
from loyalty.messaging.suppression import Recipient, suppression_reason
from members import selectors as member_selectors
from members.models import Member, MemberStatus

WEEK = dt.timedelta(days=7)
STALE_CLAIM = dt.timedelta(minutes=15)
CAPPED_STATUSES = (MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.BOUNCED)


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    skipped: int = 0  # not queued any more (sent by an earlier run, or held by another worker)


def _batches(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def messages_dispatch(*, message_ids: Sequence[int]) -> int:
    """Hand queued messages to Celery, ``MESSAGING_BATCH_SIZE`` per task. Returns tasks sent."""
    from loyalty.messaging.tasks import messages_send_batch

    tasks = 0
    for batch in _batches(list(message_ids), settings.MESSAGING_BATCH_SIZE):
        messages_send_batch.delay(batch)
        tasks += 1
    return tasks


def messages_queue(
    *,
    content: Content,
    member_ids: Sequence[int],
    channels: Sequence[str],
    source: str,
    key: str,
    program: Program | None = None,
    campaign_id: int | None = None,
    variant: str = "",
    context: dict[str, Any] | None = None,
    event_id: int | None = None,
    dispatch: bool = True,
) -> list[int]:
    """Queue ``content`` for every member on every channel; the send key of each is
    ``<key>:<member id>:<channel>``, so queuing the same ``key`` again adds nothing. After commit
    the queued messages go to Celery (``dispatch``). Returns the ids of the messages this call
    queued (none for keys queued before).

    Campaigns call this with ``source="campaign"``, their ``campaign_id`` and the arm's ``variant``."""
    unknown = set(channels) - set(Channel.values)
    if unknown:
        raise ValidationFailed(f"Unknown channel(s): {', '.join(sorted(unknown))}", code="invalid_channel")
    if not key:
        raise ValidationFailed("A send key is required", code="send_key_required")
    now = clock.now()
    keys = [(member_id, channel, f"{key}:{member_id}:{channel}") for member_id in member_ids for channel in channels]
    values = {
        "content_id": content.pk,
        "purpose": content.purpose,
        "program_id": program.pk if program is not None else None,
        "source": source,
        "campaign_id": campaign_id,
        "variant": variant,
        "event_id": event_id,
        "context": context or {},
        "created_at": now,
    }
    with transaction.atomic():
        if connection.vendor == "postgresql":
            ids = _insert_returning(keys, values)
        else:
            existing = _existing_keys([k for _, _, k in keys])
            rows = [Message(member_id=m, channel=c, send_key=k, **values) for m, c, k in keys if k not in existing]
            # a concurrent caller may insert the same keys meanwhile: the unique key keeps one row each
            Message.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
            ids = _queued_ids([r.send_key for r in rows])
        if dispatch and ids:
            transaction.on_commit(lambda: messages_dispatch(message_ids=ids))
    return ids


INSERT_CHUNK = 10_000


def _insert_returning(keys: Sequence[tuple[int, str, str]], values: dict[str, Any]) -> list[int]:
    """PostgreSQL: ``INSERT ... SELECT FROM unnest(...) ON CONFLICT (send_key) DO NOTHING RETURNING
    id``: one statement per chunk, answering exactly the rows this call inserted."""
    table = Message._meta.db_table
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(keys), INSERT_CHUNK):
            chunk = keys[start : start + INSERT_CHUNK]
            cursor.execute(
                f"""INSERT INTO {table} (member_id, channel, send_key, content_id, purpose, status, reason,
                        program_id, source, campaign_id, variant, event_id, context, subject, body, links,
                        created_at, provider_id, error, open_count, click_count)
                    SELECT v.member_id, v.channel, v.send_key, %s, %s, 'queued', '', %s, %s, %s, %s, %s,
                           %s::jsonb, '', '', '[]'::jsonb, %s, '', '', 0, 0
                    FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(member_id, channel, send_key)
                    ORDER BY v.send_key
                    ON CONFLICT (send_key) DO NOTHING
                    RETURNING id""",  # noqa: S608 - the model's own table name only
                [
                    values["content_id"],
                    values["purpose"],
                    values["program_id"],
                    values["source"],
                    values["campaign_id"],
                    values["variant"],
                    values["event_id"],
                    json.dumps(values["context"], cls=DjangoJSONEncoder),
                    values["created_at"],
                    [m for m, _, _ in chunk],
                    [c for _, c, _ in chunk],
                    [k for _, _, k in chunk],
                ],
            )
            ids.extend(row[0] for row in cursor.fetchall())
    ids.sort()
    return ids


def _existing_keys(send_keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for keys in _batches(list(send_keys), 5000):
        found.update(Message.objects.filter(send_key__in=keys).values_list("send_key", flat=True))
    return found


def _queued_ids(send_keys: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for keys in _batches(list(send_keys), 5000):
        ids.extend(
            Message.objects.filter(send_key__in=keys, status=MessageStatus.QUEUED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    return ids


# field -> PostgreSQL array type of its values, for the one-statement update of a batch
CLAIM_FIELDS = {
    "status": "text",
    "reason": "text",
    "claimed_at": "timestamptz",
    "subject": "text",
    "body": "text",
    "links": "jsonb",
}
OUTCOME_FIELDS = {"status": "text", "reason": "text", "error": "text", "sent_at": "timestamptz", "provider_id": "text"}


def _rows_update(messages: Sequence[Message], fields: dict[str, str]) -> None:
    """Write ``fields`` of a batch of messages. PostgreSQL: one ``UPDATE ... FROM
    jsonb_to_recordset(...)`` (``bulk_update``'s CASE per row and field costs seconds per thousand
    rows in the ORM's compiler, and one JSON document is cheaper to send than an array per field);
    other databases: ``bulk_update``."""
    if connection.vendor != "postgresql":
        Message.objects.bulk_update(messages, list(fields), batch_size=500)
        return
    columns = {name: Message._meta.get_field(name).column for name in fields}
    rows = [{"id": m.pk, **{columns[n]: getattr(m, n) for n in fields}} for m in messages]
    assignments = ", ".join(f"{c} = v.{c}" for c in columns.values())
    record = ", ".join(["id bigint"] + [f"{columns[n]} {kind}" for n, kind in fields.items()])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Message._meta.db_table} AS m SET {assignments} "  # noqa: S608 - model's own names only
            f"FROM jsonb_to_recordset(%s::jsonb) AS v({record}) WHERE m.id = v.id",
            [json.dumps(rows, cls=DjangoJSONEncoder)],
        )


def policy_of(program_id: int | None, now: dt.datetime) -> MessagingPolicy:
    """The messaging policy of a program (its defaults when none is stored)."""
    if program_id is None:
        program_id = ledger_selectors.program_default().pk
    policy = MessagingPolicy.objects.filter(program_id=program_id).first()
    return policy or MessagingPolicy(program_id=program_id, updated_at=now)


def _address(member: Member, channel: str) -> str:
    if channel == Channel.EMAIL:
        return member.email or ""
    if channel == Channel.SMS:
        return member.phone or ""
    if channel == Channel.PUSH:
        return member.member_number  # the push gateway knows the member's devices by number
    return member.member_number  # inbox: the member's own page


MESSAGE_CLAIM_COLUMNS = (
    "id",
    "member_id",
    "content_id",
    "channel",
    "purpose",
    "status",
    "send_key",
    "program_id",
    "context",
    *CLAIM_FIELDS,
    *OUTCOME_FIELDS,
    "member__id",
    "member__status",
    "member__email",
    "member__phone",
    "member__first_name",
    "member__last_name",
    "member__member_number",
)


def _claim(
    message_ids: Sequence[int], now: dt.datetime, result: BatchResult
) -> list[tuple[Message, rendering.Rendered]]:
    """Decide and claim, in one transaction: suppressed rows get their reason, the others are
    rendered and set ``sending``. Returns what the providers must send."""
    claimed: list[tuple[Message, rendering.Rendered]] = []
    with transaction.atomic():
        messages = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=message_ids, status=MessageStatus.QUEUED)
            .select_related("member")
            .only(*MESSAGE_CLAIM_COLUMNS)
            .order_by("member_id", "pk")
        )
        contents = Content.objects.select_related("offer", "reward").in_bulk({m.content_id for m in messages})
        for message in messages:
            message.content = contents[message.content_id]
        result.skipped += len(set(message_ids)) - len(messages)
        if not messages:
            return claimed
        member_ids = sorted({m.member_id for m in messages})
        # the contact preferences rows are the per-member lock of the caps: make sure they exist
        # (sorted inserts: concurrent batches wait for each other in one order), then lock them
        ContactPreference.objects.bulk_create(
            [ContactPreference(member_id=member_id, updated_at=now) for member_id in member_ids], ignore_conflicts=True
        )
        preferences = {
            p.member_id: p
            for p in ContactPreference.objects.select_for_update().filter(member_id__in=member_ids).order_by("pk")
        }
        marketing_members = sorted({m.member_id for m in messages if m.purpose == Purpose.MARKETING})
        consent = member_selectors.consent_states_of(member_ids=marketing_members, purpose="marketing")
        counts: dict[tuple[int, str], int] = defaultdict(int)
        if marketing_members:
            rows = (
                Message.objects.filter(
                    member_id__in=marketing_members,
                    purpose=Purpose.MARKETING,
                    status__in=CAPPED_STATUSES,
                    claimed_at__gt=now - WEEK,
                )
                .values("member_id", "channel")
                .annotate(n=Count("id"))
                .order_by()
            )
            for row in rows:
                counts[(row["member_id"], row["channel"])] = row["n"]
        policies: dict[int | None, MessagingPolicy] = {}
        balances: dict[int, dict[int, int]] = {}
        for message in messages:
            if message.program_id not in policies:
                policies[message.program_id] = policy_of(message.program_id, now)
            policy = policies[message.program_id]
            if policy.program_id not in balances:
                balances[policy.program_id] = ledger_selectors.available_points_of(
                    member_ids=member_ids, program_id=policy.program_id
                )
            member, preference = message.member, preferences[message.member_id]
            recipient = Recipient(
                member_active=member.status == MemberStatus.ACTIVE,
                has_address=bool(_address(member, message.channel)),
                channel_enabled=preference.channel_enabled(message.channel),
                time_zone=preference.time_zone or policy.time_zone,
                quiet_start=preference.quiet_start if preference.quiet_start is not None else policy.quiet_start,
                quiet_end=preference.quiet_end if preference.quiet_end is not None else policy.quiet_end,
                consent=consent.get(message.member_id, {}),
                sent_this_week=counts[(message.member_id, message.channel)],
            )
            reason = suppression_reason(
                recipient=recipient,
                channel=message.channel,
                purpose=message.purpose,
                content_active=message.content.is_active,
                weekly_cap=getattr(policy, f"{message.channel}_weekly_cap"),
                now=now,
            )
            if reason:
                message.status, message.reason = MessageStatus.SUPPRESSED, reason
                result.suppressed += 1
                continue
            variables = rendering.content_variables(
                content=message.content,
                member={
                    "first_name": member.first_name,
                    "last_name": member.last_name,
                    "member_number": member.member_number,
                },
                balance=balances[policy.program_id].get(message.member_id),
                context=message.context,
            )
            rendered = rendering.render_message(
                content=message.content, variables=variables, channel=message.channel, message_id=message.pk
            )
            message.status, message.claimed_at = MessageStatus.SENDING, now
            message.subject, message.body, message.links = rendered.subject, rendered.text, rendered.links
            if message.purpose == Purpose.MARKETING:
                counts[(message.member_id, message.channel)] += 1
            claimed.append((message, rendered))
        _rows_update(messages, CLAIM_FIELDS)
    return claimed


def messages_send(*, message_ids: Sequence[int]) -> BatchResult:
    """Send one batch of queued messages (see the module's docstring). Safe to run again."""
    now = clock.now()
    result = BatchResult()
    claimed = _claim(message_ids, now, result)
    by_channel: dict[str, list[tuple[Message, rendering.Rendered]]] = defaultdict(list)
    for message, rendered in claimed:
        by_channel[message.channel].append((message, rendered))
    done: list[Message] = []
    for channel, items in by_channel.items():
        outgoing = [
            providers.Outgoing(
                send_key=message.send_key,
                channel=channel,
                to=_address(message.member, channel),
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                headers=rendered.headers,
            )
            for message, rendered in items
        ]
        answers = providers.provider_for(channel).send_many(outgoing)
        sent_at = clock.now()
        for (message, _), answer in zip(items, answers, strict=True):
            if isinstance(answer, providers.Sent):
                message.status, message.sent_at, message.provider_id = MessageStatus.SENT, sent_at, answer.provider_id
                result.sent += 1
            else:
                message.status, message.reason, message.error = (
                    MessageStatus.FAILED,
                    Reason.PROVIDER_ERROR,
                    answer.error,
                )
                result.failed += 1
            done.append(message)
    if done:
        with transaction.atomic():
            _rows_update(done, OUTCOME_FIELDS)
    return result


def messages_claims_expire(*, now: dt.datetime | None = None) -> int:
    """Claims older than ``STALE_CLAIM`` whose outcome was never written (the worker was lost
    between the provider call and the update): failed, ``interrupted``; never sent again."""
    now = now or clock.now()
    return Message.objects.filter(status=MessageStatus.SENDING, claimed_at__lt=now - STALE_CLAIM).update(
        status=MessageStatus.FAILED, reason=Reason.INTERRUPTED, error="claimed but no outcome recorded"
    )


CAMPAIGN_CAPPED_STATUSES = (MessageStatus.QUEUED, *CAPPED_STATUSES)


def messages_queue_members(
    *,
    content: Content,
    members: QuerySet,
    channels: Sequence[str],
    source: str,
    key: str,
    program: Program | None = None,
    campaign_id: int | None = None,
    variant: str = "",
    campaign_cap: tuple[int, int] | None = None,
    dispatch: bool = True,
) -> list[int]:
    """``messages_queue`` for a set of members given as a query of member ids (``values_list(
    "member_id", flat=True)``), set-based: on PostgreSQL one ``INSERT ... SELECT`` over the query
    and the channels (``ON CONFLICT (send_key) DO NOTHING``: the same ``key`` queues nothing twice),
    elsewhere the ids are read and queued by ``messages_queue``. ``campaign_cap`` = (n, days): a
    member who already has n messages of ``campaign_id`` on a channel (queued or sent) in the last
    ``days`` days gets none on that channel. Returns the ids of the messages this call queued."""
    unknown = set(channels) - set(Channel.values)
    if unknown:
        raise ValidationFailed(f"Unknown channel(s): {', '.join(sorted(unknown))}", code="invalid_channel")
    if not key:
        raise ValidationFailed("A send key is required", code="send_key_required")
    if campaign_cap is not None and campaign_id is None:
        raise ValidationFailed("A campaign cap needs the campaign", code="campaign_cap_without_campaign")
    now = clock.now()
    if connection.vendor != "postgresql":
        with transaction.atomic():
            member_ids = list(members)
            if campaign_cap is None:
                return messages_queue(
                    content=content,
                    member_ids=member_ids,
                    channels=channels,
                    source=source,
                    key=key,
                    program=program,
                    campaign_id=campaign_id,
                    variant=variant,
                    dispatch=dispatch,
                )
            ids: list[int] = []
            for channel in channels:
                over = set(
                    Message.objects.filter(
                        campaign_id=campaign_id,
                        channel=channel,
                        status__in=CAMPAIGN_CAPPED_STATUSES,
                        created_at__gt=now - dt.timedelta(days=campaign_cap[1]),
                        member_id__in=member_ids,
                    )
                    .values("member_id")
                    .annotate(n=Count("id"))
                    .filter(n__gte=campaign_cap[0])
                    .values_list("member_id", flat=True)
                )
                ids += messages_queue(
                    content=content,
                    member_ids=[m for m in member_ids if m not in over],
                    channels=[channel],
                    source=source,
                    key=key,
                    program=program,
                    campaign_id=campaign_id,
                    variant=variant,
                    dispatch=dispatch,
                )
            return sorted(ids)
    members_sql, members_params = members.query.sql_with_params()
    table = Message._meta.db_table
    cap_sql, cap_params = "", []
    if campaign_cap is not None:
        cap_sql = f"""WHERE (SELECT count(*) FROM {table} x WHERE x.campaign_id = %s AND x.member_id = s.member_id
                        AND x.channel = c.channel AND x.status = ANY(%s) AND x.created_at > %s) < %s"""  # noqa: S608
        cap_params = [
            campaign_id,
            [str(s) for s in CAMPAIGN_CAPPED_STATUSES],
            now - dt.timedelta(days=campaign_cap[1]),
            campaign_cap[0],
        ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (member_id, channel, send_key, content_id, purpose, status, reason,
                    program_id, source, campaign_id, variant, event_id, context, subject, body, links,
                    created_at, provider_id, error, open_count, click_count)
                SELECT s.member_id, c.channel, %s || ':' || s.member_id || ':' || c.channel, %s, %s, 'queued', '',
                       %s, %s, %s, %s, NULL, '{{}}'::jsonb, '', '', '[]'::jsonb, %s, '', '', 0, 0
                FROM ({members_sql}) AS s(member_id) CROSS JOIN unnest(%s::text[]) AS c(channel)
                {cap_sql}
                ON CONFLICT (send_key) DO NOTHING
                RETURNING id""",  # noqa: S608 - the model's own table, a query built by the ORM
            [
                key,
                content.pk,
                content.purpose,
                program.pk if program is not None else None,
                source,
                campaign_id,
                variant,
                now,
                *members_params,
                list(channels),
                *cap_params,
            ],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        if dispatch and ids:
            transaction.on_commit(lambda: messages_dispatch(message_ids=ids))
    return ids
