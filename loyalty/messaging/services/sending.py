"""Queue messages and send them in batches.

A message is queued as a row whose ``send_key`` is unique (``INSERT ... ON CONFLICT DO NOTHING``:
queuing the same thing twice queues it once). A batch then, in one transaction, takes the queued
rows it was given (rows another worker holds are skipped), locks the recipients' contact
preferences (primary-key order), decides per message whether it may go (``suppression``), renders
it and **claims** it (status ``sending``), and commits; only then are providers called, and the
outcome (``sent`` / ``failed``) written. A task run twice, or a retried task, finds its messages no
longer queued and sends nothing again. A task redelivered because its worker died (``resume``:
Celery's ``acks_late`` with ``reject_on_worker_lost`` puts it back at once) takes its claims back
on the channels whose provider drops a repeat by the send key (gateways over HTTP, the inbox) and
sends them again with the same key: the provider answers the first send, so the message is sent
once. An email claim is never sent twice (SMTP cannot drop a repeat): whose worker died before the
outcome was written is marked failed (``interrupted``) by the sweep.

Weekly caps hold under concurrent sends: the cap count and the claim happen under the row lock of
the member's contact preferences, so two batches sending to the same member see each other."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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


def policy_of(program_id: int | None, now: dt.datetime) -> MessagingPolicy:
    """The messaging policy of a program (its defaults when none is stored)."""
    if program_id is None:
        program_id = ledger_selectors.program_default().pk
    policy = MessagingPolicy.objects.filter(program_id=program_id).first()
    return policy or MessagingPolicy(program_id=program_id, updated_at=now)


def _address_of(channel: str, *, email: str | None, phone: str | None, member_number: str) -> str:
    if channel == Channel.EMAIL:
        return email or ""
    if channel == Channel.SMS:
        return phone or ""
    return member_number  # push: the gateway knows the member's devices by number; inbox: the member's page


@dataclass(slots=True)
class _Row:
    """One message of a batch as the send path needs it: plain values read in one statement (no
    model instances), then what the claim and the provider decide."""

    id: int
    member_id: int
    content_id: int
    channel: str
    purpose: str
    send_key: str
    program_id: int | None
    context: dict[str, Any]
    member_active: bool
    address: str
    first_name: str
    last_name: str
    member_number: str
    resumed: bool = False  # claimed by an earlier run of the same task, whose worker died
    status: str = MessageStatus.QUEUED
    reason: str = ""
    claimed_at: dt.datetime | None = None
    subject: str = ""
    body: str = ""
    links: list[str] = field(default_factory=list)
    rendered: rendering.Rendered | None = None
    error: str = ""
    provider_id: str = ""
    sent_at: dt.datetime | None = None


_ROW_COLUMNS = (
    "id",
    "member_id",
    "content_id",
    "channel",
    "purpose",
    "send_key",
    "program_id",
    "context",
    "member__status",
    "member__email",
    "member__phone",
    "member__first_name",
    "member__last_name",
    "member__member_number",
    "status",
)


# PostgreSQL: the batch's rows are found by primary key (``id = ANY(array)``). The status test is
# written ``(status = 'queued') IS TRUE`` so that the planner cannot answer it from the status index:
# right after a campaign is queued the table's statistics are stale (they do not know the new queued
# rows), and a plan through that index reads every queued row of the table for each batch, which
# makes a campaign's send time grow with the square of its size.
_TAKE_SQL = """
SELECT m.id, m.member_id, m.content_id, m.channel, m.purpose, m.send_key, m.program_id, m.context,
       u.status, u.email, u.phone, u.first_name, u.last_name, u.member_number, m.status
