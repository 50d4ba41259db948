"""The send-time rules as a pure function: consent per channel, quiet hours in the member's time
zone, weekly caps; service messages need no marketing consent."""

import datetime as dt

import pytest

from loyalty.messaging.models import Reason
from loyalty.messaging.suppression import Recipient, in_quiet_hours, marketing_consent, suppression_reason

NOON_UTC = dt.datetime(2030, 3, 12, 12, 0, tzinfo=dt.UTC)


def recipient(**changes):
    values = dict(
        member_active=True,
        has_address=True,
        channel_enabled=True,
        time_zone="UTC",
        quiet_start=dt.time(21, 0),
        quiet_end=dt.time(8, 0),
        consent={"email": True},
        sent_this_week=0,
    )
    return Recipient(**(values | changes))


def reason(r, *, channel="email", purpose="marketing", cap=3, now=NOON_UTC, active=True):
    return suppression_reason(
        recipient=r, channel=channel, purpose=purpose, content_active=active, weekly_cap=cap, now=now
    )


def test_marketing_with_consent_on_the_channel_goes():
    assert reason(recipient()) is None


def test_marketing_without_consent_is_suppressed_no_consent():
    assert reason(recipient(consent={})) == Reason.NO_CONSENT
    assert reason(recipient(consent={"sms": True})) == Reason.NO_CONSENT


def test_consent_for_all_channels_covers_each_channel_and_the_inbox():
    assert reason(recipient(consent={"": True}), channel="sms") is None
    assert reason(recipient(consent={"": True}), channel="inbox") is None


def test_a_withdrawal_on_the_channel_wins_over_consent_for_all_channels():
    assert marketing_consent({"": True, "email": False}, "email") is False
    assert marketing_consent({"": True, "email": False}, "sms") is True


def test_service_messages_need_no_marketing_consent_and_ignore_quiet_hours_and_caps():
    night = dt.datetime(2030, 3, 12, 23, 0, tzinfo=dt.UTC)
    assert reason(recipient(consent={}, sent_this_week=9), purpose="service", now=night) is None


def test_service_messages_still_respect_the_channel_switch_and_the_address():
    assert reason(recipient(channel_enabled=False), purpose="service") == Reason.CHANNEL_OFF
    assert reason(recipient(has_address=False), purpose="service") == Reason.NO_ADDRESS


def test_an_inactive_member_or_content_gets_nothing():
    assert reason(recipient(member_active=False), purpose="service") == Reason.MEMBER_INACTIVE
    assert reason(recipient(), active=False) == Reason.CONTENT_INACTIVE


@pytest.mark.parametrize(
    ("zone", "quiet"),
    [("UTC", False), ("America/Chicago", True), ("Asia/Tokyo", True), ("Europe/Moscow", False)],
)
def test_quiet_hours_are_in_the_members_time_zone(zone, quiet):
    # 12:00 UTC on 12 March 2030 is 07:00 in Chicago (CDT since 10 March), 21:00 in Tokyo, 15:00 in Moscow
    r = recipient(time_zone=zone, quiet_start=dt.time(21, 0), quiet_end=dt.time(8, 0))
    assert (reason(r) == Reason.QUIET_HOURS) is quiet


def test_quiet_hours_may_span_midnight_and_exclude_their_end():
    start, end = dt.time(21, 0), dt.time(8, 0)
    at = lambda h, m=0: dt.datetime(2030, 3, 12, h, m, tzinfo=dt.UTC)  # noqa: E731
    assert in_quiet_hours(at(21), "UTC", start, end)
    assert in_quiet_hours(at(3), "UTC", start, end)
    assert not in_quiet_hours(at(8), "UTC", start, end)
    assert not in_quiet_hours(at(20, 59), "UTC", start, end)
    assert in_quiet_hours(at(13), "UTC", dt.time(12, 0), dt.time(14, 0))
    assert not in_quiet_hours(at(13), "UTC", dt.time(12, 0), dt.time(12, 0))  # equal bounds: none


def test_an_unknown_time_zone_counts_as_utc():
    assert not in_quiet_hours(NOON_UTC, "Not/AZone", dt.time(21, 0), dt.time(8, 0))


def test_the_weekly_cap_suppresses_once_reached():
    assert reason(recipient(sent_this_week=2), cap=3) is None
    assert reason(recipient(sent_this_week=3), cap=3) == Reason.FREQUENCY_CAP
    assert reason(recipient(sent_this_week=50), cap=None) is None
