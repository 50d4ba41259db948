"""Reads of messaging for the portal, the admin and campaigns. No writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Q, QuerySet

from loyalty.core import clock
from loyalty.ledger import selectors as ledger_selectors
from loyalty.messaging import rendering
from loyalty.messaging.models import Channel, Content, Message, MessageStatus
from members.models import Member


def inbox_messages(*, member: Member, limit: int = 50) -> QuerySet[Message]:
    """The member's portal inbox: inbox messages that were sent, newest first."""
    return Message.objects.filter(member=member, channel=Channel.INBOX, status=MessageStatus.SENT).order_by(
        "-sent_at", "-id"
    )[:limit]


def inbox_unread_count(*, member: Member) -> int:
    return Message.objects.filter(
        member=member, channel=Channel.INBOX, status=MessageStatus.SENT, read_at__isnull=True
    ).count()


def inbox_banner(*, member: Member) -> Message | None:
    """The newest unread inbox message whose content is shown as a banner."""
    return (
        Message.objects.filter(
            member=member,
            channel=Channel.INBOX,
            status=MessageStatus.SENT,
            read_at__isnull=True,
            content__banner=True,
        )
        .order_by("-sent_at", "-id")
        .first()
    )


def content_preview(*, content: Content, member: Member) -> dict[str, rendering.Rendered]:
    """What ``member`` would receive from ``content`` on each channel (links untracked)."""
    program = ledger_selectors.program_default()
    balance = ledger_selectors.available_points_of(member_ids=[member.pk], program_id=program.pk).get(member.pk)
    variables = rendering.content_variables(
        content=content,
        member={"first_name": member.first_name, "last_name": member.last_name, "member_number": member.member_number},
        balance=balance,
        context={"program": program.name},
    )
    return {
        channel: rendering.render_message(content=content, variables=variables, channel=channel)
        for channel in Channel.values
    }


def message_outcomes(*, campaign_id: int) -> list[dict[str, Any]]:
    """Per variant and channel of a campaign: messages by status, opened, clicked, unsubscribed
    (what campaign results count as reach, delivered, opened and clicked)."""
    rows = (
        Message.objects.filter(campaign_id=campaign_id)
        .values("variant", "channel")
        .annotate(
            messages=Count("id"),
            sent=Count("id", filter=Q(status__in=[MessageStatus.SENT, MessageStatus.BOUNCED])),
            delivered=Count("id", filter=Q(status=MessageStatus.SENT)),
            suppressed=Count("id", filter=Q(status=MessageStatus.SUPPRESSED)),
            failed=Count("id", filter=Q(status=MessageStatus.FAILED)),
            bounced=Count("id", filter=Q(status=MessageStatus.BOUNCED)),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
            unsubscribed=Count("id", filter=Q(unsubscribed_at__isnull=False)),
        )
        .order_by("variant", "channel")
    )
    return list(rows)


def messages_stale_queued_ids(*, older_than_seconds: int = 60, limit: int = 50_000) -> list[int]:
    """Queued messages no task took (lost after commit, or queued in bulk): for the send sweep."""
    cutoff = clock.now() - dt.timedelta(seconds=older_than_seconds)
    return list(
        Message.objects.filter(status=MessageStatus.QUEUED, created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