FROM {message} AS m JOIN {member} AS u ON u.id = m.member_id
WHERE m.id = ANY(%s::bigint[]) AND (m.status = ANY(%s::text[])) IS TRUE
ORDER BY m.member_id, m.id
FOR UPDATE OF m SKIP LOCKED
"""


def _rows_take(message_ids: Sequence[int], *, resume: bool = False) -> list[_Row]:
    """Lock the batch's messages still queued (rows another worker holds are skipped), with their
    members' fields: one statement. ``resume``: also the batch's claims (``sending``) on channels
    whose provider drops repeats (see the module)."""
    statuses = [MessageStatus.QUEUED, MessageStatus.SENDING] if resume else [MessageStatus.QUEUED]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _TAKE_SQL.format(message=Message._meta.db_table, member=Member._meta.db_table),
                [list(message_ids), [str(s) for s in statuses]],
            )
            values = [(*row[:7], _json_value(row[7]), *row[8:]) for row in cursor.fetchall()]
    else:
        values = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=message_ids, status__in=statuses)
            .order_by("member_id", "pk")
            .values_list(*_ROW_COLUMNS)
        )
    return [
        _Row(
            id=pk,
            member_id=member_id,
            content_id=content_id,
            channel=channel,
            purpose=purpose,
            send_key=send_key,
            program_id=program_id,
            context=context or {},
            member_active=status == MemberStatus.ACTIVE,
            address=_address_of(channel, email=email, phone=phone, member_number=number),
            first_name=first_name,
            last_name=last_name,
            member_number=number,
            resumed=message_status == MessageStatus.SENDING,
        )
        for (
            pk,
            member_id,
            content_id,
            channel,
            purpose,
            send_key,
            program_id,
            context,
            status,
            email,
            phone,
            first_name,
            last_name,
            number,
            message_status,
        ) in values
        if message_status == MessageStatus.QUEUED or providers.provider_for(channel).drops_repeats
    ]


def _json_value(value: Any) -> Any:
    """A jsonb column read by a raw cursor: decoded by psycopg, or text when a setting asks for it."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class _Preference:
    time_zone: str
    quiet_start: dt.time | None
    quiet_end: dt.time | None
    enabled: dict[str, bool]


_CHANNEL_SWITCHES = {channel: f"{channel}_enabled" for channel in Channel.values}


def _preferences_locked(member_ids: list[int], now: dt.datetime) -> dict[int, _Preference]:
    """The members' contact preferences, locked: they are the per-member lock of the weekly caps.
    Missing rows are made first (inserted in member order, so concurrent batches wait for each
    other in one order), then every row is locked in primary-key order. Two statements."""
    if connection.vendor == "postgresql":
        table = ContactPreference._meta.db_table
        columns, casts, values = [], [], []
        for f in ContactPreference._meta.concrete_fields:
            if f.primary_key or f.name in ("member", "updated_at"):
                continue
            columns.append(f.column)
            casts.append(f"%s::{f.db_type(connection)}")
            values.append(f.get_db_prep_save(f.get_default(), connection))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (member_id, updated_at, {', '.join(columns)}) "  # noqa: S608 - model's own names
                f"SELECT v.member_id, %s, {', '.join(casts)} FROM unnest(%s::bigint[]) AS v(member_id) "
                "ORDER BY v.member_id ON CONFLICT (member_id) DO NOTHING",
                [now, *values, member_ids],
            )
    else:
        ContactPreference.objects.bulk_create(
            [ContactPreference(member_id=member_id, updated_at=now) for member_id in member_ids], ignore_conflicts=True
        )
    switches = list(_CHANNEL_SWITCHES.values())
    rows = (
        ContactPreference.objects.select_for_update()
        .filter(member_id__in=member_ids)
        .order_by("pk")
        .values_list("member_id", "time_zone", "quiet_start", "quiet_end", *switches)
    )
    channels = list(_CHANNEL_SWITCHES)
    return {
        member_id: _Preference(time_zone, start, end, dict(zip(channels, flags, strict=True)))
        for member_id, time_zone, start, end, *flags in rows
    }


_COUNTS_SQL = """
SELECT member_id, channel, count(*) FROM {message}
WHERE member_id = ANY(%s::bigint[]) AND channel = ANY(%s::text[]) AND claimed_at > %s
  AND purpose = %s AND (status = ANY(%s::text[])) IS TRUE
GROUP BY member_id, channel
"""


