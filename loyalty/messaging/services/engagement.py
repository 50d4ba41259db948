"""What members do with messages: opens, clicks, unsubscribes, inbox reads; and bounces that
providers report. Counters move with ``F()`` updates; first times keep the earliest moment."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce

from loyalty.core import clock
from loyalty.core.errors import NotFound
from loyalty.messaging.models import Channel, Message, MessageStatus, Purpose, Reason
from members.models import Member
from members.services import consent_set

UNSUBSCRIBE_SOURCE = "unsubscribe_link"


def message_opened(*, message_id: int) -> None:
    now = clock.now()
    Message.objects.filter(pk=message_id).update(open_count=F("open_count") + 1, opened_at=Coalesce("opened_at", now))


def message_clicked(*, message_id: int, link: int) -> str:
    """Count the click and answer the URL to redirect to: only one of the URLs the message was
    rendered with (``links``), never one from the request."""
    message = Message.objects.filter(pk=message_id).only("links").first()
    if message is None or not (0 <= link < len(message.links)):
        raise NotFound("This link is not valid", code="invalid_token")
    now = clock.now()
    Message.objects.filter(pk=message_id).update(
        click_count=F("click_count") + 1,
        clicked_at=Coalesce("clicked_at", now),
        opened_at=Coalesce("opened_at", now),  # a click is an open (images may be blocked)
    )
    return message.links[link]


def message_unsubscribe(*, message_id: int) -> Message:
    """One-click unsubscribe: withdraw the marketing consent of the message's channel (the inbox:
    all channels) through ``members.services.consent_set``; once per message."""
    with transaction.atomic():
        message = Message.objects.select_for_update().select_related("member").filter(pk=message_id).first()
        if message is None or message.purpose != Purpose.MARKETING:
            raise NotFound("This link is not valid", code="invalid_token")
        if message.unsubscribed_at is None:
            consent_set(
                member=message.member,
                purpose="marketing",
                channel="" if message.channel == Channel.INBOX else message.channel,
                granted=False,
                source=UNSUBSCRIBE_SOURCE,
            )
            message.unsubscribed_at = clock.now()
            message.save(update_fields=["unsubscribed_at"])
    return message


def message_bounced(*, provider_id: str, error: str = "") -> int:
    """A provider reported that a sent message bounced. Returns rows changed (0: unknown id)."""
    if not provider_id:
        return 0
    return Message.objects.filter(provider_id=provider_id, status=MessageStatus.SENT).update(
        status=MessageStatus.BOUNCED, reason=Reason.BOUNCED, bounced_at=clock.now(), error=error[:500]
    )


def inbox_mark_read(*, member: Member, message_id: int) -> None:
    """The member read an inbox message (only their own; ``message_not_found`` otherwise)."""
    changed = Message.objects.filter(
        pk=message_id, member=member, channel=Channel.INBOX, status=MessageStatus.SENT
    ).update(read_at=Coalesce("read_at", clock.now()), opened_at=Coalesce("opened_at", clock.now()))
    if not changed:
        raise NotFound("No such message", code="message_not_found")
