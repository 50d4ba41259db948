"""Messaging's part of data export and erasure. Export: the member's contact preferences and the
messages sent to them. Erasure: the preferences go, and messages keep only what campaign results
count (channel, status, times); the rendered wording (which names the member) and the links are blanked."""

from __future__ import annotations

from typing import Any

from loyalty.messaging.models import ContactPreference, Message


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def export_member(member) -> dict[str, Any]:
    preference = ContactPreference.objects.filter(member=member).first()
    messages = Message.objects.filter(member=member).order_by("created_at", "id")
    return {
        "preferences": None
        if preference is None
        else {
            "time_zone": preference.time_zone,
            "quiet_start": _iso(preference.quiet_start),
            "quiet_end": _iso(preference.quiet_end),
            "email": preference.email_enabled,
            "sms": preference.sms_enabled,
            "push": preference.push_enabled,
            "inbox": preference.inbox_enabled,
        },
        "messages": [
            {
                "channel": m.channel,
                "purpose": m.purpose,
                "status": m.status,
                "reason": m.reason,
                "subject": m.subject,
                "body": m.body,
                "created_at": _iso(m.created_at),
                "sent_at": _iso(m.sent_at),
                "opened_at": _iso(m.opened_at),
                "clicked_at": _iso(m.clicked_at),
            }
            for m in messages
        ],
    }


def erase_member(member) -> None:
    ContactPreference.objects.filter(member=member).delete()
    Message.objects.filter(member=member).update(subject="", body="", links=[], context={}, provider_id="", error="")