def _marketing_counts(rows: Sequence[_Row], now: dt.datetime) -> dict[tuple[int, str], int]:
    """Marketing messages claimed in the last 7 days per (member, channel) of the batch's marketing
    rows (one statement). PostgreSQL: through the (member, channel, claimed_at) index, the status
    tested so that its index is not chosen (see ``_TAKE_SQL``)."""
    counts: dict[tuple[int, str], int] = defaultdict(int)
    pairs = sorted({(r.member_id, r.channel) for r in rows if r.purpose == Purpose.MARKETING})
    if not pairs:
        return counts
    member_ids = sorted({m for m, _ in pairs})
    channels = sorted({c for _, c in pairs})
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _COUNTS_SQL.format(message=Message._meta.db_table),
                [member_ids, channels, now - WEEK, Purpose.MARKETING, list(CAPPED_STATUSES)],
            )
            found = cursor.fetchall()
    else:
        found = (
            Message.objects.filter(
                member_id__in=member_ids,
                channel__in=channels,
                purpose=Purpose.MARKETING,
                status__in=CAPPED_STATUSES,
                claimed_at__gt=now - WEEK,
            )
            .values_list("member_id", "channel")
            .annotate(n=Count("id"))
            .order_by()
        )
    for member_id, channel, n in found:
        counts[(member_id, channel)] = n
    return counts


def _claims_write(rows: Sequence[_Row], now: dt.datetime) -> None:
    """The claim of a batch: one ``UPDATE`` over arrays (PostgreSQL) of every row's status and reason,
    and the claimed rows' time, subject, body and links; other databases: ``bulk_update``."""
    if connection.vendor != "postgresql":
        Message.objects.bulk_update(
            [
                Message(
                    pk=r.id,
                    status=r.status,
                    reason=r.reason,
                    claimed_at=r.claimed_at,
                    subject=r.subject,
                    body=r.body,
                    links=r.links,
                )
                for r in rows
            ],
            ["status", "reason", "claimed_at", "subject", "body", "links"],
            batch_size=500,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Message._meta.db_table} AS m SET status = v.status, reason = v.reason, "  # noqa: S608
            "claimed_at = CASE WHEN v.status = %s THEN %s::timestamptz END, "
            "subject = v.subject, body = v.body, links = v.links::jsonb "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            "AS v(id, status, reason, subject, body, links) WHERE m.id = v.id AND m.id = ANY(%s::bigint[])",
            [
                MessageStatus.SENDING,
                now,
                [r.id for r in rows],
                [r.status for r in rows],
                [r.reason for r in rows],
                [r.subject for r in rows],
                [r.body for r in rows],
                [json.dumps(r.links) for r in rows],
                [r.id for r in rows],
            ],
        )


def _outcomes_write(rows: Sequence[_Row]) -> None:
    """What the providers answered: one ``UPDATE`` over arrays (PostgreSQL), else ``bulk_update``."""
    if connection.vendor != "postgresql":
        Message.objects.bulk_update(
            [
                Message(
                    pk=r.id,
                    status=r.status,
                    reason=r.reason,
                    error=r.error,
                    sent_at=r.sent_at,
                    provider_id=r.provider_id,
                )
                for r in rows
            ],
            ["status", "reason", "error", "sent_at", "provider_id"],
            batch_size=500,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Message._meta.db_table} AS m SET status = v.status, reason = v.reason, error = v.error, "  # noqa: S608
            "sent_at = v.sent_at, provider_id = v.provider_id "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[]) "
            "AS v(id, status, reason, error, sent_at, provider_id) WHERE m.id = v.id AND m.id = ANY(%s::bigint[])",
            [
                [r.id for r in rows],
                [r.status for r in rows],
                [r.reason for r in rows],
                [r.error for r in rows],
                [r.sent_at for r in rows],
                [r.provider_id for r in rows],
                [r.id for r in rows],
            ],
        )


