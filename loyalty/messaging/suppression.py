"""May this message go out now? Pure: plain data in, a stable reason code (or None) out.

Order of the checks (the first that fails is the recorded reason): the member is active, the
content is still active, the channel has an address, the member has not turned the channel off;
then, for marketing only: consent for marketing on the channel, quiet hours in the member's time
zone, the weekly cap of the channel. Service messages (about the member's own account) need no
marketing consent and are neither held by quiet hours nor counted against caps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty.messaging.models import Channel, Purpose, Reason


@dataclass(frozen=True)
class Recipient:
    member_active: bool
    has_address: bool
    channel_enabled: bool
    time_zone: str
    quiet_start: dt.time | None
    quiet_end: dt.time | None
    consent: dict[str, bool]  # marketing consent state per channel ("" = all channels), as recorded
    sent_this_week: int  # marketing messages already claimed on the channel in the last 7 days


def marketing_consent(consent: dict[str, bool], channel: str) -> bool:
    """Consent on the channel when one is recorded, else consent for all channels. A withdrawal on
    the channel (an unsubscribe) wins over a grant for all channels. The inbox has no consent
    channel of its own: it follows "all channels"."""
    if channel != Channel.INBOX and channel in consent:
        return consent[channel]
    return consent.get("", False)


def zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def in_quiet_hours(now: dt.datetime, time_zone: str, start: dt.time | None, end: dt.time | None) -> bool:
    """True when ``now`` falls in [start, end) local time; a window may span midnight (21:00-08:00);
    equal or missing bounds: no quiet hours."""
    if start is None or end is None or start == end:
        return False
    local = now.astimezone(zone(time_zone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def suppression_reason(
    *,
    recipient: Recipient,
    channel: str,
    purpose: str,
    content_active: bool,
    weekly_cap: int | None,
    now: dt.datetime,
) -> str | None:
    if not recipient.member_active:
        return Reason.MEMBER_INACTIVE
    if not content_active:
        return Reason.CONTENT_INACTIVE
    if not recipient.has_address:
        return Reason.NO_ADDRESS
    if not recipient.channel_enabled:
        return Reason.CHANNEL_OFF
    if purpose != Purpose.MARKETING:
        return None
    if not marketing_consent(recipient.consent, channel):
        return Reason.NO_CONSENT
    if in_quiet_hours(now, recipient.time_zone, recipient.quiet_start, recipient.quiet_end):
        return Reason.QUIET_HOURS
    if weekly_cap is not None and recipient.sent_this_week >= weekly_cap:
        return Reason.FREQUENCY_CAP
    return None