def _claim(message_ids: Sequence[int], now: dt.datetime, result: BatchResult, *, resume: bool = False) -> list[_Row]:
    """Decide and claim, in one transaction: suppressed rows get their reason, the others are
    rendered and set ``sending``. Returns the claimed rows (what the providers must send).
    ``resume``: claims taken back (see ``_rows_take``) were decided and counted when first claimed:
    they are rendered and claimed again, not decided again.

    Statements per batch, whatever its size: the messages with their members, the contents, the
    preferences (insert missing, lock), consents, weekly counts, the policy and balances per
    program, and one update."""
    with transaction.atomic():
        rows = _rows_take(message_ids, resume=resume)
        result.skipped += len(set(message_ids)) - len(rows)
        if not rows:
            return []
        contents = Content.objects.select_related("offer", "reward").in_bulk({r.content_id for r in rows})
        member_ids = sorted({r.member_id for r in rows})
        preferences = _preferences_locked(member_ids, now)
        marketing_members = sorted({r.member_id for r in rows if r.purpose == Purpose.MARKETING})
        consent = member_selectors.consent_states_of(member_ids=marketing_members, purpose="marketing")
        counts = _marketing_counts(rows, now)
        policies: dict[int | None, MessagingPolicy] = {}
        balances: dict[int, dict[int, int]] = {}
        no_consent: dict[str, bool] = {}
        claimed: list[_Row] = []
        for row in rows:
            policy = policies.get(row.program_id)
            if policy is None:
                policy = policies[row.program_id] = policy_of(row.program_id, now)
            if policy.program_id not in balances:
                balances[policy.program_id] = ledger_selectors.available_points_of(
                    member_ids=member_ids, program_id=policy.program_id
                )
            preference, content = preferences[row.member_id], contents[row.content_id]
            recipient = Recipient(
                member_active=row.member_active,
                has_address=bool(row.address),
                channel_enabled=preference.enabled[row.channel],
                time_zone=preference.time_zone or policy.time_zone,
                quiet_start=preference.quiet_start if preference.quiet_start is not None else policy.quiet_start,
                quiet_end=preference.quiet_end if preference.quiet_end is not None else policy.quiet_end,
                consent=consent.get(row.member_id, no_consent),
                sent_this_week=counts[(row.member_id, row.channel)],
            )
            reason = (
                ""
                if row.resumed
                else suppression_reason(
                    recipient=recipient,
                    channel=row.channel,
                    purpose=row.purpose,
                    content_active=content.is_active,
                    weekly_cap=getattr(policy, f"{row.channel}_weekly_cap"),
                    now=now,
                )
            )
            if reason:
                row.status, row.reason = MessageStatus.SUPPRESSED, reason
                result.suppressed += 1
                continue
            variables = rendering.content_variables(
                content=content,
                member={"first_name": row.first_name, "last_name": row.last_name, "member_number": row.member_number},
                balance=balances[policy.program_id].get(row.member_id),
                context=row.context,
            )
            rendered = rendering.render_message(
                content=content, variables=variables, channel=row.channel, message_id=row.id
            )
            row.status, row.claimed_at, row.rendered = MessageStatus.SENDING, now, rendered
            row.subject, row.body, row.links = rendered.subject, rendered.text, rendered.links
            if row.purpose == Purpose.MARKETING and not row.resumed:
                counts[(row.member_id, row.channel)] += 1
            claimed.append(row)
        _claims_write(rows, now)
    return claimed


def messages_send(*, message_ids: Sequence[int], resume: bool = False) -> BatchResult:
    """Send one batch of queued messages (see the module's docstring). Safe to run again.
    ``resume``: the batch's task was redelivered after its worker died; its claims on providers
    that drop repeats by send key are sent again."""
    now = clock.now()
    result = BatchResult()
    claimed = _claim(message_ids, now, result, resume=resume)
    by_channel: dict[str, list[_Row]] = defaultdict(list)
    for row in claimed:
        by_channel[row.channel].append(row)
    for channel, rows in by_channel.items():
        outgoing = [
            providers.Outgoing(
                send_key=row.send_key,
                channel=channel,
                to=row.address,
                subject=row.rendered.subject,
                text=row.rendered.text,
                html=row.rendered.html,
                headers=row.rendered.headers,
            )
            for row in rows
        ]
        answers = providers.provider_for(channel).send_many(outgoing)
        sent_at = clock.now()
        for row, answer in zip(rows, answers, strict=True):
            if isinstance(answer, providers.Sent):
                row.status, row.sent_at, row.provider_id = MessageStatus.SENT, sent_at, answer.provider_id
                result.sent += 1
            else:
                row.status, row.reason, row.error = MessageStatus.FAILED, Reason.PROVIDER_ERROR, answer.error
                result.failed += 1
    if claimed:
        with transaction.atomic():
            _outcomes_write(claimed)
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
